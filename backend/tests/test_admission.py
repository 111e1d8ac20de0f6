"""Admission at accept time (analytics/serving/admission.py): the count per address and in all."""
from __future__ import annotations

import resource

from analytics.serving.admission import FDS_PER_CONNECTION, RESERVED_FDS, Admission, capacity_for_fd_limit


def test_the_cap_per_address_refuses_the_next_one_and_frees_a_place_on_release():
    admission = Admission(per_address=2, capacity=100)
    assert [admission.admit("10.0.0.1") for _ in range(3)] == [None, None, "per_address"]
    assert admission.admit("10.0.0.2") is None  # another address has its own count
    admission.release("10.0.0.1")
    assert admission.admit("10.0.0.1") is None
    assert admission.total == 3


def test_capacity_refuses_every_address_and_zero_per_address_means_no_cap():
    admission = Admission(per_address=0, capacity=3)
    assert [admission.admit("10.0.0.1") for _ in range(3)] == [None, None, None]
    assert admission.admit("10.0.0.9") == "server_full"


def test_released_addresses_leave_nothing_behind():
    """The map holds open connections only: a scan from many addresses cannot grow it for good."""
    admission = Admission(per_address=1, capacity=10_000)
    for n in range(1000):
        assert admission.admit(f"10.0.{n // 256}.{n % 256}") is None
    for n in range(1000):
        admission.release(f"10.0.{n // 256}.{n % 256}")
    assert admission.total == 0 and not admission._by_address


def test_capacity_stays_below_the_descriptor_limit():
    assert capacity_for_fd_limit(1024) == (1024 - RESERVED_FDS) // FDS_PER_CONNECTION == 480
    assert capacity_for_fd_limit(resource.RLIM_INFINITY) > 100_000
    assert capacity_for_fd_limit(10) == 1  # never 0: the server must still answer something
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    assert capacity_for_fd_limit() == capacity_for_fd_limit(soft)
