"""GET /api/health: is Redis up, is every stream task working, what came in.

"ok" only while Redis answers (checked in the background: api/redis_status.py) AND the listener
is subscribed, the log reader reading and the recorder recording: a replica that has Redis back
but not yet its stream says "degraded"."""
from __future__ import annotations

import time

from flask import Blueprint, current_app, jsonify

from analytics import counters

bp = Blueprint("health", __name__)
STARTED = time.time()


@bp.get("/api/health")
def health():
    runtime = current_app.extensions["analytics"]
    checked = runtime.redis_status.current()  # no Redis round trip while the checker runs
    redis_state, series = ("up" if checked.up else "down"), checked.series
    tasks = {
        "listener": runtime.listener.state if runtime.listener else "off",
        "log_reader": runtime.reader.state if runtime.reader else "off",
        "recorder": runtime.recorder.state if runtime.recorder else "off",
    }
    working = all(state in ("subscribed", "reading", "recording", "off") for state in tasks.values())
    ok = redis_state == "up" and working
    body = {
        "status": "ok" if ok else "degraded",
        "redis": redis_state,
        **tasks,
        "listener_reconnects": runtime.listener.reconnects if runtime.listener else 0,
        "uptime_s": round(time.time() - STARTED, 1),
        # The cache's size, so a client knows the largest /recent limit without a failed try.
        "recent_max": runtime.settings.RECENT_MAX,
        "async_mode": runtime.settings.ASYNC_MODE,
        # Distinct (source, metric) series admitted, and the cap past which new ones are
        # rejected (reason too_many_series in the rejected counts below).
        "series": {"count": series, "max": runtime.settings.MAX_SERIES},
        "events": {
            "accepted": counters.accepted("channel"),
            "rejected": counters.rejected_by_reason("channel"),
            "accepted_http": counters.accepted("http"),
            "rejected_http": counters.rejected_by_reason("http"),
            "recorded": counters.recorded(),
            "log_lag": runtime.recorder.lag if runtime.recorder else 0,
            "bridge": bool(runtime.bridge_lease and runtime.bridge_lease.last_known),
        },
    }
    return jsonify(body), 200 if ok else 503
