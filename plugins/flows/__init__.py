"""Built-in ``flows`` probe: time the profile's business flows end to end (e.g. lead → closed case).

Each flow is a list of steps acted out through the adapter as the flow's account; records it
creates carry the run's tag and are deleted afterwards (``ctx.defer``), also on Ctrl-C.
"""

from __future__ import annotations

from crm_audit.core.catalogue import CheckSpec, load_checks
from crm_audit.core.hookspecs import hookimpl
from crm_audit.core.probe import Probe

from .probe import FlowsProbe

__version__ = FlowsProbe.version


@hookimpl
def crm_audit_register_probes() -> list[type[Probe]]:
    return [FlowsProbe]


@hookimpl
def crm_audit_register_checks() -> list[CheckSpec]:
    """This probe's check catalogue: every ``checks/*.yaml`` beside this module."""
    return load_checks(__file__)
