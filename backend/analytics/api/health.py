"""GET /api/health: is Redis up, is the listener subscribed, what came in."""
from __future__ import annotations

import time

import redis
from flask import Blueprint, current_app, jsonify

from analytics import counters

bp = Blueprint("health", __name__)
STARTED = time.time()


@bp.get("/api/health")
def health():
    runtime = current_app.extensions["analytics"]
    try:
        runtime.redis.ping()
        redis_state = "up"
    except (redis.RedisError, OSError):
        redis_state = "down"
    body = {
        "status": "ok" if redis_state == "up" else "degraded",
        "redis": redis_state,
        "listener": runtime.listener.state if runtime.listener else "off",
        "listener_reconnects": runtime.listener.reconnects if runtime.listener else 0,
        "uptime_s": round(time.time() - STARTED, 1),
        # The cache's size, so a client knows the largest /recent limit without a failed try.
        "recent_max": runtime.settings.RECENT_MAX,
        "async_mode": runtime.settings.ASYNC_MODE,
        "events": {
            "accepted": counters.accepted("channel"),
            "rejected": counters.rejected_by_reason("channel"),
            "cache_pending": runtime.cache_writer.pending() if runtime.cache_writer else 0,
            "cache_writer": bool(runtime.cache_writer and runtime.cache_writer.lease
                                 and runtime.cache_writer.lease.last_known),
        },
    }
    return jsonify(body), 200 if redis_state == "up" else 503
