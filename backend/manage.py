"""Access-control chores: `python backend/manage.py new-key [--source shop]` prints a new producer
key and the line to add to API_KEYS; `new-token [--sources web,api] [--ttl 3600]` mints a viewer
token signed with JWT_SECRET (from the environment, backend/.env or JWT_SECRET_FILE).

Keys are shown once here and stored nowhere: API_KEYS holds only their SHA-256 digests.
"""
from __future__ import annotations

import argparse
import sys

from analytics.access.keys import new_key
from analytics.access.tokens import mint
from analytics.events.schema import is_name
from analytics.settings import Settings, SettingsError

MAX_TTL_S = 366 * 86400


def source_name(raw: str) -> str:
    if not is_name(raw):
        raise argparse.ArgumentTypeError(f"{raw!r} is not a source name (1-64 of A-Za-z0-9_.:-)")
    return raw


def source_list(raw: str) -> list[str]:
    return [source_name(s.strip()) for s in raw.split(",") if s.strip()]


def ttl(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if not 1 <= value <= MAX_TTL_S:
        raise argparse.ArgumentTypeError(f"must be 1..{MAX_TTL_S} seconds")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="manage.py", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    key = commands.add_parser("new-key", help="print a new producer key and its API_KEYS entry")
    key.add_argument("--source", type=source_name, help="bind the key to this one source")
    token = commands.add_parser("new-token", help="mint a viewer token signed with JWT_SECRET")
    token.add_argument("--sources", type=source_list, help="comma-separated sources the viewer may read (default: all)")
    token.add_argument("--ttl", type=ttl, default=3600, help="seconds until it expires (default 3600)")
    args = parser.parse_args(argv)

    if args.command == "new-key":
        secret, entry = new_key(args.source)
        print(f"key (give it to the producer; shown once, stored nowhere): {secret}")
        print(f"API_KEYS entry (comma-separate several): {entry}")
        return 0
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"manage.py: bad setting: {exc}", file=sys.stderr)
        return 2
    if settings.JWT_SECRET is None:
        print("manage.py: JWT_SECRET is not set (tokens for JWT_PUBLIC_KEY are signed where its private key is)",
              file=sys.stderr)
        return 2
    print(mint(settings.JWT_SECRET.get_secret_value(), args.ttl, args.sources))
    return 0


if __name__ == "__main__":
    sys.exit(main())
