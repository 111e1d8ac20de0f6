"""Aggregates in a real Redis: bucket merges equal direct computation, windows cut exactly."""
from __future__ import annotations

import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analytics.cache.aggregates import MINUTE_TTL, SECOND_TTL
from analytics.events.filter import EventFilter
from tests.helpers import event, write_events
from tests.test_sketch import bucket_key

NOW = 1_800_000_000.5  # a fixed "now" (seconds) so windows are deterministic


def direct(events, first_sec, metric=None, source=None):
    picked = [e for e in events if e["ts"] // 1000 >= first_sec
              and (metric is None or e["metric"] == metric) and (source is None or e["source"] == source)]
    vals = [e["value"] for e in picked]
    return picked, vals


def test_window_counts_sum_min_max_exactly(runtime):
    events = [event("orders", v, src, ts=(NOW - age) * 1000)
              for v, src, age in [(10, "web", 1), (20, "web", 30), (5, "mobile", 59), (99, "web", 61), (7, "api", 500)]]
    write_events(runtime, events)
    body = runtime.aggregates.window(60, now=NOW)
    orders = body["metrics"]["orders"]
    assert orders["count"] == 3 and orders["sum"] == 35 and orders["min"] == 5 and orders["max"] == 20
    assert body["sources"] == {"mobile": {"count": 1, "rate": 1 / 60}, "web": {"count": 2, "rate": 2 / 60}}
    assert body["total"] == {"count": 3, "rate": 3 / 60}
    assert body["window"] == 60 and body["from"] == (int(NOW) - 59) * 1000
    assert runtime.aggregates.window(600, now=NOW)["metrics"]["orders"]["count"] == 5


def test_filters_by_metric_and_source(runtime):
    write_events(runtime, [event("orders", 1, "web", ts=(NOW - 2) * 1000), event("orders", 2, "api", ts=(NOW - 2) * 1000),
                           event("signups", 1, "web", ts=(NOW - 2) * 1000)])
    assert set(runtime.aggregates.window(60, EventFilter.of(sources=["web"]), now=NOW)["metrics"]) == {"orders", "signups"}
    body = runtime.aggregates.window(60, EventFilter.of(metrics=["orders"]), now=NOW)
    assert set(body["metrics"]) == {"orders"} and set(body["sources"]) == {"web", "api"}
    assert runtime.aggregates.window(60, EventFilter.of(metrics=["nothing"]), now=NOW)["total"]["count"] == 0


def test_empty_window_has_no_metrics(runtime):
    body = runtime.aggregates.window(3600, now=NOW)
    assert body["metrics"] == {} and body["total"] == {"count": 0, "rate": 0.0}


def test_a_cached_bucket_is_read_again_once_it_changes(runtime):
    write_events(runtime, [event("orders", 1.0, ts=(NOW - 120) * 1000)])
    assert runtime.aggregates.window(300, now=NOW)["metrics"]["orders"]["count"] == 1
    write_events(runtime, [event("orders", 5.0, ts=(NOW - 120) * 1000)])  # a late event, same bucket
    assert runtime.aggregates.window(300, now=NOW)["metrics"]["orders"]["count"] == 2
    runtime.redis.flushdb()  # Redis lost its data: the same keys written anew must not look cached
    write_events(runtime, [event("orders", 7.0, ts=(NOW - 120) * 1000)])
    assert runtime.aggregates.window(300, now=NOW)["metrics"]["orders"]["sum"] == 7.0


def test_a_long_window_read_pauses_between_buckets_and_answers_the_same(runtime, monkeypatch):
    """The first read of an hour's window parsed ~60,000 bucket fields in one go (20+ ms of the
    loop): the reader pauses every PAUSE_FIELDS fields, between buckets, for the same answer."""
    from analytics.cache import bucket_read
    from analytics.cache.aggregates import Aggregates

    # 40 minutes, each with a few series and values spread over many sketch buckets.
    write_events(runtime, [event(m, float(v), src, ts=(NOW - 60 * minute - 1) * 1000)
                           for minute in range(40) for m in ("orders", "latency_ms") for src in ("web", "api")
                           for v in (1, 10, 100, 1000, 10_000)])
    unpaused = Aggregates(runtime.redis, runtime.aggregates.prefix).window(3600, now=NOW)
    monkeypatch.setattr(bucket_read, "PAUSE_FIELDS", 50)
    paused = Aggregates(runtime.redis, runtime.aggregates.prefix)  # a fresh process: nothing held
    pauses = []
    paused.reader.pause = lambda: pauses.append(1)
    assert paused.window(3600, now=NOW) == unpaused
    assert unpaused["total"]["count"] == 40 * 2 * 2 * 5
    assert len(pauses) >= 10  # 40 buckets of ~80 fields: a pause every one or two



