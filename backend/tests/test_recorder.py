"""The recorder against a real Redis: every log entry recorded once, whichever recorder dies or stalls."""
from __future__ import annotations

import threading
import time

import pytest

from analytics.cache.aggregates import Aggregates
from analytics.stream import recorder as recorder_module
from analytics.stream.durable_log import parse_entries
from analytics.stream.recorder import GROUP, Recorder
from tests.helpers import event


def new_recorder(runtime, retention_s: int = 600) -> Recorder:
    """A recorder as another replica would run it: its own consumer name and parsed-bucket cache."""
    rec = Recorder(runtime.log, runtime.recent, Aggregates(runtime.redis, runtime.aggregates.prefix),
                   retention_s=retention_s, sleep=time.sleep)
    rec.ensure_group()
    return rec


def read(rec: Recorder) -> list:
    reply = rec.client.xreadgroup(GROUP, rec.consumer, {rec.log.key: ">"}, count=100)
    return parse_entries(reply[0][1]) if reply else []


def totals(client) -> tuple[int, int]:
    body = client.get("/api/metrics/aggregate?window=60").json
    return body["total"]["count"], client.get("/api/metrics/recent?limit=50").json["count"]


def test_entries_are_recorded_once_and_acknowledged(client, runtime):
    rec = new_recorder(runtime)
    for i in range(3):
        runtime.log.append([event(value=i), event(value=i)])
    assert rec.record(read(rec)) == 6
    assert totals(client) == (6, 6)
    assert runtime.redis.xpending(runtime.log.key, GROUP)["pending"] == 0
    assert read(rec) == []  # nothing is handed out twice


def test_recorded_series_are_marked_seen_in_the_series_set(client, runtime):
    """The generator appends to the log itself, past the ingest's series cap: recording marks
    its series seen, so the cap's set and health's `series` count every series reads can meet."""
    rec = Recorder(runtime.log, runtime.recent, runtime.aggregates, retention_s=600, sleep=time.sleep,
                   series_key=runtime.series.key)
    rec.ensure_group()
    runtime.log.append([event(source="web", metric="orders"), event(source="api", metric="orders"),
                        event(source="web", metric="orders")])
    before = time.time()
    assert rec.record(read(rec)) == 3
    seen = dict(runtime.redis.zrange(runtime.series.key, 0, -1, withscores=True))
    assert set(seen) == {b"web|orders", b"api|orders"}
    assert all(score >= int(before) for score in seen.values())
    assert client.get("/api/health").json["series"]["count"] == 2


def test_a_stalled_recorders_entries_are_claimed_and_its_late_write_is_fenced(client, runtime, monkeypatch):
    monkeypatch.setattr(recorder_module, "CLAIM_IDLE_MS", 50)
    stalled, alive = new_recorder(runtime), new_recorder(runtime)
    runtime.log.append([event(value=1), event(value=2)])
    runtime.log.append([event(value=3)])
    taken = read(stalled)  # read, then stalls before writing
    assert len(taken) == 2
    time.sleep(0.1)
    claimed = alive.claim_idle()
    assert [e.position for e in claimed] == [e.position for e in taken]
    assert alive.record(claimed) == 3
    assert stalled.record(taken) == 0  # woke up: fenced, writes nothing
    assert totals(client) == (3, 3)
    assert runtime.redis.xpending(runtime.log.key, GROUP)["pending"] == 0


def test_a_claim_between_the_ownership_check_and_the_write_aborts_the_write(client, runtime, monkeypatch):
    """The race the fence exists for: the entries change hands after the stalled recorder checked them."""
    monkeypatch.setattr(recorder_module, "CLAIM_IDLE_MS", 0)
    slow, other = new_recorder(runtime), new_recorder(runtime)
    runtime.log.append([event(value=1)])
    taken = read(slow)
    claimed = []

    def claim_meanwhile():  # runs while `slow` prepares its write, after its WATCH and ownership check
        if not claimed:
            claimed.extend(other.claim_idle())

    slow.yield_to_io = claim_meanwhile
    assert slow.record(taken) == 0
    assert [e.position for e in claimed] == [e.position for e in taken]
    assert other.record(claimed) == 1
    assert totals(client) == (1, 1)


