"""Small shared helpers for tests."""
from __future__ import annotations


def write_events(runtime, events: list[dict]) -> None:
    """Write events through the real cache path (one pipeline), as the cache writer does."""
    from analytics.stream.cache_writer import CacheWriter

    writer = CacheWriter(runtime.redis, runtime.recent, runtime.aggregates, wake=None, sleep=lambda _s: None)
    writer.write(events)


def event(metric="orders", value=1.0, source="web", ts=None, id=None, tags=None) -> dict:
    import time

    from analytics.events.schema import complete

    raw = {"metric": metric, "value": value, "source": source, "ts": ts if ts is not None else time.time() * 1000}
    if id:
        raw["id"] = id
    if tags:
        raw["tags"] = tags
    return complete(raw, raw["ts"])
