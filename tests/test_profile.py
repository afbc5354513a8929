"""Profile loading: every mistake is one line naming the key and the line."""

from __future__ import annotations

from pathlib import Path

import pytest

from crm_audit.profile import ProfileError, load_profile, parse_profile

GOOD = """\
name: t
target:
  base_url: https://crm.example.test
accounts:
  - name: admin
    role: admin
    auth:
      method: login
      url: /login
      username: a@example.test
      password: ${T_ADMIN_PW}
"""


def test_good_profile_resolves_env_and_defaults_scope() -> None:
    p = parse_profile(GOOD, env={"T_ADMIN_PW": "s3cret-value"})
    assert p.target.scope == ["crm.example.test"]
    assert p.account("admin").auth.password.get_secret_value() == "s3cret-value"
    assert "s3cret-value" not in repr(p)
    assert "s3cret-value" in p.secret_values()
    assert len(p.digest) == 64


def test_digest_does_not_depend_on_secret_values() -> None:
    a = parse_profile(GOOD, env={"T_ADMIN_PW": "one-secret"})
    b = parse_profile(GOOD, env={"T_ADMIN_PW": "other-secret"})
    assert a.digest == b.digest


@pytest.mark.parametrize(
    "text, env, expected",
    [
        (GOOD, {}, "p.yaml:11: accounts[0].auth.password: environment variable T_ADMIN_PW is not set"),
        (GOOD.replace("${T_ADMIN_PW}", "hunter22"), {},
         "p.yaml:11: accounts[0].auth.password: secrets must be given as ${ENV_VAR}"),
        ("target:\n  base_url: ftp://x\n", {}, "p.yaml:2: target.base_url: must be an http:// or https:// URL"),
        ("target:\n  base_url: http://x\n  tmeout_s: 3\n", {}, "p.yaml:3: target.tmeout_s: unknown key"),
        ("name: x\n", {}, "p.yaml:1: target: required key is missing"),
        ("target: [\n", {}, "p.yaml:2: not valid YAML"),
        ("- a\n- b\n", {}, "p.yaml: a profile is a YAML mapping"),
        ("target:\n  base_url: http://x\n  rate_limit_rps: 0\n", {}, "p.yaml:3: target.rate_limit_rps: Input should be greater than 0"),
        ("target:\n  base_url: http://x\n  scope: [y]\n", {}, "scope ['y'] does not include the base_url host 'x'"),
        (GOOD + "endpoints:\n  - {name: e, path: /x, account: ghost}\n", {"T_ADMIN_PW": "pw123"},
         "endpoint 'e' names unknown account 'ghost'"),
        (GOOD.replace("method: login", "method: basic").replace("      url: /login\n", "")
         .replace("      username: a@example.test\n", ""), {"T_ADMIN_PW": "pw123"},
         "p.yaml:7: accounts[0].auth: method 'basic' needs username"),
        (GOOD + "access_matrix:\n  ghostrole: {contacts: {read: allow}}\n", {"T_ADMIN_PW": "pw123"},
         "access_matrix role 'ghostrole' has no account"),
    ],
)
def test_bad_profiles_give_one_clear_line(text: str, env: dict, expected: str) -> None:
    with pytest.raises(ProfileError) as info:
        parse_profile(text, source="p.yaml", env=env)
    msg = str(info.value)
    assert expected in msg
    assert "\n" not in msg and "Traceback" not in msg


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="profile file not found"):
        load_profile(tmp_path / "absent.yaml")


def test_ca_bundle_is_resolved_relative_to_the_profile(tmp_path: Path) -> None:
    f = tmp_path / "p.yaml"
    f.write_text("target:\n  base_url: https://h\n  ca_bundle: certs/ca.pem\n")
    (tmp_path / "certs").mkdir()
    (tmp_path / "certs/ca.pem").write_text("PEM")
    assert load_profile(f).target.ca_bundle == str((tmp_path / "certs/ca.pem").resolve())


def test_starter_profile_is_valid() -> None:
    from importlib.resources import files

    text = (files("crm_audit_profiles") / "starter.yaml").read_text()
    p = parse_profile(text, env={"CRM_ADMIN_PASSWORD": "pw-for-test"})
    assert p.allow.writes is False and p.allow.disruptive is False


def test_profile_reference_is_generated_from_the_models() -> None:
    """docs/profile.md is the output of `python -m crm_audit.profile_doc` (regenerate it when a field changes)."""
    from crm_audit.profile_doc import render_installed

    doc = Path(__file__).resolve().parents[1] / "docs" / "profile.md"
    assert doc.read_text() == render_installed()


@pytest.mark.parametrize("text, env, expected", [
    ("target: {base_url: 'https://admin:${PW}@crm.example.test'}\n", {"PW": "pw-1234"},
     "must not hold credentials"),
    (GOOD, {"T_ADMIN_PW": "from-a-file\n"}, "surrounding white space or control characters"),
    ("target: {base_url: 'https://h', headers: {X-Key: \"v \"}}\n", {}, "control characters"),
])
def test_values_that_would_leak_or_break_headers_are_refused(text: str, env: dict, expected: str) -> None:
    with pytest.raises(ProfileError, match=expected) as info:
        parse_profile(text, source="p.yaml", env=env)
    assert "pw-1234" not in str(info.value) and "from-a-file" not in str(info.value)
