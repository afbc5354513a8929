"""TLS probe: pure rules (ciphers, hostname, HSTS, cookies, grade) and end-to-end scans of real
nginx and Python-ssl servers with good and deliberately weak settings.

One nginx process serves every nginx scenario (one server block per port) for the whole
module; each scenario is scanned once through the probe with a real ProbeContext and Target.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import tls_servers
from tls_servers import (
    NginxServer,
    PyServer,
    make_ca,
    make_leaf,
    make_pki,
    nginx_sites,
    probe_context,
    python_servers,
    start_all,
)

from crm_audit.core.model import Finding, ProbeResult, Status
from crm_audit.core.plugins import make_plugin_manager
from crm_audit.core.probe import ProbeContext
from crm_audit.core.runner import run_one
from crm_audit_plugins.tls import TlsOptions, TlsProbe, parse_host_port
from crm_audit_plugins.tls import run as tls_run
from crm_audit_plugins.tls import scan as scanmod
from crm_audit_plugins.tls.cert import chain_anchor, hostname_matches
from crm_audit_plugins.tls.ciphers import forward_secret, key_exchange, weaknesses
from crm_audit_plugins.tls.grade import grade, overall
from crm_audit_plugins.tls.http_checks import insecure_cookie_names, parse_hsts, split_set_cookie
from crm_audit_plugins.tls.scan import AcceptedCipher, ServerReport, Vulnerabilities

FAILING = (Status.failed, Status.warn, Status.error)

# --------------------------------------------------------------------------- pure rules


def test_cipher_rules() -> None:
    assert weaknesses("TLS_RSA_WITH_NULL_SHA", "TLS 1.2", 0, False) == ("NULL",)
    assert "EXPORT" in weaknesses("TLS_RSA_EXPORT_WITH_RC4_40_MD5", "TLS 1.0", 40, False)
    assert "RC4" in weaknesses("TLS_RSA_WITH_RC4_128_SHA", "TLS 1.2", 128, False)
    assert set(weaknesses("TLS_RSA_WITH_3DES_EDE_CBC_SHA", "TLS 1.2", 168, False)) == {"3DES", "64-bit block", "< 128-bit"}
    assert "anonymous" in weaknesses("TLS_ECDH_anon_WITH_AES_128_CBC_SHA", "TLS 1.2", 128, True)
    assert weaknesses("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", "TLS 1.0", 128, False) == ("CBC in TLS <= 1.1",)
    assert weaknesses("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", "TLS 1.2", 128, False) == ()
    assert weaknesses("TLS_AES_128_GCM_SHA256", "TLS 1.3", 128, False) == ()
    assert "DES" in weaknesses("TLS_RSA_WITH_DES_CBC_SHA", "TLS 1.2", 56, False)
    assert key_exchange("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLS 1.2") == "ECDHE"
    assert key_exchange("TLS_RSA_WITH_AES_128_GCM_SHA256", "TLS 1.2") == "RSA"
    assert key_exchange("TLS_DH_anon_WITH_AES_128_CBC_SHA", "TLS 1.2") == "anon"
    assert key_exchange("TLS_ECDH_RSA_WITH_AES_128_CBC_SHA", "TLS 1.2") == "ECDH"
    assert forward_secret("TLS_DHE_RSA_WITH_AES_128_GCM_SHA256", "TLS 1.2")
    assert not forward_secret("TLS_RSA_WITH_AES_128_GCM_SHA256", "TLS 1.2")
    assert forward_secret("TLS_AES_128_GCM_SHA256", "TLS 1.3")


def test_hsts_and_cookie_parsing() -> None:
    h = parse_hsts("max-age=63072000; includeSubDomains; preload")
    assert (h.present, h.max_age, h.include_subdomains, h.preload) == (True, 63072000, True, True)
    assert parse_hsts('max-age="3600"').max_age == 3600
    assert not parse_hsts("includeSubDomains").present  # no max-age: invalid, ignored by browsers
    assert not parse_hsts(None).present
    folded = "a=1; Path=/; Secure, b=2; Expires=Wed, 21 Oct 2037 07:28:00 GMT; HttpOnly, c=3; secure"
    cookies = split_set_cookie(folded)
    assert [c.split("=")[0] for c in cookies] == ["a", "b", "c"]
    assert insecure_cookie_names(cookies) == ["b"]


def test_hostname_and_chain(tmp_path: Path) -> None:
    ca = make_ca(tmp_path)
    leaf = make_leaf(tmp_path, "leaf", ca, hostnames=("api.example.com", "*.crm.example.com"), ips=("10.0.0.1",))
    c = leaf.cert
    assert hostname_matches(c, "api.example.com") and hostname_matches(c, "API.example.com.")
    assert hostname_matches(c, "eu.crm.example.com")
    assert not hostname_matches(c, "a.b.crm.example.com") and not hostname_matches(c, "crm.example.com")
    assert hostname_matches(c, "10.0.0.1") and not hostname_matches(c, "10.0.0.2")
    assert chain_anchor([c], [ca.cert]) == ca.cert.subject.rfc4514_string()
    assert chain_anchor([c], []) is None
    other = make_ca(tmp_path / "other", name="someone else")
    assert chain_anchor([c], [other.cert]) is None


def _report(**kw: Any) -> ServerReport:
    base: dict[str, Any] = dict(
        host="h", port=443, protocols={"TLS 1.2": True, "TLS 1.3": True},
        ciphers=(
            AcceptedCipher("TLS 1.2", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", 128, "ECDHE", True, "X25519", 253),
            AcceptedCipher("TLS 1.3", "TLS_AES_256_GCM_SHA384", 256, "ECDHE", True, "X25519", 253),
        ),
        vulns=Vulnerabilities(False, False, "NOT_VULNERABLE_RSA_NOT_SUPPORTED", True, False, False, True, True),
    )
    base.update(kw)
    return ServerReport(**base)


def test_grade_rule() -> None:
    good = _report()
    g = grade(good, 63072000)
    assert g.letter == "A+" and g.score >= 90 and g.caps == ()
    assert grade(good, None).letter == "A" and "no HSTS header" in grade(good, None).no_a_plus
    assert grade(good, 3600).letter == "A"
    legacy = _report(protocols={"TLS 1.0": True, "TLS 1.1": True, "TLS 1.2": True, "TLS 1.3": False})
    g = grade(legacy, 63072000)
    assert g.letter == "B" and g.score <= 79
    heartbleed = _report(vulns=Vulnerabilities(heartbleed=True))
    assert grade(heartbleed, 63072000).letter == "F"
    assert grade(_report(error="refused"), None).letter == "F"


def test_unscanned_endpoint_caps_the_overall_grade() -> None:
    good = grade(_report(), 63072000)
    assert overall([good], []) is good and good.letter == "A+"
    capped = overall([good], ["extra.example.com:443"])
    assert capped.letter == "B" and capped.score <= 79 and capped.no_a_plus == ()
    assert ("B", "not scanned: extra.example.com:443") in capped.caps
    weak = grade(_report(vulns=Vulnerabilities(heartbleed=True)), 63072000)
    assert overall([good, weak], ["x:1"]).letter == "F"  # a lower grade is never raised by the cap
    assert overall([], ["x:1"]) is None  # nothing scanned: no grade at all (not assessed)


def test_options_and_host_parsing() -> None:
    assert parse_host_port("crm.example.com") == ("crm.example.com", 443)
    assert parse_host_port("crm.example.com:8443") == ("crm.example.com", 8443)
    assert parse_host_port("[::1]:9443") == ("::1", 9443)
    with pytest.raises(ValueError):
        TlsOptions(unknown=1)  # type: ignore[call-arg]
    with pytest.raises(ValueError):
        TlsOptions(hosts=["bad:port:x"])


def test_sslyze_concurrency_follows_rate_limit_and_issues_are_stable() -> None:
    from crm_audit_plugins.tls import connections_for_rate

    assert [connections_for_rate(r) for r in (1, 10, 25, 50, 1000)] == [1, 1, 2, 5, 5]
    assert scanmod._sorted_sets("TLS versions {'TLSv1.1', 'TLSv1'} are supported") == "TLS versions {'TLSv1', 'TLSv1.1'} are supported"


def test_registered_through_entry_point() -> None:
    reg = make_plugin_manager()
    assert reg.probes.get("tls") is TlsProbe
    assert TlsProbe.indicators == ("sec.transport",)


# --------------------------------------------------------------------------- probe plumbing


def make_ctx(base_url: str, tmp: Path, ca_bundle: str | None = None, scope: list[str] | None = None, **opts: Any) -> ProbeContext:
    """A real ProbeContext (Profile + Target) as the runner builds it."""
    return probe_context(base_url, tmp, ca_bundle=ca_bundle, scope=scope, **opts)


def test_plain_http_target_is_not_scanned(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Any] = []
    monkeypatch.setattr("crm_audit_plugins.tls.run.scan_in_worker", lambda *a, **k: calls.append(a) or [])
    with PyServer() as srv:
        res = TlsProbe().run(make_ctx(srv.url, tmp_path))
    assert calls == []
    [f] = res.findings
    assert f.id == "tls.plain_http_only" and f.status == Status.failed and f.severity.value == "high"
    assert res.measurements[0].value == 0 and res.measurements[0].indicator == "sec.transport"


def test_off_scope_hosts_are_never_scanned(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[list[str]] = []

    def fake_scan(targets: list[scanmod.ScanTarget], **kw: Any) -> list[ServerReport]:
        seen.append([t.host for t in targets])
        return [ServerReport(host=t.host, port=t.port, error="refused") for t in targets]

    monkeypatch.setattr("crm_audit_plugins.tls.run.scan_in_worker", fake_scan)
    ctx = make_ctx("https://crm.internal:8443", tmp_path, hosts=["evil.example.net:443", "crm.internal:9443"])
    res = TlsProbe().run(ctx)
    assert seen == [["crm.internal", "crm.internal"]]
    off = [f for f in res.findings if f.id == "tls.scope.off_scope"]
    assert len(off) == 1 and "evil.example.net" in off[0].title and off[0].status == Status.skipped
    assert off[0].not_assessed.value == "not_configured" and "target.scope" in off[0].hint
    assert res.status == "error"
    failed = [f for f in res.findings if f.id == "tls.scan.failed"]
    assert len(failed) == 2 and all(f.status == Status.error and f.severity.value == "high" for f in failed)
    assert all(f.not_assessed.value == "request_failed" and f.hint for f in failed)
    assert res.measurements == []  # nothing scanned: sec.transport has no value


# --------------------------------------------------------------------------- real servers

@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return make_pki(tmp_path_factory.mktemp("pki"))


def nginx_missing() -> str | None:
    """What keeps the real nginx scenarios from running here (None: nothing)."""
    if os.geteuid() != 0:
        return "needs root (nginx runs its workers as another user)"
    if not Path(tls_servers.NGINX).exists():
        return f"Debian nginx is not installed ({tls_servers.NGINX} missing; scripts/test.sh installs it)"
    return None


def require_nginx() -> None:
    """Skip the real-server TLS tests where nginx cannot run; in CI (CI set) fail instead, as the
    PostgreSQL rule does (tests/targets/postgres.py), so a missing nginx never hides behind a skip."""
    reason = nginx_missing()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"nginx unavailable in CI: {reason}")
        pytest.skip(reason)


def test_a_missing_nginx_fails_in_ci_and_skips_elsewhere(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(tls_servers, "NGINX", str(tmp_path / "no-nginx"))
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="nginx unavailable in CI: "):
        require_nginx()
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception):
        require_nginx()


@pytest.fixture(scope="module")
def servers(pki: dict[str, Any], tmp_path_factory: pytest.TempPathFactory):
    require_nginx()
    nginx = NginxServer(tmp_path_factory.mktemp("nginx"), nginx_sites(pki))
    py = python_servers(pki)
    stop = start_all([nginx, *py.values()])
    urls = {name: (site.url, site.http_port) for name, site in nginx.sites.items()}
    urls.update({name: (srv.url, None) for name, srv in py.items()})
    yield urls
    stop()


@pytest.fixture(scope="module")
def scanned(servers: dict[str, tuple[str, int | None]], pki: dict[str, Any], tmp_path_factory: pytest.TempPathFactory):
    """Scan a scenario once through the probe (memoised for the module)."""
    cache: dict[str, ProbeResult] = {}
    tmp = tmp_path_factory.mktemp("ctx")

    def get(name: str) -> ProbeResult:
        if name not in cache:
            url, http_port = servers[name]
            ctx = make_ctx(url, tmp, ca_bundle=str(pki["ca"].cert_path), http_port=http_port)
            res, interrupted = run_one(TlsProbe, ctx)
            assert not interrupted and res.status == "ok", res.reason
            cache[name] = res
        return cache[name]

    return get


def failing(res: ProbeResult) -> dict[str, Finding]:
    """Checks that failed or warned (a check that could not be made is not assessed, not failing)."""
    return {f.id: f for f in res.findings if f.status in FAILING and f.not_assessed is None}


def cookies_not_assessed(res: ProbeResult) -> bool:
    """The Target refused the certificate, so cookies could not be judged: not assessed, with the reason."""
    f = next(f for f in res.findings if f.id == "tls.cookie.not_secure")
    return f.status == Status.error and f.not_assessed is not None and f.not_assessed.value == "request_failed"


def passed(res: ProbeResult) -> set[str]:
    return {f.id for f in res.findings if f.status == Status.passed}


def server(res: ProbeResult) -> dict[str, Any]:
    [s] = res.artifacts["servers"]
    return s


@pytest.mark.integration
def test_good_server_has_no_false_finding(scanned) -> None:
    res = scanned("good")
    assert failing(res) == {}
    s = server(res)
    assert s["grade"] == "A+"
    assert s["protocols"] == {"SSL 2.0": False, "SSL 3.0": False, "TLS 1.0": False, "TLS 1.1": False,
                              "TLS 1.2": True, "TLS 1.3": True}
    assert s["weak_ciphers"] == [] and s["forward_secrecy"] is True
    cert = s["certificate"]
    assert cert["trusted"] and cert["hostname_match"] and cert["key"] == "RSA 2048" and 80 <= cert["days_left"] <= 90
    assert s["hsts"] == {"max_age": 63072000, "include_subdomains": True, "preload": False, "source": "target"}
    assert s["mozilla"] == {"profile": "intermediate", "compliant": True, "issues": []}
    assert s["redirect"]["verdict"] == "redirects"
    assert {"tls.protocol.tls1_0_enabled", "tls.cert.untrusted", "tls.cert.hostname_mismatch", "tls.cert.expired",
            "tls.cert.weak_key", "tls.hsts.missing", "tls.hsts.short_max_age", "tls.http.no_redirect",
            "tls.cookie.not_secure", "tls.vuln.heartbleed", "tls.vuln.robot", "tls.mozilla.intermediate"} <= passed(res)
    [m] = res.measurements
    assert m.indicator == "sec.transport" and m.value >= 90 and m.expected == 80 and m.meets_expected
    assert m.label == "TLS grade A+"
    assert s["duration_s"] < 5  # locally about 0.3 s; generous for a loaded CI machine


@pytest.mark.integration
@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_good_server_untrusted_without_ca_bundle(servers, tmp_path: Path) -> None:
    url, http_port = servers["good"]
    # without the CA bundle the Target cannot verify the private CA either
    ctx = probe_context(url, tmp_path, verify_tls=False, http_port=http_port)
    res = TlsProbe().run(ctx)
    bad = failing(res)
    assert set(bad) == {"tls.cert.untrusted", "tls.mozilla.intermediate"}
    assert server(res)["grade"] == "F"


@pytest.mark.integration
def test_tls10_server(scanned) -> None:
    res = scanned("tls10")
    bad = failing(res)
    assert {"tls.protocol.tls1_0_enabled", "tls.protocol.tls1_1_enabled", "tls.cipher.cbc_legacy",
            "tls.protocol.tls1_3_missing", "tls.mozilla.intermediate"} == set(bad)
    assert bad["tls.protocol.tls1_0_enabled"].severity.value == "medium"
    assert "nginx: ssl_protocols TLSv1.2 TLSv1.3" in bad["tls.protocol.tls1_0_enabled"].remediation
    assert "Apache: SSLProtocol" in bad["tls.protocol.tls1_0_enabled"].remediation
    s = server(res)
    assert s["grade"] == "B" and s["protocols"]["TLS 1.0"] and s["protocols"]["TLS 1.1"]
    assert {c["name"] for c in s["weak_ciphers"]} == {"TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"}
    assert any("tls_versions" in i for i in s["mozilla"]["issues"])


@pytest.mark.integration
def test_weak_key_server(scanned) -> None:
    res = scanned("weakkey")
    bad = failing(res)
    assert set(bad) == {"tls.cert.weak_key", "tls.mozilla.intermediate"}
    assert cookies_not_assessed(res)  # OpenSSL at security level 2 refuses RSA 1024 in the Target
    assert bad["tls.cert.weak_key"].severity.value == "high"
    assert server(res)["certificate"]["key"] == "RSA 1024"
    assert server(res)["certificate"]["trusted"] is True  # weak, but the chain itself is fine
    assert server(res)["grade"] == "B"


@pytest.mark.integration
def test_expired_server(scanned) -> None:
    res = scanned("expired")
    bad = failing(res)
    assert "tls.cert.expired" in bad and "tls.cert.untrusted" not in bad and "tls.cert.hostname_mismatch" not in bad
    assert set(bad) <= {"tls.cert.expired", "tls.mozilla.intermediate"}
    assert cookies_not_assessed(res)
    s = server(res)
    assert s["grade"] == "F" and s["certificate"]["days_left"] < 0
    # the Target refused the expired certificate; HSTS came from sslyze's own connection
    assert s["hsts"]["source"] == "sslyze"


@pytest.mark.integration
def test_not_yet_valid_server(scanned) -> None:
    res = scanned("py_notyet")
    bad = failing(res)
    assert "tls.cert.not_yet_valid" in bad and "tls.cert.expired" not in bad and "tls.cert.untrusted" not in bad
    assert server(res)["grade"] == "F"


@pytest.mark.integration
def test_expiring_soon_server(scanned) -> None:
    res = scanned("py_soon")
    bad = failing(res)
    assert bad["tls.cert.expires_soon"].status == Status.warn
    assert "tls.cert.expired" not in bad
    assert server(res)["grade"] == "A"  # not A+: expires within 30 days
    assert "certificate expires within 30 days" in server(res)["no_a_plus"]


@pytest.mark.integration
def test_wrong_hostname_is_its_own_finding(scanned) -> None:
    res = scanned("wronghost")
    bad = failing(res)
    assert "tls.cert.hostname_mismatch" in bad
    assert "tls.cert.untrusted" not in bad  # sslyze's path-validation error is mapped, not echoed
    assert set(bad) <= {"tls.cert.hostname_mismatch", "tls.mozilla.intermediate"}
    assert cookies_not_assessed(res)
    s = server(res)
    assert s["certificate"]["trusted"] and not s["certificate"]["hostname_match"] and s["grade"] == "F"


@pytest.mark.integration
def test_self_signed_server(scanned) -> None:
    res = scanned("selfsigned")
    bad = failing(res)
    assert bad["tls.cert.self_signed"].status == Status.failed
    assert "tls.cert.untrusted" not in bad and "tls.cert.hostname_mismatch" not in bad
    assert server(res)["grade"] == "F" and server(res)["certificate"]["self_signed"]


@pytest.mark.integration
def test_sha1_signature_server(scanned) -> None:
    res = scanned("sha1")
    bad = failing(res)
    assert "tls.cert.sha1_signature" in bad
    assert "tls.cert.untrusted" not in bad  # a SHA-1 signature is its own problem, the chain is anchored
    assert server(res)["grade"] == "F"


@pytest.mark.integration
def test_no_hsts_server(scanned) -> None:
    res = scanned("nohsts")
    assert set(failing(res)) == {"tls.hsts.missing"}
    s = server(res)
    assert s["grade"] == "A" and s["hsts"] is None and "no HSTS header" in s["no_a_plus"]


@pytest.mark.integration
def test_short_hsts_server(scanned) -> None:
    res = scanned("shorthsts")
    bad = failing(res)
    assert {"tls.hsts.short_max_age", "tls.hsts.no_include_subdomains"} == set(bad)
    assert bad["tls.hsts.short_max_age"].status == Status.failed
    assert server(res)["grade"] == "A"


@pytest.mark.integration
def test_no_redirect_server(scanned) -> None:
    res = scanned("noredirect")
    bad = failing(res)
    assert set(bad) == {"tls.http.no_redirect"}
    assert bad["tls.http.no_redirect"].evidence[-1].observed.startswith("200")
    assert server(res)["grade"] == "A+"  # the TLS side is fine; the finding carries the problem


@pytest.mark.integration
def test_weak_cipher_server(scanned) -> None:
    res = scanned("weakciphers")
    bad = failing(res)
    assert {"tls.cipher.null", "tls.cipher.anonymous", "tls.cipher.no_forward_secrecy",
            "tls.cookie.not_secure"} <= set(bad)
    assert "sid" in bad["tls.cookie.not_secure"].title
    assert "tls.protocol.tls1_0_enabled" not in bad
    s = server(res)
    assert s["grade"] == "F" and s["forward_secrecy"] is False
    names = {c["name"] for c in s["weak_ciphers"]}
    assert {"TLS_ECDHE_RSA_WITH_NULL_SHA", "TLS_ECDH_anon_WITH_AES_128_CBC_SHA"} <= names


@pytest.mark.integration
def test_two_endpoints_grade_is_the_weakest(servers, pki, tmp_path: Path) -> None:
    url, http_port = servers["good"]
    tls10_port = int(servers["tls10"][0].rstrip("/").rsplit(":", 1)[1])
    ctx = make_ctx(url, tmp_path, ca_bundle=str(pki["ca"].cert_path), http_port=http_port, hosts=[f"localhost:{tls10_port}"])
    res = TlsProbe().run(ctx)
    assert [s["grade"] for s in res.artifacts["servers"]] == ["A+", "B"]
    assert res.measurements[0].details["grade"] == "B" and "weakest of 2" in res.measurements[0].label


@pytest.mark.integration
def test_unreachable_extra_host_is_not_assessed_and_lowers_the_grade(servers, pki, tmp_path: Path) -> None:
    """An extra host that refuses connections: its checks are errors (not assessed), the good host's A+ drops to B."""
    from crm_audit.core.net import free_port

    url, http_port = servers["good"]
    closed = free_port()  # nothing listens there
    ctx = make_ctx(url, tmp_path, ca_bundle=str(pki["ca"].cert_path), http_port=http_port, hosts=[f"localhost:{closed}"])
    res = TlsProbe().run(ctx)
    assert res.status == "ok", res.reason
    grades = {f"{s['host']}:{s['port']}": s["grade"] for s in res.artifacts["servers"]}
    assert grades[f"localhost:{closed}"] is None and "A+" in grades.values()
    [failed] = [f for f in res.findings if f.id == "tls.scan.failed"]
    assert failed.status == Status.error and failed.severity.value == "high" and failed.not_assessed is not None
    assert f"localhost:{closed}" in failed.title and failed.hint
    assert not [f for f in res.findings if f"localhost:{closed}" in f.title and f.status == Status.passed]
    [m] = res.measurements
    assert m.details["grade"] == "B" and m.value <= 79 and not m.meets_expected
    assert m.details["not_scanned"] == [f"localhost:{closed}"] and "could not be scanned" in m.label


