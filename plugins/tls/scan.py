"""sslyze wrapper: scan servers and turn sslyze's result objects into plain dataclasses.

Everything downstream (grade, findings, the report artifact, the benchmark) reads only the
:class:`ServerReport` defined here, never sslyze objects, so the rules can be tested with
hand-built reports and a change of sslyze version touches this module only.
"""

from __future__ import annotations

import re
import threading
import time
import traceback
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509

from . import cert as certmod
from .ciphers import effective_bits, forward_secret, key_exchange, weaknesses

#: servers sslyze scans at the same time in one call (more wait for a free slot)
MAX_SERVERS_AT_ONCE = 16
PROTOCOLS = ("SSL 2.0", "SSL 3.0", "TLS 1.0", "TLS 1.1", "TLS 1.2", "TLS 1.3")
_PROTOCOL_FIELDS = {
    "SSL 2.0": "ssl_2_0_cipher_suites",
    "SSL 3.0": "ssl_3_0_cipher_suites",
    "TLS 1.0": "tls_1_0_cipher_suites",
    "TLS 1.1": "tls_1_1_cipher_suites",
    "TLS 1.2": "tls_1_2_cipher_suites",
    "TLS 1.3": "tls_1_3_cipher_suites",
}


@dataclass(frozen=True)
class ScanTarget:
    """A TLS endpoint: the name used for SNI and certificate checks, and where to connect."""

    host: str
    port: int = 443
    #: connect to this address instead of resolving ``host``
    ip: str | None = None


@dataclass(frozen=True)
class AcceptedCipher:
    """One cipher suite the server accepted for one protocol version."""

    protocol: str
    name: str
    bits: int
    kx: str
    forward_secret: bool
    kx_group: str | None = None
    kx_bits: int | None = None
    weak: tuple[str, ...] = ()


@dataclass(frozen=True)
class Vulnerabilities:
    """sslyze's vulnerability checks; None when the check could not run."""

    heartbleed: bool | None = None
    ccs_injection: bool | None = None
    #: sslyze's RobotScanResultEnum value, e.g. NOT_VULNERABLE_NO_ORACLE
    robot: str | None = None
    secure_renegotiation: bool | None = None
    client_renegotiation_dos: bool | None = None
    compression: bool | None = None
    fallback_scsv: bool | None = None
    extended_master_secret: bool | None = None


@dataclass(frozen=True)
class HstsSeen:
    """The HSTS header as sslyze's own HTTP request saw it (used when the Target cannot connect)."""

    present: bool
    max_age: int | None = None
    include_subdomains: bool = False
    preload: bool = False


@dataclass(frozen=True)
class MozillaReport:
    """Result of sslyze's check against one Mozilla TLS configuration."""

    profile: str
    compliant: bool | None
    issues: dict[str, str] = field(default_factory=dict)
    error: str | None = None


@dataclass(frozen=True)
class ServerReport:
    """Everything learned about one TLS endpoint, as plain data."""

    host: str
    port: int
    ip: str | None = None
    error: str | None = None
    protocols: dict[str, bool] = field(default_factory=dict)
    ciphers: tuple[AcceptedCipher, ...] = ()
    groups: tuple[str, ...] = ()
    certificate: certmod.CertReport | None = None
    vulns: Vulnerabilities = field(default_factory=Vulnerabilities)
    hsts: HstsSeen | None = None
    mozilla: MozillaReport | None = None
    command_errors: dict[str, str] = field(default_factory=dict)
    duration_s: float = 0.0

    @property
    def offered(self) -> list[str]:
        """Protocol versions the server accepts, oldest first."""
        return [p for p in PROTOCOLS if self.protocols.get(p)]

    @property
    def weak_ciphers(self) -> list[AcceptedCipher]:
        return [c for c in self.ciphers if c.weak]

    @property
    def dh_bits(self) -> list[int]:
        """Sizes of the finite-field DH groups seen in accepted suites."""
        return sorted({c.kx_bits for c in self.ciphers if c.kx == "DHE" and c.kx_bits})


