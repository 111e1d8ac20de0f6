"""The app factory: binds the extensions and wires the stream:
producers -> durable log (pub/sub bridged in by the listener) -> recorder -> cache -> api;
durable log -> log reader -> batcher -> sockets."""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import redis
from flask import Flask, g
from flask_socketio import SocketIO
from prometheus_client import CONTENT_TYPE_LATEST, PLATFORM_COLLECTOR, REGISTRY, generate_latest

from analytics import redis_tls
from analytics.access import guard
from analytics.access.keys import ProducerKeys
from analytics.access.proxies import TrustedProxies
from analytics.access.tokens import ViewerTokens
from analytics.api import errors, events, health, metrics, openapi
from analytics.api.headers import SecurityHeaders
from analytics.api.limit_counts import SyncedCounts
from analytics.api.limits import install_limits
from analytics.api.redis_status import RedisStatus
from analytics.cache.aggregates import Aggregates
from analytics.cache.recent import RecentEvents
from analytics.cache.recent_mirror import RecentMirror
from analytics.events.series import SeriesCap
from analytics.loop_lag import LoopLagProbe
from analytics.loop_turn import next_turn_for, turn_share_for, when_quiet_for
from analytics.settings import Settings
from analytics.sockets import engineio_adapter
from analytics.sockets.fanout import Fanout, gap_packet
from analytics.sockets.handlers import MetricsNamespace
from analytics.stream.batcher import Batcher
from analytics.stream.durable_log import DurableLog
from analytics.stream.foreign_entries import ForeignEntries
from analytics.stream.lease import Lease
from analytics.stream.listener import Listener
from analytics.stream.log_reader import LogReader
from analytics.stream.recorder import Recorder
from analytics.stream.recorder_thread import BesideLoop, LoopCalls, log_with_own_client

log = logging.getLogger(__name__)
socketio = SocketIO()
# python_info names the interpreter's exact version: nothing a scraper needs, much an attacker wants.
try:
    REGISTRY.unregister(PLATFORM_COLLECTOR)
except KeyError:  # already (the module imported twice)
    pass


@dataclass
class Runtime:
    """What the views and background tasks share; one per app."""

    settings: Settings
    redis: redis.Redis
    recent: RecentEvents
    aggregates: Aggregates
    log: DurableLog
    series: SeriesCap
    fanout: Fanout | None = None
    listener: Listener | None = None
    bridge_lease: Lease | None = None
    reader: LogReader | None = None
    recorder: Recorder | None = None
    batcher: Batcher | None = None
    loop_lag: LoopLagProbe | None = None
    redis_status: RedisStatus | None = None
    limit_counts: SyncedCounts | None = None  # None: RATE_LIMIT_SYNC_MS=0, every hit counted in Redis
    loop_calls: LoopCalls | None = None  # under gevent: what the recorder's thread hands to the loop's
    recorder_thread: BesideLoop | None = None  # under gevent: the recorder's own thread
    # Called before a request, once read, is served and before a Socket.IO connect is handled:
    # under gevent a crowd of them takes a share of each loop turn (loop_turn.TurnShare).
    crowd_share: Callable[[], None] = lambda: None

    def busy(self) -> bool:
        """Whether a stream task is still finishing work it holds (the recorder's transaction), or
        the recorder's own thread has not ended yet (after stop(): within one blocking read)."""
        return bool(self.recorder and self.recorder.busy) or bool(self.recorder_thread and
                                                                  self.recorder_thread.running)

    def stop(self) -> None:
        for part in (self.listener, self.reader, self.recorder, self.batcher, self.loop_lag, self.redis_status,
                     self.limit_counts, self.loop_calls):
            if part:
                part.stop()
        if self.bridge_lease:
            try:
                self.bridge_lease.release()  # another replica bridges pub/sub from now on, not in LEASE_MS
            except (redis.RedisError, OSError):
                pass


# Connections to Redis per backend process: the blocking reads (log reader, recorder, listener)
# hold one each, every request or catch-up in flight one for its round trip. Past it, a request
# waits for a free one (up to REDIS_POOL_WAIT_S, then 503) instead of failing.
REDIS_POOL_SIZE = 200
REDIS_POOL_WAIT_S = 5.0


