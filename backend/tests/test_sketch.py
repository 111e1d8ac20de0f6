"""The quantile sketch: the 1% relative error bound, and that merging equals sketching at once."""
from __future__ import annotations

import math
from collections import Counter

from hypothesis import example, given, settings
from hypothesis import strategies as st

from analytics.cache import sketch as sketch_module
from analytics.cache.sketch import (
    MAX_DENSE_SPAN,
    RELATIVE_ACCURACY,
    DenseSketch,
    SparseSketch,
    bucket_positions,
    key_of,
    position,
    position_value,
)

values = st.floats(min_value=-1e12, max_value=1e12, allow_nan=False).filter(lambda v: v == 0 or abs(v) >= 1e-9)


def bucket_key(value: float) -> str:
    """The sketch bucket (hash field) of one value, as the writer places it."""
    return key_of(int(bucket_positions([value])[0]))


def sketch(vals) -> Counter:
    return Counter(bucket_key(v) for v in vals)


def quantiles(counts, qs):
    return DenseSketch.from_buckets(counts).quantiles(qs)


@settings(max_examples=300, deadline=None)
@given(st.lists(values, min_size=1, max_size=400), st.sampled_from([0.0, 0.25, 0.5, 0.9, 0.95, 0.99, 1.0]))
def test_quantile_is_within_one_percent_of_the_exact_value(vals, q):
    exact = sorted(vals)[math.floor(q * (len(vals) - 1))]
    [estimate] = quantiles(sketch(vals), [q])
    assert abs(estimate - exact) <= RELATIVE_ACCURACY * abs(exact) + 1e-12


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(values, max_size=50), min_size=1, max_size=8))
def test_merged_sketches_equal_one_sketch_of_all_values(parts):
    merged = Counter()
    for part in parts:
        merged.update(sketch(part))
    assert merged == sketch([v for part in parts for v in part])


@given(values)
def test_bucket_representative_is_within_the_bound(v):
    assert abs(position_value(position(bucket_key(v))) - v) <= RELATIVE_ACCURACY * abs(v) + 1e-12


def test_empty_sketch_has_no_quantiles():
    assert quantiles({}, [0.5, 0.99]) == [None, None]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(values, max_size=60), min_size=1, max_size=6),
       st.sampled_from([0.0, 0.5, 0.95, 0.99, 1.0]))
def test_dense_merge_gives_the_same_quantiles_as_one_sketch_of_all_values(parts, q):
    dense = DenseSketch.merge([DenseSketch.from_buckets(sketch(part)) for part in parts])
    assert dense.quantiles([q]) == quantiles(sketch([v for part in parts for v in part]), [q])


@given(st.lists(values, max_size=60), st.lists(values, max_size=20))
def test_plus_adds_a_batch_to_a_held_sketch_without_changing_it(held_values, batch):
    """The writer advances a held bucket's sketch by a batch's bucket counts: the result must
    equal the sketch of all values, and the held sketch (possibly shared) must stay as it was."""
    held = DenseSketch.from_buckets(sketch(held_values))
    before = nonzero(held)
    got = held.plus(sketch(batch))
    want = DenseSketch.from_buckets(sketch(held_values + batch))
    assert nonzero(held) == before
    assert nonzero(got) == nonzero(want)


def nonzero(s) -> dict[int, int]:
    positions, counts = s.sparse()
    return {int(p): int(n) for p, n in zip(positions, counts) if n}


any_double = st.floats(allow_nan=False, allow_infinity=False)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(any_double, max_size=30), min_size=1, max_size=6), st.lists(any_double, max_size=10))
def test_wide_sketches_are_held_sparse_with_the_same_answers(parts, batch):
    """Values anywhere in the double range (1e-300 beside -1e300): a dense array from the lowest
    to the highest bucket would be up to ~75,000 counts (600 KB) per sketch and per merge, and a
    thousand such series made one aggregate read allocate 140 MB and block the loop 0.3 s. The
    hybrid answers exactly like one sketch of all values, and never holds more than
    MAX_DENSE_SPAN counts for buckets that are not in use."""
    qs = [0.0, 0.01, 0.5, 0.95, 0.99, 1.0]
    merged = DenseSketch.merge([DenseSketch.from_buckets(sketch(part)) for part in parts]).plus(sketch(batch))
    everything = [v for part in parts for v in part] + batch
    assert nonzero(merged) == dict(Counter(int(p) for p in bucket_positions(everything))) if everything else True
    if everything:
        exact = sorted(everything)
        for q, estimate in zip(qs, merged.quantiles(qs)):
            want = exact[math.floor(q * (len(exact) - 1))]
            if abs(want) >= 1e-9:
                assert abs(estimate - want) <= RELATIVE_ACCURACY * abs(want)
    used = len(nonzero(merged))
    assert len(merged.counts) <= max(used, MAX_DENSE_SPAN + 1)


def test_a_sketch_of_both_extremes_is_small():
    wide = DenseSketch.merge([DenseSketch.from_buckets(sketch([1e-300, 1e300])),
                              DenseSketch.from_buckets(sketch([-1e300, 5.0]))])
    assert type(wide) is SparseSketch and len(wide.counts) == 4
    assert wide.quantiles([0.0, 1.0]) == [position_value(position(bucket_key(-1e300))),
                                         position_value(position(bucket_key(1e300)))]


def test_dense_and_sparse_agree_where_both_can_hold_a_sketch(monkeypatch):
    vals = [0.5, 3.0, 3.1, 1e6, 2.0, 7e4, 0.0]  # one sign: dense (both signs lie 2 * OFFSET apart)
    hybrid = DenseSketch.from_buckets(sketch(vals))
    monkeypatch.setattr(sketch_module, "MAX_DENSE_SPAN", 1)
    forced = DenseSketch.from_buckets(sketch(vals))
    assert type(hybrid) is DenseSketch and type(forced) is SparseSketch
    qs = [0.0, 0.2, 0.5, 0.8, 1.0]
    assert hybrid.quantiles(qs) == forced.quantiles(qs)
    assert nonzero(hybrid) == nonzero(forced)


@settings(max_examples=500)
@given(st.one_of(st.floats(allow_nan=False, allow_infinity=False),
                 st.floats(min_value=1.76e308, allow_infinity=False),  # the top bucket, its lower half too
                 st.floats(min_value=8e307, allow_infinity=False)))  # buckets whose 2 * upper bound overflows
@example(1.6279036840642118e308)
@example(-9.1e307)
def test_every_finite_double_has_a_finite_bucket_value_within_one_percent(value):
    """The top buckets' upper bound lies past the largest double: their value must saturate, not
    raise OverflowError (one such event made every aggregate read holding it a 500)."""
    [estimate] = DenseSketch.from_buckets({bucket_key(value): 1}).quantiles([0.5])
    assert math.isfinite(estimate)
    if abs(value) >= 1e-9:
        assert abs(estimate - value) <= RELATIVE_ACCURACY * abs(value)
