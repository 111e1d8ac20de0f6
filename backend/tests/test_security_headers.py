"""Security headers on every answer of the backend: every operation of the OpenAPI document, the
error answers (400, 401, 404, 405, 413, 415, 429), /metrics, and Socket.IO's long-polling
answers, in-process and from the real gevent backend."""
from __future__ import annotations

import urllib.error
import urllib.request

import pytest
from pydantic import SecretStr

from analytics.api.headers import HEADERS
from analytics.factory import create_app
from devstack.processes import backend, redis_server

EXPECTED = dict(HEADERS)
EVENT = {"metric": "orders", "value": 1, "source": "web"}


def assert_secured(headers, what: str) -> None:
    for name, value in EXPECTED.items():
        assert headers.get(name) == value, f"{what}: {name} is {headers.get(name)!r}"


def operations(client) -> list[tuple[str, str]]:
    paths = client.get("/api/openapi.json").get_json()["paths"]
    # The document itself is served too, though it does not list itself.
    return [(path, method.upper()) for path, item in paths.items() for method in item] + [("/api/openapi.json", "GET")]


def test_every_operation_of_the_openapi_document(client):
    ops = operations(client)
    assert ("/api/events", "POST") in ops and len(ops) >= 5  # the document was read
    for path, method in ops:
        response = client.open(path, method=method, json=[EVENT] if method == "POST" else None)
        assert response.status_code < 300, (path, method, response.status_code)
        assert_secured(response.headers, f"{method} {path}")


def test_every_error_answer(client, settings):
    answers = {
        400: client.get("/api/metrics/recent?limit=0"),
        404: client.get("/api/nope"),
        405: client.delete("/api/health"),
        413: client.post("/api/events", data=b"[" + b" " * settings.INGEST_MAX_BYTES + b"]",
                         content_type="application/json"),
        415: client.post("/api/events", data=b"x", content_type="text/plain"),
    }
    limited = create_app(settings.model_copy(update={"RATE_LIMIT": "1 per minute"}), start_stream=False).test_client()
    limited.get("/api/metrics/recent")
    answers[429] = limited.get("/api/metrics/recent")
    guarded = create_app(settings.model_copy(update={"JWT_SECRET": SecretStr("s" * 32)}), start_stream=False).test_client()
    answers[401] = guarded.get("/api/metrics/recent")
    answers[403] = client.get("/metrics", environ_base={"REMOTE_ADDR": "203.0.113.9"})
    for status, response in answers.items():
        assert response.status_code == status, (status, response.get_data()[:200])
        assert response.is_json
        assert_secured(response.headers, str(status))


def test_metrics_and_socketio_polling_in_process(client):
    assert_secured(client.get("/metrics").headers, "/metrics")
    polling = client.get("/socket.io/?EIO=4&transport=polling")
    assert polling.status_code == 200 and polling.get_data().startswith(b"0{")  # an engineio open packet
    assert_secured(polling.headers, "Socket.IO polling")


def fetch(url: str):
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.headers
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers


@pytest.mark.e2e
def test_the_real_backend_sends_them_on_rest_errors_metrics_and_socketio():
    with redis_server() as (url, _, _), backend(url) as base:
        for path, status in (("/api/health", 200), ("/api/nope", 404), ("/metrics", 200),
                             ("/socket.io/?EIO=4&transport=polling", 200), ("/socket.io/?EIO=4&transport=bogus", 400)):
            code, headers = fetch(f"{base}{path}")
            assert code == status, path
            assert_secured(headers, path)
