"""The crm-audit command line: parse, call, print, exit code. Nothing else lives here.

Exit codes: 0 audit ran and all gates passed; 1 a gate failed; 2 usage or profile error;
3 the audit could not run (target unreachable, interrupted, internal error).
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from crm_audit import __version__

if TYPE_CHECKING:  # pragma: no cover - heavy modules are imported where they are used (fast start-up)
    from crm_audit.core.ci_model import WaiversRecord
    from crm_audit.core.model import AuditResult, ProbeResult
    from crm_audit.core.plugins import Registry
    from crm_audit.core.profile import Profile

from crm_audit.core.errors import EXIT_CANNOT_RUN, EXIT_GATE, EXIT_OK, EXIT_USAGE  # noqa: F401 - re-exported


def fail(message: str, code: int) -> None:
    """Print one line to stderr and exit with the documented code."""
    click.echo(f"crm-audit: error: {message}", err=True)
    sys.exit(code)


def handle_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn known failures into one line and an exit code; never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except KeyboardInterrupt:
            fail("interrupted", EXIT_CANNOT_RUN)
        except (click.exceptions.Exit, click.ClickException, SystemExit):
            raise
        except Exception as exc:  # noqa: BLE001 - known errors get one line, the rest is the last line of defence
            from crm_audit.core.errors import CrmAuditError
            from crm_audit.core.redact import Redactor

            if isinstance(exc, CrmAuditError):  # raised on purpose, phrased without secrets; the class holds the exit code
                fail(str(exc) or type(exc).__name__, exc.exit_code)
            if isinstance(exc, (UnicodeDecodeError, IsADirectoryError, NotADirectoryError, FileNotFoundError,
                                PermissionError)):
                fail(Redactor().redact(_file_problem(exc)) or "", EXIT_USAGE)
            if os.environ.get("CRM_AUDIT_DEBUG"):
                raise
            message = Redactor().redact(f"{type(exc).__name__}: {exc}")
            fail(f"internal error: {message} (set CRM_AUDIT_DEBUG=1 for a traceback)", EXIT_CANNOT_RUN)

    return wrapper


def _file_problem(exc: OSError | UnicodeDecodeError) -> str:
    if isinstance(exc, UnicodeDecodeError):
        return f"an input file is not UTF-8 text ({exc.reason} at byte {exc.start})"
    return f"{exc.filename or 'file'}: {exc.strerror or exc}"


def is_ci() -> bool:
    return bool(os.environ.get("CI")) or not sys.stderr.isatty()


class Progress:
    """Rich progress on a terminal, plain lines in CI or when piped."""

    def __init__(self, total: int, quiet: bool = False) -> None:
        self.total, self.quiet, self.n = total, quiet, 0
        self._rich = None
        if not quiet and not is_ci():
            from rich.console import Console

            self._console = Console(stderr=True)
            self._status = self._console.status("starting…")
            self._status.start()
            self._rich = True

    def __call__(self, stage: str, probe: str, result: ProbeResult | None) -> None:
        if self.quiet:
            return
        if stage == "start":
            self.n += 1
            msg = f"[{self.n}/{self.total}] {probe} …"
            if self._rich:
                from rich.markup import escape

                self._status.update(escape(msg))
            else:
                click.echo(msg, err=True)
        elif stage == "done" and result is not None:
            fails = sum(1 for f in result.findings if f.status.value == "fail")
            line = f"[{self.n}/{self.total}] {probe}: {result.status} in {result.duration_s:.1f} s, " \
                   f"{result.requests} requests, {fails} failed finding(s)"
            if result.reason:
                line += f" — {result.reason}"
            if self._rich:
                self._console.print(line, markup=False, highlight=False)
            else:
                click.echo(line, err=True)

    def close(self) -> None:
        if self._rich:
            self._status.stop()


# ------------------------------------------------------------------ group


class LazyGroup(click.Group):
    """A group that imports the sub-commands of ``crm_audit.commands`` and asks the plugins for
    theirs (``crm_audit_register_commands``: ``demo``, ``load-worker``, a third party's) only when
    one is asked for (or listed by --help), so ``--version`` and the built-in commands start fast."""

    _loaded = False

    def _load(self) -> None:
        if not self._loaded:
            self._loaded = True
            from crm_audit.commands import COMMANDS

            for cmd in COMMANDS:
                self.add_command(cmd)
            self._load_plugin_commands()

    def _load_plugin_commands(self) -> None:
        """Add the plugins' commands; a broken plugin costs its own commands only (a warning)."""
        from crm_audit.core.plugins import PluginError, make_plugin_manager

        try:
            warnings = make_plugin_manager().register_commands(self)
        except PluginError as exc:  # clashing probes: the command that needs them reports it in full
            warnings = [str(exc)]
        for w in warnings:
            click.echo(f"crm-audit: warning: {w}", err=True)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        found = super().get_command(ctx, cmd_name)
        if found is None and not self._loaded:
            self._load()
            found = super().get_command(ctx, cmd_name)
        return found

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._load()
        return super().list_commands(ctx)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="crm-audit")
