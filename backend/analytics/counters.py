"""Prometheus counters: what the service accepted, rejected, delivered and dropped."""
from prometheus_client import Counter, Gauge, Histogram

EVENTS_ACCEPTED = Counter("analytics_events_accepted_total", "Events accepted", ["path"])
EVENTS_REJECTED = Counter("analytics_events_rejected_total", "Events rejected", ["path", "reason"])
EVENTS_CACHED = Counter("analytics_events_cached_total", "Events written to the cache and aggregates")
CACHE_WRITE_ERRORS = Counter("analytics_cache_write_errors_total", "Failed cache pipelines (retried)")
RATE_LIMIT_SYNC_ERRORS = Counter("analytics_rate_limit_sync_errors_total",
                                 "Failed syncs of rate-limit counts to Redis (the hits are retried)")
EMITS = Counter("analytics_socket_emits_total", "Socket.IO `metrics` packets queued to clients")
DELIVERIES = Counter("analytics_socket_event_deliveries_total", "Events queued to clients (events x clients)")
DIRECT_WRITES = Counter("analytics_socket_direct_writes_total",
                        "Packets written straight to a client's WebSocket, not through engineio's queue")
DROPPED_FOR_SLOW_CLIENTS = Counter("analytics_socket_events_dropped_total", "Events dropped for clients over their backlog")
CLIENTS = Gauge("analytics_socket_clients", "Connected Socket.IO clients")
REDIS_RECONNECTS = Counter("analytics_redis_reconnects_total", "Listener reconnects to Redis")
# Connection bounds (analytics/serving): what the gevent server refused, cut short, or could not parse.
HTTP_CONNECTIONS = Gauge("analytics_http_connections", "Open client connections (HTTP and WebSocket)")
HTTP_CONNECTIONS_CAPACITY = Gauge("analytics_http_connections_capacity",
                                  "Connections the server admits in all (from its descriptor limit)")
HTTP_CONNECTIONS_REFUSED = Counter("analytics_http_connections_refused_total",
                                   "Connections refused at accept (reason: per_address, server_full)", ["reason"])
HTTP_CONNECTIONS_TIMED_OUT = Counter("analytics_http_connections_timed_out_total",
                                     "Connections closed for a client too slow (reason: header, body, send, idle)",
                                     ["reason"])
HTTP_MALFORMED_REQUESTS = Counter("analytics_http_malformed_requests_total",
                                  "Requests that could not be parsed, answered 400/414 (reason: bad_request, "
                                  "line_too_long)", ["reason"])


def accepted(path: str) -> int:
    """Events accepted on one path so far, for /api/health."""
    for metric in EVENTS_ACCEPTED.collect():
        for sample in metric.samples:
            if sample.name.endswith("_total") and sample.labels.get("path") == path:
                return int(sample.value)
    return 0


def rejected_by_reason(path: str) -> dict[str, int]:
    """Current reject counts of one path, for /api/health."""
    out = {}
    for metric in EVENTS_REJECTED.collect():
        for sample in metric.samples:
            if sample.name.endswith("_total") and sample.labels.get("path") == path:
                out[sample.labels["reason"]] = int(sample.value)
    return out
LOG_CLAIMS = Counter("analytics_log_claims_total", "Log entries a recorder took over from another (dead or stalled)")
RECORD_FENCED = Counter("analytics_log_fenced_writes_total",
                        "Recorder writes aborted because another recorder had taken their entries over")
LOG_LAG = Gauge("analytics_log_lag_entries", "Log entries not yet recorded (never read by a recorder, or pending)")
LOG_PENDING = Gauge("analytics_log_pending_entries", "Log entries read by a recorder and not yet acknowledged")


def recorded() -> int:
    """Events this replica recorded into the cache and aggregates, for /api/health."""
    for metric in EVENTS_CACHED.collect():
        for sample in metric.samples:
            if sample.name.endswith("_total"):
                return int(sample.value)
    return 0


# The event loop (gevent): how late a timer woke, i.e. the longest any socket or request on the
# loop waited at that moment (analytics/loop_lag.py). Buckets around the budget's 10 ms.
LOOP_LAG = Histogram("analytics_event_loop_lag_seconds", "How late the loop-lag probe's timer woke",
                     buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0))
LOOP_LAG_MAX = Gauge("analytics_event_loop_lag_max_seconds", "Longest event-loop lag since the process started")
LOOP_BLOCKED = Histogram("analytics_event_loop_blocked_seconds",
                         "Each probe lag less the loop thread's wait for a CPU (kernel run delay): how long the "
                         "process itself held the loop (its own work, or the loop's thread waiting for the GIL)",
                         buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0))
LOOP_BLOCKED_MAX = Gauge("analytics_event_loop_blocked_max_seconds",
                         "Longest event-loop block by the process's own work since the process started")
LOOP_DEFERRED = Counter("analytics_event_loop_deferred_total",
                        "Requests and Socket.IO connects that waited for a later loop turn: a crowd arrived at "
                        "once and each turn served a share of it (analytics/loop_turn.py)")
LOOP_CPU_WAIT = Counter("analytics_event_loop_cpu_wait_seconds",
                        "Time the loop's thread was ready to run but waited for a CPU (the kernel's run delay)")
