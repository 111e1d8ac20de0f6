"""The quantile sketch: the 1% relative error bound, and that merging equals sketching at once."""
from __future__ import annotations

import math
from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from analytics.cache.sketch import RELATIVE_ACCURACY, DenseSketch, bucket_positions, key_of, position, position_value

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
    before = (held.lo, held.counts.copy())
    got = held.plus(sketch(batch))
    want = DenseSketch.from_buckets(sketch(held_values + batch))
    assert (held.lo, held.counts.tolist()) == (before[0], before[1].tolist())

    def nonzero(s):
        return {s.lo + i: int(n) for i, n in enumerate(s.counts) if n}

    assert nonzero(got) == nonzero(want)


@settings(max_examples=500)
@given(st.one_of(st.floats(allow_nan=False, allow_infinity=False),
                 st.floats(min_value=1.76e308, allow_infinity=False)))  # the top bucket, its lower half too
def test_every_finite_double_has_a_finite_bucket_value_within_one_percent(value):
    """The top buckets' upper bound lies past the largest double: their value must saturate, not
    raise OverflowError (one such event made every aggregate read holding it a 500)."""
    [estimate] = DenseSketch.from_buckets({bucket_key(value): 1}).quantiles([0.5])
    assert math.isfinite(estimate)
    if abs(value) >= 1e-9:
        assert abs(estimate - value) <= RELATIVE_ACCURACY * abs(value)
