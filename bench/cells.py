"""One benchmark cell: a fresh server, its clients, a paced publisher, and what was measured.

A cell is (server kind, async mode, rate, clients) plus flags (REST probe, ingest only). Each
run of a cell gets a freshly started server (so CPU, RSS and counters are its own) and a
flushed Redis (so the aggregate count check sees only this run's events).
"""
from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from measures import (
    Snapshot,
    aggregate_count,
    confirm_lag,
    exact_counts,
    latency_stats,
    prefill,
    summarize_clients,
    wait_settled,
)
from processes import (
    BENCH,
    HOST,
    PYTHON,
    Clients,
    Processes,
    Redis,
    RssSampler,
    Server,
    _readline,
    free_port,
    memory_mb,
    niced,
    run_generator,
)

from analytics.access.keys import new_key
from analytics.access.tokens import mint


@dataclass(frozen=True)
class Cell:
    rate: int
    clients: int
    kind: str = "product"  # or "naive": bench/naive_server.py, one emit per event; or "floor":
    # bench/hop_floor.py, a bare Redis subscriber and no server (what any subscriber pays); or
    # "forward": bench/ws_forward.py, a bare forwarder to the clients (what any server pays)
    mode: str = "gevent"  # ASYNC_MODE of the product
    batch: int = 0  # generator --batch (0 = its automatic choice)
    probe: bool = False  # run bench/rest_probe.py during the load
    role: str = "matrix"  # matrix | baseline | async | ingest | rest | stretch | client
    client: str = "raw"  # bench/clients.mjs --impl: raw (light, default) or socketio (the real client)
    ws_server: str = "simple-websocket"  # WS_SERVER of the product (gevent mode)
    direct_writes: bool = True  # DIRECT_WRITES of the product
    # How the generator sends: "log" (the durable log, its default; the product's durable path)
    # or "pubsub" (PUBLISH on the channel, bridged into the log by the backend). naive, floor and
    # forward subscribe to the channel, so they are always "pubsub".
    transport: str = "log"
    kill: bool = False  # SIGKILL the backend mid-run, restart it; clients track positions and resume
    producer: str = "generator"  # or "http": bench/http_producer.py POSTs the same traffic to /api/events
    auth: bool = False  # access control on: producer keys, or viewer tokens for a probe cell (what it costs)

    def __post_init__(self):
        if self.kind != "product":
            object.__setattr__(self, "transport", "pubsub")
        if self.transport not in ("log", "pubsub"):
            raise ValueError(f"transport must be log or pubsub, not {self.transport!r}")

    @property
    def key(self) -> str:
        if self.kind == "floor":
            return f"floor-{self.rate}"
        name = f"{self.kind}-{self.mode}-{self.rate}x{self.clients}"
        return (name + ("-rest" if self.probe else "") + (f"-b{self.batch}" if self.batch else "")
                + ("-sio" if self.client == "socketio" else "")
                + ("-gevent-websocket" if self.ws_server == "gevent-websocket" else "")
                + ("" if self.direct_writes else "-queued")
                + ("-pubsub" if self.kind == "product" and self.transport == "pubsub" else "")
                + ("-kill" if self.kill else "") + ("-http" if self.producer == "http" else "")
                + ("-auth" if self.auth else ""))


# The auth cells' key and token, made for this run (keys are stored as digests; see docs/security.md).
AUTH_KEY, _AUTH_ENTRY = new_key()
_JWT_SECRET = secrets.token_hex(32)
# Producer keys for an ingest cell (with the key's own budget raised, as RATE_LIMIT is), viewer
# tokens for a REST probe cell (the runner's own reads, e.g. the aggregate check, carry none).
KEY_SETTINGS = {"API_KEYS": _AUTH_ENTRY, "INGEST_RATE_LIMIT": "1000000 per minute"}
TOKEN_SETTINGS = {"JWT_SECRET": _JWT_SECRET}


@dataclass
class Options:
    duration: float
    drain_s: float
    run_dir: Path
    probe_requests: int = 300
    client_procs: int = 0  # 0 = automatic: two Node processes for 100 clients at >= 10,000 ev/s
    prefill_events: int = 36_000  # an hour of history for the REST probe, 10 ev/s
    extra_settings: dict = field(default_factory=dict)
    profile: bool = False  # sample the product backend with py-spy
    kill_min_s: float = 6.0  # the kill cell publishes at least this long (live traffic after the restart)


