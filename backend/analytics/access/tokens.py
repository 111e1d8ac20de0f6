"""Viewer tokens: JWTs signed with JWT_SECRET (HS256) or the key behind JWT_PUBLIC_KEY (RS256).

A token must carry `exp`; the algorithm is pinned to the configured one, so `alg: none` and an
HS256 token "signed" with the RSA public key are refused. An optional `sources` claim (a
non-empty list of source names) limits what the viewer may read and subscribe to."""
from __future__ import annotations

import time
from dataclasses import dataclass

import jwt

from analytics.events.schema import is_name
from analytics.settings import Settings

MAX_TOKEN_CHARS = 8192


class TokenError(ValueError):
    """Why a token was refused, in words fit for the 401 body (never the token itself)."""


@dataclass(frozen=True)
class Viewer:
    sources: frozenset[str] | None  # None: every source
    expires_at: float | None = None  # epoch seconds (the token's exp); None when tokens are off

    def may_read(self, source: str) -> bool:
        return self.sources is None or source in self.sources


class ViewerTokens:
    def __init__(self, key, algorithm: str):
        self.key = key
        self.algorithm = algorithm

    @classmethod
    def from_settings(cls, settings: Settings) -> ViewerTokens | None:
        """The configured verifier, or None when viewer tokens are off."""
        if settings.JWT_SECRET is not None:
            return cls(settings.JWT_SECRET.get_secret_value(), "HS256")
        if settings.JWT_PUBLIC_KEY is not None:
            return cls(settings.JWT_PUBLIC_KEY, "RS256")
        return None

    def verify(self, token) -> Viewer:
        if not isinstance(token, str) or not token:
            raise TokenError("a viewer token is required")
        if len(token) > MAX_TOKEN_CHARS:
            raise TokenError("the token is too long")
        try:
            claims = jwt.decode(token, self.key, algorithms=[self.algorithm], options={"require": ["exp"]})
        except jwt.ExpiredSignatureError:
            raise TokenError("the token has expired") from None
        except jwt.MissingRequiredClaimError:
            raise TokenError("the token has no exp (expiry) claim") from None
        except jwt.InvalidTokenError:
            raise TokenError("the token is not valid for this server") from None
        sources = claims.get("sources")
        if sources is None:
            return Viewer(None, float(claims["exp"]))
        if not (isinstance(sources, list) and sources and all(isinstance(s, str) and is_name(s) for s in sources)):
            raise TokenError("the token's sources claim must be a non-empty list of source names")
        return Viewer(frozenset(sources), float(claims["exp"]))


def mint(secret: str, ttl_s: int, sources: list[str] | None = None, now: float | None = None) -> str:
    """An HS256 viewer token valid for `ttl_s` seconds (manage.py new-token, tests)."""
    issued = int(now if now is not None else time.time())
    claims: dict = {"iat": issued, "exp": issued + ttl_s}
    if sources:
        claims["sources"] = sources
    return jwt.encode(claims, secret, algorithm="HS256")
