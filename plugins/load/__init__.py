"""Built-in ``load`` probe: step load with Locust until the SLO breaks, then sustain and recover.

Locust runs only in its own processes (``python -m locust`` master + workers); this package
never imports it. See docs/performance.md for the method and the two-machine set-up.
"""

from __future__ import annotations

import click

from crm_audit.core.catalogue import CheckSpec, load_checks
from crm_audit.core.hookspecs import hookimpl
from crm_audit.core.probe import Probe
from crm_audit.report.section import ReportSection

from .probe import LoadProbe

__version__ = LoadProbe.version


@hookimpl
def crm_audit_register_probes() -> list[type[Probe]]:
    return [LoadProbe]


@hookimpl
def crm_audit_register_report_sections() -> list[ReportSection]:
    """The load section of the HTML report (its view and template in ``report.py``, read when a report is drawn)."""
    from .report import SECTION

    return [SECTION]


@hookimpl
def crm_audit_register_commands(cli: click.Group) -> None:
    """``crm-audit load-worker``: a Locust worker on another machine for a distributed load test."""
    from .command import load_worker

    cli.add_command(load_worker)


@hookimpl
def crm_audit_register_checks() -> list[CheckSpec]:
    """This probe's check catalogue: every ``checks/*.yaml`` beside this module."""
    return load_checks(__file__)
