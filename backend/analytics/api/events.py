"""POST /api/events: apps send their own events over HTTP.

The body is validated with the one event schema, ids and timestamps are filled in, and the
accepted events are appended to the durable log before the answer: a 202 means they are in
the log, and will be recorded and delivered once whatever happens to this replica.
"""
from __future__ import annotations

from flask import Blueprint, current_app, g, jsonify, request

from analytics import counters
from analytics.api.body import BodyError, read_body
from analytics.api.errors import ApiError, error_response
from analytics.events.schema import parse_message
from analytics.events.series import REASON as TOO_MANY_SERIES

bp = Blueprint("events", __name__)


@bp.post("/api/events")
def ingest():
    runtime = current_app.extensions["analytics"]
    if not request.mimetype == "application/json":
        raise ApiError(415, "unsupported_media_type", "send events as application/json")
    try:
        body = read_body(request.environ, runtime.settings.INGEST_MAX_BYTES)
    except BodyError as exc:
        if exc.status == 413:
            counters.EVENTS_REJECTED.labels("http", "too_large").inc()
        return _refused_unread(exc)
    result = parse_message(body)
    producer = g.get("producer")
    if producer is not None and producer.source is not None:  # a key bound to one source writes only that one
        allowed = [e for e in result.events if e["source"] == producer.source]
        if len(allowed) < len(result.events):
            result.rejected["source_not_allowed"] += len(result.events) - len(allowed)
            result.first_error = result.first_error or f"this key may only send events of source {producer.source!r}"
            result.events = allowed
    for reason, n in result.rejected.items():
        counters.EVENTS_REJECTED.labels("http", reason).inc(n)
    admitted = runtime.series.admit(result.events, "http")
    if len(admitted) < len(result.events):
        result.rejected[TOO_MANY_SERIES] += len(result.events) - len(admitted)
        result.first_error = result.first_error or f"over MAX_SERIES={runtime.settings.MAX_SERIES} distinct series"
        result.events = admitted
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


def _refused_unread(exc: BodyError):
    """The error, on a connection closed after it: the rest of the body is not read. gevent's
    server would otherwise read and discard it to reuse the connection, however long it is (a
    chunked body has no end until the client stops); its own flag for an input it cannot resync
    on makes it skip that, and the Connection: close makes it close the socket."""
    stream = request.environ.get("wsgi.input")
    if hasattr(stream, "_chunked_input_error"):
        stream._chunked_input_error = True
    response, status = error_response(exc.status, exc.code, exc.message, exc.field)
    response.headers["Connection"] = "close"
    return response, status
