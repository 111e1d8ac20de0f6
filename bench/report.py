"""Writes a benchmark result: latest.json (everything), latest.md (budget table) and latency.png.

Budget lines are DESIGN.md's "Performance budget"; each is judged on the median of the
repeats, and the naive baseline's figure from the same run stands beside it.
"""
from __future__ import annotations

import json
from pathlib import Path

BUSY = 0.9  # a Node client process above this CPU share is the bottleneck, not the backend
MS = "{:.2f} ms"


def find(rows: list[dict], rate: int, clients: int, kind: str = "product", mode: str = "gevent",
         role: str | None = None) -> dict | None:
    for row in rows:
        # Without a role asked, the cross-check rows (socket.io-client, WebSocket servers, the
        # pub/sub transport, the kill cell) never stand in for a cell.
        role_ok = row["role"] not in ("client", "ws", "transport", "kill") if role is None else row["role"] == role
        if (row["rate"], row["clients"], row["kind"], row["mode"]) == (rate, clients, kind, mode) and \
                role_ok and not row["probe"]:
            return row
    return None


def budget_lines(result: dict) -> list[dict]:
    """(what, budget, measured, baseline, met) for every line of DESIGN.md's budget."""
    rows = result["medians"]
    lines = []

    def add(what: str, budget: str, row: dict | None, field: str, limit: float, higher_is_better=False,
            base_row: dict | None = None, fmt="{:.2f}", extra: str = ""):
        value = row.get(field) if row else None
        base = base_row.get(field) if base_row else None
        met = None if value is None else (value >= limit if higher_is_better else value <= limit)
        lines.append({"what": what, "budget": budget, "measured": None if value is None else fmt.format(value),
                      "baseline": None if base is None else fmt.format(base), "met": met,
                      "note": "; ".join(filter(None, [extra, harness_note(row)]))})

    quiet, quiet_naive = find(rows, 100, 10), find(rows, 100, 10, kind="naive")
    floor = next((r for r in rows if r["kind"] == "floor"), None)
    forward = find(rows, 100, 10, kind="forward")
    for q, limit in (("p50", 1.0), ("p99", 3.0)):
        floors = [f"one hop (publisher -> Redis -> a bare Python subscriber): {q} {floor[q + '_ms']:.2f} ms"
                  if floor and floor.get(q + "_ms") is not None else "",
                  f"two hops (the same into a bare forwarder, bench/ws_forward.py, -> the same 10 clients): "
                  f"{q} {forward[q + '_ms']:.2f} ms" if forward and forward.get(q + "_ms") is not None else ""]
        add(f"100 ev/s x 10 clients: {q}", f"<= {limit:.0f} ms", quiet, f"{q}_ms", limit, base_row=quiet_naive, fmt=MS,
            extra="floors on this machine: " + "; ".join(filter(None, floors)) if any(floors) else "")
    mid, mid_naive = find(rows, 1000, 100), find(rows, 1000, 100, kind="naive")
    add("1,000 ev/s x 100 clients: p99", "<= 20 ms", mid, "p99_ms", 20.0, base_row=mid_naive, fmt=MS)
    high, high_naive = find(rows, 10_000, 100), find(rows, 10_000, 100, kind="naive")
    add("10,000 ev/s x 100 clients: p99", "<= 50 ms", high, "p99_ms", 50.0, base_row=high_naive, fmt=MS)
    add("10,000 ev/s x 100 clients: lost (median per run)", "0", high, "lost", 0, base_row=high_naive,
        fmt="{:,.0f}", extra=(f"median per run: {high.get('gap_events', 0):,.0f} dropped for slow clients and announced with "
               f"`gap`, {high.get('missing_without_gap', 0):,.0f} not received by the end of the drain timeout; "
               f"duplicates {high.get('duplicates_total')}") if high else "")
    add("10,000 ev/s x 100 clients: backend RSS peak", "<= 200 MB", high, "rss_peak_mb", 200.0,
        base_row=high_naive, fmt="{:.0f} MB")
    add("10,000 ev/s x 100 clients: backend CPU-s per million deliveries", "<= 0.5", high, "cpu_s_per_million",
        0.5, base_row=high_naive, fmt="{:.3f}")
    pair = next((r for r in result.get("transport_ratios", []) if (r["rate"], r["clients"]) == (10_000, 100)), None)
    add("10,000 ev/s x 100 clients: backend CPU per delivery, durable log / pub/sub (same run)", "<= 1.2",
        {"v": pair.get("cpu_s_per_million_log_over_pubsub")} if pair else None, "v", 1.2, fmt="{:.2f}x",
        extra=(f"median of {pair['pairs']} paired runs; on this branch pub/sub input is bridged into the log, "
               "so the pub/sub cell pays the log path plus the bridge") if pair else "")
    add("10,000 ev/s x 100 clients: max latency (no stall)", "<= 100 ms", high, "max_ms", 100.0, base_row=high_naive,
        fmt=MS)
    add("10,000 ev/s x 100 clients: event loop blocked by the backend's own work, max", "<= 10 ms", high,
        "loop_blocked_max_ms", 10.0, fmt=MS,
        extra=(f"the backend's probe (/metrics), since the server started: the timer's lateness less the loop "
               f"thread's wait for a CPU (kernel run delay); {high.get('loop_blocked_max_before_ms')} ms before the "
               f"measured window, <= {high.get('loop_blocked_window_max_le_ms')} ms in it. Wall-clock lag max "
               f"{high.get('loop_lag_max_ms')} ms (p99 {high.get('loop_lag_p99_ms')} ms); the loop waited "
               f"{high.get('loop_cpu_wait_s')} s for a CPU in the window")
        if high and high.get("loop_blocked_max_ms") is not None else "")
    add("stretch: 20,000 ev/s x 100 clients: p99", "<= 100 ms", find(rows, 20_000, 100), "p99_ms", 100.0, fmt=MS)
    # Capacity is what the backend sustains with exact counts when offered more than the line asks:
    # at exactly 100,000 offered, events / (publishing + settle time) can only land a hair under
    # it, however idle the backend. The highest exact cell is the figure; every cell is in the note.
    ingests = [r for r in rows if r["role"] == "ingest"]
    exact = [r for r in ingests if r.get("exact_all") and r.get("ingest_rate")]
    ingest = max(exact or ingests, key=lambda r: r.get("ingest_rate") or 0, default=None)
    cells = "; ".join(f"offered {r['rate']:,}: publisher reached {r.get('generator_rate', 0):,.0f}, backend "
                      f"{r.get('ingest_rate') or 0:,.0f} ev/s, cache settled {1000 * (r.get('settle_after_publish_s') or 0):.0f}"
                      f" ms after the last publish, exact in {r.get('exact_runs')} runs" for r in ingests)
    add("ingest only (no clients): events/s into cache + aggregates", ">= 100,000 ev/s", ingest, "ingest_rate",
        100_000, higher_is_better=True, fmt="{:,.0f}", extra=cells)
    if ingest and not ingest["exact_all"]:
        lines[-1]["met"] = False
    rest = next((r for r in rows if r["role"] == "rest"), None)
    # The first budget's two lines, then the line added after it (DESIGN.md): health and recent at 5 ms.
    for ep, what, limit in (("aggregate_3600", "/api/metrics/aggregate?window=3600 p99", 20.0),
                            ("recent_200", "/api/metrics/recent?limit=200 p99", 10.0),
                            ("health", "/api/health p99", 5.0),
                            ("recent_200", "/api/metrics/recent?limit=200 p99", 5.0)):
        probe_row = {"value": rest["rest"][ep]["p99_ms"]} if rest and rest.get("rest") else None
        add(f"{what} while ingesting {rest['rate']:,} ev/s" if rest else what, f"<= {limit:.0f} ms", probe_row,
            "value", limit, fmt=MS, extra=rest_floor_note(rest))
    return lines


