"""Simulated producer: `python backend/generator.py [--rate N] [--duration S] [--batch K]`.

Appends realistic business metric events to the durable log (STREAM_KEY) at a paced rate, or
publishes them on METRICS_CHANNEL with `--transport pubsub` (the card's producer interface,
which keeps nothing while no backend listens). At high rates it sends JSON arrays of K events
(K chosen automatically unless --batch is given). Survives Redis going away: says so, retries
the same batch, keeps pace. SIGTERM / Ctrl-C: finishes the batch in hand, then exits 0.
"""
from __future__ import annotations

import argparse
import logging
import math
import signal
import sys
import time

import redis

from analytics import redis_tls
from analytics.events.schema import MAX_EVENTS_PER_MESSAGE, encode, is_name
from analytics.producer.traffic import Traffic
from analytics.settings import Settings, SettingsError
from analytics.stream.durable_log import DurableLog

log = logging.getLogger("generator")
MAX_PUBLISHES_PER_SECOND = 500


def parse_args(argv: list[str], settings: Settings) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=settings.GENERATOR_RATE, help="events per second")
    parser.add_argument("--duration", type=float, default=0, help="seconds to run (0 = until stopped)")
    parser.add_argument("--batch", type=int, default=0, help="events per publish (0 = automatic)")
    parser.add_argument("--sources", default="web,mobile,api", help="comma-separated source names")
    parser.add_argument("--seed", type=int, default=None, help="random seed, for repeatable traffic")
    parser.add_argument("--cycle-seconds", type=float, default=600.0, help="length of a simulated day")
    parser.add_argument("--transport", choices=("log", "pubsub"), default="log",
                        help="log: the durable log (default); pubsub: PUBLISH on METRICS_CHANNEL")
    args = parser.parse_args(argv)
    sources = [s.strip() for s in args.sources.split(",") if s.strip()]
    if not sources or not all(is_name(s) for s in sources):
        parser.error("--sources must be names of 1-64 A-Za-z0-9_.:- separated by commas")
    if not 0 < args.rate <= 1_000_000:
        parser.error("--rate must be in (0, 1000000]")
    if not 0 <= args.batch <= MAX_EVENTS_PER_MESSAGE:
        parser.error(f"--batch must be 0..{MAX_EVENTS_PER_MESSAGE}")
    args.sources = sources
    return args


def batch_size(rate: float, requested: int) -> int:
    """Events per publish: one at a time while that stays under MAX_PUBLISHES_PER_SECOND."""
    if requested:
        return requested
    return max(1, min(MAX_EVENTS_PER_MESSAGE, math.ceil(rate / MAX_PUBLISHES_PER_SECOND)))


def sender(client: redis.Redis, settings: Settings, transport: str):
    """A function that sends one batch of events on the chosen transport."""
    if transport == "pubsub":
        return lambda events: client.publish(settings.METRICS_CHANNEL, encode(events if len(events) > 1 else events[0]))
    return DurableLog(client, settings.STREAM_KEY, settings.STREAM_MAXLEN).append


def run(send, traffic: Traffic, rate: float, duration: float, batch: int, stop: list[bool]) -> int:
    """Publish until `duration` passes (or forever), paced against the clock; returns events sent."""
    interval = batch / rate
    start = time.monotonic()
    next_at = start
    sent = 0
    report_at = start + 10
    outage_since = None

    def send_until_stopped(send, events, stop) -> bool:
        """Send the batch in hand, retrying while Redis is away; False if stopped first."""
        nonlocal outage_since
        while True:
            try:
                send(events)
                return True
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                if outage_since is None:
                    outage_since = time.monotonic()
                    log.warning("redis unreachable (%s); retrying", exc)
                if stop[0]:
                    return False
                time.sleep(0.2)
    while not stop[0] and (duration <= 0 or time.monotonic() - start < duration):
        delay = next_at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        n = batch
        if duration > 0:  # the last publish carries only what the duration still allows
            n = min(batch, max(0, math.ceil(rate * duration) - sent))
            if n == 0:
                break
        events = traffic.events(n, time.time() * 1000.0)
        # ts is when the event is handed to the channel: building simulated values is the
        # simulation's own time, not the pipeline's.
        published_ms = time.time() * 1000.0
        for event in events:
            event["ts"] = published_ms
        if not send_until_stopped(send, events, stop):
            log.warning("stopped while Redis was unreachable: %d events in hand were not sent", n)
            break
        if outage_since is not None:
            next_at = time.monotonic()  # keep pace from now on; do not burst to catch up
            log.warning("redis is back after %.1fs; publishing again", time.monotonic() - outage_since)
            outage_since = None
        sent += n
        next_at += interval
        if next_at < time.monotonic() - 1.0:  # fell more than a second behind: rate is too high
            next_at = time.monotonic()
        if time.monotonic() >= report_at:
            log.info("published %d events (%.0f ev/s)", sent, sent / (time.monotonic() - start))
            report_at += 10
    return sent


def main(argv: list[str] | None = None) -> int:
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"generator: bad setting: {exc}", file=sys.stderr)
        return 2
    args = parse_args(sys.argv[1:] if argv is None else argv, settings)
    logging.basicConfig(level=settings.LOG_LEVEL, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    insecure = redis_tls.insecure_warning(settings)
    if insecure:
        log.warning(insecure)
    client = redis_tls.connect(settings, socket_connect_timeout=2, socket_timeout=5)
    batch = batch_size(args.rate, args.batch)
    traffic = Traffic(args.sources, seed=args.seed, cycle_seconds=args.cycle_seconds)
    stop = [False]
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.__setitem__(0, True))
    target = settings.STREAM_KEY if args.transport == "log" else settings.METRICS_CHANNEL
    log.info("sending %.0f ev/s to %r (%s) in arrays of %d", args.rate, target, args.transport, batch)
    started = time.monotonic()
    sent = run(sender(client, settings, args.transport), traffic, args.rate, args.duration, batch, stop)
    elapsed = time.monotonic() - started
    print(f"generator: published {sent} events in {elapsed:.1f}s ({sent / max(elapsed, 1e-9):.0f} ev/s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
