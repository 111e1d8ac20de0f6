"""The event schema (contract v1): the one place that validates, defaults and encodes events.

Used by the listener (channel messages), the HTTP ingest, the generator and the tests alike.
Validation runs in pydantic-core (Rust) over the raw JSON in one pass; a message with any bad
event falls back to a per-event pass so the good events of a mixed array still go through.
"""
from __future__ import annotations

import itertools
import os
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Annotated, Any, NotRequired

import orjson
import pydantic_core
from pydantic import ConfigDict, Field, StringConstraints, TypeAdapter, ValidationError
from typing_extensions import TypedDict

MAX_MESSAGE_BYTES = 1 << 20
MAX_EVENTS_PER_MESSAGE = 1000
MAX_TAGS = 16
NAME_PATTERN = r"^[A-Za-z0-9_.:\-]{1,64}$"
DEFAULT_SOURCE = "default"
# The last millisecond of year 9999: past it a `ts` is a unit mistake (ns, µs), not a time, and
# would make second buckets no integer type holds.
MAX_TS_MS = 253_402_300_799_999

_NAME = re.compile(NAME_PATTERN)

Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
TagText = Annotated[str, StringConstraints(max_length=64)]


class Event(TypedDict):
    """One business metric event as it travels on the channel, over Socket.IO and out of REST."""

    __pydantic_config__ = ConfigDict(strict=True, allow_inf_nan=False, extra="ignore")  # type: ignore[misc]

    # Declared in the canonical order (id, ts, source, metric, value, tags): validated events
    # come out in it, so a fully given event needs no rebuilding.
    id: NotRequired[Annotated[str, StringConstraints(min_length=1, max_length=64)]]
    ts: NotRequired[Annotated[float, Field(ge=0, le=MAX_TS_MS)]]
    source: NotRequired[Name]
    metric: Name
    value: float
    tags: NotRequired[Annotated[dict[TagText, TagText], Field(max_length=MAX_TAGS)]]


def is_name(text: str) -> bool:
    """Whether `text` is a valid metric or source name, by the rule events are held to (fullmatch:
    Python's `$` would also accept a trailing newline, which the event schema refuses)."""
    return _NAME.fullmatch(text) is not None


_one = TypeAdapter(Event)
_many = TypeAdapter(list[Event])

# Ids for events that arrive without one: unique per process run, ordered within it.
_ID_PREFIX = os.urandom(3).hex()
_id_counter = itertools.count(1)


@dataclass
class ParseResult:
    """What came out of one message: the accepted events (defaults filled) and rejects by reason."""

    events: list[dict[str, Any]] = field(default_factory=list)
    rejected: Counter = field(default_factory=Counter)
    first_error: str | None = None


def _reason(err: dict) -> str:
    """Map a pydantic error to a short, stable reject reason such as `bad_value` or `missing_metric`."""
    loc = [part for part in err["loc"] if isinstance(part, str)]
    name = loc[0] if loc else "event"
    if err["type"] == "missing":
        return f"missing_{name}"
    if not loc and err["type"] in ("dict_type", "model_type", "typed_dict_type"):
        return "not_an_object"
    return f"bad_{name}"


def _describe(err: dict) -> str:
    loc = ".".join(str(p) for p in err["loc"])
    return f"{loc}: {err['msg']}" if loc else err["msg"]


def complete(event: dict, now_ms: float, default_id: str | None = None) -> dict:
    """Fill the defaults of a validated event, in the canonical field order."""
    if len(event) == 6:  # every field given (unknown ones were dropped): nothing to fill
        return event
    return {
        "id": event.get("id") or default_id or f"{_ID_PREFIX}-{next(_id_counter):09d}",
        "ts": event["ts"] if "ts" in event else now_ms,
        "source": event.get("source", DEFAULT_SOURCE),
        "metric": event["metric"],
        "value": event["value"],
        "tags": event.get("tags", {}),
    }


