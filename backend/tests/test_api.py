"""REST API against a real Redis: shapes, filters, limits, and JSON errors only."""
from __future__ import annotations

import time

import orjson
import pytest
import redis

from analytics.factory import create_app
from devstack.processes import free_port
from tests.helpers import event, write_events


def test_health_reports_redis_up_and_the_recent_cache_size(client, settings):
    response = client.get("/api/health")
    assert response.status_code == 200
    assert response.json["status"] == "ok" and response.json["redis"] == "up"
    assert response.json["recent_max"] == settings.RECENT_MAX


def test_health_answers_from_the_last_redis_check_not_a_round_trip_per_request(client, runtime):
    """Load balancers and probes call health all the time: it answers from a check at most
    MAX_AGE_S old (api/redis_status.py), so 50 quick calls cost Redis one or two PINGs, not 50."""
    def pings() -> int:
        return int(runtime.redis.info("commandstats").get("cmdstat_ping", {}).get("calls", 0))

    before = pings()
    statuses = {client.get("/api/health").status_code for _ in range(50)}
    assert statuses == {200}
    assert pings() - before < 10


def test_health_is_503_degraded_when_redis_is_unreachable(settings):
    app = create_app(settings.model_copy(update={"REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}), start_stream=False)
    response = app.test_client().get("/api/health")
    assert response.status_code == 503
    assert response.json["status"] == "degraded" and response.json["redis"] == "down"
    assert response.json["recent_max"] == settings.RECENT_MAX
    recent = app.test_client().get("/api/metrics/recent")
    assert recent.status_code == 503 and recent.json["error"]["code"] == "redis_unavailable"


def test_recent_returns_newest_first(client, runtime):
    write_events(runtime, [event(value=i, id=f"e{i}") for i in range(5)])
    body = client.get("/api/metrics/recent?limit=3").json
    assert body["count"] == 3 and [e["id"] for e in body["events"]] == ["e4", "e3", "e2"]
    assert set(body["events"][0]) == {"id", "ts", "source", "metric", "value", "tags"}


def test_recent_keeps_only_recent_max_events(client, runtime, settings):
    write_events(runtime, [event(id=f"e{i}") for i in range(settings.RECENT_MAX + 30)])
    body = client.get(f"/api/metrics/recent?limit={settings.RECENT_MAX}").json
    assert body["count"] == settings.RECENT_MAX and body["events"][0]["id"] == f"e{settings.RECENT_MAX + 29}"
    assert runtime.redis.llen(settings.RECENT_KEY) == settings.RECENT_MAX


def test_recent_filters_by_metric_and_source(client, runtime):
    write_events(runtime, [event("orders", source="web", id="a"), event("signups", source="web", id="b"),
                           event("orders", source="api", id="c")])
    assert [e["id"] for e in client.get("/api/metrics/recent?metric=orders").json["events"]] == ["c", "a"]
    assert [e["id"] for e in client.get("/api/metrics/recent?metric=orders&source=web").json["events"]] == ["a"]
    assert client.get("/api/metrics/recent?source=nobody").json == {"count": 0, "events": []}


@pytest.mark.parametrize("query, field", [
    ("limit=0", "limit"), ("limit=51", "limit"), ("limit=abc", "limit"), ("limit=1.5", "limit"),
    ("metric=bad%20name", "metric"), ("source=" + "s" * 65, "source"),
])
def test_recent_rejects_bad_parameters(client, query, field):
    response = client.get(f"/api/metrics/recent?{query}")
    assert response.status_code == 400
    assert response.json["error"]["code"] == "invalid_parameter" and response.json["error"]["field"] == field


def test_aggregate_has_the_contract_shape(client, runtime):
    write_events(runtime, [event("orders", 10.0), event("orders", 30.0, source="api")])
    body = client.get("/api/metrics/aggregate?window=60").json
    assert set(body) == {"window", "from", "to", "total", "metrics", "sources", "truncated"}
    assert body["window"] == 60 and body["to"] - body["from"] >= 59_000
    assert set(body["metrics"]["orders"]) == {"count", "sum", "avg", "min", "max", "rate", "p50", "p95", "p99"}
    assert body["metrics"]["orders"]["avg"] == 20.0 and body["total"]["count"] == 2


def test_aggregate_sees_a_bucket_change_with_the_same_fields(client, runtime):
    # The second write changes values but no field names: the parse must not reuse old values.
    write_events(runtime, [event("orders", 10.0)])
    assert client.get("/api/metrics/aggregate?window=60").json["metrics"]["orders"]["count"] == 1
    write_events(runtime, [event("orders", 10.0)])
    body = client.get("/api/metrics/aggregate?window=60").json
    assert body["metrics"]["orders"]["count"] == 2 and body["metrics"]["orders"]["sum"] == 20.0


def test_api_responses_carry_server_timing(client):
    header = client.get("/api/metrics/recent").headers["Server-Timing"]
    name, _, duration = header.partition(";dur=")
    assert name == "app" and float(duration) >= 0


@pytest.mark.parametrize("query", ["window=0", "window=86401", "window=x", "window=-1", "metric=a|b"])
def test_aggregate_rejects_bad_parameters(client, query):
    response = client.get(f"/api/metrics/aggregate?{query}")
    assert response.status_code == 400 and response.is_json


def test_unknown_route_and_wrong_method_are_json(client):
    assert client.get("/api/nope").json["error"]["code"] == "not_found"
    response = client.delete("/api/metrics/recent")
    assert response.status_code == 405 and response.json["error"]["code"] == "method_not_allowed"
    assert "GET" in response.headers["Allow"]


def test_post_events_logs_valid_events_before_answering_and_counts_bad_ones(client, runtime, settings):
    body = [{"metric": "signups", "value": 1, "source": "app"}, {"metric": "signups", "value": "x"}]
    response = client.post("/api/events", json=body)
    assert response.status_code == 202
    assert response.json["accepted"] == 1 and response.json["rejected"] == {"bad_value": 1}
    [(position, fields)] = runtime.redis.xrange(settings.STREAM_KEY)
    assert response.json["position"] == position.decode()
    [logged] = orjson.loads(fields[b"e"])
    assert logged["id"] == response.json["ids"][0] and logged["source"] == "app"


def test_post_events_rejects_an_all_bad_body(client):
    response = client.post("/api/events", data=b"{nope", content_type="application/json")
    assert response.status_code == 400 and response.json["error"]["code"] == "invalid_json"


def test_post_events_requires_json(client):
    response = client.post("/api/events", data=b"metric=x", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415 and response.is_json


def test_post_events_rejects_bodies_over_the_limit(client):
    response = client.post("/api/events", data=b"[" + b" " * (1 << 20) + b"]", content_type="application/json")
    assert response.status_code == 413 and response.json["error"]["code"] == "request_entity_too_large"


def test_rate_limit_answers_429_in_json(settings):
    client = create_app(settings.model_copy(update={"RATE_LIMIT": "3 per minute"}), start_stream=False).test_client()
    codes = [client.get("/api/metrics/recent").status_code for _ in range(5)]
    assert codes[:3] == [200, 200, 200] and codes[3] == 429
    assert client.get("/api/metrics/recent").json["error"]["code"] == "too_many_requests"
    assert client.get("/api/health").status_code == 200  # probes are never limited


def test_behind_a_trusted_proxy_limits_apply_per_forwarded_client(settings):
    client = create_app(settings.model_copy(update={"RATE_LIMIT": "2 per minute", "TRUSTED_PROXIES": 1}),
                        start_stream=False).test_client()
    for _ in range(2):
        assert client.get("/api/metrics/recent", headers={"X-Forwarded-For": "10.0.0.1"}).status_code == 200
    assert client.get("/api/metrics/recent", headers={"X-Forwarded-For": "10.0.0.1"}).status_code == 429
    assert client.get("/api/metrics/recent", headers={"X-Forwarded-For": "10.0.0.2"}).status_code == 200


def test_openapi_document_describes_the_api(client):
    spec = client.get("/api/openapi.json").json
    assert spec["openapi"].startswith("3.1")
    assert {"/api/health", "/api/metrics/recent", "/api/metrics/aggregate", "/api/events"} <= set(spec["paths"])


def test_prometheus_metrics_are_exposed(client):
    response = client.get("/metrics")
    assert response.status_code == 200 and b"analytics_events_accepted_total" in response.data


def test_health_says_down_at_once_while_a_check_waits_on_a_redis_that_never_answers(settings):
    """A Redis that accepts connections and never answers: the background check waits for the
    client's socket timeout (5 s), and health used to check inline, waiting as long, past a
    container probe's timeout. Now, once a check has waited over MAX_AGE_S, health says down
    without a check of its own."""
    import socket
    import threading

    from analytics.api.redis_status import RedisStatus

    silent = socket.create_server(("127.0.0.1", 0))  # accepts (the kernel does), never replies
    held = []
    accepting = threading.Thread(target=lambda: held.append(silent.accept()), daemon=True)
    accepting.start()
    port = silent.getsockname()[1]
    client = redis.Redis(port=port, socket_timeout=3, socket_connect_timeout=3)
    status = RedisStatus(client, "series", time.sleep, every_s=0.05, max_age_s=0.2)
    checker = threading.Thread(target=status.check, daemon=True)
    checker.start()
    while status.waiting_since is None or time.monotonic() - status.waiting_since <= 0.2:
        time.sleep(0.01)
    inline_checks = []
    status.check = lambda: inline_checks.append(1) or pytest.fail("health checked inline")
    state = status.current()
    assert state.up is False and state.series is None
    assert checker.is_alive() and not inline_checks  # the stuck check is still waiting
    client.close()
    silent.close()
    for conn, _ in held:
        conn.close()
