"""REDIS_URL: checked at start so a typo is one clear line, and masked wherever it is shown."""
from __future__ import annotations

from urllib.parse import parse_qs, quote, urlsplit, urlunsplit

SCHEMES = ("redis", "rediss")
FORM = "redis://[user:password@]host[:port][/db] (rediss:// for TLS)"


def mask(url: str) -> str:
    """The URL with its password replaced by ***, fit for a log line or an error message."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    if "password=" in parts.query:  # redis-py reads ?password= too
        query = "&".join("password=***" if p.startswith("password=") else p for p in parts.query.split("&"))
        url = f"{url.split('?', 1)[0]}?{query}"  # urlunsplit would drop an empty authority ("redis://?...")
        parts = urlsplit(url)
    if ":" not in parts.netloc.rpartition("@")[0]:
        return url
    userinfo, _, hostinfo = parts.netloc.rpartition("@")
    user = userinfo.split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{hostinfo}"))


def check(url: str) -> str:
    """The URL unchanged if redis-py can connect with it; ValueError naming what is wrong otherwise.

    unix:// is refused: the connection options the backend uses (TCP keepalive) do not apply to
    a socket file, and nothing here tests that path."""
    try:
        parts = urlsplit(url)
        port = parts.port  # parsing it raises for a non-numeric or out-of-range port
    except ValueError as exc:
        raise ValueError(f"{exc}; expected {FORM}") from None
    if parts.scheme == "unix":
        raise ValueError(f"unix sockets are not supported; expected {FORM}")
    if parts.scheme not in SCHEMES:
        raise ValueError(f"scheme must be redis or rediss; expected {FORM}")
    if not parts.hostname:
        raise ValueError(f"no host; expected {FORM}")
    if port == 0:
        raise ValueError("port must be 1..65535")
    db = parts.path.lstrip("/") or parse_qs(parts.query).get("db", ["0"])[0]
    if not (db.isascii() and db.isdigit()):
        raise ValueError("db must be a number")
    return url


def with_password(url: str, password: str | None) -> str:
    """The URL with `password` in place of its own (REDIS_PASSWORD keeps the secret out of the URL)."""
    if password is None:
        return url
    parts = urlsplit(url)
    userinfo, _, hostinfo = parts.netloc.rpartition("@")
    user = userinfo.split(":", 1)[0]  # as written, already percent-encoded
    return urlunsplit(parts._replace(netloc=f"{user}:{quote(password, safe='')}@{hostinfo}"))
