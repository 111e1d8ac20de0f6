"""A lease in Redis: which one replica does a job that must be done once (bridging pub/sub).

The holder renews it as it works; if it dies, another replica takes over within LEASE_MS; if it
stops cleanly it releases the lease, so another takes over at once.
"""
from __future__ import annotations

import os
import time

LEASE_MS = 2000
# Renew when held by us, take when free; atomic, so two replicas never both believe they hold it.
ACQUIRE_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
return 0
"""
RELEASE_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class Lease:
    def __init__(self, client, key: str, lease_ms: int = LEASE_MS):
        self.key = key
        self.lease_ms = lease_ms
        self.token = f"{os.uname().nodename}-{os.getpid()}-{os.urandom(4).hex()}"
        self._acquire = client.register_script(ACQUIRE_LUA)
        self._release = client.register_script(RELEASE_LUA)
        self._checked_at = -1e9
        self.last_known = False  # whether we held it when we last asked (no round trip; for health)

    def held(self) -> bool:
        """True if this replica should do the job now. Asks Redis at most every quarter lease."""
        now = time.monotonic()
        if now - self._checked_at >= self.lease_ms / 4000.0:
            self.last_known = bool(self._acquire(keys=[self.key], args=[self.token, self.lease_ms]))
            self._checked_at = now
        return self.last_known

    def release(self) -> None:
        if self.last_known:
            self._release(keys=[self.key], args=[self.token])
            self.last_known = False
