"""The pub/sub bridge (stream/listener.py) against the real test Redis: messages already waiting
behind the first are bridged together, one log entry per message, in order."""
from __future__ import annotations

import time

import orjson

from analytics.stream.listener import BRIDGE_MESSAGES, Listener
from tests.helpers import event


def test_a_burst_of_waiting_messages_becomes_one_pipeline_of_entries_in_order(runtime, settings):
    calls = []
    listener = Listener(runtime.redis, settings.METRICS_CHANNEL, [lambda b: calls.append(runtime.log.append_many(b))],
                        sleep=time.sleep)
    pubsub = runtime.redis.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(settings.METRICS_CHANNEL)
    pubsub.get_message(timeout=5)  # the subscription's confirmation (ignored: None)
    try:
        messages = [[event(value=i, id=f"m{i}-{k}") for k in range(3)] for i in range(30)]
        for events in messages:
            runtime.redis.publish(settings.METRICS_CHANNEL, orjson.dumps(events))
        time.sleep(0.2)  # all 30 delivered to the subscriber's socket
        raws = listener._burst(pubsub)
        assert len(raws) == 30  # the first, and every one already waiting behind it
        assert listener.handle_many(raws) == 90
    finally:
        pubsub.close()
    assert len(calls) == 1 and len(calls[0]) == 30  # one pipeline, one entry per message
    entries = runtime.log.range_after("0-0", "+", 100)
    assert [e.position for e in entries] == calls[0]
    assert [[ev["id"] for ev in e.events] for e in entries] == [[ev["id"] for ev in m] for m in messages]


def test_a_burst_is_bounded(runtime, settings):
    listener = Listener(runtime.redis, settings.METRICS_CHANNEL, [], sleep=time.sleep)
    pubsub = runtime.redis.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(settings.METRICS_CHANNEL)
    pubsub.get_message(timeout=5)  # the subscription's confirmation (ignored: None)
    try:
        for i in range(BRIDGE_MESSAGES + 5):
            runtime.redis.publish(settings.METRICS_CHANNEL, orjson.dumps(event(value=i)))
        time.sleep(0.2)
        assert len(listener._burst(pubsub)) == BRIDGE_MESSAGES
        assert len(listener._burst(pubsub)) == 5
    finally:
        pubsub.close()


def test_events_refused_by_the_series_cap_leave_the_others_of_their_message_in_place(runtime):
    batches = []
    listener = Listener(runtime.redis, "unused", [batches.extend], sleep=time.sleep,
                        admit=lambda events: [e for e in events if e["metric"] != "refused"])
    raws = [orjson.dumps([event("a", id="1"), event("refused", id="2")]), orjson.dumps([event("refused", id="3")]),
            orjson.dumps([event("b", id="4"), event("c", id="5")]), b"not json"]
    assert listener.handle_many(raws) == 3
    assert [[e["id"] for e in b] for b in batches] == [["1"], ["4", "5"]]  # an emptied message adds no entry
