"""``crm-audit load-worker``: join a load test from another machine as Locust worker(s).

Registered by the load plugin through ``crm_audit_register_commands``; the core does not know it.

Locust workers need the locustfile locally, and the auth tokens must never travel over
Locust's (unencrypted) master link. So the worker takes the SAME profile the auditing
machine uses: it renders the same locustfile from the profile's task mix (its digest is
printed on both sides), logs in with the profile's accounts itself, keeps the headers in a
0600 temp file deleted on exit, and starts ``python -m locust --worker`` processes that
connect to the probe's master (``plugins.load.master_bind`` + ``external_workers``).
The master hands each worker its request quota, so the budget holds across machines.
"""

from __future__ import annotations

import subprocess
import sys

import click

EXIT_USAGE, EXIT_CANNOT_RUN = 2, 3


@click.command("load-worker")
@click.argument("profile_path", metavar="PROFILE")
@click.option("--master", "master", required=True, metavar="HOST:PORT",
              help="the Locust master the load probe started (plugins.load.master_bind)")
@click.option("--processes", default=1, show_default=True, type=click.IntRange(1, 64),
              help="worker processes to start here (one per core is sensible)")
def load_worker(profile_path: str, master: str, processes: int) -> None:
    """Run Locust worker process(es) for a distributed load test of PROFILE's target."""
    from pydantic import ValidationError

    from crm_audit.core.errors import first_error
    from crm_audit.core.processes import stop_processes
    from crm_audit.core.profile import ProfileError, load_profile
    from crm_audit.core.target import Target, TargetError

    from .cluster import locust_env, worker_command
    from .options import LoadOptions
    from .prepare import prepare

    host, _, port = master.rpartition(":")
    if not host or not port.isdigit():
        _fail("--master must be HOST:PORT, e.g. 10.0.0.5:5557", EXIT_USAGE)
    try:
        profile = load_profile(profile_path)
        opts = LoadOptions.model_validate(profile.plugins.get("load") or {})
    except ProfileError as exc:
        _fail(str(exc), EXIT_USAGE)
    except ValidationError as exc:
        _fail(first_error(exc, "plugins.load"), EXIT_USAGE)
    target = Target(profile)
    if not target.in_scope(profile.target.base_url):
        _fail(f"{profile.target.base_url} is outside the profile's scope", EXIT_USAGE)
    try:
        prep = prepare(profile, target, opts)
    except TargetError as exc:
        _fail(target.redactor.redact(str(exc)), EXIT_CANNOT_RUN)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        click.echo(f"load-worker: mix {prep.digest} ({len(prep.tasks)} tasks) -> master {master}, "
                   f"{processes} process(es)", err=True)
        env = locust_env(prep.headers_file, prep.verify)
        for _ in range(processes):
            procs.append(subprocess.Popen(worker_command(prep.locustfile, host, int(port)),
                                          stdin=subprocess.DEVNULL, env=env, cwd=prep.directory))
        codes = [p.wait() for p in procs]
    except KeyboardInterrupt:
        codes = [1]
    finally:
        stop_processes(procs)
        prep.remove()
        target.close()
    sys.exit(0 if all(c == 0 for c in codes) else EXIT_CANNOT_RUN)


def _fail(message: str, code: int) -> None:
    click.echo(f"crm-audit: error: {message}", err=True)
    sys.exit(code)
