"""The backup probe's artifacts: the drill's timeline, RTO/RPO, canaries, and the cleanup."""

from __future__ import annotations

from typing import Any

from crm_audit.core.artifacts import ProbeArtifacts


class BackupArtifacts(ProbeArtifacts):
    """The drill record (timeline, rto_s, rpo_s, canaries, backups_created, notes) and the cleanup state."""

    backup: dict[str, Any]
    cleanup: dict[str, Any]
