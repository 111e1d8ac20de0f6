"""Rate limits, counted in the app's Redis so every replica counts against the same budgets:
each replica's hits are added there every RATE_LIMIT_SYNC_MS (limit_counts.py), or before every
answer with RATE_LIMIT_SYNC_MS=0.

One budget per client address (RATE_LIMIT) shared by every rate-limited endpoint; with producer
keys on, POST /api/events with a valid key counts against that key's own budget
(INGEST_RATE_LIMIT) instead (without a valid key, against the client's: guessing keys is not free). A 429
carries Retry-After and the X-RateLimit-* headers; other answers do not: those headers need the
window's stats, two more Redis round trips that every answer waited on (a read of /recent made
four round trips instead of two, and its p99 under ingest followed)."""
from __future__ import annotations

import time

from flask import Blueprint, Flask, Response, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

from analytics.access.guard import INGEST_ENDPOINT, producer
from analytics.access.keys import ProducerKeys
from analytics.api import limit_counts
from analytics.settings import Settings


def install_limits(app: Flask, settings: Settings, limited: list[Blueprint], ingest: Blueprint,
                   keys: ProducerKeys, pool) -> Limiter:
    """`pool`: the app's Redis connection pool (URL, password, TLS and its bound), shared."""
    # Read by init_app: Flask-Limiter's own headers go on every answer (limit_headers below: 429 only).
    app.config["RATELIMIT_HEADERS_ENABLED"] = False
    # Keys under AGG_PREFIX, where the Redis ACL (deploy/redis/acl.conf) lets the backend write.
    synced = settings.RATE_LIMIT_SYNC_MS > 0
    storage_uri = f"{limit_counts.SCHEME}://" if synced else settings.redis_connection_url  # the pool connects
    limiter = Limiter(key_func=get_remote_address, storage_uri=storage_uri,
                      storage_options={"connection_pool": pool, "key_prefix": f"{settings.AGG_PREFIX}:limits"},
                      strategy="fixed-window")
    limiter.init_app(app)

    @app.after_request
    def limit_headers(response: Response) -> Response:
        current = limiter.current_limit if response.status_code == 429 else None
        if current is not None:
            reset_at = current.reset_at
            response.headers["X-RateLimit-Limit"] = str(current.limit.amount)
            response.headers["X-RateLimit-Remaining"] = str(current.remaining)
            response.headers["X-RateLimit-Reset"] = str(reset_at)
            response.headers["Retry-After"] = str(max(1, int(reset_at - time.time())))
        return response

    def keyed_ingest() -> bool:
        return bool(keys) and request.endpoint == INGEST_ENDPOINT and producer(keys) is not None

    def key_budget() -> str:  # the key's digest (never the key) names its budget
        return f"key:{producer(keys).digest}"

    client_budget = limiter.shared_limit(settings.RATE_LIMIT, scope="client", exempt_when=keyed_ingest)
    for bp in limited:
        client_budget(bp)
    limiter.limit(settings.INGEST_RATE_LIMIT, key_func=key_budget, exempt_when=lambda: not keyed_ingest())(ingest)
    return limiter
