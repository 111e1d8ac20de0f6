"""GET /api/openapi.json: the REST contract as OpenAPI 3.1 (schemathesis tests against it)."""
from __future__ import annotations

from flask import Blueprint, jsonify

from analytics.cache.aggregates import MAX_WINDOW
from analytics.cache.window import TOP_NAMES
from analytics.events.schema import MAX_TAGS, MAX_TS_MS, NAME_PATTERN

bp = Blueprint("openapi", __name__)

_name = {"type": "string", "pattern": NAME_PATTERN}
_error = {"$ref": "#/components/schemas/Error"}


def _json(schema, description):
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*statuses):
    text = {400: "Bad parameter", 401: "No valid viewer token (JWT_SECRET / JWT_PUBLIC_KEY) or producer key (API_KEYS)",
            403: "The token's sources claim or the key's source does not allow it",
            413: "Body too large", 415: "Not JSON, or not gzip nor identity encoded", 429: "Rate limited",
            503: "Redis unreachable"}
    return {str(s): _json(_error, text[s]) for s in statuses}


def _filter(name, what):
    return {"name": name, "in": "query", "required": False, "schema": _name,
            "description": f"only events of this {what}"}


def spec(recent_max: int) -> dict:
    stats = {"type": "object", "required": ["count", "sum", "avg", "min", "max", "rate", "p50", "p95", "p99"],
             "properties": {k: {"type": ["number", "null"]} for k in ("sum", "avg", "min", "max", "rate", "p50", "p95", "p99")}
             | {"count": {"type": "integer"}}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "Real-time analytics API", "version": "1.0.0",
                 "description": "Recent events, rolling aggregates and HTTP ingest. Live events stream over Socket.IO."},
        "paths": {
            "/api/health": {"get": {"summary": "Service and Redis health", "responses": {
                "200": _json({"$ref": "#/components/schemas/Health"}, "Healthy"),
                "503": _json({"$ref": "#/components/schemas/Health"}, "Degraded: Redis unreachable")}}},
            "/api/metrics/recent": {"get": {
                "summary": "The newest cached events, newest first",
                "parameters": [{"name": "limit", "in": "query", "required": False,
                                "schema": {"type": "integer", "minimum": 1, "maximum": recent_max, "default": 100}},
                               _filter("metric", "metric"), _filter("source", "source")],
                "responses": {"200": _json({"type": "object", "required": ["count", "events"], "properties": {
                    "count": {"type": "integer"},
                    "events": {"type": "array", "items": {"$ref": "#/components/schemas/Event"}}}}, "Events"),
                    **_errors(400, 401, 403, 429, 503)}}},
            "/api/metrics/aggregate": {"get": {
                "summary": "Count, sum, min, max, rate and p50/p95/p99 over the last `window` seconds",
                "parameters": [{"name": "window", "in": "query", "required": False,
                                "schema": {"type": "integer", "minimum": 1, "maximum": MAX_WINDOW, "default": 60}},
                               _filter("metric", "metric"), _filter("source", "source")],
                "responses": {"200": _json({"type": "object", "required": ["window", "from", "to", "total", "metrics", "sources",
                                                                        "truncated"],
                    "properties": {
                        "window": {"type": "integer"}, "from": {"type": "integer"}, "to": {"type": "integer"},
                        "total": {"type": "object", "required": ["count", "rate"]},
                        "metrics": {"type": "object", "additionalProperties": stats},
                        "sources": {"type": "object", "additionalProperties": {"type": "object", "required": ["count", "rate"]}},
                        "truncated": {"type": "boolean", "description": f"true when metrics or sources beyond the {TOP_NAMES} "
                                      "with the most events in the window were left out (total still counts them)"}}},
                    "Aggregates"), **_errors(400, 401, 403, 429, 503)}}},
            "/api/events": {"post": {
                "summary": "Publish one event or an array of up to 1000 events",
                "description": "The body may be chunked, and gzip-compressed (Content-Encoding: gzip; "
                               "other encodings are a 415); over INGEST_MAX_BYTES, as sent or once "
                               "decoded, it is a 413.",
                "requestBody": {"required": True, "content": {"application/json": {"schema": {"oneOf": [
                    {"$ref": "#/components/schemas/EventIn"},
                    {"type": "array", "minItems": 1, "maxItems": 1000, "items": {"$ref": "#/components/schemas/EventIn"}}]}}}},
                "responses": {"202": _json({"type": "object", "required": ["accepted", "rejected", "ids"]}, "Accepted"),
                              **_errors(400, 401, 403, 413, 415, 429, 503)}}},
        },
        "components": {"schemas": {
            "EventIn": {"type": "object", "required": ["metric", "value"], "properties": {
                "metric": _name, "value": {"type": "number"}, "ts": {"type": "number", "minimum": 0, "maximum": MAX_TS_MS},
                "source": _name, "id": {"type": "string", "minLength": 1, "maxLength": 64},
                "tags": {"type": "object", "maxProperties": MAX_TAGS, "propertyNames": {"maxLength": 64},
                         "additionalProperties": {"type": "string", "maxLength": 64}}}},
            "Event": {"type": "object", "required": ["id", "ts", "source", "metric", "value", "tags"], "properties": {
                "id": {"type": "string"}, "ts": {"type": "number"}, "source": {"type": "string"},
                "metric": {"type": "string"}, "value": {"type": "number"}, "tags": {"type": "object"}}},
            "Health": {"type": "object", "required": ["status", "redis", "recent_max"], "properties": {
                "status": {"enum": ["ok", "degraded"]}, "redis": {"enum": ["up", "down"]},
                "recent_max": {"type": "integer", "minimum": 1,
                               "description": "events kept in the recent cache: the largest `limit` of /api/metrics/recent"},
                "series": {"type": "object", "required": ["count", "max"], "description":
                           "distinct source x metric series admitted, and MAX_SERIES: events of a new series past it "
                           "are rejected with reason too_many_series",
                           "properties": {"count": {"type": ["integer", "null"]}, "max": {"type": "integer"}}}}},
            "Error": {"type": "object", "required": ["error"], "properties": {"error": {
                "type": "object", "required": ["code", "message"],
                "properties": {"code": {"type": "string"}, "message": {"type": "string"}, "field": {"type": "string"}}}}},
        }},
    }


@bp.get("/api/openapi.json")
def openapi():
    from flask import current_app

    return jsonify(spec(current_app.extensions["analytics"].settings.RECENT_MAX))
