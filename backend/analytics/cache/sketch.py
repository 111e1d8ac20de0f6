"""A mergeable quantile sketch: DDSketch-style logarithmic buckets with <= 1% relative error.

A value v > 0 lands in bucket ceil(log_gamma(v)); every value in a bucket is within
RELATIVE_ACCURACY of the bucket's representative, so merging is adding counts per bucket and
quantiles over merged buckets keep the same bound (Masson et al., VLDB 2019).
Bucket keys are short strings so they can be hash fields in Redis: "k<i>" for positive values,
"n<i>" for negative ones (by magnitude) and "z" for values too close to zero to index.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

RELATIVE_ACCURACY = 0.01
GAMMA = (1 + RELATIVE_ACCURACY) / (1 - RELATIVE_ACCURACY)
_LOG_GAMMA = math.log(GAMMA)
MIN_INDEXABLE = 1e-9


def bucket_key(value: float) -> str:
    """The sketch bucket of one value."""
    magnitude = abs(value)
    if magnitude < MIN_INDEXABLE:
        return "z"
    index = math.ceil(math.log(magnitude) / _LOG_GAMMA)
    return f"k{index}" if value > 0 else f"n{index}"


def bucket_value(key: str) -> float:
    """The representative value of a bucket: within RELATIVE_ACCURACY of everything in it."""
    if key == "z":
        return 0.0
    magnitude = 2 * GAMMA ** int(key[1:]) / (GAMMA + 1)
    return magnitude if key[0] == "k" else -magnitude


def _order(key: str) -> tuple[int, int]:
    if key == "z":
        return (1, 0)
    index = int(key[1:])
    return (2, index) if key[0] == "k" else (0, -index)


def quantiles(counts: Mapping[str, int], qs: Iterable[float]) -> list[float | None]:
    """Quantiles of the values counted in `counts` (bucket key -> count), lowest rank convention:
    the value at 0-based rank floor(q * (n - 1)) of the sorted values, within 1% relative error."""
    total = sum(counts.values())
    qs = list(qs)
    if total == 0:
        return [None for _ in qs]
    ordered = sorted(counts.items(), key=lambda kv: _order(kv[0]))
    out = []
    for q in qs:
        rank = math.floor(q * (total - 1))
        seen = 0
        for key, count in ordered:
            seen += count
            if seen > rank:
                out.append(bucket_value(key))
                break
    return out
