"""Waivers: parsing, expiry, target matching, gates and scores ignoring waived findings, CLI end to end."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import pytest
from local_http import LocalServer, json_route

from crm_audit.ci.waivers import WaiverError, apply_waivers, load_waivers, parse_waivers
from crm_audit.core.model import AuditResult, Finding, Measurement, ProbeResult, Severity, Status, TargetSummary
from crm_audit.core.postprocess import Prepared, postprocess
from crm_audit.core.profile import Gates
from crm_audit.scoring import load_hierarchy, score_result

TODAY = dt.date(2026, 6, 1)


def waiver(fid: str, expires: str = "2026-12-31", **kw: str) -> dict:
    return {"id": fid, "justification": "accepted risk: legacy clients", "by": "sec-lead@example.com",
            "expires": expires, **kw}


def result_with(*findings: Finding, base_url: str = "https://crm.example.com:8443") -> AuditResult:
    return AuditResult(tool={"name": "crm-audit", "version": "t"}, run_id="r",
                       target=TargetSummary(name="t", base_url=base_url, scope=["crm.example.com"]),
                       profile_digest="d", started="2026-06-01T00:00:00+00:00",
                       probes=[ProbeResult(probe="tls", findings=list(findings), measurements=[
                           Measurement(indicator="sec.transport", value=100.0, unit="score")])])


def fail(fid: str, sev: Severity = Severity.high, status: Status = Status.failed) -> Finding:
    return Finding(id=fid, title=fid, severity=sev, status=status, indicator="sec.transport", probe="tls")


# ------------------------------------------------------------------ file format


def test_errors_name_the_entry_and_key(tmp_path: Path) -> None:
    with pytest.raises(WaiverError, match=r"waivers\[1\]\.by: required key is missing"):
        parse_waivers([waiver("a"), {k: v for k, v in waiver("b").items() if k != "by"}], "w.yaml")
    with pytest.raises(WaiverError, match=r"waivers\[0\]\.expires"):
        parse_waivers([waiver("a", expires="next week")], "w.yaml")
    with pytest.raises(WaiverError, match=r"waivers\[0\]\.owner: unknown key"):
        parse_waivers([{**waiver("a"), "owner": "x"}], "w.yaml")
    with pytest.raises(WaiverError, match=r"waivers\[0\]\.justification: .*blank"):
        parse_waivers([{**waiver("a"), "justification": "  "}], "w.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("waivers: [\n", encoding="utf-8")
    with pytest.raises(WaiverError, match=r"bad.yaml:\d+: not valid YAML"):
        load_waivers(bad)
    good = tmp_path / "good.yaml"
    good.write_text("- {id: 'tls.*', justification: j, by: me, expires: 2026-12-31}\n", encoding="utf-8")
    assert [w.id for w in load_waivers(good)] == ["tls.*"]
    assert parse_waivers({"waivers": None}) == []


# ------------------------------------------------------------------ applying


def test_future_waiver_applies_past_one_expires_unknown_reported() -> None:
    res = result_with(fail("tls.protocol.tls1_0_enabled"), fail("tls.cipher.weak"), fail("tls.hsts.missing"),
                      fail("tls.cert.ok", status=Status.passed))
    warnings: list[str] = []
    ws = parse_waivers([waiver("tls.protocol.*"),                       # future: waives
                        waiver("tls.cipher.weak", expires="2026-05-31"),  # yesterday: expired
                        waiver("tls.cert.ok"),                           # matches only a passing finding
                        waiver("access.bola.*"),                         # matches nothing
                        waiver("tls.hsts.missing", target="other.example.com")])  # other target
    out = apply_waivers(res, ws, TODAY, warnings.append)
    by_id = {f.id: f for f in out.all_findings()}
    assert by_id["tls.protocol.tls1_0_enabled"].waiver.model_dump() == {
        "justification": "accepted risk: legacy clients", "by": "sec-lead@example.com", "expires": "2026-12-31",
        "pattern": "tls.protocol.*"}
    assert not by_id["tls.protocol.tls1_0_enabled"].is_open
    assert by_id["tls.cipher.weak"].waiver is None and by_id["tls.cipher.weak"].is_open
    assert by_id["tls.hsts.missing"].waiver is None
    assert by_id["tls.cert.ok"].waiver is None
    rec = out.waivers
    assert [(a["id"], a["findings"]) for a in rec["applied"]] == [("tls.protocol.*", ["tls.protocol.tls1_0_enabled"])]
    assert [(e["id"], e["expires"], e["findings"]) for e in rec["expired"]] == [
        ("tls.cipher.weak", "2026-05-31", ["tls.cipher.weak"])]
    assert sorted(u["id"] for u in rec["unmatched"]) == ["access.bola.*", "tls.cert.ok", "tls.hsts.missing"]
    assert any("expired on 2026-05-31" in w for w in warnings)
    assert any("access.bola.*" in w and "matches no" in w for w in warnings)
    # a waiver is valid through its expiry day
    last_day = apply_waivers(res, parse_waivers([waiver("tls.cipher.weak", expires="2026-06-01")]), TODAY)
    assert {f.id for f in last_day.all_findings() if f.waiver} == {"tls.cipher.weak"}


def test_target_matches_host_or_url() -> None:
    res = result_with(fail("tls.x"))
    for target in ("crm.example.com", "crm.example.com:8443", "https://crm.example.com:8443/", "*.example.com"):
        out = apply_waivers(res, parse_waivers([waiver("tls.x", target=target)]), TODAY)
        assert out.all_findings()[0].waiver is not None, target
    out = apply_waivers(res, parse_waivers([waiver("tls.x", target="crm.example.org")]), TODAY)
    assert out.all_findings()[0].waiver is None


def test_waived_findings_do_not_fail_gates_and_are_rescored() -> None:
    hierarchy = load_hierarchy("default")
    raw = result_with(fail("tls.protocol.tls1_0_enabled", Severity.critical))
    raw = raw.model_copy(update={"scoring": score_result(raw, hierarchy)})

    def transport(r: AuditResult) -> float:
        return next(n["score"] for n in r.scoring["nodes"] if n["id"] == "sec.transport")

    assert transport(raw) < 100
    gates = Gates(fail_on="high")
    plain = postprocess(raw, Prepared(gates=gates, today=TODAY))
    assert not plain.gates[0].passed and transport(plain) == transport(raw)
    waived = postprocess(raw, Prepared(gates=gates, today=TODAY, waivers=parse_waivers([waiver("tls.*")])))
    assert waived.gates[0].passed, waived.gates
    assert transport(waived) == 100.0, "a waived finding must not cost score"
    assert waived.scoring["overall"]["score"] > raw.scoring["overall"]["score"]
    expired = postprocess(raw, Prepared(gates=gates, today=TODAY,
                                        waivers=parse_waivers([waiver("tls.*", expires="2026-01-01")])))
    assert not expired.gates[0].passed and transport(expired) == transport(raw)


# ------------------------------------------------------------------ CLI, for real


PROFILE = """
name: waivers test
target: {{base_url: "{url}", health_path: /ping, rate_limit_rps: 1000}}
endpoints:
  - {{name: ping, path: /ping, slo_p95_ms: 0.001}}
