"""Producer keys: API_KEYS holds the SHA-256 hex digest of each accepted key (never the key),
`digest@source` binding a key to one source. A presented key is hashed and its digest compared
to every accepted one with hmac.compare_digest, so the answer takes the same time whichever
digest (if any) it matches."""
from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

KEY_BYTES = 32  # 256 bits of randomness per key
MAX_KEY_CHARS = 256  # longer headers are not keys; refused before hashing


@dataclass(frozen=True)
class Producer:
    """An authenticated producer: which key (its digest) and the one source it may write, if bound."""

    digest: str
    source: str | None


def digest_of(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class ProducerKeys:
    def __init__(self, entries: list[str]):
        self.accepted: list[Producer] = []
        for entry in entries:
            digest, _, source = entry.partition("@")
            self.accepted.append(Producer(digest, source or None))

    def __bool__(self) -> bool:
        return bool(self.accepted)

    def authenticate(self, key: str | None) -> Producer | None:
        """The producer `key` belongs to, or None. Every accepted digest is compared (no early exit)."""
        if not key or len(key) > MAX_KEY_CHARS:
            return None
        presented = digest_of(key).encode()
        found = None
        for producer in self.accepted:
            if hmac.compare_digest(presented, producer.digest.encode()) and found is None:
                found = producer
        return found


def new_key(source: str | None = None) -> tuple[str, str]:
    """A new random key and its API_KEYS entry (`digest` or `digest@source`)."""
    key = secrets.token_urlsafe(KEY_BYTES)
    entry = digest_of(key)
    return key, f"{entry}@{source}" if source else entry
