"""Socket.IO handlers (Flask-SocketIO test client), the batcher and the per-client backlog."""
from __future__ import annotations

import os
import queue
import time

import orjson
import pytest

from analytics.factory import socketio
from analytics.sockets.fanout import Fanout, _packet
from analytics.sockets.rooms import Subscription
from analytics.stream.durable_log import Entry


def test_clients_start_in_the_all_room_and_subscribe_narrows(app):
    client = socketio.test_client(app)
    assert client.is_connected()
    rooms = socketio.server.manager.rooms["/"]
    assert client.eio_sid in rooms["all"].values()
    ack = client.emit("subscribe", {"sources": ["web"], "metrics": ["orders", "errors"]}, callback=True)
    assert ack == {"ok": True, "room": "f:web|errors,orders", "sources": ["web"], "metrics": ["errors", "orders"]}
    assert client.eio_sid not in rooms.get("all", {}).values()
    assert client.emit("subscribe", {}, callback=True)["room"] == "all"
    client.disconnect()


def test_bad_subscribe_is_refused_in_the_ack(app):
    client = socketio.test_client(app)
    for payload in (["web"], {"sources": "web"}, {"metrics": ["bad name"]}, {"sources": [1]},
                    {"sources": ["s"] * 65}):
        ack = client.emit("subscribe", payload, callback=True)
        assert ack["ok"] is False and ack["error"]["code"] == "bad_subscription"
    client.disconnect()


def test_subscription_selects_matching_events():
    events = [{"source": s, "metric": m} for s in ("web", "api") for m in ("orders", "errors")]
    assert Subscription().select(events) is events
    assert Subscription(frozenset({"web"}), frozenset({"errors"})).select(events) == [{"source": "web", "metric": "errors"}]


class StalledSocket:
    """Stands in for an engineio Socket whose client stopped reading: its queue only grows."""

    closed = False

    def __init__(self):
        self.queue = queue.Queue()

    def send(self, pkt):
        self.queue.put(pkt)


class Server:
    def __init__(self, sockets):
        self.eio = type("Eio", (), {"sockets": sockets})()


def test_stalled_client_backlog_is_bounded_and_drops_are_reported_as_a_gap():
    sock = StalledSocket()
    fanout = Fanout(Server({"sid": sock}), backlog=8)
    ping = object()
    sock.queue.put(ping)  # a control packet in the queue must survive the trim
    for i in range(100):
        fanout.send_one("sid", _packet("metrics", orjson.dumps([{"n": i}] * 3), events=3))
    packets = list(sock.queue.queue)
    assert len(packets) <= 8 + 1
    assert ping in packets
    gaps = [p for p in packets if getattr(p, "analytics_dropped", 0)]
    kept_events = sum(getattr(p, "analytics_events", 0) for p in packets)
    assert gaps and sum(g.analytics_dropped for g in gaps) + kept_events == 300  # kept or reported, never silent
    assert packets[-1].data.endswith('[{"n":99},{"n":99},{"n":99}]]')


def test_a_client_closed_for_a_missed_ping_mid_delivery_does_not_cost_the_others_the_packet(app):
    from engineio.socket import Socket

    eio = socketio.server.eio
    late, healthy = Socket(eio, "late"), Socket(eio, "healthy")
    late.last_ping = time.time() - 10 * eio.ping_timeout  # engineio closes it on its next send
    for i in range(8):  # a full backlog: the next packet first sends `gap`, which closes it
        late.queue.put(_packet("metrics", orjson.dumps([{"n": i}]), events=1))
    server = Server({"late": late, "healthy": healthy})
    server.manager = type("Manager", (), {"rooms": {"/": {"all": {"s1": "late", "s2": "healthy"}}}})()
    fanout = Fanout(server, backlog=8)
    fanout.register(Subscription())
    fanout.deliver([Entry("1-1", [{"id": "e-1", "ts": 1.0, "source": "web", "metric": "orders", "value": 1.0,
                                   "tags": {}}])])
    assert late.closed
    assert [p.data for p in healthy.queue.queue if getattr(p, "analytics_events", 0)] == \
        ['2["metrics",[{"id":"e-1","ts":1.0,"source":"web","metric":"orders","value":1.0,"tags":{}}]]']
    assert fanout.send_one("late", _packet("metrics", b"[]")) is False


def test_accepted_connections_have_tcp_nodelay():
    import socket

    from analytics.server import listening_socket

    with listening_socket("127.0.0.1", 0) as server, socket.create_connection(server.getsockname()):
        accepted, _ = server.accept()
        with accepted:
            assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1


def _direct_ws(sock):
    """A DirectWebSocket over one end of a real socket pair; the gevent-websocket object it would
    wrap is reduced to the two attributes try_write reads."""
    from types import SimpleNamespace

    from analytics.sockets.direct_ws import DirectWebSocket

    ws = DirectWebSocket(lambda ws: None, server=None)
    ws._sock = SimpleNamespace(closed=False, handler=SimpleNamespace(socket=sock))
    return ws


def test_direct_write_sends_whole_frames_and_never_waits():
    import socket as stdlib_socket

    import gevent
    from gevent import socket as gsocket

    from analytics.sockets.direct_ws import frame

    server_end, client_end = gsocket.socketpair()
    server_end.setsockopt(stdlib_socket.SOL_SOCKET, stdlib_socket.SO_SNDBUF, 4096)
    ws = _direct_ws(server_end)
    small = frame(_packet("metrics", orjson.dumps([{"n": 1}]), events=1))
    assert small == b"\x81" + bytes([len(small) - 2]) + b'42["metrics",[{"n":1}]]'  # one unmasked text frame
    assert ws.try_write(small) and client_end.recv(1024) == small

    # Bigger than the socket buffer: part is written now, a greenlet writes the rest while
    # holding the lock, and nothing else may write until the frame is whole.
    big = frame(_packet("metrics", orjson.dumps([{"n": i} for i in range(50_000)]), events=50_000))
    assert ws.try_write(big) and ws.lock.locked()
    assert not ws.try_write(small)
    received = bytearray()

    def read_all():
        while len(received) < len(big):
            received.extend(client_end.recv(65536))

    gevent.spawn(read_all).join(timeout=10)
    gevent.sleep(0)
    assert bytes(received) == big and not ws.lock.locked()

    # A full buffer and a reader that has stalled: nothing is written, the caller queues instead.
    with pytest.raises(BlockingIOError):
        while True:
            os.write(server_end.fileno(), b"x" * 4096)  # gevent's sockets are non-blocking
    assert not ws.try_write(small) and not ws.lock.locked()

    server_end.close()
    assert not ws.try_write(small)  # closed: fileno is -1, never a stale descriptor
    client_end.close()

