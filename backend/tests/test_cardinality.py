"""Cardinality: a flood of fresh metric/source names cannot grow what a read costs. New series
past MAX_SERIES are rejected at ingest (reason too_many_series, counted, shown in /api/health),
shared by every replica through Redis; aggregate answers name at most TOP_NAMES metrics and
sources, the busiest, with `truncated` saying some were left out."""
from __future__ import annotations

import pytest

from analytics.cache.window import TOP_NAMES
from analytics.factory import create_app
from analytics.stream.listener import Listener
from tests.helpers import event, write_events


@pytest.fixture
def capped(settings):
    """Two replicas (apps) sharing one Redis, with MAX_SERIES=10."""
    capped_settings = settings.model_copy(update={"MAX_SERIES": 10})
    return [create_app(capped_settings, start_stream=False) for _ in range(2)]


def fresh_events(first: int, n: int, source: str = "web") -> list[dict]:
    return [{"metric": f"m{i}", "value": 1.0, "source": source} for i in range(first, first + n)]


def test_new_series_past_the_cap_are_rejected_at_http_ingest_and_counted(capped):
    one, other = (app.test_client() for app in capped)
    response = one.post("/api/events", json=fresh_events(0, 8))
    assert response.status_code == 202 and response.json["accepted"] == 8
    # The other replica sees the same series set: 2 more fit, then no new series.
    response = other.post("/api/events", json=fresh_events(8, 5) + fresh_events(0, 3))
    assert response.status_code == 202
    assert response.json["accepted"] == 5 and response.json["rejected"] == {"too_many_series": 3}
    response = one.post("/api/events", json=fresh_events(100, 2))
    assert response.status_code == 400 and response.json["error"]["code"] == "too_many_series"
    # Known series still go through.
    assert one.post("/api/events", json=fresh_events(0, 10)).json["accepted"] == 10
    health = one.get("/api/health").json
    assert health["series"] == {"count": 10, "max": 10}
    assert health["events"]["rejected_http"]["too_many_series"] >= 5
    # Nothing refused reached the log.
    runtime = capped[0].extensions["analytics"]
    logged = [e["metric"] for entry in runtime.log.range_after("0-0", "+", 100) for e in entry.events]
    assert set(logged) == {f"m{i}" for i in range(10)}


def test_the_listener_applies_the_same_cap_before_the_log(capped):
    import orjson

    runtime = capped[0].extensions["analytics"]
    logged = []
    listener = Listener(runtime.redis, "unused", [lambda batches: logged.extend(e for b in batches for e in b)],
                        sleep=lambda _s: None,
                        admit=lambda events: runtime.series.admit(events, "channel"))
    assert listener.handle(orjson.dumps(fresh_events(0, 15, source="api"))) == 10
    assert {e["metric"] for e in logged} == {f"m{i}" for i in range(10)}
    assert capped[1].test_client().get("/api/health").json["events"]["rejected"]["too_many_series"] >= 5


def test_an_aggregate_names_at_most_the_busiest_metrics_and_sources(client, runtime):
    many = TOP_NAMES + 50
    events = [event(f"metric{i}", 1.0, f"source{i}") for i in range(many)]
    busy = [event("busy", 2.0, "loud") for _ in range(5)]
    write_events(runtime, events + busy)
    body = client.get("/api/metrics/aggregate?window=60").json
    assert body["truncated"] is True and body["total"]["count"] == many + 5
    assert len(body["metrics"]) == TOP_NAMES and len(body["sources"]) == TOP_NAMES
    assert body["metrics"]["busy"]["count"] == 5 and body["sources"]["loud"]["count"] == 5
    assert list(body["metrics"]) == sorted(body["metrics"])
    small = client.get("/api/metrics/aggregate?window=60&metric=busy").json
    assert small["truncated"] is False and list(small["metrics"]) == ["busy"]


def test_series_idle_past_the_aggregates_retention_free_their_place(runtime):
    from analytics.cache.aggregates import MINUTE_TTL
    from analytics.events.series import SeriesCap

    now = [1_800_000_000.0]
    cap = SeriesCap(runtime.redis, "series-test", 3, clock=lambda: now[0])
    old = [event(f"old{i}") for i in range(3)]
    assert cap.admit(old, "http") == old
    assert cap.admit([event("new")], "http") == []
    now[0] += MINUTE_TTL - 1  # old0 seen again: it stays; the others' buckets are gone
    assert cap.admit(old[:1], "http") == old[:1]
    now[0] += 2
    assert len(cap.admit([event("new"), event("newer")], "http")) == 2
    assert cap.admit([event("newest")], "http") == []
