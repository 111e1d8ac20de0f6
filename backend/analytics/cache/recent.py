"""The last RECENT_MAX events, newest first, in the Redis list RECENT_KEY (LPUSH + LTRIM), which
the recorder writes; read from this replica's in-memory mirror of the log when it can answer."""
from __future__ import annotations

import orjson

from analytics.cache.recent_mirror import RecentMirror
from analytics.events.filter import EVERYTHING, EventFilter


class RecentEvents:
    def __init__(self, redis, key: str, max_len: int, mirror: RecentMirror | None = None):
        self.redis = redis
        self.key = key
        self.max_len = max_len
        self.mirror = mirror  # fed by the log reader (factory.py); None: every read goes to Redis

    def queue_writes(self, pipe, encoded_events: list[bytes]) -> None:
        """Add the batch (oldest first) to `pipe`; only the newest max_len can survive the trim."""
        tail = encoded_events[-self.max_len:]
        if tail:
            pipe.lpush(self.key, *tail)
            pipe.ltrim(self.key, 0, self.max_len - 1)

    def newest(self, limit: int, only: EventFilter = EVERYTHING) -> list[bytes]:
        """Up to `limit` encoded events, newest first, of those `only` lets through."""
        held = self.mirror.newest(limit, only) if self.mirror is not None else None
        if held is not None:
            return held
        if only.everything:
            return self.redis.lrange(self.key, 0, limit - 1)
        out = []
        for raw in self.redis.lrange(self.key, 0, self.max_len - 1):
            if only.matches(orjson.loads(raw)):
                out.append(raw)
                if len(out) == limit:
                    break
        return out
