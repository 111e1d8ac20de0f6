"""Request bodies read in bounded memory, whatever the framing: a Content-Length over the cap is
refused unread; a chunked body (no Content-Length) is read up to the cap plus one byte, never
more; a gzip body is decoded as it arrives, and the cap applies to the decoded size too, so a
small bomb is a 413 after at most cap + 1 decoded bytes. Other Content-Encodings are a 415.

Werkzeug cannot do this here: gevent's server does not set `wsgi.input_terminated`, so for a
chunked body Werkzeug hands out an empty stream (or, on servers that do, cuts it at the cap)."""
from __future__ import annotations

import zlib
from collections.abc import Iterator

from werkzeug.wsgi import get_content_length

from analytics.api.errors import ApiError

READ_CHUNK = 64 * 1024
ENCODINGS = {"identity": None, "gzip": "gzip", "x-gzip": "gzip"}


class BodyError(ApiError):
    """A body refused before it was read to its end: the connection cannot be reused (what is
    left of the body would be read as the next request), so the answer closes it."""


def read_body(environ: dict, cap: int) -> bytes:
    """The request body, decoded, at most `cap` bytes; BodyError (413 / 415 / 400) otherwise."""
    encoding = ENCODINGS.get(environ.get("HTTP_CONTENT_ENCODING", "identity").strip().lower() or "identity", "?")
    if encoding == "?":
        raise BodyError(415, "unsupported_encoding", "Content-Encoding must be gzip or identity",
                        "Content-Encoding")
    length = get_content_length(environ)
    if length is not None and length > cap:
        raise _too_large(cap, "body")
    if encoding is None:
        body = b"".join(_raw_chunks(environ, length, cap))
        if len(body) > cap:
            raise _too_large(cap, "body")
        return body
    return _gunzip(_raw_chunks(environ, length, cap), cap)


def _raw_chunks(environ: dict, length: int | None, cap: int) -> Iterator[bytes]:
    """The body as it arrives: all of a Content-Length body (<= cap), or up to cap + 1 bytes of a
    streamed one, which is enough to tell that it is over the cap."""
    if length is None and not _streamed(environ):
        return  # neither framing: HTTP says there is no body (reading would wait for the next request)
    stream = environ["wsgi.input"]
    remaining = cap + 1 if length is None else length
    while remaining > 0:
        chunk = stream.read(min(READ_CHUNK, remaining))
        if not chunk:
            return
        remaining -= len(chunk)
        yield chunk


def _streamed(environ: dict) -> bool:
    chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
    return chunked or bool(environ.get("wsgi.input_terminated"))


def _gunzip(chunks: Iterator[bytes], cap: int) -> bytes:
    decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)  # gzip framing only
    out: list[bytes] = []
    size = compressed = 0
    try:
        for chunk in chunks:
            compressed += len(chunk)
            if compressed > cap:
                raise _too_large(cap, "compressed body")
            # At most one byte past what the cap allows: that byte tells it is over, and what
            # else the chunk would decode to is never made.
            part = decoder.decompress(chunk, cap + 1 - size)
            size += len(part)
            if size > cap:
                raise _too_large(cap, "decoded body")
            out.append(part)
    except zlib.error as exc:
        raise BodyError(400, "invalid_encoding", f"the body is not valid gzip: {exc}", "body") from None
    if not decoder.eof or decoder.unused_data:
        raise BodyError(400, "invalid_encoding", "the body is not one complete gzip stream", "body")
    return b"".join(out)


def _too_large(cap: int, what: str) -> BodyError:
    return BodyError(413, "request_entity_too_large", f"the {what} is over the limit of {cap} bytes", "body")
