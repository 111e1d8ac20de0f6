"""The event-loop lag probe: a loop blocked on purpose shows as lag, with the blocker's stack in the
log; the real backend exports the probe in /metrics. No timing thresholds on performance: the
only figure checked is the length of the block the test itself makes."""
from __future__ import annotations

import logging
import re
import time
import urllib.request

import gevent
import pytest
from prometheus_client import REGISTRY

from analytics.loop_lag import LoopLagProbe
from devstack.processes import backend, redis_server
from tests.helpers import hold_the_loop_on_purpose

BLOCK_S = 0.3


def lag_count(le: str | None = None) -> float:
    if le is None:
        return REGISTRY.get_sample_value("analytics_event_loop_lag_seconds_count") or 0.0
    return REGISTRY.get_sample_value("analytics_event_loop_lag_seconds_bucket", {"le": le}) or 0.0


def test_a_blocked_loop_is_recorded_as_lag_and_the_blocker_is_logged(caplog):
    caplog.set_level(logging.WARNING, logger="analytics.loop_lag")
    # Every block reported (no rate limit): an unrelated stall of this busy machine may be logged too.
    probe = LoopLagProbe(interval_s=0.005, blocked_s=0.1, watch_every_s=0.01, report_every_s=0)
    long_before = lag_count() - lag_count("0.25")  # samples above 250 ms so far (other tests' probes)
    probe.start()
    try:
        gevent.sleep(0.05)  # the probe runs on the idle loop
        gevent.spawn(hold_the_loop_on_purpose, BLOCK_S).join()
        gevent.sleep(0.05)  # the probe wakes, late, and records it
    finally:
        probe.stop()
    # The timer was due at most one interval after the block began, so it woke at least the
    # block minus one interval late.
    assert probe.max_lag_s >= BLOCK_S - probe.interval_s
    assert REGISTRY.get_sample_value("analytics_event_loop_lag_max_seconds") >= BLOCK_S - probe.interval_s
    assert lag_count() - lag_count("0.25") == long_before + 1  # that one wake, in the histogram
    blocked = [r.getMessage() for r in caplog.records if "event loop blocked" in r.getMessage()]
    # The watchdog's sample names the blocker, in the line of a lag at least the block's length.
    assert any("hold_the_loop_on_purpose" in line and float(line.split()[3]) >= (BLOCK_S - probe.interval_s) * 1000
               for line in blocked), blocked


def blocked_count(le: str | None = None) -> float:
    if le is None:
        return REGISTRY.get_sample_value("analytics_event_loop_blocked_seconds_count") or 0.0
    return REGISTRY.get_sample_value("analytics_event_loop_blocked_seconds_bucket", {"le": le}) or 0.0


def test_a_loop_held_by_the_process_counts_as_blocked():
    probe = LoopLagProbe(interval_s=0.005, blocked_s=10, watch_every_s=0.01, report_every_s=0)
    probe.start()
    try:
        gevent.sleep(0.05)
        gevent.spawn(hold_the_loop_on_purpose, BLOCK_S).join()  # a blocking call: no CPU, no run delay
        gevent.sleep(0.05)
    finally:
        probe.stop()
    assert probe.max_blocked_s >= BLOCK_S - probe.interval_s
    assert REGISTRY.get_sample_value("analytics_event_loop_blocked_max_seconds") >= BLOCK_S - probe.interval_s


def test_a_loop_starved_of_cpu_by_another_process_counts_as_waiting_not_blocked():
    """Another process takes the loop's CPU (as the benchmark's clients do on a small machine): the
    probe is as late as when the process blocks itself, but the kernel's run delay shows it was
    waiting for a CPU, so little of it counts as blocked. The other process runs real-time
    (SCHED_FIFO) on the one CPU this process is pinned to, so the kernel must starve us."""
    import os
    import subprocess
    import sys

    hog = ("import os, time\n"
           "os.sched_setaffinity(0, {0})\n"
           "os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))\n"
           f"end = time.monotonic() + {BLOCK_S}\n"
           "while time.monotonic() < end: pass\n")
    affinity = os.sched_getaffinity(0)
    probe = LoopLagProbe(interval_s=0.005, blocked_s=10, watch_every_s=0.01, report_every_s=0)
    blocked_before = blocked_count() - blocked_count("0.1")
    os.sched_setaffinity(0, {0})  # this thread (the loop's) onto CPU 0, where the hog runs
    try:
        probe.start()
        gevent.sleep(0.05)
        hog_process = subprocess.Popen([sys.executable, "-c", hog])
        while hog_process.poll() is None:
            gevent.sleep(0.01)
        assert hog_process.returncode == 0, "the CPU hog could not run (SCHED_FIFO refused?)"
        gevent.sleep(0.05)
    finally:
        probe.stop()
        os.sched_setaffinity(0, affinity)
    # The hog held CPU 0 for BLOCK_S: the probe woke at least that late, minus its start-up
    # (the hog's interpreter starting is not yet the hog) ...
    assert probe.max_lag_s >= BLOCK_S / 2
    # ... but not blocked: no wake of the probe counts 100 ms or more of it as the process's own.
    assert blocked_count() - blocked_count("0.1") == blocked_before
    assert probe.max_blocked_s < probe.max_lag_s / 2


def test_blocked_lines_are_rate_limited_and_the_rest_counted(caplog):
    caplog.set_level(logging.WARNING, logger="analytics.loop_lag")
    probe = LoopLagProbe(report_every_s=60)  # not started: its observations are fed directly
    for _ in range(3):
        probe.observe(0.2, probe.last_wake)
    probe.observe(0.004, probe.last_wake)  # under the threshold: histogram only
    blocked = [r.getMessage() for r in caplog.records if "event loop blocked" in r.getMessage()]
    assert len(blocked) == 1 and "200 ms" in blocked[0]
    assert probe.max_lag_s == 0.2
    probe._reports.interval = 0  # the next line carries the count of those skipped
    probe.observe(0.15, probe.last_wake)
    assert "(2 similar lines skipped)" in caplog.records[-1].getMessage()


@pytest.mark.e2e
def test_the_backend_exports_loop_lag_in_metrics_and_keeps_sampling():
    def scrape(base: str) -> dict[str, float]:
        with urllib.request.urlopen(f"{base}/metrics", timeout=10) as response:
            text = response.read().decode()
        return {name: float(value) for name, value in re.findall(
            r"^(analytics_event_loop_lag_(?:seconds_count|max_seconds)) (\S+)$", text, re.M)}

    with redis_server() as (redis_url, _, _), backend(redis_url) as base:
        first = scrape(base)
        time.sleep(0.5)
        second = scrape(base)
    assert "analytics_event_loop_lag_max_seconds" in first
    assert second["analytics_event_loop_lag_seconds_count"] > first["analytics_event_loop_lag_seconds_count"] > 0
