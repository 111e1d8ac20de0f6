"""Real processes for the benchmark: redis-server, the backend (or the naive baseline), the
generator, the Node clients; and what we read about them from /proc.

Every process starts in its own process group and is registered in a `Processes` stack, so
one `close()` (in a finally, also on Ctrl-C) kills all of them and their children.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from devstack.processes import BACKEND, HOST, clean_env, free_port, redis_argv, wait_http, wait_redis

ROOT = BACKEND.parent
BENCH = ROOT / "bench"
PYTHON = str(ROOT / ".venv" / "bin" / "python")
CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float | None:
    """utime + stime of a live process, in seconds (fields 14 and 15 of /proc/<pid>/stat)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()  # the command name may contain spaces
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def machine_cpu() -> tuple[int, int, int]:
    """(busy, total, steal) jiffies of the whole machine, from the first line of /proc/stat.
    Steal is time the hypervisor ran someone else while a CPU here had work: it counts as busy,
    and a run with much of it had less machine than its figures suggest."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    steal = values[7] if len(values) > 7 else 0
    return sum(values) - idle, sum(values), steal


def memory_mb(pid: int) -> dict[str, float]:
    """VmRSS (now) and VmHWM (peak since start) of a live process, in MB."""
    out = {}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(("VmRSS:", "VmHWM:")):
                out[line.split(":")[0]] = int(line.split()[1]) / 1024
    return out


class RssSampler(threading.Thread):
    """Samples VmRSS every `interval` s: the peak during the run (VmHWM also counts start-up)."""

    def __init__(self, pid: int, interval: float = 0.25):
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.peak = 0.0
        self.samples = 0
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            rss = memory_mb(self.pid).get("VmRSS")
            if rss is not None:
                self.peak = max(self.peak, rss)
                self.samples += 1
            self._halt.wait(self.interval)

    def stop(self) -> float:
        self._halt.set()
        self.join(2)
        return self.peak


class Processes:
    """Owns every child: `start()` registers, `stop()` ends one group, `close()` ends all."""

    def __init__(self):
        self.children: list[subprocess.Popen] = []

    def start(self, argv: list[str], **kwargs) -> subprocess.Popen:
        proc = subprocess.Popen(argv, start_new_session=True, **kwargs)  # own process group
        self.children.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen, timeout: float = 5.0, sig: int = signal.SIGTERM) -> None:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)  # leftovers of the group, if any
        if proc in self.children:
            self.children.remove(proc)

    def close(self) -> None:
        for proc in reversed(list(self.children)):
            with contextlib.suppress(Exception):
                self.stop(proc, timeout=3)


# The system under test (the server and its Redis) runs at this niceness, the harness (clients,
# publisher, probes) at 0: on one machine the load generators stand in for other machines, and
# on 2 cores, at the same priority, their CPU showed up as the server's stalls (bench/README.md).
# run.py sets it from --server-nice; a negative value needs root (CAP_SYS_NICE), else nice
# warns and runs at 0, and the results record the niceness each server really had.
SYSTEM_NICE = 0


def niced(argv: list[str]) -> list[str]:
    return ["nice", "-n", str(SYSTEM_NICE), *argv] if SYSTEM_NICE else argv


def niceness(pid: int) -> int | None:
    try:
        return os.getpriority(os.PRIO_PROCESS, pid)
    except OSError:
        return None


class Redis:
    """A private redis-server: free port, no persistence, its own temp dir."""

    def __init__(self, procs: Processes):
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="bench-redis-")
        self.proc = procs.start(niced(redis_argv(self.port, self.dir)), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        self.url = f"redis://{HOST}:{self.port}/0"
        import redis

        self.client = redis.Redis(host=HOST, port=self.port, socket_timeout=10)
        wait_redis(self.port, self.proc)

    def output_buffer_kills(self) -> int:
        """Clients redis closed for passing client-output-buffer-limit (pub/sub subscribers that
        fell behind), counted from its log: redis 7.0's INFO has no counter for it."""
        try:
            return Path(self.dir, "redis.log").read_text(errors="replace").count("overcoming of output buffer limits")
        except OSError:
            return 0

    def flush(self) -> None:
        self.client.flushall()

    def cleanup(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


class Server:
    """The product backend (`backend/app.py`), the naive baseline (`bench/naive_server.py`) or
    the two-hop floor (`bench/ws_forward.py`)."""

    def __init__(self, procs: Processes, kind: str, redis_url: str, log_path: Path, port: int | None = None,
                 **settings):
        self.procs = procs
        self.port = port or free_port()  # a restart (the kill cell) comes back on the same port
        self.base = f"http://{HOST}:{self.port}"
        env = clean_env(REDIS_URL=redis_url, PORT=self.port, HOST=HOST, LOG_LEVEL="WARNING",
                        RATE_LIMIT="1000000 per minute", CORS_ORIGINS=self.base, **settings)
        script = {"product": BACKEND / "app.py", "naive": BENCH / "naive_server.py",
                  "forward": BENCH / "ws_forward.py"}[kind]
        self.log_path = log_path
        self._log = open(log_path, "ab" if port else "wb")  # a restart (same port) appends to the log
        self.proc = procs.start(niced([PYTHON, str(script)]), env=env, stdout=self._log, stderr=subprocess.STDOUT, cwd=ROOT)
        self.pid = self.proc.pid
        health = "/api/health"
        wait_http(self.base + health, timeout=30)
        self.nice = niceness(self.pid)  # after start-up: nice has exec'd the server by now

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> str:
        self.procs.stop(self.proc)
        self._log.close()
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL, as a crash would: no flush, no Socket.IO disconnect, sockets just drop."""
        self.procs.stop(self.proc, timeout=5, sig=signal.SIGKILL)
        self._log.close()


def run_generator(procs: Processes, redis_url: str, rate: float, duration: float, batch: int,
                  log_path: Path, timeout: float, transport: str = "log", http_base: str | None = None,
                  api_key: str | None = None) -> dict:
    """Run backend/generator.py to completion; returns published count, wall and CPU time.
    CPU comes from wait4's rusage, the only exact figure for a process that has exited.
    `transport`: log (the durable log, the generator's default) or pubsub (PUBLISH on the channel)."""
    argv = [PYTHON, str(BACKEND / "generator.py"), "--rate", str(rate), "--duration", str(duration), "--seed", "1",
            "--transport", transport]
    if http_base:  # the same traffic and pacing, posted to the backend (bench/http_producer.py)
        argv = [PYTHON, str(BENCH / "http_producer.py"), "--base", http_base, "--rate", str(rate), "--duration",
                str(duration), "--seed", "1"]
    if batch:
        argv += ["--batch", str(batch)]
    started = time.monotonic()
    env = clean_env(REDIS_URL=redis_url, **({"BENCH_API_KEY": api_key} if api_key else {}))
    with open(log_path, "wb") as log:
        proc = procs.start(argv, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
        deadline = started + timeout
        rusage = None
        while rusage is None:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                rusage, proc.returncode = usage, os.waitstatus_to_exitcode(status)
            elif time.monotonic() > deadline:
                procs.stop(proc)
                raise TimeoutError(f"generator did not finish within {timeout}s")
            else:
                time.sleep(0.05)
    if proc in procs.children:
        procs.children.remove(proc)
    wall = time.monotonic() - started
    out = log_path.read_text(errors="replace")
    line = next((ln for ln in out.splitlines() if ln.startswith("generator: published")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"generator failed (exit {proc.returncode}): {out[-500:]}")
    # "generator: published N events in S s (R ev/s)": S excludes interpreter start-up.
    publishing_s = float(line.split(" in ", 1)[1].split("s", 1)[0])
    return {"published": int(line.split()[2]), "wall_s": wall, "publishing_s": publishing_s,
            "cpu_s": rusage.ru_utime + rusage.ru_stime,
            "batch": batch or None}


class Clients:
    """One or two Node processes running bench/clients.mjs, sharing the clients between them."""

    def __init__(self, procs: Processes, url: str, clients: int, workers: int, run_dir: Path, tag: str,
                 max_seconds: float, impl: str = "raw", resume: bool = False):
        self.procs = procs
        self.outs: list[Path] = []
        self.procs_: list[subprocess.Popen] = []
        per = [clients // workers + (1 if i < clients % workers else 0) for i in range(workers)]
        for i, n in enumerate(p for p in per if p):
            out = run_dir / f"{tag}.clients{i}.json"
            out.unlink(missing_ok=True)
            self.outs.append(out)
            self.procs_.append(procs.start(
                ["node", str(BENCH / "clients.mjs"), "--url", url, "--clients", str(n), "--out", str(out),
                 "--max-seconds", str(int(max_seconds)), "--impl", impl, *(["--resume", "1"] if resume else [])],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=open(run_dir / f"{tag}.clients{i}.log", "wb"),
                cwd=BENCH, text=True, bufsize=1))

    def wait_ready(self, timeout: float = 60.0) -> int:
        connected = 0
        for proc in self.procs_:
            line = _readline(proc, timeout)
            if not line.startswith("ready"):
                raise RuntimeError(f"clients did not get ready: {line!r}")
            connected += int(line.split()[1])
        return connected

    def expect(self, events: int, drain_s: float) -> None:
        for proc in self.procs_:
            proc.stdin.write(f"expect {events} {drain_s}\n")
            proc.stdin.flush()

    def results(self, timeout: float) -> list[dict]:
        out = []
        for proc, path in zip(self.procs_, self.outs):
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.procs.stop(proc)  # SIGTERM makes clients.mjs write what it has
            if path.exists():
                out.append(json.loads(path.read_text()))
            self.procs.stop(proc)
        return out


def _readline(proc: subprocess.Popen, timeout: float) -> str:
    """One stdout line, or "" after `timeout` (a reader thread: pipes have no read timeout)."""
    box: list[str] = []
    reader = threading.Thread(target=lambda: box.append(proc.stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    return box[0].strip() if box else ""
