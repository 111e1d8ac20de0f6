"""REST latency probe: a small sequential HTTP client, run as its own process beside a load.

    python bench/rest_probe.py --base http://127.0.0.1:PORT --requests 300 --seconds 20 --out probe.json

Takes turns at GET /api/metrics/aggregate?window=3600, /api/metrics/recent?limit=200 and
/api/health over one keep-alive connection (as a dashboard's browser would). /api/health answers
from a Redis check made in the background: its latency is the floor any request pays under the
same load (the event loop's and the machine's share), so the other two can be read against it. Spreads the requests over
`--seconds` so it samples the whole run rather than its first second. Writes p50/p90/p99/max
per endpoint in ms.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import sys
import time
from urllib.parse import urlparse

PATHS = {"aggregate_3600": "/api/metrics/aggregate?window=3600", "recent_200": "/api/metrics/recent?limit=200",
         "health": "/api/health"}


def percentile(sorted_values: list[float], q: float) -> float | None:
    if not sorted_values:
        return None
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def server_timing(header: str | None) -> float | None:
    """The `app;dur=<ms>` entry of a Server-Timing header, if any."""
    for entry in (header or "").split(","):
        name, _, rest = entry.strip().partition(";")
        if name == "app" and rest.startswith("dur="):
            try:
                return float(rest[4:])
            except ValueError:
                return None
    return None


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base", required=True)
    parser.add_argument("--requests", type=int, default=300, help="requests per endpoint")
    parser.add_argument("--seconds", type=float, default=20.0, help="spread the requests over this long")
    parser.add_argument("--out", required=True)
    parser.add_argument("--paths", default=",".join(PATHS),
                        help="which of the endpoints to take turns at (the floor server answers any path alike)")
    args = parser.parse_args()
    names = [name for name in args.paths.split(",") if name]
    if not names or any(name not in PATHS for name in names):
        parser.error(f"--paths: comma-separated names out of {', '.join(PATHS)}")
    url = urlparse(args.base)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    token = os.environ.get("BENCH_TOKEN")  # the auth cells: a viewer token, as a dashboard sends it
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    timings: dict[str, list[float]] = {name: [] for name in names}
    in_app: dict[str, list[float]] = {name: [] for name in names}  # the server's Server-Timing
    errors: dict[str, int] = {name: 0 for name in names}
    pause = max(0.0, args.seconds / (len(names) * args.requests))
    deadline = time.monotonic() + args.seconds * 3 + 30  # bounded even if the server crawls
    for i in range(len(names) * args.requests):
        if time.monotonic() > deadline:
            break
        name = names[i % len(names)]
        started = time.perf_counter()
        try:
            conn.request("GET", PATHS[name], headers=headers)
            response = conn.getresponse()
            body = response.read()
            ok = response.status == 200 and body[:1] == b"{"
            app_ms = server_timing(response.getheader("Server-Timing"))
        except (OSError, http.client.HTTPException):
            ok = False
            conn.close()
            conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
        elapsed_ms = (time.perf_counter() - started) * 1000
        if ok:
            timings[name].append(elapsed_ms)
            if app_ms is not None:
                in_app[name].append(app_ms)
        else:
            errors[name] += 1
        time.sleep(pause)
    out = {}
    for name, values in timings.items():
        values.sort()
        out[name] = {"n": len(values), "errors": errors[name], "p50_ms": percentile(values, 0.5),
                     "p90_ms": percentile(values, 0.9), "p99_ms": percentile(values, 0.99),
                     "max_ms": values[-1] if values else None}
        app = sorted(in_app[name])
        out[name].update(app_p50_ms=percentile(app, 0.5), app_p99_ms=percentile(app, 0.99))
    with open(args.out, "w") as f:
        json.dump(out, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