def rest_floor_note(rest: dict | None) -> str:
    """What a request costs on this machine under the same load with no product code: the bare
    gevent server probed beside the product (bench/rest_floor.py), and how busy the machine was."""
    floor = ((rest or {}).get("rest_floor") or {}).get("health")
    if not floor or floor.get("p99_ms") is None:
        return ""
    return (f"floor on this machine: a bare gevent WSGI server beside it, same load (bench/rest_floor.py): "
            f"p99 {floor['p99_ms']:.2f} ms; machine busy {rest.get('machine_busy', 0):.0%}, "
            f"CPU steal {rest.get('machine_steal', 0):.0%}")


def harness_note(row: dict | None) -> str:
    if not row:
        return ""
    notes = []
    if (row.get("client_busy_max") or 0) >= BUSY:
        notes.append(f"harness-bound: a Node client process at {row['client_busy_max']:.0%} CPU")
    if (row.get("machine_busy") or 0) >= 0.95:
        notes.append(f"machine saturated ({row['machine_busy']:.0%} busy; Node clients "
                     f"{row.get('client_cpu_total_s', 0):.1f} CPU-s vs backend {row.get('backend_cpu_s', 0):.1f}): "
                     "harness and backend share the CPU")
    notes += [n for n in row.get("notes", []) if "publisher-bound" in n]
    return "; ".join(notes)


