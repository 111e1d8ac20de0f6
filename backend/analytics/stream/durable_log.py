"""The durable log: a Redis Stream of accepted events, the one record every replica reads.

Each entry holds one producer message's valid events as a JSON array (field `e`), so a producer
batching 500 events costs one XADD, one entry to read and one to acknowledge. An entry's ID is
the *position* clients resume from: every event of an entry is delivered in the same packet, so
a position never falls inside an entry.

Entries the backend and the generator append carry CHECKED: their events passed the schema and
every default is filled, so readers only decode them. Any other entry is checked on read
(foreign_entries.py): one bad entry must not stop everyone who reads the log.

Retention is bounded twice: XADD trims to about STREAM_MAXLEN entries (the memory bound), and
the recorder trims entries older than STREAM_RETENTION_S once they are recorded.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import orjson
import redis

from analytics.events.schema import encode
from analytics.stream.foreign_entries import ForeignEntries

FIELD = b"e"
CHECKED = b"v"  # "1": written by DurableLog.append after validation (schema v1)
PARSE_CHUNK = 2_000  # events parsed between two pauses: ~0.8 us each, ~2 ms on a busy machine
_UNSCREENED = ForeignEntries()  # schema only: for logs without the MAX_SERIES cap at hand


@dataclass(frozen=True)
class Entry:
    """One log entry: its position and its events (oldest first)."""

    position: str
    events: list[dict]


def position_key(position: str) -> tuple[int, int]:
    """A position as a sortable pair; raises ValueError on anything that is not `<ms>-<seq>`."""
    ms, _, seq = position.partition("-")
    if not (ms.isascii() and ms.isdigit() and seq.isascii() and seq.isdigit()) or len(position) > 41:
        raise ValueError(f"{position!r} is not a log position")
    return int(ms), int(seq)


def parse_entries(raw: list, foreign: ForeignEntries = _UNSCREENED, count: bool = False,
                  pause: Callable[[], None] | None = None) -> list[Entry]:
    """Entries as redis-py returns them from XRANGE / XREAD / XREADGROUP. An entry trimmed while
    pending (no fields) comes back with no events, as does one whose events were all refused: it
    still moves positions on and is acknowledged. `count`: count the refusals (one reader per
    process does, so each entry counts once). `pause` is called after every PARSE_CHUNK events:
    a read of 100 full entries is 100,000 events, ~15 ms of parsing that would hold the loop."""
    out = []
    since_pause = 0
    for entry_id, fields in raw:
        if pause is not None and since_pause >= PARSE_CHUNK:
            pause()
            since_pause = 0
        position = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
        if not fields:
            out.append(Entry(position, []))
            continue
        payload = fields.get(FIELD)
        events = None
        if fields.get(CHECKED) == b"1":
            try:
                events = orjson.loads(payload)
            except (orjson.JSONDecodeError, TypeError):
                events = None
            if type(events) is not list:
                events = None
        if events is None:
            events = foreign.events(position, payload, count)
        out.append(Entry(position, events))
        since_pause += len(events)
    return out


class DurableLog:
    def __init__(self, client: redis.Redis, key: str, max_entries: int, foreign: ForeignEntries = _UNSCREENED):
        self.client = client
        self.key = key
        self.max_entries = max_entries
        self.foreign = foreign  # how entries the product did not write are checked
        # Steps aside for sockets and REST while parsing a long read for delivery (live reads and
        # resumes; the app sets it). The recorder, background work, passes its own to `parse`.
        self.pause: Callable[[], None] | None = None

    def parse(self, raw: list, count: bool = False, pause: Callable[[], None] | None = None) -> list[Entry]:
        return parse_entries(raw, self.foreign, count, pause or self.pause)

    def append(self, events: list[dict], pipe=None) -> str | None:
        """XADD one entry of validated events; returns its position (None when queued on `pipe`)."""
        target = pipe if pipe is not None else self.client
        result = target.xadd(self.key, {FIELD: encode(events), CHECKED: b"1"}, maxlen=self.max_entries,
                             approximate=True)
        return None if pipe is not None else result.decode()

    def append_many(self, batches: list[list[dict]]) -> list[str]:
        """One entry per batch, in order, in one pipelined round trip; their positions."""
        with self.client.pipeline(transaction=False) as pipe:
            for events in batches:
                self.append(events, pipe=pipe)
            return [p.decode() for p in pipe.execute()]

    def last_position(self) -> str:
        """The position of the newest entry ever added ("0-0" for a new log): live reads start here."""
        try:
            info = self.client.xinfo_stream(self.key)
        except redis.ResponseError:  # no such key yet
            return "0-0"
        last = info["last-generated-id"]
        return last.decode() if isinstance(last, bytes) else last

    def read_after(self, position: str, count: int, block_ms: int) -> list[Entry]:
        """Entries after `position`, waiting up to block_ms for the first one (the log reader:
        it counts what foreign entries held that was refused)."""
        reply = self.client.xread({self.key: position}, count=count, block=block_ms)
        return self.parse(reply[0][1], count=True) if reply else []

    def range_after(self, position: str, upto: str, count: int) -> list[Entry]:
        """Entries after `position` up to and including `upto`, at most `count`."""
        return self.read_range(position, upto, count)[0]

    def read_range(self, position: str, upto: str, count: int) -> tuple[list[Entry], str | None]:
        """range_after, and where the read stopped: None when it read the whole range (Redis
        returned fewer than `count`), else the position of the last entry Redis returned, which
        a reader goes on after."""
        raw = self.client.xrange(self.key, "(" + position, upto, count=count)
        if len(raw) < count:
            return self.parse(raw), None
        last = raw[-1][0]
        return self.parse(raw), (last.decode() if isinstance(last, bytes) else last)

    def lost_after(self, position: str) -> bool:
        """Whether retention may have removed entries newer than `position`, so that a resume from
        there would have a hole. Conservative: true when the oldest entry kept is newer than
        `position` (trimming goes oldest first, so the client's own entry and maybe more are gone)."""
        try:
            info = self.client.xinfo_stream(self.key)
        except redis.ResponseError:  # no log at all (a Redis that lost its data): whatever followed is gone
            return position != "0-0"
        first = info.get("first-entry")
        if not first:  # empty: everything up to the last id ever added is gone
            newest = info["last-generated-id"]
            return position_key(newest.decode() if isinstance(newest, bytes) else newest) > position_key(position)
        oldest = first[0].decode() if isinstance(first[0], bytes) else first[0]
        return position_key(oldest) > position_key(position)
