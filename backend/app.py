"""Backend entry point: `python backend/app.py` serves REST and Socket.IO on HOST:PORT.

Settings come from the environment and backend/.env (see .env.example). A bad setting stops
the process with one line naming it.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path


def _async_mode() -> str:
    # gevent must patch the standard library before anything else imports it (logging's
    # locks included), so the mode is read here without importing the settings machinery;
    # Settings.from_env checks the value itself a moment later.
    for source in (os.environ, _env_file_lines()):
        if source.get("ASYNC_MODE_FILE"):
            try:
                return Path(source["ASYNC_MODE_FILE"]).read_text().strip()
            except OSError:
                return "gevent"  # from_env reports the unreadable file
        if source.get("ASYNC_MODE"):
            return source["ASYNC_MODE"].strip()
    return "gevent"


def _env_file_lines() -> dict[str, str]:
    env_file = Path(__file__).resolve().parent / ".env"
    lines = env_file.read_text().splitlines() if env_file.exists() else []
    pairs = (line.split("=", 1) for line in lines if "=" in line and not line.lstrip().startswith("#"))
    return {key.strip(): value.strip().strip("'\"") for key, value in pairs}


EARLY_ASYNC_MODE = _async_mode()
if EARLY_ASYNC_MODE == "gevent":
    from gevent import monkey

    monkey.patch_all()

import gc  # noqa: E402
import logging  # noqa: E402

from analytics.settings import Settings, SettingsError  # noqa: E402

# The collector runs when the objects it tracks have grown by this many since it last ran
# (CPython's default: 700). A log parse or a delivery makes a few thousand at once and frees
# them a moment later; at 700 each one set off collections (~35 a second at 10,000 ev/s x 100
# clients), and every ~4 s a full one: 4-15 ms of CPU each with nothing to collect, at whatever
# allocation tipped it, on top of that loop turn's work (6 of the 11 loop blocks of 10 ms or more
# in a 60 s run, 2026-12-03). At 10,000 such bursts come and go under it: in 30 s runs of that
# cell, 17-18 young collections (1.5-3 ms) and no full one, loop blocked in the window <= 10 and
# <= 5 ms against <= 20 and <= 10 ms at 700. Cyclic garbage waits at most that many objects.
YOUNG_COLLECTION_OBJECTS = 10_000


def main() -> int:
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"backend: bad setting: {exc}", file=sys.stderr)
        return 2
    if settings.ASYNC_MODE != EARLY_ASYNC_MODE:  # a line the quick reader above parsed otherwise
        print(f"backend: bad setting: ASYNC_MODE read as {EARLY_ASYNC_MODE!r} before start-up and as "
              f"{settings.ASYNC_MODE!r} by the settings; write it as ASYNC_MODE=<mode>", file=sys.stderr)
        return 2
    logging.basicConfig(level=settings.LOG_LEVEL, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("geventwebsocket.handler").setLevel(logging.WARNING)  # one line per request is noise
    from analytics.redis_tls import insecure_warning

    if insecure_warning(settings):  # at every start, while it lasts
        logging.getLogger("backend").warning(insecure_warning(settings))
    from analytics.factory import create_app, socketio
    from analytics.server import listening_socket, serve

    try:
        sock = listening_socket(settings.HOST, settings.PORT)
    except OSError as exc:
        print(f"backend: cannot listen on {settings.HOST}:{settings.PORT}: {exc.strerror}", file=sys.stderr)
        return 2
    app = create_app(settings)
    # Everything built so far (modules, the app, pydantic and numpy internals) lives as long as
    # the process: freezing moves it out of the collector's reach, so a full collection scans
    # only the objects made since, instead of pausing every stream for tens of milliseconds.
    gc.freeze()
    gc.set_threshold(YOUNG_COLLECTION_OBJECTS, *gc.get_threshold()[1:])
    serve(app, socketio, sock, settings.ASYNC_MODE)
    return 0


if __name__ == "__main__":
    sys.exit(main())
