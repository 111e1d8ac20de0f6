"""The sketch bound: at most MAX_SKETCH_BINS buckets per series, in each Redis bucket hash and in
every sketch a read builds, folded lowest-first, the same whatever the order of writes and merges.

Values anywhere in the double range land in up to ~73,000 distinct sketch buckets; before the
bound, one series fed such values kept a hash field per bucket in each second and minute bucket
and every read parsed them all. The expected sketch here is always computed from the values
directly (`folded`): every value counted at max(its position, T), T the bound-th highest distinct
position among all of them.
"""
from __future__ import annotations

import math
import sys
from collections import Counter
from contextlib import contextmanager
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from analytics.cache import sketch as sketch_module
from analytics.cache.bucket_read import BucketReader, PairStats, parse_bucket
from analytics.cache.sketch import (
    MAX_SKETCH_BINS,
    RELATIVE_ACCURACY,
    DenseSketch,
    SparseSketch,
    bounded_buckets,
    bucket_positions,
    key_of,
    position,
    position_value,
)
from tests.helpers import event, write_events

NOW = 1_800_000_000.5  # fixed "now" (seconds): windows are deterministic
BIGGEST = sys.float_info.max
any_double = st.floats(allow_nan=False, allow_infinity=False)  # every finite double, subnormals, -0.0
# Fields a pair has besides its sketch buckets (c, s, lo, hi, and the bound's list @<pair>)
# and a bucket besides its pairs (_v, and the '#' that says its pairs' buckets are tracked).
PAIR_FIELDS, BUCKET_FIELDS = 5, 2


def folded(values, bound: int) -> dict[int, int]:
    """The sketch of `values` folded to `bound` buckets, computed directly: position -> count."""
    counts = Counter(int(p) for p in bucket_positions(values)) if len(values) else Counter()
    if len(counts) <= bound:
        return dict(counts)
    floor = sorted(counts)[-bound]
    out: Counter = Counter()
    for pos, n in counts.items():
        out[max(pos, floor)] += n
    return dict(out)


def nonzero(s) -> dict[int, int]:
    positions, counts = s.sparse()
    return {int(p): int(n) for p, n in zip(positions, counts) if n}


def buckets_of(values) -> dict[str, int]:
    """A batch's sketch as the writer makes it: bucket key -> count."""
    return dict(Counter(key_of(int(p)) for p in bucket_positions(values))) if len(values) else {}


@contextmanager
def bound(n: int):
    """MAX_SKETCH_BINS set to n for the writer (which sends it to the Lua script) and the readers."""
    with mock.patch.object(sketch_module, "MAX_SKETCH_BINS", n):
        yield


def exact_quantile(values, q: float) -> float:
    return sorted(values)[math.floor(q * (len(values) - 1))]


def within_the_sketch_error(estimate: float, exact: float) -> bool:
    """1% relative; values under 1e-9 in magnitude count as 0 (the sketch's zero bucket)."""
    return abs(estimate - exact) <= RELATIVE_ACCURACY * abs(exact) + 1e-9


# --- In memory -------------------------------------------------------------------------------

@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(any_double, max_size=40), min_size=1, max_size=6), st.integers(1, 24), st.randoms())
def test_folding_does_not_depend_on_how_values_were_split_or_merged(parts, max_bins, rnd):
    """Sketches built per part, folded, then merged in any order (merge, plus) equal the sketch of
    all the values folded once: so a bucket written in any batches, a window merged from any
    buckets, and the writer's carried-forward copy all hold the same thing."""
    everything = [v for part in parts for v in part]
    with bound(max_bins):
        sketches = [DenseSketch.from_buckets(buckets_of(part)) for part in parts[:-1]]
        rnd.shuffle(sketches)
        merged = DenseSketch.merge(sketches) if sketches else DenseSketch.from_buckets({})
        merged = merged.plus(bounded_buckets(buckets_of(parts[-1])))
    assert nonzero(merged) == folded(everything, max_bins)
    assert len(nonzero(merged)) <= max_bins


@settings(max_examples=200, deadline=None)
@given(st.lists(any_double, min_size=1, max_size=80), st.integers(1, 30))
def test_the_writer_folds_a_batch_as_the_sketches_do(values, max_bins):
    got = bounded_buckets(buckets_of(values), max_bins)
    assert len(got) <= max_bins
    assert {position(k): n for k, n in got.items()} == folded(values, max_bins)


