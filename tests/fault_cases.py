"""The reliability cases: one ``crm-audit audit`` subprocess per fault of tests/fault_target.py, measured.

Shared by tests/test_faults.py (which asserts) and scripts/reliability.py (which writes the
figures into docs/reliability.md). Each run is bounded: the profile's request budget times its
deadline (plus the tls probe's own scan limit when it runs) plus :data:`MARGIN_S`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fault_target import PASSWORD, FaultTarget

ROOT = Path(__file__).resolve().parents[1]
#: process start (imports), scoring and writing the reports: time not spent on requests
MARGIN_S = 20.0
RSS_LIMIT_MB = 300.0
TIMEOUT_S, DEADLINE_S, REQUEST_BUDGET = 1.0, 2.0, 40
MAX_BYTES = 4 * 1024 * 1024
TLS_SCAN_LIMIT_S = 60.0  # the tls probe's own sslyze deadline: max(60, 12 × plugins.tls.timeout_s)


@dataclass(frozen=True)
class Case:
    """One fault and what the audit must do with it."""

    fault: str
    probes: tuple[str, ...]
    what: str
    exit_code: int = 0
    result_written: bool = True
    #: a not-assessed reason that must show up in some finding's transport evidence
    failure: str | None = None
    #: probes none of whose findings may pass (their requests failed)
    no_pass: tuple[str, ...] = ()
    #: probes that must end with status "ok" and at least one measurement (the fault was recovered from)
    recovered: tuple[str, ...] = ()
    #: finding ids that must fail (what the fault should be reported as)
    must_fail: tuple[str, ...] = ()

    @property
    def budget_s(self) -> float:
        return REQUEST_BUDGET * DEADLINE_S + (TLS_SCAN_LIMIT_S if "tls" in self.probes else 0.0)


DATA = ("latency", "data_quality")
ALL = ("latency", "data_quality", "access")
CASES: list[Case] = [
    Case("trickle", DATA, "each data request ends at target.deadline_s: timed out, not assessed",
         failure="timed_out", no_pass=DATA),
    Case("stall", DATA, "each data request ends after target.timeout_s without data: timed out",
         failure="timed_out", no_pass=DATA),
    Case("huge", DATA, "reading stops at target.max_response_bytes: audit limit, not assessed",
         failure="audit_limit", no_pass=DATA),
    Case("gzip_bomb", DATA, "decoding stops at target.max_response_bytes of decompressed data: audit limit",
         failure="audit_limit", no_pass=DATA),
    Case("deep_json", DATA, "the answer is refused as JSON (depth bound): data checks not assessed; "
         "latency still times the answers", no_pass=("data_quality",)),
    Case("deep_json_login", DATA, "the login fails with one line naming the depth bound; a result marked "
         "incomplete (Inconclusive) says so", exit_code=3, no_pass=DATA),
    Case("reset", ALL, "after login every data request is retried, then request failed: not assessed",
         failure="request_failed", no_pass=ALL),
    Case("truncated", DATA, "a body shorter than its Content-Length is request failed, not assessed",
         failure="request_failed", no_pass=DATA),
    Case("storm", ALL, "login and reads are retried with backoff; the audit completes as if nothing happened",
         recovered=("latency", "data_quality")),
    Case("ratelimit", DATA, "each 429 is retried after its Retry-After (seconds, then an HTTP date); the audit "
         "completes",
         recovered=DATA),
    Case("redirect_loop", DATA, "redirects are answers, not followed by data reads; no data check passes",
         no_pass=DATA),
    Case("offscope_redirect", ALL, "the off-scope host is never contacted; no data check passes",
         no_pass=DATA),
    Case("html", DATA, "HTML where JSON is expected: data checks not assessed", no_pass=("data_quality",)),
    Case("die", ALL, "once the CRM is gone every request is retried, then request failed: not assessed",
         failure="request_failed"),
    Case("expired", ("latency", "tls"), "the reachability check warns; the tls probe reports the expired "
         "certificate; verified requests fail: request failed", failure="request_failed", no_pass=("latency",),
         must_fail=("tls.cert.expired",)),
    Case("handshake", ("latency", "tls"), "the reachability check warns; TLS handshakes fail: request failed",
         failure="request_failed", no_pass=("latency",)),
]


def profile_text(ft: FaultTarget) -> str:
    """A small profile for the fault target (login account, or an API key on the TLS faults)."""
    tls = ft.scheme == "https"
    auth = ('{method: api_key, header: X-API-Key, api_key: "${FAULT_PW}"}' if tls else
            '{method: login, url: /api/auth/login, username: admin@fault.test, password: "${FAULT_PW}"}')
    ca = f"\n  ca_bundle: {ft.ca_path}" if ft.ca_path else ""
    return f"""name: fault-{ft.fault}