def markdown(result: dict) -> str:
    m = result["machine"]
    out = [f"# Benchmark results ({result['profile']}, {result['duration_s']:g} s per cell, "
           f"median of {result['repeat']})", "",
           f"{m['date']} on {m['nproc']} x {m['cpu_model']}; Python {m['python']}, Node {m['node']}, "
           f"redis {m['redis']}. Load average {m['loadavg_start'][0]:.2f} at start, {m['loadavg_end'][0]:.2f} at end; "
           f"took {m['elapsed_s']:.0f} s. Socket.IO Origin check: {m.get('origin_check')}."
           + (f" Code: commit {m['commit']}{' with local changes' if m.get('tree_modified') else ''}."
              if m.get("commit") else ""), "",
           "## Budget (DESIGN.md)", "",
           "| line | budget | product | naive per-event baseline (same run) | met | note |",
           "|---|---|---|---|---|---|"]
    for line in budget_lines(result):
        met = {True: "met", False: "**NOT met**", None: "not measured"}[line["met"]]
        out.append(f"| {line['what']} | {line['budget']} | {line['measured'] or '-'} | {line['baseline'] or '-'} "
                   f"| {met} | {line['note']} |")
    if result["ratios"]:
        out += ["", "## Baseline ratios (naive / product, per repeat in the same run, median)", "",
                "| cell | pairs | delivered: product / naive | p50 | p99 | CPU-s per million deliveries |",
                "|---|---|---|---|---|---|"]
        for r in result["ratios"]:
            # A baseline that delivered only a fraction has latencies of the few events it sent:
            # its ratio would flatter it, so it is shown as what it is.
            caveat = " (naive figure covers only the events it delivered)" if r.get("naive_delivered_pct", 100) < 99 else ""
            out.append(f"| {r['rate']:,} ev/s x {r['clients']} | {r['pairs']} | {r.get('product_delivered_pct')}% / "
                       f"{r.get('naive_delivered_pct')}% | {r['p50_naive_over_product']}{caveat} "
                       f"| {r['p99_naive_over_product']}{caveat} | {r['cpu_per_million_naive_over_product']} |")
    out += ["", "## Every cell (medians)", "",
            "| cell | published | delivered / expected | lost | dup | gap events | p50 | p90 | p99 | max (ms) "
            "| backend CPU-s | CPU-s / M deliv. | RSS peak MB | busiest client proc CPU | generator CPU-s | exact counts "
            "| notes |", "|" + "---|" * 17]
    for r in result["medians"]:
        def f(k, fmt="{:g}", r=r):
            v = r.get(k)
            return "-" if v is None else fmt.format(v)
        out.append(
            f"| {r['cell']} | {f('published', '{:,.0f}')} | {f('delivered', '{:,.0f}')} / {f('expected', '{:,.0f}')} "
            f"| {f('lost', '{:,.0f}')} | {r['duplicates_total']} | {f('gap_events', '{:,.0f}')} | {f('p50_ms')} "
            f"| {f('p90_ms')} | {f('p99_ms')} | {f('max_ms')} | {f('backend_cpu_s')} | {f('cpu_s_per_million')} "
            f"| {f('rss_peak_mb')} | {f('client_busy_max', '{:.0%}')} | {f('generator_cpu_s')} "
            f"| {r.get('exact_runs', r['exact_all'])} | {'; '.join(r['notes'])} |")
    checks = [(find(result["medians"], r["rate"], r["clients"]), r) for r in result["medians"] if r["role"] == "client"]
    if checks:
        out += ["", "## The light client against socket.io-client (same cells)", "",
                "The matrix uses bench/clients.mjs --impl raw (Socket.IO over `ws`, one regex scan per distinct "
                "packet). These cells rerun with the real socket.io-client, which JSON-parses every event in "
                "every client, to show what the harness choice changes.", "",
                "| cell | client | p50 | p99 | max (ms) | delivered / expected | client CPU-s (all procs) "
                "| backend CPU-s |", "|---|---|---|---|---|---|---|---|"]
        for raw, sio in checks:
            for name, row in (("raw (ws)", raw), ("socket.io-client", sio)):
                if row:
                    out.append(f"| {row['rate']:,} ev/s x {row['clients']} | {name} | {row.get('p50_ms')} "
                               f"| {row.get('p99_ms')} | {row.get('max_ms')} | {row.get('delivered', 0):,.0f} / "
                               f"{row.get('expected', 0):,.0f} | {row.get('client_cpu_total_s')} "
                               f"| {row.get('backend_cpu_s')} |")
    asyncs = [(find(result["medians"], rate, 100), find(result["medians"], rate, 100, mode="threading"))
              for rate in (1000, 10_000)]
    if any(t for _, t in asyncs):
        out += ["", "## Async modes (100 clients)", "",
                "| rate | mode | p50 | p99 | max | lost | backend CPU-s / M deliv. | RSS peak MB |",
                "|---|---|---|---|---|---|---|---|"]
        for g, t in asyncs:
            for row in (g, t):
                if row:
                    out.append(f"| {row['rate']:,} | {row['mode']} | {row.get('p50_ms')} | {row.get('p99_ms')} "
                               f"| {row.get('max_ms')} | {row.get('lost', 0):,.0f} | {row.get('cpu_s_per_million')} "
                               f"| {row.get('rss_peak_mb')} |")
    out += loop_lags(result["medians"])
    out += transports(result)
    out += kills(result["medians"])
    out += ws_servers(result["medians"])
    rest = next((r for r in result["medians"] if r["role"] == "rest" and r.get("rest")), None)
    if rest:
        out += ["", f"## REST while ingesting {rest['rate']:,} ev/s (after an hour of prefilled history)", "",
                "| endpoint | requests | errors | p50 | p90 | p99 | max (ms) | in the app (Server-Timing): p50 / p99 |",
                "|---|---|---|---|---|---|---|---|"]
        for ep, v in rest["rest"].items():
            app = (f"{v['app_p50_ms']:.2f} / {v['app_p99_ms']:.2f}" if v.get("app_p50_ms") is not None else "-")
            out.append(f"| {ep} | {v['n']:.0f} | {v['errors']:.0f} | {v['p50_ms']:.2f} | {v['p90_ms']:.2f} "
                       f"| {v['p99_ms']:.2f} | {v['max_ms']:.2f} | {app} |")
        floor = (rest.get("rest_floor") or {}).get("health")
        if floor:
            out.append(f"| floor: bench/rest_floor.py, a bare gevent server beside it | {floor['n']:.0f} "
                       f"| {floor['errors']:.0f} | {floor['p50_ms']:.2f} | {floor['p90_ms']:.2f} | {floor['p99_ms']:.2f} "
                       f"| {floor['max_ms']:.2f} | - |")
        if "health" in rest["rest"]:
            out += ["", "`health` answers from a Redis check made in the background: what any request of the "
                    "product pays under this load. The floor is what a request costs on this machine under the same "
                    "load with no product code (no Flask, no stream tasks on its loop)."]
    if result["problems"]:
        out += ["", "## Incomplete", ""] + [f"- {p}" for p in result["problems"]]
    out += ["", "Latency = client receive time - event `ts` (publish time), same machine clock. "
            "\"harness-bound\": the Node client process was the bottleneck, so the figure bounds the backend "
            "from above. Raw per-run records: latest.json `runs`; logs: runs/ (not committed).", ""]
    return "\n".join(out)