def run_cell(cell: Cell, opts: Options, redis: Redis, procs: Processes, tag: str) -> dict:
    """Run one cell once; returns a flat record of everything measured (see README)."""
    redis.flush()
    if cell.kind == "floor":
        return run_floor(cell, opts, redis, procs, tag)
    if cell.kill:
        from kill_cell import run_kill  # it builds on this module

        return run_kill(cell, opts, redis, procs, tag)
    server = Server(procs, cell.kind, redis.url, opts.run_dir / f"{tag}.server.log", **server_settings(cell, opts))
    record: dict = {"cell": cell.key, **asdict(cell), "duration_s": opts.duration, "tag": tag, "notes": []}
    clients = probes = None
    try:  # the finally below stops every process this cell started
        clients = start_clients(cell, opts, procs, server, tag, record)
        record["prefilled"] = prefill(redis, opts.prefill_events) if cell.probe else 0
        wait_settled(server.base, record["prefilled"], timeout=30, product=cell.kind == "product")
        # The loop-lag probe is the product's, under gevent (threading has no one loop to measure).
        lag_url = server.base if cell.kind == "product" and cell.mode == "gevent" else None
        start = Snapshot.take(server.pid, redis, lag_url)
        spy = start_profiler(procs, server.pid, opts, tag) if opts.profile and cell.kind == "product" else None
        sampler = RssSampler(server.pid)
        sampler.start()
        probes = RestProbes(procs, opts, server, tag, cell) if cell.probe else None
        gen = run_generator(procs, redis.url, cell.rate, opts.duration, cell.batch,
                            opts.run_dir / f"{tag}.generator.log", timeout=opts.duration * 3 + 60,
                            transport=cell.transport, http_base=server.base if cell.producer == "http" else None,
                            api_key=AUTH_KEY if cell.auth else None)
        t_published = time.monotonic()
        record.update(published=gen["published"], generator_cpu_s=round(gen["cpu_s"], 3),
                      generator_wall_s=round(gen["wall_s"], 3),
                      generator_rate=round(gen["published"] / max(gen["publishing_s"], 1e-9), 1))
        if record["generator_rate"] < 0.95 * cell.rate:
            record["notes"].append(f"publisher-bound: the generator reached {record['generator_rate']:.0f} ev/s"
                                   f" of {cell.rate}")
        client_results = []
        if clients:
            clients.expect(gen["published"], opts.drain_s)
            client_results = clients.results(timeout=opts.drain_s + 30)
        settled = wait_settled(server.base, record["prefilled"] + gen["published"], timeout=opts.drain_s + 10,
                               product=cell.kind == "product")
        end = Snapshot.take(server.pid, redis, lag_url)  # the moment the last event was recorded (product)
        if spy:
            procs.stop(spy, timeout=15, sig=signal.SIGINT)  # on SIGINT py-spy writes its profile
        record.update(server_alive=server.alive(), server_nice=server.nice, rss_peak_mb=round(sampler.stop(), 1),
                      rss_hwm_mb=round(memory_mb(server.pid).get("VmHWM", 0.0), 1), accepted=settled.get("accepted"),
                      **end.since(start))
        if cell.kind == "product":
            record.update(accepted_http=settled.get("accepted_http"), recorded=settled.get("recorded"))
            # Ingest throughput: events / time from the first publish until all are recorded.
            first_publish = t_published - gen["publishing_s"]
            record["ingest_rate"] = round(gen["published"] / max(end.mono - first_publish, 1e-9), 1)
            record["settle_after_publish_s"] = round(end.mono - t_published, 3)
            record["log_lag"] = confirm_lag(server.base, end.mono)
            if not cell.probe:  # the probe's prefill lies inside any window covering the run
                record["aggregate_count"] = aggregate_count(server.base, start.epoch)
        if probes:
            record.update(probes.results())
        record.update(summarize_clients(cell, gen["published"], client_results))
    finally:
        for proc in [*(probes.procs_ if probes else []), *(clients.procs_ if clients else [])]:
            if proc:
                procs.stop(proc)
        log = server.stop()
    finish_record(cell, record, log)
    return record


