"""Access control on the real app and a real Redis: producer keys on ingest, viewer tokens on
REST and Socket.IO (none, valid, expired, wrong key, alg none, a sources claim), /metrics."""
from __future__ import annotations

import base64
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from analytics import counters
from analytics.access.keys import new_key
from analytics.access.tokens import mint
from analytics.factory import create_app, socketio
from tests.helpers import event, write_events

SECRET = "a-test-secret-that-is-long-enough-0123456789"
SHOP_KEY, SHOP_ENTRY = new_key("shop")
ANY_KEY, ANY_ENTRY = new_key()


def app_with(settings, **update):
    return create_app(settings.model_copy(update=update), start_stream=False)


def post(client, body, key=None):
    headers = {"X-API-Key": key} if key else {}
    return client.post("/api/events", json=body, headers=headers)


# Producer keys


@pytest.fixture
def keyed(settings):
    return app_with(settings, API_KEYS=[SHOP_ENTRY, ANY_ENTRY]).test_client()


def test_ingest_without_a_key_is_401_json(keyed):
    response = post(keyed, {"metric": "orders", "value": 1, "source": "shop"})
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "unauthorized"
    assert response.headers["WWW-Authenticate"] == "X-API-Key"


def test_ingest_with_a_wrong_key_is_401(keyed):
    for key in ("wrong", SHOP_ENTRY.split("@")[0], SHOP_KEY + "x", "k" * 300):
        assert post(keyed, {"metric": "orders", "value": 1, "source": "shop"}, key).status_code == 401


def test_ingest_with_the_right_key_is_accepted(keyed):
    response = post(keyed, [{"metric": "orders", "value": 1, "source": "shop"}, {"metric": "orders", "value": 2, "source": "web"}],
                    ANY_KEY)
    assert response.status_code == 202 and response.get_json()["accepted"] == 2


def test_a_bound_key_has_events_of_other_sources_rejected_one_by_one_and_counted(keyed):
    before = counters.rejected_by_reason("http").get("source_not_allowed", 0)
    response = post(keyed, [{"metric": "orders", "value": 1, "source": "shop"},
                            {"metric": "orders", "value": 2, "source": "web"},
                            {"metric": "orders", "value": 3}], SHOP_KEY)
    body = response.get_json()
    assert response.status_code == 202
    assert body["accepted"] == 1 and body["rejected"] == {"source_not_allowed": 2}
    assert counters.rejected_by_reason("http")["source_not_allowed"] == before + 2
    only_other = post(keyed, {"metric": "orders", "value": 1, "source": "web"}, SHOP_KEY)
    assert only_other.status_code == 403 and only_other.get_json()["error"]["code"] == "source_not_allowed"


def test_without_api_keys_ingest_needs_no_key(client):
    assert post(client, {"metric": "orders", "value": 1}).status_code == 202


# Viewer tokens on REST

READS = ["/api/metrics/recent", "/api/metrics/aggregate?window=60", "/api/openapi.json"]


@pytest.fixture
def guarded(settings):
    return app_with(settings, JWT_SECRET=_secret(SECRET))


def _secret(value):
    from pydantic import SecretStr

    return SecretStr(value)


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def alg_none(claims):
    encode = lambda part: base64.urlsafe_b64encode(json.dumps(part).encode()).rstrip(b"=").decode()  # noqa: E731
    return f"{encode({'alg': 'none', 'typ': 'JWT'})}.{encode(claims)}."


def refused_tokens():
    now = int(time.time())
    other_rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return {
        "none": None,
        "garbage": "not.a.token",
        "expired": mint(SECRET, 60, now=now - 3600),
        "other key": mint("another-secret-that-is-long-enough-01234567", 3600),
        "no exp": jwt.encode({"iat": now}, SECRET, algorithm="HS256"),
        "alg none": alg_none({"exp": now + 3600}),
        "RS256 by another key": jwt.encode({"exp": now + 3600}, other_rsa, algorithm="RS256"),
        "empty sources": mint(SECRET, 3600) and jwt.encode({"exp": now + 3600, "sources": []}, SECRET, algorithm="HS256"),
        "bad source name": jwt.encode({"exp": now + 3600, "sources": ["a b"]}, SECRET, algorithm="HS256"),
    }


