"""End to end with real processes: redis-server, the backend (gevent), the generator, and
Socket.IO clients over WebSocket. Checks what clients, /recent and /aggregate saw against what
was published."""
from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter

import pytest
import socketio
import websocket

from devstack.processes import (
    GENERATOR,
    backend,
    clean_env,
    generator,
    get_json,
    http_status,
    published,
    redis_server,
)

pytestmark = pytest.mark.e2e


class Collector:
    """A python-socketio client over WebSocket that records every event it receives."""

    def __init__(self, url: str, subscribe: dict | None = None):
        self.events: list[dict] = []
        self.gaps: list[int] = []
        self.lock = threading.Lock()
        self.client = socketio.Client(reconnection=False)
        self.client.on("metrics", self._on_metrics)
        self.client.on("gap", lambda data: self.gaps.append(data["dropped"]))
        self.client.connect(url, transports=["websocket"], wait_timeout=10)
        if subscribe is not None:
            assert self.client.call("subscribe", subscribe, timeout=10)["ok"]

    def _on_metrics(self, events):
        with self.lock:
            self.events.extend(events)

    def wait_for(self, n: int, timeout: float = 20.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while len(self.events) < n and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.events


class RawReader:
    """A bare Engine.IO WebSocket read in one thread: the frames in the order the server wrote them."""

    def __init__(self, base: str):
        self.ws = websocket.create_connection(base.replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket",
                                              origin=base)
        self.ws.recv()  # the Engine.IO open packet
        self.ws.send("40")  # join namespace "/"
        self.ws.recv()  # its CONNECT answer

    def read_events(self, n: int, timeout: float = 20.0) -> list[dict]:
        events = []
        self.ws.settimeout(timeout)
        while len(events) < n:
            frame = self.ws.recv()
            if frame == "2":  # Engine.IO ping
                self.ws.send("3")
            elif frame.startswith('42["metrics",'):
                events.extend(json.loads(frame[2:])[1])
        return events


def publish_order(event: dict) -> int:
    return int(event["id"].rsplit("-", 1)[1])


@pytest.mark.parametrize("direct_writes", ["true", "false"])
def test_published_events_reach_clients_recent_and_aggregate(direct_writes):
    with redis_server() as (redis_url, _, _), backend(redis_url, DIRECT_WRITES=direct_writes) as base:
        everything = [Collector(base), Collector(base)]
        web_only = Collector(base, subscribe={"sources": ["web"]})
        raw = RawReader(base)
        n = published(generator(redis_url, "--rate", "400", "--duration", "3", "--seed", "7"))
        # The generator paces 400 ev/s for 3 s and stops at its deadline: a busy machine can
        # leave it a few short of 1,200. Whatever it published is what everything must hold.
        assert 1000 <= n <= 1200
        # Frames arrive whole and in publish order, whether written directly or through the queue.
        in_order = raw.read_events(n)
        assert [publish_order(e) for e in in_order] == sorted({publish_order(e) for e in in_order})
        raw.ws.close()
        with urllib.request.urlopen(f"{base}/metrics", timeout=10) as response:
            prometheus = response.read().decode()
        direct = next(line for line in prometheus.splitlines() if line.startswith("analytics_socket_direct_writes_total"))
        # gevent: the fan-out wrote straight to the sockets, unless told to use engineio's queue
        assert (float(direct.split()[-1]) > 0) == (direct_writes == "true")
        for client in everything:
            events = client.wait_for(n)
            assert len(events) == n and len({e["id"] for e in events}) == n  # each exactly once
        # python-socketio's client handles each packet in its own thread, so compare in
        # publish order: the generator's ids end in a sequence number.
        events = sorted(everything[0].events, key=publish_order)
        assert sorted(everything[1].events, key=publish_order) == events
        web = [e["id"] for e in events if e["source"] == "web"]
        assert [e["id"] for e in sorted(web_only.wait_for(len(web)), key=publish_order)] == web

        recent = get_json(f"{base}/api/metrics/recent?limit=1000")
        assert [e["id"] for e in recent["events"]] == [e["id"] for e in reversed(events[-1000:])]

        aggregate = get_json(f"{base}/api/metrics/aggregate?window=300")
        assert aggregate["total"]["count"] == n
        for metric, count in Counter(e["metric"] for e in events).items():
            stats = aggregate["metrics"][metric]
            values = [e["value"] for e in events if e["metric"] == metric]
            assert stats["count"] == count
            assert stats["min"] == min(values) and stats["max"] == max(values)
            assert abs(stats["sum"] - sum(values)) <= 1e-6 * max(1.0, abs(sum(values)))
        for client in everything + [web_only]:
            client.client.disconnect()


def test_a_stalled_client_gets_a_gap_and_never_holds_back_the_others():
    with redis_server() as (redis_url, _, _), backend(redis_url, CLIENT_BACKLOG=64) as base:
        healthy = Collector(base)
        stalled = websocket.create_connection(
            base.replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket", origin=base,
            sockopt=[(__import__("socket").SOL_SOCKET, __import__("socket").SO_RCVBUF, 4096)])
        stalled.recv()  # the Engine.IO open packet
        stalled.send("40")  # join namespace "/", then stop reading
        time.sleep(0.3)
        n = published(generator(redis_url, "--rate", "10000", "--duration", "6", "--seed", "3"))
        assert len(healthy.wait_for(n, timeout=30)) == n and healthy.gaps == []
        stalled.settimeout(10)
        frames = []
        while not any('"gap"' in f for f in frames):
            frames.append(stalled.recv())
        dropped = json.loads(next(f for f in frames if "\"gap\"" in f)[2:])[1]["dropped"]  # "42" + [event, data]
        assert dropped > 0
        health = get_json(f"{base}/api/health")
        assert health["status"] == "ok"
        healthy.client.disconnect()
        stalled.close()


def test_listener_survives_redis_restart_and_resumes():
    with redis_server() as (redis_url, port, proc), backend(redis_url) as base:
        client = Collector(base)
        generator(redis_url, "--rate", "50", "--duration", "1")
        assert len(client.wait_for(50)) == 50
        proc.terminate()
        proc.wait(10)
        time.sleep(1.0)
        with pytest.raises(urllib.error.HTTPError) as down:
            get_json(f"{base}/api/health")
        assert down.value.code == 503
        with redis_server(port) as (_, _, _):
            deadline = time.monotonic() + 20
            while http_status(f"{base}/api/health") != 200 and time.monotonic() < deadline:
                time.sleep(0.2)
            time.sleep(1.5)  # the listener resubscribes with backoff
            generator(redis_url, "--rate", "50", "--duration", "1")
            assert len(client.wait_for(100)) == 100
            assert get_json(f"{base}/api/metrics/aggregate?window=60")["total"]["count"] == 50
        client.client.disconnect()


def test_generator_output_passes_the_event_schema():
    from analytics.events.schema import encode, parse_message
    from analytics.producer.traffic import Traffic

    events = Traffic(["web", "mobile", "api"], seed=1).events(1000, time.time() * 1000)
    result = parse_message(encode(events))
    assert result.rejected == {} and result.events == events
    assert {e["metric"] for e in events} == {"page_views", "orders", "signups", "errors", "latency_ms", "active_users"}


def test_two_replicas_push_to_their_clients_and_count_each_event_once():
    with redis_server() as (redis_url, _, _), backend(redis_url) as first, backend(redis_url) as second:
        clients = [Collector(first), Collector(second)]
        n = published(generator(redis_url, "--rate", "300", "--duration", "2", "--seed", "5"))
        for client in clients:
            assert len(client.wait_for(n)) == n
        for base in (first, second):  # both replicas answer the same from Redis
            assert get_json(f"{base}/api/metrics/aggregate?window=120")["total"]["count"] == n
        recorded = [get_json(f"{base}/api/health")["events"]["recorded"] for base in (first, second)]
        assert sum(recorded) == n  # the replicas share the recording, and record each event once
        for client in clients:
            client.client.disconnect()


def test_generator_survives_redis_going_away():
    with redis_server() as (redis_url, port, proc):
        gen = subprocess.Popen([sys.executable, str(GENERATOR), "--rate", "100", "--duration", "5",
                                "--transport", "pubsub"],
                               env=clean_env(REDIS_URL=redis_url, LOG_LEVEL="INFO"), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
        time.sleep(1.5)
        proc.terminate()
        proc.wait(10)
        time.sleep(1.0)
        with redis_server(port) as (_, _, _):
            import redis

            subscriber = redis.Redis(port=port).pubsub(ignore_subscribe_messages=True)
            subscriber.subscribe("metrics")
            received = 0
            deadline = time.monotonic() + 10
            while gen.poll() is None and time.monotonic() < deadline:
                received += subscriber.get_message(timeout=0.1) is not None
            out, err = gen.communicate(timeout=10)
    assert gen.returncode == 0
    assert "redis unreachable" in err and "redis is back" in err
    assert received > 50  # it kept publishing at its pace after Redis came back


def test_python_clients_connect_with_the_servers_own_origin_and_foreign_origins_are_refused():
    """python-socketio's client sends the URL it connects to as its Origin: the server's own
    origin is accepted beside CORS_ORIGINS (as Flask-SocketIO does by default), a foreign one not."""
    with redis_server() as (redis_url, _, _), backend(redis_url, CORS_ORIGINS="https://dashboard.example") as base:
        client = socketio.Client(reconnection=False)
        client.connect(base, transports=["websocket"], wait_timeout=10)
        assert client.connected
        client.disconnect()
        with pytest.raises(websocket.WebSocketBadStatusException):
            websocket.create_connection(base.replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket",
                                        origin="https://evil.example", timeout=10)