def test_a_paused_window_read_leaves_a_newer_copy_the_writer_made_meanwhile(runtime, monkeypatch):
    """While a long read pauses, the recorder may carry a bucket forward to a newer version
    (note_written). The read's own, older parse of it must not replace that copy: the next read
    would parse the bucket afresh, and carrying forward would stop until then."""
    from analytics.cache import bucket_read
    from analytics.cache.aggregates import Aggregates

    write_events(runtime, [event("orders", float(v), "web", ts=(NOW - 60 * minute - 1) * 1000)
                           for minute in range(40) for v in (1, 10, 100, 1000, 10_000)])
    monkeypatch.setattr(bucket_read, "PAUSE_FIELDS", 10)
    agg = Aggregates(runtime.redis, runtime.aggregates.prefix)  # nothing held yet
    read = agg.reader.read
    asked = []
    monkeypatch.setattr(agg.reader, "read", lambda keys: asked.append(keys) or read(keys))
    carried = {}

    def pause() -> None:  # at the first pause, the writer carries the window's last minute forward
        if not carried:
            last_minute = [k for k in asked[0] if ":m:" in k and runtime.redis.exists(k)][-1]
            carried[last_minute] = (b"newer", {})
            agg.reader.held[last_minute] = carried[last_minute]

    agg.reader.pause = pause
    agg.window(3600, now=NOW)
    (key, newer), = carried.items()
    assert agg.reader.held[key] is newer

def test_buckets_expire(runtime):
    write_events(runtime, [event(ts=NOW * 1000)])
    keys = runtime.redis.keys(runtime.aggregates.prefix + ":*")
    ttls = sorted(runtime.redis.ttl(k) for k in keys)
    assert len(keys) == 2 and 0 < ttls[0] <= SECOND_TTL < ttls[1] <= MINUTE_TTL


def test_window_reads_minutes_and_edge_seconds():
    from analytics.cache.aggregates import Aggregates

    class NoRedis:  # window_keys only computes names
        def register_script(self, _):
            return None

    agg = Aggregates(NoRedis(), "p")
    keys, first = agg.window_keys(first=100, last=250, now_sec=300)
    assert keys[:20] == [f"p:s:{s}" for s in range(100, 120)]
    assert keys[20:22] == ["p:m:2", "p:m:3"] and keys[22:] == [f"p:s:{s}" for s in range(240, 251)]
    assert first == 100
    # the minute holding "now" is read whole: nothing in it is newer than now
    keys, _ = agg.window_keys(first=240, last=305, now_sec=305)
    assert keys == ["p:m:4", "p:m:5"]
    # an edge older than the second buckets' lifetime is rounded down to its minute
    keys, first = agg.window_keys(first=100, last=86_400 + 100, now_sec=86_400 + 100)
    assert first == 60 and keys[0] == "p:m:1"


batches = st.lists(st.tuples(st.sampled_from(["orders", "latency_ms"]), st.sampled_from(["web", "api"]),
                             st.floats(-1e6, 1e6, allow_nan=False).map(lambda v: round(v, 3)),
                             st.integers(0, 400)), min_size=1, max_size=60)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(batches, min_size=1, max_size=4), st.sampled_from([1, 10, 60, 300]))
def test_bucket_merge_equals_direct_computation(runtime, parts, window):
    runtime.redis.flushdb()
    all_events = []
    for part in parts:
        evs = [event(m, v, s, ts=(NOW - age) * 1000) for m, s, v, age in part]
        write_events(runtime, evs)
        all_events += evs
    body = runtime.aggregates.window(window, now=NOW)
    first = int(NOW) - window + 1
    for metric in ("orders", "latency_ms"):
        picked, vals = direct(all_events, first, metric=metric)
        if not vals:
            assert metric not in body["metrics"]
            continue
        got = body["metrics"][metric]
        assert got["count"] == len(vals)
        assert math.isclose(got["sum"], sum(vals), rel_tol=1e-9, abs_tol=1e-6)
        assert got["min"] == min(vals) and got["max"] == max(vals)
        exact_p99 = sorted(vals)[math.floor(0.99 * (len(vals) - 1))]
        assert abs(got["p99"] - exact_p99) <= 0.01 * abs(exact_p99) + 1e-9


def assert_same_window(held: dict, fresh: dict) -> None:
    """Equal, but sums (and so averages) only to a relative 1e-12: a minute carried forward in
    memory adds sums in double precision where Redis adds in long double."""
    def without_sums(body):
        return {**body, "metrics": {m: {k: v for k, v in stats.items() if k not in ("sum", "avg")}
                                    for m, stats in body["metrics"].items()}}

    assert without_sums(held) == without_sums(fresh)
    for name, stats in held["metrics"].items():
        for k in ("sum", "avg"):
            assert math.isclose(stats[k], fresh["metrics"][name][k], rel_tol=1e-12, abs_tol=1e-9)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(batches, min_size=2, max_size=5), st.sampled_from([60, 300]))
