"""Rolling aggregates in Redis: per-second and per-minute buckets per (source, metric).

Layout: one hash per bucket, `<prefix>:s:<epoch second>` (kept a little over an hour) and
`<prefix>:m:<epoch minute>` (kept a little over a day). Fields are `<source>|<metric>|<stat>`
with stat c (count), s (sum), lo (min), hi (max) and the sketch buckets (k<i>, n<i>, z).
A window is read as full minutes plus the edge seconds, so counts are exact to the second
while a one-hour window costs ~60 reads, not 3600. State lives only in Redis: every replica
answers the same and a restart loses nothing.

Reading: every write sets the bucket's version field `_v` to a token never used before (so a
bucket lost with a Redis restart and written anew cannot look unchanged); a process keeps the parsed form of
buckets it has read (bounded LRU) and re-reads a bucket only when its version moved, so a
one-hour window costs one small version check per bucket plus a parse of the live minute.
"""
from __future__ import annotations

import hashlib
import itertools
import math
import os
import time
from collections import OrderedDict, defaultdict
from dataclasses import dataclass, field

from analytics.cache.sketch import DenseSketch, bucket_key, position

SECOND_TTL = 3600 + 600
MINUTE_TTL = 86400 + 3600
MAX_WINDOW = 86400
QUANTILES = (0.5, 0.95, 0.99)

# Applies one bucket's pre-aggregated updates atomically. min/max need a compare, which plain
# HINCRBY cannot do; one script per bucket keeps a batch at one round trip.
APPLY_BUCKET_LUA = """
local key = KEYS[1]
local i = 3
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
redis.call('HSET', key, '_v', ARGV[2])
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


def merge_updates(total: dict[str, dict[str, Stats]], part: dict[str, dict[str, Stats]]) -> None:
    """Fold one chunk's bucket updates into `total` (a batch prepared in several chunks)."""
    for suffix, pairs in part.items():
        into = total.setdefault(suffix, defaultdict(Stats))
        for pair, stats in pairs.items():
            into[pair].merge(stats)


_VERSION_PREFIX = os.urandom(6).hex()
_versions = itertools.count()


def _script_args(ttl: int, pairs: dict[str, Stats]) -> list:
    args: list = [ttl, f"{_VERSION_PREFIX}-{next(_versions)}"]
    for pair, st in pairs.items():
        args += [pair, st.count, repr(st.total), repr(st.low), repr(st.high), len(st.sketch)]
        for key, n in st.sketch.items():
            args += [key, n]
    return args


@dataclass
class PairStats:
    """A (source, metric) as read back from one bucket, or merged over a window."""

    count: int
    total: float
    low: float
    high: float
    sketch: DenseSketch

    @classmethod
    def merge(cls, parts: list[PairStats]) -> PairStats:
        if len(parts) == 1:
            return parts[0]
        return cls(sum(p.count for p in parts), sum(p.total for p in parts), min(p.low for p in parts),
                   max(p.high for p in parts), DenseSketch.merge([p.sketch for p in parts]))

    def summary(self, seconds: int) -> dict:
        def clamp(v: float | None) -> float | None:  # a sketch estimate never leaves [min, max]
            return v if v is None else min(max(v, self.low), self.high)

        p50, p95, p99 = self.sketch.quantiles(QUANTILES)
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


_STATS = ("c", "s", "lo", "hi")
# Hash field -> ((source, metric), stat, sketch position or None). The same few thousand field
# names come back on every read of the live minute, so each is decoded and split only once.
_fields: dict[bytes, tuple] = {}
MAX_CACHED_FIELDS = 200_000


def _field(raw_field: bytes) -> tuple:
    known = _fields.get(raw_field)
    if known is not None:
        return known
    parts = raw_field.decode().split("|", 2)
    if len(parts) != 3:  # the version field `_v`
        known = (None, None, None)
    else:
        known = ((parts[0], parts[1]), parts[2], None if parts[2] in _STATS else position(parts[2]))
    if len(_fields) < MAX_CACHED_FIELDS:  # bounded however many names producers invent
        _fields[raw_field] = known
    return known


def parse_bucket(raw: dict[bytes, bytes]) -> dict[tuple[str, str], PairStats]:
    """A bucket hash as read from Redis -> (source, metric) -> PairStats."""
    stats: dict[tuple[str, str], dict[str, bytes]] = {}
    sketches: dict[tuple[str, str], tuple[list[int], list[int]]] = {}
    for raw_field, raw_value in raw.items():
        pair, stat, pos = _field(raw_field)
        if pair is None:
            continue
        if pos is None:
            stats.setdefault(pair, {})[stat] = raw_value
        else:
            positions, counts = sketches.setdefault(pair, ([], []))
            positions.append(pos)
            counts.append(int(raw_value))
    out = {}
    for pair in stats.keys() | sketches.keys():
        st = stats.get(pair, {})
        out[pair] = PairStats(int(st.get("c", 0)), float(st.get("s", 0.0)), float(st.get("lo", math.inf)),
                              float(st.get("hi", -math.inf)), DenseSketch.from_positions(*sketches.get(pair, ([], []))))
    return out


class BucketCache:
    """Parsed buckets by (key, version), least recently used out first."""

    def __init__(self, max_entries: int = 3000):
        self.max_entries = max_entries
        self._entries: OrderedDict[str, tuple[bytes, dict]] = OrderedDict()

    def get(self, key: str, version: bytes | None):
        entry = self._entries.get(key)
        if entry is None or entry[0] != version:
            return None
        self._entries.move_to_end(key)
        return entry[1]

    def put(self, key: str, version: bytes, parsed: dict) -> None:
        self._entries[key] = (version, parsed)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)


