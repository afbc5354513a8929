"""Signed results: Ed25519 over a canonical serialisation, so a vendor's report can be checked.

What is signed: the result as JSON data with ``signature.value`` left out — i.e. the whole
result plus the signature's own ``algorithm``, ``key_fingerprint`` and ``signed_at`` — in
canonical form: keys sorted, no whitespace, UTF-8, no NaN. Binding the signature's metadata
means changing any byte of meaning, in the result or in the signature, fails verification.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from crm_audit.core.ci_model import Signature
from crm_audit.core.errors import EXIT_GATE, CrmAuditError, InputFileError
from crm_audit.core.model import AuditResult
from crm_audit.core.safeyaml import parse_text, read_file
from crm_audit.fsutil import write_atomic

ALGORITHM = "ed25519"
#: the keys of a signature record, exactly those of the Signature model
SIGNATURE_KEYS = set(Signature.model_fields)
PRIVATE_NAME, PUBLIC_NAME = "crm-audit-signing.key", "crm-audit-signing.pub"


class SigningError(InputFileError):
    """A key or file cannot be used (usage problem, exit 2)."""


class VerificationError(CrmAuditError):
    """The signature does not hold; the message is one line saying why (exit 1)."""

    exit_code = EXIT_GATE


# ------------------------------------------------------------------ keys


def generate_keypair(out_dir: str | Path, force: bool = False) -> tuple[Path, Path, str]:
    """Write a new Ed25519 key pair (private PEM mode 0600, public PEM); returns paths and fingerprint."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    priv_path, pub_path = out / PRIVATE_NAME, out / PUBLIC_NAME
    if not force and (priv_path.exists() or pub_path.exists()):
        raise SigningError(f"{priv_path if priv_path.exists() else pub_path} exists; use --force to replace the key pair")
    key = Ed25519PrivateKey.generate()
    priv = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())
    pub = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    write_atomic(priv_path, priv, mode=0o600)
    write_atomic(pub_path, pub, mode=0o644)
    return priv_path, pub_path, fingerprint(key.public_key())


def load_private_key(path: str | Path) -> Ed25519PrivateKey:
    """An unencrypted Ed25519 private key in PEM (as written by ``crm-audit keygen``)."""
    data = _read(path, "private key")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise SigningError(f"{path}: encrypted private keys are not supported; use an unencrypted PEM kept "
                           "in a CI secret file") from None
    except ValueError:
        raise SigningError(f"{path}: not a PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningError(f"{path}: not an Ed25519 key (crm-audit keygen makes one)")
    return key


def load_public_key(path: str | Path) -> Ed25519PublicKey:
    """An Ed25519 public key in PEM."""
    data = _read(path, "public key")
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError:
        raise SigningError(f"{path}: not a PEM public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise SigningError(f"{path}: not an Ed25519 public key")
    return key


def fingerprint(public_key: Ed25519PublicKey) -> str:
    """``sha256:<hex>`` of the raw 32-byte public key."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def _read(path: str | Path, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise SigningError(f"{path}: cannot read {what}: {exc.strerror or exc}") from None


# ------------------------------------------------------------------ documents


def canonical_bytes(doc: dict[str, Any]) -> bytes:
    """The bytes that are signed: ``doc`` minus ``signature.value``, sorted keys, no whitespace, UTF-8."""
    body = {k: v for k, v in doc.items() if k != "signature"}
    sig = doc.get("signature")
    if isinstance(sig, dict):
        body["signature"] = {k: v for k, v in sig.items() if k != "value"}
    try:
        return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                          allow_nan=False).encode("utf-8")
    except ValueError as exc:
        raise SigningError(f"the result cannot be serialised canonically: {exc}") from None


def result_document(result: AuditResult) -> dict[str, Any]:
    """The result as the JSON data its result.json holds (so signing here = signing the file)."""
    doc: dict[str, Any] = json.loads(result.model_dump_json())
    return doc


def sign_document(doc: dict[str, Any], key: Ed25519PrivateKey, signed_at: str | None = None) -> dict[str, Any]:
    """A copy of ``doc`` with a fresh ``signature`` (any old one is replaced)."""
    meta = {
        "algorithm": ALGORITHM,
        "key_fingerprint": fingerprint(key.public_key()),
        "signed_at": signed_at or dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    unsigned = {**{k: v for k, v in doc.items() if k != "signature"}, "signature": meta}
    value = base64.b64encode(key.sign(canonical_bytes(unsigned))).decode("ascii")
    return {**unsigned, "signature": {**meta, "value": value}}


def sign_result(result: AuditResult, key: Ed25519PrivateKey) -> AuditResult:
    """The result with its signature set; its result.json then verifies with the public key."""
    signed = sign_document(result_document(result), key)
    return result.model_copy(update={"signature": Signature.model_validate(signed["signature"])})


def verify_document(doc: dict[str, Any], public_key: Ed25519PublicKey) -> dict[str, Any]:
    """Check the signature of ``doc``; returns the signature record or raises VerificationError."""
    sig = doc.get("signature")
    if not sig:
        raise VerificationError("the result is not signed")
    if not isinstance(sig, dict) or set(sig) != SIGNATURE_KEYS:
        raise VerificationError("the signature record is malformed or was altered "
                                f"(expected exactly {', '.join(sorted(SIGNATURE_KEYS))})")
    if sig["algorithm"] != ALGORITHM:
        raise VerificationError(f"unsupported signature algorithm {sig['algorithm']!r}")
    expected = fingerprint(public_key)
    if sig["key_fingerprint"] != expected:
        raise VerificationError(f"signed with key {sig['key_fingerprint']}, not with the given public key {expected}")
    try:
        raw = base64.b64decode(str(sig["value"]), validate=True)
    except ValueError:
        raise VerificationError("the signature value is not valid base64 (it was altered)") from None
    try:
        public_key.verify(raw, canonical_bytes(doc))
    except InvalidSignature:
        raise VerificationError("signature does not match: the result or its signature was changed "
                                "after signing") from None
    return sig


# ------------------------------------------------------------------ files


def read_document(path: str | Path) -> dict[str, Any]:
    """A result.json as data; a file that is not JSON or not a result is a SigningError."""
    p = Path(path)
    doc = parse_text(read_file(p, "result", SigningError), str(p), as_json=True,
                     error=lambda problem: VerificationError(f"{problem}; the file was damaged or is not a result")).data
    if not isinstance(doc, dict) or "run_id" not in doc or "schema_version" not in doc:
        raise SigningError(f"{p}: not an audit result (no run_id / schema_version)")
    return doc


def sign_file(path: str | Path, key: Ed25519PrivateKey, out: str | Path | None = None) -> dict[str, Any]:
    """Sign a result.json in place (or into ``out``), atomically; returns the signature record."""
    doc = read_document(path)
    signed = sign_document(doc, key)
    text = json.dumps(signed, indent=2, ensure_ascii=False) + "\n"
    write_atomic(Path(out or path), text.encode("utf-8"))
    signature: dict[str, Any] = signed["signature"]
    return signature


def verify_file(path: str | Path, public_key: Ed25519PublicKey) -> dict[str, Any]:
    """Verify a result.json; returns the signature record or raises VerificationError."""
    return verify_document(read_document(path), public_key)


