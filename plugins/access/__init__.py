"""Built-in ``access`` probe: authentication, login limits, access control, hardening, access log.

Checks (each a finding with a stable id, OWASP API Top 10 2023 and CWE references):
anonymous access, the vertical role matrix, BOLA and tenant isolation, mass assignment and
secret exposure, JWT tampering/default secrets/expiry/logout, user enumeration, the
failed-login limit (disruptive, only with a ``purpose: lockout`` account), self-registration,
CORS/headers/error leakage/banners, and the access log. Everything it writes is the audit's
own tagged records, deleted again through ``ctx.defer``. It speaks to the CRM only through the
adapter contract (records, ``classify``, the named operations ``me``, ``update_me``,
``users.list``, ``users.delete``, ``register``, ``audit_log``, and for the token-lifecycle and
password-storage checks ``change_password``, ``users.create``, ``users.deactivate``,
``users.activate``) and the auth plugin point
(``Target.try_login``, ``present_token``, ``logout``), so every check runs over any protocol an
adapter speaks. See docs/access-control.md.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from typing import Any

from crm_audit.core.catalogue import CheckSpec, load_checks
from crm_audit.core.hookspecs import hookimpl
from crm_audit.core.model import Finding, Measurement, NotAssessed, ProbeResult, Severity, Status
from crm_audit.core.probe import Probe, ProbeContext, ProbeSkipped
from crm_audit.core.target import BudgetExceeded, Cancelled, OutOfScope, TargetError
from crm_audit.report.section import ReportSection

from .access_log import check_access_log
from .anonymous import check_anonymous
from .artifacts import AccessArtifacts
from .collections import check_collections
from .common import (
    INDICATOR_ACCESS,
    INDICATOR_AUTHN,
    INDICATOR_HARDENING,
    INDICATOR_LOGGING,
    INDICATOR_LOGIN,
    AccessRun,
)
from .data_exposure import check_data_exposure
from .discovery import Surface, discovered_surface
from .escalation import check_self_escalation
from .hardening import check_hardening, report_deny_errors
from .injection import check_context_injection
from .lifecycle import check_lifecycle
from .login import check_enumeration, check_lockout, check_registration
from .matrix import check_vertical
from .metadata import check_metadata
from .objects import check_objects
from .options import AccessOptions
from .passwords import check_passwords
from .persisted import report_persisted
from .properties import check_exposure, check_mass_assignment, check_me_mass_assignment
from .robustness import check_robustness
from .surface_report import check_surface
from .tokens import DEFAULT_SECRETS, check_tokens

__version__ = "0.2.0"
__all__ = ["AccessProbe", "AccessOptions", "DEFAULT_SECRETS", "Surface", "discovered_surface"]


class AccessProbe(Probe):
    id = "access"
    title = "Access control and authentication"
    version = __version__
    category = "security"
    indicators = ("sec.authentication", "sec.login_limit", "sec.access_control", "sec.hardening",
                  "sec.access_logging")
    writes = True
    disruptive = True
    options_model = AccessOptions
    artifacts_model = AccessArtifacts
    timeout_s = 900.0
    #: judges answers, not their time: runs beside the other probes that time nothing
    quiet_target = False

    def run(self, ctx: ProbeContext) -> ProbeResult:
        if not ctx.profile.accounts:
            raise ProbeSkipped("the profile has no accounts (accounts:)")
        run = AccessRun(ctx=ctx, opts=ctx.options)
        artifacts: dict[str, Any] = {}

        def properties() -> None:
            check_mass_assignment(run)
            check_me_mass_assignment(run)
            check_exposure(run)

        steps: list[tuple[str, Callable[[], object]]] = [
            ("surface", lambda: artifacts.update({"surface": check_surface(run)})),
            ("vertical", lambda: artifacts.update(check_vertical(run) or {})),
            ("objects", lambda: check_objects(run)),
            ("properties", properties),
            ("injection", lambda: check_context_injection(run)),
            ("escalation", lambda: check_self_escalation(run)),
            ("anonymous", lambda: check_anonymous(run)),
            ("tokens", lambda: check_tokens(run)),
            ("lifecycle", lambda: check_lifecycle(run)),
            ("passwords", lambda: check_passwords(run)),
            ("login", lambda: check_enumeration(run)),
            ("lockout", lambda: check_lockout(run)),
            ("registration", lambda: check_registration(run)),
            ("robustness", lambda: check_robustness(run)),
            ("hardening", lambda: check_hardening(run)),
            ("logging", lambda: check_access_log(run)),
            ("data_exposure", lambda: check_data_exposure(run)),
            ("collections", lambda: check_collections(run)),
            ("metadata", lambda: check_metadata(run)),
        ]
        for name, step in steps:
            if name not in run.checks:
                continue
            ctx.check_cancelled()
            ctx.log(f"{name} checks")
            try:
                step()
            except (KeyboardInterrupt, ProbeSkipped):
                raise
            except Exception as exc:  # noqa: BLE001 - one broken check must not hide the others
                ctx.log(f"{name} checks broke:\n{''.join(traceback.format_exception(exc))}", logging.DEBUG)
                if isinstance(exc, (BudgetExceeded, OutOfScope)):
                    raise
                why = (NotAssessed.interrupted if isinstance(exc, Cancelled) else NotAssessed.request_failed
                       if isinstance(exc, TargetError) else NotAssessed.probe_error)
                run.add(f"access.error.{name}", f"{name} checks could not finish: {type(exc).__name__}: {exc}",
                        status=Status.error, severity=Severity.info, indicator=STEP_INDICATOR[name], not_assessed=why)
        if run.checks & {"vertical", "objects", "anonymous"}:
            report_deny_errors(run)
        if run.checks & {"vertical", "objects", "anonymous", "properties", "injection"}:
            report_persisted(run)
        left = run.notes.get("left_behind") or []
        if left:
            artifacts["left_behind"] = left
        return ProbeResult(probe=self.id, findings=run.findings, measurements=logging_measurement(run.findings),
                           artifacts=artifacts, reason=("left in the CRM: " + "; ".join(left)) if left else None)


#: the indicator each step's checks feed (a step that breaks is reported against it)
STEP_INDICATOR: dict[str, str] = {
    "vertical": INDICATOR_ACCESS, "objects": INDICATOR_ACCESS, "properties": INDICATOR_ACCESS,
    "anonymous": INDICATOR_ACCESS, "tokens": INDICATOR_AUTHN, "login": INDICATOR_AUTHN, "lockout": INDICATOR_LOGIN,
    "registration": INDICATOR_AUTHN, "hardening": INDICATOR_HARDENING, "logging": INDICATOR_LOGGING,
    "injection": INDICATOR_ACCESS, "escalation": INDICATOR_ACCESS,
    "surface": INDICATOR_ACCESS, "data_exposure": INDICATOR_ACCESS, "collections": INDICATOR_HARDENING,
    "metadata": INDICATOR_HARDENING, "robustness": INDICATOR_HARDENING, "lifecycle": INDICATOR_AUTHN, "passwords": INDICATOR_AUTHN,
}


def logging_measurement(findings: list[Finding]) -> list[Measurement]:
    """sec.access_logging as pass (1) / partial (share) / fail (0) of the access-log checks that ran."""
    checks = [f for f in findings if f.indicator == INDICATOR_LOGGING and f.status in (Status.passed, Status.failed)]
    if not checks:
        return []
    passed = sum(f.status == Status.passed for f in checks)
    return [Measurement(indicator=INDICATOR_LOGGING, value=round(passed / len(checks), 6), unit="pass/fail",
                        expected=1.0, better="higher", label=f"{passed} of {len(checks)} access-log checks passed",
                        details={"checks": [f.id for f in checks]})]


@hookimpl
def crm_audit_register_probes() -> list[type[Probe]]:
    return [AccessProbe]


@hookimpl
def crm_audit_register_report_sections() -> list[ReportSection]:
    """The access section of the HTML report (its view and template in ``report.py``, read when a report is drawn)."""
    from .report import SECTION

    return [SECTION]


@hookimpl
def crm_audit_register_checks() -> list[CheckSpec]:
    """This probe's check catalogue: every ``checks/*.yaml`` beside this module."""
    return load_checks(__file__)
