"""Which events a reader asked for: a set of sources and a set of metrics, an empty set meaning all.

The one definition of source/metric filtering, shared by the recent list, the aggregates and the
REST parameters (and meant for the Socket.IO rooms), so they cannot disagree on what matches.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class EventFilter:
    sources: frozenset[str] = frozenset()
    metrics: frozenset[str] = frozenset()

    @classmethod
    def of(cls, sources: Iterable[str] = (), metrics: Iterable[str] = ()) -> EventFilter:
        return cls(frozenset(sources), frozenset(metrics))

    @property
    def everything(self) -> bool:
        return not self.sources and not self.metrics

    def accepts(self, source: str, metric: str) -> bool:
        """Whether a (source, metric) pair passes: the aggregates filter pairs, not events."""
        return (not self.sources or source in self.sources) and (not self.metrics or metric in self.metrics)

    def matches(self, event: dict) -> bool:
        return self.accepts(event["source"], event["metric"])

    def select(self, events: list[dict]) -> list[dict]:
        """The matching events, in order (the same list when the filter lets everything through)."""
        if self.everything:
            return events
        return [e for e in events if self.accepts(e["source"], e["metric"])]


EVERYTHING = EventFilter()