def test_windows_read_between_writes_equal_a_fresh_read(runtime, parts, window):
    """The writer carries the minutes this process holds forward by what it writes; a reader
    that never held anything, reading Redis afresh, must see the same window."""
    from analytics.cache.aggregates import Aggregates

    runtime.redis.flushdb()
    runtime.aggregates.reader.held.clear()
    all_events = []
    for part in parts:
        evs = [event(m, v, s, ts=(NOW - age) * 1000) for m, s, v, age in part]
        write_events(runtime, evs)
        all_events += evs
        held = runtime.aggregates.window(window, now=NOW)
        fresh = Aggregates(runtime.redis, runtime.aggregates.prefix).window(window, now=NOW)
        assert_same_window(held, fresh)
        picked, vals = direct(all_events, int(NOW) - window + 1)
        assert held["total"]["count"] == len(picked)


def test_the_writer_carries_a_held_minute_forward_and_only_from_its_own_version(runtime):
    from analytics.cache.aggregates import Aggregates, parse_bucket

    minute = f"{runtime.aggregates.prefix}:m:{int(NOW) // 60}"
    write_events(runtime, [event("orders", 1.0, ts=NOW * 1000)])
    runtime.aggregates.window(60, now=NOW)  # now held, as parsed from Redis
    write_events(runtime, [event("orders", 2.0, ts=NOW * 1000), event("signups", 4.0, "api", ts=NOW * 1000)])
    version, parsed = runtime.aggregates.reader.held.get(minute)
    assert version == runtime.redis.hget(minute, "_v")  # carried forward: the next read parses nothing
    from_redis = parse_bucket([x for kv in runtime.redis.hgetall(minute).items() for x in kv])
    assert {p: (s.count, s.total, s.low, s.high, s.sketch.lo, s.sketch.counts.tolist()) for p, s in parsed.items()} == \
           {p: (s.count, s.total, s.low, s.high, s.sketch.lo, s.sketch.counts.tolist()) for p, s in from_redis.items()}

    # Another replica writes the same minute: this process's copy is no longer current, so its
    # next write must not advance it, and the next read must fetch the bucket afresh.
    write_events(runtime, [event("orders", 10.0, ts=NOW * 1000)],
                 aggregates=Aggregates(runtime.redis, runtime.aggregates.prefix))
    write_events(runtime, [event("orders", 3.0, ts=NOW * 1000)])
    assert runtime.aggregates.reader.held.get(minute)[0] == version
    orders = runtime.aggregates.window(60, now=NOW)["metrics"]["orders"]
    assert (orders["count"], orders["sum"], orders["max"]) == (4, 16.0, 10.0)
    assert runtime.aggregates.reader.held.get(minute)[0] == runtime.redis.hget(minute, "_v")

    # The next minute starts while this one is held: its copy starts with its first write.
    following = f"{runtime.aggregates.prefix}:m:{int(NOW) // 60 + 1}"
    write_events(runtime, [event("orders", 5.0, ts=(NOW + 60) * 1000)])
    version, parsed = runtime.aggregates.reader.held.get(following)
    assert version == runtime.redis.hget(following, "_v")
    assert {p: (s.count, s.total) for p, s in parsed.items()} == {("web", "orders"): (1, 5.0)}
    fresh = Aggregates(runtime.redis, runtime.aggregates.prefix)
    assert runtime.aggregates.window(120, now=NOW + 60) == fresh.window(120, now=NOW + 60)


@given(st.lists(st.tuples(st.integers(0, 150), st.sampled_from(["web", "api"]),
                          st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)), max_size=60),
       st.integers(1, 59))
def test_a_batch_prepared_in_chunks_makes_the_same_updates_as_in_one_piece(rows, cut):
    from analytics.cache.aggregates import bucket_updates, merge_updates

    events = [event("latency_ms", v, src, ts=(NOW - age) * 1000) for age, src, v in rows]
    whole = bucket_updates(events)
    chunked: dict = {}
    for start in range(0, len(events), cut):
        merge_updates(chunked, bucket_updates(events[start:start + cut]))

    assert whole.keys() == chunked.keys()
    for suffix, pairs in whole.items():
        assert pairs.keys() == chunked[suffix].keys()
        for pair, one in pairs.items():
            other = chunked[suffix][pair]
            assert (one.count, one.low, one.high, dict(one.sketch)) == (other.count, other.low, other.high,
                                                                       dict(other.sketch))
            assert math.isclose(one.total, other.total, rel_tol=1e-9, abs_tol=1e-6)  # addition order differs


