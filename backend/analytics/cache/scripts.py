"""The Lua scripts the aggregates run in Redis, read once from the `.lua` files beside this module."""
from __future__ import annotations

import hashlib
from importlib.resources import files


def _source(name: str) -> str:
    return files(__package__).joinpath(name).read_text(encoding="utf-8")


APPLY_BUCKET = _source("apply_bucket.lua")
APPLY_BUCKET_SHA = hashlib.sha1(APPLY_BUCKET.encode()).hexdigest()  # what EVALSHA names it by
READ_BUCKETS = _source("read_buckets.lua")
