"""The checks on HTTP requests: producer keys on POST /api/events, viewer tokens on every REST
read but /api/health, and who may read /metrics. Installed on the app after the rate limiter,
so refused requests still count against their client's budget."""
from __future__ import annotations

import hmac
import ipaddress

from flask import Flask, g, request

from analytics.access.keys import Producer, ProducerKeys
from analytics.access.tokens import TokenError, ViewerTokens
from analytics.api.errors import ApiError, error_response
from analytics.events.filter import EventFilter
from analytics.settings import Settings

# RFC 1918 and IPv6 unique-local: where compose and k8s put the proxy and Prometheus. Not
# ipaddress' is_private, which also counts documentation and other reserved ranges.
PRIVATE_NETWORKS = tuple(ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"))
READ_BLUEPRINTS = ("metrics", "openapi")  # every REST read except health
INGEST_ENDPOINT = "events.ingest"


def unauthorized(message: str, scheme: str = "Bearer"):
    response, status = error_response(401, "unauthorized", message)
    response.headers["WWW-Authenticate"] = scheme
    return response, status


def bearer() -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


def producer(keys: ProducerKeys) -> Producer | None:
    """The producer whose X-API-Key this request carries, or None; checked once per request
    (the rate limiter asks first, to pick the key's budget)."""
    if "producer" not in g:
        g.producer = keys.authenticate(request.headers.get("X-API-Key"))
    return g.producer


def install(app: Flask, settings: Settings, keys: ProducerKeys) -> None:
    tokens = ViewerTokens.from_settings(settings)

    @app.before_request
    def check_access():
        if request.endpoint == INGEST_ENDPOINT and keys:
            if producer(keys) is None:
                return unauthorized("send a valid producer key in X-API-Key", scheme="X-API-Key")
        elif request.blueprint in READ_BLUEPRINTS and tokens:
            try:
                g.viewer = tokens.verify(bearer())
            except TokenError as exc:
                return unauthorized(f"{exc}: send Authorization: Bearer <token>")
        return None


def readable(wanted: EventFilter) -> EventFilter:
    """`wanted` limited to the viewer's sources: 403 for a source the token does not allow,
    and all of its sources (not every source) when none is asked for."""
    viewer = g.get("viewer")
    if viewer is None or viewer.sources is None:
        return wanted
    if wanted.sources - viewer.sources:
        raise ApiError(403, "forbidden", "this token may not read that source", "source")
    return EventFilter(wanted.sources or viewer.sources, wanted.metrics)


def may_scrape_metrics(settings: Settings):
    """None when this request may read /metrics; the error response otherwise.

    With METRICS_TOKEN: a Bearer token equal to it. Without: a peer on loopback (or, when
    TRUSTED_PROXIES > 0, on a private network: the proxy's and Prometheus' network) that is not
    relaying someone else's request (no X-Forwarded-For). The peer is the TCP peer, never an
    address taken from X-Forwarded-For."""
    if settings.METRICS_TOKEN is not None:
        presented = (bearer() or "").encode()
        if not hmac.compare_digest(presented, settings.METRICS_TOKEN.get_secret_value().encode()):
            return unauthorized("send Authorization: Bearer <METRICS_TOKEN>")
        return None
    peer = request.environ.get("werkzeug.proxy_fix.orig", {}).get("REMOTE_ADDR") or request.remote_addr
    try:
        address = ipaddress.ip_address(peer or "")
    except ValueError:
        address = None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    private = address is not None and any(address in network for network in PRIVATE_NETWORKS)
    local = address is not None and (address.is_loopback or (settings.TRUSTED_PROXIES > 0 and private))
    if not local or "X-Forwarded-For" in request.headers:
        return error_response(403, "forbidden", "/metrics answers local peers only, or set METRICS_TOKEN")
    return None
