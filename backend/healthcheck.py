"""Container health checks: `python healthcheck.py backend|generator`, exit 0 when healthy.

backend:   GET /api/health answers 200 (Redis up, listener subscribed).
generator: the durable log got an entry within a few of the generator's send intervals, read
           with the container's own Redis settings (its ACL user may XREVRANGE the log for this).
"""
from __future__ import annotations

import os
import sys
import time
import urllib.request

from analytics.settings import Settings


def load_settings() -> Settings:
    return Settings.from_env()


def backend() -> int:
    port = os.environ.get("PORT", "5000")
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=2) as res:
        return 0 if res.status == 200 else 1


def generator() -> int:
    from analytics import redis_tls

    settings = load_settings()
    wait_s = min(10.0, max(2.0, 3.0 / settings.GENERATOR_RATE))
    insecure = redis_tls.insecure_warning(settings)
    if insecure:  # the container's health log shows it beside the service's own
        print(f"WARNING {insecure}", file=sys.stderr)
    client = redis_tls.connect(settings, socket_connect_timeout=2, socket_timeout=5)
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        newest = client.xrevrange(settings.STREAM_KEY, count=1)
        # An entry's id starts with Redis's clock in ms when it was added: recent means sending.
        if newest and time.time() * 1000 - int(newest[0][0].split(b"-")[0]) < wait_s * 1000:
            return 0
        time.sleep(0.2)
    print(f"no entry in {settings.STREAM_KEY!r} for {wait_s:.0f} s", file=sys.stderr)
    return 1


if __name__ == "__main__":
    checks = {"backend": backend, "generator": generator}
    if len(sys.argv) != 2 or sys.argv[1] not in checks:
        sys.exit(f"usage: {sys.argv[0]} {'|'.join(checks)}")
    try:
        sys.exit(checks[sys.argv[1]]())
    except Exception as exc:  # any failure is "unhealthy", said in one line
        sys.exit(f"unhealthy: {type(exc).__name__}: {exc}")