class Aggregates:
    """Writes batches into the bucket hashes and answers window queries from them."""

    def __init__(self, redis, prefix: str):
        self.redis = redis
        self.prefix = prefix
        self._sha = hashlib.sha1(APPLY_BUCKET_LUA.encode()).hexdigest()
        self.cache = BucketCache()
        self._merged: dict[tuple, tuple[dict[str, PairStats], dict[str, int]]] = {}

    def queue_writes(self, pipe, events: list[dict]) -> None:
        """Add this batch's bucket updates to `pipe` (the caller's one pipeline per batch)."""
        self.queue_updates(pipe, bucket_updates(events))

    def queue_updates(self, pipe, updates: dict[str, dict[str, Stats]]) -> None:
        """Add pre-aggregated bucket updates to `pipe`: one script call per bucket, whatever the
        number of events behind it. SCRIPT LOAD rides in the same pipeline, so a restarted Redis
        never answers NOSCRIPT and no extra round trip asks whether the script is there."""
        pipe.script_load(APPLY_BUCKET_LUA)
        for suffix, pairs in updates.items():
            ttl = SECOND_TTL if suffix[0] == "s" else MINUTE_TTL
            pipe.evalsha(self._sha, 1, f"{self.prefix}:{suffix}", *_script_args(ttl, pairs))

    def window_keys(self, first: int, last: int, now_sec: int) -> tuple[list[str], int]:
        """Bucket keys covering seconds first..last: whole minutes, and seconds at the old edge.
        The minute holding `now_sec` counts as whole: nothing is newer than now. Returns the keys
        and the first second covered (earlier than asked when an old edge is rounded down to its
        minute because its seconds have expired)."""
        keys: list[str] = []
        oldest_second_kept = now_sec - SECOND_TTL + 60
        if first < oldest_second_kept:
            first -= first % 60
        sec = first
        while sec <= last:
            if sec % 60 == 0 and (sec + 59 <= last or sec // 60 == now_sec // 60):
                keys.append(f"{self.prefix}:m:{sec // 60}")
                sec += 60
            else:
                keys.append(f"{self.prefix}:s:{sec}")
                sec += 1
        return keys, first

    def read_buckets(self, keys: list[str]) -> tuple[list[dict], list[bytes | None]]:
        """Parsed buckets for `keys` and their versions: a version check for all, a full read only
        for buckets that changed since this process last parsed them."""
        pipe = self.redis.pipeline(transaction=False)
        for key in keys:
            pipe.hget(key, "_v")
        versions = pipe.execute()
        parsed: list[dict | None] = [self.cache.get(k, v) if v else {} for k, v in zip(keys, versions)]
        missing = [i for i, p in enumerate(parsed) if p is None]
        if missing:
            pipe = self.redis.pipeline(transaction=False)
            for i in missing:
                pipe.hgetall(keys[i])
            for i, raw in zip(missing, pipe.execute()):
                parsed[i] = parse_bucket(raw)
                version = raw.get(b"_v")
                if version is not None:
                    self.cache.put(keys[i], version, parsed[i])
        return parsed, versions

    def window(self, seconds: int, metric: str | None = None, source: str | None = None,
               now: float | None = None) -> dict:
        """The aggregate response for the last `seconds` seconds, including the current one."""
        now = time.time() if now is None else now
        last = int(now)
        keys, first = self.window_keys(last - seconds + 1, last, last)
        buckets, versions = self.read_buckets(keys)
        # The whole minutes before the current one only change with late events (which change
        # their versions), so their merge is kept and reused while the window slides through
        # the minute; only the edge seconds and the live minute are merged on every request.
        live_minute = f"{self.prefix}:m:{last // 60}"
        closed = {i for i, k in enumerate(keys) if k.startswith(f"{self.prefix}:m:") and k != live_minute}
        memo_key = (metric, source, tuple((keys[i], versions[i]) for i in sorted(closed)))
        middle = self._merged.get(memo_key)
        if middle is None:
            middle = _merge([buckets[i] for i in sorted(closed)], metric, source)
            if len(self._merged) >= 32:  # bounded: a handful of windows and filters in use
                self._merged.clear()
            self._merged[memo_key] = middle
        by_metric, by_source = _merge([b for i, b in enumerate(buckets) if i not in closed], metric, source)
        for name, stats in middle[0].items():
            by_metric[name] = PairStats.merge([stats, by_metric[name]]) if name in by_metric else stats
        for name, n in middle[1].items():
            by_source[name] = by_source.get(name, 0) + n
        span = last - first + 1
        total = sum(by_source.values())
        return {
            "window": seconds,
            "from": first * 1000,
            "to": int(now * 1000),
            "total": {"count": total, "rate": total / span},
            "metrics": {name: stats.summary(span) for name, stats in sorted(by_metric.items())},
            "sources": {name: {"count": n, "rate": n / span} for name, n in sorted(by_source.items())},
        }


def _merge(buckets: list[dict], metric: str | None, source: str | None) -> tuple[dict[str, PairStats], dict[str, int]]:
    """Merge parsed buckets into per-metric stats and per-source counts, filtered."""
    by_metric: dict[str, list[PairStats]] = defaultdict(list)
    by_source: dict[str, int] = defaultdict(int)
    for bucket in buckets:
        for (src, met), stats in bucket.items():
            if (metric and met != metric) or (source and src != source):
                continue
            by_metric[met].append(stats)
            by_source[src] += stats.count
    return {name: PairStats.merge(parts) for name, parts in by_metric.items()}, dict(by_source)
