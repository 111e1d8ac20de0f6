"""Window merging: which buckets cover a window, and their merge into the aggregate response.

A window is read as whole minutes plus the seconds at its old edge, so counts are exact to the
second while an hour costs ~60 buckets, not 3600. The closed minutes are merged in aligned
blocks of MINUTE_BLOCK and each block's merge is kept: when the window slides by a minute only
the blocks at its two ends are merged again, not the whole hour.
"""
from __future__ import annotations

from collections import defaultdict

from cachetools import LRUCache

from analytics.cache.bucket_read import Bucket, PairStats
from analytics.events.filter import EventFilter

MINUTE_BLOCK = 10
# Metrics and sources an aggregate answer names at most: those with the most events, so an answer
# stays a few kilobytes (and its percentiles a few hundred sketch walks) however many series exist.
TOP_NAMES = 100
Merged = tuple[dict[str, PairStats], dict[str, int]]  # metric -> stats, source -> count


def window_keys(prefix: str, first: int, last: int, now_sec: int, oldest_second_kept: int) -> tuple[list[str], int]:
    """Bucket keys covering seconds first..last: whole minutes, and seconds at the old edge.
    The minute holding `now_sec` counts as whole: nothing is newer than now. Returns the keys
    and the first second covered (earlier than asked when an old edge is rounded down to its
    minute because its seconds have expired)."""
    keys: list[str] = []
    if first < oldest_second_kept:
        first -= first % 60
    sec = first
    while sec <= last:
        if sec % 60 == 0 and (sec + 59 <= last or sec // 60 == now_sec // 60):
            keys.append(f"{prefix}:m:{sec // 60}")
            sec += 60
        else:
            keys.append(f"{prefix}:s:{sec}")
            sec += 1
    return keys, first


def merge(buckets: list[Bucket], only: EventFilter) -> Merged:
    """Merge parsed buckets into per-metric stats and per-source counts, filtered."""
    by_metric: dict[str, list[PairStats]] = defaultdict(list)
    by_source: dict[str, int] = defaultdict(int)
    for bucket in buckets:
        for (src, met), stats in bucket.items():
            if only.accepts(src, met):
                by_metric[met].append(stats)
                by_source[src] += stats.count
    return {name: PairStats.merge(parts) for name, parts in by_metric.items()}, dict(by_source)


class WindowMerger:
    """Merges a window's buckets, keeping the merges of the parts that change only with late
    events (whose versions then move): closed minutes in blocks, and the old edge's seconds."""

    def __init__(self, prefix: str):
        self.prefix = prefix
        # A handful of windows and filters, ~150 blocks a day.
        self._kept: LRUCache[tuple, Merged] = LRUCache(1024)

    def _kept_merge(self, keys: list[str], buckets: list[Bucket], versions: list, only: EventFilter) -> Merged:
        memo_key = (only, tuple(zip(keys, versions)))
        merged = self._kept.get(memo_key)
        if merged is None:
            merged = self._kept[memo_key] = merge(buckets, only)
        return merged

    def parts(self, keys: list[str], buckets: list[Bucket], versions: list, live_minute: str,
              only: EventFilter) -> list[Merged]:
        """The window's merged parts: each block of closed minutes, the edge seconds, the live
        minute (it changes with every write, so it is merged on every request)."""
        blocks: dict[int, list[int]] = defaultdict(list)
        seconds: list[int] = []
        live: list[Bucket] = []
        kind_at = len(self.prefix) + 1
        for i, key in enumerate(keys):
            if key == live_minute:
                live.append(buckets[i])
            elif key[kind_at] == "m":
                blocks[int(key.rsplit(":", 1)[1]) // MINUTE_BLOCK].append(i)
            else:
                seconds.append(i)
        out = [self._kept_merge([keys[i] for i in idx], [buckets[i] for i in idx], [versions[i] for i in idx], only)
               for idx in [*blocks.values(), seconds] if idx]
        out.append(merge(live, only))
        return out


def response(seconds: int, first: int, last: int, now: float, parts: list[Merged]) -> dict:
    """The aggregate response body (see the REST contract) from a window's merged parts."""
    by_metric: dict[str, list[PairStats]] = defaultdict(list)
    by_source: dict[str, int] = defaultdict(int)
    for part_metrics, part_sources in parts:
        for name, stats in part_metrics.items():
            by_metric[name].append(stats)
        for name, n in part_sources.items():
            by_source[name] += n
    span = last - first + 1
    total = sum(by_source.values())
    metric_counts = {name: sum(s.count for s in stats) for name, stats in by_metric.items()}
    metrics, sources = _top(metric_counts), _top(by_source)
    return {
        "window": seconds,
        "from": first * 1000,
        "to": int(now * 1000),
        "total": {"count": total, "rate": total / span},
        "metrics": {name: PairStats.merge(by_metric[name]).summary(span) for name in metrics},
        "sources": {name: {"count": by_source[name], "rate": by_source[name] / span} for name in sources},
        # Whether metrics or sources were left out (beyond the TOP_NAMES with the most events).
        "truncated": len(metrics) < len(by_metric) or len(sources) < len(by_source),
    }


def _top(counts: dict[str, int]) -> list[str]:
    """The TOP_NAMES names with the most events (ties by name), in name order."""
    names = sorted(counts)
    if len(names) > TOP_NAMES:
        names = sorted(sorted(names, key=lambda name: -counts[name])[:TOP_NAMES])
    return names