def cli() -> None:
    """Audit a running CRM over its API and prove, with evidence, how fast, safe,
    recoverable and clean it is.

    \b
    Start here:
      crm-audit demo                 audit the embedded demo CRM, write a report
      crm-audit init my.yaml         write a commented starter profile
      crm-audit validate my.yaml     check a profile without contacting anything
      crm-audit audit my.yaml        audit your CRM
      crm-audit plugins              list probes, reporters and adapters

    Exit codes: 0 ok, 1 a gate failed, 2 usage or profile error, 3 the audit could not run.
    """


def plugin_registry() -> Registry:
    """The installed plugins (probes, reporters, adapters, auth methods), warning on stderr about any that failed to load."""
    from crm_audit.core.plugins import make_plugin_manager

    reg = make_plugin_manager()
    for w in reg.warnings:
        click.echo(f"crm-audit: warning: {w}", err=True)
    return reg


_registry = plugin_registry


def _split(values: tuple[str, ...]) -> list[str] | None:
    out = [v.strip() for item in values for v in item.split(",") if v.strip()]
    return out or None


def audit_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Options shared by `audit` and `demo`."""
    opts = [
        click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), default=Path("reports"),
                     show_default=True, help="Base folder; each run writes a new sub-folder named after its run id."),
        click.option("--format", "formats", default=None, metavar="LIST",
                     help="Comma-separated report formats (json always included), or 'all'. Default: json,html."),
        click.option("--only", multiple=True, metavar="PROBE", help="Run only these probes (repeat or comma-separate)."),
        click.option("--skip", multiple=True, metavar="PROBE", help="Do not run these probes."),
        click.option("--hierarchy", default=None, help="Hierarchy to score against (name or YAML path); default from the profile."),
        click.option("--fail-under", multiple=True, metavar="[DIM=]SCORE",
                     help="Gate: exit 1 if the overall score (70) or a dimension's score (perf=60) is below this. "
                          "Repeat or comma-separate."),
        click.option("--fail-on", type=click.Choice(["info", "low", "medium", "high", "critical"]), default=None,
                     help="Gate: exit 1 on any open failed finding at or above this severity."),
        click.option("--fail-on-verdict", type=click.Choice(["not-fit", "conditions"]), default=None,
                     help="Gate on the verdict: 'not-fit' exits 1 on Not fit or Inconclusive, 'conditions' on "
                          "anything but Fit (docs/scoring.md#verdict)."),
        click.option("--min-coverage", type=click.FloatRange(0, 100), default=None, metavar="PCT",
                     help="Coverage floor in percent, checked whenever any gate is set "
                          "(default: the profile's gates.min_coverage, else verdict.min_coverage, 60)."),
        click.option("--threshold", "thresholds", multiple=True, metavar="IND<=MAX|IND>=MIN",
                     help="Gate on an indicator's measured values, e.g. 'perf.response_time_p95<=300' (repeatable)."),
        click.option("--baseline", type=click.Path(dir_okay=False, path_type=Path), default=None, metavar="FILE",
                     help="result.json of an earlier run: report new/fixed findings, score changes, regressions."),
        click.option("--fail-on-regression/--no-fail-on-regression", default=None,
                     help="Gate: exit 1 on a statistically significant regression or a new open finding "
                          "against --baseline (default: the profile's gates.fail_on_regression)."),
        click.option("--regression-threshold", type=click.FloatRange(0, 100, min_open=True), default=None, metavar="PCT",
                     help="Relative slow-down of the median that may count as a regression "
                          "(default: the profile's gates.regression_threshold, else 20)."),
        click.option("--waivers", type=click.Path(dir_okay=False, path_type=Path), default=None, metavar="FILE",
                     help="Waivers YAML (accepted findings with justification, owner, expiry); default: the profile's."),
        click.option("--sign-key", type=click.Path(dir_okay=False, path_type=Path), default=None, metavar="FILE",
                     help="Sign result.json with this Ed25519 private key (see `crm-audit keygen`)."),
        click.option("--allow-disruptive/--no-allow-disruptive", default=None,
                     help="Allow lockout attempts, restores and heavier load (default: the profile's allow.disruptive)."),
        click.option("--quiet", "-q", is_flag=True, help="Print only the summary."),
        click.option("--verbose", "-v", "verbose", count=True,
                     help="Show the probes' log lines on stderr (-vv: debug too); secrets are redacted."),
        click.option("-o", "--option", "overrides", multiple=True, metavar="plugins.PROBE.KEY=VALUE",
                     help="Override a probe option for this run (repeatable); the value is read as YAML, "
                          "e.g. -o plugins.latency.samples=5 -o 'plugins.access.checks=[anonymous]'."),
    ]
    ci_keys = ("thresholds", "baseline", "fail_on_regression", "regression_threshold", "waivers", "sign_key",
               "min_coverage", "fail_on_verdict", "overrides")

    @functools.wraps(fn)
    def packed(*args: Any, **kwargs: Any) -> Any:
        from crm_audit.core.logs import configure

        configure(kwargs.pop("verbose"))
        # the CI options travel as one `ci` dict, so commands pass them on without naming each
        return fn(*args, ci={k: kwargs.pop(k) for k in ci_keys}, **kwargs)

    for o in reversed(opts):
        packed = o(packed)
    return packed


def execute(profile: Profile, registry: Registry, out: Path, formats: str | None, only: tuple[str, ...],
            skip: tuple[str, ...], hierarchy: str | None, fail_under: tuple[str, ...], fail_on: str | None,
            allow_disruptive: bool | None, quiet: bool, allow_writes: bool | None = None,
            ci: dict[str, Any] | None = None) -> int:
    """Run an audit, write its files and print the summary; returns the exit code."""
    from crm_audit.core.postprocess import PostOptions, postprocess, prepare
    from crm_audit.core.runner import RunOptions, plugin_indicators, run_audit, select_probes
    from crm_audit.output import check_output_base, parse_formats, run_folder, write_reports

    ci = dict(ci or {})
    if ci.get("overrides"):
        from crm_audit.core.options import apply_overrides

        profile = apply_overrides(profile, ci["overrides"])
    ci.pop("overrides", None)
    fmt = parse_formats(formats, registry)
    check_output_base(out)
    for pct in ("regression_threshold", "min_coverage"):
        if ci.get(pct) is not None:
            ci[pct] = ci[pct] / 100.0
    from crm_audit.core.catalogue import registry_catalogue

    prepared = prepare(profile, PostOptions(fail_under=tuple(fail_under or ()), fail_on=fail_on,
                                            hierarchy=hierarchy, **{k: v for k, v in ci.items() if v is not None}),
                       catalogue=registry_catalogue(registry))
    prepared.indicators = plugin_indicators(registry)
    opts = RunOptions(only=_split(only), skip=_split(skip), hierarchy=hierarchy,
                      allow_disruptive=allow_disruptive, allow_writes=allow_writes)
    progress = Progress(len(select_probes(registry, profile, opts.only, opts.skip)), quiet)
    opts.progress = progress
    try:
        result = run_audit(profile, registry, opts)  # Ctrl-C inside a probe still yields a partial result
    finally:
        progress.close()
    result = postprocess(result, prepared, warn=lambda msg: click.echo(f"crm-audit: warning: {msg}", err=True))
    folder = run_folder(out, result.run_id)
    paths, report_error = write_reports(result, registry, folder, fmt)
    print_summary(result, paths)
    if report_error:
        click.echo(f"crm-audit: error: report not written: {report_error} "
                   f"(re-render with `crm-audit report {folder / 'result.json'}`)", err=True)
        return EXIT_CANNOT_RUN
    if not result.complete:
        click.echo(f"crm-audit: error: audit incomplete: {result.incomplete_reason} "
                   f"(partial result in {folder / 'result.json'})", err=True)
        return EXIT_CANNOT_RUN
    return EXIT_GATE if any(not g.passed for g in result.gates) else EXIT_OK


def print_summary(result: AuditResult, paths: list[Path]) -> None:
    """The first screen of a run: verdict, open findings, score with coverage, then gates and files."""
    from crm_audit.summary import summary_lines

    for line in summary_lines(result):
        click.echo(line)
    waived = [f for f in result.all_findings() if f.waiver is not None]
    if result.waivers is not None or waived:
        w: WaiversRecord | dict[str, Any] = result.waivers or {}
        click.echo(f"waivers: {len(waived)} finding(s) waived by {len(w.get('applied') or [])} waiver(s); "
                   f"{len(w.get('expired') or [])} expired, {len(w.get('unmatched') or [])} unmatched")
        for e in w.get("expired") or []:
            click.echo(f"  expired {e.get('expires')}: {e.get('id')} (by {e.get('by')}) — counts again")
    base = result.baseline
    if base is not None:
        click.echo(f"baseline {base.get('run_id')}: {len(base.get('new_findings') or [])} new, "
                   f"{len(base.get('fixed_findings') or [])} fixed, {len(base.get('unchanged_findings') or [])} "
                   f"unchanged finding(s); {len(base.get('regressions') or [])} regression(s)")
        for fid in base.get("new_findings") or []:
            click.echo(f"  new finding {fid}")
        for r in base.get("regressions") or []:
            click.echo(f"  regression {r.get('label') or r.get('indicator')}: median {r.get('before')} → "
                       f"{r.get('after')} {r.get('unit') or ''} (+{(r.get('relative_change') or 0) * 100:.0f}%, "
                       f"p={r.get('p_value'):.1e})")
    for g in result.gates:
        if g.passed:
            click.echo(f"gate {g.gate}: passed — {g.detail}")
    failed = [g for g in result.gates if not g.passed]
    for g in failed:
        click.echo(f"gate {g.gate}: FAILED — {g.detail}")
    if failed:
        click.echo(f"{len(failed)} gate(s) failed: {', '.join(g.gate for g in failed)}")
    if result.signature:
        click.echo(f"signed with {result.signature.get('algorithm')} key {result.signature.get('key_fingerprint')}")
    if not result.complete:
        click.echo(f"audit incomplete: {result.incomplete_reason}")
    for p in paths:
        click.echo(f"wrote {p}")


# ------------------------------------------------------------------ commands


@cli.command()
@click.argument("profile_path", metavar="PROFILE", type=click.Path(dir_okay=False, path_type=Path))
@audit_options
@click.option("--allow-writes/--no-allow-writes", default=None,
              help="Let probes create/update/delete their own tagged records (default: the profile's allow.writes).")
@handle_errors
def audit(profile_path: Path, out: Path, formats: str | None, only: tuple[str, ...], skip: tuple[str, ...],
          hierarchy: str | None, fail_under: tuple[str, ...], fail_on: str | None, allow_disruptive: bool | None,
          quiet: bool, allow_writes: bool | None, ci: dict[str, Any]) -> None:
    """Audit the CRM described by PROFILE and write its result and reports.

    \b
    Example:
      export CRM_ADMIN_PASSWORD=…
      crm-audit audit my-crm.yaml --format html,junit --fail-under 70 --fail-on high
    """
    from crm_audit.core.profile import load_profile

    registry = _registry()
    profile = load_profile(profile_path)
    sys.exit(execute(profile, registry, out, formats, only, skip, hierarchy, fail_under, fail_on,
                     allow_disruptive, quiet, allow_writes, ci=ci))


@cli.command()
@click.argument("profile_path", metavar="PROFILE", type=click.Path(dir_okay=False, path_type=Path))
@handle_errors
def validate(profile_path: Path) -> None:
    """Check PROFILE without contacting anything: schema, ${ENV} secrets, probe list and options,
    adapter, hierarchy, evidence, waivers and gates — everything `audit` checks before it starts.

    Every problem is listed, one line each naming its key (exit 2); a selected probe that feeds
    no indicator of the chosen hierarchy is a warning."""
    from crm_audit.core.errors import UsageError
    from crm_audit.core.options import OptionErrors
    from crm_audit.core.postprocess import PostOptions, prepare
    from crm_audit.core.profile import load_profile
    from crm_audit.core.runner import (
        _load_evidence,
        _load_hierarchy,
        check_plugin_sections,
        make_adapter,
        select_probes,
    )
    from crm_audit.core.target import Target
    from crm_audit.scoring.extend import unscored_probe_warnings

    registry = _registry()
    profile = load_profile(profile_path)
    problems: list[str] = []

    def check(step: Callable[[], Any]) -> Any:
        """Run one check; its problems are listed with the others', one line each."""
        try:
            return step()
        except OptionErrors as exc:
            problems.extend(exc.lines)
        except UsageError as exc:  # a ProfileError too
            problems.append(str(exc))
        return None

    probes = check(lambda: select_probes(registry, profile))
    check(lambda: check_plugin_sections(registry, profile))
    hierarchy = check(lambda: _load_hierarchy(profile, registry, None))
    check(lambda: _load_evidence(profile))
    check(lambda: make_adapter(registry, profile, Target(profile)))
    from crm_audit.core.catalogue import registry_catalogue

    check(lambda: prepare(profile, PostOptions(), catalogue=registry_catalogue(registry)))
    for line in problems:
        click.echo(f"crm-audit: error: {line}", err=True)
    if problems:
        sys.exit(EXIT_USAGE)
    for line in unscored_probe_warnings(hierarchy, probes or []) if hierarchy is not None else []:
        click.echo(f"crm-audit: warning: {line}", err=True)
    click.echo(f"{profile_path}: ok — target {profile.target.base_url}, scope {', '.join(profile.target.scope)}, "
               f"{len(profile.accounts)} account(s), {len(profile.endpoints)} endpoint(s)")


