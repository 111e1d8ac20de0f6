"""A crowd resuming at once: the backend SIGKILLed mid-stream while 150 clients follow it by log
position; all of them reconnect to the restarted process within a few hundred milliseconds and
resume together. Each must end with exactly the logged events, in log order, once.

This is the benchmark's kill cell (bench/kill_cell.py) at test size. Before the catch-up reads
were shared (sockets/log_window.py), every resuming client read the log on its own Redis
connection at the same moment: past redis-py's pool of 100 connections a catch-up failed
("Too many connections"), and its client, still marked as resuming, never joined the live
stream again and silently received nothing more.
"""
from __future__ import annotations

import json
import random
import signal
import threading
import time

import websocket

from tests.test_durability import Backend, generating, logged_ids, wait_until

CROWD = 150  # more resuming clients than redis-py's default pool holds connections (100)


class ResumingClient(threading.Thread):
    """A bare Engine.IO WebSocket client in its own thread that asks for positions, keeps the
    position of each `metrics` packet, and whenever its socket closes reconnects with
    `{"resume": <last position>}` until a server answers (what the dashboard does)."""

    def __init__(self, base: str):
        super().__init__(daemon=True)
        self.url = base.replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket"
        self.origin = base
        self.ids: list[str] = []
        self.gaps: list = []
        self.refused: list[str] = []
        self.position: str | None = None
        self.connects = 0
        self.stopping = False
        self.ws: websocket.WebSocket | None = None

    def run(self) -> None:
        while not self.stopping:
            try:
                self._session()
            except (websocket.WebSocketException, OSError):
                pass  # the server went away (or is not back yet): reconnect
            time.sleep(0.1 + random.random() * 0.15)

    def _session(self) -> None:
        self.ws = ws = websocket.create_connection(self.url, origin=self.origin, timeout=5)
        try:
            ws.recv()  # the Engine.IO open packet
            auth = {"resume": self.position} if self.position else {"positions": True}
            ws.send("40" + json.dumps(auth))
            while not self.stopping:
                try:
                    frame = ws.recv()
                except websocket.WebSocketTimeoutException:
                    continue  # a quiet stream, not a dead server (that closes the socket)
                if not frame:
                    return  # closed
                if frame == "2":
                    ws.send("3")
                elif frame.startswith("40"):
                    self.connects += 1
                elif frame.startswith("44"):
                    self.refused.append(frame)
                elif frame.startswith("42"):
                    name, *args = json.loads(frame[2:])
                    if name == "metrics":
                        self.ids.extend(e["id"] for e in args[0])
                        self.position = args[1]["position"]
                    elif name == "gap":
                        self.gaps.append(args[0])
        finally:
            ws.close()

    def stop(self) -> None:
        self.stopping = True
        if self.ws:
            self.ws.shutdown()  # no closing handshake: the thread may be blocked in recv


def test_a_crowd_of_clients_resumes_after_a_sigkill_each_with_every_event_once_in_order(redis_url_fresh):
    backend = Backend(redis_url_fresh).start()
    crowd = [ResumingClient(backend.base) for _ in range(CROWD)]
    try:
        for client in crowd:
            client.start()
        wait_until(lambda: all(c.connects == 1 for c in crowd), 60, f"{CROWD} clients connected")
        with generating(redis_url_fresh, 200, 6) as finished:
            time.sleep(2.0)
            backend.signal(signal.SIGKILL)
            time.sleep(1.0)
            backend.start()
            n = finished()
        logged = logged_ids(redis_url_fresh)
        assert len(set(logged)) == n > 0  # every event the generator counted is in the log, once
        # Ends as soon as every client has as many events as were logged (or at 60 s, and the
        # comparison below says who is short); anything extra would be a duplicate.
        try:
            wait_until(lambda: all(len(c.ids) >= len(logged) for c in crowd), 60, "every client whole")
        except TimeoutError:
            pass
        time.sleep(0.5)
        short = [(i, len(c.ids)) for i, c in enumerate(crowd) if c.ids != logged]
        assert not short, f"{len(short)} of {CROWD} clients do not hold exactly the logged events in order " \
                          f"(index, events held; {len(logged)} logged): {short[:10]}"
        assert all(c.connects >= 2 for c in crowd)  # every client really did resume
        assert not any(c.gaps or c.refused for c in crowd)
    finally:
        for client in crowd:
            client.stop()
        backend.close()
