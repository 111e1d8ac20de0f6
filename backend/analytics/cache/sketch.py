"""A mergeable quantile sketch: DDSketch-style logarithmic buckets with <= 1% relative error.

A value v > 0 lands in bucket ceil(log_gamma(v)); every value in a bucket is within
RELATIVE_ACCURACY of the bucket's representative, so merging is adding counts per bucket and
quantiles over merged buckets keep the same bound (Masson et al., VLDB 2019).
Bucket keys are short strings so they can be hash fields in Redis: "k<i>" for positive values,
"n<i>" for negative ones (by magnitude) and "z" for values too close to zero to index.

A sketch holds at most MAX_SKETCH_BINS buckets: past that its lowest buckets are folded into the
lowest one it keeps (DDSketch's collapsing store, on the value axis; see MAX_SKETCH_BINS).
"""
from __future__ import annotations

import math
import sys
from collections.abc import Iterable, Mapping

# Imported with the module, not on first use: the import takes ~0.1 s, which on first use stalled
# the event loop in the middle of a stream.
import numpy as np

RELATIVE_ACCURACY = 0.01
GAMMA = (1 + RELATIVE_ACCURACY) / (1 - RELATIVE_ACCURACY)
_LOG_GAMMA = math.log(GAMMA)
MIN_INDEXABLE = 1e-9


# Positions order the buckets by value on one integer axis: n<i> -> -(OFFSET + i),
# z -> 0, k<i> -> OFFSET + i. OFFSET keeps the indexes of tiny magnitudes (negative i, down
# to log_gamma(MIN_INDEXABLE) ~ -1040) on their side of zero.
OFFSET = 2048


def bucket_positions(values):
    """The sketch position (see `position`) of each value, for a whole batch at once: the one
    definition of which bucket a value lands in."""
    v = np.asarray(values, dtype=np.float64)
    magnitude = np.abs(v)
    index = np.ceil(np.log(np.maximum(magnitude, MIN_INDEXABLE)) / _LOG_GAMMA).astype(np.int64)
    return np.where(magnitude < MIN_INDEXABLE, 0, np.where(v > 0, OFFSET + index, -(OFFSET + index)))


def position(key: str) -> int:
    if key == "z":
        return 0
    index = int(key[1:])
    return OFFSET + index if key[0] == "k" else -(OFFSET + index)


_keys: dict[int, str] = {}


def key_of(pos: int) -> str:
    """The hash field name of a bucket position: the inverse of `position`."""
    key = _keys.get(pos)
    if key is None:
        key = "z" if pos == 0 else f"k{pos - OFFSET}" if pos > 0 else f"n{-pos - OFFSET}"
        if len(_keys) < 100_000:  # bounded: ~75,000 positions cover every float
            _keys[pos] = key
    return key


def field_keys(positions: list[int]) -> list[str]:
    """key_of for many positions (a batch's sketch cells): once per distinct one, then a C lookup."""
    keys = {pos: key_of(pos) for pos in set(positions)}
    return list(map(keys.__getitem__, positions))


# --- The bound: at most MAX_SKETCH_BINS buckets per sketch ------------------------------------
# One series in one bucket (a second or a minute) is one sketch, in Redis (apply_bucket.lua) and in
# memory (every sketch below); so is a window's merge. Values anywhere in the double range would
# otherwise use up to ~73,000 buckets per series: 100,000 such values in one second made each of
# its two bucket hashes 2.9 MB (36,619 fields), and every read parsed them all.
#
# 2,048 (DDSketch's default too) keeps real data exact. Measured on one series for a minute at
# 10,000 ev/s (600,000 values; `bench/sketch_bound.py --bins`): the generator's busiest series
# uses 211 buckets, a latency in ms drawn lognormal (sigma 1.5) 622, bytes log-uniform over 1..1e9
# 891, a normal(0, 1000) of both signs 1,050, values of both signs log-uniform over 1e-2..1e6 (16
# decades in all) 1,844. 2,048 buckets span ~17.8 decades of one sign (115 per decade at 1%).
#
# Which buckets fold: the lowest values (lowest positions; the most negative first), so every
# quantile above the fold keeps its 1% bound, and the API serves the upper half (p50, p95, p99).
# A quantile keeps it while the values at or above it lie in at most MAX_SKETCH_BINS distinct
# buckets (p99: the top 1% of the values; p50: the upper half); below the fold it reads as the
# lowest kept bucket's value: too high, never too low (answers clamp it to [min, max]).
# Folding everything below the B-th highest distinct position into it does not depend on the
# order of merges: the result is that of folding all the values at once. So a bucket written in
# any batches, a merge of any buckets and the writer's carried-forward copy all agree, whatever
# was folded on the way, and a window's sketch is the fold of all its values.
#
# A constant, not a setting: it shapes what every writer leaves in Redis and what every reader
# folds to, so replicas configured apart would answer the same window differently; and nothing
# needs tuning it: it is the memory bound per series per bucket, the series count has MAX_SERIES.
MAX_SKETCH_BINS = 2048


