"""The recorder on a native thread of its own, beside the gevent loop.

Why: the recorder's work (parse a read, pre-aggregate it, encode the list entries, pack and
send one transaction) is CPU in steps of 1-6 ms on a busy 2-core machine, and on the loop every
step holds every request and socket until it ends. Measured in the REST cell (10,000 ev/s, 30 s,
2026-12-03, runs alternated): with the recorder on the loop, `/api/health` p99 6.85 / 6.55 ms and
the loop blocked p99 3.2 ms; on its own thread 3.16 / 4.49 ms and 1.9 ms, `/recent?limit=200`
6.9 / 6.3 -> 4.0 / 4.4 ms, aggregate 11.9 / 12.9 -> 8.7 / 9.8 ms, the same backend CPU in that
cell and every event recorded. Pausing the recorder altogether gave health 3.2 / 5.1 ms: it was
the loop's tail. The cost shows where both threads are busy: at 10,000 ev/s x 100 clients, CPU per
delivery 0.334 / 0.415 against 0.261 / 0.355 s per million (alternated 20 s runs), the GIL handed
over every 0.5 ms; still inside the 0.5 s budget line (bench/README.md).

On its own thread the interpreter, not the recorder, decides when the loop runs: a thread that
wants the GIL gets it after at most the switch interval (SWITCH_INTERVAL_S, set process-wide).
At Python's default 5 ms, health p99 was 4.97 / 5.16 ms in the same runs; at 0.5 ms, above.

What the thread shares with the loop's thread, and how (gevent's advice is to share no gevent
object between threads):
- Redis: its own client and pool (and its own series cap for entries others wrote), so no
  connection, pool lock or socket is shared. Its sleeps and socket waits run on a hub of its own,
  which gevent makes for each thread that waits.
- The aggregates' held minutes (cache/bucket_read.py) are read by requests on the loop: the
  recorder hands its `note_written` to the loop's thread (LoopCalls) instead of changing them.
- Its state, lag and busy flag are plain attributes, read by health and the graceful stop.
- Counters and log lines: prometheus-client's and logging's locks are gevent's after
  monkey-patching, which gevent makes work across threads that have a hub (this one has: it waits
  on sockets); each is held for an increment or one line. The loop takes the recorder's counters'
  locks only to answer health and /metrics, and the recorder logs only on claims, fences and
  errors, so they are rarely contended. (A stress run, 15 s, a thread incrementing a counter and
  logging in a tight loop while four greenlets read it and log: the greenlets never stalled; the
  thread slowed down, so contention costs this thread, not the loop.)
"""
from __future__ import annotations

import _thread
import collections
import logging
import sys
from collections.abc import Callable

from gevent import get_hub, monkey

from analytics.events.series import SeriesCap
from analytics.stream.durable_log import DurableLog
from analytics.stream.foreign_entries import ForeignEntries

log = logging.getLogger(__name__)
SWITCH_INTERVAL_S = 0.0005


class LoopCalls:
    """Calls asked for on any thread, run on the gevent loop's thread, in order. Make it on that
    thread. A libev async watcher wakes the loop; it runs the calls in its callback, so they must
    not block (they do not: they update objects in memory)."""

    def __init__(self):
        self._calls: collections.deque = collections.deque()  # append / popleft: safe across threads
        self._wake = get_hub().loop.async_()
        self._wake.ref = False  # does not keep the loop alive by itself
        self._wake.start(self._run)

    def __call__(self, fn: Callable, *args) -> None:
        self._calls.append((fn, args))
        self._wake.send()

    def _run(self) -> None:
        while self._calls:
            fn, args = self._calls.popleft()
            try:
                fn(*args)
            except Exception:  # one bad call must not stop the ones after it
                log.exception("call handed to the loop failed")

    def stop(self) -> None:
        self._wake.stop()


def log_with_own_client(durable_log: DurableLog, series: SeriesCap, client) -> DurableLog:
    """The same log (and series cap, for entries others wrote) over another Redis client."""
    own_series = SeriesCap(client, series.key, series.max_series, series.clock)
    return DurableLog(client, durable_log.key, durable_log.max_entries, ForeignEntries(own_series.admit))


class BesideLoop:
    """A task on an OS thread of its own beside the gevent loop (`start`), with a way to tell
    that it has ended. A process must not exit while the thread still runs gevent code: the
    interpreter's shutdown tears down what that thread's hub uses (a test's process died of
    SIGSEGV so), so the graceful stop waits for `running` to turn False (Runtime.busy)."""

    def __init__(self, target: Callable[[], None]):
        self.target = target
        self.running = False

    def start(self) -> BesideLoop:
        sys.setswitchinterval(SWITCH_INTERVAL_S)  # the loop's thread takes the GIL back this soon
        start = monkey.get_original("_thread", "start_new_thread") if monkey.is_module_patched("threading") \
            else _thread.start_new_thread
        self.running = True
        start(self._run, ())
        return self

    def _run(self) -> None:
        try:
            self.target()
        except BaseException:  # the recorder catches its own errors; anything else ends the thread, said here
            log.exception("task on its own thread ended")
        finally:
            try:
                get_hub().destroy(destroy_loop=True)  # this thread's hub and loop, made for its waits
            finally:
                self.running = False
