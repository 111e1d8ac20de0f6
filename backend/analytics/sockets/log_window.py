"""The catch-up window: log entries read from Redis once for every client that resumes.

A restarted backend has all its clients back within a few hundred milliseconds, each resuming
from nearly the same position. When each catch-up read the log on its own, a hundred of them
took a hundred Redis connections at the same moment: past the pool's limit (100 in redis-py 8)
the reads failed. Here one catch-up at a time reads Redis (under `lock`) into a run of
consecutive entries kept in memory, and every catch-up whose position falls inside that run is
served from memory: the entries are read and parsed once, not once per client.

The run is contiguous: it holds every entry of the log after `floor` up to `ceiling` as Redis
had them when read (an entry trimmed since is still served: the client was owed it). It grows
at its newest end by at most READ_ENTRIES per read, only for a catch-up that has reached it,
drops its oldest entries to stay near `max_events`, and is let go (`release`) once no client is
catching up any more.
"""
from __future__ import annotations

import bisect
import threading

from analytics.stream.durable_log import DurableLog, Entry, position_key

READ_ENTRIES = 100  # entries per XRANGE; each holds up to 1,000 events
MAX_EVENTS = 20_000  # events kept in memory (about 10-20 MB), plus at most one read

Key = tuple[int, int]


def _text(key: Key) -> str:
    return f"{key[0]}-{key[1]}"


class LogWindow:
    def __init__(self, durable_log: DurableLog, max_events: int = MAX_EVENTS):
        self.log = durable_log
        self.max_events = max_events
        self.lock = threading.Lock()  # one catch-up at a time touches Redis and the run
        self.reads = 0  # XRANGE calls made (how well the window is shared)
        self._clear()

    def release(self) -> None:
        """Let the entries go (the last catch-up ended); the next one reads afresh."""
        with self.lock:
            self._clear()

    def _clear(self) -> None:
        self.entries: list[Entry] = []
        self.keys: list[Key] = []  # position_key of each entry, for bisect
        self.events = 0
        self.floor: Key | None = None  # None: the window holds nothing
        self.ceiling: Key | None = None

    def lost_after(self, position: str) -> bool:
        """DurableLog.lost_after, without asking Redis when the window holds what follows `position`."""
        with self.lock:
            if self._covers(position_key(position)):
                return False
            return self.log.lost_after(position)

    def after(self, position: str, upto: str, max_events: int) -> list[Entry]:
        """The entries after `position` up to and including `upto`, oldest first: about
        `max_events` events' worth (at least one entry), [] when there are none. Raises what
        redis-py raises when Redis must be read and cannot be."""
        p, u = position_key(position), position_key(upto)
        with self.lock:
            if not self._covers(p):
                self._restart_at(position, p)
            start = bisect.bisect_right(self.keys, p)
            while start == len(self.entries) and self.ceiling < u:  # more than once only past entries without events
                self._extend(upto, u)
                start = bisect.bisect_right(self.keys, p)
            out, events = [], 0
            for i in range(start, len(self.entries)):
                if self.keys[i] > u or (out and events >= max_events):
                    break
                out.append(self.entries[i])
                events += len(self.entries[i].events)
            return out

    def _covers(self, p: Key) -> bool:
        return self.floor is not None and self.floor <= p <= self.ceiling

    def _read(self, after: str, upto: str) -> tuple[list[Entry], Key | None]:
        """One XRANGE of (after, upto]: its entries, and where it stopped (None: it read all of it)."""
        self.reads += 1
        entries, stopped = self.log.read_range(after, upto, READ_ENTRIES)
        return entries, None if stopped is None else position_key(stopped)

    def _restart_at(self, position: str, p: Key) -> None:
        """Make the window start at `p`: joined to the run when `p` is just before it, else a new run."""
        if self.floor is not None and p < self.floor:
            entries, stopped = self._read(position, _text(self.floor))
            added = sum(len(e.events) for e in entries)
            if stopped is None and self.events + added <= self.max_events:
                self.entries[:0] = entries
                self.keys[:0] = [position_key(e.position) for e in entries]
                self.events += added
                self.floor = p
                return
        self._clear()
        self.floor = self.ceiling = p

    def _extend(self, upto: str, u: Key) -> None:
        """Read the entries after the ceiling (at most READ_ENTRIES, up to `upto`) onto the run,
        first dropping its oldest entries as far as needed to stay within max_events."""
        entries, stopped = self._read(_text(self.ceiling), upto)
        added = sum(len(e.events) for e in entries)
        drop = 0
        while drop < len(self.entries) and self.events + added > self.max_events:
            self.events -= len(self.entries[drop].events)
            drop += 1
        if drop:
            self.floor = self.keys[drop - 1]
            del self.entries[:drop], self.keys[:drop]
        self.entries.extend(entries)
        self.keys.extend(position_key(e.position) for e in entries)
        self.events += added
        self.ceiling = u if stopped is None else stopped
