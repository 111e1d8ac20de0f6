"""gevent's request handler with time bounds, JSON errors and bounded error logging.

gevent's WSGIHandler reads a request line and headers without a deadline, reads a body without a
timeout and waits for a kept-alive connection's next request for ever: a client that sends half a
request holds a greenlet and a descriptor for good. This handler adds three bounds:

- header: the request line and headers must have arrived HEADER_TIMEOUT_S after the connection
  opened (on a kept-alive connection: after the next request's first byte). A deadline for the
  whole, not a timeout per read, so a client dripping a byte every few seconds is cut as well.
- body: the whole body must have arrived BODY_TIMEOUT_S after the headers did, again a deadline
  for the whole (checked on every read, so a body dripping a byte every few seconds is cut as
  surely as a stalled one); answered 408 and the connection closed. Each write of the response
  must make progress within BODY_TIMEOUT_S.
- idle: a kept-alive connection whose next request has not begun IDLE_TIMEOUT_S after the last
  answer is closed.

Why one deadline for the body and not a minimum rate (Apache's mod_reqtimeout `body=20,MinRate=500`,
which adds a second per 500 bytes received): a rate rule is for servers taking uploads of any
size, and lets a client hold a connection for size / rate, here up to 16 MiB / 500 B/s = 9 hours.
Bodies here are capped (INGEST_MAX_BYTES, 1 MiB by default): a 1 MiB body in 30 s needs 35 KB/s,
which any link a producer posts over exceeds, and the header bound already works this way, so an
operator reads both settings alike: how long a request may take to arrive. A producer on a slower
link sends smaller batches, gzips them, or is given a larger BODY_TIMEOUT_S.

A WebSocket upgrade leaves all three behind: from then on the connection belongs to the WebSocket
server, which engine.io keeps alive with its pings (every 25 s, 20 s to answer) and closes when
they stop. An engine.io long-poll GET waits for packets inside the app, not on the socket, so its
wait (up to ping_interval + ping_timeout) is not a read and no bound applies to it.

A malformed request (bad request line or header, request line over 8 KiB) is answered 400/414 in
JSON, counted, and logged at a bounded rate, where gevent writes one line per request to stderr.

The gevent (26.x) hooks used: handle_one_request, read_request, get_environ, handle_one_response,
handle_error, and the provisional _handle_client_error and _send_error_response_if_possible;
tests/test_connection_bounds.py drives each against the real server.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass

import gevent
from gevent import pywsgi
from werkzeug.exceptions import RequestTimeout

from analytics import counters
from analytics.logging_limits import RateLimitedLog

log = logging.getLogger("analytics.serving")
bounded_log = RateLimitedLog(log)
SHOWN_INPUT = 120  # characters of a client's bad input a log line may quote
# Past the body's deadline a read may still take bytes that have arrived; it waits no longer than this.
LATE_READ_WAIT_S = 0.001

# status line, error code, message: the JSON answers the server itself gives (never plain text).
ERRORS = {
    400: ("400 Bad Request", "bad_request", "malformed HTTP request"),
    408: ("408 Request Timeout", "request_timeout", "the request body did not arrive in time"),
    414: ("414 URI Too Long", "uri_too_long", "the request line is over 8 KiB"),
    500: ("500 Internal Server Error", "internal_error", "internal error; see the server log"),
    503: ("503 Service Unavailable", "too_many_connections", "too many open connections; retry shortly"),
}


@dataclass(frozen=True)
class TimeBounds:
    header_s: float
    body_s: float
    idle_s: float


class ClientTooSlow(BaseException):
    """Thrown into a handler's greenlet when a deadline passes. A BaseException, like gevent's own
    Timeout: pywsgi's `except Exception` around request parsing must not take it for bad input."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class BodyTimeout(RequestTimeout):
    """The body did not arrive by its deadline. An HTTPException, so inside Flask the API's error handler
    answers it 408 in JSON; engine.io's polling POST catches it and answers (its traceback is
    filtered out, see EngineioBodyTimeouts); raised anywhere else (gevent discarding an unread
    body) handle_error answers or closes, without a traceback."""

    description = ERRORS[408][2]