def loop_lags(rows: list[dict]) -> list[str]:
    """The product's event-loop lag probe per cell (backend/analytics/loop_lag.py, read from /metrics)."""
    lag_rows = [r for r in rows if r.get("loop_lag_max_ms") is not None]
    if not lag_rows:
        return []
    out = ["", "## Event loop lag (product cells)", "",
           "How late the backend's 5 ms probe timer woke (`analytics_event_loop_lag_seconds` in /metrics): the "
           "longest any socket or request on the gevent loop waited at that moment. *Blocked* is the part of "
           "each lag left after the loop thread's wait for a CPU (the kernel's run delay, "
           "`analytics_event_loop_blocked_seconds`): what the backend's own work held the loop, as opposed to "
           "the benchmark's clients and publisher taking the machine's 2 cores. p99: the probe's wakes during "
           "the measured window (interpolated in the histogram's bucket). max: the longest since the server "
           "started (fresh per cell), so it covers the clients connecting; the window's own longest is known "
           "to its histogram bucket (<=). Budget: never blocked over 10 ms.", "",
           "| cell | probe wakes | lag p99 (ms) | lag max (ms) | blocked p99 (ms) | blocked, window (ms) "
           "| blocked max (ms) | waited for a CPU in the window (s) |",
           "|---|---|---|---|---|---|---|---|"]
    for r in lag_rows:
        out.append(f"| {r['cell']} | {r.get('loop_lag_samples', 0):,.0f} | {r.get('loop_lag_p99_ms')} "
                   f"| {r['loop_lag_max_ms']} | {r.get('loop_blocked_p99_ms')} "
                   f"| <= {r.get('loop_blocked_window_max_le_ms')} | {r.get('loop_blocked_max_ms')} "
                   f"| {r.get('loop_cpu_wait_s')} |")
    return out


