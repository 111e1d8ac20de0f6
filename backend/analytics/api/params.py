"""Query parameter parsing with clear 400s naming the parameter."""
from __future__ import annotations

from flask import request

from analytics.api.errors import ApiError
from analytics.events.filter import EventFilter
from analytics.events.schema import is_name


def int_param(name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, "invalid_parameter", f"{name} must be a whole number", name) from None
    if not low <= value <= high:
        raise ApiError(400, "invalid_parameter", f"{name} must be between {low} and {high}", name)
    return value


def name_param(name: str) -> str | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return None
    if not is_name(raw):
        raise ApiError(400, "invalid_parameter", f"{name} must be 1-64 of A-Za-z0-9_.:-", name)
    return raw


def filter_params() -> EventFilter:
    """The `metric` and `source` parameters (each optional, one name) as an event filter."""
    metric, source = name_param("metric"), name_param("source")
    return EventFilter.of([source] if source else (), [metric] if metric else ())
