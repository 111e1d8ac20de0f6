"""Query parameter parsing with clear 400s naming the parameter.

Strict on purpose: Python's int() also takes '١' (any Unicode digit), '1_0', '+5', ' 5', and a
name's regex `$` a trailing newline; what the OpenAPI document promises is what is accepted. A
parameter given empty or twice is a 400 too, not quietly the default or the first one."""
from __future__ import annotations

from flask import request

from analytics.api.errors import ApiError
from analytics.events.filter import EventFilter
from analytics.events.schema import is_name

MAX_DIGITS = 12  # past any documented range; spares int() a 4,000-digit parse


def _one(name: str) -> str | None:
    """The parameter's one value, None when absent; 400 when given twice or empty."""
    values = request.args.getlist(name)
    if not values:
        return None
    if len(values) > 1:
        raise ApiError(400, "invalid_parameter", f"{name} is given {len(values)} times; give it once", name)
    if values[0] == "":
        raise ApiError(400, "invalid_parameter", f"{name} is empty; leave it out for the default", name)
    return values[0]


def int_param(name: str, default: int, low: int, high: int) -> int:
    raw = _one(name)
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit()):
        raise ApiError(400, "invalid_parameter", f"{name} must be a whole number in ASCII digits", name)
    value = int(raw) if len(raw) <= MAX_DIGITS else high + 1
    if not low <= value <= high:
        raise ApiError(400, "invalid_parameter", f"{name} must be between {low} and {high}", name)
    return value


def name_param(name: str) -> str | None:
    raw = _one(name)
    if raw is not None and not is_name(raw):
        raise ApiError(400, "invalid_parameter", f"{name} must be 1-64 of A-Za-z0-9_.:-", name)
    return raw


def filter_params() -> EventFilter:
    """The `metric` and `source` parameters (each optional, one name) as an event filter."""
    metric, source = name_param("metric"), name_param("source")
    return EventFilter.of([source] if source else (), [metric] if metric else ())
