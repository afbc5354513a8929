"""After the audit, before the reports: waivers → re-score → baseline → gates → signature.

``prepare()`` reads every input (waivers, baseline, signing key, gate syntax) *before* the
audit runs, so a typo costs seconds, not a whole audit; ``postprocess()`` then turns the raw
result into the final one the reports are drawn from. The order matters: waivers change
what is open (so scores and gates), gates read the baseline, and the signature comes last
so it covers everything, gate outcomes included.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crm_audit.ci.baseline import BaselineError, RegressionPolicy, compare, load_baseline
from crm_audit.ci.gates import GateSyntaxError, evaluate_gates, merge_gates
from crm_audit.ci.signing import SigningError, load_private_key, sign_result
from crm_audit.ci.waivers import Waiver, WaiverError, apply_waivers, check_waiver_ids, load_waivers
from crm_audit.core.catalogue import Catalogue, check_drawn
from crm_audit.core.errors import UsageError
from crm_audit.core.model import AuditResult
from crm_audit.core.profile import Gates, Profile
from crm_audit.core.verdict import finalize


@dataclass
class PostOptions:
    """What the command line adds to the profile's gates, waivers and signing."""

    fail_under: tuple[str, ...] = ()
    fail_on: str | None = None
    thresholds: tuple[str, ...] = ()
    baseline: Path | None = None
    fail_on_regression: bool | None = None
    regression_threshold: float | None = None  # relative, 0.2 = 20 %
    waivers: Path | None = None
    sign_key: Path | None = None
    hierarchy: str | None = None  # the --hierarchy override, to re-score alike
    min_coverage: float | None = None  # 0..1
    fail_on_verdict: str | None = None


@dataclass
class Prepared:
    """Every input read and checked; ready to apply to a result."""

    gates: Gates
    waivers: list[Waiver] = field(default_factory=list)
    baseline: dict[str, Any] | None = None
    policy: RegressionPolicy = field(default_factory=RegressionPolicy)
    sign_key: Any = None
    profile: Profile | None = None
    hierarchy: str | None = None
    today: dt.date | None = None
    #: the plugins' indicators (IndicatorSpec), merged into the hierarchy when re-scoring as in the audit
    indicators: list[Any] = field(default_factory=list)


def prepare(profile: Profile, opts: PostOptions, catalogue: Catalogue | None = None) -> Prepared:
    """Read waivers, baseline and key and parse the gates; any problem is a UsageError (exit 2).

    With a ``catalogue``, every waiver must name one of its checks (or a finding id under one).
    """
    try:
        gates = merge_gates(profile.gates, opts.fail_under, opts.fail_on, opts.thresholds, opts.fail_on_regression,
                            opts.min_coverage, opts.fail_on_verdict)
        waivers_path = opts.waivers or (Path(profile.waivers) if profile.waivers else None)
        waivers = load_waivers(waivers_path) if waivers_path else []
        if catalogue is not None and waivers_path is not None:
            check_waiver_ids(waivers, catalogue, str(waivers_path))
        baseline = load_baseline(opts.baseline) if opts.baseline else None
        key = load_private_key(opts.sign_key) if opts.sign_key else None
    except (GateSyntaxError, WaiverError, BaselineError, SigningError) as exc:
        raise UsageError(str(exc)) from None
    if gates.fail_on_regression and opts.baseline is None and opts.fail_on_regression:
        raise UsageError("--fail-on-regression needs --baseline FILE (the result.json of an earlier run)")
    threshold = opts.regression_threshold if opts.regression_threshold is not None else gates.regression_threshold
    floor = gates.regression_min_delta_ms
    defaults = RegressionPolicy()
    policy = RegressionPolicy(threshold=defaults.threshold if threshold is None else threshold,
                              min_delta_ms=defaults.min_delta_ms if floor is None else floor)
    return Prepared(gates=gates, waivers=waivers, baseline=baseline, policy=policy, sign_key=key,
                    profile=profile, hierarchy=opts.hierarchy)


def postprocess(result: AuditResult, prepared: Prepared,
                warn: Callable[[str], None] = lambda msg: None) -> AuditResult:
    """Apply waivers (and re-score), compare with the baseline, judge the gates, sign."""
    if prepared.waivers:
        result = apply_waivers(result, prepared.waivers, prepared.today, warn)
        result = rescore(result, prepared.profile, prepared.hierarchy, prepared.indicators)
    if prepared.baseline is not None:
        result = result.model_copy(update={"baseline": compare(result, prepared.baseline, prepared.policy)})
    result = result.model_copy(update={"gates": evaluate_gates(result, prepared.gates)})
    if prepared.sign_key is not None:
        result = sign_result(result, prepared.sign_key)
    return result


def rescore(result: AuditResult, profile: Profile | None, hierarchy: str | None = None,
            indicators: list[Any] | None = None) -> AuditResult:
    """Score and judge again after waivers changed what is open (scored again only if it was scored)."""
    rules = profile.verdict if profile is not None else None
    if result.scoring is None:
        return finalize(result, None, None, rules)
    from crm_audit.scoring import load_evidence, load_hierarchy

    name = hierarchy or (profile.hierarchy if profile is not None else None) or result.scoring.hierarchy
    known = {p.probe for p in result.probes}  # with the installed plugins' probes
    tree = load_hierarchy(name, known_probes=known, indicators=indicators or ())
    evidence = load_evidence(profile.evidence) if profile is not None and profile.evidence else None
    return check_drawn(finalize(result, tree, evidence, rules))
