"""Base classes a plugin subclasses: Probe (measures a target) and Reporter (renders a result)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from pydantic import BaseModel, ConfigDict

from crm_audit.core.errors import CrmAuditError
from crm_audit.core.model import AuditResult, ProbeResult

if TYPE_CHECKING:  # pragma: no cover
    from crm_audit.core.adapter import Adapter
    from crm_audit.core.profile import Profile
    from crm_audit.core.target import Target


class NoOptions(BaseModel):
    """Options model of a probe that takes none."""

    model_config = ConfigDict(extra="forbid")


class ProbeSkipped(CrmAuditError):
    """Raise from ``Probe.run`` when the probe cannot apply to this target (not an error)."""


class ProbeLogger(Protocol):
    """``ProbeContext.log``: a message and, optionally, its logging level (the runner's ProbeLog)."""

    def __call__(self, message: str, level: int = ..., /) -> None: ...


def _no_log(message: str, level: int = logging.INFO, /) -> None:
    """The default ``ProbeContext.log``: drops the message."""


@dataclass
class ProbeContext:
    """What a probe gets: the target client, the adapter, its options and the audit's rules."""

    run_id: str
    profile: Profile
    target: Target
    adapter: Adapter | None
    options: Any
    allow_writes: bool
    allow_disruptive: bool
    workdir: Path
    cancel: threading.Event = field(default_factory=threading.Event)
    log: ProbeLogger = _no_log
    _cleanups: list[tuple[str, Callable[[], None]]] = field(default_factory=list)

    @property
    def tag(self) -> str:
        """Marker put on every record the audit creates, so cleanup touches only those."""
        return f"crm-audit-{self.run_id}"

    def defer(self, description: str, fn: Callable[[], None]) -> None:
        """Register a cleanup; the runner runs it after the probe, also on error or Ctrl-C."""
        self._cleanups.append((description, fn))

    def run_cleanups(self) -> list[str]:
        """Run deferred cleanups newest first; return descriptions of those that failed.

        Cleanups may spend the part of the request budget kept back for them
        (``Target.cleanup_reserve``), so records are removed even when a probe ran the budget out.
        """
        failed: list[str] = []
        with self.target.cleaning_up():
            while self._cleanups:
                description, fn = self._cleanups.pop()
                try:
                    fn()
                except BaseException as exc:  # noqa: BLE001 - a cleanup (or a second Ctrl-C) must not stop the others
                    failed.append(f"{description}: {type(exc).__name__}: {exc}")
        return failed

    def check_cancelled(self) -> None:
        """Raise KeyboardInterrupt when the audit is being interrupted."""
        if self.cancel.is_set():
            raise KeyboardInterrupt


#: the categories the built-in probes use: what a probe judges
CATEGORIES: tuple[str, ...] = ("security", "performance", "recoverability", "data", "business", "inventory", "other")


class Probe:
    """A check of the target. Subclass it, set the class attributes, implement ``run``."""

    id: ClassVar[str] = ""
    title: ClassVar[str] = ""
    version: ClassVar[str] = "0.0.0"
    #: hierarchy indicator ids this probe feeds
    indicators: ClassVar[tuple[str, ...]] = ()
    #: what the probe judges, one of CATEGORIES (or a plugin's own word): listed by `crm-audit plugins`,
    #: so nothing in the core keeps lists of probe ids
    category: ClassVar[str] = "other"
    #: creates or changes records (only its own, tagged with the run id)
    writes: ClassVar[bool] = False
    #: may disturb the service (lockout attempts, restore, heavy load); opt-in only
    disruptive: ClassVar[bool] = False
    #: pydantic model of the probe's options under ``plugins.<id>`` in the profile
    options_model: ClassVar[type[BaseModel]] = NoOptions
    #: pydantic model of ``ProbeResult.artifacts`` (a ``crm_audit.core.artifacts.ProbeArtifacts``);
    #: the runner warns when the artifacts do not fit, and the result's JSON Schema includes it
    artifacts_model: ClassVar[type[BaseModel] | None] = None
    #: seconds before the runner gives up on the probe and records an error
    timeout_s: ClassVar[float] = 600.0
    #: True: the probe measures time (latency, load, restore time …) and runs alone, with no other
    #: probe sending; False: it measures no time and runs side by side with the other such probes
    #: (within the shared rate limit and budget). The safe default for a probe that does not say.
    quiet_target: ClassVar[bool] = True

    def run(self, ctx: ProbeContext) -> ProbeResult:  # pragma: no cover - interface
        raise NotImplementedError


class Reporter:
    """Renders an AuditResult; never contacts the target."""

    format: ClassVar[str] = ""
    filename: ClassVar[str] = ""
    description: ClassVar[str] = ""
    version: ClassVar[str] = "0.0.0"

    def render(self, result: AuditResult) -> str | bytes:  # pragma: no cover - interface
        raise NotImplementedError
