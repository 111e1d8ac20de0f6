"""The MAX_SERIES cap: at most that many distinct (source, metric) series, shared by every replica.

Checked at ingest (HTTP and the channel listener), before the durable log, so the log, the
recorder and every aggregate read only ever see admitted series: read time and memory stay flat
whatever names producers invent. One Redis sorted set holds each admitted series with the time
it was last seen; series idle for longer than the aggregates keep them (a day and an hour) leave
it, so the cap counts the series a read can still meet. One script call per message: a few set
lookups for the handful of series a message carries."""
from __future__ import annotations

from analytics import counters
from analytics.cache.aggregates import MINUTE_TTL

REASON = "too_many_series"

# KEYS[1] = the set; ARGV = now (s), cap, idle time that frees a series (s), then the message's
# series. Returns the refused series.
ADMIT = """
local key, now, cap = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', key, '-inf', '(' .. (now - tonumber(ARGV[3])))
local size = redis.call('ZCARD', key)
local refused = {}
for i = 4, #ARGV do
  local series = ARGV[i]
  if redis.call('ZSCORE', key, series) then
    redis.call('ZADD', key, now, series)
  elseif size < cap then
    redis.call('ZADD', key, now, series)
    size = size + 1
  else
    refused[#refused + 1] = series
  end
end
return refused
"""


class SeriesCap:
    def __init__(self, redis, key: str, max_series: int, clock):
        self.key = key
        self.max_series = max_series
        self.clock = clock
        self._admit = redis.register_script(ADMIT)  # EVALSHA, loads on NOSCRIPT

    def admit(self, events: list[dict], path: str | None) -> list[dict]:
        """The events whose series is admitted (known, or new and under the cap); the others are
        counted as rejected on `path` with reason too_many_series (not counted without a path)."""
        if not events:
            return events
        series = list(dict.fromkeys(f"{e['source']}|{e['metric']}" for e in events))
        refused = self._admit(keys=[self.key], args=[int(self.clock()), self.max_series, MINUTE_TTL, *series])
        if not refused:
            return events
        refused_set = {r.decode() for r in refused}
        kept = [e for e in events if f"{e['source']}|{e['metric']}" not in refused_set]
        if path is not None:
            counters.EVENTS_REJECTED.labels(path, REASON).inc(len(events) - len(kept))
        return kept
