"""One typed settings object, read once at start from the environment and backend/.env.

Every setting NAME may also be given as NAME_FILE, the path of a file holding the value (Docker
secrets); the environment wins over backend/.env. A bad value raises SettingsError with one line
that names the setting and never shows a secret.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from limits import parse_many
from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

from analytics import redis_tls, redis_url
from analytics.events.schema import is_name

ENV_FILE = Path(__file__).resolve().parent.parent / ".env"
KEY_PATTERN = r"^[A-Za-z0-9_.:{}\-]{1,128}$"
RedisKey = Annotated[str, Field(pattern=KEY_PATTERN)]
NonEmpty = Annotated[str, Field(min_length=1)]
# Never shown in a settings error (API_KEYS: a raw key pasted there by mistake is a secret).
SECRETS = frozenset({"REDIS_PASSWORD", "JWT_SECRET", "METRICS_TOKEN", "API_KEYS"})
MIN_SECRET_BYTES = 32
_DIGEST = re.compile(r"^[0-9a-f]{64}$")
# Loopback and private networks: where a proxy in front of the backend is (compose, k8s, a host nginx).
DEFAULT_PROXY_NETWORKS = ("127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")


class SettingsError(ValueError):
    """A setting has a bad value; the message names the setting and is fit for one log line."""


class Settings(BaseSettings):
    """Every setting the backend and generator read, with the defaults DESIGN.md names."""

    model_config = SettingsConfigDict(case_sensitive=True, env_ignore_empty=True, extra="ignore", frozen=True)

    REDIS_URL: str = "redis://localhost:6379/0"
    REDIS_PASSWORD: SecretStr | None = None  # replaces the URL's password, so none need sit in a URL
    METRICS_CHANNEL: RedisKey = "metrics"
    RECENT_KEY: RedisKey = "metrics:recent"
    RECENT_MAX: int = Field(1000, ge=1, le=100_000)
    HOST: NonEmpty = "127.0.0.1"
    PORT: int = Field(5000, ge=0, le=65535)
    CORS_ORIGINS: Annotated[list[str], NoDecode] = ["http://localhost:3000", "http://127.0.0.1:3000"]
    BATCH_MS: int = Field(20, ge=0, le=1000)
    GENERATOR_RATE: float = Field(50.0, ge=0, le=1_000_000, allow_inf_nan=False)
    LOG_LEVEL: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    ASYNC_MODE: Literal["gevent", "threading"] = "gevent"
    WS_SERVER: Literal["simple-websocket", "gevent-websocket"] = "simple-websocket"  # gevent mode's WebSocket server
    CLIENT_BACKLOG: int = Field(64, ge=2, le=10_000)
    SEND_BUDGET: int = Field(10_000, ge=100, le=10_000_000)
    DIRECT_WRITES: bool = True
    AGG_PREFIX: RedisKey = "metrics:agg"
    RATE_LIMIT: NonEmpty = "600 per minute"
    # How often each replica adds its rate-limit hits to the shared counts in Redis (api/limit_counts.py);
    # 0 = every hit counted in Redis before the answer (exact across replicas, one round trip more).
    RATE_LIMIT_SYNC_MS: int = Field(100, ge=0, le=10_000)
    INGEST_MAX_BYTES: int = Field(1 << 20, ge=1024, le=16 << 20)
    TRUSTED_PROXIES: int = Field(0, ge=0, le=5)
    STREAM_KEY: RedisKey = "metrics:log"  # the durable log (a Redis Stream)
    STREAM_MAXLEN: int = Field(100_000, ge=1_000, le=100_000_000)  # entries kept at most (~; one per message)
    STREAM_RETENTION_S: int = Field(600, ge=10, le=7 * 86400)  # recorded entries older than this are trimmed
    MAX_SERIES: int = Field(10_000, ge=1, le=1_000_000)  # distinct (source, metric) pairs; new ones past it are rejected
    # Connection bounds (gevent mode; analytics/serving, docs/security.md): slow or idle clients
    # cannot hold connections, nor one address all of them. IDLE_TIMEOUT_S stays above engine.io's
    # ping interval (25 s), the longest a polling client's POST connection rests between pongs.
    HEADER_TIMEOUT_S: float = Field(10.0, gt=0, le=600, allow_inf_nan=False)  # request line + headers, in all
    BODY_TIMEOUT_S: float = Field(30.0, gt=0, le=3600, allow_inf_nan=False)  # a whole body (from the headers); each write
    IDLE_TIMEOUT_S: float = Field(60.0, gt=0, le=3600, allow_inf_nan=False)  # a kept-alive connection between requests
    MAX_CONNECTIONS_PER_ADDRESS: int = Field(256, ge=0, le=1_000_000)  # open connections per client address; 0 = no cap
    # Access control (docs/security.md); every one off when unset, as `make run` leaves them.
    API_KEYS: Annotated[list[str], NoDecode] = []  # SHA-256 hex digests of producer keys, `digest@source` binds one
    INGEST_RATE_LIMIT: NonEmpty = "6000 per minute"  # POST /api/events per API key (when API_KEYS is set)
    JWT_SECRET: SecretStr | None = None  # HS256 viewer tokens
    JWT_PUBLIC_KEY: str | None = None  # RS256 viewer tokens (PEM); exclusive with JWT_SECRET
    METRICS_TOKEN: SecretStr | None = None  # Bearer token for /metrics; unset = local peers only
    # Redis over TLS (analytics/redis_tls.py, docs/security.md): read only with a rediss:// REDIS_URL,
    # every file checked at start. Verification is on unless REDIS_TLS_INSECURE, which every process logs.
    REDIS_TLS_INSECURE: bool = False  # no certificate verification at all (a test Redis only)
    REDIS_CA_FILE: str | None = None  # PEM CA bundle for the server's certificate (beside the system's CAs)
    REDIS_CERT_FILE: str | None = None  # PEM client certificate, for a Redis with tls-auth-clients
    REDIS_KEY_FILE: str | None = None  # its unencrypted PEM private key (unless inside REDIS_CERT_FILE)
    # Proxies (analytics/access/proxies.py): with TRUSTED_PROXIES > 0, X-Forwarded-For is read only
    # from a TCP peer in these networks (CIDRs); anyone else's is ignored.
    TRUSTED_PROXY_NETWORKS: Annotated[list[str], NoDecode] = list(DEFAULT_PROXY_NETWORKS)

    @model_validator(mode="before")
    @classmethod
    def _strip(cls, values: Any) -> Any:
        # " On " and "info\n" (an editor's trailing newline) mean what they say.
        if isinstance(values, dict):
            return {k: v.strip() if isinstance(v, str) and k not in SECRETS else v for k, v in values.items()}
        return values

    @field_validator("LOG_LEVEL", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("REDIS_URL")
    @classmethod
    def _redis_url(cls, value: str) -> str:
        return redis_url.check(value)

    @field_validator("REDIS_PASSWORD", "JWT_SECRET", "METRICS_TOKEN")
    @classmethod
    def _printable(cls, value: SecretStr | None) -> SecretStr | None:
        # A control character in a password is a paste or editor accident (a secret file's \r).
        if value is not None and not value.get_secret_value().isprintable():
            raise ValueError("has a control character (check the file or the variable for \\r or escapes)")
        return value

    @field_validator("CORS_ORIGINS", mode="before")
    @classmethod
    def _origins(cls, value: Any) -> Any:
        origins = [o.strip() for o in value.split(",") if o.strip()] if isinstance(value, str) else value
        if not origins:
            raise ValueError("list the dashboard origins, comma separated")
        for origin in origins:
            if origin != "*" and not origin.startswith(("http://", "https://")):
                raise ValueError(f"{origin!r} is not an http(s) origin")
        return origins

    @field_validator("RATE_LIMIT", "INGEST_RATE_LIMIT")
    @classmethod
    def _rate_limit(cls, value: str) -> str:
        parse_many(value)  # raises ValueError with limits' own words for "lots per hour"
        return value

    @field_validator("API_KEYS", mode="before")
    @classmethod
    def _api_keys(cls, value: Any) -> Any:
        entries = [e.strip().lower() for e in value.split(",") if e.strip()] if isinstance(value, str) else value
        for n, entry in enumerate(entries, 1):
            digest, _, source = entry.partition("@")
            if not _DIGEST.match(digest) or ("@" in entry and not is_name(source)):
                # The entry itself is not shown: a key pasted here by mistake must not reach a log.
                raise ValueError(f"entry {n} is not a SHA-256 hex digest[@source]; "
                                 "`python backend/manage.py new-key` prints one")
        return entries

    @field_validator("JWT_SECRET", "METRICS_TOKEN")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value().encode()) < MIN_SECRET_BYTES:
            raise ValueError(f"must be at least {MIN_SECRET_BYTES} bytes (try: openssl rand -hex 32)")
        return value

    @field_validator("JWT_PUBLIC_KEY")
    @classmethod
    def _public_key(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        if info.data.get("JWT_SECRET") is not None:
            raise ValueError("JWT_SECRET is set too; set one of them")
        from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
        from cryptography.hazmat.primitives.serialization import load_pem_public_key

        try:
            key = load_pem_public_key(value.encode())
        except ValueError:
            raise ValueError("is not a PEM public key (-----BEGIN PUBLIC KEY-----)") from None
        if not isinstance(key, RSAPublicKey):
            raise ValueError("must be an RSA public key (RS256)")
        return value

    @field_validator("REDIS_CA_FILE")
    @classmethod
    def _ca_file(cls, value: str | None) -> str | None:
        return value and redis_tls.check_ca_file(value)

    @field_validator("REDIS_CERT_FILE", "REDIS_KEY_FILE")
    @classmethod
    def _readable(cls, value: str | None) -> str | None:
        return value and redis_tls.check_readable(value)

    @field_validator("TRUSTED_PROXY_NETWORKS", mode="before")
    @classmethod
    def _networks(cls, value: Any) -> Any:
        import ipaddress

        entries = [e.strip() for e in value.split(",") if e.strip()] if isinstance(value, str) else value
        for entry in entries:
            try:
                ipaddress.ip_network(entry)
            except ValueError:
                raise ValueError(f"{entry!r} is not a network (CIDR, e.g. 172.18.0.0/16)") from None
        return entries

    @model_validator(mode="after")
    def _redis_tls(self) -> Settings:
        # Across settings, so each message names its setting itself (describe() keeps it whole).
        url = redis_url.mask(self.REDIS_URL)
        try:
            redis_tls.check_url_options(self.REDIS_URL, self.REDIS_TLS_INSECURE)
        except ValueError as exc:
            raise ValueError(f"REDIS_URL={url!r}: {exc}") from None
        files = [n for n in ("REDIS_CA_FILE", "REDIS_CERT_FILE", "REDIS_KEY_FILE") if getattr(self, n)]
        if not redis_tls.is_tls(self.REDIS_URL):
            # The operator meant TLS: a plain connection would send the password in clear.
            named = files + (["REDIS_TLS_INSECURE"] if self.REDIS_TLS_INSECURE else [])
            if named:
                raise ValueError(f"{named[0]} is set but REDIS_URL={url!r} is not TLS; use rediss://")
        if self.REDIS_TLS_INSECURE and self.REDIS_CA_FILE:
            raise ValueError("REDIS_TLS_INSECURE=true turns verification off, so REDIS_CA_FILE would do nothing; keep one")
        if self.REDIS_KEY_FILE and not self.REDIS_CERT_FILE:
            raise ValueError("REDIS_KEY_FILE is set without REDIS_CERT_FILE; set both")
        if self.REDIS_CERT_FILE:
            redis_tls.check_client_pair(self.REDIS_CERT_FILE, self.REDIS_KEY_FILE)
        return self

    @property
    def redis_connection_url(self) -> str:
        """REDIS_URL with REDIS_PASSWORD in it: what to connect with, never what to show."""
        password = self.REDIS_PASSWORD.get_secret_value() if self.REDIS_PASSWORD else None
        return redis_url.with_password(self.REDIS_URL, password)

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings, dotenv_settings,
                                   file_secret_settings):
        return (init_settings, FileVariants(settings_cls, env_settings.env_vars), env_settings,
                FileVariants(settings_cls, dotenv_settings.env_vars), dotenv_settings)

    @classmethod
    def from_env(cls, env_file: Path | None = ENV_FILE) -> Settings:
        """Read the environment (and `env_file` if it exists); SettingsError names a bad setting."""
        try:
            return cls(_env_file=env_file if env_file and env_file.exists() else None)
        except ValidationError as exc:
            raise SettingsError(describe(exc)) from None

    @classmethod
    def variable_names(cls) -> list[str]:
        """Every environment variable the settings read: NAME and NAME_FILE of each."""
        return [n for name in cls.model_fields for n in (name, f"{name}_FILE")]


class FileVariants(PydanticBaseSettingsSource):
    """NAME_FILE=/path sets NAME to that file's content, trailing newline stripped."""

    def __init__(self, settings_cls: type[BaseSettings], variables: Mapping[str, str | None]):
        super().__init__(settings_cls)
        self.variables = variables

    def get_field_value(self, field, field_name):  # required by the base class; __call__ does the work
        return None, field_name, False

    def __call__(self) -> dict[str, str]:
        values = {}
        for name in self.settings_cls.model_fields:
            path = self.variables.get(f"{name}_FILE")
            if not path:
                continue
            if self.variables.get(name):  # two sources at one level: neither can quietly win
                raise SettingsError(f"{name} and {name}_FILE are both set; keep one")
            try:
                values[name] = Path(path).read_text().rstrip("\r\n")
            except (OSError, UnicodeDecodeError) as exc:
                why = getattr(exc, "strerror", None) or type(exc).__name__
                raise SettingsError(f"{name}_FILE={path!r} cannot be read: {why}") from None
        return values


def describe(exc: ValidationError) -> str:
    """One line for every bad setting: its name, its value (masked where secret), what is wrong."""
    parts = []
    for error in exc.errors(include_url=False):
        message = error["msg"].removeprefix("Value error, ")
        if not error["loc"]:  # a check across settings: its message names the setting
            parts.append(message)
            continue
        name = str(error["loc"][0])
        value = error.get("input")
        if name in SECRETS:
            shown = ""
        elif name == "REDIS_URL" and isinstance(value, str):
            shown = f"={redis_url.mask(value)!r}"
        else:
            shown = f"={value!r}"[:80] if isinstance(value, str | int | float) else ""
        parts.append(f"{name}{shown}: {message}")
    return "; ".join(parts)
