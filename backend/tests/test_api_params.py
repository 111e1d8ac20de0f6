"""Query parameters: only what the OpenAPI document promises is accepted, and the document is
checked against the code (routes, methods, parameter names, ranges, required-ness), so the two
cannot drift apart."""
from __future__ import annotations

import pytest
from flask import request
from werkzeug.datastructures import ImmutableMultiDict

from analytics.api.openapi import spec

HOSTILE_NUMBERS = ["\u0661", "\u0661\u0660", "1_0", "+5", "-0", " 5", "5 ", "5.0", "5e1", "0x10", "\uff15", "\u00b2",
                   "", "9" * 5000]


@pytest.mark.parametrize("path, field", [("/api/metrics/recent", "limit"), ("/api/metrics/aggregate", "window")])
@pytest.mark.parametrize("raw", HOSTILE_NUMBERS, ids=repr)
def test_a_number_takes_ascii_digits_only(client, path, field, raw):
    response = client.get(path, query_string={field: raw})
    assert response.status_code == 400, response.json
    assert response.json["error"] == {**response.json["error"], "code": "invalid_parameter", "field": field}


@pytest.mark.parametrize("path", ["/api/metrics/recent", "/api/metrics/aggregate"])
@pytest.mark.parametrize("field", ["metric", "source"])
@pytest.mark.parametrize("raw", ["", "a\n", "\u0430", "a" * 65, "a|b", "a b"], ids=repr)
def test_a_name_filter_follows_the_event_schema(client, path, field, raw):
    response = client.get(path, query_string={field: raw})
    assert response.status_code == 400 and response.json["error"]["field"] == field


@pytest.mark.parametrize("query, field", [("limit=1&limit=2", "limit"), ("metric=a&metric=b", "metric")])
def test_a_parameter_given_twice_is_refused(client, query, field):
    response = client.get(f"/api/metrics/recent?{query}")
    assert response.status_code == 400 and response.json["error"]["field"] == field


class RecordingArgs(ImmutableMultiDict):
    """Query arguments that remember which names the view asked for."""

    read: set[str]

    def get(self, key, *args, **kwargs):
        self.read.add(key)
        return super().get(key, *args, **kwargs)

    def getlist(self, key, *args, **kwargs):
        self.read.add(key)
        return super().getlist(key, *args, **kwargs)

    def __getitem__(self, key):
        self.read.add(key)
        return super().__getitem__(key)

    def __contains__(self, key):
        self.read.add(key)
        return super().__contains__(key)


def _operations(app):
    """(path, method) of every /api route the app serves."""
    return {(rule.rule, method) for rule in app.url_map.iter_rules() if rule.rule.startswith("/api/")
            for method in rule.methods - {"HEAD", "OPTIONS"}}


def test_the_document_lists_every_route_and_method_the_app_serves(app, settings):
    document = spec(settings.RECENT_MAX)
    documented = {(path, method.upper()) for path, item in document["paths"].items() for method in item}
    assert documented == _operations(app) - {("/api/openapi.json", "GET")}


def test_every_get_reads_exactly_its_documented_parameters_with_their_ranges(app, client, settings):
    seen: dict[str, set[str]] = {}

    @app.before_request
    def record_args():
        args = RecordingArgs(request.args)
        args.read = seen.setdefault(request.path, set())
        request._get_current_object().__dict__["args"] = args  # `args` is a cached property

    document = spec(settings.RECENT_MAX)
    for path, item in document["paths"].items():
        if "get" not in item:
            continue
        params = {p["name"]: p for p in item["get"].get("parameters", [])}
        assert client.get(path).status_code == 200, path  # none required: all optional, as documented
        assert all(p["in"] == "query" and p["required"] is False for p in params.values())
        assert seen.get(path, set()) == set(params), f"{path} reads parameters its document does not list"
        for name, param in params.items():
            schema = param["schema"]
            if schema.get("type") == "integer":
                low, high = schema["minimum"], schema["maximum"]
                for value, status in ((low, 200), (high, 200), (low - 1, 400), (high + 1, 400)):
                    response = client.get(path, query_string={name: str(value)})
                    assert response.status_code == status, (path, name, value)
            else:  # a name: the event schema's pattern, 1-64 characters
                assert schema["pattern"] == r"^[A-Za-z0-9_.:\-]{1,64}$"
                for value, status in (("a" * 64, 200), ("a" * 65, 400), ("", 400)):
                    assert client.get(path, query_string={name: value}).status_code == status, (path, name, value)
