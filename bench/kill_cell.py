"""The kill cell: the backend SIGKILLed mid-run and restarted; lost, duplicated, time until whole."""
from __future__ import annotations

import threading
import time
from dataclasses import asdict

from cells import Cell, Options, finish_record, server_settings
from measures import Snapshot, aggregate_count, confirm_lag, summarize_clients, wait_settled
from processes import (
    Clients,
    Processes,
    Redis,
    RssSampler,
    Server,
    cpu_seconds,
    memory_mb,
    run_generator,
)

from devstack.processes import get_json

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
        short = record.get("short_clients") or []
        who = "; ".join(f"client {c['index']} lacks {c['missing']} (seq {c['first_missing_runs']}"
                        f"{', never whole again' if c['still_resuming'] else ''})" for c in short[:3])
        record["notes"].append(f"kill: {record.get('lost')} events lost and {record.get('duplicates')} duplicated "
                               f"at the clients (must both be 0){': ' + who if who else ''}")
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