def server_settings(cell: Cell, opts: Options) -> dict:
    settings = dict(opts.extra_settings)
    if cell.kind == "product":
        settings["ASYNC_MODE"] = cell.mode
        if cell.auth:
            settings.update(TOKEN_SETTINGS if cell.probe else KEY_SETTINGS)
        if cell.role == "ws":  # the WebSocket server comparison; other cells keep the defaults (or --set)
            settings.update(WS_SERVER=cell.ws_server, DIRECT_WRITES=str(cell.direct_writes).lower())
    return settings


def run_floor(cell: Cell, opts: Options, redis: Redis, procs: Processes, tag: str) -> dict:
    """The same publisher into a bare subscriber (bench/hop_floor.py): the latency floor."""
    out = opts.run_dir / f"{tag}.floor.json"
    out.unlink(missing_ok=True)
    sub = procs.start([PYTHON, str(BENCH / "hop_floor.py"), "--redis", redis.url, "--out", str(out)],
                      stdout=subprocess.PIPE, stderr=open(opts.run_dir / f"{tag}.floor.log", "wb"), text=True)
    record: dict = {"cell": cell.key, **asdict(cell), "duration_s": opts.duration, "tag": tag, "notes": []}
    try:
        if _readline(sub, 30) != "ready":
            raise RuntimeError("hop_floor.py did not subscribe")
        gen = run_generator(procs, redis.url, cell.rate, opts.duration, cell.batch,
                            opts.run_dir / f"{tag}.generator.log", timeout=opts.duration * 3 + 60,
                            transport=cell.transport)
        time.sleep(0.5)  # the last event's hop
    finally:
        procs.stop(sub)
    result = json.loads(out.read_text())
    lat = result["latency"]
    record.update(published=gen["published"], generator_cpu_s=round(gen["cpu_s"], 3), expected=gen["published"],
                  delivered=result["events"], lost=gen["published"] - result["events"], server_alive=True,
                  backend_cpu_s=0.0, exact=result["events"] == gen["published"],
                  **latency_stats(dict(lat["bins"]), lat["bin_ms"], 0, lat["max_ms"]))
    return record


def listener_notes(record: dict, log: str) -> None:
    if "Traceback" in log:
        record["notes"].append(f"server logged a Traceback (see runs/{record['tag']}.server.log)")
    record["listener_disconnects"] = log.count("redis unreachable")
    if record["listener_disconnects"]:
        # Redis closes a subscriber whose pub/sub output buffer passes its limit (default 32 MB):
        # everything buffered for it, and everything published until it resubscribes, is gone.
        record["notes"].append(f"the backend's Redis subscription was dropped {record['listener_disconnects']} "
                               f"time(s) (redis: {record.get('redis_output_buffer_disconnects')} output-buffer "
                               "disconnections): pub/sub events lost")


def start_clients(cell: Cell, opts: Options, procs: Processes, server: Server, tag: str, record: dict):
    if not cell.clients:
        return None
    workers = opts.client_procs or (2 if cell.clients >= 100 and cell.rate >= 10_000 else 1)
    clients = Clients(procs, server.base, cell.clients, workers, opts.run_dir, tag,
                      max_seconds=opts.duration * 3 + opts.drain_s + 120, impl=cell.client)
    record["connected"] = clients.wait_ready(timeout=60)
    record["client_procs"] = len(clients.procs_)
    if record["connected"] != cell.clients:
        record["notes"].append(f"only {record['connected']} of {cell.clients} clients connected")
    return clients


class RestProbes:
    """bench/rest_probe.py against the server under test and, for the product, a second one
    against bench/rest_floor.py beside it (health only, at the same pace): the REST lines' floor."""

    def __init__(self, procs: Processes, opts: Options, server: Server, tag: str, cell: Cell):
        self.procs, self.opts, self.tag = procs, opts, tag
        self.probe = start_probe(procs, opts, server.base, tag, cell.auth)
        self.floor_server = self.floor_probe = None
        if cell.kind == "product":
            self.floor_server, floor_base = start_rest_floor(procs, opts, tag)
            self.floor_probe = start_probe(procs, opts, floor_base, tag, out_suffix="rest-floor", paths="health")

    @property
    def procs_(self) -> list[subprocess.Popen]:
        return [p for p in (self.probe, self.floor_probe, self.floor_server) if p is not None]

    def results(self) -> dict:
        out = {"rest": probe_result(self.procs, self.probe, self.opts, self.tag)}
        if self.floor_probe:
            out["rest_floor"] = probe_result(self.procs, self.floor_probe, self.opts, self.tag, out_suffix="rest-floor")
        return out


