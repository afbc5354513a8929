"""The redactor masks declared secrets and credential-shaped values it was never told about."""

from __future__ import annotations

import pytest

from crm_audit.core.redact import MASK, Redactor


@pytest.mark.parametrize("text, secret", [
    ('{"hashed_password": "$2b$12$abcdefghij"}', "$2b$12$abcdefghij"),
    ('{"reset_token": "r-123456789"}', "r-123456789"),
    ('{"otp_secret": "JBSWY3DPEHPK3PXP"}', "JBSWY3DPEHPK3PXP"),
    ('{"client_secret":"zz-top-secret"}', "zz-top-secret"),
    ("password=hunter22&user=bob", "hunter22"),
    ("GET /x?access_token=abc123def456 HTTP/1.1", "abc123def456"),
    ("Authorization: Basic dXNlcjpwYXNz", "dXNlcjpwYXNz"),
    ("Cookie: sessionid=s3ss10n", "s3ss10n"),
    ("token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl", "eyJhbGciOiJIUzI1NiJ9"),
])
def test_credential_shapes_are_masked(text: str, secret: str) -> None:
    out = Redactor().redact(text)
    assert secret not in out and MASK in out


def test_declared_secrets_are_masked_anywhere_and_plain_data_stays() -> None:
    r = Redactor(["my-declared-secret"])
    assert r.redact("value my-declared-secret here") == f"value {MASK} here"
    plain = '{"name": "Ada", "email": "ada@example.com", "sha256": "9f86d08"}'
    assert r.redact(plain) == plain
    assert r.redact_obj({"a": ["my-declared-secret", 3]}) == {"a": [MASK, 3]}


SECRET = "tok-Lk9/Qz+7=wX4 ü"


def _b64(raw: str, url: bool = False) -> str:
    import base64

    return (base64.urlsafe_b64encode if url else base64.b64encode)(raw.encode()).decode()


def _forms() -> dict[str, str]:
    import html
    import json
    import re
    from urllib.parse import quote, quote_plus

    jwt_payload = _b64(json.dumps({"sub": "u", "pw": SECRET}), url=True).rstrip("=")
    out = {
        "base64": _b64(SECRET), "base64 unpadded": _b64(SECRET).rstrip("="), "base64url": _b64(SECRET, url=True),
        "basic user:secret": _b64(f"user:{SECRET}"), "quote": quote(SECRET, safe=""), "quote /": quote(SECRET),
        "quote_plus": quote_plus(SECRET), "quote lower-case": re.sub("%[0-9A-F]{2}", lambda m: m.group(0).lower(), quote(SECRET, safe="")),
        "json": json.dumps(SECRET)[1:-1], "json ascii-free": json.dumps(SECRET, ensure_ascii=False)[1:-1],
        "html": html.escape(SECRET), "hex": SECRET.encode().hex(), "HEX": SECRET.encode().hex().upper(),
        "jwt": f"xx.{jwt_payload}.sig", "cookie": f"Set-Cookie: a=1; sid={_b64(SECRET)}; Path=/",
    }
    for k in range(3):  # the secret at each of the three byte alignments inside a longer base64 text
        for url in (False, True):
            out[f"inside base64{'url' if url else ''} at {k}"] = _b64("p" * k + SECRET + "-suffix-" * 3, url=url)
    return out


@pytest.mark.parametrize("form", sorted(_forms()))
def test_encoded_forms_of_a_declared_secret_are_masked(form: str) -> None:
    encoded = _forms()[form]
    out = Redactor([SECRET]).redact(f"echo: {encoded} :end")
    assert encoded not in out and MASK in out


def test_encoded_forms_leave_unrelated_base64_alone() -> None:
    r = Redactor([SECRET, "abcd"])
    text = f"id {_b64('some other value entirely')} and {_b64('hello world')}"
    assert r.redact(text) == text


def test_redact_before_cutting_catches_what_cutting_first_would_miss() -> None:
    r = Redactor([SECRET])
    text = "x" * 90 + _b64(SECRET) + "y" * 50
    assert _b64(SECRET)[:10] not in (r.redact(text) or "")[:100]
    assert MASK not in (r.redact(text[:100]) or "")  # cut first: the half secret is no longer recognised
