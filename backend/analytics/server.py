"""Serving the app: a TCP_NODELAY listening socket, and the WSGI server of the async mode."""
from __future__ import annotations

import logging
import signal
import socket

log = logging.getLogger("backend")


def listening_socket(host: str, port: int) -> socket.socket:
    """A listening socket with TCP_NODELAY, which accepted sockets inherit on Linux: without it
    Nagle's algorithm plus delayed ACKs hold the first small packet of a burst for ~40 ms."""
    sock = socket.create_server((host, port), backlog=2048)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def serve(app, socketio, sock: socket.socket, async_mode: str) -> None:
    """Serve until SIGTERM or Ctrl-C."""
    host, port = sock.getsockname()[:2]
    runtime = app.extensions.get("analytics")
    # An app without our runtime (bench/naive_server.py) keeps engineio's own pick under gevent.
    ws_server = runtime.settings.WS_SERVER if runtime else "gevent-websocket"
    log.info("serving on http://%s:%d (async mode %s, WebSocket by %s)", host, port, async_mode, ws_server)
    if async_mode == "gevent":
        from gevent import pywsgi

        if ws_server == "gevent-websocket":
            from geventwebsocket.handler import WebSocketHandler

            server = pywsgi.WSGIServer(sock, app, handler_class=WebSocketHandler, log=None)
        else:  # simple-websocket takes the socket over from pywsgi's own handler
            server = pywsgi.WSGIServer(sock, app, log=None)
        signal.signal(signal.SIGTERM, lambda *_: server.stop(timeout=1))
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
    else:  # threading: Werkzeug's server with simple-websocket, kept for comparison (see README)
        sock.close()
        socketio.run(app, host=host, port=port, allow_unsafe_werkzeug=True, log_output=False)
