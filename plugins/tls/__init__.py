"""Built-in ``tls`` probe: protocols, cipher suites, certificate, TLS vulnerabilities, HSTS.

sslyze scans the target's HTTPS endpoint(s) in a worker thread with its own sockets, so the
probe checks scope itself before scanning; the HTTP-side checks (HSTS, redirect, cookies)
go through the audit's Target. Feeds ``sec.transport`` with a 0-100 grade score; the grading
rule is documented in ``docs/tls.md``.

This module stays light (options and the probe class): the scanning and grading code in
``run.py`` is imported only when the probe runs.
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from crm_audit.core.catalogue import CheckSpec, load_checks
from crm_audit.core.hookspecs import hookimpl
from crm_audit.core.model import ProbeResult
from crm_audit.core.probe import Probe, ProbeContext
from crm_audit.report.section import ReportSection

from .artifacts import TlsArtifacts

__version__ = "0.1.0"
INDICATOR = "sec.transport"
EXPECTED_SCORE = 80.0  # grade A


class TlsOptions(BaseModel):
    """Options under ``plugins.tls`` in the profile."""

    model_config = ConfigDict(extra="forbid")
    hosts: list[str] = Field(default_factory=list, description="extra host:port endpoints to scan; each must be in scope")
    http_port: int | None = Field(
        None, ge=1, le=65535,
        description="plain-HTTP port whose redirect to HTTPS is checked (default: 80 when the HTTPS port is 443)",
    )
    mozilla_profile: Literal["modern", "intermediate", "old"] = "intermediate"
    timeout_s: float = Field(10.0, gt=0, le=120, description="network timeout of each TLS connection")

    @field_validator("hosts")
    @classmethod
    def _host_ports(cls, v: list[str]) -> list[str]:
        for item in v:
            parse_host_port(item)
        return v


def parse_host_port(item: str, default_port: int = 443) -> tuple[str, int]:
    """'host', 'host:port', '[v6]:port' or an https:// URL → (host, port)."""
    text = item.strip()
    if "://" not in text:
        text = "https://" + text
    parts = urlsplit(text)
    if not parts.hostname:
        raise ValueError(f"{item!r} is not host:port")
    try:
        port = parts.port or default_port
    except ValueError:
        raise ValueError(f"{item!r} has an invalid port") from None
    return parts.hostname, port


def _url(host: str, port: int, scheme: str = "https") -> str:
    default = 443 if scheme == "https" else 80
    name = f"[{host}]" if ":" in host else host
    return f"{scheme}://{name}/" if port == default else f"{scheme}://{name}:{port}/"


class TlsProbe(Probe):
    id = "tls"
    title = "TLS and transport security"
    version = __version__
    category = "security"
    indicators = (INDICATOR,)
    options_model = TlsOptions
    artifacts_model = TlsArtifacts
    timeout_s = 300.0
    #: handshakes and header reads time nothing: runs beside the other probes that do not either
    quiet_target = False

    def run(self, ctx: ProbeContext) -> ProbeResult:
        from .run import run_tls

        opts = ctx.options if isinstance(ctx.options, TlsOptions) else TlsOptions.model_validate(ctx.options or {})
        return run_tls(self, ctx, opts)


def connections_for_rate(rate_limit_rps: float) -> int:
    """sslyze's connections per server from the profile's rate limit: 1 per 10 req/s, 1 to 5.

    sslyze's handshakes bypass the Target, so this is how the probe keeps to the spirit of
    ``target.rate_limit_rps``; the default 50 req/s gives sslyze's own default of 5.
    """
    return max(1, min(5, int(rate_limit_rps // 10)))


@hookimpl
def crm_audit_register_probes() -> list[type[Probe]]:
    return [TlsProbe]


@hookimpl
def crm_audit_register_report_sections() -> list[ReportSection]:
    """The tls section of the HTML report (its view and template in ``report.py``, read when a report is drawn)."""
    from .report import SECTION

    return [SECTION]


@hookimpl
def crm_audit_register_checks() -> list[CheckSpec]:
    """This probe's check catalogue: every ``checks/*.yaml`` beside this module."""
    return load_checks(__file__)
