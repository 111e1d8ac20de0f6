"""Subscriptions: a client's source/metric filter, and the Socket.IO room that carries it.

Clients with the same filter share a room, so a batch is filtered and encoded once per room,
not once per client.
"""
from __future__ import annotations

from dataclasses import dataclass

from analytics.events.filter import EVERYTHING, EventFilter
from analytics.events.schema import is_name

ALL = "all"
MAX_FILTER_NAMES = 64


class SubscriptionError(ValueError):
    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Subscription:
    only: EventFilter = EVERYTHING
    positions: bool = False  # packets carry their log position as a second argument (resuming clients)

    @property
    def sources(self) -> frozenset[str]:
        return self.only.sources

    @property
    def metrics(self) -> frozenset[str]:
        return self.only.metrics

    @classmethod
    def parse(cls, payload, positions: bool = False) -> Subscription:
        """Validate a `subscribe` payload: {"sources": [...], "metrics": [...]}; empty = all."""
        if payload is None:
            payload = {}
        if not isinstance(payload, dict):
            raise SubscriptionError("payload", "subscribe takes an object {sources: [...], metrics: [...]}")
        parts = {}
        for field in ("sources", "metrics"):
            names = payload.get(field) or []
            if not isinstance(names, list) or len(names) > MAX_FILTER_NAMES:
                raise SubscriptionError(field, f"{field} must be a list of at most {MAX_FILTER_NAMES} names")
            for name in names:
                if not isinstance(name, str) or not is_name(name):
                    raise SubscriptionError(field, f"{field}: {name!r} is not a valid name")
            parts[field] = names
        return cls(EventFilter.of(**parts), positions=positions)

    def within(self, allowed: frozenset[str] | None) -> Subscription:
        """This subscription narrowed to the `allowed` sources (None: every source); all of them
        when it asked for every source. SubscriptionError when it asked only for others."""
        if allowed is None:
            return self
        sources = self.sources & allowed if self.sources else allowed
        if not sources:
            raise SubscriptionError("sources", "this token may not read those sources")
        return Subscription(EventFilter(frozenset(sources), self.metrics), self.positions)

    @property
    def room(self) -> str:
        if self.only.everything:
            name = ALL
        else:
            name = "f:" + ",".join(sorted(self.sources)) + "|" + ",".join(sorted(self.metrics))
        return name + "+pos" if self.positions else name

    def packets(self, entries: list, max_events: int) -> list[tuple[list[dict], str]]:
        """This room's events of a run of log entries, cut into packets of about max_events at
        entry boundaries (a position never falls inside an entry): [(events, position of the
        packet's last entry)]."""
        out: list[tuple[list[dict], str]] = []
        chunk: list[dict] = []
        for entry in entries:
            chunk.extend(self.only.select(entry.events))
            if len(chunk) >= max_events:
                out.append((chunk, entry.position))
                chunk = []
        if chunk:
            out.append((chunk, entries[-1].position))
        return out
