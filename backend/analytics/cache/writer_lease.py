"""Which replica writes the shared cache: the holder of a short lease in Redis.

Every backend replica listens to the channel and pushes every event to its own clients, but
the recent list and the aggregates live in Redis and must be written once. The replica that
holds `<prefix>:writer` writes; the others skip their copy. The holder renews the lease as it
writes; if it dies, another replica takes over within LEASE_MS (events in that window reach
dashboards but are not cached: the README says so).
"""
from __future__ import annotations

import os
import time

LEASE_MS = 3000
# Renew when held by us, take when free; atomic so two replicas never both believe they hold it.
ACQUIRE_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
return 0
"""


class WriterLease:
    def __init__(self, redis, key: str, lease_ms: int = LEASE_MS):
        self.key = key
        self.lease_ms = lease_ms
        self.token = f"{os.uname().nodename}-{os.getpid()}-{os.urandom(4).hex()}"
        self._acquire = redis.register_script(ACQUIRE_LUA)
        self._checked_at = -1e9
        self._held = False

    @property
    def last_known(self) -> bool:
        """Whether we held the lease when we last asked (no round trip; for /api/health)."""
        return self._held

    def held(self) -> bool:
        """True if this replica should write now. Asks Redis at most every third of the lease."""
        now = time.monotonic()
        if now - self._checked_at >= self.lease_ms / 3000.0:
            self._held = bool(self._acquire(keys=[self.key], args=[self.token, self.lease_ms]))
            self._checked_at = now
        return self._held
