"""The contract of sockets/engineio_adapter.py with the libraries whose internals it uses.

Each test names the internal it relies on; after an upgrade, a failure here says what changed
before anything misbehaves under load.
"""
from __future__ import annotations

import re
from importlib.metadata import version
from pathlib import Path

import orjson
import pytest
from engineio import packet as eio_packet
from engineio.async_drivers import gevent as eio_gevent
from socketio import packet as sio_packet

from analytics.factory import socketio
from analytics.sockets import engineio_adapter as adapter

REQUIREMENTS = Path(__file__).resolve().parent.parent / "requirements.txt"


@pytest.mark.parametrize("package", sorted(adapter.LIBRARY_VERSIONS))
def test_pinned_versions_are_the_ones_the_adapter_was_written_against(package):
    # The lock's pin lines: "name==version \" followed by hash lines.
    pinned = dict(re.findall(r"^([A-Za-z0-9_.\-]+)==([^\s\\;]+)", REQUIREMENTS.read_text(), re.M))
    written_for = adapter.LIBRARY_VERSIONS[package]
    assert pinned.get(package) == written_for, (
        f"backend/requirements.txt pins {package}=={pinned.get(package)}, the adapter was written against "
        f"{written_for}: rerun these tests, check the internals they name, then update LIBRARY_VERSIONS")
    assert version(package) == written_for, f"installed {package} is {version(package)}, not {written_for}"


def test_an_event_packet_decodes_with_socketio_to_the_same_event_and_payload():
    payload = [{"id": "e-1", "value": 1.5, "tags": {"k": "v \"quoted\" \u00e9"}}]
    pkt = adapter.encode_event_packet("metrics", orjson.dumps(payload), events=1)
    wire = pkt.encode()
    engine = eio_packet.Packet(encoded_packet=wire)
    assert engine.packet_type == eio_packet.MESSAGE
    decoded = sio_packet.Packet(encoded_packet=engine.data)
    assert decoded.packet_type == sio_packet.EVENT and decoded.namespace in (None, "/")  # None: the default "/"
    assert decoded.data == ["metrics", payload]


def test_websocket_frames_match_gevent_websocket_and_wsproto():
    from geventwebsocket.websocket import Header, WebSocket
    from wsproto.connection import Connection, ConnectionType
    from wsproto.events import TextMessage

    for size in (0, 125, 126, 65535, 65536, 200_000):
        text = "x" * size
        ours = adapter.websocket_frame(text)
        assert ours == Header.encode_header(True, WebSocket.OPCODE_TEXT, b"", size, 0) + text.encode()
        assert ours == Connection(ConnectionType.SERVER).send(TextMessage(data=text))  # no extension


def test_engineio_lets_the_websocket_class_be_replaced(app):
    eio = socketio.server.eio
    assert "websocket" in eio._async, "engineio Server._async has no 'websocket' entry: install_websocket cannot work"
    assert eio_gevent.SimpleWebSocketWSGI is None, "engineio's gevent driver no longer picks gevent-websocket"
    assert adapter.install_websocket(eio, "gevent-websocket", True) == "async mode threading: " \
        "engineio keeps its queue and writer per client"


def test_engineio_builds_the_websocket_with_the_sockets_bound_handler():
    # The wrapper finds its engineio Socket through `handler.__self__`.
    import inspect

    from engineio.socket import Socket

    source = inspect.getsource(Socket._upgrade_websocket)
    assert "self.server._async['websocket'](\n            self._websocket_handler, self.server)" in source, \
        "engineio Socket._upgrade_websocket no longer builds _async['websocket'](self._websocket_handler, server)"


def test_engineio_socket_has_what_the_fanout_reads(app):
    from engineio.socket import Socket

    sock = Socket(socketio.server.eio, "contract")
    for attr in ("queue", "upgraded", "upgrading", "closed"):
        assert hasattr(sock, attr), f"engineio Socket has no `{attr}` any more"
    sock.send(eio_packet.Packet(eio_packet.PING))
    assert adapter.queued(sock) == 1 and sock.queue.qsize() == 1  # send() still queues
    pkt = adapter.encode_event_packet("metrics", b"[]", events=3)
    sock.queue.put(pkt)
    assert adapter.drop_oldest(sock, keep=1) == [pkt] and adapter.queued(sock) == 1


def test_room_members_come_from_the_socketio_manager(app):
    manager = socketio.server.manager
    sid = manager.connect("eio-1", "/")
    manager.enter_room(sid, "/", "all", eio_sid="eio-1")
    clients = adapter.Clients(socketio.server)
    assert clients.room_members("all") == ["eio-1"] and clients.room_members("nobody") == []


def test_a_warning_says_why_direct_writes_are_off(settings, caplog):
    from analytics.factory import create_app

    with caplog.at_level("WARNING", logger="analytics.factory"):
        create_app(settings, start_stream=False)  # the tests' app runs in threading mode
    assert "direct WebSocket writes are off: async mode threading" in caplog.text


def test_before_connect_runs_before_python_socketio_handles_each_connect(app):
    """socketio.Server._handle_connect (looked up on the instance) is what a Socket.IO CONNECT
    packet runs: the auth check, Flask-SocketIO's request context, our handler, the ack."""
    from analytics.sockets.handlers import MetricsNamespace

    seen = []
    handler = next(h for h in socketio.server.namespace_handlers.values() if isinstance(h, MetricsNamespace))
    original = handler.on_connect
    handler.on_connect = lambda auth=None: (seen.append("handler"), original(auth))[1]
    adapter.before_connect(socketio.server, lambda: seen.append("enter"))
    client = socketio.test_client(app)
    try:
        assert client.is_connected()
        assert seen == ["enter", "handler"]
    finally:
        client.disconnect()
