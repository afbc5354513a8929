"""The access probe's artifacts: the API surface it found, the expected/observed matrix, leftovers."""

from __future__ import annotations

from typing import Any

from crm_audit.core.artifacts import ProbeArtifacts


class AccessArtifacts(ProbeArtifacts):
    """What the report's access section draws; each part only when its checks ran."""

    #: the API surface discovered before judging (OpenAPI, adapter resources, ids and links)
    surface: dict[str, Any] | None = None
    #: role × resource × action, expected and observed
    matrix: dict[str, Any] | None = None
    #: records the audit created and could not remove
    left_behind: list[str] | None = None
