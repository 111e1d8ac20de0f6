"""Socket.IO handlers: every client starts subscribed to everything; `subscribe` narrows it.

A client that connects with `auth: {"resume": "<position>"}` (or sends `resume`) is sent what it
missed since that log position, then continues live; with `auth: {"positions": true}` it only
asks for positions. Either way its `metrics` packets carry `{"position": ...}` as a second
argument (opt-in, so a one-argument handler of an older client keeps working).
"""
from __future__ import annotations

from flask import request
from flask_socketio import Namespace

from analytics import counters
from analytics.sockets.fanout import Fanout
from analytics.sockets.resume import ResumeError, catch_up, parse_position
from analytics.sockets.rooms import Subscription, SubscriptionError
from analytics.stream.durable_log import DurableLog

NAMESPACE = "/"


class MetricsNamespace(Namespace):
    def __init__(self, fanout: Fanout, durable_log: DurableLog, socketio):
        super().__init__(NAMESPACE)
        self.fanout = fanout
        self.log = durable_log
        self.sio = socketio
        self.subscriptions: dict[str, Subscription] = {}  # sid -> its current subscription
        fanout.register(Subscription())

    def on_connect(self, auth=None):
        auth = auth if isinstance(auth, dict) else {}
        resume_from = auth.get("resume")
        positions = bool(auth.get("positions")) or resume_from is not None
        if resume_from is not None:
            try:
                resume_from = parse_position(resume_from)
            except ResumeError:
                return False  # refused: connect_error on the client
        sub = Subscription(positions=positions)
        counters.CLIENTS.inc()
        if resume_from is None:
            self._join(request.sid, sub)
        else:
            # After the handshake: packets sent from inside the connect handler would reach the
            # client before it counts itself connected.
            sid = request.sid
            self.sio.start_background_task(self._resume, sid, sub, resume_from)

    def on_disconnect(self, reason=None):
        counters.CLIENTS.dec()
        self.subscriptions.pop(request.sid, None)

    def on_subscribe(self, payload=None):
        current = self.subscriptions.get(request.sid, Subscription())
        try:
            sub = Subscription.parse(payload, positions=current.positions)
        except SubscriptionError as exc:
            return {"ok": False, "error": {"code": "bad_subscription", "message": str(exc), "field": exc.field}}
        self._join(request.sid, sub)
        return {"ok": True, "room": sub.room, "sources": sorted(sub.sources), "metrics": sorted(sub.metrics)}

    def on_resume(self, payload=None):
        """`resume` {"position": "..."}: leave the live stream, catch up from there, rejoin it."""
        try:
            position = parse_position((payload or {}).get("position") if isinstance(payload, dict) else None)
        except ResumeError as exc:
            return {"ok": False, "error": {"code": "bad_position", "message": str(exc), "field": "position"}}
        current = self.subscriptions.get(request.sid, Subscription())
        sub = Subscription(current.sources, current.metrics, positions=True)
        self._leave_all(request.sid)
        sent = self._resume(request.sid, sub, position)
        return {"ok": True, "resumed": max(sent, 0), "gap": sent < 0}

    def _resume(self, sid: str, sub: Subscription, position: str) -> int:
        eio_sid = self.sio.server.manager.eio_sid_from_sid(sid, NAMESPACE)
        if eio_sid is None:
            return 0
        return catch_up(self.fanout, self.log, eio_sid, sub, position, lambda: self._join(sid, sub), self.sio.sleep)

    def _join(self, sid: str, sub: Subscription) -> None:
        self._leave_all(sid)
        room = self.fanout.register(sub)
        self.sio.server.enter_room(sid, room, namespace=NAMESPACE)
        self.subscriptions[sid] = sub

    def _leave_all(self, sid: str) -> None:
        for room in self.sio.server.rooms(sid, namespace=NAMESPACE):
            if room != sid:
                self.sio.server.leave_room(sid, room, namespace=NAMESPACE)
