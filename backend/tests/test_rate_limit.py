"""Rate limits: counted in Redis (shared by replicas), one budget per client across every
limited endpoint, a separate ingest budget per producer key, Retry-After on 429. Counted in Redis
before every answer (RATE_LIMIT_SYNC_MS=0, the exact mode most tests here pin down), or in each
process and added to Redis's counts every RATE_LIMIT_SYNC_MS (the default; the tests at the end)."""
from __future__ import annotations

import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import redis

from analytics.access.keys import new_key
from analytics.factory import create_app
from devstack.processes import backend, redis_server

ACL_FILE = Path(__file__).resolve().parents[2] / "deploy" / "redis" / "acl.conf"


def status(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.headers
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers


def app_with(settings, **update):
    update.setdefault("RATE_LIMIT_SYNC_MS", 0)
    return create_app(settings.model_copy(update=update), start_stream=False).test_client()


def test_an_app_with_a_high_limit_is_not_held_to_an_earlier_apps_low_limit(settings):
    low = app_with(settings, RATE_LIMIT="2 per minute")
    assert [low.get("/api/metrics/recent").status_code for _ in range(3)] == [200, 200, 429]

    high = app_with(settings, RATE_LIMIT="100 per minute")
    assert [high.get("/api/metrics/recent").status_code for _ in range(5)] == [200] * 5


def test_one_budget_per_client_across_every_endpoint_with_retry_after(settings):
    client = app_with(settings, RATE_LIMIT="3 per minute")
    paths = ["/api/metrics/recent", "/api/metrics/aggregate", "/api/openapi.json"]
    assert [client.get(p).status_code for p in paths] == [200, 200, 200]
    refused = client.post("/api/events", json={"metric": "orders", "value": 1})
    assert refused.status_code == 429
    assert refused.get_json()["error"]["code"] == "too_many_requests"
    assert 0 < int(refused.headers["Retry-After"]) <= 60
    assert refused.headers["X-RateLimit-Limit"] == "3" and refused.headers["X-RateLimit-Remaining"] == "0"
    assert client.get("/api/health").status_code in (200, 503)  # exempt
    other = client.get("/api/metrics/recent", environ_base={"REMOTE_ADDR": "127.0.0.2"})
    assert other.status_code == 200  # another client has its own budget


def test_an_answer_under_the_limit_costs_one_limit_command_and_no_headers(settings):
    """The X-RateLimit-* headers need the window's stats: two more Redis round trips that every
    answer waited on (a /recent read made four, and its p99 under ingest followed). They go on
    the 429 only; an answer under the limit costs the limit's one script call beside its own read."""
    client = app_with(settings, RATE_LIMIT="100 per minute")
    client.get("/api/metrics/recent?limit=5")  # scripts loaded, keys made
    probe = redis.Redis.from_url(settings.REDIS_URL)

    def calls() -> dict[str, int]:
        return {name: stat["calls"] for name, stat in probe.info("commandstats").items() if name != "cmdstat_info"}

    before = calls()
    answers = [client.get("/api/metrics/recent?limit=5") for _ in range(10)]
    assert [a.status_code for a in answers] == [200] * 10
    after = calls()
    # Round trips per read: the limit's EVALSHA (its INCRBY runs inside the script) and the LRANGE;
    # the window's stats (GET, TTL) were two more.
    assert {name: n - before.get(name, 0) for name, n in after.items() if n != before.get(name, 0)} == {
        "cmdstat_evalsha": 10, "cmdstat_incrby": 10, "cmdstat_lrange": 10}
    assert not any(name.startswith("X-RateLimit") for a in answers for name in a.headers.keys())


def test_two_apps_on_one_redis_share_the_budget(settings):
    one, two = (app_with(settings, RATE_LIMIT="4 per minute") for _ in range(2))
    statuses = [c.get("/api/metrics/recent").status_code for c in (one, two, one, two, one, two)]
    assert statuses == [200, 200, 200, 200, 429, 429]


def test_with_keys_ingest_counts_against_the_keys_budget_not_the_clients(settings):
    key_a, entry_a = new_key()
    key_b, entry_b = new_key()
    client = app_with(settings, RATE_LIMIT="2 per minute", INGEST_RATE_LIMIT="3 per minute", API_KEYS=[entry_a, entry_b])

    def ingest(key):
        return client.post("/api/events", json={"metric": "orders", "value": 1}, headers={"X-API-Key": key})

    assert [ingest(key_a).status_code for _ in range(4)] == [202, 202, 202, 429]
    assert ingest(key_b).status_code == 202  # each key has its own budget
    # Without a valid key: the client's budget, so guessing keys is not free.
    assert [ingest(f"guess-{n}").status_code for n in range(3)] == [401, 401, 429]
    assert client.get("/api/metrics/recent").status_code == 429


@pytest.mark.e2e
def test_two_backend_processes_on_one_redis_share_the_budget():
    password = "limits need the password too"  # the limiter's storage connects with REDIS_PASSWORD
    with redis_server(None, "--requirepass", password, password=password) as (url, _, _), \
            backend(url, RATE_LIMIT="5 per minute", REDIS_PASSWORD=password, RATE_LIMIT_SYNC_MS=0) as one, \
            backend(url, RATE_LIMIT="5 per minute", REDIS_PASSWORD=password, RATE_LIMIT_SYNC_MS=0) as two:
        answers = [status(f"{base}/api/metrics/recent") for base in (one, two, one, two, one, two)]
        assert [code for code, _ in answers] == [200] * 5 + [429]
        assert int(answers[-1][1]["Retry-After"]) > 0


@pytest.mark.e2e
def test_the_backends_acl_user_may_keep_the_rate_limits():
    """The backend's line of deploy/redis/acl.conf (commands and key pattern) is enough for the limits."""
    rules = next(line for line in ACL_FILE.read_text().splitlines() if line.startswith("backend ")).split()[1:]
    with redis_server() as (url, port, _):
        redis.Redis(host="127.0.0.1", port=port).execute_command("ACL", "SETUSER", "backend", "on", ">acl-pass", *rules)
        acl_url = url.replace("redis://", "redis://backend:acl-pass@")
        with backend(acl_url, RATE_LIMIT="2 per minute", RATE_LIMIT_SYNC_MS=50) as base:
            assert [status(f"{base}/api/metrics/recent")[0] for _ in range(3)] == [200, 200, 429]
            key_made = time.monotonic() + 10
            keys = redis.Redis(host="127.0.0.1", port=port).keys("*limits*")
            while not keys and time.monotonic() < key_made:  # the sync writes with the same user
                time.sleep(0.05)
                keys = redis.Redis(host="127.0.0.1", port=port).keys("*limits*")
            assert keys


# The default: counted in each process, added to Redis's counts every RATE_LIMIT_SYNC_MS.

def synced_app(settings, **update):
    app = create_app(settings.model_copy(update={"RATE_LIMIT_SYNC_MS": 100, **update}), start_stream=False)
    return app.test_client(), app.extensions["analytics"].limit_counts


def test_a_synced_answer_waits_on_no_limit_command(settings):
    client, counts = synced_app(settings, RATE_LIMIT="100 per minute")
    client.get("/api/metrics/recent?limit=5")  # the pool's first connection made
    probe = redis.Redis.from_url(settings.REDIS_URL)

    def calls() -> dict[str, int]:
        return {name: stat["calls"] for name, stat in probe.info("commandstats").items() if name != "cmdstat_info"}

    before = calls()
    assert [client.get("/api/metrics/recent?limit=5").status_code for _ in range(10)] == [200] * 10
    after = calls()
    assert {name: n - before.get(name, 0) for name, n in after.items() if n != before.get(name, 0)} == {
        "cmdstat_lrange": 10}
    # The eleven hits reach Redis in one round trip: the script (loaded in passing; its INCRBY,
    # and EXPIRE as the key is new) and a TTL.
    counts.sync()
    synced = calls()
    assert {name: n - after.get(name, 0) for name, n in synced.items() if n != after.get(name, 0)} == {
        "cmdstat_script|load": 1, "cmdstat_evalsha": 1, "cmdstat_incrby": 1, "cmdstat_expire": 1, "cmdstat_ttl": 1}
    assert [int(probe.get(key)) for key in probe.keys(f"{settings.AGG_PREFIX}:limits*")] == [11]


def test_synced_apps_share_the_budget_from_the_next_sync_on(settings):
    (one, one_counts), (two, two_counts) = (synced_app(settings, RATE_LIMIT="5 per minute") for _ in range(2))
    assert [one.get("/api/metrics/recent").status_code for _ in range(3)] == [200] * 3
    one_counts.sync()
    two_counts.sync()  # nothing of its own to add yet; it learns the total with its first hits
    assert [two.get("/api/metrics/recent").status_code for _ in range(2)] == [200, 200]
    two_counts.sync()  # 3 + 2: the shared budget is spent
    assert [two.get("/api/metrics/recent").status_code for _ in range(2)] == [429, 429]
    # One learns the total when it adds its own hits: until then it decides on 3 (the bound
    # docs/security.md states), and never past the budget on its own.
    assert one.get("/api/metrics/recent").status_code == 200
    one_counts.sync()
    refused = one.get("/api/metrics/recent")
    assert refused.status_code == 429 and 0 < int(refused.headers["Retry-After"]) <= 60


def test_a_stopping_app_adds_the_hits_since_its_last_sync(settings):
    client, _counts = synced_app(settings, RATE_LIMIT="100 per minute")
    assert [client.get("/api/openapi.json").status_code for _ in range(3)] == [200] * 3
    client.application.extensions["analytics"].stop()
    probe = redis.Redis.from_url(settings.REDIS_URL)
    assert [int(probe.get(key)) for key in probe.keys(f"{settings.AGG_PREFIX}:limits*")] == [3]


def test_one_synced_app_never_admits_more_than_the_budget_between_syncs(settings):
    client, _counts = synced_app(settings, RATE_LIMIT="3 per minute")
    assert [client.get("/api/metrics/recent").status_code for _ in range(5)] == [200, 200, 200, 429, 429]


def test_hits_made_while_redis_is_away_are_added_when_it_is_back(settings, redis_proc):
    client, counts = synced_app(settings, RATE_LIMIT="100 per minute")
    probe = redis.Redis.from_url(settings.REDIS_URL)
    client.get("/api/openapi.json")
    counts.sync()
    probe.config_set("maxmemory", 1)  # Redis refuses the sync's writes (OOM), as one that is away would
    probe.config_set("maxmemory-policy", "noeviction")
    try:
        assert [client.get("/api/openapi.json").status_code for _ in range(4)] == [200] * 4
        with pytest.raises(redis.RedisError):
            counts.sync()
    finally:
        probe.config_set("maxmemory", 0)
    counts.sync()
    assert [int(probe.get(key)) for key in probe.keys(f"{settings.AGG_PREFIX}:limits*")] == [5]
