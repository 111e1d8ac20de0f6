"""Query parameter parsing with clear 400s naming the parameter."""
from __future__ import annotations

import re

from flask import request

from analytics.api.errors import ApiError
from analytics.events.schema import NAME_PATTERN

_NAME = re.compile(NAME_PATTERN)


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
    if not _NAME.match(raw):
        raise ApiError(400, "invalid_parameter", f"{name} must be 1-64 of A-Za-z0-9_.:-", name)
    return raw
