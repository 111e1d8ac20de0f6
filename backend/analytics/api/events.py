"""POST /api/events: apps send their own events over HTTP.

The body is validated with the one event schema, ids and timestamps are filled in, and the
accepted events are appended to the durable log before the answer: a 202 means they are in
the log, and will be recorded and delivered once whatever happens to this replica.
"""
from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request

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
    for reason, n in result.rejected.items():
        counters.EVENTS_REJECTED.labels("http", reason).inc(n)
    if not result.events:
        if not result.rejected:
            raise ApiError(400, "no_events", "the body holds no events", "body")
        reason = next(iter(result.rejected))
        raise ApiError(413 if reason == "too_large" else 400, reason, result.first_error or reason, "body")
    position = runtime.log.append(result.events)
    counters.EVENTS_ACCEPTED.labels("http").inc(len(result.events))
    return jsonify({
        "accepted": len(result.events),
        "rejected": dict(result.rejected),
        "first_error": result.first_error,
        "ids": [e["id"] for e in result.events],
        "position": position,
    }), 202
