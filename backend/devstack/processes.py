"""Start a private redis-server (plain or TLS), the backend and the generator as real processes,
each with an environment built from the settings class, so nothing from the caller's shell leaks in.

Every process's output goes to a file in DEVSTACK_LOG_DIR when that is set (the tests set one per
session and search it for the secrets handed out: `handed_out()`), else to a temporary file."""
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
from typing import IO
from urllib.parse import unquote, urlsplit

from analytics.settings import SECRETS, Settings
from devstack.tls import TlsFiles

BACKEND = Path(__file__).resolve().parent.parent
APP = BACKEND / "app.py"
GENERATOR = BACKEND / "generator.py"
HOST = "127.0.0.1"  # everything here talks to loopback only


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


# Secrets given to processes (and those tests name with keep_secret): none may reach a log.
# Shorter values are not kept: they would be found in any log by chance.
_SECRETS: set[str] = set()
MIN_SECRET_LEN = 8


def keep_secret(value: str) -> str:
    """Name `value` as a secret the logs must never show; returns it."""
    if len(value) >= MIN_SECRET_LEN:
        _SECRETS.add(value)
    return value


def handed_out() -> set[str]:
    return set(_SECRETS)


def _note_secrets(settings: dict[str, str]) -> None:
    for name, value in settings.items():
        base = name.removesuffix("_FILE")
        if base in SECRETS and base != "API_KEYS":  # API_KEYS holds digests; the keys are the secrets
            try:
                keep_secret(Path(value).read_text().strip() if name.endswith("_FILE") else value)
            except OSError:  # a test of an unreadable secret file: nothing to keep
                pass
        elif name == "REDIS_URL" and urlsplit(value).password:
            keep_secret(unquote(urlsplit(value).password))


def log_file(name: str) -> IO[bytes]:
    """A new file for a process's output, in DEVSTACK_LOG_DIR when set."""
    folder = os.environ.get("DEVSTACK_LOG_DIR")
    if not folder:
        return tempfile.TemporaryFile()
    fd, _ = tempfile.mkstemp(prefix=f"{name}-", suffix=".log", dir=folder)
    return os.fdopen(fd, "w+b")


def clean_env(**settings) -> dict[str, str]:
    """Our environment without any setting (NAME or NAME_FILE), plus `settings`."""
    names = set(Settings.variable_names())
    env = {k: v for k, v in os.environ.items() if k not in names}
    env.update({"PYTHONUNBUFFERED": "1", "LOG_LEVEL": "WARNING"})
    env.update({k: str(v) for k, v in settings.items()})
    _note_secrets({k: env[k] for k in settings})
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


def redis_argv(port: int, workdir: str, *extra: str, tls: TlsFiles | None = None,
               tls_auth_clients: str = "no") -> list[str]:
    """redis-server on loopback without persistence; the pub/sub output buffer raised as in
    the README, or a burst makes Redis drop the backend's subscription. With `tls`: TLS only
    (no plain port), its certificates from devstack.tls, client certificates as asked."""
    folder = os.environ.get("DEVSTACK_LOG_DIR") or workdir
    ports = ["--port", str(port)]
    if tls:
        ports = ["--port", "0", "--tls-port", str(port), "--tls-cert-file", str(tls.server_cert),
                 "--tls-key-file", str(tls.server_key), "--tls-ca-cert-file", str(tls.ca),
                 "--tls-auth-clients", tls_auth_clients]
    return [shutil.which("redis-server") or "redis-server", *ports, "--bind", HOST, "--save", "",
            "--appendonly", "no", "--dir", workdir, "--client-output-buffer-limit", "pubsub 256mb 128mb 60",
            "--protected-mode", "yes", "--logfile", os.path.join(folder, f"redis-{port}.log"), *extra]


