"""Socket.IO handlers (Flask-SocketIO test client), the batcher and the per-client backlog."""
from __future__ import annotations

import os
import time

import pytest
from engineio import packet as eio_packet

from analytics.factory import socketio
from analytics.sockets.engineio_adapter import EventPacket
from analytics.sockets.fanout import Fanout, metrics_packet
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
    entries = [Entry("1-1", events[:2]), Entry("1-2", events[2:])]
    assert Subscription().packets(entries, 500) == [(events, "1-2")]
    only = Subscription.parse({"sources": ["web"], "metrics": ["errors"]})
    assert only.packets(entries, 500) == [([{"source": "web", "metric": "errors"}], "1-2")]
    assert Subscription().packets(entries, 2) == [(events[:2], "1-1"), (events[2:], "1-2")]  # cut between entries


def stalled_client(eio_sid: str, room: str = "all"):
    """A real engineio Socket, connected to "/" and in `room`, whose queue nobody reads: a client
    that stopped reading (the app's own server; no transport behind it)."""
    from engineio.socket import Socket

    server = socketio.server
    sock = Socket(server.eio, eio_sid)
    server.eio.sockets[eio_sid] = sock
    sid = server.manager.connect(eio_sid, "/")
    server.manager.enter_room(sid, "/", room, eio_sid=eio_sid)
    return sock


def event(n: int) -> dict:
    return {"id": f"e-{n}", "ts": 1.0, "source": "web", "metric": "orders", "value": 1.0, "tags": {}}


def dropped_counter() -> float:
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value("analytics_socket_events_dropped_total")


def test_stalled_client_backlog_is_bounded_and_drops_are_reported_as_a_gap(runtime):
    sock = stalled_client("stalled")
    fanout = Fanout(runtime.fanout.clients, backlog=8)
    fanout.register(Subscription())
    ping = eio_packet.Packet(eio_packet.PING)
    sock.queue.put(ping)  # a control packet in the queue must survive the trim
    for i in range(100):
        fanout.deliver([Entry(f"1-{i}", [event(3 * i), event(3 * i + 1), event(3 * i + 2)])])
    packets = list(sock.queue.queue)
    assert len(packets) <= 8 + 1
    assert packets[0] is ping  # kept, and still first
    kept = sum(p.events for p in packets if isinstance(p, EventPacket))
    announced = sum(p.lost for p in packets if isinstance(p, EventPacket))
    assert announced and kept + announced == 300  # kept or reported, never silent
    assert packets[-1].data.endswith('"id":"e-299","ts":1.0,"source":"web","metric":"orders","value":1.0,"tags":{}}]]')


def test_dropped_events_are_counted_once_however_often_their_gap_is_dropped(runtime):
    # Issue 13: each trim dropped the previous `gap` too and counted its running total again.
    sock = stalled_client("stalled")
    fanout = Fanout(runtime.fanout.clients, backlog=2)
    fanout.register(Subscription())
    before = dropped_counter()
    for i in range(1000):
        fanout.deliver([Entry(f"1-{i}", [event(2 * i), event(2 * i + 1)])])
    packets = list(sock.queue.queue)
    kept = sum(p.events for p in packets)
    lost = 2000 - kept
    assert lost > 1900  # almost everything: the backlog holds two packets
    assert dropped_counter() - before == lost
    assert sum(p.lost for p in packets) == lost  # the client is still told everything it lost


def test_a_client_closed_for_a_missed_ping_mid_delivery_does_not_cost_the_others_the_packet(runtime):
    late, healthy = stalled_client("late"), stalled_client("healthy")
    late.last_ping = time.time() - 10 * late.server.ping_timeout  # engineio closes it on its next send
    fanout = Fanout(runtime.fanout.clients, backlog=8)
    fanout.register(Subscription())
    for i in range(8):  # a full backlog: the next packet first sends `gap`, which closes it
        late.queue.put(metrics_packet([event(i)]))
    fanout.deliver([Entry("1-100", [event(100)])])
    assert late.closed
    assert [p.data for p in healthy.queue.queue if isinstance(p, EventPacket)] == \
        ['2["metrics",[{"id":"e-100","ts":1.0,"source":"web","metric":"orders","value":1.0,"tags":{}}]]']
    assert fanout.send_one("late", metrics_packet([])) is False