def bounded_buckets(buckets: Mapping[str, int], max_bins: int | None = None) -> Mapping[str, int]:
    """Bucket key -> count folded to at most `max_bins` keys (the writer's batch, before Redis)."""
    max_bins = MAX_SKETCH_BINS if max_bins is None else max_bins
    if len(buckets) <= max_bins:
        return buckets
    ordered = sorted(buckets, key=position)
    cut = len(ordered) - max_bins
    out = {key: buckets[key] for key in ordered[cut:]}
    out[ordered[cut]] += sum(buckets[key] for key in ordered[:cut])
    return out


# --- Reading: dense counts over a contiguous range of bucket positions -------------------
# Windows merge dozens of buckets per (source, metric); adding numpy slices keeps that at a
# few microseconds per merge instead of a Python loop over every bucket.


def position_value(pos: int) -> float:
    """The representative value of a bucket (GAMMA**(i-1), GAMMA**i]: the harmonic mean of its
    bounds, within RELATIVE_ACCURACY of each. The top bucket holds values up to the largest
    double (valid events) but its upper bound lies past it (GAMMA ** i raises OverflowError):
    there the bound is the largest double itself, so the value stays finite and within 1%.
    GAMMA ** i is scaled down, never doubled first: 2 * GAMMA ** i overflows for the ~35 buckets
    above 9e307, whose values then read up to 6% high (1.628e308 read as 1.691e308)."""
    if pos == 0:
        return 0.0
    index = abs(pos) - OFFSET
    try:
        magnitude = GAMMA ** index * (2 / (GAMMA + 1))
    except OverflowError:
        magnitude = math.inf
    if magnitude > sys.float_info.max:
        magnitude = 2 / (1 / GAMMA ** (index - 1) + 1 / sys.float_info.max)
    return magnitude if pos > 0 else -magnitude


# A sketch is held dense (one count per position from its lowest to its highest bucket) while
# that range is at most MAX_DENSE_SPAN positions: 32 KB, ~1.6e17 between its smallest and largest
# magnitude, which real metrics never leave. Wider (values from 1e-300 to 1e300, or large values
# of both signs: the whole range is ~75,000 positions, 600 KB per sketch) it is held sparse, so
# memory and merge time follow the buckets in use, never the distance between them.
MAX_DENSE_SPAN = 4096


def _over_bound(counts, max_bins: int | None) -> tuple[int, np.ndarray | None]:
    """(the bound, the indices of the buckets in use) when more than the bound are in use, else
    (the bound, None). A sketch that spans no more buckets than the bound needs no count."""
    max_bins = MAX_SKETCH_BINS if max_bins is None else max_bins
    if len(counts) <= max_bins:
        return max_bins, None
    used = np.flatnonzero(counts)
    return max_bins, (used if len(used) > max_bins else None)


