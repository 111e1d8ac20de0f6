"""Log entries the product did not write: checked like a channel message before anyone reads them.

The backend and the generator append only events the schema validated and completed, and mark
their entries so (durable_log.CHECKED); readers trust those. Any other entry (a process with
Redis access that XADDs to the log by hand, or a bug) goes through the same schema as the
channel: bad events are dropped and counted (path `log`), an undecodable entry counts as
`bad_log_entry` and holds no events, and new series past MAX_SERIES are refused. Without this one
bad entry would be read, fail and be read again forever, stopping the live stream and the
recorder behind it.

The log reader, the recorder and every resuming client read the same entry; they must agree on
its events, so defaults come from the entry itself (ts: its position's milliseconds; id:
`log-<position>-<n>`) and only the log reader counts (it reads each entry once per process).
"""
from __future__ import annotations

import logging
from collections.abc import Callable

from analytics import counters
from analytics.events.schema import parse_message
from analytics.logging_limits import RateLimitedLog

PATH = "log"
UNDECODABLE = "bad_log_entry"

# (events, path or None) -> the events whose series is admitted; counts refusals when given a path.
Admit = Callable[[list[dict], "str | None"], list[dict]]

_warn = RateLimitedLog(logging.getLogger(__name__))


class ForeignEntries:
    def __init__(self, admit: Admit | None = None):
        self.admit = admit

    def events(self, position: str, payload: bytes | None, count: bool) -> list[dict]:
        """The valid, admitted events of an entry the product did not write ([] if none)."""
        if payload is None:
            if count:
                counters.EVENTS_REJECTED.labels(PATH, UNDECODABLE).inc()
                _warn.warning(UNDECODABLE, "log entry %s has no event field: skipped", position)
            return []
        result = parse_message(payload, now_ms=float(position.partition("-")[0]), id_prefix=f"log-{position}")
        if count and result.rejected:
            for reason, n in result.rejected.items():
                counters.EVENTS_REJECTED.labels(PATH, reason).inc(n)
            _warn.warning("rejected", "log entry %s not written by the product: %s", position, result.first_error)
        if self.admit is not None and result.events:
            return self.admit(result.events, PATH if count else None)
        return result.events
