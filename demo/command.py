"""``crm-audit demo``: audit (or just serve) the embedded demo CRM.

The demo package adds this command through the ``crm_audit_register_commands`` hook (entry
point ``demo`` in the ``crm_audit`` group), exactly as a third-party plugin adds one; the core
command line does not know the demo CRM. Importing this module is cheap: the server starts
in a child process.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

import click

from crm_audit.cli import audit_options, execute, handle_errors, plugin_registry
from crm_audit.core.hookspecs import hookimpl


@click.command("demo")
@click.option("--flaw", "flaws", multiple=True, metavar="NAME",
              help="Switch a flaw on in the demo CRM (repeatable). `--flaw list` shows them.")
@click.option("--delay-ms", type=click.IntRange(0, 60_000), default=0, help="Extra latency per API request.")
@click.option("--serve", is_flag=True, help="Only run the demo CRM until Ctrl-C, printing its URL and credentials file.")
@click.option("--port", type=click.IntRange(0, 65535), default=0, help="Port for --serve (default: a free one).")
@click.option("--protocol", type=click.Choice(["rest", "jsonrpc"]), default="rest", show_default=True,
              help="The face to audit: REST, or JSON-RPC (POST /api/jsonrpc, audited with profiles/demo-jsonrpc.yaml).")
@audit_options
@handle_errors
def demo(flaws: tuple[str, ...], delay_ms: int, serve: bool, port: int, protocol: str, out: Path, formats: str | None,
         only: tuple[str, ...], skip: tuple[str, ...], hierarchy: str | None, fail_under: tuple[str, ...],
         fail_on: str | None, allow_disruptive: bool | None, quiet: bool, ci: dict[str, Any]) -> None:
    """Start the embedded demo CRM on loopback, audit it with profiles/demo.yaml, write a report.

    \b
    Examples:
      crm-audit demo                          audit a well-configured demo CRM
      crm-audit demo --flaw bola --flaw cors  audit one with those flaws switched on
      crm-audit demo --serve                  just run it, to point other tools at it
      crm-audit demo --protocol jsonrpc       audit its JSON-RPC face instead of its REST API
    """
    from crm_audit.core.runner import UsageError
    from crm_audit_demo import FLAWS, DemoServer

    if "list" in flaws:
        for name, desc in sorted(FLAWS.items()):
            click.echo(f"{name:<22} {desc}")
        return
    unknown = [f for f in flaws if f not in FLAWS]
    if unknown:
        raise UsageError(f"unknown flaw(s) {', '.join(unknown)}; known: {', '.join(sorted(FLAWS))}")
    with DemoServer(flaws=flaws, delay_ms=delay_ms, port=port if serve else 0, protocol=protocol) as server:
        if serve:
            _serve_forever(server)
            return
        from crm_audit_demo.profile import demo_profile

        registry = plugin_registry()
        profile = demo_profile(server)
        code = execute(profile, registry, out, formats, only, skip, hierarchy, fail_under, fail_on,
                       allow_disruptive, quiet, ci=ci)
    sys.exit(code)


def _serve_forever(server: Any) -> None:
    env_file = Path(server.data_dir) / "demo.env"
    fd = os.open(env_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(f"export DEMO_BASE_URL={server.base_url}\n")
        if server.ca_path:
            fh.write(f"export DEMO_CA_BUNDLE={server.ca_path}\n")
        for k, v in sorted(server.env.items()):
            fh.write(f"export {k}='{v}'\n")
    click.echo(f"demo CRM at {server.base_url} (pid {server.pid}); flaws: {', '.join(server.flaws) or 'none'}")
    if server.protocol == "jsonrpc":
        click.echo(f"JSON-RPC endpoint: {server.base_url}/api/jsonrpc (profile: profiles/{server.profile_name})")
    if server.ca_path:
        click.echo(f"test CA certificate: {server.ca_path}")
    click.echo(f"credentials (mode 0600): source {env_file}")
    click.echo("users: admin@acme.example, manager@acme.example, sales@acme.example, sales2@acme.example, "
               "readonly@acme.example, admin@globex.example, sales@globex.example")
    click.echo("press Ctrl-C to stop")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    click.echo("stopping")


@hookimpl
def crm_audit_register_commands(cli: click.Group) -> None:
    """``crm-audit demo``."""
    cli.add_command(demo)
