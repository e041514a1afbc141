"""``python -m deployments serve [--limit N]``: serve the registry's deployments (what ``zxsync serve``
does; the demo starts it as a child process with ``PREFECT_API_URL`` set)."""

from __future__ import annotations

import argparse

from deployments.registry import serve_registry


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m deployments", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve every deployment of the registry (needs PREFECT_API_URL)")
    serve.add_argument("--limit", type=int, default=None, help="most flow runs at once in this process")
    serve.add_argument("--org", action="append", default=None, help="serve only this org (repeatable)")
    args = parser.parse_args(argv)
    if args.command == "serve":
        serve_registry(limit=args.limit, only=args.org)


if __name__ == "__main__":
    main()
