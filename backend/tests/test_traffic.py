"""The simulated producer's traffic (analytics.producer.traffic): drawn a batch at a time with
numpy, it must still look like the mix it promises, event by event."""
from __future__ import annotations

import math
from collections import Counter

from analytics.events.schema import encode, parse_message
from analytics.producer.traffic import METRIC_MIX, ORDER_STATUS, Incident, Traffic

SOURCES = ["web", "mobile", "api"]
NOW_MS = 1_800_000_000_000.0


def test_events_pass_the_schema_with_unique_ids_in_sequence():
    traffic = Traffic(SOURCES, seed=3)
    first, second = traffic.events(700, NOW_MS), traffic.events(1, NOW_MS)
    events = first + second
    result = parse_message(encode(events))
    assert result.rejected == {} and result.events == events
    assert [int(e["id"].rsplit("-", 1)[1]) for e in events] == list(range(1, 702))
    assert all(e["id"].startswith(e["source"] + "-") and e["ts"] == NOW_MS for e in events)


def test_the_mix_of_metrics_sources_and_tags_follows_the_weights():
    events = Traffic(SOURCES, seed=4).events(60_000, NOW_MS)
    metrics = Counter(e["metric"] for e in events)
    total = sum(METRIC_MIX.values())
    for metric, weight in METRIC_MIX.items():
        assert abs(metrics[metric] / len(events) - weight / total) < 0.01, metric
    sources = Counter(e["source"] for e in events)
    assert abs(sources["web"] / len(events) - 0.5) < 0.01 and abs(sources["api"] / len(events) - 0.15) < 0.01
    statuses = Counter(e["tags"]["status"] for e in events if e["metric"] == "orders")
    for status, weight in ORDER_STATUS:
        assert abs(statuses[status] / metrics["orders"] - weight / 100) < 0.02, status
    assert {e["tags"]["page"] for e in events if e["metric"] == "page_views"} >= {"/", "/checkout", "/docs"}
    assert all(e["tags"] == {} for e in events if e["metric"] in ("latency_ms", "active_users"))


def test_values_have_the_type_and_scale_of_their_metric():
    events = Traffic(SOURCES, seed=5).events(20_000, NOW_MS)
    by_metric: dict[str, list] = {}
    for e in events:
        by_metric.setdefault(e["metric"], []).append(e["value"])
    for metric in ("page_views", "signups", "errors"):
        assert set(by_metric[metric]) == {1} and all(type(v) is int for v in by_metric[metric])
    assert all(type(v) is int and v > 0 for v in by_metric["active_users"])
    assert all(type(v) is float and v > 0 and round(v, 2) == v for v in by_metric["orders"])
    median_order = sorted(by_metric["orders"])[len(by_metric["orders"]) // 2]
    assert 25 < median_order < 70  # lognormal around 45 x trend, scaled by the daily cycle
    api = sorted(e["value"] for e in events if e["metric"] == "latency_ms" and e["source"] == "api")
    mobile = sorted(e["value"] for e in events if e["metric"] == "latency_ms" and e["source"] == "mobile")
    assert api[len(api) // 2] < mobile[len(mobile) // 2]  # each source has its own latency level


def test_each_event_owns_its_tags():
    events = Traffic(SOURCES, seed=6).events(2_000, NOW_MS)
    events[0]["tags"]["added"] = "x"
    assert sum("added" in e["tags"] for e in events) == 1
    assert Traffic(SOURCES, seed=6).events(2_000, NOW_MS)[0]["tags"] == {k: v for k, v in events[0]["tags"].items()
                                                                      if k != "added"}


def test_an_incident_multiplies_errors_and_raises_latency():
    calm, stormy = Traffic(SOURCES, seed=7), Traffic(SOURCES, seed=7)
    stormy.incident = Incident(until=math.inf, severity=5.0)

    def share_and_latency(traffic):
        events = traffic.events(40_000, NOW_MS)
        latency = sorted(e["value"] for e in events if e["metric"] == "latency_ms")
        return sum(e["metric"] == "errors" for e in events) / len(events), latency[len(latency) // 2]

    (calm_errors, calm_latency), (storm_errors, storm_latency) = share_and_latency(calm), share_and_latency(stormy)
    assert storm_errors > 3 * calm_errors
    assert storm_latency > 2 * calm_latency  # severity ** 0.7 = 3.1


def test_a_seed_repeats_the_traffic():
    def values(seed):
        return [(e["metric"], e["source"], e["value"], e["tags"]) for e in Traffic(SOURCES, seed=seed).events(500, NOW_MS)]

    assert values(11) == values(11) and values(11) != values(12)
