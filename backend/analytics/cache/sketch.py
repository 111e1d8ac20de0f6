"""A mergeable quantile sketch: DDSketch-style logarithmic buckets with <= 1% relative error.

A value v > 0 lands in bucket ceil(log_gamma(v)); every value in a bucket is within
RELATIVE_ACCURACY of the bucket's representative, so merging is adding counts per bucket and
quantiles over merged buckets keep the same bound (Masson et al., VLDB 2019).
Bucket keys are short strings so they can be hash fields in Redis: "k<i>" for positive values,
"n<i>" for negative ones (by magnitude) and "z" for values too close to zero to index.
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
        return cls(lo, dense)

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
        return cls(lo, counts)

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
        return DenseSketch(lo, counts)

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
        return cls(np.asarray(positions, dtype=np.int64)[order], np.asarray(counts, dtype=np.int64)[order])

    @classmethod
    def merge(cls, parts: list[Sketch]) -> SparseSketch:
        pairs = [p.sparse() for p in parts]
        positions, inverse = np.unique(np.concatenate([pos for pos, _ in pairs]), return_inverse=True)
        counts = np.zeros(len(positions), dtype=np.int64)
        np.add.at(counts, inverse, np.concatenate([n for _, n in pairs]))
        return cls(positions, counts)

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