class DenseSketch:
    """Bucket counts as a numpy array starting at position `lo`."""

    __slots__ = ("counts", "lo")

    def __init__(self, lo: int, counts):
        self.lo = lo
        self.counts = counts

    @classmethod
    def from_buckets(cls, buckets: Mapping[str, int]) -> Sketch:
        return cls.from_positions([position(k) for k in buckets], list(buckets.values()))

    @classmethod
    def from_positions(cls, positions: list[int], counts: list[int]) -> Sketch:
        """From bucket positions and their counts (each position once)."""
        if not positions:
            return cls(0, np.zeros(0, dtype=np.int64))
        lo, hi = min(positions), max(positions)
        if hi - lo >= MAX_DENSE_SPAN:
            return SparseSketch.from_positions(positions, counts)
        dense = np.zeros(hi - lo + 1, dtype=np.int64)
        dense[np.asarray(positions, dtype=np.int64) - lo] = counts
        return cls(lo, dense).bounded()

    @classmethod
    def merge(cls, sketches: list[Sketch]) -> Sketch:
        parts = [s for s in sketches if len(s.counts)]
        if len(parts) == 1:
            return parts[0]
        if not parts:
            return cls(0, np.zeros(0, dtype=np.int64))
        if any(type(s) is SparseSketch for s in parts):
            return SparseSketch.merge(parts)
        lo = min(s.lo for s in parts)
        hi = max(s.lo + len(s.counts) for s in parts)
        if hi - lo > MAX_DENSE_SPAN:
            return SparseSketch.merge(parts)
        counts = np.zeros(hi - lo, dtype=np.int64)
        for s in parts:
            counts[s.lo - lo: s.lo - lo + len(s.counts)] += s.counts
        return cls(lo, counts).bounded()

    def plus(self, buckets: Mapping[str, int]) -> Sketch:
        """This sketch with counts added per bucket key, as a new sketch (this one may be shared).
        A batch brings a few keys per (source, metric), mostly inside the held range: one copy
        and a scalar add each beat numpy's per-call cost on such small inputs (~5 vs ~28 us)."""
        if not buckets:
            return self
        positions = [position(k) for k in buckets]
        lo, hi = min(positions), max(positions) + 1
        if len(self.counts):
            lo, hi = min(lo, self.lo), max(hi, self.lo + len(self.counts))
        if hi - lo > MAX_DENSE_SPAN:
            return SparseSketch.merge([self, DenseSketch.from_positions(positions, list(buckets.values()))])
        if lo == self.lo and hi == self.lo + len(self.counts):
            counts = self.counts.copy()
        else:
            counts = np.zeros(hi - lo, dtype=np.int64)
            counts[self.lo - lo: self.lo - lo + len(self.counts)] = self.counts
        for pos, n in zip(positions, buckets.values()):
            counts[pos - lo] += n
        return DenseSketch(lo, counts).bounded()

    def bounded(self, max_bins: int | None = None) -> DenseSketch:
        """This sketch with its lowest buckets folded into the lowest of the `max_bins` highest
        in use (itself when it has no more)."""
        max_bins, used = _over_bound(self.counts, max_bins)
        if used is None:
            return self
        cut = int(used[len(used) - max_bins])
        counts = self.counts[cut:].copy()  # a copy: this sketch may be shared
        counts[0] += self.counts[:cut].sum()
        return DenseSketch(self.lo + cut, counts)

    def sparse(self) -> tuple:
        """(positions, counts) of the buckets in use."""
        used = np.flatnonzero(self.counts)
        return used + self.lo, self.counts[used]

    def quantiles(self, qs: Iterable[float]) -> list[float | None]:
        """Same convention as `quantiles`: the value at rank floor(q * (n - 1))."""
        cumulative = np.cumsum(self.counts)
        total = int(cumulative[-1]) if len(cumulative) else 0
        if total == 0:
            return [None for _ in qs]
        out = []
        for q in qs:
            rank = math.floor(q * (total - 1))
            out.append(position_value(self.lo + int(np.searchsorted(cumulative, rank, side="right"))))
        return out


class SparseSketch:
    """Bucket counts at sorted positions: for a sketch whose buckets lie too far apart to hold
    dense (MAX_DENSE_SPAN). Same answers as DenseSketch for the same buckets."""

    __slots__ = ("counts", "positions")

    def __init__(self, positions, counts):
        self.positions = positions
        self.counts = counts

    @classmethod
    def from_positions(cls, positions: list[int], counts: list[int]) -> SparseSketch:
        order = np.argsort(np.asarray(positions, dtype=np.int64), kind="stable")
        return cls(np.asarray(positions, dtype=np.int64)[order], np.asarray(counts, dtype=np.int64)[order]).bounded()

    @classmethod
    def merge(cls, parts: list[Sketch]) -> SparseSketch:
        pairs = [p.sparse() for p in parts]
        positions, inverse = np.unique(np.concatenate([pos for pos, _ in pairs]), return_inverse=True)
        counts = np.zeros(len(positions), dtype=np.int64)
        np.add.at(counts, inverse, np.concatenate([n for _, n in pairs]))
        return cls(positions, counts).bounded()

    def bounded(self, max_bins: int | None = None) -> SparseSketch:
        """As DenseSketch.bounded: the buckets below the `max_bins` highest in use folded into it."""
        max_bins, used = _over_bound(self.counts, max_bins)
        if used is None:
            return self
        positions, counts = self.positions[used], self.counts[used]
        cut = len(used) - max_bins
        kept = counts[cut:].copy()
        kept[0] += counts[:cut].sum()
        return SparseSketch(positions[cut:], kept)

    def plus(self, buckets: Mapping[str, int]) -> SparseSketch:
        if not buckets:
            return self
        return SparseSketch.merge([self, SparseSketch.from_positions([position(k) for k in buckets],
                                                                     list(buckets.values()))])

    def sparse(self) -> tuple:
        return self.positions, self.counts

    def quantiles(self, qs: Iterable[float]) -> list[float | None]:
        cumulative = np.cumsum(self.counts)
        total = int(cumulative[-1]) if len(cumulative) else 0
        if total == 0:
            return [None for _ in qs]
        return [position_value(int(self.positions[int(np.searchsorted(cumulative, math.floor(q * (total - 1)),
                                                                       side="right"))]))
                for q in qs]


Sketch = DenseSketch | SparseSketch