def connect_redis(settings: Settings) -> redis.Redis:
    pool = redis_tls.waiting_pool(settings, REDIS_POOL_SIZE, REDIS_POOL_WAIT_S, socket_connect_timeout=2,
                                  socket_timeout=5, socket_keepalive=True, health_check_interval=30)
    return redis.Redis(connection_pool=pool)


def create_app(settings: Settings | None = None, start_stream: bool = True) -> Flask:
    settings = settings or Settings.from_env()
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.INGEST_MAX_BYTES
    app.json.sort_keys = False
    if settings.TRUSTED_PROXIES:
        # Behind nginx (compose) every request comes from the proxy: take the client address
        # from X-Forwarded-For, so rate limits apply per client, not to everyone at once; but
        # only from a peer in TRUSTED_PROXY_NETWORKS, where the proxy is (access/proxies.py).
        app.wsgi_app = TrustedProxies(app.wsgi_app, settings.TRUSTED_PROXIES, settings.TRUSTED_PROXY_NETWORKS)
    client = connect_redis(settings)
    series = SeriesCap(client, f"{settings.AGG_PREFIX}:series", settings.MAX_SERIES, time.time)
    # Entries the product did not write are held to the schema and the series cap on read.
    durable_log = DurableLog(client, settings.STREAM_KEY, settings.STREAM_MAXLEN, ForeignEntries(series.admit))
    recent = RecentEvents(client, settings.RECENT_KEY, settings.RECENT_MAX, RecentMirror(settings.RECENT_MAX))
    runtime = Runtime(settings, client, recent,
                      Aggregates(client, settings.AGG_PREFIX), durable_log, series)
    runtime.redis_status = RedisStatus(client, series.key, socketio.sleep)
    runtime.aggregates.reader.pause = next_turn_for(settings.ASYNC_MODE)  # a long window read lets others run
    app.extensions["analytics"] = runtime

    errors.register_error_handlers(app)

    # Server-Timing: the time spent in the app, so a slow response can be told apart from a
    # slow network or a busy client (browsers' dev tools show it; the benchmark records it).
    @app.before_request
    def start_timer():
        g.started = time.perf_counter()

    @app.after_request
    def server_timing(response):
        if "started" in g:
            response.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - g.started) * 1000:.2f}"
        return response
    # One Limiter per app (a shared one keeps every app's limits), its counts in Redis.
    keys = ProducerKeys(settings.API_KEYS)
    limiter = install_limits(app, settings, [metrics.bp, events.bp, openapi.bp], events.bp, keys,
                             runtime.redis.connection_pool)
    if isinstance(limiter.storage, SyncedCounts):
        runtime.limit_counts = limiter.storage
    guard.install(app, settings, keys)
    for bp in (metrics.bp, events.bp, openapi.bp):
        app.register_blueprint(bp)
    limiter.exempt(health.bp)
    app.register_blueprint(health.bp)

    @app.get("/metrics")
    @limiter.exempt
    def prometheus():
        refused = guard.may_scrape_metrics(settings)
        if refused:
            return refused
        return generate_latest(), 200, {"Content-Type": CONTENT_TYPE_LATEST}

    socketio.init_app(app, async_mode=settings.ASYNC_MODE, cors_allowed_origins=origin_check(settings.CORS_ORIGINS),
                      max_http_buffer_size=64 * 1024, logger=False, engineio_logger=False)
    why_not = engineio_adapter.install_websocket(socketio.server.eio, settings.WS_SERVER, settings.DIRECT_WRITES)
    if why_not:
        log.warning("direct WebSocket writes are off: %s", why_not)
    # A crowd connecting at once (dashboards after a restart) takes a share of each loop turn.
    runtime.crowd_share = turn_share_for(settings.ASYNC_MODE)
    engineio_adapter.before_connect(socketio.server, runtime.crowd_share)
    runtime.fanout = Fanout(engineio_adapter.Clients(socketio.server), settings.CLIENT_BACKLOG)
    socketio.on_namespace(MetricsNamespace(runtime.fanout, runtime.log, socketio, ViewerTokens.from_settings(settings)))
    app.wsgi_app = SecurityHeaders(app.wsgi_app)  # outermost: Socket.IO's answers get them too
    if start_stream:
        start_stream_tasks(runtime)
    return app


