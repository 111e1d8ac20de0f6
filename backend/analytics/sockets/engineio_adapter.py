"""Every use of python-socketio / python-engineio / gevent-websocket / simple-websocket internals.

The fan-out needs what these libraries do not offer publicly: the clients in a room, a client's
engineio queue (to bound it), a packet encoded once for every client, and a way to write that
packet straight to a client's WebSocket. All of it lives here, behind small functions, so an
upgrade breaks one module and tests/test_engineio_adapter.py says what changed.

Direct writes: under gevent a `metrics` packet is written on each ready client's socket by the
greenlet that made it, as one frame built once per packet, instead of through engineio's
per-client queue and writer greenlet. A direct write happens only when engineio has nothing
queued for the client and its writer is not sending (both hold `lock`), so frames never reorder
or interleave; it never waits (a full socket buffer means the packet is queued instead).
"""
from __future__ import annotations

import os
import struct
from collections.abc import Callable

import gevent
import gevent.event
import gevent.selectors
from engineio import packet as eio_packet
from engineio.async_drivers import gevent as eio_gevent
from engineio.async_drivers._websocket_wsgi import SimpleWebSocketWSGI
from engineio.exceptions import SocketIsClosedError
from gevent.lock import Semaphore

# What this module was written and tested against (backend/requirements.txt).
LIBRARY_VERSIONS = {"python-socketio": "5.18.1", "python-engineio": "4.15.1", "gevent-websocket": "0.10.1",
                    "simple-websocket": "1.1.0"}
WS_SERVERS = ("gevent-websocket", "simple-websocket")
NAMESPACE = "/"


class EventPacket(eio_packet.Packet):
    """An Engine.IO MESSAGE carrying one Socket.IO event, with what it means for drop accounting:
    `events` it delivers, and `lost` events it announces (a `gap`)."""

    def __init__(self, text: str, events: int, lost: int):
        super().__init__(eio_packet.MESSAGE, text)
        self.events = events
        self.lost = lost
        self.frame: bytes | None = None  # its WebSocket frame, built on first direct write


def encode_event_packet(event: str, payload_json: bytes, events: int = 0, lost: int = 0) -> EventPacket:
    # Socket.IO EVENT ("2") of [event, payload] with the payload already JSON: encoded once and
    # shared by every recipient (engineio caches nothing across clients).
    return EventPacket('2["' + event + '",' + payload_json.decode() + "]", events, lost)


def websocket_frame(data: str | bytes) -> bytes:
    """One whole unmasked WebSocket frame (RFC 6455 5.2): a server's frame is the same bytes for
    every client, when no extension (permessage-deflate) was negotiated."""
    if isinstance(data, str):
        payload, opcode = data.encode(), 0x1
    else:
        payload, opcode = data, 0x2
    n = len(payload)
    if n < 126:
        header = struct.pack("!BB", 0x80 | opcode, n)
    elif n < 1 << 16:
        header = struct.pack("!BBH", 0x80 | opcode, 126, n)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 127, n)
    return header + payload


class Clients:
    """The Socket.IO server's clients, as the fan-out sees them: engineio sockets by eio sid."""

    def __init__(self, sio_server):
        self.sio = sio_server

    def room_members(self, room: str) -> list[str]:
        return [eio_sid for _, eio_sid in self.sio.manager.get_participants(NAMESPACE, room)]

    def all(self) -> list[str]:
        return list(self.sio.eio.sockets)

    def count(self) -> int:
        return len(self.sio.eio.sockets)

    def eio_sid_of(self, sid: str) -> str | None:
        """The engineio sid under a Socket.IO sid (what the fan-out addresses), None once gone."""
        return self.sio.manager.eio_sid_from_sid(sid, NAMESPACE)

    def sids(self) -> list[str]:
        """Every connected client's Socket.IO sid (to disconnect them all on a graceful stop)."""
        return [sid for sid, _ in self.sio.manager.get_participants(NAMESPACE, None)]

    def client(self, eio_sid: str):
        """The engineio Socket of a connected client, or None once it is gone."""
        sock = self.sio.eio.sockets.get(eio_sid)
        return None if sock is None or sock.closed else sock


def queued(client) -> int:
    return client.queue.qsize()


def send_queued(client, pkt: eio_packet.Packet) -> bool:
    """Queue a packet for engineio's writer; False when engineio closed the client instead (it
    closes one that missed its ping deadline from inside send)."""
    try:
        client.send(pkt)
    except SocketIsClosedError:
        return False
    return True


def drop_oldest(client, keep: int) -> list[EventPacket]:
    """Take the oldest EventPackets out of a client's queue until at most `keep` packets are
    left; control packets (ping, close) stay, in order. Returns what was taken."""
    queue, items = client.queue, []
    while True:
        try:
            items.append(queue.get_nowait())
        except Exception:  # the queue's own Empty (gevent or stdlib)
            break
        queue.task_done()
    excess = len(items) - keep
    dropped, kept = [], []
    for pkt in items:
        if excess > 0 and isinstance(pkt, EventPacket):
            dropped.append(pkt)
            excess -= 1
        else:
            kept.append(pkt)
    for pkt in kept:
        queue.put(pkt)
    return dropped


