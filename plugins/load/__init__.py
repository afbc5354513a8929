"""Built-in ``load`` probe: step load with Locust until the SLO breaks, then sustain and recover.

Locust runs only in its own processes (``python -m locust`` master + workers); this package
never imports it. See docs/performance.md for the method and the two-machine set-up.
"""

from __future__ import annotations

from crm_audit.core.hookspecs import hookimpl
from crm_audit.core.probe import Probe

from .probe import LoadProbe

__version__ = LoadProbe.version


@hookimpl
def crm_audit_register_probes() -> list[type[Probe]]:
    return [LoadProbe]
