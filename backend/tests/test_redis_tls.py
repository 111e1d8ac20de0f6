"""Redis over TLS with a real redis-server speaking TLS only (certificates made by openssl for
this run, devstack/tls.py): the whole pipeline over a verified connection, a wrong CA failing
closed, a client certificate when Redis requires one, REDIS_TLS_INSECURE connecting and saying
so at every start, and `ssl_cert_reqs=none` refused without it."""
from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
import redis

from analytics.redis_tls import INSECURE_WARNING
from devstack.processes import (
    APP,
    BACKEND,
    GENERATOR,
    backend,
    clean_env,
    generator,
    get_json,
    http_status,
    log_file,
    output_of,
    published,
    read_log,
    redis_server,
)
from devstack.tls import make_tls_files

pytestmark = pytest.mark.e2e
HEALTHCHECK = BACKEND / "healthcheck.py"


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    return make_tls_files(tmp_path_factory.mktemp("tls"))


def post(base: str, events: list[dict]) -> tuple[int, dict]:
    req = urllib.request.Request(f"{base}/api/events", data=json.dumps(events).encode(),
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


def recent_ids(base: str) -> set[str]:
    return {e["id"] for e in get_json(f"{base}/api/metrics/recent?limit=1000")["events"]}


def wait_for(check, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def verified_client(url: str, tls) -> redis.Redis:
    """The test's own look into the TLS Redis (with the client certificate, so it works whatever
    the server requires)."""
    return redis.Redis.from_url(url, ssl_ca_certs=str(tls.ca), ssl_certfile=str(tls.client_cert),
                                ssl_keyfile=str(tls.client_key))


def healthcheck_generator(url: str, **settings) -> subprocess.CompletedProcess:
    """The generator's container health check: a log entry within 3 of its send intervals (6 s at
    GENERATOR_RATE=0.5, room for a busy machine between the generator's last send and this)."""
    env = clean_env(REDIS_URL=url, GENERATOR_RATE="0.5", **settings)
    return subprocess.run([sys.executable, str(HEALTHCHECK), "generator"], env=env,
                          capture_output=True, text=True, timeout=60, check=False)


def test_the_whole_pipeline_over_verified_tls(tls):
    with redis_server(tls=tls) as (url, _, _), \
            backend(url, REDIS_CA_FILE=tls.ca, RATE_LIMIT="20 per minute") as base:
        assert get_json(f"{base}/api/health")["redis"] == "up"
        status, body = post(base, [{"metric": "orders", "value": 1.5, "source": "tls"}])
        assert status == 202, body
        # The generator over TLS too; its health check reads the log over TLS.
        gen = generator(url, "--rate", "200", "--duration", "1", "--seed", "7", REDIS_CA_FILE=tls.ca)
        assert published(gen) == 200
        check = healthcheck_generator(url, REDIS_CA_FILE=tls.ca)
        assert check.returncode == 0, check.stderr
        assert wait_for(lambda: len(recent_ids(base)) == 201), len(recent_ids(base))
        assert set(body["ids"]) <= recent_ids(base)
        # The rate limits are kept in the same Redis, over the same TLS: the budget runs out.
        statuses = [http_status(f"{base}/api/metrics/recent") for _ in range(20)]
        assert 429 in statuses and verified_client(url, tls).keys("metrics:agg:limits*")


def test_a_wrong_ca_fails_closed(tls):
    with redis_server(tls=tls) as (url, _, _):
        with backend(url, healthy=False, REDIS_CA_FILE=tls.wrong_ca) as base:
            health = get_json_any(f"{base}/api/health")
            assert health[0] == 503 and health[1]["status"] == "degraded" and health[1]["redis"] == "down"
            status, body = post(base, [{"metric": "orders", "value": 1}])
            assert status == 503 and body["error"]["code"] == "redis_unavailable"
            assert wait_for(lambda: "certificate verify failed" in output_of(base)), output_of(base)
        # The generator keeps retrying and says why; SIGTERM ends it with nothing sent.
        with log_file("generator") as log:
            proc = subprocess.Popen([sys.executable, str(GENERATOR), "--rate", "50"], stdout=log,
                                    stderr=subprocess.STDOUT, env=clean_env(REDIS_URL=url, REDIS_CA_FILE=tls.wrong_ca))
            try:
                assert wait_for(lambda: "certificate verify failed" in read_log(log)), read_log(log)
            finally:
                proc.terminate()
                assert proc.wait(10) == 0
        check = healthcheck_generator(url, REDIS_CA_FILE=tls.wrong_ca)
        assert check.returncode == 1 and "certificate verify failed" in check.stderr
        peek = verified_client(url, tls)
        assert peek.xlen("metrics:log") == 0 and peek.llen("metrics:recent") == 0  # nothing got in


def test_a_client_certificate_when_redis_requires_one(tls):
    with redis_server(tls=tls, tls_auth_clients="yes") as (url, _, _):
        with backend(url, REDIS_CA_FILE=tls.ca, REDIS_CERT_FILE=tls.client_cert, REDIS_KEY_FILE=tls.client_key) as base:
            status, body = post(base, [{"metric": "orders", "value": 2, "source": "cert"}])
            assert status == 202, body
            assert wait_for(lambda: set(body["ids"]) <= recent_ids(base))
            gen = generator(url, "--rate", "100", "--duration", "0.5", REDIS_CA_FILE=tls.ca,
                            REDIS_CERT_FILE=tls.client_cert, REDIS_KEY_FILE=tls.client_key)
            assert published(gen) == 50
        with backend(url, healthy=False, REDIS_CA_FILE=tls.ca) as base:  # no client certificate
            assert get_json_any(f"{base}/api/health")[0] == 503
            assert post(base, [{"metric": "orders", "value": 3}])[0] == 503


def test_insecure_connects_and_says_so_at_every_start(tls):
    with redis_server(tls=tls) as (url, _, _):
        for _ in range(2):  # every start, not the first only
            with backend(url, REDIS_TLS_INSECURE="true") as base:
                assert post(base, [{"metric": "orders", "value": 4}])[0] == 202
                assert f"WARNING backend: {INSECURE_WARNING}" in output_of(base)
        # A URL that asks for no verification is accepted when the flag says so.
        with backend(f"{url}?ssl_cert_reqs=none", REDIS_TLS_INSECURE="true") as base:
            assert INSECURE_WARNING in output_of(base)
        gen = generator(url, "--rate", "20", "--duration", "0.2", REDIS_TLS_INSECURE="true")
        assert published(gen) == 4 and INSECURE_WARNING in gen.stderr
        check = healthcheck_generator(url, REDIS_TLS_INSECURE="true")
        assert check.returncode == 0 and INSECURE_WARNING in check.stderr


@pytest.mark.parametrize("entry_point", [APP, GENERATOR, HEALTHCHECK], ids=["backend", "generator", "healthcheck"])
def test_no_verification_in_the_url_without_the_flag_is_refused_in_one_line(entry_point, tls):
    url = "rediss://app:hunter2@127.0.0.1:6380/0?ssl_cert_reqs=none"
    argv = [sys.executable, str(entry_point)] + (["generator"] if entry_point == HEALTHCHECK else [])
    proc = subprocess.run(argv, env=clean_env(REDIS_URL=url), capture_output=True, text=True, timeout=60, check=False)
    [line] = proc.stderr.splitlines()
    assert "REDIS_URL=" in line and "ssl_cert_reqs" in line and "REDIS_TLS_INSECURE" in line, line
    assert "hunter2" not in line
    assert proc.returncode == (1 if entry_point == HEALTHCHECK else 2)


@pytest.mark.parametrize("name", ["REDIS_CA_FILE", "REDIS_CERT_FILE"])
def test_a_missing_tls_file_stops_the_backend_in_one_line(name, tls, tmp_path):
    settings = {"REDIS_CA_FILE": tls.ca, name: tmp_path / "missing.pem"}
    if name == "REDIS_CERT_FILE":
        settings["REDIS_KEY_FILE"] = tls.client_key
    proc = subprocess.run([sys.executable, str(APP)], env=clean_env(REDIS_URL="rediss://127.0.0.1:6380/0", **settings),
                          capture_output=True, text=True, timeout=60, check=False)
    [line] = proc.stderr.splitlines()
    assert proc.returncode == 2 and line.startswith(f"backend: bad setting: {name}=") and "No such file" in line


def get_json_any(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)

