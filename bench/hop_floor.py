"""The hop floor: a bare Redis subscriber, no product code, timing the same publisher.

    python bench/hop_floor.py --redis redis://127.0.0.1:PORT/0 --out floor.json

Subscribes to the channel with redis-py (hiredis) and blocking reads, as the product's
listener does, and records now - ts for every event. What it measures is what any Python
subscriber on this machine pays before doing any work: the publisher's send, Redis, and the
wake-up of the reading process. With bench/ws_forward.py (the same plus a second hop to the
clients) it is one of the floors the quiet-stream budget line (100 ev/s x 10 clients) is read
against. Prints "ready" once subscribed; SIGTERM writes --out and exits.
"""
from __future__ import annotations

import argparse
import json
import signal
import sys
import time

import orjson
import redis

BIN_MS = 0.05


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--redis", required=True)
    parser.add_argument("--channel", default="metrics")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    client = redis.Redis.from_url(args.redis)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(args.channel)
    hist: dict[int, int] = {}
    stats = {"events": 0, "max_ms": 0.0}
    stop = []

    def finish(*_):
        stop.append(True)
        with open(args.out, "w") as f:
            json.dump({"events": stats["events"], "latency": {"bin_ms": BIN_MS, "bins": sorted(hist.items()),
                                                              "overflow": 0, "max_ms": stats["max_ms"]}}, f)
        sys.exit(0)

    signal.signal(signal.SIGTERM, finish)
    print("ready", flush=True)
    while not stop:
        message = pubsub.get_message(timeout=None)
        if message is None or message["type"] != "message":
            continue
        now = time.time() * 1000.0
        data = orjson.loads(message["data"])
        for event in data if isinstance(data, list) else [data]:
            latency = max(0.0, now - event["ts"])
            stats["max_ms"] = max(stats["max_ms"], latency)
            b = int(latency / BIN_MS)
            hist[b] = hist.get(b, 0) + 1
            stats["events"] += 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
