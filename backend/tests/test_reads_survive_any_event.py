"""Reads cannot fail on accepted data: any event the schema accepts (every field at its extremes,
every finite double of either sign, subnormals, -0.0), written through the real path (the durable
log, then the recorder), leaves every read endpoint answering 200 with strict JSON, over every
window, with exact counts. A 500 on a later GET is not tied to the POST that caused it, so
request fuzzers miss it: here each batch of events is followed by every read."""
from __future__ import annotations

import json
import math
import sys
import time

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from analytics.events.schema import MAX_TAGS, MAX_TS_MS, encode, parse_message
from tests.helpers import write_events

WINDOWS = (1, 60, 3600, 86400)
BIGGEST = sys.float_info.max
EXTREME_VALUES = [BIGGEST, -BIGGEST, 5e-324, -5e-324, 0.0, -0.0, sys.float_info.min, -sys.float_info.min,
                  1e-9, -1e-9, 9.999999999999999e-10, 1e308, -1e308, 1.0, -1.0]

names = st.one_of(st.sampled_from(["orders", "x", "a" * 64, "Z.9:_-" * 10 + "abcd"]),
                  st.from_regex(r"[A-Za-z0-9_.:\-]{1,64}", fullmatch=True))
values = st.one_of(st.sampled_from(EXTREME_VALUES), st.floats(allow_nan=False, allow_infinity=False))
text = st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=64)
# Times relative to now (ms): in every window, at their edges, a little ahead; or absolute extremes.
ages_ms = st.one_of(st.sampled_from([0, 999, 1000, 59_999, 60_000, 3_599_999, 3_600_000, 86_399_999, -500]),
                    st.floats(min_value=-2_000, max_value=90_000_000, allow_nan=False))
absolute_ts = st.sampled_from([0, -0.0, 5e-324, 1.0, MAX_TS_MS, float(MAX_TS_MS)])


@st.composite
def raw_events(draw) -> dict:
    """One event as a producer would send it: required fields, then any optional ones."""
    raw = {"metric": draw(names), "value": draw(values)}
    if draw(st.booleans()):
        raw["source"] = draw(names)
    if draw(st.integers(0, 9)):  # mostly given: an absent ts is stamped with the receive time
        raw["ts"] = draw(absolute_ts) if draw(st.integers(0, 5)) == 0 else ("age", draw(ages_ms))
    if draw(st.booleans()):
        raw["id"] = draw(text.filter(bool))
    if draw(st.booleans()):
        raw["tags"] = draw(st.dictionaries(text, text, max_size=MAX_TAGS))
    return raw


def accepted(raws: list[dict]) -> list[dict]:
    """The raw events as the ingest accepts them (each must pass validation), ages made times."""
    now_ms = time.time() * 1000
    raws = [dict(raw) for raw in raws]  # hypothesis may replay its examples: leave them as drawn
    for raw in raws:
        if isinstance(raw.get("ts"), tuple):
            raw["ts"] = max(0.0, now_ms - raw["ts"][1])
    result = parse_message(encode(raws))
    assert not result.rejected, result.first_error
    return result.events


def strict_json(body: bytes):
    """JSON as the standard allows it: no NaN or Infinity tokens (which Python's json accepts)."""
    def refuse(token):
        raise ValueError(f"non-standard JSON token {token}")
    return json.loads(body, parse_constant=refuse)


def get(client, url: str):
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code, response.data[:300])
    assert response.mimetype == "application/json"
    return strict_json(response.data)


