"""Every hook a crm-audit plugin may implement.

A plugin is any module or object registered under the ``crm_audit`` entry-point group
(built-in plugins are registered exactly that way). Implement a hook by decorating a
function of the same name with :data:`hookimpl`. Each hook is documented in
``docs/plugins.md`` too; a test fails when one is missing there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:  # pragma: no cover
    import click

    from crm_audit.core.adapter import Adapter
    from crm_audit.core.auth import AuthMethod
    from crm_audit.core.catalogue import CheckSpec
    from crm_audit.core.model import AuditResult, ProbeResult
    from crm_audit.core.probe import Probe, Reporter
    from crm_audit.report.section import ReportSection
    from crm_audit.scoring.extend import IndicatorSpec

PROJECT = "crm_audit"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def crm_audit_register_probes() -> list[type[Probe]]:
    """Return the probe classes this plugin provides.

    Called once when the plugin manager is built. Each class subclasses
    :class:`crm_audit.core.probe.Probe` and declares ``id``, ``title``, ``version``,
    ``indicators`` (the hierarchy indicator ids it feeds), ``writes``, ``disruptive``
    and ``options_model`` (a pydantic model of its per-plugin options). Probe ids must be
    unique across all plugins.
    """


@hookspec
def crm_audit_register_reporters() -> list[type[Reporter]]:
    """Return the reporter classes this plugin provides.

    Called once when the plugin manager is built. A reporter declares ``format`` (the name
    used with ``--format``) and ``filename``, and renders an :class:`AuditResult` to text or
    bytes. Reporters never contact the target.
    """


@hookspec
def crm_audit_register_adapters() -> list[type[Adapter]]:
    """Return the target-adapter classes this plugin provides.

    Called once when the plugin manager is built. An adapter maps generic notions
    (contacts, leads, cases …) and their CRUD actions onto one CRM's API; the profile picks
    one by its ``type``. The built-in ``rest`` adapter is configured entirely in the
    profile.
    """


@hookspec
def crm_audit_register_auth() -> list[type[AuthMethod]]:
    """Return the authentication-method classes this plugin provides.

    Called when a Target first needs to log an account in. Each class subclasses
    :class:`crm_audit.core.auth.AuthMethod` and declares ``name`` (what ``accounts[].auth.method``
    names); ``login(target)`` returns :class:`crm_audit.core.auth.Credentials` (headers, cookies, a
    signer, ``expires_at``), ``refresh`` renews them, ``logout`` ends the session and
    ``attempt(target, username, password)`` tries one login for the lockout and enumeration
    checks. Names must be unique across all plugins.
    """


@hookspec
def crm_audit_register_indicators() -> list[IndicatorSpec]:
    """Return the indicators this plugin adds to whichever hierarchy the profile chooses.

    Called once per hierarchy load (audit, validate). Each
    :class:`crm_audit.scoring.extend.IndicatorSpec` names its dimension and default weight;
    it is added under that dimension with its weight, and the dimension's other children keep
    their proportions in the rest (docs/plugins.md, "Indicators a plugin adds"). A hierarchy
    that already defines the id, or lacks the dimension, keeps its own tree.
    """


@hookspec
def crm_audit_register_commands(cli: click.Group) -> None:
    """Add sub-commands to the ``crm-audit`` command line (as datasette's ``register_commands``).

    Called with the top-level click group when the command line needs a command it does not
    define itself (and for ``--help``); add commands with ``cli.add_command(…)`` or
    ``@cli.command()``. Import what a command needs inside it, so start-up stays fast. A plugin
    that takes a name already in use adds none of its commands (a warning names both plugins).
    ``crm-audit load-worker`` (the ``load`` plugin) and ``crm-audit demo`` (``crm_audit_demo``)
    are registered this way.
    """


@hookspec
def crm_audit_register_report_sections() -> list[ReportSection]:
    """Return how the HTML report draws the results of this plugin's probes.

    Called when an HTML report is rendered. Each
    :class:`crm_audit.report.section.ReportSection` names its ``probe`` id, a Jinja
    ``template`` and a ``view`` function (ProbeResult → view model, or None: nothing to draw).
    A probe without a section gets the generic one (measurements, findings, artifacts as data).
    One section per probe id across all plugins.
    """


@hookspec
def crm_audit_register_checks() -> list[CheckSpec]:
    """Return the check-catalogue entries of the checks this plugin's probes emit.

    Called once per catalogue build (audit, ``crm-audit checks``, waivers). Implement it in
    one line with :func:`crm_audit.core.catalogue.load_checks` of the plugin module's
    ``__file__``: it reads every ``checks/*.yaml`` beside it (docs/checks.md lists the entry
    keys). A finding's id is a check id or a check id plus ``.`` plus an instance suffix; an
    id no entry covers becomes a result warning. Check ids must be unique across all plugins.
    """


@hookspec
def crm_audit_audit_started(run_id: str, profile: Any, probe_ids: list[str]) -> None:
    """Observe the start of an audit, after the profile is loaded and probes are selected.

    Called once, before the first probe runs. Return value is ignored.
    """


@hookspec
def crm_audit_probe_finished(run_id: str, result: ProbeResult) -> None:
    """Observe one probe's result as soon as it is known (also for errors and skips).

    Called once per selected probe, in the runner's thread. Return value is ignored;
    an exception here is recorded in the result's ``warnings`` and does not stop the audit.
    """


@hookspec
def crm_audit_audit_finished(result: AuditResult) -> None:
    """Observe the finished (possibly incomplete) audit result, before it is written.

    Called once, also when the audit was interrupted, with the scored, judged and redacted
    result. Return value is ignored; an exception here is recorded in the result's
    ``warnings`` and the result is still written.
    """