# --------------------------------------------------------------------------- scanning


def _sslyze_commands() -> set[Any]:
    from sslyze import ScanCommand

    return {
        ScanCommand.CERTIFICATE_INFO,
        ScanCommand.SSL_2_0_CIPHER_SUITES,
        ScanCommand.SSL_3_0_CIPHER_SUITES,
        ScanCommand.TLS_1_0_CIPHER_SUITES,
        ScanCommand.TLS_1_1_CIPHER_SUITES,
        ScanCommand.TLS_1_2_CIPHER_SUITES,
        ScanCommand.TLS_1_3_CIPHER_SUITES,
        ScanCommand.TLS_COMPRESSION,
        ScanCommand.TLS_FALLBACK_SCSV,
        ScanCommand.HEARTBLEED,
        ScanCommand.ROBOT,
        ScanCommand.OPENSSL_CCS_INJECTION,
        ScanCommand.SESSION_RENEGOTIATION,
        ScanCommand.ELLIPTIC_CURVES,
        ScanCommand.TLS_EXTENDED_MASTER_SECRET,
        ScanCommand.HTTP_HEADERS,
    }


def scan(
    targets: Sequence[ScanTarget],
    *,
    ca_bundle: str | None = None,
    mozilla_profile: str | None = "intermediate",
    timeout_s: float = 10.0,
    max_connections: int = 5,
) -> list[ServerReport]:
    """Scan every target with sslyze (concurrently) and return one report per target, in order.

    ``max_connections`` bounds sslyze's simultaneous connections per server (about 600
    handshakes per server in all). Blocks until done; run it through :func:`scan_in_worker`
    to bound it in time and allow cancelling.
    """
    from sslyze import (
        CertificateInfoExtraArgument,
        ScanCommandsExtraArguments,
        Scanner,
        ServerNetworkConfiguration,
        ServerNetworkLocation,
        ServerScanRequest,
    )
    from sslyze.errors import ServerHostnameCouldNotBeResolved

    anchors = certmod.load_anchors(ca_bundle)
    extra = ScanCommandsExtraArguments(
        certificate_info=CertificateInfoExtraArgument(custom_ca_file=Path(ca_bundle)) if ca_bundle else None
    )
    reports: dict[int, ServerReport] = {}
    requests: list[Any] = []
    index_of: dict[Any, int] = {}
    for i, t in enumerate(targets):
        try:
            location = ServerNetworkLocation(hostname=t.host, port=t.port, ip_address=t.ip)
        except ServerHostnameCouldNotBeResolved as exc:
            reports[i] = ServerReport(host=t.host, port=t.port, error=f"cannot resolve {t.host}: {exc}")
            continue
        network = ServerNetworkConfiguration(
            tls_server_name_indication=t.host,
            network_timeout=max(1, int(round(timeout_s))),
            network_max_retries=2,
        )
        req = ServerScanRequest(
            server_location=location,
            network_configuration=network,
            scan_commands=_sslyze_commands(),
            scan_commands_extra_arguments=extra,
        )
        requests.append(req)
        index_of[req.uuid] = i
    t0 = time.perf_counter()
    if requests:
        scanner = Scanner(  # every server at once (up to MAX_SERVERS_AT_ONCE): the slowest sets the time
            per_server_concurrent_connections_limit=max(1, max_connections),
            concurrent_server_scans_limit=max(1, min(len(requests), MAX_SERVERS_AT_ONCE)),
        )
        with warnings.catch_warnings():
            # sslyze's bundled trust stores hold a few certificates cryptography warns about
            warnings.simplefilter("ignore")
            scanner.queue_scans(requests)
            for result in scanner.get_results():
                i = index_of[result.uuid]
                reports[i] = _report(result, targets[i], anchors, mozilla_profile, time.perf_counter() - t0)
    return [reports[i] for i in range(len(targets))]


