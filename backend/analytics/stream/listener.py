"""Listener: subscribes to METRICS_CHANNEL (the pub/sub producer interface), validates each
message once and hands its valid events on: into the durable log.

Messages already waiting in the subscription's buffer when one arrives are taken with it (at
most BRIDGE_MESSAGES, BRIDGE_BYTES), admitted under MAX_SERIES in one script call and appended
in one pipeline, one log entry per message: two Redis round trips per burst instead of two per
message. Nothing waits for a burst to fill: only what has already arrived is taken.

Every replica stays subscribed, but only the one whose `active()` says so (the holder of the
bridge lease) handles messages, so each message enters the log once. Pub/sub keeps nothing: a
message published while no replica is subscribed, or in the moments a dead bridge's lease takes
to pass to another replica, is gone. Nothing that arrives on the channel can stop the listener;
Redis going away makes it probe every few hundred milliseconds and subscribe again.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable

import redis

from analytics import counters
from analytics.events.schema import parse_message
from analytics.logging_limits import RateLimitedLog

log = logging.getLogger(__name__)
Sink = Callable[[list[list[dict]]], None]  # takes the valid events of each message, in order
YIELD_EVERY_S = 0.002
BRIDGE_MESSAGES = 100  # messages per pipeline at most (each <= 1,000 events) ...
BRIDGE_BYTES = 1 << 20  # ... and at most about this much raw JSON


class Listener:
    def __init__(self, client: redis.Redis, channel: str, sinks: list[Sink], sleep: Callable[[float], None],
                 yield_to_io: Callable[[], None] = lambda: None, active: Callable[[], bool] = lambda: True,
                 admit: Callable[[list[dict]], list[dict]] = lambda events: events):
        self.client = client
        self.channel = channel
        self.sinks = sinks
        self.sleep = sleep
        self.yield_to_io = yield_to_io  # lets other tasks and pending socket reads run, then resumes
        self.active = active
        self.admit = admit  # the MAX_SERIES cap: the valid events of series it admits (counts the rest)
        self.state = "starting"
        self.reconnects = 0
        self.running = True
        self._bad_input_log = RateLimitedLog(log)

    def handle(self, raw: bytes) -> int:
        """Validate one message and hand its good events to every sink; returns how many."""
        return self.handle_many([raw])

    def handle_many(self, raws: list[bytes]) -> int:
        """Validate messages, admit their events under the series cap in one call, and hand each
        message's good events to every sink at once (one entry per message); returns how many."""
        per_message = [self._valid(raw) for raw in raws]
        every = [e for events in per_message for e in events]
        admitted = self.admit(every)
        if len(admitted) != len(every):  # some series refused: keep each message's admitted events
            kept = set(map(id, admitted))
            per_message = [[e for e in events if id(e) in kept] for events in per_message]
        batches = [events for events in per_message if events]
        if batches:
            counters.EVENTS_ACCEPTED.labels("channel").inc(len(admitted))
            for sink in self.sinks:
                sink(batches)
        return len(admitted)

    def _valid(self, raw: bytes) -> list[dict]:
        result = parse_message(raw)
        for reason, n in result.rejected.items():
            counters.EVENTS_REJECTED.labels("channel", reason).inc(n)
        if result.rejected:
            self._bad_input_log.warning("reject", "rejected %d event(s) on %s: %s",
                                        sum(result.rejected.values()), self.channel, result.first_error)
        return result.events

    def run(self) -> None:
        backoff = 0.1
        while self.running:
            pubsub = self.client.pubsub(ignore_subscribe_messages=True)
            try:
                pubsub.subscribe(self.channel)
                if self.state != "subscribed":
                    log.info("listening on channel %r", self.channel)
                self.state, backoff = "subscribed", 0.1
                yielded = time.monotonic()
                while self.running:
                    raws = self._burst(pubsub)
                    if raws and self.active():
                        self.handle_many(raws)
                    # Messages already buffered are read without blocking, so under gevent a
                    # burst would starve the batcher and the socket writers: let them run.
                    if time.monotonic() - yielded > YIELD_EVERY_S:
                        self.yield_to_io()
                        yielded = time.monotonic()
            except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
                if self.state == "subscribed":
                    # Pub/sub keeps nothing for a disconnected subscriber. Redis also closes a
                    # subscriber that falls behind by more than `client-output-buffer-limit
                    # pubsub` (32 MB by default): say so loudly, it means lost events.
                    self.reconnects += 1
                    counters.REDIS_RECONNECTS.inc()
                    log.error("subscription to %r lost (%s): messages published on it until it is back are "
                              "lost (the durable log is not); if Redis is up, raise its "
                              "client-output-buffer-limit for pubsub", self.channel, exc)
                self.state = "reconnecting"
                self._bad_input_log.warning("down", "redis unreachable (%s); listener probing every %.1fs",
                                            exc, backoff)
            except Exception:  # a bug must not silence the stream: log it, keep listening
                log.exception("listener error; resubscribing")
            finally:
                try:
                    pubsub.close()
                except Exception:
                    pass
            if self.running:
                self.sleep(backoff)
                backoff = min(backoff * 2, 0.4)  # probe often: subscribed within a second of Redis

    @staticmethod
    def _burst(pubsub) -> list[bytes]:
        """The next message, waiting for it, and those already buffered behind it."""
        # Block in the read itself: a timeout makes redis-py poll the socket before every
        # message, which cost more CPU than parsing the events. Behind the first, timeout=0
        # takes what the parser already holds without a syscall; only the last look, which
        # finds the buffer empty, polls the socket once.
        message = pubsub.get_message(timeout=None)
        raws: list[bytes] = []
        size = 0
        while message is not None:
            if message["type"] == "message":
                raws.append(message["data"])
                size += len(message["data"])
                if len(raws) >= BRIDGE_MESSAGES or size >= BRIDGE_BYTES:
                    break
            message = pubsub.get_message(timeout=0)
        return raws

    def stop(self) -> None:
        self.running = False
