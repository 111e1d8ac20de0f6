"""The cache writer's batching loop (its Redis writes are covered in test_api and end to end)."""
from __future__ import annotations

import threading


def test_cache_writer_gathers_a_steady_stream_into_few_transactions():
    """Events that arrive while a transaction is in flight wait for the next gathering interval
    instead of going out alone right after it (at 10,000 ev/s that had made ~90 transactions of
    60 events a second instead of ~20 of 600)."""
    from analytics.stream import cache_writer
    from analytics.stream.cache_writer import CacheWriter

    batches = []

    class Recording(CacheWriter):
        def write(self, batch):
            batches.append(len(batch))
            self.add([{"n": 0}] * 5)  # what the listener adds during the round trip
            if len(batches) == 6:
                self.stop()

    def sleep(seconds):
        if seconds == cache_writer.WRITE_INTERVAL_S:
            writer.add([{"n": 0}] * 100)  # a steady stream, gathered while the writer sleeps

    writer = Recording(None, None, None, wake=threading.Event(), sleep=sleep)
    writer.add([{"n": 0}])
    runner = threading.Thread(target=writer.run)
    runner.start()
    runner.join(timeout=10)
    assert not runner.is_alive()
    assert batches[0] == 101 and all(n == 105 for n in batches[1:])


def test_cache_writer_writes_on_without_pausing_while_a_backlog_remains():
    from analytics.stream import cache_writer
    from analytics.stream.cache_writer import MAX_BATCH, CacheWriter

    batches, pauses = [], []

    class Recording(CacheWriter):
        def write(self, batch):
            batches.append(len(batch))
            self.add([{"n": 0}] * 1_200)  # a fast stream: more than MIN_BATCH arrives meanwhile
            if len(batches) == 4:
                self.stop()

    writer = Recording(None, None, None, wake=threading.Event(),
                       sleep=lambda s: pauses.append(s) if s == cache_writer.WRITE_INTERVAL_S else None)
    writer.add([{"n": 0}] * (MAX_BATCH + 1_500))
    runner = threading.Thread(target=writer.run)
    runner.start()
    runner.join(timeout=10)
    assert not runner.is_alive()
    # Partial batches too are followed at once while the backlog is worth a transaction.
    assert batches == [MAX_BATCH, 2_700, 1_200, 1_200] and len(pauses) == 1  # one gather, at the start
