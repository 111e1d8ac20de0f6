"""Small shared helpers for tests."""
from __future__ import annotations


def write_events(runtime, events: list[dict], aggregates=None) -> None:
    """Write events through the real path: appended to the durable log, then recorded (by a
    recorder with its own `aggregates`, as another replica would, when given)."""
    from analytics.stream.durable_log import parse_entries
    from analytics.stream.recorder import GROUP, Recorder

    recorder = Recorder(runtime.log, runtime.recent, aggregates or runtime.aggregates, retention_s=600, sleep=lambda _s: None)
    recorder.ensure_group()
    runtime.log.append(events)
    reply = runtime.redis.xreadgroup(GROUP, recorder.consumer, {runtime.log.key: ">"})
    recorder.record(parse_entries(reply[0][1]))


def event(metric="orders", value=1.0, source="web", ts=None, id=None, tags=None) -> dict:
    import time

    from analytics.events.schema import complete

    raw = {"metric": metric, "value": value, "source": source, "ts": ts if ts is not None else time.time() * 1000}
    if id:
        raw["id"] = id
    if tags:
        raw["tags"] = tags
    return complete(raw, raw["ts"])


def hold_the_loop_on_purpose(seconds: float) -> None:
    """Block the thread, gevent's loop included, as CPU-bound code would: the unpatched sleep
    (the tests run without monkey patching; get_original makes sure of it)."""
    from gevent.monkey import get_original

    get_original("time", "sleep")(seconds)
