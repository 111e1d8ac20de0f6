"""POST bodies against the real backend (gevent's server, as shipped): 413 JSON for any body over
INGEST_MAX_BYTES however it is framed, read in bounded memory; gzip bodies decoded under the same
cap on their decoded size; any other Content-Encoding a 415."""
from __future__ import annotations

import gzip
import http.client
import json
import socket
from urllib.parse import urlsplit

import pytest

from devstack.processes import backend, redis_server

CAP = 4096


@pytest.fixture(scope="module")
def server():
    """(host, port) of a real backend with a 4 KiB body cap."""
    with redis_server() as (url, _, _), backend(url, INGEST_MAX_BYTES=CAP) as base:
        parts = urlsplit(base)
        yield parts.hostname, parts.port


def events_body(size: int) -> bytes:
    """A JSON array of valid events, padded with spaces to exactly `size` bytes."""
    body = json.dumps([{"metric": "orders", "value": 1.0}] * 3).encode()
    return body[:-1] + b" " * (size - len(body)) + b"]"


def post(server, body: bytes, headers: dict[str, str], chunks: int = 0):
    """POST /api/events; with chunks > 0 the body goes chunked, without a Content-Length."""
    conn = http.client.HTTPConnection(*server, timeout=30)
    headers = {"Content-Type": "application/json", **headers}
    if chunks:
        step = -(-len(body) // chunks)
        conn.request("POST", "/api/events", body=iter([body[i:i + step] for i in range(0, len(body), step)]),
                     headers=headers, encode_chunked=True)
    else:
        conn.request("POST", "/api/events", body=body, headers=headers)
    response = conn.getresponse()
    payload = json.loads(response.read())
    conn.close()
    return response.status, payload


@pytest.mark.parametrize("chunks", [0, 1, 7], ids=["content-length", "one-chunk", "seven-chunks"])
def test_a_body_at_the_cap_is_accepted_and_one_byte_over_is_413(server, chunks):
    status, body = post(server, events_body(CAP), {}, chunks)
    assert status == 202 and body["accepted"] == 3
    status, body = post(server, events_body(CAP + 1), {}, chunks)
    assert status == 413 and body["error"]["code"] == "request_entity_too_large"


def test_an_endless_chunked_body_is_answered_413_and_the_connection_closed(server):
    """The server stops reading at the cap: it answers while the client is still sending, and
    closes the connection rather than read and discard a body that has no end."""
    with socket.create_connection(server, timeout=30) as sock:
        sock.sendall(b"POST /api/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n")
        chunk = b"%x\r\n%s\r\n" % (1024, b"[" + b" " * 1023)
        sent = 0
        received = b""
        try:
            while b"\r\n\r\n" not in received:  # keep sending until the answer is there
                sock.sendall(chunk * 16)
                sent += 16 * 1024
                sock.setblocking(False)
                try:
                    received += sock.recv(65536)
                except BlockingIOError:
                    pass
                finally:
                    sock.settimeout(30)  # a guard against a hang, not a measure
                assert sent < 64 * 1024 * 1024, "no answer after 64 MiB: the server reads an endless body"
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed while we were sending: read what it said
        try:
            while True:
                data = sock.recv(65536)
                if not data:
                    break  # closed by the server: it does not read the rest of the body
                received += data
        except ConnectionResetError:
            pass
    head, _, payload = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413") and b"connection: close" in head.lower()
    assert json.loads(payload)["error"]["code"] == "request_entity_too_large"


def test_a_content_length_over_the_cap_is_413_before_the_body_is_sent(server):
    with socket.create_connection(server, timeout=30) as sock:
        sock.sendall(b"POST /api/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 1000000000000\r\n\r\n[")
        received = b""
        while data := sock.recv(65536):
            received += data
    assert received.startswith(b"HTTP/1.1 413") and b"request_entity_too_large" in received


@pytest.mark.parametrize("chunks", [0, 5])
def test_a_gzip_body_is_decoded(server, chunks):
    status, body = post(server, gzip.compress(events_body(CAP)), {"Content-Encoding": "gzip"}, chunks)
    assert status == 202 and body["accepted"] == 3


@pytest.mark.parametrize("decoded", [CAP + 1, 64 * 1024 * 1024], ids=["one-byte-over", "bomb-64MiB"])
@pytest.mark.parametrize("chunks", [0, 3])
def test_a_gzip_body_over_the_cap_once_decoded_is_413(server, decoded, chunks):
    compressed = gzip.compress(events_body(decoded), compresslevel=9)
    assert len(compressed) < CAP * 20  # a 64 MiB bomb is ~64 KiB: over the cap compressed too, in any case 413
    status, body = post(server, compressed, {"Content-Encoding": "gzip"}, chunks)
    assert status == 413 and body["error"]["code"] == "request_entity_too_large"


@pytest.mark.parametrize("body, encoding, status", [
    (b"not gzip at all", "gzip", 400),
    (gzip.compress(b'{"metric": "m", "value": 1}')[:-4], "gzip", 400),  # cut short
    (gzip.compress(b'{"metric": "m", "value": 1}') * 2, "gzip", 400),  # two members: not one stream
    (b'{"metric": "m", "value": 1}', "br", 415),
    (b'{"metric": "m", "value": 1}', "deflate", 415),
    (b'{"metric": "m", "value": 1}', "gzip, gzip", 415),
])
def test_a_bad_or_unknown_encoding_is_refused(server, body, encoding, status):
    got, payload = post(server, body, {"Content-Encoding": encoding})
    assert got == status and payload["error"]["field"] in ("body", "Content-Encoding")


def test_the_server_still_answers_after_every_refusal(server):
    status, body = post(server, events_body(CAP), {})
    assert status == 202
