"""Entries in the durable log that the product did not write: a process with Redis access that
XADDs garbage, an array of bad events or an entry without the event field must not stop the live
stream or the recorder (a poison entry read again and again), and is counted."""
from __future__ import annotations

import json
import time
import urllib.request

import pytest
import redis

from devstack.processes import backend, get_json, redis_server
from tests.test_end_to_end import Collector

pytestmark = pytest.mark.e2e

VALID_FOREIGN = {"e": b'{"metric": "orders", "value": 1}'}  # one event object, as on the channel
FOREIGN_ENTRIES = [
    {"e": b"not json"},
    {"e": b"[1, 2, 3]"},
    {"e": b'[{"metric": "orders", "value": "abc", "id": "bad-1", "ts": 1, "source": "web", "tags": {}}]'},
    {"e": b'[{"metric": "orders"}]'},
    {"e": b'[{"id": "nan-1", "ts": 1, "source": "web", "metric": "orders", "value": NaN, "tags": {}}]'},
    {"other": b"field"},
]


def post(base: str, events: list[dict]) -> int:
    request = urllib.request.Request(f"{base}/api/events", data=json.dumps(events).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status


def wait_for(check, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    return check()


def test_foreign_log_entries_are_skipped_and_counted_and_the_stream_goes_on():
    with redis_server() as (redis_url, _port, _proc), backend(redis_url, RECENT_MAX=1000) as base:
        watcher = Collector(base)
        try:
            client = redis.Redis.from_url(redis_url)
            for fields in FOREIGN_ENTRIES:
                client.xadd("metrics:log", fields)
            valid_position = client.xadd("metrics:log", VALID_FOREIGN).decode()
            # Its defaults come from the entry, so every reader fills the same id and ts.
            foreign_id = f"log-{valid_position}-0"
            good = [{"id": f"good-{i}", "metric": "orders", "value": float(i), "source": "web"} for i in range(5)]
            assert post(base, good) == 202
            expected = {foreign_id} | {e["id"] for e in good}
            received = wait_for(lambda: [e for e in watcher.events if e["id"].startswith("good-")] if len(
                [e for e in watcher.events if e["id"].startswith("good-")]) == 5 else None)
            assert [e["id"] for e in received or []] == [e["id"] for e in good]
            # No client ever sees an event that the schema refuses.
            assert {e["id"] for e in watcher.events} == expected
            live = next(e for e in watcher.events if e["id"] == foreign_id)
            assert live["ts"] == float(valid_position.split("-")[0]) and live["source"] == "default"

            def recorded():
                body = get_json(f"{base}/api/metrics/recent?limit=1000")
                return body if body["count"] == len(expected) else None
            body = wait_for(recorded)
            assert body and {e["id"] for e in body["events"]} == expected
            assert next(e for e in body["events"] if e["id"] == foreign_id) == live
            health = wait_for(lambda: (h := get_json(f"{base}/api/health"))["events"].get("log_lag") == 0 and h)
            assert health, "the recorder is stuck behind a foreign entry"
            aggregate = get_json(f"{base}/api/metrics/aggregate?window=86400")
            assert aggregate["metrics"]["orders"]["count"] == len(expected)
            with urllib.request.urlopen(f"{base}/metrics", timeout=10) as response:
                text = response.read().decode()
            rejected = {line.split('reason="')[1].split('"')[0]: float(line.rsplit(" ", 1)[1])
                        for line in text.splitlines()
                        if line.startswith("analytics_events_rejected_total{") and 'path="log"' in line}
            # Counted once each (by the log reader), by the channel's reasons.
            assert rejected == {"invalid_json": 1, "not_an_object": 3, "bad_value": 2, "missing_value": 1,
                                "bad_log_entry": 1}
        finally:
            watcher.client.disconnect()


def test_foreign_log_entries_are_held_to_the_series_cap_alike_everywhere():
    with redis_server() as (redis_url, _port, _proc), backend(redis_url, MAX_SERIES=3) as base:
        watcher = Collector(base)
        try:
            assert post(base, [{"id": f"known-{m}", "metric": m, "value": 1.0, "source": "web"} for m in "ab"]) == 202
            foreign = [{"id": f"new-{m}", "ts": 1.0e12, "source": "web", "metric": m, "value": 2.0, "tags": {}}
                       for m in "cde"]
            redis.Redis.from_url(redis_url).xadd("metrics:log", {"e": json.dumps(foreign).encode()})
            expected = {"known-a", "known-b", "new-c"}  # the third series fits; d and e are past the cap

            def recorded():
                body = get_json(f"{base}/api/metrics/recent?limit=100")
                return body if body["count"] >= len(expected) else None
            body = wait_for(recorded)
            assert body and {e["id"] for e in body["events"]} == expected
            assert wait_for(lambda: len(watcher.events) >= len(expected))
            assert {e["id"] for e in watcher.events} == expected
            # Health reads the count from its background Redis check (<= 0.25 s old).
            health = wait_for(lambda: (h := get_json(f"{base}/api/health"))["series"]["count"] == 3 and h)
            assert health and health["series"] == {"count": 3, "max": 3}
            with urllib.request.urlopen(f"{base}/metrics", timeout=10) as response:
                text = response.read().decode()
            assert 'analytics_events_rejected_total{path="log",reason="too_many_series"} 2.0' in text
        finally:
            watcher.client.disconnect()
