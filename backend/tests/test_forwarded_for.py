"""X-Forwarded-For is trusted only from the proxy: with TRUSTED_PROXIES=0 (make run) a forged one
changes nothing, and with TRUSTED_PROXIES=1 it names the client only when the TCP peer is in
TRUSTED_PROXY_NETWORKS. Real requests to real backends, with the rate limit as the witness: the
budget a request counts against is the client address the backend believed."""
from __future__ import annotations

import urllib.error
import urllib.request

import pytest

from analytics.access.proxies import TrustedProxies
from devstack.processes import backend, redis_server


def status(url: str, forwarded_for: str) -> int:
    req = urllib.request.Request(url, headers={"X-Forwarded-For": forwarded_for})
    try:
        with urllib.request.urlopen(req, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def statuses(base: str, *forged: str) -> list[int]:
    return [status(f"{base}/api/metrics/recent", f) for f in forged]


@pytest.mark.e2e
@pytest.mark.parametrize("settings", [{}, {"TRUSTED_PROXIES": "1", "TRUSTED_PROXY_NETWORKS": "10.0.0.0/8"}],
                         ids=["no-proxies", "peer-outside-the-proxy-networks"])
def test_a_forged_forwarded_for_does_not_buy_a_new_budget(settings):
    with redis_server() as (url, _, _), backend(url, RATE_LIMIT="2 per minute", **settings) as base:
        assert statuses(base, "198.51.100.1", "198.51.100.2", "198.51.100.3") == [200, 200, 429]


@pytest.mark.e2e
def test_from_a_peer_in_the_proxy_networks_it_names_the_client():
    """The other side of the test above (so it can tell): loopback is a default proxy network."""
    with redis_server() as (url, _, _), backend(url, RATE_LIMIT="2 per minute", TRUSTED_PROXIES="1") as base:
        assert statuses(base, "198.51.100.1", "198.51.100.1", "198.51.100.1", "198.51.100.2") == [200, 200, 429, 200]


@pytest.mark.parametrize(("peer", "trusted"), [("127.0.0.1", True), ("::ffff:10.1.2.3", True), ("10.9.9.9", True),
                                               ("::1", False), ("203.0.113.7", False), ("", False), ("unix", False)])
def test_the_peer_is_matched_against_the_networks(peer, trusted):
    proxies = TrustedProxies(lambda environ, start: [], 1, ["127.0.0.0/8", "10.0.0.0/8"])
    assert proxies.trusted(peer) is trusted