@pytest.mark.integration
def test_all_endpoints_in_one_scan_give_the_same_findings(servers, scanned, pki, tmp_path: Path) -> None:
    """Every endpoint goes to sslyze's concurrent scanner in one call; each keeps the findings of a scan of its own."""
    names = ["good", "tls10", "nohsts", "noredirect", "shorthsts", "weakciphers"]
    ports = {n: int(servers[n][0].rstrip("/").rsplit(":", 1)[1]) for n in names}
    url, http_port = servers["good"]
    calls: list[int] = []
    real = tls_run.scan_in_worker

    def counting(targets, **kw):
        calls.append(len(targets))
        return real(targets, **kw)

    ctx = make_ctx(url, tmp_path, ca_bundle=str(pki["ca"].cert_path), http_port=http_port,
                   hosts=[f"localhost:{ports[n]}" for n in names[1:]])
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(tls_run, "scan_in_worker", counting)
        res = TlsProbe().run(ctx)
    assert calls == [len(names)]  # one sslyze call for all of them
    by_port = {s["port"]: s for s in res.artifacts["servers"]}
    for n in names:
        alone = scanned(n)
        assert by_port[ports[n]]["grade"] == server(alone)["grade"], n
        assert by_port[ports[n]]["weak_ciphers"] == server(alone)["weak_ciphers"], n
        here = {f.id for f in res.findings if f":{ports[n]}" in f.title or f":{ports[n]})" in f.title}
        assert set(failing(alone)) - {"tls.mozilla.intermediate"} <= here | {"tls.http.no_redirect"}, n
    # concurrent: the whole probe took less than the sum of the single scans
    assert res.artifacts["probe_s"] < sum(scanned(n).artifacts["probe_s"] for n in names)