def check_aggregate(body: dict, events: list[dict], metric: str | None, source: str | None) -> None:
    first_sec, last_sec = body["from"] // 1000, body["to"] // 1000
    # The live minute is read whole, so an event dated a little ahead of the server's clock (a
    # producer's skew) counts from the start of its minute, not its second: the window's end.
    live_minute = last_sec // 60 * 60
    end_sec = live_minute + 59 if first_sec <= live_minute else last_sec
    inside = [e for e in events if first_sec <= e["ts"] // 1000 <= end_sec
              and metric in (None, e["metric"]) and source in (None, e["source"])]
    assert body["total"]["count"] == len(inside), (body, events)
    assert {name: s["count"] for name, s in body["sources"].items()} == _counts(inside, "source")
    assert {name: s["count"] for name, s in body["metrics"].items()} == _counts(inside, "metric")
    for name, stats in body["metrics"].items():
        vals = [e["value"] for e in inside if e["metric"] == name]
        assert (stats["min"], stats["max"]) == (min(vals), max(vals))
        for q in ("p50", "p95", "p99"):
            assert min(vals) <= stats[q] <= max(vals)
        magnitude = sum(abs(v) for v in vals)  # inf past the doubles (fsum would raise)
        if magnitude < BIGGEST / 2:  # no partial sum can leave the doubles: the sum is a number
            assert abs(stats["sum"] - math.fsum(vals)) <= 1e-12 * magnitude
        else:  # beyond the range of a double it may be null (documented), never a non-JSON token
            assert stats["sum"] is None or isinstance(stats["sum"], float)


def _counts(events: list[dict], field: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for e in events:
        out[e[field]] = out.get(e[field], 0) + 1
    return out


def read_everything(client, events: list[dict], recent_max: int) -> None:
    """Every read endpoint, every window, unfiltered and filtered by a metric and a source."""
    assert get(client, "/api/health")["status"] == "ok"
    get(client, "/api/openapi.json")
    metric, source = events[0]["metric"], events[-1]["source"]
    for window in WINDOWS:
        for m, s in ((None, None), (metric, None), (None, source), (metric, source)):
            query = f"window={window}" + (f"&metric={m}" if m else "") + (f"&source={s}" if s else "")
            check_aggregate(get(client, f"/api/metrics/aggregate?{query}"), events, m, s)
    newest_first = [e["id"] for e in reversed(events)][:recent_max]
    for limit in (1, recent_max):
        body = get(client, f"/api/metrics/recent?limit={limit}")
        assert body["count"] == min(limit, len(events)) and [e["id"] for e in body["events"]] == newest_first[:limit]
    body = get(client, f"/api/metrics/recent?limit={recent_max}&metric={metric}&source={source}")
    assert body["count"] == sum(1 for e in events[-recent_max:] if (e["metric"], e["source"]) == (metric, source))


def test_the_largest_double_leaves_every_read_working(client, runtime):
    """The event of issue 15: value 1.7976931348623157e308 (or its negative) made the sketch's
    bucket value overflow, and every window holding it answered 500 until its buckets expired."""
    events = accepted([{"metric": "orders", "value": BIGGEST, "ts": ("age", 2000)},
                       {"metric": "refunds", "value": -BIGGEST, "ts": ("age", 2000)}])
    write_events(runtime, events)
    read_everything(client, events, runtime.settings.RECENT_MAX)


def test_a_sum_of_tiny_values_is_not_rounded_to_zero(client, runtime):
    """Redis's HINCRBYFLOAT keeps a sum as fixed-point '%.17Lf': a sum of values under 1e-17 read 0."""
    events = accepted([{"metric": "drift", "value": v, "ts": ("age", 2000)} for v in (1e-20, 3e-20, 5e-324)])
    write_events(runtime, events[:1])
    write_events(runtime, events[1:])
    stats = get(client, "/api/metrics/aggregate?window=60")["metrics"]["drift"]
    assert stats["sum"] == 1e-20 + 3e-20 + 5e-324 and stats["avg"] == stats["sum"] / 3


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(batches=st.lists(st.lists(raw_events(), min_size=1, max_size=12), min_size=1, max_size=3))
@example(batches=[[{"metric": "m", "value": BIGGEST, "ts": ("age", 10)}]])
@example(batches=[[{"metric": "m", "value": BIGGEST, "ts": ("age", 10)}, {"metric": "m", "value": BIGGEST, "ts": ("age", 10)},
                   {"metric": "m", "value": -BIGGEST, "ts": ("age", 10)}], [{"metric": "m", "value": 1.0}]])
def test_any_valid_events_leave_every_read_answering(client, runtime, batches):
    runtime.redis.flushdb()  # each example on its own data; versions stay unique, so no cached parse is reused
    events = []
    for batch in batches:
        written = accepted(batch)
        write_events(runtime, written)  # one batch = one log entry, recorded in one transaction
        events += written
    read_everything(client, events, runtime.settings.RECENT_MAX)
