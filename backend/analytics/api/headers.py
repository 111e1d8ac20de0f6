"""Security headers on every response the backend sends: JSON answers, errors (404, 405, 413,
429 included), /metrics and Socket.IO's long-polling answers. A WSGI middleware around the whole
app, because Socket.IO's requests never reach Flask (engineio answers them before Flask's
after_request hooks could run). nginx sends its own in the Compose stack; these are for every
other way the backend is reached."""
from __future__ import annotations

from collections.abc import Callable, Iterable

# The API serves no HTML: no content of any kind may load from a response, no page may frame it.
# no-store: answers carry viewers' data (behind a token); no shared cache may keep them.
HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'"),
    ("X-Frame-Options", "DENY"),
    ("Cache-Control", "no-store"),
)


class SecurityHeaders:
    """Adds each of HEADERS that the response does not set itself."""

    def __init__(self, app: Callable):
        self.app = app

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        def start(status: str, headers: list[tuple[str, str]], exc_info=None):
            present = {name.lower() for name, _ in headers}
            headers.extend(h for h in HEADERS if h[0].lower() not in present)
            return start_response(status, headers, exc_info) if exc_info else start_response(status, headers)

        return self.app(environ, start)
