"""The batcher: a quiet stream goes out at once, a busy one in batches paced by the send budget."""
from __future__ import annotations

import threading
import time

import pytest

from analytics.stream.batcher import MAX_PENDING, Batcher
from analytics.stream.durable_log import Entry


def entry(*events) -> Entry:
    global _position
    _position += 1
    return Entry(f"1-{_position}", list(events))


_position = 0


def run_batcher(batch_ms: int, clients: int):
    delivered: list[list[Entry]] = []
    done = threading.Event()
    batcher = Batcher(lambda b: (delivered.append(b), done.set()), batch_ms, threading.Event(), time.sleep,
                      clients=lambda: clients, send_budget=1000)
    threading.Thread(target=batcher.run, daemon=True).start()
    return batcher, delivered, done


def test_batcher_sends_a_quiet_event_at_once_and_coalesces_a_burst():
    batcher, delivered, done = run_batcher(batch_ms=1000, clients=10_000)  # gap = BATCH_MS = 1 s
    first = entry({"n": 0})
    batcher.add([first])
    assert done.wait(5)
    done.clear()
    burst = [entry({"n": i}) for i in range(1, 11)]
    for one in burst:  # within the gap: all ten go out together, in order
        batcher.add([one])
    assert done.wait(5)
    batcher.stop()
    assert delivered == [[first], burst]


def test_batcher_gap_follows_the_send_budget():
    assert run_batcher(batch_ms=20, clients=10)[0].gap() == 10 / 1000
    assert run_batcher(batch_ms=20, clients=100)[0].gap() == 0.02  # capped at BATCH_MS


def test_a_heavy_stream_stretches_the_gap_and_a_quiet_one_lets_it_go_back():
    from analytics.stream.batcher import DELIVERY_KNEE, RATE_WINDOW_S

    batcher = run_batcher(batch_ms=1000, clients=10)[0]  # gap 10 ms at any rate under the knee
    per_window = DELIVERY_KNEE // 10 * RATE_WINDOW_S  # events in one window at the knee's rate
    batcher.add([entry(*[{"n": i} for i in range(int(per_window) // 2)])])  # half the knee's rate
    time.sleep(RATE_WINDOW_S)
    batcher.add([])
    assert 0 < batcher.rate < DELIVERY_KNEE / 10 and batcher.gap() == 10 / 1000
    batcher.add([entry(*[{"n": i} for i in range(int(per_window) * 4)])])  # four times the knee's rate
    time.sleep(RATE_WINDOW_S)
    batcher.add([])
    assert batcher.rate > 2 * DELIVERY_KNEE / 10  # four times, less any stall of the test machine
    # The budget fell in proportion to the load: the gap is 10 ms times the load over the knee.
    assert batcher.gap() == pytest.approx(0.01 * batcher.rate * 10 / DELIVERY_KNEE)
    time.sleep(2.5 * RATE_WINDOW_S)  # the stream stopped: the estimate goes stale
    assert batcher.gap() == 10 / 1000
    batcher.stop()


def test_a_backlog_past_the_cap_drops_whole_oldest_entries_and_says_how_many():
    overflowed = []
    batcher = Batcher(lambda b: None, 1000, threading.Event(), time.sleep, clients=lambda: 10_000,
                      send_budget=1000, on_overflow=overflowed.append)
    batcher.add([entry({"n": 0})])  # delivered at once: the gap starts
    big = [entry(*[{"n": i}] * 1000) for i in range(MAX_PENDING // 1000 + 3)]
    batcher.add(big)
    assert sum(overflowed) == 3000 and batcher._pending[0] is big[3]
