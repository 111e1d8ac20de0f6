"""Redis over TLS: the start-time checks of the TLS settings, and the connection options every
Redis client of the product is made with (backend, rate-limit storage, generator, health check),
so that a `rediss://` connection is verified unless REDIS_TLS_INSECURE says otherwise, out loud.

redis-py lets `?ssl_...=` options in the URL override the ones given in code, so those are
checked here too: `ssl_cert_reqs=none` in a URL would otherwise turn verification off unseen.
"""
from __future__ import annotations

import ssl
from typing import Any
from urllib.parse import parse_qs, urlsplit

# URL options that weaken verification: allowed only with REDIS_TLS_INSECURE=true.
WEAKENING = frozenset({"ssl_cert_reqs", "ssl_check_hostname"})
INSECURE_WARNING = ("REDIS_TLS_INSECURE=true: the Redis server's certificate is NOT verified; anyone on the "
                    "path can read and change the data and the password. Set REDIS_CA_FILE instead")


def is_tls(url: str) -> bool:
    return urlsplit(url).scheme == "rediss"


def check_ca_file(path: str) -> str:
    """`path` if it holds at least one PEM certificate; ValueError saying why not."""
    try:
        ssl.create_default_context().load_verify_locations(cafile=path)
    except ssl.SSLError:  # before OSError, its base class
        raise ValueError("holds no PEM certificate (-----BEGIN CERTIFICATE-----)") from None
    except OSError as exc:  # missing, unreadable, a directory
        raise ValueError(f"cannot be read: {exc.strerror or exc}") from None
    return path


def check_readable(path: str) -> str:
    try:
        with open(path, "rb") as f:
            f.read(1)
    except OSError as exc:
        raise ValueError(f"cannot be read: {exc.strerror or exc}") from None
    return path


def check_client_pair(cert: str, key: str | None) -> None:
    """The client certificate and its key load together; ValueError otherwise. An encrypted key
    is refused here, at start: OpenSSL would otherwise prompt for its passphrase on a terminal
    that a container does not have, at the first connection."""
    def no_passphrase() -> bytes:
        raise ValueError("REDIS_KEY_FILE: an encrypted private key is not supported (decrypt it: openssl pkey)")

    try:
        ssl.create_default_context().load_cert_chain(cert, key, password=no_passphrase)
    except ssl.SSLError as exc:
        raise ValueError(f"REDIS_CERT_FILE={cert!r}: is not a PEM certificate whose private key is in "
                         f"REDIS_KEY_FILE ({exc.reason or exc})") from None


def check_url_options(url: str, insecure: bool) -> None:
    """ValueError for `ssl_*` options in the URL, except the weakening ones with `insecure`: the
    files are settings (checked at start), and verification is turned off by a setting only."""
    for name in parse_qs(urlsplit(url).query):
        if not name.startswith("ssl_") or (insecure and name in WEAKENING):
            continue
        if name in WEAKENING:
            raise ValueError(f"?{name}= would weaken certificate verification; "
                             "set REDIS_TLS_INSECURE=true if that is really meant")
        raise ValueError(f"?{name}= is not read from the URL; use REDIS_CA_FILE, REDIS_CERT_FILE, REDIS_KEY_FILE")


def options(settings: Any) -> dict[str, Any]:
    """redis-py keyword arguments for the settings' TLS: none for `redis://`."""
    if not is_tls(settings.REDIS_URL):
        return {}
    insecure = settings.REDIS_TLS_INSECURE
    return {
        "ssl_cert_reqs": "none" if insecure else "required",
        "ssl_check_hostname": not insecure,  # redis-py < 6 defaulted to False: say it
        "ssl_ca_certs": settings.REDIS_CA_FILE,  # added to the system's CAs
        "ssl_certfile": settings.REDIS_CERT_FILE,
        "ssl_keyfile": settings.REDIS_KEY_FILE,
    }


def connect(settings: Any, **kwargs: Any):
    """A redis.Redis for the settings' URL, password and TLS; `kwargs` are more client options."""
    import redis

    return redis.Redis.from_url(settings.redis_connection_url, **options(settings), **kwargs)


def waiting_pool(settings: Any, max_connections: int, wait_s: float, **kwargs: Any):
    """A connection pool for the settings' URL, password and TLS that, once `max_connections` are
    in use, waits up to `wait_s` for one to come back instead of failing at once (redis-py's
    default pool raises "Too many connections": a crowd of requests then answered 500 and 503)."""
    import redis

    return redis.BlockingConnectionPool.from_url(settings.redis_connection_url, max_connections=max_connections,
                                                 timeout=wait_s, **options(settings), **kwargs)


def insecure_warning(settings: Any) -> str | None:
    """The line every process logs at start while verification is off, else None."""
    return INSECURE_WARNING if settings.REDIS_TLS_INSECURE and is_tls(settings.REDIS_URL) else None
