"""Fan-out: one encoded `metrics` packet per room per batch, written or queued to each client
with a bounded backlog.

Under gevent a client whose queue is empty gets the packet written on its socket right here
(sockets/direct_ws.py: one frame per packet, non-blocking); the others go through engineio's
queue.

python-socketio keeps an unbounded queue per client (engineio `Socket.queue`). A stalled
browser would grow it forever, so before queueing we look at its length: past
CLIENT_BACKLOG packets, the oldest `metrics` packets are dropped and replaced by one `gap`
packet carrying how many events the client lost (it backfills over REST). Other clients are
never slowed: queueing never blocks.
"""
from __future__ import annotations

import logging
import threading

import orjson
from engineio import packet as eio_packet
from engineio.exceptions import SocketIsClosedError

from analytics import counters
from analytics.sockets.direct_ws import frame
from analytics.sockets.rooms import Subscription
from analytics.stream.durable_log import Entry, position_key

log = logging.getLogger(__name__)
NAMESPACE = "/"
# Packets stay small however far behind the batcher fell: the backlog counts packets, so this
# bounds a slow client's memory, and smaller frames keep every client's latency even.
MAX_PACKET_EVENTS = 500
GONE, QUEUED, WRITTEN = 0, 1, 2  # what became of one packet for one client (Fanout.send)


def _packet(event: str, args_json: bytes, events: int = 0, dropped: int = 0) -> eio_packet.Packet:
    # Socket.IO EVENT packet ("2") carrying [event, *args] (`args_json`: the arguments' JSON,
    # comma-separated), wrapped once in an Engine.IO MESSAGE; engineio caches the encoding, so
    # every recipient shares the same string.
    text = '2["' + event + '",' + args_json.decode() + "]"
    pkt = eio_packet.Packet(eio_packet.MESSAGE, text)
    pkt.analytics_events = events
    pkt.analytics_dropped = dropped
    return pkt


def gap_packet(dropped: int | None, reason: str = "slow_client") -> eio_packet.Packet:
    """`gap`: this client lost `dropped` events (None: an unknown number, its resume position
    is older than the log keeps)."""
    return _packet("gap", orjson.dumps({"dropped": dropped, "reason": reason}), dropped=dropped or 0)


def metrics_packet(events: list[dict], position: str | None, replay: bool = False) -> eio_packet.Packet:
    """`metrics` with the events, and their log position as a second argument when asked for
    (`replay`: sent by a catch-up, not live)."""
    args = orjson.dumps(events)
    if position is not None:
        args += b',{"position":"' + position.encode() + (b'","replay":true}' if replay else b'"}')
    return _packet("metrics", args, events=len(events))


def _count(pkt: eio_packet.Packet, outcomes: list[int]) -> None:
    # Counted once per packet, not per client: the counters' lock is per call.
    sent = len(outcomes) - outcomes.count(GONE)
    if sent:
        counters.EMITS.inc(sent)
        counters.DELIVERIES.inc(sent * pkt.analytics_events)
    written = outcomes.count(WRITTEN)
    if written:
        counters.DIRECT_WRITES.inc(written)


class Fanout:
    def __init__(self, server, backlog: int):
        self.server = server  # the python-socketio Server
        self.backlog = backlog
        self.subscriptions: dict[str, Subscription] = {}
        # The position of the last log entry delivered: a resuming client is sent what it missed
        # up to here, then joins its room under `lock`, so it gets every entry once.
        self.last_position = "0-0"
        self.lock = threading.Lock()

    def start_at(self, position: str) -> None:
        """Where live delivery starts (the log reader's first position): resumes catch up to it."""
        with self.lock:
            if position_key(position) > position_key(self.last_position):
                self.last_position = position

    def register(self, sub: Subscription) -> str:
        self.subscriptions[sub.room] = sub
        return sub.room

    def deliver(self, entries: list[Entry]) -> None:
        if not entries:
            return
        with self.lock:
            rooms = self.server.manager.rooms.get(NAMESPACE, {})
            for room, sub in list(self.subscriptions.items()):
                members = rooms.get(room)
                if not members:
                    if room != "all":
                        self.subscriptions.pop(room, None)
                    continue
                sids = list(members.values())
                for events, position in sub.packets(entries, MAX_PACKET_EVENTS):
                    pkt = metrics_packet(events, position if sub.positions else None)
                    _count(pkt, [self.send(eio_sid, pkt) for eio_sid in sids])
            self.last_position = entries[-1].position

    def send_one(self, eio_sid: str, pkt: eio_packet.Packet) -> bool:
        """Send one packet to one client and count it; False when the client is gone."""
        outcome = self.send(eio_sid, pkt)
        _count(pkt, [outcome])
        return outcome != GONE

    def send(self, eio_sid: str, pkt: eio_packet.Packet) -> int:
        """Write one packet to one client's socket, or queue it; never blocks. Not counted."""
        sock = self.server.eio.sockets.get(eio_sid)
        if sock is None or sock.closed:
            return GONE
        ws = getattr(sock, "analytics_ws", None)  # set by direct_ws under gevent
        if ws is not None and sock.upgraded and not sock.upgrading and sock.queue.empty() \
                and ws.try_write(frame(pkt)):
            return WRITTEN
        try:
            self._enqueue(sock, pkt)
        except SocketIsClosedError:
            # engineio closes a client that missed its ping deadline from inside send() (a
            # client far behind, under load): it is gone, and the clients after it in this
            # delivery must still get the packet.
            return GONE
        return QUEUED

    def _enqueue(self, sock, pkt: eio_packet.Packet) -> None:
        if sock.queue.qsize() >= self.backlog:
            dropped = self._drop_oldest(sock.queue)
            if dropped:
                sock.send(gap_packet(dropped))
        sock.send(pkt)

    def _drop_oldest(self, queue) -> int:
        """Drop `metrics`/`gap` packets from the head until half the backlog is free; keep
        control packets (ping, close) in order. Returns the events this client has lost."""
        dropped, kept = 0, []
        target = self.backlog // 2
        while queue.qsize() > target:
            try:
                old = queue.get_nowait()
            except Exception:
                break
            queue.task_done()
            if old is None or not hasattr(old, "analytics_events"):
                kept.append(old)
                if old is None:
                    break
                continue
            dropped += old.analytics_events + old.analytics_dropped
        for old in kept:
            queue.put(old)
        if dropped:
            counters.DROPPED_FOR_SLOW_CLIENTS.inc(dropped)
        return dropped
