"""The recorder runs on a native thread of its own under gevent (stream/recorder_thread.py), so
its CPU steps never hold the event loop: proved in a real gevent process by which OS thread ran
each transaction, and that what it hands back (the held minutes) is applied on the loop's thread.
LoopCalls itself: calls from other threads run on the loop's thread, in order, and one failing
call does not stop the rest. No timing thresholds; timeouts only turn a hang into a failure."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading

import gevent

from analytics.stream.recorder_thread import LoopCalls
from devstack.processes import BACKEND, clean_env

# A gevent process as app.py makes it (monkey-patched first), with the stream tasks running.
# It notes the OS thread of every recorder transaction and of every held-minutes update, appends
# events to the log the way producers do, and prints what it saw once they are all recorded.
SCRIPT = textwrap.dedent("""
    from gevent import monkey
    monkey.patch_all()
    import json, sys, time
    import gevent
    os_thread = monkey.get_original("_thread", "get_ident")
    loop_thread = os_thread()
    from analytics.cache.aggregates import Aggregates
    from analytics.stream.recorder import Recorder
    seen = {"record": set(), "note_written": set()}
    record, note_written = Recorder.record, Aggregates.note_written
    def noting_record(self, entries):
        seen["record"].add(os_thread())
        return record(self, entries)
    def noting_note_written(self, written, results):
        seen["note_written"].add(os_thread())
        return note_written(self, written, results)
    Recorder.record, Aggregates.note_written = noting_record, noting_note_written
    from analytics.factory import create_app
    from analytics.settings import Settings
    app = create_app(Settings(REDIS_URL=sys.argv[1], ASYNC_MODE="gevent"))
    runtime = app.extensions["analytics"]
    now = int(time.time() * 1000)
    def append(first, last):
        for batch in range(first, last):
            runtime.log.append([{"id": f"e{batch}-{i}", "ts": now, "source": "web", "metric": "orders",
                                 "value": 1.0, "tags": {}} for i in range(50)])
    def total():
        return runtime.aggregates.window(60, now=now / 1000)["total"]["count"]
    deadline = time.monotonic() + 30
    append(0, 10)
    while total() < 500 and time.monotonic() < deadline:  # this process now holds the live minute
        gevent.sleep(0.05)
    append(10, 20)  # recorded on the recorder's thread; the held minute carried forward on the loop's
    while total() < 1000 and time.monotonic() < deadline:
        gevent.sleep(0.05)
    fresh = Aggregates(runtime.redis, runtime.aggregates.prefix).window(60, now=now / 1000)
    carried = runtime.aggregates.window(60, now=now / 1000)
    runtime.stop()
    while runtime.busy() and time.monotonic() < deadline + 5:  # its thread ends within one blocking read
        gevent.sleep(0.05)
    assert not runtime.busy(), "the recorder's thread did not end"
    print(json.dumps({"loop": loop_thread, "record": sorted(seen["record"]),
                      "note_written": sorted(seen["note_written"]), "carried": carried, "fresh": fresh}))
""")


def test_under_gevent_the_recorder_records_on_its_own_thread_and_the_loop_applies_what_it_hands_back(redis_url):
    done = subprocess.run([sys.executable, "-c", SCRIPT, redis_url], env=clean_env(), cwd=BACKEND,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["record"], "no transaction was recorded"
    assert seen["loop"] not in seen["record"], "the recorder ran on the event loop's thread"
    assert seen["note_written"] == [seen["loop"]], "held minutes were changed off the loop's thread"
    assert seen["carried"]["total"]["count"] == 1000
    # What the loop carried forward from the recorder's writes is what a fresh read of Redis gives.
    assert seen["carried"]["metrics"] == seen["fresh"]["metrics"]


def test_calls_from_other_threads_run_on_the_loops_thread_in_order():
    calls = LoopCalls()
    ran: list[tuple[int, int]] = []
    loop_thread = threading.get_ident()

    def note(i: int) -> None:
        ran.append((i, threading.get_ident()))

    def fail() -> None:
        raise RuntimeError("one bad call")

    def other_thread() -> None:
        for i in range(50):
            calls(note, i)
            if i == 10:
                calls(fail)

    try:
        worker = threading.Thread(target=other_thread)
        worker.start()
        with gevent.Timeout(10):
            while len(ran) < 50:
                gevent.sleep(0.01)
        worker.join()
    finally:
        calls.stop()
    assert [i for i, _ in ran] == list(range(50))
    assert {thread for _, thread in ran} == {loop_thread}
