"""What /api/health says about Redis, kept by a background check rather than a round trip per request.

Under 10,000 ev/s ingest a health request's PING waited its turn in Redis behind the recorder's
transactions and, for its answer, on the loop behind every greenlet ready to run: p99 12-15 ms,
nearly all of it waiting, for an endpoint probes and load balancers call all the time. A checker
task PINGs Redis (and counts the series, in the same round trip) every CHECK_EVERY_S; health
answers from its last result while that is at most MAX_AGE_S old, and checks inline otherwise
(no checker running, as in a process without the stream tasks). While a check has been waiting
for more than MAX_AGE_S (a Redis that accepts and never answers), health says down at once
rather than wait in a check of its own for the client's socket timeout (5 s, longer than a
container probe's 3 s). So health tells a Redis that went away or came back within
CHECK_EVERY_S, and a Redis that hangs within MAX_AGE_S.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import redis

CHECK_EVERY_S = 0.25
MAX_AGE_S = 1.0


@dataclass(frozen=True)
class RedisState:
    up: bool
    series: int | None  # distinct series admitted (the MAX_SERIES set), None while Redis is down
    checked_at: float  # time.monotonic()


class RedisStatus:
    def __init__(self, client: redis.Redis, series_key: str, sleep: Callable[[float], None],
                 every_s: float = CHECK_EVERY_S, max_age_s: float = MAX_AGE_S):
        self.client = client
        self.series_key = series_key
        self.sleep = sleep
        self.every_s = every_s
        self.max_age_s = max_age_s
        self.last: RedisState | None = None
        self.waiting_since: float | None = None  # when the oldest check still waiting began
        self.running = True

    def check(self) -> RedisState:
        started = time.monotonic()
        if self.waiting_since is None:
            self.waiting_since = started
        try:
            with self.client.pipeline(transaction=False) as pipe:  # one round trip for both
                _, series = pipe.ping().zcard(self.series_key).execute()
            state = RedisState(True, series, time.monotonic())
        except (redis.RedisError, OSError):
            state = RedisState(False, None, time.monotonic())
        finally:
            if self.waiting_since == started:
                self.waiting_since = None
        self.last = state
        return state

    def current(self) -> RedisState:
        now = time.monotonic()
        last = self.last
        if last is not None and now - last.checked_at <= self.max_age_s:
            return last
        if self.waiting_since is not None and now - self.waiting_since > self.max_age_s:
            return RedisState(False, None, now)  # a check is stuck waiting: Redis does not answer
        return self.check()

    def run(self) -> None:
        while self.running:
            self.check()
            self.sleep(self.every_s)

    def stop(self) -> None:
        self.running = False