def start_probe(procs: Processes, opts: Options, base: str, tag: str, auth: bool = False, out_suffix: str = "probe",
                paths: str | None = None) -> subprocess.Popen:
    env = {**os.environ, "BENCH_TOKEN": mint(_JWT_SECRET, 3600, None)} if auth else None
    return procs.start([PYTHON, str(BENCH / "rest_probe.py"), "--base", base, "--requests",
                        str(opts.probe_requests), "--seconds", str(opts.duration * 0.9), "--out",
                        str(opts.run_dir / f"{tag}.{out_suffix}.json"), *(["--paths", paths] if paths else [])],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)


def start_rest_floor(procs: Processes, opts: Options, tag: str) -> tuple[subprocess.Popen, str]:
    """bench/rest_floor.py beside the product, at the niceness of the system under test: the
    REST lines' floor (what a bare gevent server answers in under the same load)."""
    port = free_port()
    proc = procs.start(niced([PYTHON, str(BENCH / "rest_floor.py"), "--host", HOST, "--port", str(port)]), stdout=subprocess.PIPE,
                       stderr=open(opts.run_dir / f"{tag}.rest-floor.log", "wb"), text=True)
    if _readline(proc, 30) != "ready":
        raise RuntimeError("rest_floor.py did not start")
    return proc, f"http://{HOST}:{port}"


def probe_result(procs: Processes, probe: subprocess.Popen, opts: Options, tag: str,
                 out_suffix: str = "probe") -> dict | None:
    try:
        probe.wait(opts.duration + 60)
    except subprocess.TimeoutExpired:
        procs.stop(probe)
    out = opts.run_dir / f"{tag}.{out_suffix}.json"
    return json.loads(out.read_text()) if out.exists() else None


def finish_record(cell: Cell, record: dict, log: str) -> None:
    listener_notes(record, log)
    record["exact"] = exact_counts(cell, record)
    if record.get("backend_cpu_s") is not None and record.get("delivered"):
        record["cpu_s_per_million"] = round(record["backend_cpu_s"] / (record["delivered"] / 1e6), 4)
    if cell.kind == "product" and record.get("backend_cpu_s") is not None and record.get("published"):
        # Per event taken in (ingest cells have no deliveries): what the durable path costs to record.
        record["cpu_s_per_million_events"] = round(record["backend_cpu_s"] / (record["published"] / 1e6), 4)
    if cell.clients and record.get("lost") is not None:
        # The contract allows loss only for a slow client, announced with `gap`: anything else
        # missing was either still queued when the drain timeout ended the run, or lost.
        record["missing_without_gap"] = record["lost"] - record.get("gap_events", 0)
    busy = record.get("machine_busy") or 0
    if busy >= 0.95:
        client_cpu = sum(record.get("client_cpu_s", []))
        record["notes"].append(f"machine saturated ({busy:.0%} of {os.cpu_count()} cores busy): Node clients "
                               f"{client_cpu:.1f} CPU-s, backend {record.get('backend_cpu_s')} CPU-s, generator "
                               f"{record.get('generator_cpu_s')} CPU-s")


def start_profiler(procs: Processes, pid: int, opts: Options, tag: str):
    """py-spy (pip install py-spy into the venv) sampling the backend for this run; collapsed
    stacks go to runs/<tag>.pyspy.txt (read them with bench/profile_top.py)."""
    exe = Path(PYTHON).parent / "py-spy"
    if not exe.exists():
        return None
    return procs.start([str(exe), "record", "--pid", str(pid), "--rate", "250", "--nonblocking", "--format", "raw",
                        "--duration", str(int(opts.duration + opts.drain_s + 30)),
                        "-o", str(opts.run_dir / f"{tag}.pyspy.txt")],
                       stdout=subprocess.DEVNULL, stderr=open(opts.run_dir / f"{tag}.pyspy.log", "wb"))
