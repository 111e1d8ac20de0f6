"""gevent's WSGIServer with admission at accept time and the bounded handler (handler.py)."""
from __future__ import annotations

import logging
from collections.abc import Callable

from gevent import pywsgi

from analytics import counters
from analytics.serving.admission import Admission, capacity_for_fd_limit
from analytics.serving.handler import (
    TimeBounds,
    bounded_handler_class,
    bounded_log,
    error_bytes,
    quiet_engineio_body_timeouts,
)

log = logging.getLogger("analytics.serving")
REFUSED_RETRY_AFTER_S = 1


class BoundedErrorLog:
    """pywsgi's error log (and wsgi.errors) as a file-like object: each line goes through the
    rate-limited log instead of straight to stderr."""

    def write(self, message: str) -> None:
        if message.strip():
            bounded_log.warning("wsgi-errors", "%s", message.strip()[:300])

    def flush(self) -> None:
        pass

    def writelines(self, lines) -> None:
        for line in lines:
            self.write(line)


class BoundedWSGIServer(pywsgi.WSGIServer):
    """Refuses a connection over its address's cap or the server's capacity before reading a
    byte of it (503 JSON, then closed), and hands the others to the bounded handler."""

    # Connections accepted per turn of the loop (gevent's default: 100). 100 clients connecting at
    # once held the loop for one long turn (blocks of 10-20 ms sampled in engine.io's handshake
    # and WebSocket set-up). Accepting fewer per turn was not enough: their requests arrive later,
    # together, and were all served in one turn. So each request, once read, also waits for its
    # share of a turn (`share`, loop_turn.TurnShare; in the handler) before the app runs.
    max_accept = 10

    def __init__(self, listener, application, bounds: TimeBounds, admission: Admission, ws_server: str,
                 share: Callable[[], None] | None = None):
        super().__init__(listener, application, handler_class=bounded_handler_class(ws_server), log=None,
                         error_log=BoundedErrorLog())
        self.bounds = bounds
        self.admission = admission
        self.share = share or (lambda: None)
        counters.HTTP_CONNECTIONS_CAPACITY.set(admission.capacity)

    def do_handle(self, sock, address):
        # Called by the accept loop (in the hub) before any greenlet exists for the connection: a
        # refused one is answered and closed before the next accept, so a flood cannot pile up
        # descriptors waiting their turn to be refused (it did, up to EMFILE, when refused later).
        peer = peer_of(address)
        refused = self.admission.admit(peer)
        if refused:
            refuse(sock, peer, refused)
            return
        counters.HTTP_CONNECTIONS.inc()
        try:
            super().do_handle(sock, address)  # spawns handle() below
        except BaseException:
            self._release(peer)
            raise

    def handle(self, sock, address):
        try:
            super().handle(sock, address)
        finally:
            self._release(peer_of(address))

    def _release(self, peer: str) -> None:
        counters.HTTP_CONNECTIONS.dec()
        self.admission.release(peer)


def peer_of(address) -> str:
    return str(address[0]) if isinstance(address, tuple) else str(address)


def refuse(sock, peer: str, reason: str) -> None:
    """503 and close, without waiting: this runs in the hub, which must never block."""
    counters.HTTP_CONNECTIONS_REFUSED.labels(reason).inc()
    # Logging does not switch greenlets (its lock is never held across a switch), so the hub may log.
    bounded_log.warning(f"refused:{reason}", "refused a connection from %s: %s", peer, reason.replace("_", " "))
    try:
        sock.settimeout(0.0)  # a fresh socket's send buffer takes these few bytes at once, or they are dropped
        sock.send(error_bytes(503, (f"Retry-After: {REFUSED_RETRY_AFTER_S}",)))
    except OSError:
        pass
    finally:
        sock.close()


def bounded_server(listener, application, settings, ws_server: str,
                   share: Callable[[], None] | None = None) -> BoundedWSGIServer:
    """The server for `settings`. Behind a trusted proxy (TRUSTED_PROXIES > 0) every connection
    comes from the proxy, so the cap per address is left to the proxy (it would cap everyone)."""
    per_address = 0 if settings.TRUSTED_PROXIES else settings.MAX_CONNECTIONS_PER_ADDRESS
    admission = Admission(per_address, capacity_for_fd_limit())
    bounds = TimeBounds(settings.HEADER_TIMEOUT_S, settings.BODY_TIMEOUT_S, settings.IDLE_TIMEOUT_S)
    log.info("connections: at most %s per address, %d in all (descriptor limit); timeouts: headers %gs, "
             "body %gs, idle %gs", per_address or "any number", admission.capacity, bounds.header_s,
             bounds.body_s, bounds.idle_s)
    quiet_engineio_body_timeouts()
    return BoundedWSGIServer(listener, application, bounds, admission, ws_server, share)