@cli.command()
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
@handle_errors
def init(path: Path, force: bool) -> None:
    """Write a commented starter profile to PATH."""
    from importlib.resources import files

    from crm_audit.core.errors import UsageError

    if path.exists() and not force:
        raise UsageError(f"{path} exists; use --force to overwrite it")
    text = (files("crm_audit_profiles") / "starter.yaml").read_text(encoding="utf-8")
    path.write_text(text, encoding="utf-8")
    click.echo(f"wrote {path} — edit it, set the ${{ENV}} secrets it names, then: crm-audit validate {path}")


@cli.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@handle_errors
def plugins_cmd(as_json: bool) -> None:
    """List the probes (with their category), reporters, adapters and auth methods the installed plugins provide."""
    reg = _registry()
    rows: list[dict[str, Any]] = []
    for pid, cls in sorted(reg.probes.items()):
        rows.append({"kind": "probe", "id": pid, "version": cls.version, "plugin": reg.origin[f"probe:{pid}"],
                     "category": cls.category, "indicators": list(cls.indicators), "writes": cls.writes, "disruptive": cls.disruptive,
                     "title": cls.title})
    for fmt, rcls in sorted(reg.reporters.items()):
        rows.append({"kind": "reporter", "id": fmt, "version": rcls.version, "plugin": reg.origin[f"reporter:{fmt}"],
                     "file": rcls.filename, "title": rcls.description})
    for typ, acls in sorted(reg.adapters.items()):
        rows.append({"kind": "adapter", "id": typ, "version": acls.version, "plugin": reg.origin[f"adapter:{typ}"],
                     "title": acls.description})
    for name, mcls in sorted(reg.auth_methods.items()):
        rows.append({"kind": "auth", "id": name, "version": mcls.version, "plugin": reg.origin[f"auth method:{name}"],
                     "password_login": mcls.password_login, "title": mcls.description})
    if as_json:
        import json

        click.echo(json.dumps(rows, indent=2))
        return
    for r in rows:
        extra = ""
        if r["kind"] == "probe":
            flags = [f for f in ("writes", "disruptive") if r[f]]
            extra = f"  {r['category']}; feeds {', '.join(r['indicators']) or '-'}" + (f"  [{', '.join(flags)}]" if flags else "")
        elif r["kind"] == "reporter":
            extra = f"  → {r['file']}"
        elif r["kind"] == "auth":
            extra = "  [password login]" if r["password_login"] else ""
        click.echo(f"{r['kind']:<9} {r['id']:<14} {r['version']:<8} ({r['plugin']}){extra}")


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="crm-audit")