@settings(max_examples=300, deadline=None)
@given(st.lists(any_double, min_size=1, max_size=300))
def test_every_quantile_is_within_one_percent_while_the_values_fit(values):
    """Any finite doubles, both signs, subnormals: with at most MAX_SKETCH_BINS distinct buckets
    (300 values always fit), every quantile keeps the 1% bound."""
    s = DenseSketch.from_buckets(buckets_of(values))
    qs = [0.0, 0.01, 0.25, 0.5, 0.95, 0.99, 1.0]
    for q, estimate in zip(qs, s.quantiles(qs)):
        assert within_the_sketch_error(estimate, exact_quantile(values, q))


@settings(max_examples=300, deadline=None)
@given(st.lists(any_double, min_size=1, max_size=120), st.integers(1, 40))
def test_beyond_the_bound_only_quantiles_below_the_fold_lose_accuracy(values, max_bins):
    """Past the bound: a quantile whose value lies in a kept bucket keeps its 1% bound; one below
    the lowest kept bucket reads as that bucket's value (too high, never too low). Monotone."""
    qs = [0.0, 0.01, 0.25, 0.5, 0.95, 0.99, 1.0]
    with bound(max_bins):
        estimates = DenseSketch.from_buckets(buckets_of(values)).quantiles(qs)
    kept = folded(values, max_bins)
    lowest_kept = min(kept)
    assert estimates == sorted(estimates)
    for q, estimate in zip(qs, estimates):
        exact = exact_quantile(values, q)
        if bucket_positions([exact])[0] >= lowest_kept:
            assert within_the_sketch_error(estimate, exact)
        else:
            assert estimate == position_value(lowest_kept) and estimate > exact


def test_a_sketch_over_the_whole_double_range_is_bounded():
    """Random bit patterns (every exponent, both signs): parts merged hold exactly the bound's
    buckets, the fold of all the values, and the highest value keeps its 1%."""
    rng = np.random.default_rng(7)
    values = np.frombuffer(rng.bytes(8 * 50_000), dtype=np.float64)
    values = values[np.isfinite(values)]
    assert len(set(bucket_positions(values).tolist())) > 4 * MAX_SKETCH_BINS
    parts = np.array_split(values, 7)
    merged = DenseSketch.merge([DenseSketch.from_buckets(buckets_of(p)) for p in parts])
    assert type(merged) is SparseSketch and len(merged.counts) == MAX_SKETCH_BINS
    assert nonzero(merged) == folded(values, MAX_SKETCH_BINS)
    top = np.sort(values)[-10:]  # the highest values keep their 1% bound
    [estimate] = merged.quantiles([1.0])
    assert within_the_sketch_error(estimate, top[-1])


def test_the_default_bound_keeps_real_data_exact():
    """What the bound was chosen by (sketch.py): real-ish series use fewer buckets than it."""
    rng = np.random.default_rng(1)
    n = 200_000
    for values in (rng.lognormal(np.log(120), 1.5, n), np.round(10 ** rng.uniform(0, 9, n)),
                   rng.normal(0, 1000, n), rng.choice([-1, 1], n) * 10 ** rng.uniform(-2, 6, n)):
        assert len(set(bucket_positions(values).tolist())) <= MAX_SKETCH_BINS


# --- In Redis, through the writer --------------------------------------------------------------

def pair_sketches(redis, key: str) -> dict[str, dict[int, int]]:
    """A bucket hash's sketch fields as Redis holds them, per pair: position -> count."""
    out: dict[str, dict[int, int]] = {}
    for field, value in redis.hgetall(key).items():
        parts = field.decode().split("|")
        if len(parts) == 3 and parts[2][0] in "knz":
            out.setdefault(f"{parts[0]}|{parts[1]}", {})[position(parts[2])] = int(value)
    return out


def assert_bounded_fields(redis, key: str, max_bins: int) -> None:
    fields = redis.hkeys(key)
    pairs = {f.decode().split("|")[0] + "|" + f.decode().split("|")[1] for f in fields if f.count(b"|") == 2}
    for pair in pairs:
        assert sum(1 for f in fields if f.decode().startswith(pair + "|")) <= max_bins + 4
    assert len(fields) <= len(pairs) * (max_bins + PAIR_FIELDS) + BUCKET_FIELDS


