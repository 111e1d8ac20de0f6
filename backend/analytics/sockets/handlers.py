"""Socket.IO handlers: every client starts subscribed to everything; `subscribe` narrows it."""
from __future__ import annotations

from flask import request
from flask_socketio import Namespace, join_room, leave_room, rooms

from analytics import counters
from analytics.sockets.fanout import Fanout
from analytics.sockets.rooms import ALL, Subscription, SubscriptionError


class MetricsNamespace(Namespace):
    def __init__(self, fanout: Fanout):
        super().__init__("/")
        self.fanout = fanout
        fanout.register(Subscription())

    def on_connect(self, auth=None):
        join_room(ALL)
        counters.CLIENTS.inc()

    def on_disconnect(self, reason=None):
        counters.CLIENTS.dec()

    def on_subscribe(self, payload=None):
        try:
            sub = Subscription.parse(payload)
        except SubscriptionError as exc:
            return {"ok": False, "error": {"code": "bad_subscription", "message": str(exc), "field": exc.field}}
        for room in rooms():
            if room != request.sid:
                leave_room(room)
        room = self.fanout.register(sub)
        join_room(room)
        return {"ok": True, "room": room, "sources": sorted(sub.sources), "metrics": sorted(sub.metrics)}
