"""Socket.IO handlers: every client starts subscribed to everything; `subscribe` narrows it.

A client that connects with `auth: {"resume": "<position>"}` (or sends `resume`) is sent what it
missed since that log position, then continues live; with `auth: {"positions": true}` it only
asks for positions. Either way its `metrics` packets carry `{"position": ...}` as a second
argument (opt-in, so a one-argument handler of an older client keeps working); packets of a
catch-up also say `"replay": true`. `auth` may carry the subscription (`sources`, `metrics`) too,
so a catch-up sends only what the client would have been sent live.

With viewer tokens on (JWT_SECRET / JWT_PUBLIC_KEY), `auth` must carry `token`: a connect
without a valid one is refused (connect_error `{"code": "unauthorized"}`), and the server
disconnects the client when its token expires (it reconnects with a new one). A token's
`sources` claim narrows every subscription (and so every catch-up) to those sources.
"""
from __future__ import annotations

import logging
import time

from flask import request
from flask_socketio import ConnectionRefusedError, Namespace

from analytics import counters
from analytics.access.tokens import TokenError, Viewer, ViewerTokens
from analytics.sockets.fanout import Fanout
from analytics.sockets.log_window import LogWindow
from analytics.sockets.resume import ResumeError, catch_up, parse_position
from analytics.sockets.rooms import Subscription, SubscriptionError
from analytics.stream.durable_log import DurableLog

log = logging.getLogger(__name__)
NAMESPACE = "/"
EXPIRY_CHECK_S = 5.0  # how often a token's watch looks whether its client is still there


class MetricsNamespace(Namespace):
    def __init__(self, fanout: Fanout, durable_log: DurableLog, socketio, tokens: ViewerTokens | None = None):
        super().__init__(NAMESPACE)
        self.fanout = fanout
        self.window = LogWindow(durable_log)  # every catch-up's reads, shared
        self.sio = socketio
        self.tokens = tokens
        self.viewers: dict[str, Viewer] = {}  # sid -> its token's grant (tokens on)
        self.subscriptions: dict[str, Subscription] = {}  # sid -> its current subscription
        self.resuming: set[str] = set()  # sids catching up: they join their room when done
        fanout.register(Subscription())

    def on_connect(self, auth=None):
        auth = auth if isinstance(auth, dict) else {}
        viewer = Viewer(None)
        if self.tokens:
            try:
                viewer = self.tokens.verify(auth.get("token"))
            except TokenError as exc:
                raise ConnectionRefusedError({"code": "unauthorized", "message": str(exc)}) from None
        resume_from = auth.get("resume")
        positions = bool(auth.get("positions")) or resume_from is not None
        try:
            if resume_from is not None:
                resume_from = parse_position(resume_from)
            sub = Subscription.parse({k: auth[k] for k in ("sources", "metrics") if k in auth}, positions=positions)
            sub = sub.within(viewer.sources)
        except (ResumeError, SubscriptionError):
            return False  # refused: connect_error on the client
        self.viewers[request.sid] = viewer
        if viewer.expires_at is not None:
            self.sio.start_background_task(self._expire, request.sid, viewer)
        counters.CLIENTS.inc()
        if resume_from is None:
            with self.fanout.lock:  # not halfway through a delivery (it pauses between clients)
                self._join(request.sid, sub)
        else:
            # After the handshake: packets sent from inside the connect handler would reach the
            # client before it counts itself connected.
            sid = request.sid
            self.resuming.add(sid)
            self.subscriptions[sid] = sub
            self.sio.start_background_task(self._resume, sid, sub, resume_from)

    def on_disconnect(self, reason=None):
        counters.CLIENTS.dec()
        self.subscriptions.pop(request.sid, None)
        self.viewers.pop(request.sid, None)
        self.resuming.discard(request.sid)

    def on_subscribe(self, payload=None):
        current = self.subscriptions.get(request.sid, Subscription())
        try:
            sub = Subscription.parse(payload, positions=current.positions)
            sub = sub.within(self.viewers.get(request.sid, Viewer(None)).sources)
        except SubscriptionError as exc:
            return {"ok": False, "error": {"code": "bad_subscription", "message": str(exc), "field": exc.field}}
        if request.sid in self.resuming:
            self.subscriptions[request.sid] = sub  # joined when the catch-up ends
        else:
            # A delivery pauses between clients, under this lock: a client moved from one room
            # to another meanwhile could get its events twice (both rooms) or not at all (neither).
            with self.fanout.lock:
                self._join(request.sid, sub)
        return {"ok": True, "room": sub.room, "sources": sorted(sub.sources), "metrics": sorted(sub.metrics)}

    def on_resume(self, payload=None):
        """`resume` {"position": "..."}: leave the live stream, catch up from there, rejoin it."""
        try:
            position = parse_position((payload or {}).get("position") if isinstance(payload, dict) else None)
        except ResumeError as exc:
            return {"ok": False, "error": {"code": "bad_position", "message": str(exc), "field": "position"}}
        current = self.subscriptions.get(request.sid, Subscription())
        sub = Subscription(current.only, positions=True)
        self._leave_all(request.sid)
        self.resuming.add(request.sid)
        self.subscriptions[request.sid] = sub
        sent = self._resume(request.sid, sub, position)
        return {"ok": True, "resumed": max(sent, 0), "gap": sent < 0}

    def _expire(self, sid: str, viewer: Viewer) -> None:
        """Disconnect `sid` when its token expires; returns early once it is gone."""
        while self.viewers.get(sid) is viewer:
            left = viewer.expires_at - time.time()
            if left <= 0:
                self.sio.server.disconnect(sid, namespace=NAMESPACE)
                return
            self.sio.sleep(min(left, EXPIRY_CHECK_S))

    def _resume(self, sid: str, sub: Subscription, position: str) -> int:
        def join() -> None:  # the subscription may have changed during the catch-up
            self.resuming.discard(sid)
            if sid in self.subscriptions:
                self._join(sid, self.subscriptions[sid])

        eio_sid = self.fanout.clients.eio_sid_of(sid)
        if eio_sid is None:
            self.resuming.discard(sid)
            return 0
        try:
            return catch_up(self.fanout, self.window, eio_sid, sub, position, join, self.sio.sleep)
        except Exception:
            # A client left marked as resuming would never join its room again and, still
            # connected, would silently get nothing more: disconnect it instead, so it comes
            # back and resumes from its last position.
            log.exception("resume of %s failed; disconnecting it so that it resumes again", sid)
            self.sio.server.disconnect(sid, namespace=NAMESPACE)
            return 0
        finally:
            self.resuming.discard(sid)
            if not self.resuming:  # the crowd has caught up: its window's memory goes
                self.window.release()

    def _join(self, sid: str, sub: Subscription) -> None:
        self._leave_all(sid)
        room = self.fanout.register(sub)
        self.sio.server.enter_room(sid, room, namespace=NAMESPACE)
        self.subscriptions[sid] = sub

    def _leave_all(self, sid: str) -> None:
        for room in self.sio.server.rooms(sid, namespace=NAMESPACE):
            if room != sid:
                self.sio.server.leave_room(sid, room, namespace=NAMESPACE)