def values_by_bucket(events: list[dict], prefix: str) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for e in events:
        sec = int(e["ts"] // 1000)
        for key in (f"{prefix}:s:{sec}", f"{prefix}:m:{sec // 60}"):
            out.setdefault(key, []).append(e["value"])
    return out


batches = st.lists(st.lists(st.tuples(any_double, st.integers(0, 2)), min_size=1, max_size=30), min_size=1, max_size=5)
# Few distinct buckets reused over many small batches: later writes land below the lowest kept
# bucket, on kept ones and in new ones above it (the script's folds from its list).
recurring = st.integers(-40, 40).map(lambda e: 1.7 ** e) | st.integers(-40, 40).map(lambda e: -(1.7 ** e)) | st.just(0.0)
long_runs = st.lists(st.lists(st.tuples(recurring, st.integers(0, 1)), min_size=1, max_size=6), min_size=3, max_size=15)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches, st.sampled_from([1, 2, 3, 5, 8, 16]))
@example([[(float(2 ** e), 0) for e in range(-40, 40, 3)], [(-float(2 ** e), 0) for e in range(-40, 40, 2)],
          [(5e-324, 0), (BIGGEST, 0), (-BIGGEST, 0), (1.0, 1)]], 8)
def test_each_bucket_in_redis_holds_the_folded_sketch_of_its_values(runtime, parts, max_bins):
    """Batches of any doubles over time (a hash within the bound, the first write past it, later
    folds from a pair's list, values below the lowest kept bucket): each bucket hash
    holds exactly the folded sketch of its values, at most max_bins fields per pair; the writer's
    carried-forward copy and a fresh reader agree; a window holds the fold of all its values."""
    check_buckets(runtime, parts, max_bins)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(long_runs, st.sampled_from([2, 4, 8, 12]))
def test_many_small_batches_keep_each_bucket_folded_exactly(runtime, parts, max_bins):
    check_buckets(runtime, parts, max_bins)


def check_buckets(runtime, parts, max_bins: int) -> None:
    from analytics.cache.aggregates import Aggregates

    runtime.redis.flushdb()
    runtime.aggregates.reader.held.clear()
    prefix = runtime.aggregates.prefix
    written: list[dict] = []
    with bound(max_bins):
        for part in parts:
            evs = [event("m", v, "web", ts=(NOW - age) * 1000) for v, age in part]
            write_events(runtime, evs)
            written += evs
            runtime.aggregates.window(60, now=NOW)  # the live minute is held: later writes carry it
        for key, vals in values_by_bucket(written, prefix).items():
            assert pair_sketches(runtime.redis, key) == {"web|m": folded(vals, max_bins)}
            assert_bounded_fields(runtime.redis, key, max_bins)
        for key, (version, held) in list(runtime.aggregates.reader.held.items()):
            if version == runtime.redis.hget(key, "_v"):  # current: carried forward by the writer
                fresh = parse_bucket([x for kv in runtime.redis.hgetall(key).items() for x in kv])
                assert {p: nonzero(s.sketch) for p, s in held.items()} == {p: nonzero(s.sketch) for p, s in fresh.items()}
        body = Aggregates(runtime.redis, prefix).window(60, now=NOW)
    stats = body["metrics"]["m"]
    values = [e["value"] for e in written]
    assert (stats["count"], stats["min"], stats["max"]) == (len(values), min(values), max(values))
    kept = folded(values, max_bins)
    for name, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
        exact = exact_quantile(values, q)
        if bucket_positions([exact])[0] >= min(kept):
            assert within_the_sketch_error(stats[name], exact)
        else:
            assert stats[name] == min(max(position_value(min(kept)), stats["min"]), stats["max"])
    assert stats["min"] <= stats["p50"] <= stats["p95"] <= stats["p99"] <= stats["max"]


def test_a_small_bucket_costs_no_bookkeeping(runtime):
    """While a bucket hash has at most MAX_SKETCH_BINS fields no pair can be over the bound: the
    script tracks nothing and adds no field (the common case costs what it did before)."""
    write_events(runtime, [event("orders", v, src, ts=NOW * 1000) for v in (1.0, 2.5, 99.0) for src in ("web", "api")])
    second = f"{runtime.aggregates.prefix}:s:{int(NOW)}"
    assert not [f for f in runtime.redis.hkeys(second) if f.startswith((b"#", b"@"))]


def test_many_series_over_the_bound_cost_no_pass_over_the_hash_each(runtime):
    """Many series past the bound in the same buckets, batch after batch: the hash is read whole
    once per bucket (when it first goes past the bound), never once per series or per write, so a
    write costs its own fields plus one list per series it touches, whatever the others hold."""
    rng = np.random.default_rng(3)
    runtime.redis.config_resetstat()
    with bound(8):
        for _ in range(6):
            batch = [event("m", float(v), f"s{k}", ts=NOW * 1000)
                     for k in range(30) for v in 10.0 ** rng.uniform(-9, 300, 12)]
            write_events(runtime, batch)
    scans = runtime.redis.info("commandstats").get("cmdstat_hscan", {}).get("calls", 0)
    buckets = len(runtime.redis.keys(f"{runtime.aggregates.prefix}:[sm]:*"))
    assert buckets == 2 and 1 <= scans <= 2 * buckets  # a 1,000-field page or two each
    for key in runtime.redis.keys(f"{runtime.aggregates.prefix}:[sm]:*"):
        assert_bounded_fields(runtime.redis, key.decode(), 8)


