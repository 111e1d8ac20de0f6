"""Schemathesis drives every operation of /api/openapi.json with generated requests (valid and
not) and checks each response against the document: status codes, JSON shapes, no 5xx."""
from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings

from tests.helpers import event, write_events

OPERATIONS = [("/api/health", "GET"), ("/api/metrics/recent", "GET"), ("/api/metrics/aggregate", "GET"),
              ("/api/events", "POST")]


@pytest.mark.parametrize("path, method", OPERATIONS)
def test_api_conforms_to_its_openapi_document(app, runtime, path, method):
    write_events(runtime, [event(m, v, s) for m in ("orders", "errors") for s in ("web", "api") for v in (1.0, 2.5)])
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app)
    operation = schema[path][method]

    @given(case=operation.as_strategy())
    @hypothesis_settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
    def check(case):
        case.call_and_validate()

    check()
