"""Rolling aggregates in Redis: per-second and per-minute buckets per (source, metric).

Layout: one hash per bucket, `<prefix>:s:<epoch second>` (kept a little over an hour) and
`<prefix>:m:<epoch minute>` (kept a little over a day). Fields are `<source>|<metric>|<stat>`
with stat c (count), s (sum), lo (min), hi (max) and the sketch buckets (k<i>, n<i>, z).
A window is read as full minutes plus the edge seconds, so counts are exact to the second
while a one-hour window costs ~60 reads, not 3600. State lives only in Redis: every replica
answers the same and a restart loses nothing.
"""
from __future__ import annotations

import math
import time
from collections import defaultdict
from dataclasses import dataclass, field

from analytics.cache.sketch import bucket_key, quantiles

SECOND_TTL = 3600 + 600
MINUTE_TTL = 86400 + 3600
MAX_WINDOW = 86400
QUANTILES = (0.5, 0.95, 0.99)

# Applies one bucket's pre-aggregated updates atomically. min/max need a compare, which plain
# HINCRBY cannot do; one script per bucket keeps a batch at one round trip.
APPLY_BUCKET_LUA = """
local key = KEYS[1]
local i = 2
local n = #ARGV
while i <= n do
  local p = ARGV[i]
  redis.call('HINCRBY', key, p .. '|c', ARGV[i + 1])
  redis.call('HINCRBYFLOAT', key, p .. '|s', ARGV[i + 2])
  local lo = redis.call('HGET', key, p .. '|lo')
  if (not lo) or tonumber(ARGV[i + 3]) < tonumber(lo) then redis.call('HSET', key, p .. '|lo', ARGV[i + 3]) end
  local hi = redis.call('HGET', key, p .. '|hi')
  if (not hi) or tonumber(ARGV[i + 4]) > tonumber(hi) then redis.call('HSET', key, p .. '|hi', ARGV[i + 4]) end
  local nk = tonumber(ARGV[i + 5])
  i = i + 6
  for j = 0, nk - 1 do
    redis.call('HINCRBY', key, p .. '|' .. ARGV[i + 2 * j], ARGV[i + 2 * j + 1])
  end
  i = i + 2 * nk
end
redis.call('EXPIRE', key, ARGV[1])
return 1
"""


@dataclass
class Stats:
    """count/sum/min/max and sketch of one (source, metric) in one bucket or merged window."""

    count: int = 0
    total: float = 0.0
    low: float = math.inf
    high: float = -math.inf
    sketch: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def add(self, value: float) -> None:
        self.count += 1
        self.total += value
        self.low = min(self.low, value)
        self.high = max(self.high, value)
        self.sketch[bucket_key(value)] += 1

    def merge(self, other: Stats) -> None:
        self.count += other.count
        self.total += other.total
        self.low = min(self.low, other.low)
        self.high = max(self.high, other.high)
        for key, n in other.sketch.items():
            self.sketch[key] += n

    def summary(self, seconds: int) -> dict:
        p50, p95, p99 = quantiles(self.sketch, QUANTILES)

        def clamp(v: float | None) -> float | None:  # a sketch estimate never leaves [min, max]
            return v if v is None else min(max(v, self.low), self.high)

        return {
            "count": self.count,
            "sum": self.total,
            "avg": self.total / self.count if self.count else None,
            "min": self.low if self.count else None,
            "max": self.high if self.count else None,
            "rate": self.count / seconds,
            "p50": clamp(p50),
            "p95": clamp(p95),
            "p99": clamp(p99),
        }


