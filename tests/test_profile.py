"""Profile loading: every mistake is one line naming the key and the line."""

from __future__ import annotations

from pathlib import Path

import pytest

from crm_audit.core.profile import ProfileError, load_profile, parse_profile

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
    with pytest.raises(ProfileError, match="cannot read profile file"):
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


BOMB = "\n".join(["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
                 + [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]) + "\ntarget: {base_url: http://h}\n"


@pytest.mark.parametrize("text, env, expected", [
    (BOMB, {}, "p.yaml:5: not valid YAML: more than 50,000 nodes"),
    ("target: &t {base_url: http://h, x: *t}\n", {}, "p.yaml:1: not valid YAML: recursive alias *t"),
    ("target: {base_url: http://h, timeout_s: !!float xyz}\n", {}, "p.yaml:1: not valid YAML: 'xyz' is not a valid float"),
    ("target: {base_url: http://h, verify_tls: !!bool maybe}\n", {}, "'maybe' is not a valid bool"),
    ("target: {base_url: http://h}\nname: 2024-13-45\n", {}, "p.yaml:2: not valid YAML: '2024-13-45' is not a valid timestamp"),
    ("target: {base_url: http://h}\n1: x\nnull: y\n", {}, "Keys should be strings"),
    ("target: {base_url: 'http://127.0.0.1:-1'}\n", {}, "target.base_url: has an invalid port: give 1–65535"),
    ("target: {base_url: 'http://127.0.0.1:65536'}\n", {}, "has an invalid port"),
    ("target: {base_url: http://h}\nendpoints: [{name: e, path: 'http://h:0/x'}]\n", {}, "endpoints[0].path: has an invalid port"),
    ("target: {base_url: http://h}\naccounts: [{name: a, role: r, auth: {method: basic, username: \"u\\r\\nX-Evil: 1\", "
     "password: '${PW}'}}]\n", {"PW": "pw-12345"}, "p.yaml:2: accounts[0].auth.username: must not contain control"),
    ("target: {base_url: http://h, headers: {\"X-A\\nB\": v}}\n", {}, "is not an HTTP token"),
    ("target: {base_url: http://h}\naccounts: [{name: a, role: '${ROLE}'}]\n", {"ROLE": "r" * (1 << 20)},
     "accounts[0].role: is 1,048,576 characters long; at most 200"),
    ("target: {base_url: http://h}\naccounts: [{name: a, role: r, auth: {method: bearer, token: '${T}'}}]\n",
     {"T": "tok\u20ac-euro"}, "token is sent in an HTTP header, so it must be Latin-1"),
    ("target: {base_url: http://h}\nname: '${" + "N" * 300_000 + "}'\n", {}, "environment variable NNNN"),
    ("target: {base_url: http://h}\nevidence: missing.yaml\n", {}, "evidence: cannot read evidence file"),
    ("target: {base_url: http://h}\nhierarchy: nowhere/h.yaml\n", {}, "hierarchy: cannot read hierarchy file"),
    ("target: {base_url: https://h, ca_bundle: ca.pem}\n", {}, "p.yaml:1: target.ca_bundle: cannot read CA bundle file"),
], ids=lambda v: str(v)[:40].replace("\n", " ") if isinstance(v, str) else None)
def test_hostile_values_are_one_bounded_profile_error(tmp_path: Path, text: str, env: dict, expected: str) -> None:
    import time

    t0 = time.perf_counter()
    with pytest.raises(ProfileError) as info:
        parse_profile(text, source="p.yaml", base_dir=tmp_path, env=env)
    msg = str(info.value)
    assert time.perf_counter() - t0 < 2
    assert expected in msg, msg
    assert "\n" not in msg and "\r" not in msg and len(msg) <= 400
    assert not any(v in msg for v in env.values() if len(v) > 4)


def test_anchors_and_merge_keys_still_work() -> None:
    p = parse_profile("target: {base_url: http://h}\naccounts:\n"
                      "  - {name: a, role: r, auth: &auth {method: login, url: /login, username: u, password: '${PW}'}}\n"
                      "  - {name: b, role: r, auth: {<<: *auth, username: v}}\n", env={"PW": "pw-12345"})
    assert p.account("b").auth.url == "/login" and p.account("b").auth.username == "v"
