"""Decoding log entries: the product's own are only decoded, any other is checked like a channel
message, and an entry trimmed while pending still comes back (to be acknowledged)."""
from __future__ import annotations

import orjson

from analytics.stream.durable_log import CHECKED, FIELD, parse_entries
from analytics.stream.foreign_entries import ForeignEntries
from tests.helpers import event


def test_a_checked_entry_is_decoded_as_written():
    events = [event(id="a"), event(id="b", value=2.0)]
    [entry] = parse_entries([(b"5-0", {FIELD: orjson.dumps(events), CHECKED: b"1"})])
    assert (entry.position, entry.events) == ("5-0", events)


def test_a_foreign_entry_keeps_its_valid_events_with_defaults_from_its_position():
    raw = orjson.dumps([{"metric": "orders", "value": 3}, {"metric": "bad name", "value": 1}, event(id="given")])
    first = parse_entries([(b"1700000000000-7", {FIELD: raw})])[0].events
    again = parse_entries([(b"1700000000000-7", {FIELD: raw})])[0].events
    assert first == again, "every reader fills the same defaults"
    assert [e["id"] for e in first] == ["log-1700000000000-7-0", "given"]
    assert first[0]["ts"] == 1700000000000.0 and first[0]["source"] == "default"


def test_a_marked_entry_that_is_not_an_array_is_checked_like_a_foreign_one():
    [entry] = parse_entries([(b"2-0", {FIELD: b'{"metric": "m", "value": 1}', CHECKED: b"1"})])
    assert [e["metric"] for e in entry.events] == ["m"]
    [entry] = parse_entries([(b"3-0", {FIELD: b"garbage", CHECKED: b"1"})])
    assert entry.events == []


def test_entries_without_events_still_come_back_so_they_are_acknowledged():
    entries = parse_entries([(b"1-0", None), (b"2-0", {b"other": b"x"}), (b"3-0", {FIELD: b"not json"})])
    assert [(e.position, e.events) for e in entries] == [("1-0", []), ("2-0", []), ("3-0", [])]


def test_the_series_cap_sees_only_foreign_entries():
    seen = []

    def admit(events, path):
        seen.append((len(events), path))
        return events[:1]

    foreign = ForeignEntries(admit)
    raw = orjson.dumps([event(id="x", metric="a"), event(id="y", metric="b")])
    assert [e["id"] for e in parse_entries([(b"1-0", {FIELD: raw})], foreign, count=True)[0].events] == ["x"]
    assert [e["id"] for e in parse_entries([(b"1-0", {FIELD: raw, CHECKED: b"1"})], foreign)[0].events] == ["x", "y"]
    assert seen == [(2, "log")]
