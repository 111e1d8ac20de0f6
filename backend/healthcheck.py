"""Container health checks: `python healthcheck.py backend|generator`, exit 0 when healthy.

backend:   GET /api/health answers 200 (Redis up, listener subscribed).
generator: an event arrives on METRICS_CHANNEL within a few of the generator's publish intervals,
           read with the container's own Redis settings (its ACL user may SUBSCRIBE for this).
"""
from __future__ import annotations

import os
import sys
import time
import urllib.request

from analytics.settings import Settings


def load_settings() -> Settings:
    # from_env() today; a pydantic-settings class reads the environment in its constructor.
    return getattr(Settings, "from_env", Settings)()


def backend() -> int:
    port = os.environ.get("PORT", "5000")
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=2) as res:
        return 0 if res.status == 200 else 1


def generator() -> int:
    import redis

    settings = load_settings()
    wait_s = min(10.0, max(2.0, 3.0 / settings.GENERATOR_RATE))
    client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2, socket_timeout=wait_s + 1)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(settings.METRICS_CHANNEL)
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if pubsub.get_message(timeout=deadline - time.monotonic()):
            return 0
    print(f"no event on {settings.METRICS_CHANNEL!r} within {wait_s:.0f} s", file=sys.stderr)
    return 1


if __name__ == "__main__":
    checks = {"backend": backend, "generator": generator}
    if len(sys.argv) != 2 or sys.argv[1] not in checks:
        sys.exit(f"usage: {sys.argv[0]} {'|'.join(checks)}")
    try:
        sys.exit(checks[sys.argv[1]]())
    except Exception as exc:  # any failure is "unhealthy", said in one line
        sys.exit(f"unhealthy: {type(exc).__name__}: {exc}")