def test_a_dead_recorders_entries_are_recorded_by_a_new_one(client, runtime, monkeypatch):
    monkeypatch.setattr(recorder_module, "CLAIM_IDLE_MS", 50)
    dead = new_recorder(runtime)
    runtime.log.append([event(value=i) for i in range(5)])
    read(dead)  # and never writes: the process was killed
    time.sleep(0.1)
    successor = new_recorder(runtime)
    assert successor.record(successor.claim_idle()) == 5
    assert totals(client) == (5, 5)


def test_housekeeping_trims_recorded_entries_past_retention_and_keeps_unrecorded_ones(runtime):
    rec = new_recorder(runtime, retention_s=0)
    runtime.log.append([event()])
    rec.record(read(rec))
    pending_position = runtime.log.append([event()])
    read(rec)  # read, not recorded: must survive any trim
    runtime.log.append([event()])  # never read: must survive too
    rec.housekeeping()
    remaining = [p.decode() for p, _ in runtime.redis.xrange(runtime.log.key)]
    assert remaining[0] == pending_position and len(remaining) == 2
    assert rec.lag == 2


@pytest.mark.parametrize("position", ["", "1", "-1", "1-", "a-1", "1-1-1", "١-1", "1" * 40 + "-1"])
def test_a_malformed_position_is_refused(position):
    from analytics.stream.durable_log import position_key

    with pytest.raises(ValueError):
        position_key(position)


def test_a_long_read_is_recorded_in_bounded_transactions_with_yields_between(client, runtime, monkeypatch):
    """A recorder catching up packed one transaction of every entry it read (36,000 events an hour
    old: ~3,600 bucket scripts, 40-80 ms of the loop in one call): now whole entries go in
    transactions of about TRANSACTION_EVENTS events, with a yield between, and all count once."""
    monkeypatch.setattr(recorder_module, "TRANSACTION_EVENTS", 10)
    rec = new_recorder(runtime)
    steps = []  # "tx" when a transaction starts, "y" at each yield
    rec.yield_to_io = lambda: steps.append("y")
    transactions = []
    record = rec.record
    monkeypatch.setattr(rec, "record", lambda entries: steps.append("tx") or transactions.append(len(entries))
                        or record(entries))
    for size in (4, 4, 4, 12, 1):  # 12: one entry over the bound is still one transaction
        runtime.log.append([event(value=i) for i in range(size)])
    assert rec.record_all(read(rec)) == 25
    assert transactions == [2, 1, 1, 1]  # [4, 4] [4] [12] [1]: whole entries, <= 10 events unless one is more
    # One yield in each transaction's preparation (one chunk each) and one between transactions.
    assert steps == ["tx", "y", "y"] * 3 + ["tx", "y"]
    assert totals(client) == (25, 25)
    assert runtime.redis.xpending(runtime.log.key, GROUP)["pending"] == 0



def test_a_recorder_is_busy_from_the_moment_it_holds_what_it_read(client, runtime, monkeypatch):
    """A graceful stop waits while the recorder is busy. The parse of what it read pauses (a long
    read is parsed in slices), so busy must already be set then: a stop during that pause would
    otherwise end the process with entries read and not recorded (claimed again only later)."""
    from analytics.stream import durable_log

    monkeypatch.setattr(durable_log, "PARSE_CHUNK", 2)  # a pause inside this small read's parse
    rec = new_recorder(runtime)
    busy_at_pauses = []

    def pause() -> None:
        busy_at_pauses.append(rec.busy)
        rec.running = False  # one pass is enough

    rec.yield_to_io = pause
    monkeypatch.setattr(runtime.log, "pause", pause)  # whichever pause the parse takes
    runtime.log.append([event(value=i) for i in range(3)])
    runtime.log.append([event(value=i) for i in range(3)])
    worker = threading.Thread(target=rec.run, daemon=True)
    worker.start()
    worker.join(timeout=30)
    assert not worker.is_alive()
    assert busy_at_pauses and all(busy_at_pauses)
    assert totals(client) == (6, 6)