target:
  base_url: {ft.base_url}
  health_path: /health
  timeout_s: {TIMEOUT_S}
  deadline_s: {DEADLINE_S}
  max_response_bytes: {MAX_BYTES}
  retries: 2
  max_retry_after_s: 3
  request_budget: {REQUEST_BUDGET}{ca}
accounts:
  - name: admin
    role: admin
    auth: {auth}
adapter:
  type: rest
  resources:
    contacts: {{path: /api/contacts}}
    accounts: {{path: /api/accounts}}
endpoints:
  - {{name: contacts, path: /api/contacts, account: admin, slo_p95_ms: 2000}}
access_matrix:
  admin: {{contacts: {{list: allow}}}}
plugins:
  latency: {{samples: 2, warmup: 0}}
  data_quality: {{max_records: 40, page_size: 40}}
  access: {{checks: [anonymous, vertical], me_path: null, users_path: null}}
  tls: {{timeout_s: 2}}
"""


@dataclass
class Outcome:
    """What one audit run did, as measured from outside."""

    case: Case
    exit_code: int
    wall_s: float
    peak_rss_mb: float
    stderr: str
    result: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)

    def findings(self, probe: str | None = None) -> list[dict[str, Any]]:
        probes = (self.result or {}).get("probes") or []
        return [f for p in probes if probe is None or p["probe"] == probe for f in p.get("findings") or []]

    def failures_seen(self) -> set[str]:
        """Not-assessed reasons recorded in findings' transport evidence."""
        seen = set()
        for f in self.findings():
            for ev in f.get("evidence") or []:
                failure = ((ev.get("details") or {}).get("transport") or {}).get("failure")
                if failure:
                    seen.add(failure)
        return seen


def run_case(case: Case, workdir: Path) -> Outcome:
    """Start the fault target, run the audit in a subprocess, measure wall time and peak RSS."""
    workdir.mkdir(parents=True, exist_ok=True)
    with FaultTarget(case.fault, workdir=workdir / "pki") as ft:
        profile = workdir / "profile.yaml"
        profile.write_text(profile_text(ft))
        out = workdir / "out"
        cmd = [sys.executable, "-m", "crm_audit", "audit", str(profile), "--out", str(out), "--format", "json",
               "--only", ",".join(case.probes)]
        env = {**os.environ, "FAULT_PW": PASSWORD, "CI": "1"}
        t0 = time.monotonic()
        with tempfile.TemporaryFile() as err:
            proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, env=env, cwd=workdir)
            code, rss_kb = _wait_with_rusage(proc, case.budget_s + MARGIN_S + 30)
            wall = time.monotonic() - t0
            err.seek(0)
            stderr = err.read().decode("utf-8", "replace")
    results = sorted(out.glob("*/result.json")) if out.exists() else []
    result = json.loads(results[-1].read_text()) if results else None
    return Outcome(case, code, round(wall, 2), round(rss_kb / 1024, 1), stderr, result)


def _wait_with_rusage(proc: subprocess.Popen, limit_s: float) -> tuple[int, int]:
    """Reap the child with wait4 (its own peak RSS, in KiB); kill it (by PID) past ``limit_s``."""
    deadline = time.monotonic() + limit_s
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid == proc.pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            return proc.returncode, usage.ru_maxrss
        if time.monotonic() > deadline:
            os.kill(proc.pid, signal.SIGKILL)
        time.sleep(0.05)
