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
    # A foreign XADD (no `e` field) is left out of the entries: the window must still read on
    # past a full read, not take the short list for the whole range.
    first = fill(runtime, READ_ENTRIES - 1)
    foreign = runtime.redis.xadd(runtime.log.key, {"x": "1"}).decode()
    rest = fill(runtime, 10)
    window = LogWindow(runtime.log)
    assert foreign not in read_all(window, "0-0", rest[-1])
    assert read_all(LogWindow(runtime.log), "0-0", rest[-1]) == first + rest


def test_nothing_is_lost_after_a_position_the_window_holds_and_redis_is_asked_otherwise(runtime):
    positions = fill(runtime, 50)
    window = LogWindow(runtime.log)
    read_all(window, positions[9], positions[-1])
    runtime.redis.xtrim(runtime.log.key, maxlen=5)  # retention moved past the window's start
    assert window.lost_after(positions[9]) is False  # the window still holds all that followed
    assert window.lost_after("0-0") is True  # before it: Redis says what is kept
