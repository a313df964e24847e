"""The `squeezer` command: operator tools for accounts, and the one-process server.

    squeezer serve [--port 8080] [--host 127.0.0.1] [--data-dir DIR]
    squeezer accounts create --title T [--quota BYTES] [--file-max-size BYTES]
    squeezer accounts list [--show-secrets]

The accounts commands use REDIS_URL like the service does; with --data-dir they
reach the private Redis of a `squeezer serve` running on that directory.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

from api import serve
from storage import database
from storage.accounts import Account, Accounts
from storage.settings import Settings, SettingsError, parse_size

DEFAULT_DATA_DIR = Path("data")


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
        return args.run(args, settings)
    except SettingsError as error:
        print(f"squeezer: {error}", file=sys.stderr)
        return 2
    except serve.ServeError as error:
        print(f"squeezer: {error}", file=sys.stderr)
        return 1
    except database.UNREACHABLE:
        print("squeezer: Redis cannot be reached (check REDIS_URL)", file=sys.stderr)
        return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="squeezer", description=__doc__.split("\n")[0]
    )
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    run = commands.add_parser("serve", help="run the API, a worker and the scheduler")
    run.add_argument("--port", type=int, default=8080)
    run.add_argument("--host", default="127.0.0.1")
    run.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    run.add_argument("--workers", type=int, default=None, help="worker processes")
    run.set_defaults(run=_serve)

    accounts = commands.add_parser("accounts", help="manage main accounts")
    verbs = accounts.add_subparsers(required=True, metavar="VERB")
    create = verbs.add_parser("create", help="create a main account")
    create.add_argument("--title", required=True)
    create.add_argument("--description", default="")
    create.add_argument("--quota", type=_size, default=None, help="monthly bytes")
    create.add_argument("--file-max-size", type=_size, default=0, help="bytes")
    create.set_defaults(run=_create_account)
    listing = verbs.add_parser("list", help="list main accounts")
    listing.add_argument("--show-secrets", action="store_true")
    listing.set_defaults(run=_list_accounts)
    for verb in (create, listing):
        verb.add_argument("--data-dir", type=Path, default=None)
    return parser


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    return serve.run(
        settings,
        data_dir=args.data_dir,
        host=args.host,
        port=args.port,
        workers=args.workers,
    )


def _create_account(args: argparse.Namespace, settings: Settings) -> int:
    accounts = Accounts(database.connect(_redis_url(args, settings)))
    quota = settings.default_monthly_quota if args.quota is None else args.quota
    account = accounts.create(
        title=args.title,
        description=args.description,
        monthly_quota=quota,
        file_max_size=args.file_max_size,
    )
    print(json.dumps(_public(account, secrets=True), indent=2))
    return 0


def _list_accounts(args: argparse.Namespace, settings: Settings) -> int:
    accounts = Accounts(database.connect(_redis_url(args, settings)))
    rows = [_public(a, args.show_secrets) for a in accounts.main_accounts()]
    print(json.dumps(rows, indent=2))
    return 0


def _redis_url(args: argparse.Namespace, settings: Settings) -> str:
    if args.data_dir is not None:
        return serve.running_redis_url(args.data_dir)
    if not settings.redis_url:
        raise serve.ServeError(
            "set REDIS_URL, or pass --data-dir of a running `squeezer serve`"
        )
    return settings.redis_url


def _public(account: Account, secrets: bool) -> dict[str, object]:
    fields = asdict(account)
    fields.pop("parent_id")
    if not secrets:
        fields.pop("api_secret")
    return fields


def _size(text: str) -> int:
    try:
        return parse_size(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


if __name__ == "__main__":
    sys.exit(main())
