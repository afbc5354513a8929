"""``python -m crm_audit_demo serve --port N [--flaw NAME ...] ...``: run the demo CRM here.

Secrets are read from the DEMO_* environment variables; absent ones are generated and
written to ``<data-dir>/secrets.env`` (mode 0600). Listens on 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from crm_audit_demo.config import PROTOCOLS
from crm_audit_demo.flaws import FLAWS


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface of the demo CRM process."""
    parser = argparse.ArgumentParser(prog="python -m crm_audit_demo", description="Embedded demo CRM.")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve the demo CRM on 127.0.0.1")
    serve.add_argument("--port", type=int, required=True, help="TCP port on 127.0.0.1")
    serve.add_argument("--flaw", action="append", default=[], choices=sorted(FLAWS), metavar="NAME",
                       help="enable a deliberate flaw (repeatable): " + ", ".join(FLAWS))
    serve.add_argument("--delay-ms", type=int, default=0, help="delay per API request, holding a slot")
    serve.add_argument("--capacity", type=int, default=16, help="concurrent API requests served")
    serve.add_argument("--no-tls", action="store_true", help="plain HTTP instead of HTTPS")
    serve.add_argument("--data-dir", type=Path, default=None, help="database, backups, certificates")
    serve.add_argument("--seed", type=int, default=7, help="seed of the synthetic data")
    serve.add_argument("--protocol", choices=PROTOCOLS, default="rest",
                       help="jsonrpc: serve the JSON-RPC face (POST /api/jsonrpc) beside the REST API")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and serve until terminated."""
    args = build_parser().parse_args(argv)
    from crm_audit_demo.serve import run

    run(port=args.port, flaws=args.flaw, delay_ms=args.delay_ms, capacity=args.capacity,
        tls=not args.no_tls, data_dir=args.data_dir, seed=args.seed, protocol=args.protocol)
    return 0


if __name__ == "__main__":
    sys.exit(main())