class EngineioBodyTimeouts(logging.Filter):
    """Drops engine.io's "post request handler error" traceback when the error is a BodyTimeout:
    engine.io logs one per stalled polling POST (so, unbounded); the timeout is counted and
    logged at a bounded rate here instead. Not an EngineIOError, which engine.io would answer by
    closing the session and waiting for the client to collect the close (up to its ping timeout)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], BodyTimeout))


def quiet_engineio_body_timeouts() -> None:
    engineio_log = logging.getLogger("engineio.server")  # engine.io's logger when Flask-SocketIO passes False
    if not any(isinstance(f, EngineioBodyTimeouts) for f in engineio_log.filters):
        engineio_log.addFilter(EngineioBodyTimeouts())


def error_bytes(status: int, extra_headers: tuple[str, ...] = ()) -> bytes:
    """A whole JSON error response that closes the connection, for answers written as raw bytes."""
    line, code, message = ERRORS[status] if status in ERRORS else (f"{status} Error", "error", "error")
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    head = [f"HTTP/1.1 {line}", "Content-Type: application/json", f"Content-Length: {len(body)}",
            "Connection: close", *extra_headers]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


class _BodyReader:
    """The request's rfile as gevent's Input reads a body from it, each read bounded by the body's
    deadline: a read still waiting for bytes when it passes raises BodyTimeout (and the connection
    is marked for closing). The socket's own timeout (BODY_TIMEOUT_S, for writes) bounds one
    recv() only, and one read(n) loops over as many recv()s as the client makes it, so only a
    timer across the whole call bounds a drip. Bytes that have already arrived are returned even
    past the deadline: the timer fires only while the read waits, so time the app spent before
    reading (a Redis round trip) never costs a client whose body was there on time."""

    __slots__ = ("rfile", "deadline", "timed_out", "expired")

    def __init__(self, rfile, deadline: float, timed_out):
        self.rfile = rfile
        self.deadline = deadline  # time.monotonic() by which the whole body must have arrived
        self.timed_out = timed_out
        self.expired = False

    def read(self, *args):
        return self._before_deadline(self.rfile.read, args)

    def readline(self, *args):
        return self._before_deadline(self.rfile.readline, args)

    def _before_deadline(self, read, args):
        if self.expired:
            # As a socket file does after a timeout. gevent reads what is left of a body after the
            # app has answered (to find the next request), and takes an OSError there as the end;
            # another BodyTimeout would count the same timeout twice.
            raise OSError("the request body timed out")
        timer = gevent.Timeout.start_new(max(self.deadline - time.monotonic(), LATE_READ_WAIT_S))
        try:
            return read(*args)
        except gevent.Timeout as exc:
            if exc is not timer:  # someone else's (the app's own bound): not ours to answer
                raise
            self.expired = True
            raise self.timed_out() from None
        except TimeoutError:  # the socket's per-recv timeout; the timer fires first, but to be sure
            self.expired = True
            raise self.timed_out() from None
        finally:
            timer.close()


class BoundedRequests:
    """Mixed into a pywsgi handler class (gevent's own, or gevent-websocket's); the server gives
    it `bounds` (TimeBounds)."""

    served = 0  # requests answered on this connection

    def handle_one_request(self):
        if self.rfile.closed:
            return None
        bounds: TimeBounds = self.server.bounds
        try:
            if self.served and not self._next_request_begins(bounds.idle_s):
                return None
            self._header_deadline = gevent.Timeout(bounds.header_s, ClientTooSlow("header"))
            self._header_deadline.start()
            try:
                result = super().handle_one_request()
            finally:
                self._header_deadline.cancel()
        except ClientTooSlow as exc:
            self._timed_out(exc.reason)
            return None
        self.served += 1
        if isinstance(result, tuple) and result[0] == "414":  # gevent answers it without a hook
            self._malformed("line_too_long", self.requestline)
            return result[0], error_bytes(414)
        return result

    def _next_request_begins(self, idle_s: float) -> bool:
        """Whether a kept-alive connection's next request starts within `idle_s` (False: the
        client closed it); ClientTooSlow("idle") when it does not."""
        try:
            with gevent.Timeout(idle_s, ClientTooSlow("idle")):
                return bool(self.rfile.peek(1))
        except OSError:  # reset by the client
            return False

    def read_request(self, raw_requestline):
        try:
            return super().read_request(raw_requestline)
        finally:
            # Headers read (or refused): from here the app runs, under the body bound instead.
            self._header_deadline.cancel()

    def get_environ(self):
        environ = super().get_environ()
        if not self._connection_upgrade_requested():
            # The headers have just been read: the body's deadline counts from here.
            deadline = time.monotonic() + self.server.bounds.body_s
            self.wsgi_input.rfile = _BodyReader(self.rfile, deadline, self._body_timed_out)
        return environ

    def handle_one_response(self):
        # A WebSocket upgrade runs in here for the connection's whole life, with no socket timeout
        # (engine.io's pings keep it honest); any other request gets BODY_TIMEOUT_S per write (and per
        # recv, which the body's deadline in _BodyReader makes moot).
        upgrade = self._connection_upgrade_requested()
        self.socket.settimeout(None if upgrade else self.server.bounds.body_s)
        self.server.share()  # read, not yet served: a crowd of requests is served over several loop turns
        try:
            super().handle_one_response()
        finally:
            if self.socket is not None and not upgrade:
                self.socket.settimeout(None)  # the wait for the next request has its own bound

    def start_response(self, status, headers, exc_info=None):
        if self.close_connection and not any(name.lower() == "connection" for name, _ in headers):
            # Closing after this answer (a body that timed out): say so, as HTTP/1.1 asks.
            headers = [*headers, ("Connection", "close")]
        return super().start_response(status, headers, exc_info)

    def _body_timed_out(self) -> BodyTimeout:
        self.close_connection = True  # what is left of the body cannot be told from a next request
        self._timed_out("body")
        return BodyTimeout()

    def handle_error(self, t, v, tb):
        if isinstance(v, BodyTimeout):  # counted where it was raised
            self.close_connection = True
            self._send_error_response_if_possible(408)
        elif isinstance(v, TimeoutError):  # a write: the client stopped reading its answer
            self._timed_out("send")
            self.close_connection = True
        else:
            super().handle_error(t, v, tb)

    def _handle_client_error(self, ex):
        # gevent's hook for a request it cannot parse; it would write a line per request to stderr.
        self._malformed("bad_request", self.requestline, str(ex) or type(ex).__name__)
        return "400", error_bytes(400)

    def _send_error_response_if_possible(self, error_code):
        if self.response_length:  # the answer has begun: closing is all that is left
            self.close_connection = True
            return
        line, code, message = ERRORS.get(error_code, ERRORS[500])
        body = json.dumps({"error": {"code": code, "message": message}}).encode()
        try:
            self.start_response(line, [("Content-Type", "application/json"), ("Content-Length", str(len(body))),
                                       ("Connection", "close")])
            self.write(body)
        except OSError:
            self.close_connection = True

    def _timed_out(self, reason: str) -> None:
        counters.HTTP_CONNECTIONS_TIMED_OUT.labels(reason).inc()
        if reason != "idle":  # closing idle keep-alive connections is routine, not news
            bounded_log.warning(f"timeout:{reason}", "closed a connection from %s: %s timeout",
                                self._peer(), reason)

    def _malformed(self, reason: str, requestline: str | None, detail: str = "") -> None:
        counters.HTTP_MALFORMED_REQUESTS.labels(reason).inc()
        bounded_log.warning("malformed", "malformed HTTP request from %s (%s): %r %s", self._peer(), reason,
                            (requestline or "")[:SHOWN_INPUT], detail[:SHOWN_INPUT])

    def _peer(self) -> str:
        address = self.client_address
        return str(address[0]) if isinstance(address, tuple) else str(address)


class BoundedHandler(BoundedRequests, pywsgi.WSGIHandler):
    """pywsgi's own handler, bounded: the one simple-websocket takes sockets over from."""


def bounded_handler_class(ws_server: str) -> type:
    """The handler for WS_SERVER: gevent's own, or gevent-websocket's, with the same bounds."""
    if ws_server == "gevent-websocket":
        from geventwebsocket.handler import WebSocketHandler

        return type("BoundedWebSocketHandler", (BoundedRequests, WebSocketHandler), {})
    return BoundedHandler
