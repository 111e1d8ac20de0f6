"""POST /api/events: apps send their own events over HTTP.

The body is validated with the one event schema, ids and timestamps are filled in, and the
accepted events are appended to the durable log before the answer: a 202 means they are in
the log, and will be recorded and delivered once whatever happens to this replica.
"""
from __future__ import annotations

from flask import Blueprint, current_app, g, jsonify, request

from analytics import counters
from analytics.api.errors import ApiError
from analytics.events.schema import parse_message

bp = Blueprint("events", __name__)


@bp.post("/api/events")
def ingest():
    runtime = current_app.extensions["analytics"]
    if not request.mimetype == "application/json":
        raise ApiError(415, "unsupported_media_type", "send events as application/json")
    result = parse_message(request.get_data(cache=False))
    producer = g.get("producer")
    if producer is not None and producer.source is not None:  # a key bound to one source writes only that one
        allowed = [e for e in result.events if e["source"] == producer.source]
        if len(allowed) < len(result.events):
            result.rejected["source_not_allowed"] += len(result.events) - len(allowed)
            result.first_error = result.first_error or f"this key may only send events of source {producer.source!r}"
            result.events = allowed
    for reason, n in result.rejected.items():
        counters.EVENTS_REJECTED.labels("http", reason).inc(n)
    if not result.events:
        if not result.rejected:
            raise ApiError(400, "no_events", "the body holds no events", "body")
        reason = next(iter(result.rejected))
        status = {"too_large": 413, "source_not_allowed": 403}.get(reason, 400)
        raise ApiError(status, reason, result.first_error or reason, "body")
    position = runtime.log.append(result.events)
    counters.EVENTS_ACCEPTED.labels("http").inc(len(result.events))
    return jsonify({
        "accepted": len(result.events),
        "rejected": dict(result.rejected),
        "first_error": result.first_error,
        "ids": [e["id"] for e in result.events],
        "position": position,
    }), 202
