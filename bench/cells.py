"""One benchmark cell: a fresh server, its clients, a paced publisher, and what was measured.

A cell is (server kind, async mode, rate, clients) plus flags (REST probe, ingest only). Each
run of a cell gets a freshly started server (so CPU, RSS and counters are its own) and a
flushed Redis (so the aggregate count check sees only this run's events).
"""
from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from processes import (
    BENCH,
    PYTHON,
    Clients,
    Processes,
    Redis,
    RssSampler,
    Server,
    _readline,
    cpu_seconds,
    machine_cpu,
    memory_mb,
    run_generator,
)

from devstack.processes import get_json


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
                + ("-kill" if self.kill else ""))


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
        return run_kill(cell, opts, redis, procs, tag)
    server = Server(procs, cell.kind, redis.url, opts.run_dir / f"{tag}.server.log", **server_settings(cell, opts))
    record: dict = {"cell": cell.key, **asdict(cell), "duration_s": opts.duration, "tag": tag, "notes": []}
    clients = probe = None
    try:  # the finally below stops every process this cell started
        clients = start_clients(cell, opts, procs, server, tag, record)
        record["prefilled"] = prefill(redis, opts.prefill_events) if cell.probe else 0
        wait_settled(server.base, record["prefilled"], timeout=30, product=cell.kind == "product")
        start = Snapshot.take(server.pid, redis)
        spy = start_profiler(procs, server.pid, opts, tag) if opts.profile and cell.kind == "product" else None
        sampler = RssSampler(server.pid)
        sampler.start()
        probe = start_probe(procs, opts, server, tag) if cell.probe else None
        gen = run_generator(procs, redis.url, cell.rate, opts.duration, cell.batch,
                            opts.run_dir / f"{tag}.generator.log", timeout=opts.duration * 3 + 60,
                            transport=cell.transport)
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
        end = Snapshot.take(server.pid, redis)  # the moment the last event was recorded (product)
        if spy:
            procs.stop(spy, timeout=15, sig=signal.SIGINT)  # on SIGINT py-spy writes its profile
        record.update(server_alive=server.alive(), rss_peak_mb=round(sampler.stop(), 1),
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
        if probe:
            record["rest"] = probe_result(procs, probe, opts, tag)
        record.update(summarize_clients(cell, gen["published"], client_results))
    finally:
        for proc in [probe, *(clients.procs_ if clients else [])]:
            if proc:
                procs.stop(proc)
        log = server.stop()
    finish_record(cell, record, log)
    return record


KILL_AT = 0.3  # of the publishing time: the backend is SIGKILLed then ...
RESTART_AFTER_S = 1.0  # ... and started again on the same port this long after


class KillRestart(threading.Thread):
    """After `delay` s: SIGKILL the server, wait RESTART_AFTER_S, start it again on the same port.
    `timeline` holds epoch seconds (killed, restarted, answering) and the CPU figures around it."""

    def __init__(self, server: Server, delay: float, restart):
        super().__init__(daemon=True)
        self.servers, self.delay, self.restart = [server], delay, restart
        self.samplers = [RssSampler(server.pid)]
        self.samplers[0].start()
        self.timeline: dict = {}

    def run(self) -> None:
        first, t = self.servers[0], self.timeline
        try:
            time.sleep(self.delay)
            t["cpu_first"] = cpu_seconds(first.pid)
            t["killed"] = time.time()
            first.kill()
            time.sleep(RESTART_AFTER_S)
            t["restarted"] = time.time()
            again = self.restart(first.port)
            t["answering"] = time.time()
            t["cpu_second_start"] = cpu_seconds(again.pid)
            self.servers.append(again)
            self.samplers.append(RssSampler(again.pid))
            self.samplers[-1].start()
        except Exception as exc:  # reported by the main thread
            t["error"] = repr(exc)

    def done(self) -> Server:
        self.join(60)
        if "error" in self.timeline or len(self.servers) < 2:
            raise RuntimeError(f"the restart failed: {self.timeline.get('error', 'still restarting after 60 s')}")
        return self.servers[-1]

    def cpu_since(self, start: Snapshot, end: Snapshot) -> float | None:
        """Both servers' CPU over the run (the second one's start-up excluded)."""
        t = self.timeline
        if None in (start.cpu, t.get("cpu_first"), t.get("cpu_second_start"), end.cpu):
            return None
        return round(t["cpu_first"] - start.cpu + end.cpu - t["cpu_second_start"], 3)


def run_kill(cell: Cell, opts: Options, redis: Redis, procs: Processes, tag: str) -> dict:
    """The kill cell: publish on the durable path to clients that track positions and resume;
    SIGKILL the backend mid-run and start it again on the same port RESTART_AFTER_S later. Reports
    events lost and duplicated at the clients (both must be 0), the recent list and the aggregates
    exact afterwards, and the time from the restart until every client was whole again."""
    duration = max(opts.duration, opts.kill_min_s)
    settings = server_settings(cell, opts)
    log_path = opts.run_dir / f"{tag}.server.log"
    server = Server(procs, cell.kind, redis.url, log_path, **settings)
    record: dict = {"cell": cell.key, **asdict(cell), "duration_s": duration, "tag": tag, "notes": [], "prefilled": 0}
    drain_s = opts.drain_s + 15  # catching up after the restart comes on top of the usual drain
    clients = switch = None
    try:
        clients = Clients(procs, server.base, cell.clients, 1, opts.run_dir, tag,
                          max_seconds=duration * 3 + drain_s + 120, impl="raw", resume=True)
        record["connected"] = clients.wait_ready(timeout=60)
        wait_settled(server.base, 0, timeout=30)
        start = Snapshot.take(server.pid, redis)
        switch = KillRestart(server, duration * KILL_AT, lambda port: Server(
            procs, cell.kind, redis.url, log_path, port=port, **settings))
        switch.start()
        gen = run_generator(procs, redis.url, cell.rate, duration, cell.batch, opts.run_dir / f"{tag}.generator.log",
                            timeout=duration * 3 + 60, transport=cell.transport)
        again = switch.done()
        record.update(published=gen["published"], generator_cpu_s=round(gen["cpu_s"], 3),
                      generator_rate=round(gen["published"] / max(gen["publishing_s"], 1e-9), 1))
        clients.expect(gen["published"], drain_s)
        client_results = clients.results(timeout=drain_s + 30)
        # The restarted server counts only what it recorded itself: settle on the aggregates.
        deadline = time.monotonic() + opts.drain_s + 15
        while aggregate_count(again.base, start.epoch) < gen["published"] and time.monotonic() < deadline:
            time.sleep(0.1)
        end = Snapshot.take(again.pid, redis)
        record["log_lag"] = confirm_lag(again.base, time.monotonic())
        record["aggregate_count"] = aggregate_count(again.base, start.epoch)
        record.update(recent_check(again.base, gen["published"]))
        health = wait_settled(again.base, 0, timeout=5)
        record.update(end.since(start), backend_cpu_s=switch.cpu_since(start, end), server_alive=again.alive(),
                      rss_peak_mb=round(max(sampler.stop() for sampler in switch.samplers), 1),
                      rss_hwm_mb=round(memory_mb(again.pid).get("VmHWM", 0.0), 1),
                      recorded_after_restart=health.get("recorded"), accepted=health.get("accepted"))
        record.update(summarize_clients(cell, gen["published"], client_results))
        record.update(recovery(switch.timeline, client_results))
    finally:
        for proc in clients.procs_ if clients else []:
            procs.stop(proc)
        last = switch.servers[-1] if switch else server
        log = last.stop() if last.alive() else log_path.read_text(errors="replace")
    finish_record(cell, record, log)
    if record.get("lost") or record.get("duplicates"):
        record["notes"].append(f"kill: {record.get('lost')} events lost and {record.get('duplicates')} duplicated "
                               "at the clients (must both be 0)")
    return record


def recent_check(base: str, published: int) -> dict:
    """/recent after the run: the newest min(published, limit) events, each once, and exactly the
    generator's last ones (its ids end in a sequence number from 1)."""
    limit = min(published, get_json(f"{base}/api/health")["recent_max"])
    events = get_json(f"{base}/api/metrics/recent?limit={limit}")["events"]
    seqs = [int(e["id"].rsplit("-", 1)[1]) for e in events]
    want = set(range(published - limit + 1, published + 1))
    return {"recent_count": len(events), "recent_duplicates": len(seqs) - len(set(seqs)),
            "recent_exact": len(events) == limit and set(seqs) == want}


def recovery(timeline: dict, results: list[dict]) -> dict:
    """Seconds from the restart (the new process started) until the server answered, until every
    client was connected again, and until every client was whole again (clients.mjs: the first
    live packet after its reconnect with no hole below the newest event it holds)."""
    restarted = timeline["restarted"] * 1000
    last_down = last_back = last_whole = None
    never_whole = 0
    for res in results:
        per_client = zip(res.get("downs") or [], res.get("reconnects") or [], res.get("wholes") or [])
        for downs, backs, wholes in per_client:
            back = next((b for b in backs if b >= restarted), None)
            whole = next((w for w in wholes if w >= restarted), None)
            if downs:
                last_down = max(last_down or 0, downs[-1])
            if back is not None:
                last_back = max(last_back or 0, back)
            if whole is None:
                never_whole += 1
            else:
                last_whole = max(last_whole or 0, whole)

    def since_restart(t: float | None) -> float | None:
        return None if t is None else round((t - restarted) / 1000, 3)

    return {"killed_to_restart_s": round(timeline["restarted"] - timeline["killed"], 3),
            "restart_to_answering_s": round(timeline["answering"] - timeline["restarted"], 3),
            "last_client_down_after_kill_s": None if last_down is None else round(last_down / 1000 - timeline["killed"], 3),
            "restart_to_all_reconnected_s": since_restart(last_back),
            "restart_to_all_whole_s": None if never_whole or not results else since_restart(last_whole),
            "clients_never_whole": never_whole}


def server_settings(cell: Cell, opts: Options) -> dict:
    settings = dict(opts.extra_settings)
    if cell.kind == "product":
        settings["ASYNC_MODE"] = cell.mode
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


@dataclass
class Snapshot:
    """Server CPU and machine CPU at one moment; two of them give the run's deltas."""

    cpu: float | None
    machine: tuple[int, int]
    mono: float
    epoch: float
    redis_kills: int

    @classmethod
    def take(cls, pid: int, redis: Redis) -> Snapshot:
        return cls(cpu_seconds(pid), machine_cpu(), time.monotonic(), time.time(), redis.output_buffer_kills())

    def since(self, start: Snapshot) -> dict:
        busy = (self.machine[0] - start.machine[0]) / max(self.machine[1] - start.machine[1], 1)
        cpu = None if self.cpu is None or start.cpu is None else round(self.cpu - start.cpu, 3)
        # machine_busy covers all cores and every process (ours too): on a shared box it tells a
        # contended run from a clean one.
        return {"backend_cpu_s": cpu, "wall_s": round(self.mono - start.mono, 3), "machine_busy": round(busy, 3),
                "loadavg_1m": round(os.getloadavg()[0], 2),
                "redis_output_buffer_disconnects": self.redis_kills - start.redis_kills}


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


def start_probe(procs: Processes, opts: Options, server: Server, tag: str) -> subprocess.Popen:
    return procs.start([PYTHON, str(BENCH / "rest_probe.py"), "--base", server.base, "--requests",
                        str(opts.probe_requests), "--seconds", str(opts.duration * 0.9), "--out",
                        str(opts.run_dir / f"{tag}.probe.json")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def probe_result(procs: Processes, probe: subprocess.Popen, opts: Options, tag: str) -> dict | None:
    try:
        probe.wait(opts.duration + 60)
    except subprocess.TimeoutExpired:
        procs.stop(probe)
    out = opts.run_dir / f"{tag}.probe.json"
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


def exact_counts(cell: Cell, r: dict) -> bool | None:
    """Did every published event reach the server (and, for the product, the recent list and the
    aggregates, once)? The kill cell also asks every client to hold every event, once."""
    if cell.kind != "product":
        return r.get("accepted") == r.get("published")
    if cell.kill:
        return (r.get("aggregate_count") == r.get("published") and r.get("log_lag") == 0
                and bool(r.get("recent_exact")) and r.get("lost") == 0 and r.get("duplicates") == 0)
    ok = r.get("recorded") == r["prefilled"] + r["published"] and r.get("log_lag") == 0
    if cell.transport == "pubsub":  # every channel message was taken in (and bridged into the log)
        ok = ok and r.get("accepted") == r["published"]
    if "aggregate_count" in r:
        ok = ok and r["aggregate_count"] == r["published"]
    return ok


def summarize_clients(cell: Cell, published: int, results: list[dict]) -> dict:
    if not cell.clients:
        return {"expected": 0, "delivered": 0}
    hist: dict[int, int] = {}
    bin_ms, overflow, max_ms = 0.05, 0, 0.0
    received: list[int] = []
    out = {"duplicates": 0, "gaps": 0, "gap_events": 0, "negative_latency": 0, "disconnected": 0,
           "scan_mismatches": 0, "protocol_errors": 0,
           "client_cpu_s": [], "client_busy": [], "client_rss_mb": [], "client_end": []}
    for res in results:
        bin_ms = res["latency"]["bin_ms"]
        for b, n in res["latency"]["bins"]:
            hist[b] = hist.get(b, 0) + n
        overflow += res["latency"]["overflow"]
        max_ms = max(max_ms, res["latency"]["max_ms"])
        received += res["received"]
        for k in ("duplicates", "gaps", "gap_events", "negative_latency", "disconnected"):
            out[k] += res[k]
        for k in ("scan_mismatches", "protocol_errors"):  # raw client only
            out[k] += res.get(k, 0)
        out["client_cpu_s"].append(round(res["cpu_s"], 3))
        out["client_busy"].append(round(res["cpu_s"] / max(res["wall_s"], 1e-9), 3))
        out["client_rss_mb"].append(round(res["peak_rss_mb"], 1))
        out["client_end"].append(res["reason"])
        out["packets"] = out.get("packets", 0) + res.get("packets", 0)
        out["max_batch"] = max(out.get("max_batch", 0), res.get("max_batch", 0))
    expected = published * cell.clients
    delivered = sum(received)
    out.update(expected=expected, delivered=delivered, lost=expected - delivered,
               clients_reporting=len(received), client_cpu_total_s=round(sum(out["client_cpu_s"]), 3),
               min_client_received=min(received) if received else 0,
               **latency_stats(hist, bin_ms, overflow, max_ms))
    return out


def latency_stats(hist: dict[int, int], bin_ms: float, overflow: int, max_ms: float) -> dict:
    total = sum(hist.values()) + overflow
    stats = {"latency_samples": total, "max_ms": round(max_ms, 3) if total else None}
    bins = sorted(hist.items())
    for name, q in (("p50_ms", 0.5), ("p90_ms", 0.9), ("p99_ms", 0.99)):
        target, seen, value = q * total, 0, None
        for b, n in bins:
            seen += n
            if seen >= target:
                value = (b + 0.5) * bin_ms  # bin midpoint: 0.025 ms resolution
                break
        if value is None and total:
            value = max_ms  # the quantile falls among the >120 s overflow
        stats[name] = round(value, 3) if value is not None else None
    return stats


HOUSEKEEPING_S = 2.0  # the recorder refreshes health's `log_lag` this often (recorder.HOUSEKEEPING_EVERY_S)


def wait_settled(base: str, events: int, timeout: float, product: bool = True) -> dict:
    """Poll /api/health until the server took in `events`: for the product, until it *recorded*
    them (into /recent and the aggregates; it records the log, whichever transport brought them);
    for the baselines, until their channel counter shows them."""
    deadline = time.monotonic() + timeout
    last: dict = {}
    while time.monotonic() < deadline:
        try:
            body = get_json(f"{base}/api/health", timeout=5)["events"]
            last = {k: body.get(k) for k in ("accepted", "accepted_http", "recorded", "log_lag")}
            if (body.get("recorded", 0) if product else body["accepted"]) >= events:
                break
        except Exception:  # a busy or dead server: report what we last saw
            pass
        time.sleep(0.05)
    return last


def confirm_lag(base: str, since: float, timeout: float = 15.0) -> int | None:
    """Health's `log_lag` (entries not yet recorded) as the recorder computed it at least one
    housekeeping interval after `since` (monotonic): 0 when the log is recorded to its end.
    Earlier answers may be stale (it is refreshed every HOUSEKEEPING_S; 0 at start)."""
    fresh_from = since + HOUSEKEEPING_S + 0.2
    deadline = fresh_from + timeout
    lag = None
    while time.monotonic() < deadline:
        wait = fresh_from - time.monotonic()
        time.sleep(max(wait, 0.1))
        try:
            lag = get_json(f"{base}/api/health", timeout=5)["events"].get("log_lag")
        except Exception:
            continue
        if lag == 0 and time.monotonic() >= fresh_from:
            return 0
    return lag


def aggregate_count(base: str, since_epoch: float) -> int:
    """`total.count` of a window covering everything since `since_epoch` (the run's start)."""
    window = math.ceil(time.time() - since_epoch) + 2
    return get_json(f"{base}/api/metrics/aggregate?window={window}")["total"]["count"]


def prefill(redis: Redis, n: int) -> int:
    """Publish an hour of history (n events, ts spread over the past hour) so the REST probe
    reads full aggregate buckets, as a real dashboard's one-hour window would."""
    if not n:
        return 0
    from analytics.producer.traffic import Traffic
    from analytics.settings import Settings
    from analytics.stream.durable_log import DurableLog

    settings = Settings()  # the defaults: the bench's servers run with them (STREAM_KEY, STREAM_MAXLEN)
    durable = DurableLog(redis.client, settings.STREAM_KEY, settings.STREAM_MAXLEN)
    traffic = Traffic(["web", "mobile", "api"], seed=7)
    now_ms = time.time() * 1000
    sent = 0
    while sent < n:
        k = min(1000, n - sent)
        events = traffic.events(k, now_ms)
        for i, event in enumerate(events):
            event["id"] = f"prefill-{sent + i}"
            event["ts"] = now_ms - 3_600_000 + (sent + i) * 3_600_000 / n
        durable.append(events)  # into the durable log, as the generator's default path does
        sent += k
    return sent


def check_origin(base: str) -> dict:
    """The backend checks Origin against CORS_ORIGINS. Node's socket.io-client sends none,
    which engineio accepts; a foreign Origin must be refused. Checked once per session."""
    import websocket  # websocket-client: lets us send no Origin, or any Origin

    url = base.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
    out = {}
    for name, kwargs in (("none", {"suppress_origin": True}), ("own", {"origin": base}),
                         ("foreign", {"origin": "http://evil.example"})):
        try:
            ws = websocket.create_connection(url, timeout=5, **kwargs)
            # With WS_SERVER=gevent-websocket the 101 upgrade completes before engineio sees the
            # request, so a refusal shows as a socket closed without Engine.IO's OPEN packet ("0{...}").
            first = ws.recv()
            out[name] = "accepted" if first.startswith("0") else "refused (closed without a session)"
            ws.close()
        except Exception as exc:
            out[name] = f"refused ({type(exc).__name__})"
    out["ok"] = out["none"] == "accepted" and out["own"] == "accepted" and out["foreign"].startswith("refused")
    return out
