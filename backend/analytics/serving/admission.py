"""Admission at accept time, before a byte is parsed: at most MAX_CONNECTIONS_PER_ADDRESS open
connections per client address, and at most `capacity` in all, a figure below the process's
descriptor limit, so a flood is refused and counted instead of running the server out of
descriptors (an accept() failing with EMFILE, a Redis connection failing to open)."""
from __future__ import annotations

import resource

# Descriptors the process holds whatever the clients do: the interpreter, the listening socket,
# the event loop, log files, and the stream tasks' Redis connections (listener, reader, recorder,
# lease, limiter), with room to spare.
RESERVED_FDS = 64
# A connection may hold two descriptors: simple-websocket duplicates a WebSocket's socket, and a
# REST request under gevent may hold a Redis connection of its own while it runs.
FDS_PER_CONNECTION = 2
UNLIMITED_FDS = 1 << 20  # what to assume under RLIM_INFINITY


def capacity_for_fd_limit(fd_limit: int | None = None) -> int:
    """Connections the server can hold under its descriptor limit (RLIMIT_NOFILE's soft value)."""
    if fd_limit is None:
        fd_limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if fd_limit == resource.RLIM_INFINITY or fd_limit < 0:
        fd_limit = UNLIMITED_FDS
    return max(1, (fd_limit - RESERVED_FDS) // FDS_PER_CONNECTION)


class Admission:
    """Open connections by client address. `admit` says why a new one is refused, or None and
    counts it; every admitted connection must be released once."""

    def __init__(self, per_address: int, capacity: int):
        self.per_address = per_address  # 0: no cap per address
        self.capacity = capacity
        self.total = 0
        self._by_address: dict[str, int] = {}

    def admit(self, address: str) -> str | None:
        if self.total >= self.capacity:
            return "server_full"
        held = self._by_address.get(address, 0)
        if self.per_address and held >= self.per_address:
            return "per_address"
        self._by_address[address] = held + 1
        self.total += 1
        return None

    def release(self, address: str) -> None:
        held = self._by_address.get(address, 0) - 1
        if held > 0:
            self._by_address[address] = held
        else:  # no entry left behind: the map holds only addresses with open connections
            self._by_address.pop(address, None)
        self.total -= 1
