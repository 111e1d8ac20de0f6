"""One typed settings object, read once at start from the environment (and backend/.env)."""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from urllib.parse import urlparse

ENV_FILE = Path(__file__).resolve().parent.parent / ".env"
ASYNC_MODES = ("gevent", "threading")
WS_SERVERS = ("gevent-websocket", "simple-websocket")  # gevent mode's WebSocket server
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_KEY_RE = re.compile(r"^[A-Za-z0-9_.:{}\-]{1,128}$")


class SettingsError(ValueError):
    """A setting has a bad value; the message names the setting and is fit for one log line."""


def _int(name: str, raw: str, lo: int, hi: int) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a whole number") from None
    if not lo <= value <= hi:
        raise SettingsError(f"{name}={value} is out of range {lo}..{hi}")
    return value


def _float(name: str, raw: str, lo: float, hi: float) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a number") from None
    if not lo <= value <= hi:
        raise SettingsError(f"{name}={value} is out of range {lo}..{hi}")
    return value


def _choice(name: str, raw: str, choices: tuple[str, ...]) -> str:
    value = raw.strip()
    if name == "LOG_LEVEL":
        value = value.upper()
    if value not in choices:
        raise SettingsError(f"{name}={raw!r} must be one of {', '.join(choices)}")
    return value


def _redis_url(name: str, raw: str) -> str:
    parsed = urlparse(raw)
    if parsed.scheme not in ("redis", "rediss", "unix") or not (parsed.hostname or parsed.path):
        raise SettingsError(f"{name}={raw!r} must look like redis://[user:password@]host:port/db")
    return raw


def _key(name: str, raw: str) -> str:
    if not _KEY_RE.match(raw):
        raise SettingsError(f"{name}={raw!r} must be 1-128 of A-Za-z0-9_.:{{}}-")
    return raw


def _origins(name: str, raw: str) -> list[str]:
    origins = [o.strip() for o in raw.split(",") if o.strip()]
    if not origins:
        raise SettingsError(f"{name} is empty; list the dashboard origins, comma separated")
    for origin in origins:
        if origin != "*" and urlparse(origin).scheme not in ("http", "https"):
            raise SettingsError(f"{name}: {origin!r} is not an http(s) origin")
    return origins


@dataclass(frozen=True)
class Settings:
    """Every setting the backend and generator read, with the defaults DESIGN.md names."""

    REDIS_URL: str = "redis://localhost:6379/0"
    METRICS_CHANNEL: str = "metrics"
    RECENT_KEY: str = "metrics:recent"
    RECENT_MAX: int = 1000
    HOST: str = "127.0.0.1"
    PORT: int = 5000
    CORS_ORIGINS: list[str] = field(default_factory=lambda: ["http://localhost:3000", "http://127.0.0.1:3000"])
    BATCH_MS: int = 20
    GENERATOR_RATE: float = 50.0
    LOG_LEVEL: str = "INFO"
    ASYNC_MODE: str = "gevent"
    CLIENT_BACKLOG: int = 64
    SEND_BUDGET: int = 10_000
    DIRECT_WRITES: bool = True
    WS_SERVER: str = "simple-websocket"
    AGG_PREFIX: str = "metrics:agg"
    RATE_LIMIT: str = "600 per minute"
    INGEST_MAX_BYTES: int = 1 << 20
    TRUSTED_PROXIES: int = 0

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, env_file: Path | None = ENV_FILE) -> Settings:
        """Read settings from `env` (default: os.environ, after loading backend/.env if present)."""
        if env is None:
            if env_file is not None and env_file.exists():
                from dotenv import load_dotenv

                load_dotenv(env_file, override=False)
            env = dict(os.environ)
        parsers = {
            "REDIS_URL": _redis_url,
            "METRICS_CHANNEL": _key,
            "RECENT_KEY": _key,
            "AGG_PREFIX": _key,
            "RECENT_MAX": lambda n, r: _int(n, r, 1, 100_000),
            "HOST": lambda n, r: r.strip() or _fail(n, "is empty"),
            "PORT": lambda n, r: _int(n, r, 0, 65535),
            "CORS_ORIGINS": _origins,
            "BATCH_MS": lambda n, r: _int(n, r, 0, 1000),
            "GENERATOR_RATE": lambda n, r: _float(n, r, 0.0, 1_000_000.0),
            "LOG_LEVEL": lambda n, r: _choice(n, r, LOG_LEVELS),
            "ASYNC_MODE": lambda n, r: _choice(n, r, ASYNC_MODES),
            "CLIENT_BACKLOG": lambda n, r: _int(n, r, 2, 10_000),
            "SEND_BUDGET": lambda n, r: _int(n, r, 100, 10_000_000),
            "DIRECT_WRITES": _bool,
            "WS_SERVER": lambda n, r: _choice(n, r, WS_SERVERS),
            "RATE_LIMIT": lambda n, r: r.strip() or _fail(n, "is empty"),
            "INGEST_MAX_BYTES": lambda n, r: _int(n, r, 1024, 16 << 20),
            "TRUSTED_PROXIES": lambda n, r: _int(n, r, 0, 5),
        }
        values = {}
        for f in fields(cls):
            raw = env.get(f.name)
            if raw is not None and raw != "":
                values[f.name] = parsers[f.name](f.name, raw)
        return cls(**values)


def _bool(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{name} must be true or false, got {raw!r}")


def _fail(name: str, why: str):
    raise SettingsError(f"{name} {why}")