def test_a_bound_changed_between_writers_still_bounds_each_write(runtime):
    """Replicas configured apart (not possible with the constant, but a rolling upgrade can mix
    versions): each write leaves the pair within the bound it was given, and counts stay exact."""
    second = f"{runtime.aggregates.prefix}:s:{int(NOW)}"
    values = [float(2 ** e) for e in range(-30, 60)]
    for max_bins, chunk in ((8, values[:30]), (16, values[30:60]), (4, values[60:])):
        with bound(max_bins):
            write_events(runtime, [event("m", v, ts=NOW * 1000) for v in chunk])
            assert len(pair_sketches(runtime.redis, second)["web|m"]) <= max_bins
    with bound(4):
        stats = runtime.aggregates.window(60, now=NOW)["metrics"]["m"]
    assert stats["count"] == len(values) and stats["max"] == 2.0 ** 59


def test_a_bucket_written_before_the_bound_is_folded_by_its_next_write_and_by_reads(runtime):
    """A hash an older writer left with more buckets than the bound (untracked): reads fold it in
    memory, and the next write reads it once and folds it in Redis."""
    second = f"{runtime.aggregates.prefix}:s:{int(NOW)}"
    old_values = [float(3 ** e) for e in range(-15, 25)]
    old = buckets_of(old_values)
    runtime.redis.hset(second, mapping={"_v": "old", "web|m|c": len(old_values), "web|m|s": repr(sum(old_values)),
                                        "web|m|lo": repr(min(old_values)), "web|m|hi": repr(max(old_values)),
                                        **{f"web|m|{k}": n for k, n in old.items()}})
    with bound(10):
        reader = BucketReader(runtime.redis)
        [bucket], _ = reader.read([second])
        assert nonzero(bucket[("web", "m")].sketch) == folded(old_values, 10)
        write_events(runtime, [event("m", 0.5, ts=NOW * 1000)])
        assert pair_sketches(runtime.redis, second) == {"web|m": folded(old_values + [0.5], 10)}


ACL_FILE = Path(__file__).resolve().parents[2] / "deploy" / "redis" / "acl.conf"


def test_the_backends_acl_user_may_run_every_path_of_the_bucket_script(redisdb, redis_url):
    """deploy/redis/acl.conf's backend line allows every command the bucket script runs (a
    command refused inside the script fails the whole write): the hash going past the bound
    (HLEN, HSCAN), folds (HDEL), at a small bound and at the default one."""
    import uuid

    import redis

    from analytics.cache.aggregates import Aggregates, bucket_updates

    rules = next(line for line in ACL_FILE.read_text().splitlines() if line.startswith("backend ")).split()[1:]
    user = f"backend-{uuid.uuid4().hex[:8]}"
    redisdb.execute_command("ACL", "SETUSER", user, "on", ">acl-pass", *rules)
    try:
        client = redis.Redis.from_url(redis_url.replace("redis://", f"redis://{user}:acl-pass@"))
        agg = Aggregates(client, f"metrics:agg-{user}")
        rng = np.random.default_rng(5)
        written = 0
        for max_bins, n in ((8, 40), (MAX_SKETCH_BINS, 3 * MAX_SKETCH_BINS)):
            with bound(max_bins):
                for _ in range(3):
                    values = rng.choice([-1, 1], n) * 10.0 ** rng.uniform(-9, 300, n)
                    events = [event("m", float(v), "web", ts=NOW * 1000) for v in values]
                    with client.pipeline(transaction=False) as pipe:
                        agg.note_written(agg.queue_updates(pipe, bucket_updates(events)), pipe.execute())
                    written += n
                assert agg.window(60, now=NOW)["metrics"]["m"]["count"] == written
                for key in redisdb.keys(f"{agg.prefix}:[sm]:*"):  # (KEYS: not the backend's to run)
                    assert len(pair_sketches(redisdb, key.decode())["web|m"]) <= max_bins
    finally:
        redisdb.execute_command("ACL", "DELUSER", user)


# --- Through the API, at the default bound ------------------------------------------------------

