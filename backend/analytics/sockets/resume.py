"""Resume: a reconnecting client is sent, in order and once, what the log holds after the
position it last saw, then joins its live room.

The catch-up reads the log up to what the fan-out has delivered (`Fanout.last_position`) and
joins the room under the fan-out's lock once nothing is left between the two, so every entry
reaches the client either in the catch-up or live, never both. A position newer than this
replica has delivered (the client came from a replica that was ahead) waits for this one to get
there first. Beyond retention the client gets `gap` (reason `beyond_retention`) and backfills
over REST.
"""
from __future__ import annotations

import time
from collections.abc import Callable

from analytics.sockets.fanout import MAX_PACKET_EVENTS, Fanout, gap_packet, metrics_packet
from analytics.sockets.rooms import Subscription
from analytics.stream.durable_log import DurableLog, position_key

READ_ENTRIES = 200  # entries per XRANGE
WAIT_FOR_REPLICA_S = 2.0  # how long a position ahead of this replica waits for it to catch up


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


def catch_up(fanout: Fanout, durable_log: DurableLog, eio_sid: str, sub: Subscription, position: str,
             join: Callable[[], None], sleep: Callable[[float], None]) -> int:
    """Send one client the events after `position` (its subscription's), then `join()` its room.
    Returns the events sent, or -1 when the log no longer holds that position (`gap` sent)."""
    if durable_log.lost_after(position):
        fanout.send_one(eio_sid, gap_packet(None, "beyond_retention"))
        with fanout.lock:
            join()
        return -1
    sent = 0
    give_up_waiting = time.monotonic() + WAIT_FOR_REPLICA_S
    while True:
        with fanout.lock:
            upto = fanout.last_position
            behind = position_key(position) < position_key(upto)
            if not behind and (position == upto or time.monotonic() > give_up_waiting):
                join()  # nothing between the client and the live stream: from here on, live
                return sent
        if not behind:  # the client saw entries this replica has not delivered yet: let it get there
            sleep(0.01)
            continue
        entries = durable_log.range_after(position, upto, READ_ENTRIES)
        if not entries:  # nothing left up to `upto`: trimmed meanwhile, or ids with nothing between
            if durable_log.lost_after(position):
                fanout.send_one(eio_sid, gap_packet(None, "beyond_retention"))
            position = upto
            continue
        for events, last in sub.packets(entries, MAX_PACKET_EVENTS):
            if not fanout.send_one(eio_sid, metrics_packet(events, last, replay=True)):
                return sent  # the client is gone
            sent += len(events)
        position = entries[-1].position
