"""Typed probe artifacts: a probe declares the model of what it keeps for its report section.

``Probe.artifacts_model`` names a subclass of :class:`ProbeArtifacts`. The runner checks the
artifacts a probe returned against it; artifacts that do not fit are kept as they are and
recorded as one line in ``AuditResult.warnings`` (a warning, never a crash: the measurements
and findings still count). ``python -m crm_audit.result_schema`` puts each registered probe's
model into the result's JSON Schema, keyed by probe id.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from crm_audit.core.errors import first_error


class ProbeArtifacts(BaseModel):
    """Base of an artifacts model: closed (an unknown key is a misfit), values typed by the subclass."""

    model_config = ConfigDict(extra="forbid")


def artifacts_misfit(probe_id: str, model: type[BaseModel] | None, artifacts: Mapping[str, Any]) -> str | None:
    """One line saying how ``artifacts`` do not fit ``model`` (None: they fit, or no model is declared).

    An empty mapping always fits: a probe that was skipped, errored or timed out keeps no artifacts.
    """
    if model is None or not artifacts:
        return None
    try:
        model.model_validate(dict(artifacts))
    except ValidationError as exc:
        return f"probe {probe_id}: artifacts do not fit {model.__name__}: {first_error(exc, count_more=True)}"
    return None