def bucket_updates(events: list[dict]) -> dict[str, dict[str, Stats]]:
    """Pre-aggregate a batch in memory: bucket key suffix ('s:<sec>' / 'm:<min>') -> pair -> Stats."""
    per_second: dict[int, dict[str, Stats]] = defaultdict(lambda: defaultdict(Stats))
    for event in events:
        per_second[int(event["ts"] // 1000)][f"{event['source']}|{event['metric']}"].add(event["value"])
    out: dict[str, dict[str, Stats]] = {}
    for sec, pairs in per_second.items():
        out[f"s:{sec}"] = pairs
        minute = out.setdefault(f"m:{sec // 60}", defaultdict(Stats))
        for pair, stats in pairs.items():
            minute[pair].merge(stats)
    return out


def _script_args(ttl: int, pairs: dict[str, Stats]) -> list:
    args: list = [ttl]
    for pair, st in pairs.items():
        args += [pair, st.count, repr(st.total), repr(st.low), repr(st.high), len(st.sketch)]
        for key, n in st.sketch.items():
            args += [key, n]
    return args


class Aggregates:
    """Writes batches into the bucket hashes and answers window queries from them."""

    def __init__(self, redis, prefix: str):
        self.redis = redis
        self.prefix = prefix
        self._apply = redis.register_script(APPLY_BUCKET_LUA)

    def queue_writes(self, pipe, events: list[dict]) -> None:
        """Add this batch's bucket updates to `pipe` (the caller's one pipeline per batch)."""
        for suffix, pairs in bucket_updates(events).items():
            ttl = SECOND_TTL if suffix[0] == "s" else MINUTE_TTL
            self._apply(keys=[f"{self.prefix}:{suffix}"], args=_script_args(ttl, pairs), client=pipe)

    def window_keys(self, first: int, last: int, now_sec: int) -> tuple[list[str], int]:
        """Bucket keys covering seconds first..last: full minutes, edge seconds where still kept.
        Returns the keys and the actual first second covered (earlier when an old edge is rounded
        down to its minute because its seconds have expired)."""
        keys: list[str] = []
        oldest_second_kept = now_sec - SECOND_TTL + 60
        if first < oldest_second_kept:
            first -= first % 60
        sec = first
        while sec <= last:
            if sec % 60 == 0 and sec + 59 <= last:
                keys.append(f"{self.prefix}:m:{sec // 60}")
                sec += 60
            else:
                keys.append(f"{self.prefix}:s:{sec}")
                sec += 1
        return keys, first

    def window(self, seconds: int, metric: str | None = None, source: str | None = None,
               now: float | None = None) -> dict:
        """The aggregate response for the last `seconds` seconds, including the current one."""
        now = time.time() if now is None else now
        last = int(now)
        keys, first = self.window_keys(last - seconds + 1, last, last)
        pipe = self.redis.pipeline(transaction=False)
        for key in keys:
            pipe.hgetall(key)
        merged: dict[str, Stats] = defaultdict(Stats)
        for bucket in pipe.execute():
            _merge_bucket(bucket, merged)
        return _response(merged, seconds, first, now, metric, source)


def _merge_bucket(bucket: dict[bytes, bytes], merged: dict[str, Stats]) -> None:
    for raw_field, raw_value in bucket.items():
        src, met, stat = raw_field.decode().split("|", 2)
        st = merged[f"{src}|{met}"]
        if stat == "c":
            st.count += int(raw_value)
        elif stat == "s":
            st.total += float(raw_value)
        elif stat == "lo":
            st.low = min(st.low, float(raw_value))
        elif stat == "hi":
            st.high = max(st.high, float(raw_value))
        else:
            st.sketch[stat] += int(raw_value)


def _response(merged: dict[str, Stats], seconds: int, first: int, now: float,
              metric: str | None, source: str | None) -> dict:
    by_metric: dict[str, Stats] = defaultdict(Stats)
    by_source: dict[str, int] = defaultdict(int)
    for pair, st in merged.items():
        src, met = pair.split("|", 1)
        if (metric and met != metric) or (source and src != source):
            continue
        by_metric[met].merge(st)
        by_source[src] += st.count
    span = int(now) - first + 1
    total = sum(by_source.values())
    return {
        "window": seconds,
        "from": first * 1000,
        "to": int(now * 1000),
        "total": {"count": total, "rate": total / span},
        "metrics": {name: st.summary(span) for name, st in sorted(by_metric.items())},
        "sources": {name: {"count": n, "rate": n / span} for name, n in sorted(by_source.items())},
    }
