"""The Lua scripts come from the .lua files beside the cache package and run in a real Redis."""
from __future__ import annotations

from importlib.resources import files

from analytics.cache import scripts
from tests.helpers import event, write_events


def test_the_scripts_are_the_package_files():
    package = files("analytics.cache")
    assert scripts.APPLY_BUCKET == package.joinpath("apply_bucket.lua").read_text(encoding="utf-8")
    assert scripts.READ_BUCKETS == package.joinpath("read_buckets.lua").read_text(encoding="utf-8")
    assert "HINCRBYFLOAT" in scripts.APPLY_BUCKET and "HGETALL" in scripts.READ_BUCKETS


def test_redis_names_the_apply_script_by_the_sha_the_writer_calls(runtime):
    assert runtime.redis.script_load(scripts.APPLY_BUCKET) == scripts.APPLY_BUCKET_SHA


def test_a_write_after_redis_forgot_its_scripts_still_counts(runtime):
    """SCRIPT LOAD rides in the write's own pipeline: a Redis that restarted (scripts gone)
    must not answer NOSCRIPT to the first batch after it."""
    write_events(runtime, [event("orders", 1.0)])
    runtime.redis.script_flush()
    write_events(runtime, [event("orders", 2.0)])
    orders = runtime.aggregates.window(60)["metrics"]["orders"]
    assert (orders["count"], orders["sum"]) == (2, 3.0)
