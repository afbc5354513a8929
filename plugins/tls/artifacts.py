"""The TLS probe's artifacts: one entry per scanned server (protocols, ciphers, certificate, grade)."""

from __future__ import annotations

from typing import Any

from crm_audit.core.artifacts import ProbeArtifacts


class TlsArtifacts(ProbeArtifacts):
    """The scanned servers and how long the scan took; only ``servers`` when the target has no TLS."""

    servers: list[dict[str, Any]]
    scan_s: float | None = None
    probe_s: float | None = None
    endpoints_scanned: int | None = None
    mozilla_profile: str | None = None
