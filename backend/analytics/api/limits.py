"""Rate limits, stored in the app's Redis so every replica counts against the same budgets.

One budget per client address (RATE_LIMIT) shared by every rate-limited endpoint; with producer
keys on, POST /api/events counts against its key's own budget (INGEST_RATE_LIMIT) instead. A 429
carries Retry-After and the X-RateLimit-* headers."""
from __future__ import annotations

from flask import Blueprint, Flask, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

from analytics.access.guard import INGEST_ENDPOINT
from analytics.access.keys import digest_of
from analytics.settings import Settings

KEY_PREFIX = "limits"


def install_limits(app: Flask, settings: Settings, limited: list[Blueprint], ingest: Blueprint,
                   keys_on: bool) -> Limiter:
    # Read by init_app: set before it, or the headers are never sent.
    app.config["RATELIMIT_HEADERS_ENABLED"] = True
    limiter = Limiter(key_func=get_remote_address, storage_uri=settings.redis_connection_url,
                      storage_options={"socket_connect_timeout": 2, "socket_timeout": 5},
                      key_prefix=KEY_PREFIX, strategy="fixed-window")
    limiter.init_app(app)

    def keyed_ingest() -> bool:
        return keys_on and request.endpoint == INGEST_ENDPOINT

    def producer() -> str:
        key = request.headers.get("X-API-Key")
        # The key's digest (never the key) names its budget; no key: the client's address.
        return f"key:{digest_of(key)}" if key else f"addr:{get_remote_address()}"

    client_budget = limiter.shared_limit(settings.RATE_LIMIT, scope="client", exempt_when=keyed_ingest)
    for bp in limited:
        client_budget(bp)
    limiter.limit(settings.INGEST_RATE_LIMIT, key_func=producer, exempt_when=lambda: not keys_on)(ingest)
    return limiter
