"""Batcher: adaptive coalescing between the log reader and the Socket.IO fan-out.

Leading-edge throttle: log entries that arrive after the stream has been quiet for `gap` are
delivered at once; entries that arrive sooner wait until `gap` has passed since the last
delivery and go out together. Each delivery costs one socket write per client, so `gap` is
spent on a send budget of SEND_BUDGET writes/s (clients / SEND_BUDGET), capped at BATCH_MS, the
most an event may wait; past DELIVERY_KNEE event deliveries per second the per-event work takes
the CPU that framing had, so the budget shrinks in proportion (bench/README.md has the figures).
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from analytics.stream.durable_log import Entry

log = logging.getLogger(__name__)
MAX_PENDING = 200_000  # events waiting; past it the oldest entries are dropped (clients get `gap`)
DELIVERY_KNEE = 500_000  # event deliveries/s (events/s x clients) the full SEND_BUDGET covers
RATE_WINDOW_S = 0.5  # the event rate is re-estimated this often


class Batcher:
    def __init__(self, deliver: Callable[[list[Entry]], None], batch_ms: int,
                 wake: threading.Event, sleep: Callable[[float], None],
                 clients: Callable[[], int] = lambda: 1, send_budget: int = 10_000,
                 on_overflow: Callable[[int], None] = lambda n: None):
        self.deliver = deliver
        self.max_gap = batch_ms / 1000.0
        self.clients = clients
        self.send_budget = send_budget
        self.wake = wake
        self.sleep = sleep
        self.on_overflow = on_overflow
        self.running = True
        self._pending: list[Entry] = []
        self._pending_events = 0
        self._lock = threading.Lock()
        self._last = 0.0  # when the last delivery started (monotonic seconds)
        self.rate = 0.0  # events/s seen by add(), over the last RATE_WINDOW_S
        self._counted = 0
        self._counted_since = time.monotonic()

    def add(self, entries: list[Entry]) -> None:
        overflow = 0
        with self._lock:
            # Quiet stream: nothing waiting and the gap has passed, so deliver right here in the
            # caller, without a hop through the batcher's own task.
            now = time.monotonic()
            n = sum(len(entry.events) for entry in entries)
            self._count(n, now)
            inline = not self._pending and now - self._last >= self.gap()
            if inline:
                self._last = now
                self._deliver(entries)
            else:
                self._pending.extend(entries)
                self._pending_events += n
                while self._pending_events > MAX_PENDING and len(self._pending) > 1:
                    dropped = self._pending.pop(0)
                    self._pending_events -= len(dropped.events)
                    overflow += len(dropped.events)
        if inline:
            # Let the socket writers send it now, before the caller reads on: a quiet stream's latency.
            self.sleep(0)
            return
        if overflow > 0:
            self.on_overflow(overflow)
        self.wake.set()

    def run(self) -> None:
        while self.running:
            if not self.wake.wait(timeout=1.0):
                continue
            self.wake.clear()
            delay = self._last + self.gap() - time.monotonic()
            if delay > 0:
                self.sleep(delay)
            with self._lock:  # held while delivering: deliveries never overlap or reorder
                batch, self._pending, self._pending_events = self._pending, [], 0
                if batch:
                    self._last = time.monotonic()
                    self._deliver(batch)

    def _deliver(self, batch: list[Entry]) -> None:
        try:
            self.deliver(batch)
        except Exception:  # one bad delivery must not end live updates
            log.exception("delivery of %d log entries failed", len(batch))

    def _count(self, n: int, now: float) -> None:
        self._counted += n
        elapsed = now - self._counted_since
        if elapsed >= RATE_WINDOW_S:
            self.rate, self._counted, self._counted_since = self._counted / elapsed, 0, now

    def gap(self) -> float:
        """Least time between two deliveries, in seconds (see the module docstring)."""
        clients = self.clients()
        # Nothing arrived for a while: the last estimate is stale, the stream is quiet.
        stale = time.monotonic() - self._counted_since > 2 * RATE_WINDOW_S
        load = 1.0 if stale else max(1.0, self.rate * clients / DELIVERY_KNEE)
        return min(self.max_gap, clients * load / self.send_budget)

    def stop(self) -> None:
        self.running = False
        self.wake.set()
