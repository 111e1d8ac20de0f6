"""The generator's traffic and pacing sent over HTTP: POST /api/events with JSON arrays, one
keep-alive connection, X-API-Key from BENCH_API_KEY when set (the auth cells). Prints the
generator's closing line, so run_generator measures it the same way.

    python bench/http_producer.py --base http://127.0.0.1:PORT --rate 100000 --duration 4 --batch 500
"""
from __future__ import annotations

import argparse
import http.client
import os
import signal
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "backend"))

from generator import batch_size, run  # noqa: E402

from analytics.events.schema import encode  # noqa: E402
from analytics.producer.traffic import Traffic  # noqa: E402


class Poster:
    """Sends one batch per POST; anything but 202 stops the run (the cell then fails loudly)."""

    def __init__(self, base: str, api_key: str | None):
        url = urlparse(base)
        self.conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
        self.headers = {"Content-Type": "application/json", **({"X-API-Key": api_key} if api_key else {})}

    def __call__(self, events: list[dict]) -> None:
        self.conn.request("POST", "/api/events", body=encode(events), headers=self.headers)
        response = self.conn.getresponse()
        body = response.read()
        if response.status != 202:
            raise RuntimeError(f"POST /api/events answered {response.status}: {body[:200]!r}")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base", required=True)
    parser.add_argument("--rate", type=float, required=True)
    parser.add_argument("--duration", type=float, required=True)
    parser.add_argument("--batch", type=int, default=0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    stop = [False]
    signal.signal(signal.SIGTERM, lambda *_: stop.__setitem__(0, True))
    traffic = Traffic(["web", "mobile", "api"], seed=args.seed)
    started = time.monotonic()
    sent = run(Poster(args.base, os.environ.get("BENCH_API_KEY")), traffic, args.rate, args.duration,
               batch_size(args.rate, args.batch), stop)
    elapsed = time.monotonic() - started
    print(f"generator: published {sent} events in {elapsed:.1f}s ({sent / max(elapsed, 1e-9):.0f} ev/s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