def post_and_record(client, runtime, events: list[dict]) -> None:
    """POST the events (1,000 per request) and record the log as a recorder would."""
    from analytics.stream.durable_log import parse_entries
    from analytics.stream.recorder import GROUP, Recorder

    for start in range(0, len(events), 1000):
        response = client.post("/api/events", json=events[start:start + 1000])
        assert response.status_code == 202 and response.json["accepted"] == len(events[start:start + 1000])
    recorder = Recorder(runtime.log, runtime.recent, runtime.aggregates, retention_s=600, sleep=lambda _s: None)
    recorder.ensure_group()
    while reply := runtime.redis.xreadgroup(GROUP, recorder.consumer, {runtime.log.key: ">"}, count=100):
        recorder.record(parse_entries(reply[0][1]))


def spread_values(n: int) -> list[float]:
    """n values of both signs, log-spaced over the double range (each its own bucket), and
    subnormals and zeros. (Not the largest doubles: here the sum must stay a number.)"""
    magnitudes = 10.0 ** np.linspace(-9, 307, n // 2)
    return [*magnitudes.tolist(), *(-magnitudes).tolist(), 5e-324, -5e-324, 0.0, -0.0, sys.float_info.min]


@pytest.fixture
def counted_reads(monkeypatch):
    """Counts the work of aggregate reads: hash fields parsed, and the size of every merged sketch."""
    from analytics.cache import bucket_read

    work = {"fields": 0, "buckets": 0, "largest_merge": 0}
    parse, merge = bucket_read.parse_bucket, PairStats.merge.__func__

    def counting_parse(raw):
        work["fields"] += len(raw) // 2
        work["buckets"] += 1
        return parse(raw)

    def counting_merge(cls, parts):
        merged = merge(cls, parts)
        work["largest_merge"] = max(work["largest_merge"], len(nonzero(merged.sketch)))
        return merged

    monkeypatch.setattr(bucket_read, "parse_bucket", counting_parse)
    monkeypatch.setattr(PairStats, "merge", classmethod(counting_merge))
    return work


def test_a_series_over_the_whole_double_range_stays_bounded_in_redis_and_in_reads(client, runtime, counted_reads):
    """One series, values log-spaced over the whole double range (more distinct buckets than the
    bound) POSTed and recorded: each bucket hash holds at most MAX_SKETCH_BINS sketch fields for
    it, reads parse no more than that and build no bigger sketch; count/sum/min/max exact, the
    percentiles monotone within [min, max], p99 and p95 (above the fold) within 1%."""
    values = spread_values(3 * MAX_SKETCH_BINS)
    assert len(set(bucket_positions(values).tolist())) > MAX_SKETCH_BINS
    post_and_record(client, runtime, [{"metric": "wide", "source": "probe", "value": v} for v in values])

    prefix = runtime.aggregates.prefix
    keys = runtime.redis.keys(f"{prefix}:s:*") + runtime.redis.keys(f"{prefix}:m:*")
    assert keys
    for key in keys:
        assert_bounded_fields(runtime.redis, key.decode(), MAX_SKETCH_BINS)

    response = client.get("/api/metrics/aggregate?window=60&metric=wide")
    assert response.status_code == 200
    stats = response.json["metrics"]["wide"]
    assert (stats["count"], stats["min"], stats["max"]) == (len(values), min(values), max(values))
    assert abs(stats["sum"] - math.fsum(values)) <= 1e-12 * sum(abs(v) for v in values)
    assert stats["min"] <= stats["p50"] <= stats["p95"] <= stats["p99"] <= stats["max"]
    for name, q in (("p95", 0.95), ("p99", 0.99)):  # above the fold: the top 2,048 buckets hold them
        assert within_the_sketch_error(stats[name], exact_quantile(values, q))
    assert counted_reads["fields"] <= counted_reads["buckets"] * (MAX_SKETCH_BINS + PAIR_FIELDS + BUCKET_FIELDS)
    assert counted_reads["largest_merge"] <= MAX_SKETCH_BINS


def test_a_series_that_fits_keeps_one_percent_through_the_api(client, runtime):
    """Values of both signs over the whole double range, fewer distinct buckets than the bound:
    nothing is folded, every served percentile is within 1%."""
    values = spread_values(MAX_SKETCH_BINS - 16)
    assert len(set(bucket_positions(values).tolist())) <= MAX_SKETCH_BINS
    post_and_record(client, runtime, [{"metric": "fits", "value": v} for v in values])
    response = client.get("/api/metrics/aggregate?window=60&metric=fits")
    assert response.status_code == 200
    stats = response.json["metrics"]["fits"]
    assert (stats["count"], stats["min"], stats["max"]) == (len(values), min(values), max(values))
    for name, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
        assert within_the_sketch_error(stats[name], exact_quantile(values, q))
