"""Log lines at a bounded rate, so a flood of bad input cannot flood the log."""
from __future__ import annotations

import logging
import time


class RateLimitedLog:
    """At most one line per `interval` seconds per key; the lines skipped are counted in the next."""

    def __init__(self, logger: logging.Logger, interval: float = 5.0):
        self.logger = logger
        self.interval = interval
        self._last: dict[str, float] = {}
        self._skipped: dict[str, int] = {}

    def warning(self, key: str, msg: str, *args) -> None:
        now = time.monotonic()
        if now - self._last.get(key, -1e9) < self.interval:
            self._skipped[key] = self._skipped.get(key, 0) + 1
            return
        skipped = self._skipped.pop(key, 0)
        self._last[key] = now
        if len(self._last) > 1024:  # bounded: forget keys, never grow with hostile input
            self._last.clear()
        suffix = f" ({skipped} similar lines skipped)" if skipped else ""
        self.logger.warning(msg + suffix, *args)
