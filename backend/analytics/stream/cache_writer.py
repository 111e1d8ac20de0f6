"""Cache writer: one Redis transaction per batch for the recent list and the aggregates.

Batches form by themselves: events gather for WRITE_INTERVAL_S, and while one transaction
is in flight new events pile up for the next. A failed write is retried (Redis down
mid-stream), so nothing accepted is lost unless the backlog passes MAX_PENDING, which is
counted and logged.
"""
from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable

import redis

from analytics import counters
from analytics.cache.aggregates import Aggregates, bucket_updates, merge_updates
from analytics.cache.recent import RecentEvents
from analytics.cache.writer_lease import WriterLease
from analytics.events.schema import encode_each

log = logging.getLogger(__name__)
MAX_PENDING = 500_000
WRITE_INTERVAL_S = 0.05
# Events per transaction. A transaction's Redis work (one script call per touched bucket, one
# LPUSH of at most RECENT_MAX) hardly grows with its events, so a fast stream is written in few
# large transactions: at 100,000 ev/s one per WRITE_INTERVAL_S. Its Python work is prepared in
# PREPARE_CHUNK slices (~1 ms each) with a yield between them, so sockets and REST keep flowing.
MAX_BATCH = 10_000
PREPARE_CHUNK = 1_000
# After a write, fewer events than this pending means the writer has caught up: it gathers for
# WRITE_INTERVAL_S again rather than paying a transaction for a handful. More means the stream
# is fast: it writes on at once, since pausing then would leave CPU idle while the backlog grows.
MIN_BATCH = 1_000


class CacheWriter:
    def __init__(self, client: redis.Redis, recent: RecentEvents, aggregates: Aggregates,
                 wake: threading.Event, sleep: Callable[[float], None], lease: WriterLease | None = None,
                 yield_to_io: Callable[[], None] = lambda: None):
        self.client = client
        self.lease = lease
        self.recent = recent
        self.aggregates = aggregates
        self.wake = wake
        self.sleep = sleep
        self.yield_to_io = yield_to_io  # between the steps of a batch: sockets and REST keep flowing
        self.running = True
        self._pending: deque[dict] = deque()
        self._lock = threading.Lock()
        self.written = 0
        self.skipped = 0

    def add(self, events: list[dict]) -> None:
        with self._lock:
            self._pending.extend(events)
            overflow = len(self._pending) - MAX_PENDING
            for _ in range(max(overflow, 0)):
                self._pending.popleft()
        if overflow > 0:
            log.error("cache backlog over %d events: dropped the %d oldest", MAX_PENDING, overflow)
        self.wake.set()

    def _take(self) -> list[dict]:
        with self._lock:
            n = min(len(self._pending), MAX_BATCH)
            return [self._pending.popleft() for _ in range(n)]

    def _give_back(self, batch: list[dict]) -> None:
        with self._lock:
            self._pending.extendleft(reversed(batch))

    def write(self, batch: list[dict]) -> None:
        """Write one batch (oldest first) in one MULTI/EXEC: all of it counts, or none of it."""
        if self.lease is not None and not self.lease.held():
            self.skipped += len(batch)  # another replica holds the lease and writes these
            return
        updates: dict = {}
        for start in range(0, len(batch), PREPARE_CHUNK):
            merge_updates(updates, bucket_updates(batch[start:start + PREPARE_CHUNK]))
            self.yield_to_io()
        recent = encode_each(batch[-self.recent.max_len:])
        self.yield_to_io()
        pipe = self.client.pipeline(transaction=True)
        self.recent.queue_writes(pipe, recent)
        written = self.aggregates.queue_updates(pipe, updates)
        results = pipe.execute()
        self.aggregates.note_written(written, results)
        self.written += len(batch)
        counters.EVENTS_CACHED.inc(len(batch))

    def run(self) -> None:
        backoff = 0.25
        while self.running:
            self.wake.wait(timeout=1.0)
            self.wake.clear()
            # Each transaction has a fixed cost (round trip, MULTI/EXEC, script call): gather
            # events for up to WRITE_INTERVAL_S first, so 1,000 small publishes a second cost
            # ~20 transactions, not 1,000. REST sees new events that much later, no more.
            self.sleep(WRITE_INTERVAL_S)
            while self.running:
                batch = self._take()
                if not batch:
                    break
                try:
                    self.write(batch)
                    backoff = 0.25
                    if self.pending() < MIN_BATCH:
                        break  # caught up: gather again, don't write what arrived meanwhile alone
                    self.yield_to_io()
                except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
                    self._give_back(batch)
                    counters.CACHE_WRITE_ERRORS.inc()
                    log.warning("cache write failed (%s); %d events kept, retrying in %.1fs",
                                exc, len(batch), backoff)
                    self.sleep(backoff)
                    backoff = min(backoff * 2, 5.0)
                except Exception:
                    counters.CACHE_WRITE_ERRORS.inc()
                    log.exception("cache write of %d events failed; batch dropped", len(batch))

    def pending(self) -> int:
        return len(self._pending)

    def stop(self) -> None:
        self.running = False
        self.wake.set()
