"""Both WebSocket servers of gevent mode (WS_SERVER), with and without direct writes, in a real
backend process: every frame arrives whole and in order."""
from __future__ import annotations

import json
import urllib.request

import pytest
import redis
import websocket

from devstack.processes import backend, redis_server

pytestmark = pytest.mark.e2e
DEFLATE = "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits"


def direct_writes(base: str) -> float:
    with urllib.request.urlopen(f"{base}/metrics", timeout=10) as response:
        lines = response.read().decode().splitlines()
    return float(next(ln for ln in lines if ln.startswith("analytics_socket_direct_writes_total")).split()[-1])


@pytest.mark.parametrize(("ws_server", "direct"), [("gevent-websocket", "true"), ("gevent-websocket", "false"),
                                                   ("simple-websocket", "true"), ("simple-websocket", "false")])
def test_frames_arrive_whole_and_in_order(ws_server, direct):
    with redis_server() as (redis_url, _, _), backend(redis_url, WS_SERVER=ws_server, DIRECT_WRITES=direct) as base:
        # A browser offers permessage-deflate; with direct writes it must not be negotiated (every
        # client shares one frame), and websocket-client, which cannot inflate, proves it.
        offer = [DEFLATE] if direct == "true" else []
        ws = websocket.create_connection(base.replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket",
                                         origin=base, header=offer, timeout=10)
        assert ws.recv().startswith("0{")
        ws.send("40")
        assert ws.recv().startswith("40")
        publisher = redis.Redis.from_url(redis_url)
        for i in range(20):
            publisher.publish("metrics", json.dumps({"id": f"e-{i}", "metric": "orders", "value": i}))
        publisher.publish("metrics", json.dumps([{"id": f"e-{i}", "metric": "orders", "value": i, "tags": {"pad": "x" * 60}}
                                                 for i in range(20, 1020)]))
        ids = []
        while len(ids) < 1020:
            frame = ws.recv()
            if frame == "2":
                ws.send("3")
            elif frame.startswith('42["metrics",'):
                ids += [e["id"] for e in json.loads(frame[2:])[1]]
        assert ids == [f"e-{i}" for i in range(1020)]
        assert (direct_writes(base) > 0) == (direct == "true")
        ws.close()

