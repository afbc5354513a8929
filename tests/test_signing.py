"""Signed results: keygen, audit --sign-key, sign, verify; tampering and foreign keys fail verification."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from local_http import LocalServer, json_route

from crm_audit.ci.signing import (
    SigningError,
    VerificationError,
    canonical_bytes,
    generate_keypair,
    load_private_key,
    load_public_key,
    sign_document,
    verify_document,
    verify_file,
)

PROFILE = """
name: signing test ünïcode
target: {{base_url: "{url}", health_path: /ping, rate_limit_rps: 1000}}
endpoints:
  - {{name: ping, path: /ping, slo_p95_ms: 1000}}
plugins:
  latency: {{samples: 5, warmup: 0}}
"""


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """The real console command in a new process (used for the audit itself)."""
    return subprocess.run([sys.executable, "-m", "crm_audit", *args], capture_output=True, text=True, timeout=120)


def cmd(*args: str) -> subprocess.CompletedProcess[str]:
    """The same click command run in-process (keygen/sign/verify are quick; spare the start-up)."""
    from click.testing import CliRunner

    from crm_audit.cli import cli

    res = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return subprocess.CompletedProcess(list(args), res.exit_code, res.stdout, res.stderr)


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("keys")
    proc = cmd("keygen", "--out", str(d / "mine"))
    assert proc.returncode == 0, proc.stderr
    priv, pub, _ = generate_keypair(d / "other")
    return {"priv": d / "mine" / "crm-audit-signing.key", "pub": d / "mine" / "crm-audit-signing.pub",
            "other_priv": priv, "other_pub": pub, "stdout": proc.stdout}  # type: ignore[dict-item]


@pytest.fixture(scope="module")
def signed_run(keys, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real audit of a local server, signed as it is written."""
    d = tmp_path_factory.mktemp("run")
    with LocalServer({"/ping": json_route({"ok": True})}) as srv:
        (d / "p.yaml").write_text(PROFILE.format(url=srv.base_url), encoding="utf-8")
        proc = run_cli("audit", str(d / "p.yaml"), "--only", "latency", "-q", "--out", str(d / "out"),
                       "--sign-key", str(keys["priv"]))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return next((d / "out").glob("*/result.json"))


def test_keygen_modes_and_no_overwrite(keys, tmp_path: Path) -> None:
    assert stat.S_IMODE(os.stat(keys["priv"]).st_mode) == 0o600
    assert b"PUBLIC KEY" in keys["pub"].read_bytes()
    assert "sha256:" in str(keys["stdout"])
    again = cmd("keygen", "--out", str(keys["priv"].parent))
    assert again.returncode == 2 and "exists" in again.stderr
    with pytest.raises(SigningError, match="not a PEM private key"):
        load_private_key(keys["pub"])
    with pytest.raises(SigningError, match="not a PEM public key"):
        load_public_key(keys["priv"])


def test_audit_sign_key_signs_what_it_writes(signed_run: Path, keys) -> None:
    doc = json.loads(signed_run.read_text(encoding="utf-8"))
    sig = doc["signature"]
    assert sig["algorithm"] == "ed25519" and sig["key_fingerprint"].startswith("sha256:") and sig["signed_at"]
    assert verify_file(signed_run, load_public_key(keys["pub"]))["value"] == sig["value"]
    html = (signed_run.parent / "report.html").read_text(encoding="utf-8")
    assert sig["key_fingerprint"] in html, "the HTML shows the signing key's fingerprint"
    ok = cmd("verify", str(signed_run), "--pubkey", str(keys["pub"]))
    assert ok.returncode == 0 and "signature valid" in ok.stdout, ok.stderr


