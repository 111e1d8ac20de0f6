"""Log reader: follows the durable log and hands each new entry to the batcher, in order.

Every replica runs one and delivers every entry to its own clients. It reads on from where it
was after losing Redis, so its clients miss nothing that was logged meanwhile.
"""
from __future__ import annotations

import logging
from collections.abc import Callable

import redis

from analytics import counters
from analytics.stream.durable_log import DurableLog, Entry

log = logging.getLogger(__name__)
READ_COUNT = 100  # entries per read; each holds up to 1,000 events
BLOCK_MS = 1000


class LogReader:
    def __init__(self, durable_log: DurableLog, deliver: Callable[[list[Entry]], None],
                 sleep: Callable[[float], None], yield_to_io: Callable[[], None] = lambda: None,
                 on_start: Callable[[str], None] = lambda position: None):
        self.log = durable_log
        self.deliver = deliver
        self.on_start = on_start  # told the first position, where live delivery starts
        self.sleep = sleep
        self.yield_to_io = yield_to_io
        self.position: str | None = None  # the last entry handed on; None until the first read
        self.state = "starting"
        self.running = True

    def start_position(self) -> str:
        """Where live reading starts: the log's newest entry (older ones are for resuming clients)."""
        if self.position is None:
            self.position = self.log.last_position()
            self.on_start(self.position)
        return self.position

    def run(self) -> None:
        backoff = 0.1
        while self.running:
            try:
                position = self.start_position()
                if self.state != "reading":
                    log.info("following the log %r from %s", self.log.key, position)
                    self.state = "reading"
                entries = self.log.read_after(position, READ_COUNT, BLOCK_MS)
                if entries:
                    self.position = entries[-1].position
                    self.deliver(entries)
                    self.yield_to_io()
                backoff = 0.1
            except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
                if self.state == "reading":
                    counters.REDIS_RECONNECTS.inc()
                    log.warning("log reader lost Redis (%s); reading on from %s once it is back", exc, self.position)
                self.state = "reconnecting"
                self.sleep(backoff)
                backoff = min(backoff * 2, 0.4)
            except Exception:  # a bug must not end live updates
                log.exception("log reader error")
                self.sleep(0.5)

    def stop(self) -> None:
        self.running = False
