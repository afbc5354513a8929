"""Logging of crm-audit: stdlib ``logging``, one logger per probe, secrets redacted, quiet by default.

A probe's ``ctx.log(message)`` is a :class:`ProbeLog`: it logs at INFO on the logger
``crm_audit.probe.<probe id>`` with the probe id in the record (``record.probe``), after the
target's redactor (which knows the profile's secrets and the tokens obtained at login) has
masked the message. :func:`configure` (the ``-v``/``--verbose`` option of ``audit`` and
``demo``) shows the records on stderr; without it nothing is printed. The stderr handler
redacts once more with the generic patterns, a last net for records from other code.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import TextIO

from crm_audit.core.redact import Redactor

#: the logger every crm-audit logger hangs under
ROOT = "crm_audit"
#: probes log under ``crm_audit.probe.<id>``
PROBE_LOGGERS = f"{ROOT}.probe"
#: the format of a record on stderr
FORMAT = "crm-audit: %(levelname)s %(probe)s: %(message)s"

logging.getLogger(ROOT).addHandler(logging.NullHandler())  # a library stays silent until configured


class ProbeLog:
    """``ctx.log`` of one probe: a callable taking one message (and optionally a level)."""

    def __init__(self, probe_id: str, redact: Callable[[str | None], str | None]) -> None:
        self.probe_id = probe_id
        self.logger = logging.getLogger(f"{PROBE_LOGGERS}.{probe_id}")
        self._redact = redact

    def __call__(self, message: str, level: int = logging.INFO) -> None:
        if self.logger.isEnabledFor(level):
            self.logger.log(level, "%s", self._redact(str(message)) or "", extra={"probe": self.probe_id})


class _ProbeField(logging.Filter):
    """Gives every record a ``probe`` field ("-" for records not from a probe) and redacts its message."""

    def __init__(self) -> None:
        super().__init__()
        self._redactor = Redactor()

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "probe"):
            name = record.name
            record.probe = name[len(PROBE_LOGGERS) + 1:] if name.startswith(PROBE_LOGGERS + ".") else "-"
        record.msg, record.args = self._redactor.redact(record.getMessage()) or "", None
        return True


class _Handler(logging.StreamHandler[TextIO]):
    """The stderr handler :func:`configure` installs (a class of its own, so it is replaced, not doubled)."""


def configure(verbosity: int, stream: TextIO | None = None) -> None:
    """Show crm-audit's log records on ``stream`` (stderr): 0 quiet, 1 INFO, 2 or more DEBUG."""
    root = logging.getLogger(ROOT)
    for old in [h for h in root.handlers if isinstance(h, _Handler)]:
        root.removeHandler(old)
    if verbosity <= 0:
        root.setLevel(logging.WARNING)
        return
    handler = _Handler(stream if stream is not None else sys.stderr)
    handler.addFilter(_ProbeField())
    handler.setFormatter(logging.Formatter(FORMAT))
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbosity >= 2 else logging.INFO)