def wait_redis(port: int, proc: subprocess.Popen, password: str | None = None, timeout: float = 10.0,
               tls: TlsFiles | None = None) -> None:
    import redis

    # Over TLS the check presents the client certificate, so it works whatever tls-auth-clients says.
    secure = {"ssl": True, "ssl_ca_certs": str(tls.ca), "ssl_certfile": str(tls.client_cert),
              "ssl_keyfile": str(tls.client_key)} if tls else {}
    client = redis.Redis(host=HOST, port=port, password=password, socket_timeout=10, **secure)
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
def redis_server(port: int | None = None, *extra: str, password: str | None = None, tls: TlsFiles | None = None,
                 tls_auth_clients: str = "no"):
    """A private redis-server on a free port; yields (url, port, process). `extra` are more
    redis-server arguments (e.g. "--requirepass", "x"); pass the same password to wait for it.
    With `tls` (devstack.tls.make_tls_files) it speaks TLS only and the URL is rediss://;
    `tls_auth_clients` is redis-server's: no, optional or yes (a client certificate required)."""
    port = port or free_port()
    workdir = tempfile.mkdtemp(prefix="redis-")
    if password:
        keep_secret(password)
    argv = redis_argv(port, workdir, *extra, tls=tls, tls_auth_clients=tls_auth_clients)
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_redis(port, proc, password, tls=tls)
        yield f"{'rediss' if tls else 'redis'}://{HOST}:{port}/0", port, proc
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)


class BackendProcess:
    """A running backend: its base URL, its process, and what it has written so far."""

    def __init__(self, base: str, proc: subprocess.Popen, log):
        self.base, self.proc, self._log = base, proc, log

    def output(self) -> str:
        """Its stdout and stderr so far."""
        return read_log(self._log)

    def open_fds(self) -> int:
        """Descriptors the process holds now (Linux: /proc/PID/fd)."""
        return len(os.listdir(f"/proc/{self.proc.pid}/fd"))


@contextlib.contextmanager
def backend_process(redis_url: str, port: int | None = None, fd_limit: int | None = None, healthy: bool = True,
                    **settings):
    """The real backend process (gevent, as shipped); yields a BackendProcess once /api/health
    answers 200 (or, with healthy=False, answers at all: a backend that cannot reach Redis).
    `fd_limit` lowers its descriptor limit (RLIMIT_NOFILE) from the start (the shell's ulimit,
    then exec: same pid). Its output so far: .output(), or output_of(base)."""
    port = port or free_port()
    base = f"http://{HOST}:{port}"
    env = clean_env(**{"REDIS_URL": redis_url, "PORT": port, "HOST": HOST, "CORS_ORIGINS": base, **settings})
    log = log_file("backend")
    _LOGS[base] = log
    argv = [sys.executable, str(APP)]
    if fd_limit:
        argv = ["/bin/sh", "-c", f'ulimit -n {int(fd_limit)} && exec "$0" "$1"', *argv]
    proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
    running = BackendProcess(base, proc, log)
    try:
        if healthy:
            wait_http(f"{base}/api/health", timeout=20)
        else:
            deadline = time.monotonic() + 20
            while http_status(f"{base}/api/health") == 0:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise TimeoutError(f"{base}/api/health did not answer: {running.output()}")
                time.sleep(0.1)
        yield running
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        output = running.output()
        _LOGS.pop(base, None)
        if "Traceback" in output:
            print(output)


_LOGS: dict[str, IO[bytes]] = {}


def output_of(base: str) -> str:
    """What the backend at `base` has written so far. Read through a file description of its
    own: the process shares the offset of the one it writes with."""
    return read_log(_LOGS[base])


def read_log(log: IO[bytes]) -> str:
    """What a process has written so far to `log`, a file from log_file()."""
    with open(f"/proc/self/fd/{log.fileno()}", "rb") as fresh:
        return fresh.read().decode(errors="replace")


@contextlib.contextmanager
def backend(redis_url: str, port: int | None = None, healthy: bool = True, **settings):
    """The real backend process (gevent, as shipped); yields its base URL (backend_process)."""
    with backend_process(redis_url, port, healthy=healthy, **settings) as running:
        yield running.base


def generator(redis_url: str, *args: str, timeout: float = 120, check: bool = True,
              **settings) -> subprocess.CompletedProcess:
    """Run the real generator to completion; returns the finished process (stdout and stderr
    captured, and kept in a log file)."""
    proc = subprocess.run([sys.executable, str(GENERATOR), *args], env=clean_env(REDIS_URL=redis_url, **settings),
                          capture_output=True, text=True, timeout=timeout, check=False)
    with log_file("generator") as log:
        log.write(f"{proc.stdout}\n{proc.stderr}".encode())
    if check:
        proc.check_returncode()
    return proc


def published(proc: subprocess.CompletedProcess) -> int:
    """The event count in the generator's closing line ("generator: published N events in ...")."""
    line = next(line for line in proc.stdout.splitlines() if line.startswith("generator: published"))
    return int(line.split()[2])
