"""The two-hop floor: a bare forwarder from the Redis channel to WebSocket clients.

What any server of this shape pays on this machine before doing any work of its own: the
publisher's send, Redis, the wake-up of a Python process reading the channel, one WebSocket
frame per client on loopback, and the wake-up of the Node process that receives it. The
quiet-stream budget line (100 ev/s x 10 clients, p50 <= 1 ms) is read against it.

Same libraries and server as the product (gevent, redis-py with hiredis and a blocking read,
gevent-websocket on the product's TCP_NODELAY socket) and nothing else: no validation, no
batching, no Flask, no Engine.IO queue. Each channel message goes out unparsed, as one
Socket.IO `metrics` frame built once, written to every client in turn. It speaks just enough
Engine.IO/Socket.IO for bench/clients.mjs --impl raw (open, connect, ping). Serves
/api/health ({"events": {"accepted": n}}) so the orchestrator treats it like a server.
Reads REDIS_URL, PORT, HOST, METRICS_CHANNEL from the environment.
"""
from gevent import monkey

monkey.patch_all()  # before anything imports socket/threading

import json  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402

import gevent  # noqa: E402
import redis  # noqa: E402
from gevent import pywsgi  # noqa: E402
from geventwebsocket.exceptions import WebSocketError  # noqa: E402
from geventwebsocket.handler import WebSocketHandler  # noqa: E402

from analytics.server import listening_socket  # noqa: E402

OPEN = '0{"sid":"floor","upgrades":[],"pingInterval":25000,"pingTimeout":60000,"maxPayload":1000000}'
clients: set = set()
stats = {"accepted": 0}


def app(environ, start_response):
    ws = environ.get("wsgi.websocket")
    if ws is None:  # plain HTTP: only the health check the orchestrator polls
        body = json.dumps({"status": "ok", "events": {"accepted": stats["accepted"]}}).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]
    ws.send(OPEN)
    try:
        while (message := ws.receive()) is not None:
            if message == "40":  # Socket.IO CONNECT to "/": from now on this client gets frames
                ws.send('40{"sid":"floor"}')
                clients.add(ws)
    except WebSocketError:
        pass
    finally:
        clients.discard(ws)
    return []


def forward(url: str, channel: str) -> None:
    pubsub = redis.Redis.from_url(url).pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(channel)
    while True:
        message = pubsub.get_message(timeout=None)
        if message is None or message["type"] != "message":
            continue
        data = message["data"]
        events = data if data[:1] == b"[" else b"[" + data + b"]"
        stats["accepted"] += data.count(b'"id":')  # the generator gives every event an id
        frame = (b'42["metrics",' + events + b"]").decode()  # a text frame: gevent-websocket wants str
        for ws in list(clients):
            try:
                ws.send(frame)
            except WebSocketError:
                clients.discard(ws)


def main() -> int:
    host, port = os.environ.get("HOST", "127.0.0.1"), int(os.environ.get("PORT", "5002"))
    gevent.spawn(forward, os.environ["REDIS_URL"], os.environ.get("METRICS_CHANNEL", "metrics"))
    server = pywsgi.WSGIServer(listening_socket(host, port), app, handler_class=WebSocketHandler, log=None)
    signal.signal(signal.SIGTERM, lambda *_: server.stop(timeout=1))
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
