"""Nothing accepted is lost: real backends killed, stopped and restarted, Redis killed and
restarted, clients away and back. Each scenario knows every event id the generator logged and
counts them afterwards in /recent, /aggregate and at every client: each exactly once."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from contextlib import contextmanager

import pytest
import redis
import socketio
import websocket

from analytics.stream.durable_log import DurableLog
from devstack.processes import APP, GENERATOR, clean_env, free_port, http_status, log_file, redis_argv
from tests.helpers import event

pytestmark = pytest.mark.e2e
RECENT_MAX = 100_000  # /recent then holds every event of a scenario: ids can be counted there


class Backend:
    """One backend process on a fixed port, which a test may kill and start again."""

    def __init__(self, redis_url: str, port: int | None = None, **settings):
        self.port = port or free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = clean_env(REDIS_URL=redis_url, PORT=self.port, HOST="127.0.0.1", CORS_ORIGINS=self.base,
                             RECENT_MAX=RECENT_MAX, **settings)
        self.proc: subprocess.Popen | None = None
        self.log = log_file("backend")
        REDIS_OF[self.base] = redis_url

    def start(self) -> Backend:
        self.proc = subprocess.Popen([sys.executable, str(APP)], env=self.env, stdout=self.log,
                                     stderr=subprocess.STDOUT)
        wait_until(lambda: http_status(f"{self.base}/api/health") == 200, 60, "backend healthy")
        return self

    def signal(self, sig: int) -> int:
        """Send `sig` and wait for the exit; returns the exit code."""
        self.proc.send_signal(sig)
        return self.proc.wait(10)

    def close(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.log.seek(0)
        output = self.log.read().decode(errors="replace")
        if "Traceback" in output:
            print(output)


class Client:
    """A python-socketio client that resumes from its last position whenever it reconnects. Like
    the dashboard it reconnects after a server's disconnect too (the library leaves that to us)."""

    def __init__(self, base: str):
        self.base = base
        self.events: list[dict] = []
        self.position: str | None = None
        self.gaps: list[dict] = []
        self.disconnects: list[str] = []
        self.lock = threading.Lock()
        self.sio = socketio.Client(reconnection=True, reconnection_delay=0.1, reconnection_delay_max=0.5,
                                   randomization_factor=0)
        self.sio.on("metrics", self._on_metrics)
        self.sio.on("gap", self.gaps.append)
        self.sio.on("disconnect", self._on_disconnect)
        self.sio.connect(base, transports=["websocket"], wait_timeout=10, auth=self._auth)
        self.closing = False
        self.reconnecting = threading.Lock()
        threading.Thread(target=self._watch, daemon=True).start()

    def _on_disconnect(self, reason=None):
        self.disconnects.append(reason)
        if reason == self.sio.reason.SERVER_DISCONNECT:
            threading.Thread(target=self._reconnect, daemon=True).start()

    def _watch(self):
        """python-socketio reconnects by itself only if its Engine.IO state still said
        "connected" when the connection dropped; a client left neither connected nor
        reconnecting (a race inside the library when the server dies) reconnects here."""
        while not self.closing:
            time.sleep(1.0)
            if not self.closing and not self.sio.connected and self.sio._reconnect_task is None:
                self.disconnects.append("watchdog")
                self._reconnect()

    def _reconnect(self):
        if not self.reconnecting.acquire(blocking=False):
            return  # one reconnect loop at a time
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not self.closing and not self.sio.connected:
                time.sleep(0.2)
                try:
                    self.sio.connect(self.base, transports=["websocket"], wait_timeout=5, auth=self._auth)
                    return
                except socketio.exceptions.ConnectionError:
                    continue
        finally:
            self.reconnecting.release()

    def _auth(self) -> dict:
        return {"resume": self.position} if self.position else {"positions": True}

    def _on_metrics(self, events, meta):
        with self.lock:  # python-socketio may run handlers in several threads: keep the newest position
            self.events.extend(events)
            if self.position is None or _key(meta["position"]) > _key(self.position):
                self.position = meta["position"]

    def close(self) -> None:
        self.closing = True
        self.sio.disconnect()