def transports(result: dict) -> list[str]:
    """The durable log (the generator's default) beside pub/sub, the same cells in the same run."""
    pairs = result.get("transport_ratios") or []
    if not pairs:
        return []
    rows = result["medians"]
    out = ["", "## Durable vs pub/sub (the same product, the same run)", "",
           "`log`: the generator appends to the durable log (XADD); `pubsub`: it PUBLISHes on the channel "
           "and one replica bridges each message into the log. Either way the backend reads the log, fans it "
           "out and records it (consumer group). The ratio is durable / pub/sub, per repeat, median; the "
           "budget is CPU per delivery <= 1.2x.", "",
           "| cell | transport | p50 | p99 | max (ms) | lost | CPU-s / M deliv. (ingest: / M events) | ingest ev/s "
           "| exact counts |", "|---|---|---|---|---|---|---|---|---|"]
    for pair in pairs:
        for transport in ("log", "pubsub"):
            row = next((r for r in rows if r["kind"] == "product" and r["mode"] == "gevent" and r.get("transport") ==
                        transport and (r["rate"], r["clients"], r.get("batch") or 0) ==
                        (pair["rate"], pair["clients"], pair["batch"]) and r["role"] in ("matrix", "ingest", "transport")),
                       None)
            if row:
                out.append(f"| {row['rate']:,} ev/s x {row['clients']} | {transport} | {row.get('p50_ms', '-')} "
                           f"| {row.get('p99_ms', '-')} | {row.get('max_ms', '-')} | {row.get('lost', 0):,.0f} "
                           f"| {row.get(pair['cpu_field'])} "
                           f"| {'-' if row['clients'] else format(row.get('ingest_rate') or 0, ',.0f')} "
                           f"| {row.get('exact_runs')} |")
        out.append(f"| {pair['rate']:,} ev/s x {pair['clients']} | **log / pubsub** "
                   f"| {pair.get('p50_ms_log_over_pubsub')}x | {pair.get('p99_ms_log_over_pubsub')}x "
                   f"| {pair.get('max_ms_log_over_pubsub')}x | | **{pair.get(pair['cpu_field'] + '_log_over_pubsub')}x** "
                   f"| {'' if pair['clients'] else str(pair.get('ingest_rate_log_over_pubsub')) + 'x'} "
                   f"| {pair['pairs']} pair(s) |")
    return out


