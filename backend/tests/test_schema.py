"""The event schema: defaults, every kind of bad input, and that nothing can make it raise."""
from __future__ import annotations

import math

import orjson
import pydantic_core
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analytics.events.schema import MAX_EVENTS_PER_MESSAGE, MAX_MESSAGE_BYTES, parse_message


def test_event_without_optional_fields_gets_defaults():
    result = parse_message(b'{"metric": "orders", "value": 12}', now_ms=1000.5)
    assert result.rejected == {}
    [event] = result.events
    assert list(event) == ["id", "ts", "source", "metric", "value", "tags"]
    assert event["ts"] == 1000.5 and event["source"] == "default" and event["tags"] == {}
    assert event["value"] == 12.0 and event["id"]


def test_ids_assigned_by_the_backend_are_unique():
    ids = {e["id"] for e in parse_message(orjson.dumps([{"metric": "m", "value": 1}] * 500)).events}
    assert len(ids) == 500


def test_given_fields_are_kept_in_canonical_order():
    raw = {"tags": {"status": "ok"}, "value": 1.5, "metric": "orders", "source": "web", "ts": 5.0, "id": "web-1"}
    [event] = parse_message(orjson.dumps(raw)).events
    assert event == raw and list(event) == ["id", "ts", "source", "metric", "value", "tags"]


@pytest.mark.parametrize("raw, reason", [
    (b"not json", "invalid_json"),
    (b'{"metric": "x", "value": NaN}', "bad_value"),
    (b'{"metric": "x", "value": Infinity}', "bad_value"),
    (b'{"metric": "x", "value": -Infinity}', "bad_value"),
    (b'{"metric": "x", "value": 1e999}', "bad_value"),
    (b'{"metric": "x", "value": true}', "bad_value"),
    (b'{"metric": "x", "value": "12"}', "bad_value"),
    (b'{"metric": "x", "value": null}', "bad_value"),
    (b'{"metric": "x"}', "missing_value"),
    (b'{"value": 1}', "missing_metric"),
    (b'{"metric": "", "value": 1}', "bad_metric"),
    (b'{"metric": "has space", "value": 1}', "bad_metric"),
    (b'{"metric": "' + b"m" * 65 + b'", "value": 1}', "bad_metric"),
    (b'{"metric": "x", "value": 1, "source": "a/b"}', "bad_source"),
    (b'{"metric": "x", "value": 1, "ts": "now"}', "bad_ts"),
    (b'{"metric": "x", "value": 1, "ts": -5}', "bad_ts"),
    (b'{"metric": "x", "value": 1, "ts": 1.8e15}', "bad_ts"),  # microseconds, not ms: past year 9999
    (b'{"metric": "x", "value": 1, "id": ""}', "bad_id"),
    (b'{"metric": "x", "value": 1, "id": "' + b"i" * 65 + b'"}', "bad_id"),
    (b'{"metric": "x", "value": 1, "tags": {"k": 1}}', "bad_tags"),
    (b'{"metric": "x", "value": 1, "tags": {"k": "' + b"v" * 65 + b'"}}', "bad_tags"),
    (b'{"metric": "x", "value": 1, "tags": ["a"]}', "bad_tags"),
    (orjson.dumps({"metric": "x", "value": 1, "tags": {f"k{i}": "v" for i in range(17)}}), "bad_tags"),
    (b'{"metric": "\xff\xfe", "value": 1}', "invalid_json"),
    (b'{"metric": "\\ud800", "value": 1}', "invalid_json"),
    (b"[" * 5000 + b"]" * 5000, "invalid_json"),
    (b'"just a string"', "not_an_object"),
    (b"42", "not_an_object"),
    (b"", "invalid_json"),
])
def test_bad_input_is_rejected_with_its_reason(raw, reason):
    result = parse_message(raw)
    assert result.events == []
    assert result.rejected == {reason: 1}
    assert result.first_error


def test_message_over_one_mebibyte_is_rejected_whole():
    raw = orjson.dumps([{"metric": "x", "value": 1, "tags": {"t": "v" * 60}}] * 12000)
    assert len(raw) > MAX_MESSAGE_BYTES
    result = parse_message(raw)
    assert result.events == [] and result.rejected == {"too_large": 1}


def test_array_over_the_event_limit_is_rejected_whole():
    result = parse_message(orjson.dumps([{"metric": "x", "value": 1}] * (MAX_EVENTS_PER_MESSAGE + 1)))
    assert result.events == [] and result.rejected == {"too_many_events": 1}


def test_good_events_of_a_mixed_array_go_through():
    raw = b'[{"metric":"a","value":1},{"metric":"b","value":true},7,{"metric":"c","value":NaN},{"metric":"d","value":4}]'
    result = parse_message(raw)
    assert [e["metric"] for e in result.events] == ["a", "d"]
    assert result.rejected == {"bad_value": 2, "not_an_object": 1}
    assert result.first_error.startswith("event 1:")


names = st.from_regex(r"\A[A-Za-z0-9_.:\-]{1,64}\Z")
valid_events = st.fixed_dictionaries(
    {"metric": names, "value": st.floats(allow_nan=False, allow_infinity=False) | st.integers(-2**53, 2**53)},
    optional={"source": names, "ts": st.floats(0, 4e12), "id": st.text(min_size=1, max_size=64),
              "tags": st.dictionaries(st.text(max_size=64), st.text(max_size=64), max_size=16)},
)


@settings(max_examples=200, deadline=None)
@given(st.lists(valid_events, min_size=1, max_size=20))
def test_every_valid_event_is_accepted_unchanged(events):
    result = parse_message(orjson.dumps(events))
    assert result.rejected == {}
    assert len(result.events) == len(events)
    for given_event, out in zip(events, result.events):
        assert out["metric"] == given_event["metric"]
        assert out["value"] == float(given_event["value"]) and math.isfinite(out["value"])
        for key in ("source", "ts", "id", "tags"):
            if key in given_event:
                assert out[key] == given_event[key]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000) | st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers(-2**63, 2**64 - 1) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=30).map(lambda v: orjson.dumps(v, default=str)))
def test_no_input_makes_the_parser_raise(raw):
    result = parse_message(raw)
    try:
        decoded = pydantic_core.from_json(raw, allow_inf_nan=True)
    except ValueError:
        decoded = None
    # every element of an array, or the one message otherwise, is either kept or counted as rejected
    expected = len(decoded) if isinstance(decoded, list) else 1
    assert len(result.events) + sum(result.rejected.values()) == expected
    for event in result.events:
        assert math.isfinite(event["value"])


@settings(max_examples=200, deadline=None)
@given(st.lists(valid_events, max_size=30))
def test_encode_each_is_one_encode_per_event(events):
    from analytics.events.schema import encode, encode_each

    parsed = parse_message(orjson.dumps(events)).events if events else []
    assert encode_each(parsed) == [encode(e) for e in parsed]
    # Not in canonical order (no leading "id"): the split cannot be trusted, the fallback answers.
    shuffled = [{"value": e["value"], **e} for e in parsed]
    assert encode_each(shuffled) == [encode(e) for e in shuffled]


def test_encode_each_is_not_fooled_by_a_separator_inside_a_string():
    from analytics.events.schema import encode, encode_each

    tricky = '},{"id":'
    events = parse_message(orjson.dumps([{"metric": "m", "value": 1, "id": tricky, "tags": {tricky: tricky}},
                                         {"metric": "m", "value": 2, "tags": {"id": "x"}}])).events
    assert encode_each(events) == [encode(e) for e in events]
