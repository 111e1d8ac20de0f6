"""The REST floor: a bare gevent WSGI server, no product code, probed beside the product.

    python bench/rest_floor.py --port PORT

Answers every GET with a constant `{"status":"ok"}` over keep-alive HTTP/1.1, on the same
server library the product serves with (gevent's pywsgi), at the same niceness. In the REST
cell it runs beside the product while the product ingests, and bench/rest_probe.py times it as
it times `/api/health`: what any request costs on this machine under that load (the kernel's
loopback, the probe's and the server's wake-ups, their wait for a CPU on two shared cores)
before the product's loop or Flask do anything. The REST budget lines are read against it, as
the quiet-stream lines are read against bench/hop_floor.py. Prints "ready" once listening.
"""
from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import sys  # noqa: E402

from gevent.pywsgi import WSGIServer  # noqa: E402

BODY = b'{"status":"ok"}'
HEADERS = [("Content-Type", "application/json"), ("Content-Length", str(len(BODY)))]


def app(environ, start_response):
    start_response("200 OK", HEADERS)
    return [BODY]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    server = WSGIServer((args.host, args.port), app, log=None)
    server.start()
    print("ready", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
