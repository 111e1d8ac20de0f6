"""Access control end to end with real processes: a backend with its JWT secret in a file
(JWT_SECRET_FILE) and producer keys, python-socketio clients over WebSocket, REST over HTTP."""
from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import pytest
import socketio

from analytics.access.keys import new_key
from devstack.processes import APP, BACKEND, clean_env, free_port, keep_secret, log_file, read_log, redis_server, wait_http

pytestmark = pytest.mark.e2e
SECRET = "jwt-secret-from-a-file-0123456789abcdef"
KEY, ENTRY = new_key()


def request(url: str, body=None, headers=None) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=10) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


def manage(*args: str, **settings) -> str:
    proc = subprocess.run([sys.executable, str(BACKEND / "manage.py"), *args], env=clean_env(**settings),
                          capture_output=True, text=True, timeout=60, check=True)
    SHOWN.append(keep_secret(proc.stdout.strip()))  # the session's log check looks for it too
    return proc.stdout.strip()


class Viewer:
    """A Socket.IO client that records every event it is sent and the last log position."""

    def __init__(self, base: str, auth: dict):
        self.events: list[dict] = []
        self.position = None
        self.lock = threading.Lock()
        self.sio = socketio.Client(reconnection=False)
        self.sio.on("metrics", self._on_metrics)
        self.sio.connect(base, transports=["websocket"], auth=auth, wait_timeout=10)

    def _on_metrics(self, events, meta=None):
        with self.lock:
            self.events.extend(events)
            if meta:
                self.position = meta["position"]

    def values(self, n: int, timeout: float = 10) -> list[float]:
        deadline = time.monotonic() + timeout
        while len(self.events) < n and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)  # anything it should not get would arrive now
        return [e["value"] for e in self.events]


SHOWN: list[str] = [SECRET, KEY]  # every secret and token the tests hand out: none may reach the log


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """A backend logging at DEBUG into a file the last test reads."""
    folder = tmp_path_factory.mktemp("access")
    secret_file = folder / "jwt_secret"
    secret_file.write_text(SECRET + "\n")
    keep_secret(KEY)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with redis_server() as (url, _, _), log_file("access-backend") as log:
        env = clean_env(REDIS_URL=url, PORT=port, HOST="127.0.0.1", CORS_ORIGINS=base, LOG_LEVEL="DEBUG",
                        JWT_SECRET_FILE=secret_file, API_KEYS=ENTRY)
        proc = subprocess.Popen([sys.executable, str(APP)], env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_http(f"{base}/api/health")
            yield base, secret_file, log
        finally:
            proc.terminate()
            proc.wait(10)


def publish(base: str, events: list[dict]) -> None:
    status, body = request(f"{base}/api/events", events, {"X-API-Key": KEY})
    assert status == 202, body


def test_a_socket_without_a_valid_token_is_refused(stack):
    base, secret_file, _ = stack
    expired = manage("new-token", "--ttl", "1", JWT_SECRET_FILE=secret_file)
    time.sleep(1.5)
    for auth in ({}, {"token": "not.a.token"}, {"token": expired}):
        with pytest.raises(socketio.exceptions.ConnectionError):
            Viewer(base, auth)


def test_a_socket_is_disconnected_when_its_token_expires(stack):
    base, secret_file, _ = stack
    viewer = Viewer(base, {"token": manage("new-token", "--ttl", "2", JWT_SECRET_FILE=secret_file)})
    lasting = Viewer(base, {"token": manage("new-token", "--ttl", "600", JWT_SECRET_FILE=secret_file)})
    assert viewer.sio.connected
    deadline = time.monotonic() + 6
    while viewer.sio.connected and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not viewer.sio.connected and lasting.sio.connected
    lasting.sio.disconnect()


def test_rest_needs_the_token_minted_from_the_secret_file(stack):
    base, secret_file, _ = stack
    token = manage("new-token", "--ttl", "60", JWT_SECRET_FILE=secret_file)
    assert request(f"{base}/api/metrics/recent")[0] == 401
    assert request(f"{base}/api/metrics/recent", headers={"Authorization": f"Bearer {token}"})[0] == 200
    assert request(f"{base}/api/health")[0] == 200
    assert request(f"{base}/api/events", [{"metric": "m", "value": 1}])[0] == 401


def test_a_sources_claim_limits_the_live_stream_and_the_resume(stack):
    base, secret_file, _ = stack
    token = manage("new-token", "--sources", "web", "--ttl", "60", JWT_SECRET_FILE=secret_file)
    viewer = Viewer(base, {"token": token, "positions": True})
    everyone = Viewer(base, {"token": manage("new-token", JWT_SECRET_FILE=secret_file)})
    publish(base, [{"metric": "orders", "value": v, "source": s} for v, s in ((1, "web"), (2, "shop"), (3, "web"))])
    assert viewer.values(2) == [1, 3]
    assert everyone.values(3) == [1, 2, 3]
    position = viewer.position
    viewer.sio.disconnect()
    publish(base, [{"metric": "orders", "value": v, "source": s} for v, s in ((4, "shop"), (5, "web"))])
    resumed = Viewer(base, {"token": token, "resume": position})
    assert resumed.values(1) == [5]
    for client in (resumed, everyone):
        client.sio.disconnect()


def test_no_secret_key_or_token_reaches_the_backend_log(stack):
    base, _, log = stack
    request(f"{base}/api/metrics/recent", headers={"Authorization": f"Bearer {SHOWN[-1]}"})
    request(f"{base}/api/events", [{"metric": "m", "value": 1}], {"X-API-Key": KEY + "x"})  # refused: not logged either
    time.sleep(0.5)
    log = read_log(log)
    assert "serving on" in log  # the log really is this backend's, at DEBUG
    assert len(SHOWN) >= 5  # the secret, the key and tokens from the tests above
    for secret in SHOWN:
        assert secret not in log
