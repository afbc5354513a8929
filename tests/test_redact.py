"""The redactor masks declared secrets and credential-shaped values it was never told about."""

from __future__ import annotations

import pytest

from crm_audit.redact import MASK, Redactor


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
