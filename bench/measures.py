"""What a cell measured: CPU snapshots, settling on the durable path, exact counts, client latency
summaries, and the prefill and Origin checks the runner does once."""
from __future__ import annotations

import math
import os
import re
import time
import urllib.request
from dataclasses import dataclass
from typing import TYPE_CHECKING

from processes import (
    Redis,
    cpu_seconds,
    machine_cpu,
)

from devstack.processes import get_json

if TYPE_CHECKING:
    from cells import Cell


@dataclass
class Snapshot:
    """Server CPU and machine CPU at one moment; two of them give the run's deltas."""

    cpu: float | None
    machine: tuple[int, int, int]
    mono: float
    epoch: float
    redis_kills: int
    loop_lag: dict | None = None  # the product's loop-lag probe (read_loop_lag), when given its URL

    @classmethod
    def take(cls, pid: int, redis: Redis, base: str | None = None) -> Snapshot:
        return cls(cpu_seconds(pid), machine_cpu(), time.monotonic(), time.time(), redis.output_buffer_kills(),
                   read_loop_lag(base) if base else None)

    def since(self, start: Snapshot) -> dict:
        total = max(self.machine[1] - start.machine[1], 1)
        busy = (self.machine[0] - start.machine[0]) / total
        cpu = None if self.cpu is None or start.cpu is None else round(self.cpu - start.cpu, 3)
        # machine_busy covers all cores and every process (ours too): on a shared box it tells a
        # contended run from a clean one.
        out = {"backend_cpu_s": cpu, "wall_s": round(self.mono - start.mono, 3), "machine_busy": round(busy, 3),
               "machine_steal": round((self.machine[2] - start.machine[2]) / total, 3),
               "loadavg_1m": round(os.getloadavg()[0], 2),
               "redis_output_buffer_disconnects": self.redis_kills - start.redis_kills}
        if self.loop_lag and start.loop_lag:
            out.update(loop_lag_between(start.loop_lag, self.loop_lag))
        return out


def read_loop_lag(base: str) -> dict | None:
    """The backend's loop-lag probe from /metrics: cumulative histogram buckets (upper bound in
    seconds -> count) and the longest since the process started, of the wall-clock lag and of the
    part of it the process's own work held the loop (`blocked`: the lag less the loop thread's wait
    for a CPU); None if it has none."""
    try:
        with urllib.request.urlopen(f"{base}/metrics", timeout=5) as response:
            text = response.read().decode()
    except OSError:
        return None
    out = {}
    for kind in ("lag", "blocked"):
        buckets = {float(le): float(n) for le, n in
                   re.findall(rf'^analytics_event_loop_{kind}_seconds_bucket\{{le="([^"]+)"\}} (\S+)$', text, re.M)}
        peak = re.search(rf"^analytics_event_loop_{kind}_max_seconds (\S+)$", text, re.M)
        if buckets and peak:
            out[kind] = {"buckets": buckets, "max_s": float(peak[1])}
    wait = re.search(r"^analytics_event_loop_cpu_wait_seconds_total (\S+)$", text, re.M)
    if wait:
        out["cpu_wait_s"] = float(wait[1])
    return out if "lag" in out else None


def loop_lag_between(before: dict, after: dict) -> dict:
    """The probe's wakes between two reads: their p99 (interpolated inside its histogram bucket,
    as Prometheus's histogram_quantile does), the bucket bound their longest stayed under, and
    the longest since the server started (it is fresh per cell, so that covers the clients'
    connecting too; `..._max_before_ms`, read when the measured window began, tells whether the
    longest came before it). For the wall-clock lag (`loop_lag_*`) and the part the process's
    own work held the loop (`loop_blocked_*`)."""
    out = {}
    for kind in ("lag", "blocked"):
        if kind in before and kind in after:
            out.update(_histogram_between(f"loop_{kind}", before[kind], after[kind]))
    if "cpu_wait_s" in before and "cpu_wait_s" in after:
        out["loop_cpu_wait_s"] = round(after["cpu_wait_s"] - before["cpu_wait_s"], 3)
    return out


def _histogram_between(name: str, before: dict, after: dict) -> dict:
    bounds = sorted(after["buckets"])
    counts = [after["buckets"][b] - before["buckets"].get(b, 0.0) for b in bounds]
    total = counts[-1] if counts else 0.0
    # The window's own longest lag is known only to its bucket: the bound of the lowest bucket
    # that holds every wake of the window.
    window_max = next((b for b, c in zip(bounds, counts) if total and c >= total), None)
    p99 = None
    if total:
        target, lower, below = 0.99 * total, 0.0, 0.0
        for bound, cumulative in zip(bounds, counts):
            if cumulative >= target:
                if math.isinf(bound):  # beyond the last finite bucket: its lower edge is all we know
                    p99 = lower
                else:
                    p99 = lower + (bound - lower) * (target - below) / max(cumulative - below, 1e-9)
                break
            lower, below = bound, cumulative
    return {f"{name}_samples": int(total), f"{name}_p99_ms": None if p99 is None else round(p99 * 1000, 2),
            f"{name}_window_max_le_ms": None if window_max is None else round(window_max * 1000, 2),
            f"{name}_max_ms": round(after["max_s"] * 1000, 2),
            f"{name}_max_before_ms": round(before["max_s"] * 1000, 2)}


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
        out.setdefault("short_clients", []).extend(res.get("short_clients") or [])  # clients.mjs: who lacks what
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
