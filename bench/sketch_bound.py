"""The quantile sketch's bound, measured: Redis memory of a bucket and aggregate read time for
one series fed values spread over the whole double range, and for the generator's traffic; with
--bins, the sketch buckets real-ish series use (what MAX_SKETCH_BINS was chosen by).

    .venv/bin/python bench/sketch_bound.py [--values 100000] [--runs 5]
    .venv/bin/python bench/sketch_bound.py --bins

Runs against whichever `analytics` package is importable, so the same script measures another
tree: `PYTHONPATH=/path/to/other/backend .venv/bin/python bench/sketch_bound.py`. A private
redis-server is started (devstack). Prints medians of --runs runs; timings are wall clock on
whatever machine runs it.
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import redis

from analytics.cache import aggregates as agg_module
from analytics.cache.aggregates import Aggregates, bucket_updates
from devstack.processes import redis_server

NOW = 1_800_000_000  # a whole minute (seconds), so the fed minute is closed and read as one bucket


def every_double(rng, n: int) -> np.ndarray:
    """n finite doubles drawn as random bit patterns: every exponent about equally, both signs,
    subnormals included: ~72,000 distinct sketch buckets for 100,000 values."""
    out = np.empty(0)
    while len(out) < n:
        v = np.frombuffer(rng.bytes(8 * n), dtype=np.float64)
        out = np.concatenate([out, v[np.isfinite(v)]])
    return out[:n]


def feed(client, agg: Aggregates, values: np.ndarray, series=("web", "wide"), batch: int = 1000) -> float:
    """Write `values` for one series in batches of `batch` events, all in the second NOW - 30
    (so one second bucket and one minute bucket hold them all). Returns the seconds Redis spent
    in the bucket script (commandstats)."""
    client.config_resetstat()
    source, metric = series
    for start in range(0, len(values), batch):
        chunk = values[start:start + batch]
        events = [{"source": source, "metric": metric, "value": float(v), "ts": (NOW - 30) * 1000 + i % 1000}
                  for i, v in enumerate(chunk)]
        with client.pipeline(transaction=False) as pipe:
            agg.queue_updates(pipe, bucket_updates(events))
            pipe.execute()
    stats = client.info("commandstats")
    return sum(v["usec"] for k, v in stats.items() if k in ("cmdstat_evalsha", "cmdstat_eval")) / 1e6


def read_time(client, prefix: str, window: int, runs: int) -> float:
    """Median seconds of one cold aggregate read (a new reader: every bucket fetched and parsed)."""
    times = []
    for _ in range(runs):
        fresh = Aggregates(client, prefix)
        t0 = time.perf_counter()
        body = fresh.window(window, now=NOW + 0.5)
        times.append(time.perf_counter() - t0)
    assert body["total"]["count"] > 0
    return statistics.median(times)


def real_bins() -> None:
    """Sketch buckets used by real-ish series: where MAX_SKETCH_BINS comes from."""
    from collections import defaultdict

    from analytics.cache.sketch import bucket_positions
    from analytics.producer.traffic import Traffic

    def distinct(values) -> int:
        return len(np.unique(bucket_positions(values)))

    traffic = Traffic(["web", "mobile", "api"], seed=3)
    minute, second = defaultdict(list), defaultdict(list)
    for s in range(60):  # the generator at 10,000 ev/s for a minute
        for e in traffic.events(10_000, (NOW + s) * 1000.0):
            minute[(e["source"], e["metric"])].append(e["value"])
            second[(s, e["source"], e["metric"])].append(e["value"])
    print(f"{max(distinct(v) for v in minute.values()):7d}  the generator at 10,000 ev/s, busiest series, minute "
          f"(second: {max(distinct(v) for v in second.values())})")
    rng = np.random.default_rng(1)
    n = 600_000  # one series at 10,000 ev/s for a minute
    for name, values in {
        "latency ms, lognormal(ln 120, sigma 1.5)": rng.lognormal(np.log(120), 1.5, n),
        "latency s, lognormal(0, sigma 2.5): very heavy tail": rng.lognormal(0, 2.5, n),
        "order amounts, (pareto(1.2) + 1) * 5, in cents": np.round((rng.pareto(1.2, n) + 1) * 5, 2),
        "bytes, log-uniform 1..1e9": np.round(10 ** rng.uniform(0, 9, n)),
        "ratio, log-uniform 1e-6..1": 10 ** rng.uniform(-6, 0, n),
        "temperature, normal(20, 15)": rng.normal(20, 15, n),
        "P&L, normal(0, 1000), both signs": rng.normal(0, 1000, n),
        "P&L, both signs, log-uniform 1e-2..1e6": rng.choice([-1, 1], n) * 10 ** rng.uniform(-2, 6, n),
        "every double (random bit patterns)": every_double(rng, n),
    }.items():
        print(f"{distinct(values):7d}  {name}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--values", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--bins", action="store_true", help="only: buckets used by real-ish series (one minute)")
    args = parser.parse_args()
    if args.bins:
        real_bins()
        return
    bound = getattr(__import__("analytics.cache.sketch", fromlist=["x"]), "MAX_SKETCH_BINS", None)
    print(f"analytics from {agg_module.__file__}; MAX_SKETCH_BINS = {bound}")
    with redis_server() as (url, _, _):
        client = redis.Redis.from_url(url)
        rows = []
        for run in range(args.runs):
            client.flushall()
            prefix = f"bench{run}"
            values = every_double(np.random.default_rng(run), args.values)
            script_s = feed(client, Aggregates(client, prefix), values)
            minute, second = f"{prefix}:m:{(NOW - 60) // 60}", f"{prefix}:s:{NOW - 30}"
            rows.append({
                "script_s": script_s,
                "minute_fields": client.hlen(minute),
                "minute_bytes": client.memory_usage(minute, samples=0),
                "second_fields": client.hlen(second),
                "second_bytes": client.memory_usage(second, samples=0),
                "read60_s": read_time(client, prefix, 60, 3),
                "read3600_s": read_time(client, prefix, 3600, 3),
            })
        med = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
        print(f"{args.values} values over the double range, one series, one second, batches of 1,000, "
              f"median of {args.runs}:")
        print(f"  MEMORY USAGE: second bucket {med['second_bytes'] / 1024:.1f} KiB ({med['second_fields']:.0f} fields),"
              f" minute bucket {med['minute_bytes'] / 1024:.1f} KiB ({med['minute_fields']:.0f} fields)")
        print(f"  Redis time in the bucket script for the whole feed: {med['script_s'] * 1000:.0f} ms")
        print(f"  cold aggregate read (a new reader), window=60 (the second bucket): {med['read60_s'] * 1000:.1f} ms;"
              f" window=3600 (the minute bucket): {med['read3600_s'] * 1000:.1f} ms")

        # The generator's traffic: what the bound costs where it is never reached.
        from analytics.producer.traffic import Traffic
        sizes = []
        for run in range(args.runs):
            client.flushall()
            traffic = Traffic(["web", "mobile", "api"], seed=run)
            agg = Aggregates(client, "gen")
            client.config_resetstat()
            for s in range(60):
                events = traffic.events(1000, (NOW - 60 + s) * 1000.0)
                with client.pipeline(transaction=False) as pipe:
                    agg.queue_updates(pipe, bucket_updates(events))
                    pipe.execute()
            stats = client.info("commandstats")
            script_s = sum(v["usec"] for k, v in stats.items() if k in ("cmdstat_evalsha", "cmdstat_eval")) / 1e6
            minute = f"gen:m:{(NOW - 60) // 60}"
            seconds = client.keys("gen:s:*")
            sizes.append((client.memory_usage(minute, samples=0), client.hlen(minute),
                          statistics.median(client.memory_usage(k, samples=0) for k in seconds), script_s,
                          read_time(client, "gen", 60, 3)))
        m = [statistics.median(x[i] for x in sizes) for i in range(5)]
        print(f"generator traffic, 1,000 ev/s for a minute (18 series), median of {args.runs}: minute bucket "
              f"{m[1]:.0f} fields {m[0] / 1024:.1f} KiB, a second bucket {m[2] / 1024:.1f} KiB, "
              f"script {m[3] * 1000:.0f} ms, cold read window=60 {m[4] * 1000:.1f} ms")


if __name__ == "__main__":
    main()
