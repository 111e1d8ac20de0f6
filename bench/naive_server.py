"""The per-event baseline: the naive design the product's batcher replaces.

One `socketio.emit('metrics', [event])` per event to every client, no batching, no backlog
bound. Everything else is as in the product so the comparison isolates the fan-out: same
async mode (gevent, monkey-patched first), same schema parser, same Redis channel, same
pywsgi + WebSocketHandler server on a TCP_NODELAY socket. Serves /api/health so the
orchestrator can wait for it like the backend. Reads REDIS_URL, PORT, HOST, CORS_ORIGINS,
METRICS_CHANNEL from the environment.
"""
from gevent import monkey

monkey.patch_all()  # before anything imports socket/threading/logging

import logging  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402

import redis  # noqa: E402
from flask import Flask, jsonify  # noqa: E402
from flask_socketio import SocketIO  # noqa: E402

from analytics.events.schema import parse_message  # noqa: E402
from analytics.server import listening_socket, serve  # noqa: E402

log = logging.getLogger("naive")
app = Flask(__name__)
socketio = SocketIO(app, async_mode="gevent", cors_allowed_origins=os.environ.get("CORS_ORIGINS", "").split(","),
                    logger=False, engineio_logger=False)
accepted = 0


@app.get("/api/health")
def health():
    return jsonify({"status": "ok", "events": {"accepted": accepted}})


def listen(url: str, channel: str) -> None:
    global accepted
    pubsub = redis.Redis.from_url(url).pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(channel)
    while True:
        message = pubsub.get_message(timeout=1.0)
        if message is None or message["type"] != "message":
            continue
        for event in parse_message(message["data"]).events:
            accepted += 1
            socketio.emit("metrics", [event])  # the naive part: one packet per event per client


def main() -> int:
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "WARNING"))
    logging.getLogger("geventwebsocket.handler").setLevel(logging.WARNING)
    host, port = os.environ.get("HOST", "127.0.0.1"), int(os.environ.get("PORT", "5001"))
    socketio.start_background_task(listen, os.environ["REDIS_URL"], os.environ.get("METRICS_CHANNEL", "metrics"))
    # The product's own serving code: same TCP_NODELAY socket, same gevent WSGI server.
    serve(app, socketio, listening_socket(host, port), "gevent")
    return 0


if __name__ == "__main__":
    sys.exit(main())
