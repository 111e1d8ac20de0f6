"""Rate-limit counts kept in this process and added to the shared counts in Redis every
RATE_LIMIT_SYNC_MS (the idea of Kong's `sync_rate`), as a storage for Flask-Limiter.

With the counts in Redis only, every limited answer waited on one more Redis round trip (the
limit's script) and, under ingest, on the recorder's transactions ahead of it in Redis: of
/recent?limit=200's in-app time under 10,000 ev/s, that round trip was most of the p99 once the
list read was gone (the recent mirror). Here a hit is decided on this process's view of the
window: the shared total as of the last sync plus the hits since. A background task adds those
hits to Redis (one pipelined script call per window that had hits) and learns the new total and
when the window ends.

What it costs: a replica learns a window's shared total when it adds hits of its own to it, so
it decides on a total as old as its last hits there; across R replicas a client can get up to
R x the budget in one window at worst, never more than the budget from any one replica (which is
what keeps one client from slowing a replica). RATE_LIMIT_SYNC_MS=0 keeps every count in Redis
before the answer (exact across replicas).
While Redis is away the counts stay here, the limits still apply per replica, and the hits are
added once it is back.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from limits.storage import RedisStorage

from analytics import counters
from analytics.logging_limits import RateLimitedLog

log = logging.getLogger(__name__)
SCHEME = "synced+redis"


@dataclass
class _Window:
    ends: float  # epoch seconds: this process's estimate until a sync tells Redis's TTL
    expiry: int  # the limit's window length in seconds (the key's EXPIRE when Redis makes it)
    known: int = 0  # the shared total at the last sync, this process's synced hits included
    sending: int = 0  # hits in a sync now in flight
    pending: int = 0  # hits since

    @property
    def count(self) -> int:
        return self.known + self.sending + self.pending


class SyncedCounts(RedisStorage):
    STORAGE_SCHEME = [SCHEME]  # its own scheme: "redis://" stays limits' RedisStorage

    def __init__(self, uri: str, **options):
        super().__init__(uri, **options)  # options carry the app's connection_pool and key_prefix
        self._windows: dict[str, _Window] = {}
        self._lock = threading.Lock()  # the threading async mode syncs while requests count
        self._down_log = RateLimitedLog(log)
        self.running = True

    def _live(self, key: str, now: float) -> _Window | None:
        window = self._windows.get(key)
        return window if window is not None and now < window.ends else None

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        now = time.time()
        with self._lock:
            window = self._live(key, now)
            if window is None:
                window = self._windows[key] = _Window(ends=now + expiry, expiry=expiry)
            window.pending += amount
            return window.count

    def get(self, key: str) -> int:
        with self._lock:
            window = self._live(key, time.time())
            return window.count if window else 0

    def get_expiry(self, key: str) -> float:
        now = time.time()
        with self._lock:
            window = self._live(key, now)
            return window.ends if window else now

    def clear(self, key: str) -> None:
        with self._lock:
            self._windows.pop(key, None)
        super().clear(key)

    def reset(self) -> int | None:
        with self._lock:
            self._windows.clear()
        return super().reset()

    def sync(self) -> None:
        """Add the hits since the last sync to Redis, in one round trip; learn each window's
        shared total and end. Raises Redis's errors (the hits stay here for the next try)."""
        now = time.time()
        with self._lock:
            for key in [k for k, w in self._windows.items() if now >= w.ends and not w.pending]:
                del self._windows[key]  # over: Redis expires its key too
            batch = [(key, window, window.pending) for key, window in self._windows.items() if window.pending]
            for _key, window, hits in batch:
                window.pending -= hits
                window.sending += hits
        if not batch:
            return
        try:
            with self.storage.pipeline(transaction=False) as pipe:
                # SCRIPT LOAD rides along (as in cache/aggregates.py): a restarted Redis never
                # answers NOSCRIPT, and no SCRIPT EXISTS, which the backend's ACL user may not run.
                pipe.script_load(self.SCRIPT_INCR_EXPIRE)
                for key, window, hits in batch:
                    pipe.evalsha(self.lua_incr_expire.sha, 1, self.prefixed_key(key), window.expiry, hits)
                    pipe.ttl(self.prefixed_key(key))
                replies = pipe.execute()[1:]
        except BaseException:
            with self._lock:
                for _key, window, hits in batch:
                    window.sending -= hits
                    window.pending += hits
            raise
        now = time.time()
        with self._lock:
            for (_key, window, hits), total, ttl_s in zip(batch, replies[::2], replies[1::2]):
                window.sending -= hits
                window.known = int(total)
                if ttl_s > 0:
                    window.ends = now + ttl_s

    def run(self, every_s: float, sleep: Callable[[float], None]) -> None:
        """The background task: sync every `every_s` until stopped."""
        while self.running:
            sleep(every_s)
            try:
                self.sync()
            except self.base_exceptions as exc:
                counters.RATE_LIMIT_SYNC_ERRORS.inc()
                self._down_log.warning("down", "rate-limit counts not shared (Redis: %s); limits apply per "
                                       "replica until it is back", exc)
            except Exception:  # a bug must not end sharing for good
                log.exception("rate-limit sync error")

    def stop(self) -> None:
        """Stop syncing, after one last sync: the hits since would be lost with the process."""
        self.running = False
        try:
            self.sync()
        except self.base_exceptions:
            pass
