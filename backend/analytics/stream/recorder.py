"""Recorder: writes the durable log into the recent list and the aggregates, each entry once.

Every replica runs one, as a consumer of the same consumer group, so recording work spreads
over the replicas alive. An entry is recorded and acknowledged (XACK) in one MULTI/EXEC: it
counts entirely or not at all. Entries a recorder read and did not record (it died, or stalled)
are claimed by another one after CLAIM_IDLE_MS; the claim also *fences* the slow recorder (its
fence key changes), and every recorder WATCHes its own fence key and checks that it still owns
its entries before writing, so a stalled recorder that wakes up cannot record them twice.
"""
from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import redis

from analytics import counters
from analytics.cache.aggregates import Aggregates, bucket_updates, merge_updates
from analytics.cache.recent import RecentEvents
from analytics.events.schema import encode_each
from analytics.stream.durable_log import DurableLog, Entry, position_key

log = logging.getLogger(__name__)
GROUP = "recorders"
READ_COUNT = 100  # entries per read: up to 100,000 events (arrays of 1,000), so a recorder behind stays in bounded memory
BLOCK_MS = 500
# A slow stream is recorded in gathered batches: after a short read the recorder waits this long,
# so 1,000 small XADDs a second cost ~20 transactions, not 1,000. The aggregates (and /recent when
# it reads the list, not the mirror: cache/recent_mirror.py) see events that much later.
GATHER_S = 0.05
CLAIM_IDLE_MS = 1000
CLAIM_EVERY_S = 0.5
HOUSEKEEPING_EVERY_S = 2.0
PREPARE_CHUNK = 1_000  # events prepared between two yields, so sockets and REST keep flowing
# Events per transaction, at most (whole entries: an entry counts entirely or not at all; one
# entry holds up to 1,000). Packing a transaction is one call that cannot yield: a recorder
# catching up on 36,000 events an hour old packed ~3,600 bucket scripts at once and held the
# loop 40-80 ms (the loop-lag probe's samples). 2,000 events keep it to a few ms.
TRANSACTION_EVENTS = 2_000
CLAIM_LUA = (Path(__file__).with_name("claim_idle.lua")).read_text()


