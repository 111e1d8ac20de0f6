"""Fan-out: log entries to clients, one encoded `metrics` packet per room per batch, written or
queued to each client with a bounded backlog.

Under gevent a client with nothing queued gets the packet written on its socket right away
(engineio_adapter.try_direct_write); the others go through engineio's queue.

python-socketio keeps an unbounded queue per client. A stalled browser would grow it forever,
so before queueing we look at its length: past CLIENT_BACKLOG packets, the oldest packets are
dropped and replaced by one `gap` packet carrying how many events the client lost since its
last delivered packet (it backfills over REST). Other clients are never slowed: queueing never
blocks.
"""
from __future__ import annotations

import threading
from collections.abc import Callable

import orjson

from analytics import counters
from analytics.sockets import engineio_adapter as eio
from analytics.sockets.engineio_adapter import EventPacket, encode_event_packet
from analytics.sockets.rooms import ALL, Subscription
from analytics.stream.durable_log import Entry, position_key

# Packets stay small however far behind the batcher fell: the backlog counts packets, so this
# bounds a slow client's memory, and smaller frames keep every client's latency even.
MAX_PACKET_EVENTS = 500
# Clients written to between two pauses of a delivery. Each write is a send on a socket, which
# on loopback also runs the receiving side's TCP in the sender's time: 100 clients took 10-23 ms
# of the loop's own time in one go (the loop-lag probe's samples, 10,000 ev/s x 100 clients),
# while REST and every other task waited. 25 keeps a slice near 2-5 ms.
FANOUT_SLICE = 25
GONE, QUEUED, WRITTEN = 0, 1, 2  # what became of one packet for one client (Fanout.send)


def metrics_packet(events: list[dict], position: str | None = None, replay: bool = False) -> EventPacket:
    """`metrics` with the events, and their log position as a second argument for clients that
    asked for positions (`replay`: sent by a catch-up, not live)."""
    args = orjson.dumps(events)
    if position is not None:
        args += b',{"position":"' + position.encode() + (b'","replay":true}' if replay else b'"}')
    return encode_event_packet("metrics", args, events=len(events))


def gap_packet(lost: int | None, reason: str = "slow_client") -> EventPacket:
    """`gap`: the client lost `lost` events (None: an unknown number, for a resume from a
    position older than the log keeps)."""
    return encode_event_packet("gap", orjson.dumps({"dropped": lost, "reason": reason}), lost=lost or 0)


def _count(pkt: EventPacket, outcomes: list[int]) -> None:
    # Counted once per packet, not per client: the counters' lock is per call.
    sent = len(outcomes) - outcomes.count(GONE)
    if sent:
        counters.EMITS.inc(sent)
        counters.DELIVERIES.inc(sent * pkt.events)
    written = outcomes.count(WRITTEN)
    if written:
        counters.DIRECT_WRITES.inc(written)


class Fanout:
    def __init__(self, clients: eio.Clients, backlog: int):
        self.clients = clients
        self.backlog = backlog
        self.subscriptions: dict[str, Subscription] = {}
        # The position of the last log entry delivered: a resuming client is sent what it missed
        # up to here, then joins its room under `lock`, so it gets every entry once.
        self.last_position = "0-0"
        # Until the log reader has read where the log ends, `last_position` says nothing: a
        # resume waits for it (it would otherwise join live from "0-0" and skip what it missed).
        self.started = False
        self.lock = threading.Lock()
        # Lets the loop run other tasks partway through a delivery (the stream tasks set it).
        self.pause: Callable[[], None] = lambda: None

    def start_at(self, position: str) -> None:
        """Where live delivery starts (the log reader's first position): resumes catch up to it."""
        with self.lock:
            if position_key(position) > position_key(self.last_position):
                self.last_position = position
            self.started = True

    def register(self, sub: Subscription) -> str:
        self.subscriptions[sub.room] = sub
        return sub.room

    def deliver(self, entries: list[Entry]) -> None:
        if not entries:
            return
        written = 0
        with self.lock:
            for room, sub in list(self.subscriptions.items()):
                members = self.clients.room_members(room)
                if not members:
                    if room != ALL:
                        self.subscriptions.pop(room, None)
                    continue
                for events, position in sub.packets(entries, MAX_PACKET_EVENTS):
                    pkt = metrics_packet(events, position if sub.positions else None)
                    outcomes = []
                    for eio_sid in members:
                        outcomes.append(self.send(eio_sid, pkt))
                        written += 1
                        if written % FANOUT_SLICE == 0:
                            # Under the lock still: a resume waits, and this delivery's order
                            # per client is kept (the batcher delivers one at a time).
                            self.pause()
                    _count(pkt, outcomes)
            self.last_position = entries[-1].position

    def send_one(self, eio_sid: str, pkt: EventPacket) -> bool:
        """Send one packet to one client (written or queued) and count it; False when it is gone."""
        outcome = self.send(eio_sid, pkt)
        _count(pkt, [outcome])
        return outcome != GONE

    def send(self, eio_sid: str, pkt: EventPacket) -> int:
        """Write one packet to one client's socket, or queue it; never blocks. Not counted."""
        client = self.clients.client(eio_sid)
        if client is None:
            return GONE
        if eio.try_direct_write(client, pkt):
            return WRITTEN
        if eio.queued(client) >= self.backlog:
            lost = self._drop_oldest(client)
            # A client engineio closes for a missed ping (a client far behind, under load) is
            # gone; the clients after it in this delivery must still get the packet.
            if lost and not eio.send_queued(client, gap_packet(lost)):
                return GONE
        return QUEUED if eio.send_queued(client, pkt) else GONE

    def _drop_oldest(self, client) -> int:
        """Free half the backlog from the head; returns the events the client has lost since its
        last delivered packet, which its next `gap` announces."""
        dropped = eio.drop_oldest(client, keep=self.backlog // 2)
        newly_lost = sum(p.events for p in dropped)
        if newly_lost:
            # A dropped `gap` carried events already counted when they were dropped: its total
            # moves into the new gap, but the counter counts each lost event once.
            counters.DROPPED_FOR_SLOW_CLIENTS.inc(newly_lost)
        return newly_lost + sum(p.lost for p in dropped)
