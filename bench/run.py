"""The benchmark: `python bench/run.py [--full | --quick | --smoke] [--duration S] [--repeat K]`.

Starts its own redis-server, then for every cell of the matrix a fresh server (the product
backend or the naive per-event baseline), Node Socket.IO clients and the paced generator;
writes bench/results/latest.{json,md} and latency.png, raw logs under bench/results/runs/.
--smoke checks only that results are complete (exit 1 if not), never timings.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
VENV_PY = HERE.parent / ".venv" / "bin" / "python"
# The orchestrator imports the backend's schema/traffic for the prefill: run it on the venv.
if Path(sys.prefix).resolve() != VENV_PY.parent.parent.resolve() and VENV_PY.exists() and "BENCH_REEXEC" not in os.environ:
    os.environ["BENCH_REEXEC"] = "1"
    os.execv(str(VENV_PY), [str(VENV_PY), *sys.argv])

import processes  # noqa: E402
from cells import Cell, Options, run_cell  # noqa: E402
from measures import check_origin  # noqa: E402
from processes import Processes, Redis, Server  # noqa: E402

RESULTS = HERE / "results"
NUMERIC_SKIP = {"rate", "clients", "batch", "duration_s", "server_nice"}


def matrix(profile: str) -> list[Cell]:
    """The cells of a profile, in the order they run within one repeat. Baselines run right
    after the product cell they compare to, so both see the same machine state. Product cells
    use the durable log (the generator's default); a `-pubsub` cell right after its log cell
    publishes on the channel instead (bridged into the log), for the durable-vs-pub/sub table."""
    if profile == "smoke":
        return [Cell(100, 1, kind="floor", role="floor"), Cell(100, 2, kind="forward", role="floor"), Cell(100, 2),
                Cell(100, 2, transport="pubsub", role="transport"),
                Cell(100, 2, kind="naive", role="baseline"),
                Cell(1000, 10),
                Cell(1000, 10, client="socketio", role="client"),
                Cell(20_000, 0, batch=500, role="ingest"), Cell(1000, 0, probe=True, role="rest"),
                Cell(200, 5, kill=True, role="kill")]
    # The floors: one hop (a bare subscriber), then two (a bare forwarder to the same clients).
    cells: list[Cell] = [Cell(100, 1, kind="floor", role="floor"), Cell(100, 1, kind="forward", role="floor"),
                         Cell(100, 10, kind="forward", role="floor")]
    baselines = {(100, 10), (1000, 100), (10_000, 100)}
    for rate in (100, 1000, 10_000):
        for clients in (1, 10, 100):
            cells.append(Cell(rate, clients))
            if (rate, clients) in baselines:  # the same producer on pub/sub, then the naive server
                cells.append(Cell(rate, clients, transport="pubsub", role="transport"))
                cells.append(Cell(rate, clients, kind="naive", role="baseline"))
            if (rate, clients) in {(1000, 100), (10_000, 100)}:
                cells.append(Cell(rate, clients, mode="threading", role="async"))
            if (rate, clients) in baselines:  # the other WebSocket server, and engineio's queue alone
                cells.append(Cell(rate, clients, ws_server="gevent-websocket", role="ws"))
                cells.append(Cell(rate, clients, direct_writes=False, role="ws"))
    # The same cells with the real socket.io-client: shows what the light client changes.
    cells.append(Cell(100, 10, client="socketio", role="client"))
    cells.append(Cell(1000, 100, client="socketio", role="client"))
    cells.append(Cell(20_000, 100, role="stretch"))
    # Ingest at the budget's rate (the line), on the log and on pub/sub, then offered faster.
    cells.append(Cell(100_000, 0, batch=500, role="ingest"))
    cells.append(Cell(100_000, 0, batch=500, transport="pubsub", role="transport"))
    # 20% over the line: enough to measure capacity above it, not so much that a 60 s backlog
    # passes Redis's pub/sub output buffer limit, which would end in a dropped subscription.
    cells.append(Cell(120_000, 0, batch=500, role="ingest"))
    cells.append(Cell(10_000, 0, probe=True, role="rest"))
    # What access control costs on the hot path: HTTP ingest without and with producer keys, and
    # the REST probe above again with viewer tokens on (compare with the rest cell).
    cells.append(Cell(100_000, 0, batch=500, producer="http", role="auth"))
    cells.append(Cell(100_000, 0, batch=500, producer="http", auth=True, role="auth"))
    cells.append(Cell(10_000, 0, probe=True, auth=True, role="auth"))
    # SIGKILL the backend mid-run, restart it: resuming clients must end whole (0 lost, 0 dup).
    cells.append(Cell(1000, 100, kill=True, role="kill"))
    return cells


def machine_info() -> dict:
    def cmd(*argv: str) -> str:
        try:
            return subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False).stdout.strip()
        except OSError:
            return "unavailable"

    model = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                  if ln.startswith("model name")), platform.processor())
    return {"nproc": os.cpu_count(), "cpu_model": model, "python": platform.python_version(),
            "node": cmd("node", "--version"), "redis": cmd("redis-server", "--version").split(" v=")[-1].split()[0],
            "kernel": platform.release(), "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "loadavg_start": os.getloadavg(),
            # The code measured: the commit, and whether the working tree differed from it.
            "commit": cmd("git", "-C", str(Path(__file__).parent.parent), "rev-parse", "--short", "HEAD"),
            "tree_modified": bool(cmd("git", "-C", str(Path(__file__).parent.parent), "status", "--porcelain", "--",
                                      "backend", "bench"))}


def medians(runs: list[dict]) -> list[dict]:
    """One row per cell: the median of every numeric figure over its repeats."""
    by_cell: dict[str, list[dict]] = {}
    for run in runs:
        by_cell.setdefault(run["cell"], []).append(run)
    rows = []
    for group in by_cell.values():
        row = {k: group[0].get(k) for k in ("cell", "rate", "clients", "kind", "mode", "batch", "probe", "role",
                                             "transport", "kill")}
        row["repeats"] = len(group)
        for k, v in group[0].items():
            if k in NUMERIC_SKIP or isinstance(v, bool) or not isinstance(v, (int, float)):
                continue
            values = [g[k] for g in group if isinstance(g.get(k), (int, float))]
            if values:
                row[k] = round(statistics.median(values), 4)
        for k in ("client_busy", "client_cpu_s"):  # per Node process: the busiest one matters
            values = [max(g[k]) for g in group if g.get(k)]
            if values:
                row[k + "_max"] = round(statistics.median(values), 3)
        row["exact_all"] = all(g.get("exact") for g in group)
        row["exact_runs"] = f"{sum(bool(g.get('exact')) for g in group)}/{len(group)}"
        if any("recent_exact" in g for g in group):  # the kill cell's /recent check
            row["recent_exact_runs"] = f"{sum(bool(g.get('recent_exact')) for g in group)}/{len(group)}"
        row["lost_total"] = sum(g.get("lost", 0) or 0 for g in group)
        row["duplicates_total"] = sum(g.get("duplicates", 0) or 0 for g in group)
        row["notes"] = summarize_notes(group)
        for probe in ("rest", "rest_floor"):  # the product's REST probe, and the floor server's
            if any(g.get(probe) for g in group):
                row[probe] = probe_medians(group, probe)
        rows.append(row)
    return rows


def probe_medians(group: list[dict], probe: str) -> dict | None:
    """Per endpoint, the median over repeats of each rest_probe.py figure."""
    if not group[0].get(probe):
        return None

    def median_of(ep: str, k: str, missing):
        values = [g[probe][ep][k] for g in group if g.get(probe) and g[probe][ep].get(k) is not None]
        return statistics.median(values) if values else missing

    # The app's own time (Server-Timing) stays None when no run recorded it.
    return {ep: {**{k: median_of(ep, k, 0) for k in ("p50_ms", "p90_ms", "p99_ms", "max_ms", "n", "errors")},
                 **{k: median_of(ep, k, None) for k in ("app_p50_ms", "app_p99_ms")}}
            for ep in group[0][probe]}


def summarize_notes(group: list[dict]) -> list[str]:
    """One line per kind of note: repeats say the same thing with different numbers."""
    kinds = {"machine saturated": [], "publisher-bound": []}
    other: set[str] = set()
    for g in group:
        for note in g["notes"]:
            kind = next((k for k in kinds if note.startswith(k)), None)
            if kind:
                kinds[kind].append(g)
            else:
                other.add(note)
    out = []
    if kinds["machine saturated"]:
        busy = statistics.median(g.get("machine_busy") or 0 for g in group)
        out.append(f"machine saturated in {len(kinds['machine saturated'])}/{len(group)} runs (median {busy:.0%} "
                   "of all cores busy)")
    if kinds["publisher-bound"]:
        rate = statistics.median(g.get("generator_rate") or 0 for g in kinds["publisher-bound"])
        out.append(f"publisher-bound in {len(kinds['publisher-bound'])}/{len(group)} runs "
                   f"(generator reached {rate:,.0f} ev/s)")
    return out + sorted(other)


def ratios(runs: list[dict]) -> list[dict]:
    """Naive / product for each baseline cell, per repeat (same moment), then the median."""
    out = []
    pairs: dict[tuple, dict[int, dict]] = {}
    for run in runs:
        if run["mode"] != "gevent" or run["role"] in ("client", "floor", "ws", "transport", "kill"):
            continue
        pairs.setdefault((run["rate"], run["clients"]), {}).setdefault(run["repeat"], {})[run["kind"]] = run
    for (rate, clients), by_repeat in sorted(pairs.items()):
        both = [v for v in by_repeat.values() if "naive" in v and "product" in v]
        if not both:
            continue

        out.append({"rate": rate, "clients": clients, "pairs": len(both),
                    "naive_delivered_pct": _delivered_pct(both, "naive"),
                    "product_delivered_pct": _delivered_pct(both, "product"),
                    "p50_naive_over_product": _ratio(both, "p50_ms"), "p99_naive_over_product": _ratio(both, "p99_ms"),
                    "cpu_per_million_naive_over_product": _ratio(both, "cpu_s_per_million")})
    return out


def transport_ratios(runs: list[dict]) -> list[dict]:
    """Durable log / pub/sub for each product cell run on both, per repeat (same moment), then
    the median: p50, p99, max, CPU-s per million deliveries (per million events for ingest)."""
    pairs: dict[tuple, dict[int, dict]] = {}
    for run in runs:
        if run["kind"] != "product" or run["mode"] != "gevent" or run["role"] not in ("matrix", "ingest", "transport"):
            continue
        key = (run["rate"], run["clients"], run.get("batch") or 0)
        pairs.setdefault(key, {}).setdefault(run["repeat"], {})[run.get("transport", "log")] = run
    out = []
    for (rate, clients, batch), by_repeat in sorted(pairs.items()):
        # _ratio divides the "naive" run's figure by the "product" one's: here log by pub/sub.
        both = [{"naive": v["log"], "product": v["pubsub"]} for v in by_repeat.values() if "log" in v and "pubsub" in v]
        if not both:
            continue
        cpu = "cpu_s_per_million" if clients else "cpu_s_per_million_events"
        out.append({"rate": rate, "clients": clients, "batch": batch, "pairs": len(both), "cpu_field": cpu,
                    **{f"{f}_log_over_pubsub": _ratio(both, f) for f in ("p50_ms", "p99_ms", "max_ms", cpu,
                                                                         "ingest_rate")}})
    return out


def _delivered_pct(pairs: list[dict], kind: str) -> float:
    return round(statistics.median(100 * p[kind].get("delivered", 0) / max(p[kind].get("expected", 1), 1)
                                   for p in pairs), 2)


def _ratio(pairs: list[dict], field: str) -> float | None:
    vals = [p["naive"][field] / p["product"][field] for p in pairs if p["naive"].get(field) and p["product"].get(field)]
    return round(statistics.median(vals), 2) if vals else None


def complete(runs: list[dict], cells: list[Cell], repeat: int) -> list[str]:
    """What makes a result incomplete (smoke fails on these, never on timings)."""
    problems = []
    for cell in cells:
        got = [r for r in runs if r["cell"] == cell.key]
        if len(got) != repeat:
            problems.append(f"{cell.key}: {len(got)} of {repeat} runs")
        for r in got:
            if not r.get("published"):
                problems.append(f"{cell.key}: nothing published")
            if cell.clients and not r.get("delivered"):
                problems.append(f"{cell.key}: zero deliveries")
            if cell.clients and r.get("p99_ms") is None:
                problems.append(f"{cell.key}: no latency figures")
            if r.get("scan_mismatches") or r.get("protocol_errors"):
                problems.append(f"{cell.key}: the raw client misread {r.get('scan_mismatches')} sampled packet(s) "
                                f"and {r.get('protocol_errors')} frame(s): its figures cannot be trusted")
            if r.get("backend_cpu_s") is None:
                problems.append(f"{cell.key}: no backend CPU figure")
            if cell.kind == "product" and r.get("recorded") is None and r.get("aggregate_count") is None:
                problems.append(f"{cell.key}: no health counts")
            # The durable path promises exact counts (pub/sub does not: Redis may drop a slow
            # subscriber): a non-exact count fails the run, whatever the profile; a slow one never.
            if cell.kind == "product" and cell.transport == "log" and r.get("published") and not r.get("exact"):
                problems.append(f"{cell.key}: counts not exact ({exact_detail(r)})")
            if cell.kind == "product" and r.get("duplicates"):
                problems.append(f"{cell.key}: {r['duplicates']} duplicate deliveries at the clients")
            if cell.probe and not (r.get("rest") and all(v["n"] for v in r["rest"].values())):
                problems.append(f"{cell.key}: REST probe missing")
            if cell.kind == "product" and cell.mode == "gevent" and not cell.kill and not r.get("loop_lag_samples"):
                problems.append(f"{cell.key}: no event-loop lag samples in the backend's /metrics")
            if not r.get("server_alive", False):
                problems.append(f"{cell.key}: server died during the run")
    return problems


def exact_detail(r: dict) -> str:
    keys = ("published", "prefilled", "recorded", "accepted", "log_lag", "aggregate_count", "recent_exact", "lost",
            "duplicates")
    return ", ".join(f"{k} {r.get(k)}" for k in keys if k in r)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    profile = parser.add_mutually_exclusive_group()
    profile.add_argument("--full", dest="profile", action="store_const", const="full", help="60 s per cell (default)")
    profile.add_argument("--quick", dest="profile", action="store_const", const="quick", help="a few seconds per cell")
    profile.add_argument("--smoke", dest="profile", action="store_const", const="smoke",
                         help="tiny matrix, ~15-20 s: checks results are complete, never timings")
    parser.add_argument("--duration", type=float, help="seconds of publishing per cell (overrides the profile)")
    parser.add_argument("--repeat", type=int, help="runs per cell; medians are reported (3 full, 1 otherwise)")
    parser.add_argument("--only", default="", help="comma-separated roles to run: floor,matrix,baseline,ws,"
                        "async,client,stretch,ingest,rest,transport,kill,auth (default all)")
    parser.add_argument("--cells", default="", help="comma-separated substrings of cell keys to run, e.g. "
                        "product-gevent-10000x100")
    parser.add_argument("--profile", dest="profile_backend", action="store_true",
                        help="sample the product backend with py-spy (writes runs/<cell>.pyspy.txt; "
                        "pip install py-spy into .venv)")
    parser.add_argument("--client-procs", type=int, default=0, help="Node processes for the clients (0 = auto)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a backend setting for every product server, e.g. --set SEND_BUDGET=5000 "
                        "(to measure a lever; repeatable)")
    parser.add_argument("--server-nice", type=int, default=0,
                        help="niceness of the servers under test and their Redis (the harness runs at 0); "
                        "0 = all equal (bench/processes.py SYSTEM_NICE)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where latest.{json,md} and latency.png go")
    args = parser.parse_args()
    args.out = args.out.resolve()  # the Node clients run in bench/: a relative path would point elsewhere
    args.profile = args.profile or "full"
    args.duration = args.duration or {"full": 60.0, "quick": 4.0, "smoke": 1.5}[args.profile]
    args.repeat = args.repeat or (3 if args.profile == "full" else 1)
    if args.profile in ("smoke", "quick") and args.out == RESULTS:
        # Only a full run replaces the committed results: `make test` and `make bench-quick` never do.
        args.out = RESULTS / "runs" / args.profile
    return args


def select(args: argparse.Namespace) -> list[Cell]:
    cells = matrix(args.profile)
    if args.only:
        cells = [c for c in cells if c.role in set(args.only.split(","))]
    if args.cells:
        cells = [c for c in cells if any(w in c.key for w in args.cells.split(","))]
    return cells


def run_all(cells: list[Cell], opts: Options, repeat: int, info: dict) -> list[dict]:
    """Every cell, `repeat` times; every process is gone when this returns, even on Ctrl-C."""
    procs = Processes()
    runs: list[dict] = []
    redis = None
    try:
        redis = Redis(procs)
        probe_server = Server(procs, "product", redis.url, opts.run_dir / "origin-check.server.log")
        info["origin_check"] = check_origin(probe_server.base)
        probe_server.stop()
        total = len(cells) * repeat
        for rep in range(repeat):
            for cell in cells:
                tag = f"{cell.key}.r{rep}"
                print(f"[{len(runs) + 1}/{total}] {cell.key} repeat {rep + 1}/{repeat} ...", end=" ", flush=True)
                try:
                    record = run_cell(cell, opts, redis, procs, tag)
                except Exception as exc:  # one broken cell must not lose the others' results
                    print(f"FAILED: {exc}", flush=True)
                    continue
                record["repeat"] = rep
                runs.append(record)
                print(one_line(record), flush=True)
    except KeyboardInterrupt:
        print("\ninterrupted: stopping every process; writing what was measured", flush=True)
    finally:
        procs.close()
        if redis:
            redis.cleanup()
    return runs


def main() -> int:
    args = parse_args()
    cells = select(args)
    run_dir = args.out / "runs"
    run_dir.mkdir(parents=True, exist_ok=True)
    opts = Options(duration=args.duration, drain_s=max(3.0, min(15.0, args.duration * 0.25)), run_dir=run_dir,
                   probe_requests=20 if args.profile == "smoke" else 300, client_procs=args.client_procs,
                   prefill_events=3600 if args.profile == "smoke" else 36_000, profile=args.profile_backend,
                   extra_settings=dict(kv.split("=", 1) for kv in args.set),
                   # smoke: a short kill cell (the restart lands near the end; the catch-up completes it)
                   kill_min_s=3.0 if args.profile == "smoke" else 6.0)
    # SIGTERM (e.g. from make or CI) unwinds like Ctrl-C so every child is stopped.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    processes.SYSTEM_NICE = args.server_nice
    info = machine_info()
    info["server_nice"] = args.server_nice
    started = time.monotonic()
    runs = run_all(cells, opts, args.repeat, info)
    info["loadavg_end"] = os.getloadavg()
    info["elapsed_s"] = round(time.monotonic() - started, 1)
    result = {"machine": info, "profile": args.profile, "duration_s": args.duration, "repeat": args.repeat,
              "drain_s": opts.drain_s, "cells": [asdict(c) | {"key": c.key} for c in cells],
              "medians": medians(runs), "ratios": ratios(runs), "transport_ratios": transport_ratios(runs),
              "runs": runs}
    problems = complete(runs, cells, args.repeat)
    if not info.get("origin_check", {}).get("ok"):
        problems.append(f"origin check: {info.get('origin_check')}")
    result["problems"] = problems
    (args.out / "latest.json").write_text(json.dumps(result, indent=1, default=str))  # kept even if plotting fails
    import report

    report.write(result, args.out)
    print(f"wrote {args.out / 'latest.json'}, latest.md, latency.png in {info['elapsed_s']} s")
    for problem in problems:
        print(f"INCOMPLETE: {problem}", file=sys.stderr)
    return 1 if problems else 0


def one_line(r: dict) -> str:
    parts = [f"published {r.get('published')}"]
    if r.get("clients"):
        parts.append(f"delivered {r.get('delivered')}/{r.get('expected')} dup {r.get('duplicates')} "
                     f"gap-dropped {r.get('gap_events')} p50 {r.get('p50_ms')} p99 {r.get('p99_ms')} "
                     f"max {r.get('max_ms')} ms")
    parts.append(f"cpu {r.get('backend_cpu_s')} s ({r.get('cpu_s_per_million')} /M) rss {r.get('rss_peak_mb')} MB")
    if r.get("clients"):
        parts.append(f"clients busy {r.get('client_busy')}")
    if r["role"] in ("ingest", "auth") and not r.get("probe") or (r["role"] == "transport" and not r.get("clients")):
        parts.append(f"ingest {r.get('ingest_rate')} ev/s exact {r.get('exact')}")
    if r.get("kill"):
        parts.append(f"kill: lost {r.get('lost')} dup {r.get('duplicates')} aggregate {r.get('aggregate_count')} "
                     f"recent exact {r.get('recent_exact')} lag {r.get('log_lag')}; restart -> answering "
                     f"{r.get('restart_to_answering_s')} s, all reconnected {r.get('restart_to_all_reconnected_s')} s, "
                     f"all whole {r.get('restart_to_all_whole_s')} s")
    if r.get("rest"):
        parts.append("rest p99 " + ", ".join(f"{k} {v['p99_ms'] and round(v['p99_ms'], 2)} ms"
                                             for k, v in r["rest"].items()))
    if r.get("rest_floor"):
        parts.append(f"floor health p99 {round(r['rest_floor']['health']['p99_ms'] or 0, 2)} ms")
    if r.get("machine_steal") is not None:
        parts.append(f"steal {r['machine_steal']:.0%}")
    if r["notes"]:
        parts.append("; ".join(r["notes"]))
    return " | ".join(parts)


if __name__ == "__main__":
    sys.exit(main())
