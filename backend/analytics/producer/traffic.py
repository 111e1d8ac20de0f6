"""Simulated business traffic: believable series per source, not uniform noise.

Each metric value is trend x cycle x noise, where the cycle is a compressed "day"
(CYCLE_SECONDS long, default ten minutes, so a viewer sees it move), and incidents arrive now
and then: for a while errors multiply and latency climbs. Events follow the one schema
(analytics.events.schema): id, ts, source, metric, value, tags.
"""
from __future__ import annotations

import math
import os
import random
from dataclasses import dataclass

# How often each metric occurs, relative to page_views, and how each source weighs.
METRIC_MIX = {"page_views": 60, "orders": 8, "signups": 3, "errors": 2, "latency_ms": 20, "active_users": 7}
SOURCE_WEIGHT = {"web": 5, "mobile": 3.5, "api": 1.5}
ORDER_STATUS = (("completed", 92), ("failed", 5), ("refunded", 3))
ERROR_CODES = (("500", 45), ("502", 15), ("503", 20), ("504", 10), ("429", 10))
PAGES = ("/", "/pricing", "/product", "/checkout", "/blog", "/docs")
PLANS = (("free", 80), ("pro", 17), ("team", 3))


def _pick(pairs, rng) -> str:
    return rng.choices([p for p, _ in pairs], [w for _, w in pairs])[0]


@dataclass
class Incident:
    until: float
    severity: float


class Traffic:
    def __init__(self, sources: list[str], seed: int | None = None, cycle_seconds: float = 600.0,
                 incident_every: float = 120.0):
        self.rng = random.Random(seed)
        self.sources = sources
        self.source_weights = [SOURCE_WEIGHT.get(s, 1.0) for s in sources]
        self.metrics = list(METRIC_MIX)
        self.metric_weights = list(METRIC_MIX.values())
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
        """n events stamped `now_ms` (publish time), with metrics and sources drawn from the mix."""
        trend, cycle, severity = self._state(now_ms / 1000.0)
        rng = self.rng
        metric_weights = self.metric_weights
        if severity > 1.0:  # more errors during an incident
            metric_weights = [w * (severity if m == "errors" else 1.0) for m, w in zip(self.metrics, metric_weights)]
        metrics = rng.choices(self.metrics, metric_weights, k=n)
        sources = rng.choices(self.sources, self.source_weights, k=n)
        out = []
        for metric, source in zip(metrics, sources):
            self.seq += 1
            value, tags = self._value(metric, source, trend, cycle, severity)
            out.append({"id": f"{source}-{self.run}-{self.seq:09d}", "ts": now_ms, "source": source,
                        "metric": metric, "value": value, "tags": tags})
        return out

    def _value(self, metric: str, source: str, trend: float, cycle: float, severity: float):
        rng = self.rng
        if metric == "orders":
            amount = rng.lognormvariate(math.log(45 * trend), 0.6) * (0.8 + 0.2 * cycle)
            return round(amount, 2), {"status": _pick(ORDER_STATUS, rng)}
        if metric == "page_views":
            return 1, {"page": rng.choice(PAGES)}
        if metric == "signups":
            return 1, {"plan": _pick(PLANS, rng)}
        if metric == "errors":
            return 1, {"code": _pick(ERROR_CODES, rng)}
        if metric == "latency_ms":
            base = {"web": 120.0, "mobile": 180.0, "api": 60.0}.get(source, 100.0)
            return round(rng.lognormvariate(math.log(base * (0.85 + 0.15 * cycle) * severity ** 0.7), 0.35), 1), {}
        # active_users: a gauge that follows the cycle
        base = {"web": 1200.0, "mobile": 800.0, "api": 150.0}.get(source, 300.0)
        return round(base * trend * cycle * rng.uniform(0.97, 1.03)), {}
