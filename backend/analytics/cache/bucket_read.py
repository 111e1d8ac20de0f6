"""Read side: bucket hashes parsed into per-(source, metric) figures, and the process's copies of
them, which a read refreshes only where Redis holds a newer version."""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from cachetools import LRUCache

from analytics.cache.bucket_write import Stats
from analytics.cache.scripts import READ_BUCKETS
from analytics.cache.sketch import DenseSketch, Sketch, position

QUANTILES = (0.5, 0.95, 0.99)
PAUSE_FIELDS = 5_000  # bucket fields parsed between two pauses (~1.5 us each)
Pair = tuple[str, str]  # (source, metric)
Bucket = dict[Pair, "PairStats"]


@dataclass
class PairStats:
    """A (source, metric) as read back from one bucket, or merged over a window."""

    count: int
    total: float
    low: float
    high: float
    sketch: Sketch

    @classmethod
    def merge(cls, parts: list[PairStats]) -> PairStats:
        """Sketches merge to at most MAX_SKETCH_BINS buckets too (DenseSketch.merge folds)."""
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


@lru_cache(maxsize=200_000)  # the same few thousand field names come back on every read
def _field(raw_field: bytes) -> tuple[Pair | None, str | None, int | None]:
    """Hash field '<source>|<metric>|<stat>' -> (pair, stat, sketch position or None)."""
    parts = raw_field.decode().split("|", 2)
    if len(parts) != 3:  # `_v`, and the sketch bound's `#` and `@<source>|<metric>`
        return None, None, None
    return (parts[0], parts[1]), parts[2], None if parts[2] in _STATS else position(parts[2])


def parse_bucket(raw: list[bytes]) -> Bucket:
    """A bucket hash as HGETALL's flat [field, value, ...] reply -> (source, metric) -> PairStats."""
    stats: dict[Pair, dict[str, bytes]] = {}
    sketches: dict[Pair, tuple[list[int], list[int]]] = {}
    for raw_field, value in zip(raw[::2], raw[1::2]):
        pair, stat, pos = _field(raw_field)
        if pair is None:
            continue
        if pos is None:
            stats.setdefault(pair, {})[stat] = value
        else:
            positions, counts = sketches.setdefault(pair, ([], []))
            positions.append(pos)
            counts.append(int(value))
    out = {}
    for pair in dict.fromkeys([*stats, *sketches]):
        st = stats.get(pair, {})
        out[pair] = PairStats(int(st.get("c", 0)), float(st.get("s", 0.0)), float(st.get("lo", math.inf)),
                              float(st.get("hi", -math.inf)), DenseSketch.from_positions(*sketches.get(pair, ([], []))))
    return out


def with_updates(bucket: Bucket, pairs: dict[str, Stats]) -> Bucket:
    """A parsed bucket plus one write's updates, as a new dict: the held one may be part of a
    response being merged right now. Sums are added in double precision, as the bucket script adds
    them, so this copy equals a fresh read of the bucket."""
    out = dict(bucket)
    for name, st in pairs.items():
        pair = tuple(name.split("|", 1))
        held = out.get(pair)
        if held is None:
            out[pair] = PairStats(st.count, st.total, st.low, st.high, DenseSketch.from_buckets(st.sketch))
        else:
            out[pair] = PairStats(held.count + st.count, held.total + st.total, min(held.low, st.low),
                                  max(held.high, st.high), held.sketch.plus(st.sketch))
    return out


class BucketReader:
    """Parsed buckets this process holds, by key, with the version they were parsed at."""

    def __init__(self, redis, max_buckets: int = 3000):
        self._script = redis.register_script(READ_BUCKETS)  # EVALSHA, loads on NOSCRIPT
        self.held: LRUCache[str, tuple[bytes, Bucket]] = LRUCache(max_buckets)
        self.absent: LRUCache[str, bool] = LRUCache(10_000)  # found missing: not read ahead again
        # Called between buckets every PAUSE_FIELDS fields parsed (the app sets it to a yield to
        # the loop): the first read of an hour's window parses ~60,000 fields, 20+ ms at once.
        self.pause: Callable[[], None] | None = None

    def read(self, keys: list[str]) -> tuple[list[Bucket], list[bytes | None]]:
        """Parsed buckets for `keys` and their versions, in one round trip: the script returns
        only the buckets that changed since this process last parsed them."""
        held = [self.held.get(k) for k in keys]  # taken before the call: the LRU may move on
        replies = self._script(keys=keys, args=[h[0] if h else b"" for h in held])
        parsed: list[Bucket] = []
        versions: list[bytes | None] = []
        fields = 0
        for key, entry, reply in zip(keys, held, replies):
            if self.pause is not None and fields >= PAUSE_FIELDS:
                self.pause()
                fields = 0
            if reply == 0:  # no such bucket (never written, or expired)
                parsed.append({})
                versions.append(None)
                self.absent[key] = True
            elif reply == 1:  # unchanged: the version we sent matched
                parsed.append(entry[1])
                versions.append(entry[0])
            else:
                bucket = parse_bucket(reply)
                fields += len(reply) // 2
                version = next((v for f, v in zip(reply[::2], reply[1::2]) if f == b"_v"), None)
                # Only over what was held when the reply was taken: during a pause the writer may
                # have carried this bucket forward to a newer version (Aggregates.note_written).
                if version is not None and self.held.get(key) is entry:
                    self.held[key] = (version, bucket)
                parsed.append(bucket)
                versions.append(version)
        return parsed, versions