class Recorder:
    def __init__(self, durable_log: DurableLog, recent: RecentEvents, aggregates: Aggregates,
                 retention_s: int, sleep: Callable[[float], None], yield_to_io: Callable[[], None] = lambda: None,
                 series_key: str | None = None, on_written: Callable[[list, list], None] | None = None):
        self.log = durable_log
        self.client = durable_log.client
        self.recent = recent
        self.aggregates = aggregates
        self.retention_ms = retention_s * 1000
        self.sleep = sleep
        self.yield_to_io = yield_to_io
        # The MAX_SERIES set (events/series.py): every series recorded is marked seen there, in the
        # same transaction, so the set (and health's `series`) counts the generator's series too,
        # which it appends to the log itself, and a series stays while it is written.
        self.series_key = series_key
        # After each transaction: the aggregates carry their held minutes forward (by default
        # here; a recorder on its own thread hands it to the loop's thread: recorder_thread.py).
        self.on_written = on_written or aggregates.note_written
        self.consumer = f"{os.uname().nodename}-{os.getpid()}-{os.urandom(3).hex()}"
        self.fence_prefix = f"{durable_log.key}:fence:"
        self._claim = self.client.register_script(CLAIM_LUA)
        self.state = "starting"
        self.running = True
        self.busy = False  # inside a read-and-record step: a graceful stop waits for it
        self.lag = 0  # entries not yet recorded by any recorder (group lag + pending), for health

    # --- one batch -------------------------------------------------------------------------

    def record_all(self, entries: list[Entry]) -> int:
        """Record entries in transactions of about TRANSACTION_EVENTS events, yielding between."""
        recorded, group, size = 0, [], 0
        for entry in entries:
            if group and size + len(entry.events) > TRANSACTION_EVENTS:
                recorded += self.record(group)
                self.yield_to_io()
                group, size = [], 0
            group.append(entry)
            size += len(entry.events)
        return recorded + self.record(group)

    def record(self, entries: list[Entry]) -> int:
        """Record the entries this consumer still owns, and acknowledge them, atomically.
        Returns the events recorded (0 if another recorder took the entries over meanwhile)."""
        if not entries:
            return 0
        with self.client.pipeline(transaction=True) as pipe:
            try:
                pipe.watch(self.fence_prefix + self.consumer)
                owned = {p["message_id"].decode() for p in pipe.xpending_range(
                    self.log.key, GROUP, entries[0].position, entries[-1].position, len(entries), self.consumer)}
                entries = [e for e in entries if e.position in owned]
                if not entries:
                    pipe.unwatch()
                    return 0
                events = [event for entry in entries for event in entry.events]
                updates: dict = {}
                for start in range(0, len(events), PREPARE_CHUNK):
                    merge_updates(updates, bucket_updates(events[start:start + PREPARE_CHUNK]))
                    self.yield_to_io()
                pipe.multi()
                self.recent.queue_writes(pipe, encode_each(events[-self.recent.max_len:]))
                if self.series_key and events:
                    now = int(time.time())
                    pairs = {(e["source"], e["metric"]) for e in events}  # a handful, however many events
                    pipe.zadd(self.series_key, {f"{src}|{met}": now for src, met in pairs})
                written = self.aggregates.queue_updates(pipe, updates)
                pipe.xack(self.log.key, GROUP, *[e.position for e in entries])
                results = pipe.execute()
            except redis.WatchError:
                counters.RECORD_FENCED.inc()
                log.warning("recorder %s was fenced: another recorder took its entries over", self.consumer)
                return 0
        self.on_written(written, results)
        counters.EVENTS_CACHED.inc(len(events))
        return len(events)

    # --- the task ----------------------------------------------------------------------------

    def ensure_group(self) -> None:
        try:
            # From the log's start: whatever is in the log was accepted and never recorded by a group.
            self.client.xgroup_create(self.log.key, GROUP, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def claim_idle(self) -> list[Entry]:
        raw = self._claim(keys=[self.log.key], args=[GROUP, self.consumer, CLAIM_IDLE_MS, READ_COUNT,
                                                      self.fence_prefix])
        entries = self.log.parse([(item[0], _pairs(item[1])) for item in raw], pause=self.yield_to_io)
        if entries:
            counters.LOG_CLAIMS.inc(len(entries))
            log.info("recorder claimed %d idle log entries", len(entries))
        return entries

    def housekeeping(self) -> None:
        """Publish lag and pending; trim what is recorded and past retention; forget idle consumers."""
        group = next((g for g in self.client.xinfo_groups(self.log.key) if g["name"] == GROUP.encode()), None)
        if group is None:
            return
        self.lag = int(group.get("lag") or 0) + int(group["pending"])
        counters.LOG_LAG.set(self.lag)
        counters.LOG_PENDING.set(int(group["pending"]))
        safe = position_key(group["last-delivered-id"].decode())
        if group["pending"]:
            # None when the entries pending a moment ago have been acknowledged since.
            oldest = self.client.xpending(self.log.key, GROUP)["min"]
            if oldest is not None:
                safe = min(safe, position_key(oldest.decode()))
        cutoff = min(safe, (int(time.time() * 1000) - self.retention_ms, 0))
        self.client.xtrim(self.log.key, minid=f"{cutoff[0]}-{cutoff[1]}", approximate=False)
        for consumer in self.client.xinfo_consumers(self.log.key, GROUP):
            if consumer["pending"] == 0 and consumer["idle"] > 600_000:
                self.client.xgroup_delconsumer(self.log.key, GROUP, consumer["name"])

    @contextmanager
    def working(self):
        """Marked busy while inside: a graceful stop waits for it (server.py)."""
        self.busy = True
        try:
            yield
        finally:
            self.busy = False

    def run(self) -> None:
        backoff = 0.1
        claimed_at = housekept_at = 0.0
        while self.running:
            try:
                if self.state != "recording":
                    self.ensure_group()
                    self.state = "recording"
                    log.info("recording the log %r as %s", self.log.key, self.consumer)
                now = time.monotonic()
                if now - claimed_at >= CLAIM_EVERY_S:
                    claimed_at = now
                    with self.working():  # claimed, then parsed (pausing) and recorded
                        self.record_all(self.claim_idle())
                if now - housekept_at >= HOUSEKEEPING_EVERY_S:
                    housekept_at = now
                    self.housekeeping()
                reply = self.client.xreadgroup(GROUP, self.consumer, {self.log.key: ">"}, count=READ_COUNT,
                                               block=BLOCK_MS)
                entries = reply[0][1] if reply else []
                with self.working():  # from the parse on: it pauses, and a stop must wait for what was read
                    self.record_all(self.log.parse(entries, pause=self.yield_to_io))
                if 0 < len(entries) < READ_COUNT:
                    self.sleep(GATHER_S)
                else:
                    self.yield_to_io()
                backoff = 0.1
            except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
                # Whatever was read and not recorded stays pending in Redis: claimed again later.
                if self.state == "recording":
                    log.warning("recorder lost Redis (%s); probing every %.1fs", exc, backoff)
                self.state = "reconnecting"
                counters.CACHE_WRITE_ERRORS.inc()
                self.sleep(backoff)
                backoff = min(backoff * 2, 0.4)  # probe often: back within a second of Redis
            except redis.ResponseError as exc:
                if "NOGROUP" in str(exc):
                    log.warning("the log's consumer group is gone (Redis restarted without its data?); "
                                "making it again")
                    self.state = "starting"
                else:
                    counters.CACHE_WRITE_ERRORS.inc()
                    log.exception("recorder error")
                    self.sleep(0.5)
            except Exception:  # a bug must not stop recording: the entries stay pending, claimed later
                counters.CACHE_WRITE_ERRORS.inc()
                log.exception("recorder error")
                self.sleep(0.5)

    def stop(self) -> None:
        self.running = False


def _pairs(flat) -> dict:
    """A Lua script returns an entry's fields as a flat [field, value, ...] list."""
    if isinstance(flat, dict) or flat is None:
        return flat
    return dict(zip(flat[::2], flat[1::2]))