def origin_check(allowed: list[str]) -> Callable[[str | None, dict], bool]:
    """Socket.IO origins: the dashboards in CORS_ORIGINS, and the server's own origin, as
    Flask-SocketIO allows by default (python-socketio's client sends the URL it connects to as
    its Origin). A client that sends no Origin is not a browser and is let through by engineio."""
    if "*" in allowed:
        return lambda origin, environ: True
    listed = set(allowed)

    def check(origin: str | None, environ: dict) -> bool:
        if origin in listed:
            return True
        host = environ.get("HTTP_HOST")
        return host is not None and origin == f"{environ.get('wsgi.url_scheme', 'http')}://{host}"

    return check


def start_stream_tasks(runtime: Runtime) -> None:
    """Start the listener, the log reader, the recorder and the batcher as Socket.IO background tasks."""
    eio = socketio.server.eio
    settings = runtime.settings
    clients = runtime.fanout.clients
    yield_to_io = when_quiet_for(settings.ASYNC_MODE)  # between the stream tasks' steps: in the loop's quiet moments
    # Deliveries and the log reads that feed them (live and resumes) take turns, never wait for quiet.
    runtime.log.pause = next_turn_for(settings.ASYNC_MODE)
    runtime.fanout.pause = next_turn_for(settings.ASYNC_MODE)

    def overflow(n: int) -> None:
        log.error("batcher backlog overflow: %d events dropped for every client", n)
        for eio_sid in clients.all():
            runtime.fanout.send_one(eio_sid, gap_packet(n))

    runtime.batcher = Batcher(runtime.fanout.deliver, settings.BATCH_MS, eio.create_event(),
                              socketio.sleep, clients=clients.count,
                              send_budget=settings.SEND_BUDGET, on_overflow=overflow)
    mirror = runtime.recent.mirror

    def deliver(entries: list) -> None:  # the mirror first: the batcher may drop for slow clients
        mirror.add(entries)
        runtime.batcher.add(entries)

    runtime.reader = LogReader(runtime.log, deliver, socketio.sleep, yield_to_io=yield_to_io,
                               on_start=runtime.fanout.start_at)
    if settings.ASYNC_MODE == "gevent":  # on a thread of its own: its steps would hold the loop (recorder_thread.py)
        runtime.loop_calls = LoopCalls()
        runtime.recorder = Recorder(log_with_own_client(runtime.log, runtime.series, connect_redis(settings)),
                                    runtime.recent, runtime.aggregates, settings.STREAM_RETENTION_S, time.sleep,
                                    series_key=runtime.series.key,
                                    on_written=partial(runtime.loop_calls, runtime.aggregates.note_written))
    else:  # threading: a background task is a thread already
        runtime.recorder = Recorder(runtime.log, runtime.recent, runtime.aggregates, settings.STREAM_RETENTION_S,
                                    socketio.sleep, yield_to_io=yield_to_io, series_key=runtime.series.key)
    runtime.bridge_lease = Lease(runtime.redis, f"{settings.STREAM_KEY}:bridge")
    runtime.listener = Listener(runtime.redis, settings.METRICS_CHANNEL, [runtime.log.append_many], socketio.sleep,
                                yield_to_io=yield_to_io, active=runtime.bridge_lease.held,
                                admit=lambda events: runtime.series.admit(events, "channel"))
    if runtime.loop_calls:
        runtime.recorder_thread = BesideLoop(runtime.recorder.run).start()
    else:
        socketio.start_background_task(runtime.recorder.run)
    for task in (runtime.batcher.run, runtime.reader.run, runtime.listener.run, runtime.redis_status.run):
        socketio.start_background_task(task)
    if runtime.limit_counts is not None:
        socketio.start_background_task(runtime.limit_counts.run, settings.RATE_LIMIT_SYNC_MS / 1000, socketio.sleep)
    if settings.ASYNC_MODE == "gevent":  # threading has no one loop to measure
        runtime.loop_lag = LoopLagProbe()
        runtime.loop_lag.start()
