"""X-Forwarded-For, trusted only from the proxy: with TRUSTED_PROXIES = N, the last N entries
of X-Forwarded-For (and X-Forwarded-Proto) name the client only when the TCP peer is in
TRUSTED_PROXY_NETWORKS (by default loopback and private networks, where nginx or an ingress sits).
From any other peer the headers are ignored and the peer is the client, so a backend port reached
past the proxy cannot pick its own rate-limit budget (or anyone else's)."""
from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable

from werkzeug.middleware.proxy_fix import ProxyFix


def peer_address(remote_addr: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(remote_addr or "")
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped  # a dual-stack socket's view of an IPv4 peer
    return address


class TrustedProxies:
    def __init__(self, app: Callable, hops: int, networks: list[str]):
        self.app = app
        self.through_proxy = ProxyFix(app, x_for=hops, x_proto=hops)
        self.networks = [ipaddress.ip_network(n) for n in networks]

    def trusted(self, remote_addr: str | None) -> bool:
        address = peer_address(remote_addr)
        return address is not None and any(address in network for network in self.networks)

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        app = self.through_proxy if self.trusted(environ.get("REMOTE_ADDR")) else self.app
        return app(environ, start_response)
