"""Write side: a batch of events pre-aggregated per bucket and (source, metric), ready for the
bucket script, so a batch costs one script call per touched bucket whatever its size."""
from __future__ import annotations

import itertools
import math
import os
from collections import defaultdict
from dataclasses import dataclass, field
from operator import itemgetter

import numpy as np

from analytics.cache import sketch
from analytics.cache.sketch import bounded_buckets, bucket_positions, field_keys


@dataclass
class Stats:
    """count/sum/min/max and sketch counts (bucket key -> n) of one (source, metric) in one batch."""

    count: int = 0
    total: float = 0.0
    low: float = math.inf
    high: float = -math.inf
    sketch: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def merge(self, other: Stats) -> None:
        self.count += other.count
        self.total += other.total
        self.low = min(self.low, other.low)
        self.high = max(self.high, other.high)
        for key, n in other.sketch.items():
            self.sketch[key] += n


Updates = dict[str, dict[str, Stats]]  # bucket key suffix ('s:<sec>' / 'm:<min>') -> '<source>|<metric>' -> Stats
_PAIR, _TS, _VALUE = itemgetter("source", "metric"), itemgetter("ts"), itemgetter("value")


def bucket_updates(events: list[dict]) -> Updates:
    """Pre-aggregate a batch in memory, grouped with numpy: the three fields it needs are pulled
    out once (map() with itemgetter keeps the per-event loop in C) and grouped per second and
    per minute. See bench/README.md for why there is no second, per-event path."""
    n = len(events)
    if not n:
        return {}
    values = np.fromiter(map(_VALUE, events), dtype=np.float64, count=n)
    positions = bucket_positions(values)
    keys = list(map(_PAIR, events))
    pair_ids = {key: i for i, key in enumerate(dict.fromkeys(keys))}
    pairs = np.fromiter(map(pair_ids.__getitem__, keys), dtype=np.int64, count=n)
    seconds = (np.fromiter(map(_TS, events), dtype=np.float64, count=n) // 1000).astype(np.int64)
    names = [f"{source}|{metric}" for source, metric in pair_ids]
    out: Updates = {}
    _grouped_stats(out, "s", seconds, pairs, values, positions, names)
    _grouped_stats(out, "m", seconds // 60, pairs, values, positions, names)
    return out


def _grouped_stats(out: Updates, kind: str, buckets, pairs, values, positions, names: list[str]) -> None:
    """Add one Stats per (bucket, pair) present in the batch to `out`, keyed '<kind>:<bucket>'."""
    first_bucket = int(buckets.min())
    groups, inverse = np.unique((buckets - first_bucket) * len(names) + pairs, return_inverse=True)
    counts = np.bincount(inverse)
    totals = np.bincount(inverse, weights=values)
    by_value = np.lexsort((values, inverse))  # grouped, ascending value within each group
    ends = np.cumsum(counts)
    lows = values[by_value[ends - counts]]
    highs = values[by_value[ends - 1]]
    # Sketch: count per (group, position) in one pass; cells come out sorted by group, so each
    # group's sketch is one slice, turned into a dict without a Python loop per bucket.
    lo_pos = int(positions.min())
    span = int(positions.max()) - lo_pos + 1
    cells, cell_counts = np.unique(inverse * span + (positions - lo_pos), return_counts=True)
    field_names = field_keys((cells % span + lo_pos).tolist())
    bounds = np.searchsorted(cells // span, np.arange(len(groups) + 1)).tolist()
    cell_counts = cell_counts.tolist()
    sketches = [defaultdict(int, zip(field_names[a:b], cell_counts[a:b])) for a, b in zip(bounds, bounds[1:])]
    for i, (group, count, total, low, high) in enumerate(zip(groups.tolist(), counts.tolist(), totals.tolist(),
                                                            lows.tolist(), highs.tolist())):
        bucket, pair = divmod(group, len(names))
        into = out.setdefault(f"{kind}:{bucket + first_bucket}", defaultdict(Stats))
        into[names[pair]] = Stats(count, total, low, high, sketches[i])


def merge_updates(total: Updates, part: Updates) -> None:
    """Fold one chunk's bucket updates into `total` (a batch prepared in several chunks).
    `part` is consumed: what `total` lacks is taken over, not copied (most batches are one chunk)."""
    for suffix, pairs in part.items():
        into = total.get(suffix)
        if into is None:
            total[suffix] = pairs
            continue
        for pair, stats in pairs.items():
            mine = into.get(pair)
            if mine is None:
                into[pair] = stats
            else:
                mine.merge(stats)


# Every write sets a version never used before in any process or run (random prefix, counter),
# so a bucket lost with a Redis restart and written anew cannot look unchanged to a reader.
_VERSION_PREFIX = os.urandom(6).hex()
_versions = itertools.count()


def script_args(ttl: int, pairs: dict[str, Stats]) -> list:
    """ARGV of apply_bucket.lua for one bucket: ttl, a new version, the sketch bound, then each
    pair's figures. A batch's sketch is folded to the bound here already (folding is the same
    whether done before or after a merge: sketch.MAX_SKETCH_BINS), so a batch of values all over
    the double range sends at most that many keys per pair, not one per distinct bucket."""
    max_bins = sketch.MAX_SKETCH_BINS
    args: list = [ttl, f"{_VERSION_PREFIX}-{next(_versions)}", max_bins]
    for pair, st in pairs.items():
        buckets = bounded_buckets(st.sketch, max_bins)
        args += [pair, st.count, repr(st.total), repr(st.low), repr(st.high), len(buckets)]
        for key, n in buckets.items():
            args += [key, n]
    return args
