"""Start a private redis-server, the backend and the generator as real processes, each with an
environment built from the settings class, so nothing from the caller's shell leaks in."""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from analytics.settings import Settings

BACKEND = Path(__file__).resolve().parent.parent
APP = BACKEND / "app.py"
GENERATOR = BACKEND / "generator.py"
HOST = "127.0.0.1"  # everything here talks to loopback only


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def clean_env(**settings) -> dict[str, str]:
    """Our environment without any setting (NAME or NAME_FILE), plus `settings`."""
    names = set(Settings.variable_names())
    env = {k: v for k, v in os.environ.items() if k not in names}
    env.update({"PYTHONUNBUFFERED": "1", "LOG_LEVEL": "WARNING"})
    env.update({k: str(v) for k, v in settings.items()})
    return env


def wait_http(url: str, timeout: float = 30.0) -> dict:
    """The JSON body of the first 200 answer from `url`; TimeoutError if none comes in time."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return json.loads(response.read() or b"null")
        except Exception as exc:  # not up yet
            last = exc
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {timeout}s: {last}")


def get_json(url: str, timeout: float = 10.0) -> dict:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read())


def http_status(url: str, timeout: float = 5.0) -> int:
    """The HTTP status of a GET, 0 when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


def redis_argv(port: int, workdir: str, *extra: str) -> list[str]:
    """redis-server on loopback without persistence; the pub/sub output buffer raised as in
    the README, or a burst makes Redis drop the backend's subscription."""
    return [shutil.which("redis-server") or "redis-server", "--port", str(port), "--bind", HOST, "--save", "",
            "--appendonly", "no", "--dir", workdir, "--client-output-buffer-limit", "pubsub 256mb 128mb 60",
            "--protected-mode", "yes", "--logfile", os.path.join(workdir, "redis.log"), *extra]


def wait_redis(port: int, proc: subprocess.Popen, password: str | None = None, timeout: float = 10.0) -> None:
    import redis

    client = redis.Redis(host=HOST, port=port, password=password, socket_timeout=10)
    deadline = time.monotonic() + timeout
    while True:
        try:
            client.ping()
            return
        except redis.ConnectionError:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("redis-server did not start") from None
            time.sleep(0.05)


@contextlib.contextmanager
def redis_server(port: int | None = None, *extra: str, password: str | None = None):
    """A private redis-server on a free port; yields (url, port, process). `extra` are more
    redis-server arguments (e.g. "--requirepass", "x"); pass the same password to wait for it."""
    port = port or free_port()
    workdir = tempfile.mkdtemp(prefix="redis-")
    proc = subprocess.Popen(redis_argv(port, workdir, *extra), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_redis(port, proc, password)
        yield f"redis://{HOST}:{port}/0", port, proc
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)


class BackendProcess:
    """A running backend: its base URL, its process, and what it has written so far."""

    def __init__(self, base: str, proc: subprocess.Popen, log):
        self.base, self.proc, self._log = base, proc, log

    def output(self) -> str:
        """Its stdout and stderr so far (read without moving the offset the process writes at)."""
        chunks, offset = [], 0
        while chunk := os.pread(self._log.fileno(), 1 << 20, offset):
            chunks.append(chunk)
            offset += len(chunk)
        return b"".join(chunks).decode(errors="replace")

    def open_fds(self) -> int:
        """Descriptors the process holds now (Linux: /proc/PID/fd)."""
        return len(os.listdir(f"/proc/{self.proc.pid}/fd"))


@contextlib.contextmanager
def backend_process(redis_url: str, port: int | None = None, fd_limit: int | None = None, **settings):
    """The real backend process (gevent, as shipped); yields a BackendProcess. `fd_limit` lowers
    its descriptor limit (RLIMIT_NOFILE) from the start (the shell's ulimit, then exec: same pid)."""
    port = port or free_port()
    base = f"http://{HOST}:{port}"
    env = clean_env(**{"REDIS_URL": redis_url, "PORT": port, "HOST": HOST, "CORS_ORIGINS": base, **settings})
    log = tempfile.TemporaryFile()
    argv = [sys.executable, str(APP)]
    if fd_limit:
        argv = ["/bin/sh", "-c", f'ulimit -n {int(fd_limit)} && exec "$0" "$1"', *argv]
    proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
    running = BackendProcess(base, proc, log)
    try:
        wait_http(f"{base}/api/health", timeout=20)
        yield running
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        output = running.output()
        log.close()
        if "Traceback" in output:
            print(output)


@contextlib.contextmanager
def backend(redis_url: str, port: int | None = None, **settings):
    """The real backend process (gevent, as shipped); yields its base URL."""
    with backend_process(redis_url, port, **settings) as running:
        yield running.base


def generator(redis_url: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run the real generator to completion; returns the finished process (stdout captured)."""
    return subprocess.run([sys.executable, str(GENERATOR), *args], env=clean_env(REDIS_URL=redis_url),
                          capture_output=True, text=True, timeout=timeout, check=True)


def published(proc: subprocess.CompletedProcess) -> int:
    """The event count in the generator's closing line ("generator: published N events in ...")."""
    line = next(line for line in proc.stdout.splitlines() if line.startswith("generator: published"))
    return int(line.split()[2])
