"""Fixtures: a real redis-server (pytest-redis starts it on a free port), settings, the app."""
from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path

import pytest
from pytest_redis import factories

BACKEND = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BACKEND))

from analytics.settings import Settings  # noqa: E402

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
def python_env() -> dict:
    """Environment for child processes: no inherited settings, no stray .env effects."""
    env = {k: v for k, v in os.environ.items() if k not in Settings.__dataclass_fields__}
    env["PYTHONUNBUFFERED"] = "1"
    return env
