"""Fixtures: a real redis-server (pytest-redis starts it on a free port), settings, the app."""
from __future__ import annotations

import logging
import os
import uuid

import pytest
from pytest_redis import factories

from analytics.settings import Settings
from devstack import leaks, processes

# A developer's shell settings must not change what the tests see, here or in child processes.
for _name in Settings.variable_names():
    os.environ.pop(_name, None)



@pytest.fixture(scope="session", autouse=True)
def no_secret_in_any_log(tmp_path_factory):
    """Every process the tests start writes its output into one folder for the session (see
    devstack.processes), and this process's own log records go there too. When the session
    ends, no secret handed to a process (JWT secrets, producer keys, Redis passwords,
    METRICS_TOKEN, tokens) may be found in any of it: the last test's teardown fails otherwise."""
    folder = tmp_path_factory.mktemp("process-logs")
    os.environ["DEVSTACK_LOG_DIR"] = str(folder)
    own = logging.FileHandler(folder / "pytest.log")
    logging.getLogger().addHandler(own)
    yield folder
    logging.getLogger().removeHandler(own)
    own.close()
    os.environ.pop("DEVSTACK_LOG_DIR", None)
    found = leaks.find(folder, processes.handed_out())
    assert not found, f"secrets in the logs of {folder}: {'; '.join(found)}"


redis_proc = factories.redis_proc(timeout=30)
redisdb = factories.redisdb("redis_proc")


@pytest.fixture
def redis_url(redis_proc) -> str:
    """URL of the test redis-server."""
    return f"redis://{redis_proc.host}:{redis_proc.port}/0"


@pytest.fixture
def settings(redis_url, redisdb) -> Settings:
    """Settings for an in-process app: threading mode, a unique channel, the test Redis."""
    unique = uuid.uuid4().hex[:8]
    return Settings(REDIS_URL=redis_url, ASYNC_MODE="threading", METRICS_CHANNEL=f"metrics-{unique}",
                    RECENT_KEY=f"recent-{unique}", AGG_PREFIX=f"agg-{unique}", STREAM_KEY=f"log-{unique}", RECENT_MAX=50,
                    RATE_LIMIT="10000 per minute", CORS_ORIGINS=["http://localhost:3000"])


@pytest.fixture
def app(settings):
    """The Flask app without background tasks; tests feed the stream stages directly."""
    from analytics.factory import create_app

    return create_app(settings, start_stream=False)


@pytest.fixture
def client(app):
    """Flask test client."""
    return app.test_client()


@pytest.fixture
def runtime(app):
    """The app's shared stream parts (Redis, cache, aggregates, fan-out)."""
    return app.extensions["analytics"]


@pytest.fixture
def redis_url_fresh():
    """A private redis-server for one scenario (real-process tests that kill and restart things)."""
    from devstack.processes import redis_server

    with redis_server() as (url, _, _):
        yield url