plugins:
  latency: {{samples: 8, warmup: 0}}
{extra}
"""


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "crm_audit", *args], capture_output=True, text=True, timeout=120)


def test_cli_waivers_future_from_profile_past_from_option(tmp_path: Path) -> None:
    future, past = tmp_path / "future.yaml", tmp_path / "past.yaml"
    future.write_text(json.dumps([waiver("latency.slo_exceeded.*", expires="2999-01-01"), waiver("latency.errors.ping")]))
    past.write_text(json.dumps([waiver("latency.slo_exceeded.ping", expires="2001-01-01")]))
    with LocalServer({"/ping": json_route({"ok": True})}) as srv:
        prof = tmp_path / "profile.yaml"  # `waivers:` in the profile, relative to it
        prof.write_text(PROFILE.format(url=srv.base_url, extra="waivers: future.yaml"))
        common = ("--only", "latency", "-q", "--fail-on", "medium", "--min-coverage", "0")
        waived_run = run_cli("audit", str(prof), "--out", str(tmp_path / "o1"), *common)
        expired_run = run_cli("audit", str(prof), "--out", str(tmp_path / "o2"), "--waivers", str(past), *common)

    assert waived_run.returncode == 0, waived_run.stdout + waived_run.stderr
    assert "1 finding(s) waived" in waived_run.stdout and "1 unmatched" in waived_run.stdout
    assert "gate fail_on:medium: passed" in waived_run.stdout
    assert "latency.errors.ping" in waived_run.stderr  # a real check that did not fail: unmatched, a warning
    res = json.loads(next((tmp_path / "o1").glob("*/result.json")).read_text())
    f = next(f for p in res["probes"] for f in p["findings"] if f["id"] == "latency.slo_exceeded.ping")
    assert f["status"] == "fail" and f["waiver"]["by"] == "sec-lead@example.com", "waived findings stay visible"
    assert [u["id"] for u in res["waivers"]["unmatched"]] == ["latency.errors.ping"]

    # --waivers replaces the profile's file; its waiver has expired, so the finding fails the gate again
    assert expired_run.returncode == 1, expired_run.stdout + expired_run.stderr
    assert "expired on 2001-01-01" in expired_run.stderr and "gate fail_on:medium: FAILED" in expired_run.stdout
    res2 = json.loads(next((tmp_path / "o2").glob("*/result.json")).read_text())
    assert res2["waivers"]["expired"][0]["findings"] == ["latency.slo_exceeded.ping"]
    assert all(f["waiver"] is None for p in res2["probes"] for f in p["findings"])


def test_cli_bad_waivers_file_is_a_usage_error(tmp_path: Path) -> None:
    bad = tmp_path / "w.yaml"
    bad.write_text("- {id: x, justification: j, expires: 2030-01-01}\n")
    prof = tmp_path / "p.yaml"  # nothing listens there: the waivers must be rejected before any contact
    prof.write_text(PROFILE.format(url="http://127.0.0.1:9", extra=""))
    proc = run_cli("audit", str(prof), "--only", "latency", "--out", str(tmp_path / "o"), "--waivers", str(bad))
    assert proc.returncode == 2
    assert "waivers[0].by: required key is missing" in proc.stderr and proc.stderr.count("\n") == 1
