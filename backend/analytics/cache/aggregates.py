"""Rolling aggregates in Redis: per-second and per-minute buckets per (source, metric).

One hash per bucket, `<prefix>:s:<epoch second>` (kept a little over an hour) and
`<prefix>:m:<epoch minute>` (a little over a day), with fields `<source>|<metric>|<stat>`: c
(count), s (sum), lo (min), hi (max), the sketch buckets (k<i>, n<i>, z: at most MAX_SKETCH_BINS
per pair) and the version `_v` that every write changes; in a hash past MAX_SKETCH_BINS fields,
also what enforcing that bound needs (`#`, and `@<source>|<metric>` listing the pair's sketch
buckets: see apply_bucket.lua). State lives only in Redis, so every replica answers the same and a restart
loses nothing; a process only keeps parsed copies, checked against the version on
every read, so a one-hour window costs one round trip and the parse of what changed. The
process that writes the live minute carries its copy forward by what it wrote, so a read after
each write does not parse that minute's thousands of fields again.
"""
from __future__ import annotations

import time

from analytics.cache.bucket_read import BucketReader, parse_bucket, with_updates
from analytics.cache.bucket_write import Updates, bucket_updates, merge_updates, script_args
from analytics.cache.scripts import APPLY_BUCKET, APPLY_BUCKET_SHA
from analytics.cache.window import WindowMerger, response, window_keys
from analytics.events.filter import EVERYTHING, EventFilter

# The interface the cache writer, the API and the tests use.
__all__ = ["MAX_WINDOW", "MINUTE_TTL", "READ_AHEAD", "SECOND_TTL", "Aggregates", "bucket_updates", "merge_updates",
           "parse_bucket"]

SECOND_TTL = 3600 + 600
MINUTE_TTL = 86400 + 3600
MAX_WINDOW = 86400
READ_AHEAD = 8  # second buckets read ahead per window read (see Aggregates._ahead)


class Aggregates:
    """Writes batches into the bucket hashes and answers window queries from them."""

    def __init__(self, redis, prefix: str):
        self.redis = redis
        self.prefix = prefix
        self.reader = BucketReader(redis)
        self.merger = WindowMerger(prefix)

    def queue_updates(self, pipe, updates: Updates) -> list[tuple]:
        """Add pre-aggregated bucket updates to `pipe`: one script call per bucket. SCRIPT LOAD
        rides in the same pipeline, so a restarted Redis never answers NOSCRIPT and no extra
        round trip asks whether the script is there. Returns what `note_written` needs."""
        pipe.script_load(APPLY_BUCKET)
        written = []
        for suffix, pairs in updates.items():
            ttl = SECOND_TTL if suffix[0] == "s" else MINUTE_TTL
            key = f"{self.prefix}:{suffix}"
            args = script_args(ttl, pairs)
            if suffix[0] == "m":  # windows read minutes whole (seconds only at their old, closed edge)
                written.append((len(pipe), key, args[1].encode(), pairs))
            pipe.evalsha(APPLY_BUCKET_SHA, 1, key, *args)
        return written

    def note_written(self, written: list[tuple], results: list) -> None:
        """After the pipeline ran: advance each minute this process holds by what it just wrote,
        but only where the version before the write is the one held (any other writer, or a Redis
        restart, leaves it to be read afresh). A new minute whose predecessor is held is started
        here too: it will be read next, and this spares that read a parse of ~1,000 fields."""
        held_minutes = self.reader.held
        for index, key, version, pairs in written:
            held = held_minutes.get(key)
            if held is not None and results[index] == held[0]:
                held_minutes[key] = (version, with_updates(held[1], pairs))
            elif held is None and results[index] == b"" and self._previous_minute(key) in held_minutes:
                held_minutes[key] = (version, with_updates({}, pairs))

    def _previous_minute(self, key: str) -> str:
        head, _, minute = key.rpartition(":")
        return f"{head}:{int(minute) - 1}"

    def window_keys(self, first: int, last: int, now_sec: int) -> tuple[list[str], int]:
        return window_keys(self.prefix, first, last, now_sec, oldest_second_kept=now_sec - SECOND_TTL + 60)

    def _ahead(self, first: int, last: int) -> list[str]:
        """A few second buckets of the minute the window's old edge enters next, not yet read.
        When the edge enters a minute, that minute goes from one bucket to its ~60 seconds all
        at once; reading them a few at a time beforehand, in the same script call, leaves that
        read only version checks. They are closed seconds an hour old: what is read stays current."""
        following = (first // 60 + 1) * 60
        if following + 120 > last or first < last - SECOND_TTL + 120:
            return []  # a short window (its next edge minute is still live) or edges in whole minutes
        out = []
        for sec in range(following + 1, following + 60):
            key = f"{self.prefix}:s:{sec}"
            if key not in self.reader.absent and key not in self.reader.held:
                out.append(key)
                if len(out) == READ_AHEAD:
                    break
        return out

    def window(self, seconds: int, only: EventFilter = EVERYTHING, now: float | None = None) -> dict:
        """The aggregate response for the last `seconds` seconds, including the current one."""
        now = time.time() if now is None else now
        last = int(now)
        keys, first = self.window_keys(last - seconds + 1, last, last)
        buckets, versions = self.reader.read(keys + self._ahead(first, last))
        del buckets[len(keys):], versions[len(keys):]
        parts = self.merger.parts(keys, buckets, versions, f"{self.prefix}:m:{last // 60}", only)
        return response(seconds, first, last, now, parts)