def kills(rows: list[dict]) -> list[str]:
    """The kill cell: SIGKILL mid-run, restart on the same port, resuming clients."""
    kill_rows = [r for r in rows if r.get("kill")]
    if not kill_rows:
        return []
    out = ["", "## Backend SIGKILLed mid-run (resuming clients)", "",
           "The backend is SIGKILLed at 30% of the publishing time and started again on the same port 1 s later; "
           "the generator keeps appending to the log. The clients (raw, `positions`) reconnect every 100-250 ms "
           "and resume from their last position. Whole = a client's first live packet after its reconnect with "
           "no hole below the newest event it holds. Latencies include the events held back while the backend "
           "was down. Lost and duplicates must be 0; the recent list and the aggregates must be exact.", "",
           "| cell | published | lost at clients | dup | aggregate count | /recent exact | log lag after | restart -> "
           "answering (s) | restart -> all reconnected (s) | restart -> all whole (s) | p50 / p99 / max (ms) "
           "| exact runs |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in kill_rows:
        out.append(f"| {r['cell']} | {r.get('published', 0):,.0f} | {r.get('lost_total')} | {r.get('duplicates_total')} "
                   f"| {r.get('aggregate_count', 0):,.0f} | {r.get('recent_exact_runs')} | {r.get('log_lag')} "
                   f"| {r.get('restart_to_answering_s')} | {r.get('restart_to_all_reconnected_s')} "
                   f"| {r.get('restart_to_all_whole_s')} | {r.get('p50_ms')} / {r.get('p99_ms')} / {r.get('max_ms')} "
                   f"| {r.get('exact_runs')} |")
    return out


def ws_servers(rows: list[dict]) -> list[str]:
    """The product cell (simple-websocket, direct writes) beside gevent-websocket and engineio's queue."""
    pairs = [(find(rows, rate, clients), [r for r in rows if r["role"] == "ws" and (r["rate"], r["clients"]) ==
                                          (rate, clients)]) for rate, clients in ((100, 10), (1000, 100), (10_000, 100))]
    if not any(ws for _, ws in pairs):
        return []
    out = ["", "## WebSocket servers under gevent (WS_SERVER; `-queued`: DIRECT_WRITES off)", "",
           "| cell | p50 | p99 | max | lost | backend CPU-s / M deliv. | RSS peak MB |", "|---|---|---|---|---|---|---|"]
    for product, ws in pairs:
        for row in ([product] if product else []) + ws:
            out.append(f"| {row['cell']} | {row.get('p50_ms')} | {row.get('p99_ms')} | {row.get('max_ms')} "
                       f"| {row.get('lost', 0):,.0f} | {row.get('cpu_s_per_million')} | {row.get('rss_peak_mb')} |")
    return out


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=80)
    rows = [r for r in result["medians"] if r.get("p99_ms") is not None and r["mode"] == "gevent"
            and r["role"] not in ("client", "floor", "ws", "transport", "kill")]
    colors = {1: "tab:blue", 10: "tab:orange", 100: "tab:green"}
    for kind, style in (("product", "-"), ("naive", "--")):
        for clients in sorted({r["clients"] for r in rows}):
            # A server that delivered under half of what it owed has a p99 of the few events it
            # sent, which would look good: leave it off the line and say so.
            pts = sorted((r["rate"], r["p99_ms"]) for r in rows if r["kind"] == kind and r["clients"] == clients
                         and _accounted(r) >= 0.5)
            for r in rows:
                if r["kind"] == kind and r["clients"] == clients and _accounted(r) < 0.5:
                    ax.annotate(f"{kind} {clients} cl.: delivered {100 * r['delivered'] / r['expected']:.2g}%",
                                (r["rate"], max(r["p99_ms"], 1.0)), fontsize=6, color=colors.get(clients), ha="right")
            if pts:
                ax.plot([p[0] for p in pts], [max(p[1], 0.01) for p in pts], style, marker="o" if kind == "product"
                        else "x", color=colors.get(clients), label=f"{kind}, {clients} clients")
    for y, label in ((3, "budget 3 ms"), (20, "20 ms"), (50, "50 ms")):
        ax.axhline(y, color="grey", lw=0.6, ls=":")
        ax.text(100, y * 1.08, label, fontsize=7, color="grey")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("events per second")
    ax.set_ylabel("latency p99 (ms)")
    ax.set_title(f"End-to-end p99 ({result['profile']}, {result['duration_s']:g} s/cell, median of {result['repeat']})",
                 fontsize=9)
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _accounted(row: dict) -> float:
    """Share of the deliveries owed that arrived or were announced as dropped (`gap`)."""
    return (row.get("delivered", 0) + (row.get("gap_events") or 0)) / max(row.get("expected", 0), 1)


def write(result: dict, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    result["budget"] = budget_lines(result)
    (out_dir / "latest.json").write_text(json.dumps(result, indent=1, default=str))
    (out_dir / "latest.md").write_text(markdown(result))
    plot(result, out_dir / "latency.png")


if __name__ == "__main__":  # re-render the report from a saved latest.json
    import sys

    from run import medians, ratios, transport_ratios  # the summary is recomputed from the raw runs

    src = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent / "results" / "latest.json"
    saved = json.loads(src.read_text())
    saved["medians"], saved["ratios"] = medians(saved["runs"]), ratios(saved["runs"])
    saved["transport_ratios"] = transport_ratios(saved["runs"])
    write(saved, src.parent)
