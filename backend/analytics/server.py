"""Serving the app: a TCP_NODELAY listening socket, and the WSGI server of the async mode."""
from __future__ import annotations

import logging
import signal
import socket
import time

from analytics.settings import Settings

log = logging.getLogger("backend")


def listening_socket(host: str, port: int) -> socket.socket:
    """A listening socket with TCP_NODELAY, which accepted sockets inherit on Linux: without it
    Nagle's algorithm plus delayed ACKs hold the first small packet of a burst for ~40 ms."""
    sock = socket.create_server((host, port), backlog=2048)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


STOP_GRACE_S = 3.0  # of the 5 s an orchestrator gives after SIGTERM: the rest is margin


def graceful_stop(server, socketio, runtime) -> None:
    """Stop accepting, let the stream tasks finish what they hold, say goodbye to every Socket.IO
    client with a real disconnect (they reconnect elsewhere and resume), then stop serving."""
    import gevent

    started = time.monotonic()
    log.info("stopping: no new connections; finishing the stream tasks")
    server.stop_accepting()
    if runtime is None:  # an app without our stream (bench/naive_server.py)
        server.stop(timeout=1)
        return
    runtime.stop()
    clients = runtime.fanout.clients
    for sid in clients.sids():
        socketio.server.disconnect(sid, namespace="/")
    # Writer greenlets send the disconnect packets and close frames; in-flight requests finish.
    while time.monotonic() - started < STOP_GRACE_S and (runtime.busy() or clients.count()):
        gevent.sleep(0.05)
    server.stop(timeout=max(0.1, STOP_GRACE_S - (time.monotonic() - started)))
    log.info("stopped in %.2fs", time.monotonic() - started)


def serve(app, socketio, sock: socket.socket, async_mode: str) -> None:
    """Serve until SIGTERM or Ctrl-C, then stop gracefully (graceful_stop)."""
    host, port = sock.getsockname()[:2]
    runtime = app.extensions.get("analytics")
    # An app without our runtime (bench/naive_server.py) keeps engineio's own pick under gevent.
    ws_server = runtime.settings.WS_SERVER if runtime else "gevent-websocket"
    log.info("serving on http://%s:%d (async mode %s, WebSocket by %s)", host, port, async_mode, ws_server)
    if async_mode == "gevent":
        import gevent

        from analytics.serving.bounded_server import bounded_server

        # Bounded connections (analytics/serving): admission per address and under the descriptor
        # limit, deadlines for headers, bodies and idle keep-alive; simple-websocket (or
        # gevent-websocket's handler) takes an upgraded socket over with none of them.
        settings = runtime.settings if runtime else Settings.model_construct()  # the naive server: defaults
        server = bounded_server(sock, app, settings, ws_server, runtime.crowd_share if runtime else None)
        stopping = []

        def on_signal():
            if not stopping:
                stopping.append(gevent.spawn(graceful_stop, server, socketio, runtime))

        for sig in (signal.SIGTERM, signal.SIGINT):
            gevent.signal_handler(sig, on_signal)
        server.serve_forever()
        if stopping:
            stopping[0].join(timeout=STOP_GRACE_S + 1)
    else:  # threading: Werkzeug's server with simple-websocket, kept for comparison (see README)
        sock.close()
        socketio.run(app, host=host, port=port, allow_unsafe_werkzeug=True, log_output=False)
