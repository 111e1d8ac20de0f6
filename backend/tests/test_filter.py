"""The one source/metric filter: empty sets let everything through, each set narrows on its own."""
from __future__ import annotations

from analytics.events.filter import EVERYTHING, EventFilter
from analytics.events.schema import is_name
from tests.helpers import event

EVENTS = [event("orders", 1, "web", id="a"), event("signups", 1, "web", id="b"), event("orders", 1, "api", id="c")]


def ids(events):
    return [e["id"] for e in events]


def test_an_empty_filter_selects_every_event_as_given():
    assert EVERYTHING.everything and EVERYTHING.select(EVENTS) is EVENTS
    assert EventFilter.of() == EVERYTHING


def test_a_filter_narrows_by_source_by_metric_and_by_both():
    assert ids(EventFilter.of(sources=["web"]).select(EVENTS)) == ["a", "b"]
    assert ids(EventFilter.of(metrics=["orders"]).select(EVENTS)) == ["a", "c"]
    assert ids(EventFilter.of(sources=["web"], metrics=["orders"]).select(EVENTS)) == ["a"]
    assert ids(EventFilter.of(sources=["web", "api"], metrics=["orders", "signups"]).select(EVENTS)) == ["a", "b", "c"]
    assert EventFilter.of(sources=["nobody"]).select(EVENTS) == []


def test_matches_and_accepts_agree():
    only = EventFilter.of(sources=["api"], metrics=["orders"])
    assert [only.matches(e) for e in EVENTS] == [only.accepts(e["source"], e["metric"]) for e in EVENTS] == \
           [False, False, True]


def test_equal_filters_are_one_key():
    """The aggregates keep merges per filter: the same names in any order must be the same key."""
    assert hash(EventFilter.of(["b", "a"], ["m"])) == hash(EventFilter.of(["a", "b"], ["m"]))
    assert EventFilter.of(["b", "a"], ["m"]) == EventFilter.of(["a", "b"], ["m"])


def test_is_name_follows_the_event_schema():
    assert is_name("orders") and is_name("a.b:c-d_9") and is_name("x" * 64)
    assert not is_name("") and not is_name("x" * 65) and not is_name("has space") and not is_name("orders\n")