def test_one_changed_byte_fails_verification(signed_run: Path, keys, tmp_path: Path) -> None:
    text = signed_run.read_text(encoding="utf-8")
    pub = load_public_key(keys["pub"])
    # change one character inside several different values: a name, an id, a number, the signature itself
    spots = [text.index('"name": "signing test') + 10, text.index('"run_id": "') + 12,
             text.index('"duration_s": ') + 14, text.index('"signed_at": "') + 16, text.index('"value": "') + 12]
    for pos in spots:
        ch = text[pos]
        repl = "1" if ch == "2" else "2" if ch.isdigit() else ("b" if ch != "b" else "c")
        bad = tmp_path / f"bad{pos}.json"
        bad.write_text(text[:pos] + repl + text[pos + 1:], encoding="utf-8")
        with pytest.raises(VerificationError):
            verify_file(bad, pub)
    # and through the CLI: one line, exit 1
    proc = cmd("verify", str(bad), "--pubkey", str(keys["pub"]))
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1 and "verification FAILED" in proc.stderr
    # whitespace is not content: re-indenting the file keeps it valid
    pretty = tmp_path / "pretty.json"
    pretty.write_text(json.dumps(json.loads(text), indent=4), encoding="utf-8")
    verify_file(pretty, pub)


def test_changed_structure_or_other_key_fails(signed_run: Path, keys, tmp_path: Path) -> None:
    doc = json.loads(signed_run.read_text(encoding="utf-8"))
    pub = load_public_key(keys["pub"])
    verify_document(doc, pub)
    variants = {
        "gate outcome added": {**doc, "gates": [*doc["gates"], {"gate": "x", "passed": True, "detail": ""}]},
        "probes dropped": {**doc, "probes": []},
        "complete flipped": {**doc, "complete": not doc["complete"]},
        "extra key": {**doc, "note": "added later"},
        "no signature": {k: v for k, v in doc.items() if k != "signature"},
        "state added to signature": {**doc, "signature": {**doc["signature"], "state": "verified"}},
        "fingerprint swapped": {**doc, "signature": {**doc["signature"], "key_fingerprint": "sha256:" + "0" * 64}},
    }
    for name, variant in variants.items():
        with pytest.raises(VerificationError):
            verify_document(variant, pub)
            pytest.fail(name)
    with pytest.raises(VerificationError, match="not with the given public key"):
        verify_document(doc, load_public_key(keys["other_pub"]))
    # re-signed by another key: verifies with that key only
    forged = sign_document(doc, load_private_key(keys["other_priv"]))
    verify_document(forged, load_public_key(keys["other_pub"]))
    with pytest.raises(VerificationError):
        verify_document(forged, pub)
    # the other key's signature pasted under my fingerprint: the maths fails
    pasted = {**forged, "signature": {**forged["signature"], "key_fingerprint": doc["signature"]["key_fingerprint"]}}
    with pytest.raises(VerificationError, match="does not match"):
        verify_document(pasted, pub)
    path = tmp_path / "forged.json"
    path.write_text(json.dumps(forged))
    proc = cmd("verify", str(path), "--pubkey", str(keys["pub"]))
    assert proc.returncode == 1 and "not with the given public key" in proc.stderr


def test_sign_command_in_place_atomically(signed_run: Path, keys, tmp_path: Path) -> None:
    doc = json.loads(signed_run.read_text(encoding="utf-8"))
    doc.pop("signature")
    target = tmp_path / "result.json"
    target.write_text(json.dumps(doc, indent=2, ensure_ascii=False), encoding="utf-8")
    unsigned = cmd("verify", str(target), "--pubkey", str(keys["pub"]))
    assert unsigned.returncode == 1 and "not signed" in unsigned.stderr
    before = target.read_bytes()
    broken = cmd("sign", str(target), "--key", str(keys["pub"]))  # a public key cannot sign
    assert broken.returncode == 2 and target.read_bytes() == before
    proc = cmd("sign", str(target), "--key", str(keys["other_priv"]))
    assert proc.returncode == 0, proc.stderr
    assert sorted(os.listdir(tmp_path)) == ["result.json"], "no temporary file is left behind"
    verify_file(target, load_public_key(keys["other_pub"]))
    assert json.loads(target.read_text(encoding="utf-8"))["target"]["name"] == "signing test ünïcode"


def test_canonical_form() -> None:
    assert canonical_bytes({"b": 1, "a": "é", "signature": {"value": "x", "algorithm": "ed25519"}}) == \
        '{"a":"é","b":1,"signature":{"algorithm":"ed25519"}}'.encode()
    with pytest.raises(SigningError):
        canonical_bytes({"x": float("nan")})