def _key(position: str) -> tuple[int, int]:
    ms, seq = position.split("-")
    return int(ms), int(seq)


def get_json(url: str) -> dict:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return json.load(response)
    except urllib.error.HTTPError as exc:
        return json.load(exc)


def wait_until(check, timeout: float, what: str) -> float:
    """Poll `check` until true; returns the seconds it took."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"no {what} within {timeout}s")
        time.sleep(0.05)
    return time.monotonic() - started


@contextmanager
def generating(redis_url: str, rate: int, duration: float, *extra: str, **settings):
    """The real generator (durable path) in the background; yields a function that waits for it
    and returns how many events it logged."""
    proc = subprocess.Popen([sys.executable, str(GENERATOR), "--rate", str(rate), "--duration",
                             str(duration), "--seed", "11", *extra], env=clean_env(REDIS_URL=redis_url, **settings),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def finished() -> int:
        out, err = proc.communicate(timeout=duration + 60)
        assert proc.returncode == 0, err
        return int(next(ln for ln in out.splitlines() if ln.startswith("generator: published")).split()[2])

    try:
        yield finished
    finally:
        if proc.poll() is None:
            proc.kill()


def logged_ids(redis_url: str) -> list[str]:
    """The id of every event in the log, one per logged copy. A producer retrying a write whose
    answer it lost (Redis killed mid-reply) may log an event twice: recording and delivery are
    exactly once per log entry, so they are checked against this, and "nothing lost" against
    the generator's count of distinct events."""
    import orjson

    client = redis.Redis.from_url(redis_url)
    return [e["id"] for _, fields in client.xrange("metrics:log") for e in orjson.loads(fields[b"e"])]


def assert_recorded_once(base: str, n: int) -> None:
    """Every logged event is in /recent once, and the aggregates count each once."""
    wait_until(lambda: get_json(f"{base}/api/health")["events"]["log_lag"] == 0
               and get_json(f"{base}/api/metrics/recent?limit=1")["count"] > 0, 60, "log recorded")
    wait_until(lambda: get_json(f"{base}/api/metrics/aggregate?window=600")["total"]["count"] >= n, 60,
               "aggregates complete")
    recent = get_json(f"{base}/api/metrics/recent?limit={RECENT_MAX}")["events"]
    assert sorted(e["id"] for e in recent) == sorted(logged_ids(redis_url_of(base)))
    assert get_json(f"{base}/api/metrics/aggregate?window=600")["total"]["count"] == n


def assert_received_once(client: Client, n: int, timeout: float = 60) -> float:
    """The client got all n logged events, each once; returns how long it took to become whole."""
    try:
        took = wait_until(lambda: len(client.events) >= n, timeout, f"{n} events at the client")
    except TimeoutError as exc:
        # What the client went through, so that a failure says where it stopped.
        raise AssertionError(f"{exc}: has {len(client.events)}, last position {client.position}, connected "
                             f"{client.sio.connected} (engine.io {client.sio.eio.state}), "
                             f"disconnects {client.disconnects}, gaps {client.gaps}, "
                             f"server log reader {get_json(client.base + '/api/health').get('log_reader')}") from None
    time.sleep(0.3)  # anything extra (a duplicate) would arrive now
    assert sorted(e["id"] for e in client.events) == sorted(logged_ids(redis_url_of(client.base)))
    return took


REDIS_OF: dict[str, str] = {}  # backend base URL -> its Redis URL


def redis_url_of(base: str) -> str:
    return REDIS_OF[base]