def scan_in_worker(
    targets: Sequence[ScanTarget],
    *,
    deadline_s: float,
    cancel: threading.Event | None = None,
    **kwargs: Any,
) -> list[ServerReport]:
    """Run :func:`scan` in a daemon thread; give up after ``deadline_s`` or when ``cancel`` is set.

    A thread, not a process: sslyze already parallelises with its own threads, and its result
    objects (certificates, OpenSSL handles) do not pickle. On timeout each server is reported
    with an error and the thread is left to end on sslyze's own network timeouts.
    """
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box["reports"] = scan(targets, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - handed back to the caller
            box["error"] = exc

    th = threading.Thread(target=work, name="tls-sslyze", daemon=True)
    th.start()
    end = time.monotonic() + deadline_s
    while th.is_alive() and time.monotonic() < end:
        if cancel is not None and cancel.is_set():
            raise KeyboardInterrupt
        th.join(0.1)
    if th.is_alive():
        return [ServerReport(host=t.host, port=t.port, error=f"scan timed out after {deadline_s:g} s") for t in targets]
    if "error" in box:
        raise box["error"]
    reports: list[ServerReport] = box["reports"]
    return reports


# --------------------------------------------------------------------------- conversion


def _short_trace(trace: Any) -> str:
    if trace is None:
        return "unknown error"
    lines = list(trace.format_exception_only())
    return (lines[-1] if lines else str(trace)).strip()[:300]


def _report(result: Any, target: ScanTarget, anchors: list[x509.Certificate], mozilla_profile: str | None, elapsed: float) -> ServerReport:
    from sslyze import ScanCommandAttemptStatusEnum, ServerScanStatusEnum

    loc = result.server_location
    base = dict(host=target.host, port=target.port, ip=loc.ip_address, duration_s=round(elapsed, 3))
    if result.scan_status != ServerScanStatusEnum.COMPLETED or result.scan_result is None:
        return ServerReport(**base, error=f"TLS connection failed: {_short_trace(result.connectivity_error_trace)}")
    sr = result.scan_result
    errors: dict[str, str] = {}

    def ok(name: str) -> Any:
        attempt = getattr(sr, name)
        if attempt.status == ScanCommandAttemptStatusEnum.COMPLETED:
            return attempt.result
        reason = getattr(attempt.error_reason, "value", attempt.error_reason)
        errors[name] = f"{reason}: {_short_trace(attempt.error_trace)}"
        return None

    protocols: dict[str, bool] = {}
    ciphers: list[AcceptedCipher] = []
    for proto, fname in _PROTOCOL_FIELDS.items():
        res = ok(fname)
        if res is None:
            continue
        protocols[proto] = bool(res.accepted_cipher_suites)
        for acc in res.accepted_cipher_suites:
            ciphers.append(_cipher(proto, acc))

    curves = ok("elliptic_curves")
    groups = tuple(c.name for c in (curves.supported_curves or [])) if curves else ()
    cert_report = _certificate(ok("certificate_info"), target.host, anchors)
    vulns = _vulns(ok)
    hsts = _hsts(ok("http_headers"))
    mozilla = _mozilla(result, mozilla_profile) if mozilla_profile else None
    return ServerReport(
        **base,
        protocols=protocols,
        ciphers=tuple(sorted(ciphers, key=lambda c: (PROTOCOLS.index(c.protocol), c.name))),
        groups=groups,
        certificate=cert_report,
        vulns=vulns,
        hsts=hsts,
        mozilla=mozilla,
        command_errors=errors,
    )


def _cipher(protocol: str, accepted: Any) -> AcceptedCipher:
    suite = accepted.cipher_suite
    key = accepted.ephemeral_key
    group, bits = None, None
    if key is not None:
        group = getattr(key, "curve_name", None) or key.type_name
        bits = key.size
        if group == "DH":
            group = f"DH {key.size}"
    kx = key_exchange(suite.name, protocol)
    if kx == "TLS13" and key is not None:
        kx = "DHE" if key.type_name == "DH" else "ECDHE"
    return AcceptedCipher(
        protocol=protocol,
        name=suite.name,
        bits=effective_bits(suite.name, suite.key_size),
        kx=kx,
        forward_secret=forward_secret(suite.name, protocol),
        kx_group=group,
        kx_bits=bits,
        weak=weaknesses(suite.name, protocol, suite.key_size, suite.is_anonymous),
    )


def _certificate(result: Any, hostname: str, anchors: list[x509.Certificate]) -> certmod.CertReport | None:
    if result is None or not result.certificate_deployments:
        return None
    deployment = result.certificate_deployments[0]
    path_errors = {
        p.trust_store.name: str(p.validation_error)
        for p in deployment.path_validation_results
        if not p.was_validation_successful
    }
    return certmod.analyze(
        list(deployment.received_certificate_chain),
        hostname,
        anchors,
        ocsp_stapled=deployment.ocsp_response is not None,
        path_errors=path_errors,
    )


def _vulns(ok: Any) -> Vulnerabilities:
    hb, ccs, robot = ok("heartbleed"), ok("openssl_ccs_injection"), ok("robot")
    reneg, comp = ok("session_renegotiation"), ok("tls_compression")
    scsv, ems = ok("tls_fallback_scsv"), ok("tls_extended_master_secret")
    return Vulnerabilities(
        heartbleed=hb.is_vulnerable_to_heartbleed if hb else None,
        ccs_injection=ccs.is_vulnerable_to_ccs_injection if ccs else None,
        robot=getattr(robot.robot_result, "value", str(robot.robot_result)) if robot else None,
        secure_renegotiation=reneg.supports_secure_renegotiation if reneg else None,
        client_renegotiation_dos=reneg.is_vulnerable_to_client_renegotiation_dos if reneg else None,
        compression=comp.supports_compression if comp else None,
        fallback_scsv=scsv.supports_fallback_scsv if scsv else None,
        extended_master_secret=ems.supports_ems_extension if ems else None,
    )


def _hsts(result: Any) -> HstsSeen | None:
    if result is None or result.http_error_trace is not None:
        return None
    header = result.strict_transport_security_header
    if header is None:
        return HstsSeen(present=False)
    return HstsSeen(
        present=True,
        max_age=header.max_age,
        include_subdomains=bool(header.include_subdomains),
        preload=bool(header.preload),
    )


def _sorted_sets(message: str) -> str:
    """sslyze prints Python sets in the issue text; sort them so evidence is stable between runs."""
    return re.sub(r"\{([^{}]*)\}", lambda m: "{" + ", ".join(sorted(x.strip() for x in m.group(1).split(","))) + "}", message)


def _mozilla(result: Any, profile: str) -> MozillaReport:
    from sslyze.mozilla_tls_profile.tls_config_checker import (
        MozillaTlsConfiguration,
        ServerNotCompliantWithTlsConfiguration,
        ServerScanResultIncomplete,
        TlsConfigurationEnum,
        check_server_against_tls_configuration,
    )

    try:
        config = MozillaTlsConfiguration.get(TlsConfigurationEnum(profile))
        check_server_against_tls_configuration(result, config)
    except ServerNotCompliantWithTlsConfiguration as exc:
        return MozillaReport(profile=profile, compliant=False, issues={k: _sorted_sets(v) for k, v in exc.issues.items()})
    except ServerScanResultIncomplete as exc:
        return MozillaReport(profile=profile, compliant=None, error=str(exc))
    except Exception as exc:  # noqa: BLE001 - the checker must not sink the scan
        return MozillaReport(profile=profile, compliant=None, error="".join(traceback.format_exception_only(exc)).strip())
    return MozillaReport(profile=profile, compliant=True)