@given(st.lists(st.tuples(st.integers(0, 150), st.sampled_from(["web", "api"]), st.sampled_from(["orders", "errors"]),
                          st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False) | st.just(0.0)), max_size=80))
def test_bucket_updates_equal_one_event_at_a_time(rows):
    """bucket_updates groups a batch with numpy; it must give what a plain walk over the events gives."""
    from collections import Counter, defaultdict

    from analytics.cache.aggregates import bucket_updates

    events = [event(metric, v, src, ts=(NOW - age) * 1000) for age, src, metric, v in rows]
    expected: dict = defaultdict(lambda: defaultdict(list))
    for e in events:
        sec = int(e["ts"] // 1000)
        for suffix in (f"s:{sec}", f"m:{sec // 60}"):
            expected[suffix][f"{e['source']}|{e['metric']}"].append(e["value"])

    got = bucket_updates(events)
    assert got.keys() == expected.keys()
    for suffix, pairs in expected.items():
        assert got[suffix].keys() == pairs.keys()
        for pair, vals in pairs.items():
            stats = got[suffix][pair]
            assert (stats.count, stats.low, stats.high) == (len(vals), min(vals), max(vals))
            assert math.isclose(stats.total, sum(vals), rel_tol=1e-9, abs_tol=1e-6)
            assert dict(stats.sketch) == Counter(bucket_key(v) for v in vals)


def test_a_sum_beyond_a_double_saturates_and_loses_no_event(runtime):
    """Values near 1e308 are valid events; their sum is not a double. Redis refuses an infinite
    HINCRBYFLOAT: the bucket's sum must saturate, not fail the batch and lose its other events."""
    import orjson

    from analytics import counters
    from analytics.events.schema import encode

    errors_before = counters.CACHE_WRITE_ERRORS._value.get()
    big = [event("orders", 1.7e308, ts=NOW * 1000), event("orders", 1.7e308, ts=NOW * 1000)]
    write_events(runtime, big + [event("signups", 1.0, ts=NOW * 1000)])  # one batch: its own sum overflows
    write_events(runtime, [event("orders", 1.7e308, ts=NOW * 1000)])  # a later batch onto an inf sum
    body = runtime.aggregates.window(60, now=NOW)
    assert counters.CACHE_WRITE_ERRORS._value.get() == errors_before
    orders = body["metrics"]["orders"]
    assert orders["count"] == 3 and orders["max"] == 1.7e308 and math.isinf(orders["sum"])
    assert body["metrics"]["signups"] == {**body["metrics"]["signups"], "count": 1, "sum": 1.0}
    fresh = type(runtime.aggregates)(runtime.redis, runtime.aggregates.prefix).window(60, now=NOW)
    assert fresh["metrics"]["orders"]["count"] == 3 and math.isinf(fresh["metrics"]["orders"]["sum"])
    served = orjson.loads(encode(body))  # the response encoder: JSON has no inf, the sum is null
    assert served["metrics"]["orders"]["sum"] is None and served["metrics"]["orders"]["count"] == 3


def test_the_seconds_the_old_edge_enters_next_are_read_ahead_and_stay_exact(runtime):
    """A window's old edge going from a whole minute to its seconds would read ~60 buckets at
    once; they are read a few per request beforehand. The window must stay what a fresh reader
    computes, and late events in a second read ahead must still count."""
    from analytics.cache.aggregates import READ_AHEAD, Aggregates

    last = int(NOW)
    following = (last - 3599) // 60 * 60 + 60  # the minute the hour window's edge enters next
    events = [event("orders", float(k), ts=(following + k) * 1000) for k in range(1, 60, 3)]
    write_events(runtime, events + [event("orders", 1.0, ts=NOW * 1000)])
    for _ in range(59 // READ_AHEAD + 1):
        runtime.aggregates.window(3600, now=NOW)
    held = [k for k in range(1, 60, 3) if runtime.aggregates.reader.held.get(f"{runtime.aggregates.prefix}:s:{following + k}")]
    assert held == list(range(1, 60, 3))

    write_events(runtime, [event("orders", 1000.0, ts=(following + 4) * 1000)])  # late, into one read ahead
    later = NOW + 60 + 2  # the edge is now inside that minute, at its third second
    body = runtime.aggregates.window(3600, now=later)
    assert body == Aggregates(runtime.redis, runtime.aggregates.prefix).window(3600, now=later)
    first = int(later) - 3599
    want = [e["value"] for e in events if e["ts"] // 1000 >= first] + [1.0, 1000.0]
    assert body["metrics"]["orders"]["count"] == len(want) and body["metrics"]["orders"]["sum"] == sum(want)