def parse_message(raw: bytes | str, now_ms: float | None = None, id_prefix: str | None = None) -> ParseResult:
    """Parse one channel message or request body: an event object or an array of up to 1000.
    With `id_prefix`, an event without an id gets `<id_prefix>-<its index among the accepted>`
    instead of a process-unique one, so every reader of the same message fills the same ids."""
    result = ParseResult()
    now_ms = time.time() * 1000.0 if now_ms is None else now_ms
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogatepass")
    if len(raw) > MAX_MESSAGE_BYTES:
        result.rejected["too_large"] += 1
        result.first_error = f"message of {len(raw)} bytes is over {MAX_MESSAGE_BYTES}"
        return result
    stripped = raw.lstrip()
    is_array = stripped[:1] == b"["
    try:
        valid = _many.validate_json(raw) if is_array else [_one.validate_json(raw)]
    except ValidationError as exc:
        valid = _validate_each(raw, is_array, exc, result)
    if is_array and len(valid) + sum(result.rejected.values()) > MAX_EVENTS_PER_MESSAGE:
        # Rejected whole, like an oversized message; its per-event reasons do not count.
        return ParseResult(rejected=Counter(too_many_events=1),
                           first_error=f"array of more than {MAX_EVENTS_PER_MESSAGE} events")
    if id_prefix is None:
        result.events = [complete(e, now_ms) for e in valid]
    else:
        result.events = [complete(e, now_ms, f"{id_prefix}-{i}") for i, e in enumerate(valid)]
    return result


def _validate_each(raw: bytes, is_array: bool, exc: ValidationError, result: ParseResult) -> list:
    """Slow path, only for messages that hold a bad event: keep the good ones, count the bad."""
    errors = exc.errors(include_url=False, include_input=False)
    if any(e["type"].startswith("json_") for e in errors) or (is_array and errors[0]["loc"] == ()):
        try:
            pydantic_core.from_json(raw, allow_inf_nan=True)
        except ValueError as parse_exc:
            result.rejected["invalid_json"] += 1
            result.first_error = f"not JSON: {parse_exc}"
            return []
    if not is_array:
        result.rejected[_reason(errors[0])] += 1
        result.first_error = _describe(errors[0])
        return []
    if errors[0]["loc"] == ():
        result.rejected["not_an_object"] += 1
        result.first_error = _describe(errors[0])
        return []
    items = pydantic_core.from_json(raw, allow_inf_nan=True)
    bad: dict[int, dict] = {}
    for err in errors:
        bad.setdefault(err["loc"][0], err)
    for err in bad.values():
        result.rejected[_reason({**err, "loc": err["loc"][1:]})] += 1
    first = min(bad)
    result.first_error = f"event {first}: {_describe({**bad[first], 'loc': bad[first]['loc'][1:]})}"
    keep = [item for i, item in enumerate(items) if i not in bad]
    return _many.validate_python(keep)


def encode(obj: Any) -> bytes:
    """Encode events (or any response) as compact JSON; the one encoder used on every path."""
    return orjson.dumps(obj)


_BETWEEN_EVENTS = b'},{"id":'


def encode_each(events: list[dict]) -> list[bytes]:
    """[encode(e) for e in events], byte for byte, from one encode of the whole list: a call per
    event costs ~4x more (the cache writer encodes up to RECENT_MAX events per batch).

    Validated events start with "id" (canonical order), and inside JSON strings a quote is
    escaped, so `},{"id":` only ever appears between two events; if the split does not give one
    part per event (an event not in canonical order), it falls back to one call per event."""
    parts = encode(events)[1:-1].split(_BETWEEN_EVENTS)
    if len(parts) != len(events):
        return [encode(e) for e in events]
    if len(parts) == 1:
        return parts
    return [parts[0] + b"}", *[b'{"id":' + p + b"}" for p in parts[1:-1]], b'{"id":' + parts[-1]]