def try_direct_write(client, pkt: EventPacket) -> bool:
    """Write the packet's frame on the client's WebSocket now, if nothing is queued or being
    sent to it and its socket takes at least part without waiting. False: nothing was written."""
    ws = getattr(client, "_analytics_direct_ws", None)
    if ws is None or not client.upgraded or client.upgrading or not client.queue.empty():
        return False
    if pkt.frame is None:
        pkt.frame = websocket_frame(pkt.encode())
    return ws.try_write(pkt.frame)


class _DirectWrites:
    """What both WebSocket wrappers add to engineio's: a lock shared by engineio's writer and
    the fan-out, and a non-blocking write of a whole frame."""

    def _bind(self, handler) -> None:
        self.lock = Semaphore()
        # engineio builds the wrapper with its Socket's bound `_websocket_handler`: that is how
        # the Socket (what the fan-out holds) finds the WebSocket it is served on.
        owner = getattr(handler, "__self__", None)
        if owner is not None:
            owner._analytics_direct_ws = self

    def _raw_socket(self):  # the gevent socket under the WebSocket, None until open or once closed
        raise NotImplementedError

    def try_write(self, data: bytes) -> bool:
        sock = self._raw_socket()
        if sock is None or self.lock.locked():
            return False
        fd = sock.fileno()  # read each time: -1 once closed, never a stale number
        if fd < 0:
            return False
        try:
            written = os.write(fd, data)  # the socket is non-blocking under gevent
        except OSError:
            # Buffer full (BlockingIOError) or the connection is gone: engineio's writer sends
            # it later, or meets the same error and closes the socket.
            return False
        if written < len(data):
            self.lock.acquire()  # free (checked above, and nothing yielded since)
            gevent.spawn(self._finish, sock, memoryview(data)[written:])
        return True

    def _finish(self, sock, rest: memoryview) -> None:
        try:
            sock.sendall(rest)
        except OSError:
            pass  # the connection is gone: engineio's reader sees it and closes the socket
        finally:
            self.lock.release()


class GeventWebSocketDirect(_DirectWrites, eio_gevent.WebSocketWSGI):
    """engineio's gevent-websocket wrapper with direct writes."""

    def __init__(self, handler, server):
        super().__init__(handler, server)
        self._bind(handler)

    def _raw_socket(self):
        ws = getattr(self, "_sock", None)  # the gevent-websocket WebSocket, once the handshake ran
        return None if ws is None or ws.closed else ws.handler.socket

    def send(self, message):
        with self.lock:
            return super().send(message)


class SimpleWebSocket(SimpleWebSocketWSGI):
    """engineio's own WebSocket path under gevent (what it uses when gevent-websocket is not
    installed), built with gevent's thread, event and selector classes as engineio does. Every
    frame is built here and written whole: simple-websocket 1.1.0 writes with one `socket.send`,
    which under gevent may write only part of a large frame to a slow client (fixed upstream
    after 1.1.0, unreleased)."""

    def __init__(self, handler, server):
        super().__init__(handler, server, thread_class=eio_gevent.Thread, event_class=gevent.event.Event,
                         selector_class=gevent.selectors.DefaultSelector)
        self.lock = Semaphore()

    def send(self, message):
        with self.lock:
            if not self.ws.connected:
                raise OSError("websocket closed")
            self.ws.sock.sendall(websocket_frame(message))


class SimpleWebSocketDirect(_DirectWrites, SimpleWebSocket):
    """simple-websocket with direct writes."""

    def __init__(self, handler, server):
        super().__init__(handler, server)
        self._bind(handler)

    def __call__(self, environ, start_response):
        # No permessage-deflate: compressed frames differ per client and cost CPU per client.
        environ = {k: v for k, v in environ.items() if k != "HTTP_SEC_WEBSOCKET_EXTENSIONS"}
        return super().__call__(environ, start_response)

    def _raw_socket(self):
        ws = getattr(self, "ws", None)  # the simple_websocket.Server, once the handshake ran
        return ws.sock if ws is not None and ws.connected else None


def install_websocket(eio_server, ws_server: str, direct_writes: bool) -> str | None:
    """Serve this engineio server's WebSockets with `ws_server` (gevent mode), with direct writes
    if asked. Returns why direct writes were asked for and cannot be had, else None."""
    if eio_server.async_mode != "gevent":
        return f"async mode {eio_server.async_mode}: engineio keeps its queue and writer per client" \
            if direct_writes else None
    if "websocket" not in getattr(eio_server, "_async", {}):
        return f"python-engineio {engineio_version()} has no _async['websocket'] to replace"
    if ws_server == "simple-websocket":
        websocket = SimpleWebSocketDirect if direct_writes else SimpleWebSocket
    elif eio_gevent.SimpleWebSocketWSGI is not None:
        return "WS_SERVER=gevent-websocket but gevent-websocket is not installed: engineio serves WebSocket " \
               "through simple-websocket, without direct writes"
    else:
        websocket = GeventWebSocketDirect if direct_writes else eio_gevent.WebSocketWSGI
    eio_server._async = dict(eio_server._async, websocket=websocket)
    return None


def before_connect(sio_server, enter: Callable[[], None]) -> None:
    """Call `enter()` before python-socketio handles each Socket.IO CONNECT packet: the whole
    connect (Flask-SocketIO's request context, our handler, the ack), not only our handler."""
    handle = sio_server._handle_connect

    def handle_connect(*args, **kwargs):
        enter()
        return handle(*args, **kwargs)

    sio_server._handle_connect = handle_connect


def engineio_version() -> str:
    from importlib.metadata import version

    return version("python-engineio")
