"""Real processes for end-to-end tests: redis-server, the backend, the generator."""
from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from tests.helpers import free_port

BACKEND = Path(__file__).resolve().parent.parent


def clean_env(**overrides) -> dict:
    from analytics.settings import Settings

    env = {k: v for k, v in os.environ.items() if k not in Settings.__dataclass_fields__}
    env.update({"PYTHONUNBUFFERED": "1", "LOG_LEVEL": "WARNING"})
    env.update({k: str(v) for k, v in overrides.items()})
    return env


def wait_http(url: str, timeout: float = 20.0, status: int = 200) -> None:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == status:
                    return
        except Exception as exc:  # not up yet
            last = exc
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer {status}: {last}")


@contextlib.contextmanager
def redis_server(port: int | None = None):
    """A private redis-server on a free port; yields (url, port)."""
    port = port or free_port()
    workdir = tempfile.mkdtemp(prefix="redis-e2e-")
    proc = subprocess.Popen([shutil.which("redis-server"), "--port", str(port), "--bind", "127.0.0.1",
                             "--save", "", "--appendonly", "no", "--dir", workdir],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        import redis

        client = redis.Redis(port=port)
        for _ in range(100):
            with contextlib.suppress(redis.ConnectionError):
                client.ping()
                break
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0", port, proc
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)


@contextlib.contextmanager
def backend(redis_url: str, port: int | None = None, **settings):
    """The real backend process (gevent, as shipped); yields its base URL."""
    port = port or free_port()
    base = f"http://127.0.0.1:{port}"
    env = clean_env(REDIS_URL=redis_url, PORT=port, HOST="127.0.0.1", CORS_ORIGINS=base, **settings)
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen([sys.executable, str(BACKEND / "app.py")], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_http(f"{base}/api/health")
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.seek(0)
        output = log.read().decode(errors="replace")
        if "Traceback" in output:
            print(output)


def generator(redis_url: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run the real generator to completion; returns the finished process (stdout captured)."""
    return subprocess.run([sys.executable, str(BACKEND / "generator.py"), *args], env=clean_env(REDIS_URL=redis_url),
                          capture_output=True, text=True, timeout=timeout, check=True)


def published(proc: subprocess.CompletedProcess) -> int:
    """The event count the generator says it published."""
    line = next(line for line in proc.stdout.splitlines() if line.startswith("generator: published"))
    return int(line.split()[2])