@pytest.mark.parametrize("path", READS)
def test_every_read_refuses_a_request_without_a_valid_token(guarded, path):
    client = guarded.test_client()
    for why, token in refused_tokens().items():
        response = client.get(path, headers=bearer(token) if token else {})
        assert response.status_code == 401, why
        assert response.get_json()["error"]["code"] == "unauthorized", why
        assert response.headers["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize("path", READS)
def test_every_read_answers_a_valid_token(guarded, path):
    assert guarded.test_client().get(path, headers=bearer(mint(SECRET, 60))).status_code == 200


def test_health_needs_no_token(guarded):
    assert guarded.test_client().get("/api/health").status_code in (200, 503)


def test_rs256_tokens_verify_with_the_public_key_and_an_hs256_token_signed_with_it_is_refused(settings):
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    client = app_with(settings, JWT_PUBLIC_KEY=pem).test_client()
    good = jwt.encode({"exp": int(time.time()) + 60}, private, algorithm="RS256")
    assert client.get("/api/metrics/recent", headers=bearer(good)).status_code == 200
    # The classic confusion: the public key used as an HMAC secret.
    header = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT"}').rstrip(b"=")
    body = base64.urlsafe_b64encode(json.dumps({"exp": int(time.time()) + 60}).encode()).rstrip(b"=")
    import hashlib
    import hmac

    signature = base64.urlsafe_b64encode(hmac.new(pem.encode(), header + b"." + body, hashlib.sha256).digest()).rstrip(b"=")
    forged = b".".join((header, body, signature)).decode()
    assert client.get("/api/metrics/recent", headers=bearer(forged)).status_code == 401
    assert client.get("/api/metrics/recent", headers=bearer(alg_none({"exp": int(time.time()) + 60}))).status_code == 401


def test_a_sources_claim_limits_rest_reads(guarded, runtime):
    runtime = guarded.extensions["analytics"]
    write_events(runtime, [event(source="web", value=1), event(source="api", value=2), event(source="shop", value=3)])
    client = guarded.test_client()
    web_only = bearer(mint(SECRET, 60, ["web"]))
    recent = client.get("/api/metrics/recent", headers=web_only).get_json()
    assert [e["source"] for e in recent["events"]] == ["web"]
    aggregate = client.get("/api/metrics/aggregate?window=60", headers=web_only).get_json()
    assert set(aggregate["sources"]) == {"web"} and aggregate["total"]["count"] == 1
    assert client.get("/api/metrics/recent?source=web", headers=web_only).status_code == 200
    for path in ("/api/metrics/recent?source=shop", "/api/metrics/aggregate?source=api"):
        response = client.get(path, headers=web_only)
        assert response.status_code == 403 and response.get_json()["error"]["field"] == "source"
    everything = client.get("/api/metrics/recent", headers=bearer(mint(SECRET, 60))).get_json()
    assert sorted(e["source"] for e in everything["events"]) == ["api", "shop", "web"]


# Viewer tokens on Socket.IO


def test_socket_connect_is_refused_without_a_valid_token(guarded):
    for why, token in refused_tokens().items():
        auth = {"token": token} if token else {}
        client = socketio.test_client(guarded, auth=auth)
        assert not client.is_connected(), why


def test_socket_connect_with_a_valid_token_subscribes_to_everything(guarded):
    client = socketio.test_client(guarded, auth={"token": mint(SECRET, 60)})
    assert client.is_connected()
    assert client.emit("subscribe", {}, callback=True)["room"] == "all"
    client.disconnect()


def test_a_sources_claim_narrows_every_socket_subscription(guarded):
    token = mint(SECRET, 60, ["web", "api"])
    client = socketio.test_client(guarded, auth={"token": token})
    assert client.is_connected()
    rooms = socketio.server.manager.rooms["/"]
    assert client.eio_sid in rooms["f:api,web|"].values()  # "everything" means everything it may read
    ack = client.emit("subscribe", {"sources": ["web", "shop"]}, callback=True)
    assert ack["ok"] and ack["sources"] == ["web"]
    ack = client.emit("subscribe", {"sources": ["shop"]}, callback=True)
    assert ack == {"ok": False, "error": {"code": "bad_subscription", "message": "this token may not read those sources",
                                          "field": "sources"}}
    assert client.emit("subscribe", {}, callback=True)["sources"] == ["api", "web"]
    client.disconnect()
    assert not socketio.test_client(guarded, auth={"token": token, "sources": ["shop"]}).is_connected()


# /metrics


def test_metrics_without_a_token_answers_loopback_only(client):
    assert client.get("/metrics").status_code == 200
    remote = client.get("/metrics", environ_base={"REMOTE_ADDR": "203.0.113.7"})
    assert remote.status_code == 403 and remote.get_json()["error"]["code"] == "forbidden"
    private = client.get("/metrics", environ_base={"REMOTE_ADDR": "10.1.2.3"})
    assert private.status_code == 403  # a private peer only counts behind a proxy (TRUSTED_PROXIES)
    relayed = client.get("/metrics", headers={"X-Forwarded-For": "203.0.113.7"})
    assert relayed.status_code == 403


def test_metrics_behind_a_proxy_answers_the_private_network_but_not_relayed_requests(settings):
    client = app_with(settings, TRUSTED_PROXIES=1).test_client()
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "172.18.0.5"}).status_code == 200
    # Relayed by the proxy for someone outside: X-Forwarded-For says so, and it is refused.
    relayed = client.get("/metrics", environ_base={"REMOTE_ADDR": "172.18.0.5"}, headers={"X-Forwarded-For": "127.0.0.1"})
    assert relayed.status_code == 403
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "198.51.100.1"}).status_code == 403


def test_metrics_token_is_required_when_set(settings):
    token = "metrics-token-" + "x" * 32
    client = app_with(settings, METRICS_TOKEN=_secret(token)).test_client()
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers=bearer("wrong")).status_code == 401
    remote = {"REMOTE_ADDR": "203.0.113.7"}
    assert client.get("/metrics", headers=bearer(token), environ_base=remote).status_code == 200


def test_metrics_no_longer_shows_the_python_version(client):
    import platform

    text = client.get("/metrics").get_data(as_text=True)
    assert "python_info" not in text and platform.python_version() not in text
    assert "analytics_events_accepted_total" in text
