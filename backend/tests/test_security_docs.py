"""docs/security.md quotes the Redis ACL users' exact rules: they must be deploy/redis/acl.conf's."""
from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_the_acl_lines_in_the_docs_are_the_acl_file():
    acl = [line for line in (REPO / "deploy/redis/acl.conf").read_text().splitlines() if line and not line.startswith("#")]
    docs = (REPO / "docs/security.md").read_text().split("### The Redis ACL", 1)[1].split("```")[1].strip().splitlines()
    assert len(acl) == 3 and docs == acl