def test_backend_sigkill_mid_stream_loses_nothing(redis_url_fresh):
    backend = Backend(redis_url_fresh).start()
    try:
        client = Client(backend.base)
        with generating(redis_url_fresh, 500, 5) as finished:
            time.sleep(1.5)
            backend.signal(signal.SIGKILL)
            time.sleep(1.0)
            backend.start()
            n = finished()
        assert n > 2000  # 2,500 at pace; a busy machine may publish a few fewer: all are checked
        assert_recorded_once(backend.base, n)
        assert_received_once(client, n)
        client.close()
    finally:
        backend.close()


def test_sigterm_mid_stream_disconnects_clients_and_loses_nothing(redis_url_fresh):
    backend = Backend(redis_url_fresh).start()
    try:
        client = Client(backend.base)
        with generating(redis_url_fresh, 500, 4) as finished:
            time.sleep(1.5)
            started = time.monotonic()
            assert backend.signal(signal.SIGTERM) == 0
            assert time.monotonic() - started < 5
            assert client.disconnects[:1] == ["server disconnect"]  # a real Socket.IO disconnect, not a drop
            backend.start()
            n = finished()
        assert_recorded_once(backend.base, n)
        assert_received_once(client, n)
        client.close()
    finally:
        backend.close()


@pytest.mark.parametrize("replicas", [2, 3])
def test_replicas_killed_in_turn_lose_nothing(redis_url_fresh, replicas):
    backends = [Backend(redis_url_fresh).start() for _ in range(replicas)]
    try:
        clients = [Client(b.base) for b in backends]
        with generating(redis_url_fresh, 400, 2 + 1.5 * replicas) as finished:
            for backend in backends:  # every replica records: each one dies in turn
                time.sleep(1.0)
                backend.signal(signal.SIGKILL)
                time.sleep(0.5)
                backend.start()
            n = finished()
        for backend in backends:  # every replica answers the same, from Redis
            assert_recorded_once(backend.base, n)
        for client in clients:
            assert_received_once(client, n)
            client.close()
    finally:
        for backend in backends:
            backend.close()


def test_a_client_away_for_five_seconds_gets_exactly_what_it_missed_in_order(redis_url_fresh):
    backend = Backend(redis_url_fresh).start()
    try:
        with generating(redis_url_fresh, 200, 1) as finished:
            reader = RawClient(backend.base, {"positions": True})
            first = finished()
        seen = reader.read(first)
        position = seen[-1][1]
        reader.close()
        with generating(redis_url_fresh, 200, 5) as finished:  # logged while the client is away
            missed = finished()
        resumed = RawClient(backend.base, {"resume": position})
        events = resumed.read(missed)
        assert len(events) == missed and len({e["id"] for e, _ in events}) == missed
        recent = get_json(f"{backend.base}/api/metrics/recent?limit={missed}")["events"]
        assert [e["id"] for e, _ in events] == [e["id"] for e in reversed(recent)]  # log order
        resumed.expect_nothing_more()
        resumed.close()
    finally:
        backend.close()


def test_a_resume_older_than_retention_gets_gap_then_live(redis_url_fresh):
    backend = Backend(redis_url_fresh, STREAM_MAXLEN=1000).start()
    try:
        with generating(redis_url_fresh, 100, 0.05, "--batch", "1") as finished:
            reader = RawClient(backend.base, {"positions": True})
            finished()
        position = reader.read(5)[-1][1]
        reader.close()
        log = DurableLog(redis.Redis.from_url(redis_url_fresh), "metrics:log", max_entries=1000)
        with log.client.pipeline(transaction=False) as pipe:  # 4,000 entries into a log kept to ~1,000
            for i in range(4000):
                log.append([event(value=i, source="bulk")], pipe=pipe)
            pipe.execute()
        resumed = RawClient(backend.base, {"resume": position})
        gap = resumed.next_gap()
        assert gap == {"dropped": None, "reason": "beyond_retention"}
        with generating(redis_url_fresh, 100, 0.5) as finished:  # then it is live again
            n = finished()
        live = []
        while len(live) < n:  # the bulk entries still being delivered live may come first
            live.extend(e for e, _ in resumed.read(1) if e["source"] != "bulk")
        assert len({e["id"] for e in live}) == n
        resumed.close()
    finally:
        backend.close()


