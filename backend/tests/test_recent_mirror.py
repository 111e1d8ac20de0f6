"""The recent mirror: /recent from this replica's memory when what it holds covers the request,
from the Redis list otherwise; either way the same bytes, newest first."""
from __future__ import annotations

import time

import orjson
import pytest

from analytics.cache.recent_mirror import RecentMirror
from analytics.events.filter import EventFilter
from analytics.events.schema import encode
from analytics.factory import create_app
from analytics.stream.durable_log import Entry
from tests.helpers import event, write_events


def entries_of(*batches: list[dict]) -> list[Entry]:
    return [Entry(f"{i + 1}-0", batch) for i, batch in enumerate(batches)]


def test_newest_first_byte_for_byte_as_the_list_holds_them():
    events = [event(value=i, id=f"e{i}", source="web" if i % 2 else "api") for i in range(7)]
    mirror = RecentMirror(10)
    mirror.add(entries_of(events[:3], events[3:]))
    assert mirror.newest(4) == [encode(e) for e in reversed(events)][:4]
    assert mirror.newest(2, EventFilter.of(sources=["web"])) == [encode(events[5]), encode(events[3])]


def test_it_cannot_tell_until_it_holds_enough():
    mirror = RecentMirror(4)
    mirror.add(entries_of([event(id="a", source="web"), event(id="b", source="api")]))
    assert mirror.newest(3) is None  # 2 held, 3 asked: older ones may be in the list
    assert mirror.newest(2, EventFilter.of(sources=["web"])) is None  # 1 match, and not full
    mirror.add(entries_of([event(id="c", source="api"), event(id="d", source="api")]))
    # Full: the matches among the newest 4 are all there are (the list holds 4 too).
    assert [orjson.loads(raw)["id"] for raw in mirror.newest(2, EventFilter.of(sources=["web"]))] == ["a"]


def test_a_read_longer_than_the_mirror_keeps_its_newest_events_only():
    mirror = RecentMirror(3)
    mirror.add(entries_of([event(id=f"x{i}") for i in range(5)], [event(id="y0")], []))
    assert len(mirror) == 3
    assert [orjson.loads(raw)["id"] for raw in mirror.newest(3)] == ["y0", "x4", "x3"]


@pytest.fixture
def streaming(settings):
    """An app with its stream tasks running (threading mode): the log reader feeds the mirror."""
    app = create_app(settings)
    yield app
    app.extensions["analytics"].stop()


def lranges(runtime) -> int:
    return int(runtime.redis.info("commandstats").get("cmdstat_lrange", {}).get("calls", 0))


def test_recent_answers_from_what_the_log_reader_delivered_without_reading_redis(streaming, settings):
    runtime = streaming.extensions["analytics"]
    client = streaming.test_client()
    deadline = time.monotonic() + 10
    while runtime.reader.position is None and time.monotonic() < deadline:  # live reading has started
        time.sleep(0.01)
    events = [event(value=i, id=f"m{i}", source="web" if i % 3 else "api") for i in range(settings.RECENT_MAX + 5)]
    runtime.log.append(events[:20])
    runtime.log.append(events[20:])
    while len(runtime.recent.mirror) < settings.RECENT_MAX and time.monotonic() < deadline:
        time.sleep(0.01)
    before = lranges(runtime)
    body = client.get("/api/metrics/recent?limit=10").json
    assert [e["id"] for e in body["events"]] == [f"m{i}" for i in range(settings.RECENT_MAX + 4, settings.RECENT_MAX - 6, -1)]
    only_api = client.get(f"/api/metrics/recent?source=api&limit={settings.RECENT_MAX}").json["events"]
    assert [e["id"] for e in only_api] == [e["id"] for e in reversed(events[5:]) if e["source"] == "api"]
    assert lranges(runtime) == before


def test_a_request_the_mirror_cannot_answer_reads_the_list(client, runtime):
    """No reader ran here (start_stream=False): the mirror is empty, the list answers."""
    write_events(runtime, [event(id=f"e{i}") for i in range(3)])
    before = lranges(runtime)
    assert [e["id"] for e in client.get("/api/metrics/recent?limit=2").json["events"]] == ["e2", "e1"]
    assert lranges(runtime) == before + 1
