"""The catch-up window (sockets/log_window.py) against the real test Redis: what it serves is
exactly the log after a position, and a crowd at one position reads Redis once."""
from __future__ import annotations

from analytics.sockets.log_window import READ_ENTRIES, LogWindow


def fill(runtime, n: int, per_entry: int = 1) -> list[str]:
    """n entries of `per_entry` events each; their positions."""
    with runtime.redis.pipeline(transaction=False) as pipe:
        for i in range(n):
            runtime.log.append([{"id": f"e-{i}-{k}", "ts": 1.0, "source": "web", "metric": "orders", "value": i,
                                 "tags": {}} for k in range(per_entry)], pipe=pipe)
        return [p.decode() for p in pipe.execute()]


def read_all(window: LogWindow, position: str, upto: str, max_events: int = 500) -> list[str]:
    """What a catch-up from `position` to `upto` is served, as the positions of its entries."""
    out = []
    while True:
        entries = window.after(position, upto, max_events)
        if not entries:
            return out
        out.extend(e.position for e in entries)
        position = entries[-1].position


def test_a_crowd_at_one_position_reads_the_log_once_and_each_gets_exactly_what_follows(runtime):
    positions = fill(runtime, 250)
    window = LogWindow(runtime.log)
    start, upto = positions[49], positions[-1]
    for _ in range(100):
        assert read_all(window, start, upto) == positions[50:]
    assert window.reads == -(-200 // READ_ENTRIES)  # the 200 entries read once, not once per client
    assert read_all(window, positions[120], positions[180]) == positions[121:181]  # inside: from memory
    assert window.reads == -(-200 // READ_ENTRIES)
    window.release()  # the last catch-up ended: memory let go, the next one reads afresh
    assert window.events == 0 and read_all(window, start, upto) == positions[50:]
    assert window.reads == 2 * -(-200 // READ_ENTRIES)


def test_an_older_position_extends_the_window_back_and_a_newer_upto_reads_on(runtime):
    positions = fill(runtime, 300)
    window = LogWindow(runtime.log)
    assert read_all(window, positions[199], positions[249]) == positions[200:250]
    assert read_all(window, positions[149], positions[249]) == positions[150:250]  # joined in front
    assert window.floor < window.keys[0] and len(window.entries) == 100
    assert read_all(window, "0-0", positions[-1]) == positions  # the very start, and on to the end


def test_the_window_stays_within_its_event_budget_and_still_serves_every_entry(runtime):
    positions = fill(runtime, 400, per_entry=10)
    window = LogWindow(runtime.log, max_events=1000)
    assert read_all(window, "0-0", positions[-1], max_events=50) == positions
    assert window.events <= 1000 + READ_ENTRIES * 10
    assert read_all(window, positions[9], positions[-1]) == positions[10:]  # dropped: read again


def test_an_entry_without_events_does_not_end_a_read_early(runtime):
    # A foreign XADD (no `e` field) comes back as an entry with no events: the window reads on
    # past it and past a full read, to the whole range.
    first = fill(runtime, READ_ENTRIES - 1)
    foreign = runtime.redis.xadd(runtime.log.key, {"x": "1"}).decode()
    rest = fill(runtime, 10)
    assert read_all(LogWindow(runtime.log), "0-0", rest[-1]) == first + [foreign] + rest
    assert runtime.log.range_after(first[-1], foreign, 10)[0].events == []


def test_nothing_is_lost_after_a_position_the_window_holds_and_redis_is_asked_otherwise(runtime):
    positions = fill(runtime, 50)
    window = LogWindow(runtime.log)
    read_all(window, positions[9], positions[-1])
    runtime.redis.xtrim(runtime.log.key, maxlen=5)  # retention moved past the window's start
    assert window.lost_after(positions[9]) is False  # the window still holds all that followed
    assert window.lost_after("0-0") is True  # before it: Redis says what is kept


def test_a_resume_waits_for_the_log_reader_to_start_however_long_that_takes(runtime, monkeypatch):
    # It used to give up after WAIT_FOR_REPLICA_S and join live from "0-0": the live stream then
    # started where the reader started, and what the client had missed before that was skipped.
    import threading
    import time

    from analytics.sockets import resume
    from analytics.sockets.engineio_adapter import EventPacket
    from analytics.sockets.fanout import Fanout
    from analytics.sockets.rooms import Subscription
    from tests.test_sockets import stalled_client

    monkeypatch.setattr(resume, "WAIT_FOR_REPLICA_S", 0.05)
    sock = stalled_client("early")
    positions = fill(runtime, 5)
    fanout = Fanout(runtime.fanout.clients, backlog=64)  # its log reader has not started
    joined, sent = threading.Event(), []
    task = threading.Thread(target=lambda: sent.append(resume.catch_up(
        fanout, LogWindow(runtime.log), "early", Subscription(positions=True), positions[1], joined.set, time.sleep)))
    task.start()
    time.sleep(0.5)  # ten times what a position ahead of a started replica waits
    assert not joined.is_set()
    fanout.start_at(positions[-1])
    task.join(60)
    assert joined.is_set() and sent == [3]
    packets = [p for p in sock.queue.queue if isinstance(p, EventPacket)]
    assert [p.data.count('"id":') for p in packets] == [3] and '"replay":true' in packets[0].data
