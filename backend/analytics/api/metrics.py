"""GET /api/metrics/recent and /api/metrics/aggregate: read Redis, so replicas agree (/recent from
the replica's mirror of the log's newest events when it covers the request: cache/recent_mirror.py)."""
from __future__ import annotations

from flask import Blueprint, Response, current_app

from analytics.access.guard import readable
from analytics.api.params import filter_params, int_param
from analytics.cache.aggregates import MAX_WINDOW
from analytics.events.schema import encode

bp = Blueprint("metrics", __name__)


@bp.get("/api/metrics/recent")
def recent():
    runtime = current_app.extensions["analytics"]
    limit = int_param("limit", 100, 1, runtime.settings.RECENT_MAX)
    events = runtime.recent.newest(limit, readable(filter_params()))
    # The cache holds encoded events: splice them, no decode/encode round trip.
    body = b'{"count":%d,"events":[' % len(events) + b",".join(events) + b"]}"
    return Response(body, mimetype="application/json")


@bp.get("/api/metrics/aggregate")
def aggregate():
    runtime = current_app.extensions["analytics"]
    window = int_param("window", 60, 1, MAX_WINDOW)
    body = runtime.aggregates.window(window, readable(filter_params()))
    return Response(encode(body), mimetype="application/json")
