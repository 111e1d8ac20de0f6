"""Simulated business traffic: believable series per source, not uniform noise.

Each metric value is trend x cycle x noise, where the cycle is a compressed "day"
(CYCLE_SECONDS long, default ten minutes, so a viewer sees it move), and incidents arrive now
and then: for a while errors multiply and latency climbs. Events follow the one schema
(analytics.events.schema): id, ts, source, metric, value, tags.

A batch's random draws are made with numpy, all at once: drawn one event at a time they cost
~5.7 us per event, which capped the generator near 110,000 ev/s and took most of a core from
the backend it was meant to load (the benchmark's ingest cells). What is left per event is
building its dict.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np

# How often each metric occurs, relative to page_views, and how each source weighs.
METRIC_MIX = {"page_views": 60, "orders": 8, "signups": 3, "errors": 2, "latency_ms": 20, "active_users": 7}
SOURCE_WEIGHT = {"web": 5, "mobile": 3.5, "api": 1.5}
ORDER_STATUS = (("completed", 92), ("failed", 5), ("refunded", 3))
ERROR_CODES = (("500", 45), ("502", 15), ("503", 20), ("504", 10), ("429", 10))
PAGES = ("/", "/pricing", "/product", "/checkout", "/blog", "/docs")
PLANS = (("free", 80), ("pro", 17), ("team", 3))
# The one tag each metric carries, and how its values weigh.
METRIC_TAG = {"orders": ("status", ORDER_STATUS), "page_views": ("page", tuple((p, 1) for p in PAGES)),
              "signups": ("plan", PLANS), "errors": ("code", ERROR_CODES)}
LATENCY_BASE = {"web": 120.0, "mobile": 180.0, "api": 60.0}
ACTIVE_USERS_BASE = {"web": 1200.0, "mobile": 800.0, "api": 150.0}
COUNTED = ("page_views", "signups", "errors")  # value 1: one occurrence


def _probabilities(weights) -> np.ndarray:
    w = np.asarray(weights, dtype=float)
    return w / w.sum()


def _objects(items: list) -> np.ndarray:
    """A 1-D object array of `items` (np.array would try to look inside dicts)."""
    out = np.empty(len(items), dtype=object)
    out[:] = items
    return out


_NO_TAGS: dict = {}  # shared, never changed: events() gives each event its own copy


@dataclass
class Incident:
    until: float
    severity: float


class Traffic:
    def __init__(self, sources: list[str], seed: int | None = None, cycle_seconds: float = 600.0,
                 incident_every: float = 120.0):
        self.rng = np.random.default_rng(seed)
        self.sources = sources
        self.source_p = _probabilities([SOURCE_WEIGHT.get(s, 1.0) for s in sources])
        self.metrics = list(METRIC_MIX)
        self.metric_weights = np.asarray(list(METRIC_MIX.values()), dtype=float)
        self.errors_at = self.metrics.index("errors")
        self.latency_base = np.asarray([LATENCY_BASE.get(s, 100.0) for s in sources])
        self.users_base = np.asarray([ACTIVE_USERS_BASE.get(s, 300.0) for s in sources])
        # Per metric with a tag: cumulative weights to draw a tag value, and the tag dicts.
        self.tag_tables = {self.metrics.index(m): (np.cumsum(_probabilities([w for _, w in pairs])),
                                                   _objects([{key: name} for name, _ in pairs]))
                           for m, (key, pairs) in METRIC_TAG.items()}
        self.int_metrics = [self.metrics.index(m) for m in (*COUNTED, "active_users")]
        self.cycle = cycle_seconds
        self.incident_every = incident_every
        self.incident: Incident | None = None
        self.run = os.urandom(2).hex()
        self.seq = 0
        self.started: float | None = None

    def _state(self, now: float) -> tuple[float, float, float]:
        """(trend, cycle, incident severity) at `now` (seconds)."""
        if self.started is None:
            self.started = now
        trend = 1.0 + 0.05 * (now - self.started) / 3600.0
        phase = 2 * math.pi * ((now % self.cycle) / self.cycle)
        cycle = 1.0 + 0.35 * math.sin(phase) + 0.1 * math.sin(3 * phase)
        if self.incident and now > self.incident.until:
            self.incident = None
        if self.incident is None and self.rng.random() < 1.0 / max(self.incident_every * 20, 1):
            self.incident = Incident(until=now + self.rng.uniform(8, 20), severity=self.rng.uniform(2, 6))
        return trend, cycle, self.incident.severity if self.incident else 1.0

    def events(self, n: int, now_ms: float) -> list[dict]:
        """n events stamped `now_ms` (publish time), with metrics and sources drawn from the mix.
        Each event has its own tags dict."""
        trend, cycle, severity = self._state(now_ms / 1000.0)
        rng = self.rng
        metric_weights = self.metric_weights.copy()
        metric_weights[self.errors_at] *= severity  # more errors during an incident
        metric = rng.choice(len(self.metrics), size=n, p=metric_weights / metric_weights.sum())
        source = rng.choice(len(self.sources), size=n, p=self.source_p)
        value, tag = self._values(metric, source, rng.random(n), rng.standard_normal(n), trend, cycle, severity)
        seq = self.seq
        self.seq = seq + n
        prefix = [f"{s}-{self.run}-" for s in self.sources]  # ids: source-run-sequence
        names = [prefix[s] + str(i).zfill(9) for s, i in zip(source.tolist(), range(seq + 1, seq + n + 1))]
        return [{"id": i, "ts": now_ms, "source": src, "metric": m, "value": v, "tags": t.copy()}
                for i, src, m, v, t in zip(names, [self.sources[s] for s in source.tolist()],
                                           [self.metrics[m] for m in metric.tolist()], value, tag)]

    def _values(self, metric: np.ndarray, source: np.ndarray, uniform: np.ndarray, normal: np.ndarray,
                trend: float, cycle: float, severity: float) -> tuple[list, list]:
        """Each event's value (a Python int or float, as JSON should show it) and tag dict (shared:
        the caller copies it), from one uniform and one normal draw per event."""
        n = len(metric)
        value = np.ones(n)
        orders = metric == self.metrics.index("orders")
        value[orders] = np.round(np.exp(math.log(45 * trend) + 0.6 * normal[orders]) * (0.8 + 0.2 * cycle), 2)
        latency = metric == self.metrics.index("latency_ms")
        scale = self.latency_base[source[latency]] * (0.85 + 0.15 * cycle) * severity ** 0.7
        value[latency] = np.round(np.exp(np.log(scale) + 0.35 * normal[latency]), 1)
        users = metric == self.metrics.index("active_users")  # a gauge that follows the cycle
        value[users] = np.round(self.users_base[source[users]] * trend * cycle * (0.97 + 0.06 * uniform[users]))
        values = value.astype(object)  # Python floats; counts and gauges as Python ints
        is_int = np.isin(metric, self.int_metrics)
        values[is_int] = value[is_int].astype(np.int64).astype(object)
        tags = np.full(n, _NO_TAGS, dtype=object)
        for m, (cumulative, dicts) in self.tag_tables.items():
            at = metric == m
            tags[at] = dicts[np.minimum(np.searchsorted(cumulative, uniform[at], side="right"), len(dicts) - 1)]
        return values.tolist(), tags.tolist()
