"""Find secrets in log files: the tests' last check that no process they started ever wrote a
secret they handed it (devstack.processes.handed_out) into a log."""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path


def hint(secret: str) -> str:
    """How a report names a secret without showing it."""
    return f"{secret[:2]}... ({len(secret)} chars)"


def find(folder: Path, secrets: Iterable[str]) -> list[str]:
    """One line per (file, secret) found: the file's name and a hint of the secret, never the secret."""
    wanted = [(s, s.encode()) for s in sorted(set(secrets)) if s]
    found = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        content = path.read_bytes()
        found.extend(f"{path.name}: {hint(s)}" for s, raw in wanted if raw in content)
    return found