def test_redis_killed_and_restarted_the_stream_is_back_within_a_second_and_nothing_is_lost(tmp_path):
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    argv = redis_argv(port, str(tmp_path), "--appendonly", "yes", "--appendfsync", "always")
    redis_proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
    backend = None
    try:
        wait_until(lambda: status_redis(port), 10, "redis up")
        backend = Backend(url).start()
        client = Client(backend.base)
        with generating(url, 300, 5) as finished:
            time.sleep(1.5)
            redis_proc.kill()
            redis_proc.wait(10)
            wait_until(lambda: http_status(f"{backend.base}/api/health") == 503, 10, "health degraded")
            time.sleep(1.0)
            redis_proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
            wait_until(lambda: status_redis(port), 10, "redis back")
            back_in = wait_until(lambda: http_status(f"{backend.base}/api/health") == 200, 10, "health ok")
            n = finished()
        print(f"stream back {back_in:.2f}s after Redis answered")
        assert back_in < 1.5  # the design asks for 1 s; the margin is this machine's noise
        logged = logged_ids(url)
        assert len(set(logged)) == n  # nothing lost (a retried write may have logged one twice)
        assert_recorded_once(backend.base, len(logged))
        assert_received_once(client, len(logged))
        client.close()
    finally:
        if backend:
            backend.close()
        redis_proc.kill()
        redis_proc.wait(10)


def status_redis(port: int) -> bool:
    try:
        return redis.Redis(port=port, socket_connect_timeout=0.2).ping()
    except redis.RedisError:
        return False


class RawClient:
    """A bare Engine.IO WebSocket read in one thread: packets in the order the server wrote them."""

    def __init__(self, base: str, auth: dict):
        self.ws = websocket.create_connection(base.replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket",
                                              origin=base, timeout=20)
        self.ws.recv()  # the Engine.IO open packet
        self.ws.send("40" + json.dumps(auth))
        assert self.ws.recv().startswith("40")  # connected
        self.gaps: list[dict] = []

    def _packet(self):
        while True:
            frame = self.ws.recv()
            if frame == "2":  # Engine.IO ping
                self.ws.send("3")
            elif frame.startswith("42"):
                return json.loads(frame[2:])

    def read(self, n: int) -> list[tuple[dict, str]]:
        """The next n events, each with the position of its packet."""
        out: list[tuple[dict, str]] = []
        while len(out) < n:
            packet = self._packet()
            if packet[0] == "metrics":
                out.extend((event, packet[2]["position"]) for event in packet[1])
            elif packet[0] == "gap":
                self.gaps.append(packet[1])
        return out

    def next_gap(self) -> dict:
        while True:
            packet = self._packet()
            if packet[0] == "gap":
                return packet[1]

    def expect_nothing_more(self) -> None:
        self.ws.settimeout(0.5)
        with pytest.raises(websocket.WebSocketTimeoutException):
            while True:
                packet = self._packet()
                assert packet[0] != "metrics", f"unexpected extra packet {packet}"

    def close(self) -> None:
        self.ws.close()


def test_the_generator_stopped_with_sigterm_logs_what_it_counted_and_exits_0(redis_url_fresh):
    proc = subprocess.Popen([sys.executable, str(GENERATOR), "--rate", "2000", "--duration", "60", "--batch", "20"],
                            env=clean_env(REDIS_URL=redis_url_fresh), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    time.sleep(1.5)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    published = int(next(ln for ln in out.splitlines() if ln.startswith("generator: published")).split()[2])
    assert published > 0 and len(logged_ids(redis_url_fresh)) == published  # the batch in hand was sent
