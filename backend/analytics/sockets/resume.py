"""Resume: a reconnecting client is sent, in order and once, what the log holds after the
position it last saw, then joins its live room.

The catch-up reads the log up to what the fan-out has delivered (`Fanout.last_position`) and
joins the room under the fan-out's lock once nothing is left between the two, so every entry
reaches the client either in the catch-up or live, never both. The reads go through the shared
catch-up window (log_window.py): a crowd resuming at once after a restart reads the log once, on
one Redis connection. A position newer than this replica has delivered (the client came from a
replica that was ahead) waits for this one to get there first; a replica whose log reader has
not started yet is waited for as long as the client stays. While Redis does not answer, the
catch-up waits and retries (the client stays connected and is owed the same entries). Beyond
retention the client gets `gap` (reason `beyond_retention`) and backfills over REST.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable

import redis

from analytics.sockets.fanout import MAX_PACKET_EVENTS, Fanout, gap_packet, metrics_packet
from analytics.sockets.log_window import LogWindow
from analytics.sockets.rooms import Subscription
from analytics.stream.durable_log import position_key

log = logging.getLogger(__name__)
WAIT_FOR_REPLICA_S = 2.0  # how long a position ahead of this replica waits for it to catch up
REDIS_RETRY_S = (0.1, 0.4)  # first and longest wait between tries while Redis does not answer


class ResumeError(ValueError):
    pass


def parse_position(raw) -> str:
    if not isinstance(raw, str):
        raise ResumeError("position must be a log position string like \"1764312345123-0\"")
    try:
        position_key(raw)
    except ValueError as exc:
        raise ResumeError(str(exc)) from None
    return raw


def catch_up(fanout: Fanout, window: LogWindow, eio_sid: str, sub: Subscription, position: str,
             join: Callable[[], None], sleep: Callable[[float], None]) -> int:
    """Send one client the events after `position` (its subscription's), then `join()` its room.
    Returns the events sent, or -1 when the log no longer holds that position (`gap` sent)."""
    sent = 0
    retention_checked = False
    give_up_waiting = None  # set once this replica is started and not behind the client
    backoff = REDIS_RETRY_S[0]
    while True:
        try:
            if not retention_checked:
                if window.lost_after(position):
                    fanout.send_one(eio_sid, gap_packet(None, "beyond_retention"))
                    with fanout.lock:
                        join()
                    return -1
                retention_checked = True
            with fanout.lock:
                upto = fanout.last_position
                behind = fanout.started and position_key(position) < position_key(upto)
                if fanout.started and not behind:
                    give_up_waiting = give_up_waiting or time.monotonic() + WAIT_FOR_REPLICA_S
                    if position == upto or time.monotonic() > give_up_waiting:
                        join()  # nothing between the client and the live stream: from here on, live
                        return sent
            if not behind:  # not started, or the client saw entries this replica has not delivered yet
                if fanout.clients.client(eio_sid) is None:
                    return sent  # gone while waiting
                sleep(0.01)
                continue
            entries = window.after(position, upto, MAX_PACKET_EVENTS)
            if not entries:  # nothing left up to `upto`: trimmed meanwhile, or ids with nothing between
                if window.lost_after(position):
                    fanout.send_one(eio_sid, gap_packet(None, "beyond_retention"))
                position = upto
                continue
            for events, last in sub.packets(entries, MAX_PACKET_EVENTS):
                if not fanout.send_one(eio_sid, metrics_packet(events, last, replay=True)):
                    return sent  # the client is gone
                sent += len(events)
            position = entries[-1].position
            backoff = REDIS_RETRY_S[0]
        except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
            # Redis is away: the client stays connected and is owed the same entries, from
            # `position` (what was sent is not sent again).
            if fanout.clients.client(eio_sid) is None:
                return sent
            if backoff == REDIS_RETRY_S[0]:
                log.warning("a resume waits for Redis (%s)", exc)
            sleep(backoff)
            backoff = min(backoff * 2, REDIS_RETRY_S[1])