def test_a_delivery_to_many_clients_pauses_every_slice_and_still_reaches_each_once_in_order(runtime):
    """Writing to 100 clients in one go held the loop 10-23 ms: a delivery pauses every
    FANOUT_SLICE clients (other tasks run), and a second delivery after it still lands behind it."""
    from analytics.sockets.fanout import FANOUT_SLICE

    socks = [stalled_client(f"c{i}") for i in range(2 * FANOUT_SLICE + 3)]
    fanout = Fanout(runtime.fanout.clients, backlog=8)
    fanout.register(Subscription())
    pauses = []
    fanout.pause = lambda: pauses.append(sum(s.queue.qsize() for s in socks))
    fanout.deliver([Entry("1-1", [event(1)])])
    fanout.deliver([Entry("1-2", [event(2)])])
    # Two pauses per delivery to 53 clients, each after another FANOUT_SLICE writes (packets queued).
    n = len(socks)
    assert pauses == [FANOUT_SLICE, 2 * FANOUT_SLICE, n + FANOUT_SLICE, n + 2 * FANOUT_SLICE]
    for sock in socks:
        assert [p.events for p in sock.queue.queue] == [1, 1]
        assert [p.data[-40:] for p in sock.queue.queue] == [metrics_packet([event(n)]).data[-40:] for n in (1, 2)]


def test_accepted_connections_have_tcp_nodelay():
    import socket

    from analytics.server import listening_socket

    with listening_socket("127.0.0.1", 0) as server, socket.create_connection(server.getsockname()):
        accepted, _ = server.accept()
        with accepted:
            assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1


def _direct_ws(sock):
    """The adapter's gevent-websocket wrapper over one end of a real socket pair; the
    gevent-websocket object it would wrap is reduced to the two attributes it reads."""
    from types import SimpleNamespace

    from analytics.sockets.engineio_adapter import GeventWebSocketDirect

    ws = GeventWebSocketDirect(lambda ws: None, server=None)
    ws._sock = SimpleNamespace(closed=False, handler=SimpleNamespace(socket=sock))
    return ws


def test_direct_write_sends_whole_frames_and_never_waits():
    import socket as stdlib_socket

    import gevent
    from gevent import socket as gsocket

    from analytics.sockets.engineio_adapter import websocket_frame

    def frame(pkt):
        return websocket_frame(pkt.encode())

    server_end, client_end = gsocket.socketpair()
    server_end.setsockopt(stdlib_socket.SOL_SOCKET, stdlib_socket.SO_SNDBUF, 4096)
    ws = _direct_ws(server_end)
    small = frame(metrics_packet([{"n": 1}]))
    assert small == b"\x81" + bytes([len(small) - 2]) + b'42["metrics",[{"n":1}]]'  # one unmasked text frame
    assert ws.try_write(small) and client_end.recv(1024) == small

    # Bigger than the socket buffer: part is written now, a greenlet writes the rest while
    # holding the lock, and nothing else may write until the frame is whole.
    big = frame(metrics_packet([{"n": i} for i in range(50_000)]))
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



def test_a_client_changes_rooms_only_between_deliveries(app, runtime):
    """A delivery pauses between clients while it holds the fan-out's lock. A client moved from
    one room to another during that pause could be written in both rooms (its events twice) or
    in neither (lost, with no gap), so a subscribe waits for the lock."""
    import threading

    client = socketio.test_client(app)
    rooms = socketio.server.manager.rooms["/"]
    acks = []
    mover = threading.Thread(target=lambda: acks.append(client.emit("subscribe", {"sources": ["web"]}, callback=True)),
                             daemon=True)
    with runtime.fanout.lock:  # a delivery in progress, paused between two clients
        mover.start()
        mover.join(timeout=0.5)  # long enough for a subscribe that does not wait to have moved it
        assert client.eio_sid in rooms["all"].values() and not acks
    mover.join(timeout=30)
    assert acks and acks[0]["ok"] and acks[0]["room"] == "f:web|"
    assert client.eio_sid not in rooms.get("all", {}).values()
    client.disconnect()
