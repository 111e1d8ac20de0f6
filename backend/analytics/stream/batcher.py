"""Batcher: adaptive coalescing between the listener and the Socket.IO fan-out.

Leading-edge throttle: an event that arrives after the stream has been quiet for `gap` is
delivered at once; events that arrive sooner wait until `gap` has passed since the last
delivery and go out together. `gap` is spent on a send budget: each delivery costs one socket
write per client, so with SEND_BUDGET writes/s the gap is clients / SEND_BUDGET, capped at
BATCH_MS (the most an event may wait). Ten clients at 100 ev/s never wait; a hundred clients at
10,000 ev/s get one packet every BATCH_MS.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)
MAX_PENDING = 200_000


class Batcher:
    def __init__(self, deliver: Callable[[list[dict]], None], batch_ms: int,
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
        self._pending: list[dict] = []
        self._lock = threading.Lock()
        self._last = 0.0  # when the last delivery started (monotonic seconds)

    def add(self, events: list[dict]) -> None:
        with self._lock:
            # Quiet stream: nothing waiting and the gap has passed, so deliver right here in the
            # caller, without a hop through the batcher's own task.
            now = time.monotonic()
            if not self._pending and now - self._last >= self.gap():
                self._last = now
                self._deliver(events)
                return
            self._pending.extend(events)
            overflow = len(self._pending) - MAX_PENDING
            if overflow > 0:
                del self._pending[:overflow]
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
                batch, self._pending = self._pending, []
                if batch:
                    self._last = time.monotonic()
                    self._deliver(batch)

    def _deliver(self, batch: list[dict]) -> None:
        try:
            self.deliver(batch)
        except Exception:  # one bad delivery must not end live updates
            log.exception("delivery of %d events failed", len(batch))

    def gap(self) -> float:
        """Least time between two deliveries, in seconds (see the module docstring)."""
        return min(self.max_gap, self.clients() / self.send_budget)

    def stop(self) -> None:
        self.running = False
        self.wake.set()
