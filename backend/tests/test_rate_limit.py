"""Rate limits belong to one app: a low limit set for one app never reaches the next."""
from __future__ import annotations

from analytics.factory import create_app


def test_an_app_with_a_high_limit_is_not_held_to_an_earlier_apps_low_limit(settings):
    low = create_app(settings.model_copy(update={"RATE_LIMIT": "2 per minute"}), start_stream=False).test_client()
    assert [low.get("/api/metrics/recent").status_code for _ in range(3)] == [200, 200, 429]

    high = create_app(settings.model_copy(update={"RATE_LIMIT": "100 per minute"}), start_stream=False).test_client()
    assert [high.get("/api/metrics/recent").status_code for _ in range(5)] == [200] * 5
