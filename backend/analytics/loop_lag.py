"""Event-loop lag under gevent: how late a timer wakes, in /metrics, and what held the loop when
it was blocked for long, in the log.

Everything on one gevent loop (sockets, REST, the stream tasks) waits while any greenlet runs
without yielding, so the time a timer wakes after it was due is the longest wait any socket or
request saw at that moment. The probe greenlet sleeps INTERVAL_S again and again and records
each wake's lateness (`analytics_event_loop_lag_seconds`, and the largest since start in
`analytics_event_loop_lag_max_seconds`).

A late wake has two causes, and only one is the process's to fix: the loop's thread ran other
work (a greenlet that did not yield, or a call that blocked the thread), or it was ready to run
but the kernel gave the CPU to another process (on a shared 2-core machine: the benchmark's own
clients and publisher). The kernel counts the second for each thread, as its run delay
(/proc/thread-self/schedstat). Of each lag, what is left after the thread's run delay since the
previous wake is the loop *blocked* by this process (`analytics_event_loop_blocked_seconds`, its
max in `analytics_event_loop_blocked_max_seconds`); the run delay is counted too
(`analytics_event_loop_cpu_wait_seconds_total`). The split can favour the process by at most the
run delay in the one interval before the timer was due (<= INTERVAL_S); where the kernel keeps
no run delay, blocked is the whole lag.

A watchdog on a native thread (it runs while the loop's thread is busy: the interpreter hands
it the GIL every switch interval) looks at the probe's last wake; when the loop has not let the
probe run for BLOCKED_S, it samples the stack the loop's thread is executing: that is what
holds the loop. The probe logs it (at a bounded rate) once the loop lets it run again.
gevent's own monitor thread (`GEVENT_MONITOR_THREAD_ENABLE`) was not used for this: it traces
every greenlet switch, and its report walks every object in the process (to list greenlets)
while it holds the GIL, lengthening the very block it reports; it also stays silent when the
loop is late from many short tasks rather than one long one. It can still be turned on by its
environment variables for a deeper look.
"""
from __future__ import annotations

import logging
import os
import sys
import traceback
from time import perf_counter

from analytics.counters import LOOP_BLOCKED, LOOP_BLOCKED_MAX, LOOP_CPU_WAIT, LOOP_LAG, LOOP_LAG_MAX
from analytics.logging_limits import RateLimitedLog

log = logging.getLogger(__name__)

# 5 ms: a block of B ms shows as a lag between B - 5 and B ms, fine enough for the 10 ms budget.
# Measured in an otherwise idle process (2026-12-03, 15 s, noisy): ~1% of a core at 5 ms (each wake
# is an epoll return, a timer and a switch, ~50 us, most of it not ours), ~0.8% at 10 ms, ~0.55%
# at 20 ms; the watchdog at 20 ms ~0.1%. On a busy loop the wakes ride on work the loop does anyway.
INTERVAL_S = 0.005
BLOCKED_S = 0.1  # a lag this long is logged with what held the loop
WATCH_EVERY_S = 0.02  # how often the watchdog looks (native thread; sleeps in between)
STACK_FRAMES = 25  # innermost frames kept of a sampled stack
REPORT_EVERY_S = 30.0  # at most one "blocked" line per this many seconds; the rest are counted


class LoopLagProbe:
    """One per process, started on the loop it measures (`start`), under gevent only."""

    def __init__(self, interval_s: float = INTERVAL_S, blocked_s: float = BLOCKED_S,
                 watch_every_s: float = WATCH_EVERY_S, report_every_s: float = REPORT_EVERY_S):
        self.interval_s = interval_s
        self.blocked_s = blocked_s
        self.watch_every_s = watch_every_s
        self.max_lag_s = 0.0
        self.max_blocked_s = 0.0
        self.last_wake = perf_counter()  # written by the probe, read by the watchdog (a float: atomic)
        self._sampled: tuple[float, str] | None = None  # (the last_wake it was late from, stack)
        self._loop_thread: int | None = None
        self._running = False
        self._reports = RateLimitedLog(log, interval=report_every_s)

    def start(self) -> None:
        import gevent
        from gevent.monkey import get_original

        self._loop_thread = gevent.get_hub().thread_ident
        self._running = True
        self.last_wake = perf_counter()
        gevent.spawn(self._run)
        # A native thread, not a greenlet (threading is patched under gevent): it must run while
        # the loop does not.
        get_original("_thread", "start_new_thread")(self._watch, (get_original("time", "sleep"),))

    def stop(self) -> None:
        self._running = False  # the probe and the watchdog end at their next wake

    def _run(self) -> None:
        import gevent

        run_delay = RunDelay()  # opened here: it reads the loop's own thread
        while self._running:
            due = perf_counter() + self.interval_s  # gevent.sleep refreshes the loop's clock first
            gevent.sleep(self.interval_s)
            woke = perf_counter()
            late_from, self.last_wake = self.last_wake, woke
            lag_s = max(woke - due, 0.0)
            waited_s = run_delay.since_last()
            LOOP_CPU_WAIT.inc(waited_s or 0.0)
            self.observe(lag_s, late_from, blocked_s=None if waited_s is None else max(lag_s - waited_s, 0.0))
        run_delay.close()

    def observe(self, lag_s: float, late_from: float, blocked_s: float | None = None) -> None:
        LOOP_LAG.observe(lag_s)
        if lag_s > self.max_lag_s:
            self.max_lag_s = lag_s
            LOOP_LAG_MAX.set(lag_s)
        blocked_s = lag_s if blocked_s is None else blocked_s
        LOOP_BLOCKED.observe(blocked_s)
        if blocked_s > self.max_blocked_s:
            self.max_blocked_s = blocked_s
            LOOP_BLOCKED_MAX.set(blocked_s)
        if lag_s >= self.blocked_s:
            sampled = self._sampled
            stack = sampled[1] if sampled and sampled[0] == late_from else "  (not sampled)\n"
            self._reports.warning("blocked", "event loop blocked %.0f ms (%.0f ms of it waiting for a CPU); "
                                  "the loop's thread was running:\n%s",
                                  lag_s * 1000, (lag_s - blocked_s) * 1000, stack.rstrip("\n"))

    def _watch(self, thread_sleep) -> None:
        while self._running:
            thread_sleep(self.watch_every_s)
            last = self.last_wake
            if perf_counter() - last < self.blocked_s:
                continue
            if self._sampled and self._sampled[0] == last:
                continue  # this stall is sampled already: its first sample is the one reported
            frame = sys._current_frames().get(self._loop_thread)
            stack = "".join(traceback.format_stack(frame)[-STACK_FRAMES:]) if frame else "  (no frame)\n"
            self._sampled = (last, stack)


class RunDelay:
    """The calling thread's run delay (ready, waiting for a CPU) from /proc/thread-self/schedstat
    ("<cpu ns> <run delay ns> <timeslices>"): one pread of an open file per call."""

    def __init__(self):
        try:
            self._fd: int | None = os.open("/proc/thread-self/schedstat", os.O_RDONLY)
        except OSError:
            self._fd = None
        self._last = self._read()

    def _read(self) -> int | None:
        if self._fd is None:
            return None
        try:
            return int(os.pread(self._fd, 128, 0).split()[1])
        except (OSError, IndexError, ValueError):
            return None

    def since_last(self) -> float | None:
        """Seconds of run delay since the previous call; None where the kernel does not tell."""
        now = self._read()
        if now is None or self._last is None:
            self._last = now
            return None
        delta, self._last = max(now - self._last, 0), now
        return delta / 1e9

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
