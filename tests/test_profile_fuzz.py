"""Hostile profiles: a few hundred seeded mutations of profiles/demo.yaml through `crm-audit validate`.

Every case must end with exit 0 or 2 (never 3, never a traceback), one bounded error line,
no secret in the output, in under 2 s; the mutations that must be refused (alias bombs,
bad tags, control characters, bad ports, huge strings, missing files …) must exit 2.
Most cases run in-process through click's CliRunner; a handful through a real subprocess.
"""

from __future__ import annotations

import copy
import os
import random
import re
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from crm_audit.cli import cli
from crm_audit.core.profile import MAX_ERROR_CHARS
from crm_audit_demo.config import DEMO_USERS

ROOT = Path(__file__).resolve().parents[1]
DEMO = (ROOT / "profiles" / "demo.yaml").read_text(encoding="utf-8")
SEED = 20240617
CASES = 300
MAX_CASE_S = 2.0
# every seeded account's password variable, from the demo itself (a new account cannot be forgotten here)
PASSWORDS = {u.password_env: f"pw-{u.password_env.lower()}-Zq81x" for u in DEMO_USERS}
SECRETS = {**PASSWORDS, "DEMO_API_KEY": "key-Zq81x-4242"}
BIG = "r" * (1 << 20)  # 1 MiB, only ever through the environment or in-process


@dataclass
class Case:
    name: str
    text: str
    must_fail: bool


BOMB = "\n".join(
    [f"l0: &l0 [{', '.join(['lol'] * 9)}]"]
    + [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 9)]
) + "\n"

TAGGED = ["!!bool maybe", "!!int abc", "!!float xyz", "!!timestamp 2024-13-45", "2024-13-45", "!!binary '@@@'",
          "!!python/object/apply:os.system [id]", "!!omap [a]", "!custom x", "!!null notnull", "!!int 1" + "0" * 5000,
          "*undefined_alias", "&a [*a]", "&b {k: *b}", "!!set {a, b}", "!!str", "[" * 300, "{" * 300]
CONTROL = ["u\r\nX-Evil: 1", "a\x00b", "tab\there", "del\x7f", "line\u2028sep", "bell\x07", "\x1b[31mred"]
PORTS = ["http://127.0.0.1:-1", "http://127.0.0.1:0", "https://127.0.0.1:65536", "http://127.0.0.1:abc",
         "http://127.0.0.1:99999999999999999999", "http://[::1", "http://", "ftp://127.0.0.1/"]
WRONG_TYPES: list[Any] = [None, 0, -1, 3.5, True, [], {}, ["x"], {"x": 1}, "", "x" * 300, 10**30, float("nan")]


def _scalar_spans(text: str) -> list[tuple[int, int]]:
    """Positions of plain scalar values after ``key: `` (block and flow style)."""
    return [m.span(2) for m in re.finditer(r"(\w: +)([^\s{}\[\],#&*!|>'\"][^,}\]\n#]*)", text)]


def _paths(obj: Any, path: tuple = ()) -> list[tuple]:
    out = [path]
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _paths(v, path + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += _paths(v, path + (i,))
    return out


def _set(data: Any, path: tuple, value: Any) -> Any:
    if not path:
        return value
    parent = data
    for p in path[:-1]:
        parent = parent[p]
    parent[path[-1]] = value
    return data


def _dump(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=10**9)


def _at(data: Any, *path: Any) -> Any:
    for p in path:
        data = data[p]
    return data


class Gen:
    """Seeded mutations; each returns (name, text, must_fail)."""

    def __init__(self, rng: random.Random, tmp: Path) -> None:
        self.rng, self.tmp = rng, tmp
        self.base = yaml.safe_load(DEMO)

    def data(self) -> Any:
        return copy.deepcopy(self.base)

    def tag(self) -> Case:
        spans = _scalar_spans(DEMO)
        start, end = self.rng.choice(spans)
        value = self.rng.choice(TAGGED)
        must = not value.startswith(("!!str", "!!set", "!!omap", "!!binary")) and "!!null" not in value
        return Case(f"tag {value[:20]!r}", DEMO[:start] + value + DEMO[end:], must)

    def bomb(self) -> Case:
        nested = self.rng.random() < 0.5
        text = DEMO + ("extra:\n" + textwrap.indent(BOMB, "  ") if nested else BOMB)
        return Case(f"alias bomb ({'nested' if nested else 'top level'})", text, True)

    def recursive(self) -> Case:
        body = self.rng.choice(["&r [*r]", "&r {a: *r}", "&r {<<: *r}", "&r [[[*r]]]", "&r {a: [b, {c: *r}]}"])
        return Case(f"recursive {body}", DEMO + f"loop: {body}\n", True)

    def wrong_type(self) -> Case:
        data = self.data()
        path = self.rng.choice(_paths(data)[1:])
        value = self.rng.choice(WRONG_TYPES)
        return Case(f"{'.'.join(map(str, path))} = {str(value)[:20]!r}", _dump(_set(data, path, value)), False)

    def control(self) -> Case:
        data = self.data()
        bad = self.rng.choice(CONTROL)
        spot = self.rng.choice([("accounts", 0, "auth", "username"), ("accounts", 1, "name"), ("accounts", 2, "role"),
                                ("accounts", 0, "auth", "url"), ("endpoints", 0, "path"), ("name",),
                                ("target", "headers"), ("target", "headers", "k"), ("accounts", 8, "auth", "header")])
        if spot[-1] == "headers":
            _at(data, "target")["headers"] = {bad: "v"}
        elif spot[-1] == "k":
            _at(data, "target")["headers"] = {"X-Custom": bad}
        else:
            _set(data, spot, bad)
        return Case(f"control char in {'.'.join(map(str, spot))}", _dump(data), True)

    def port(self) -> Case:
        data = self.data()
        url = self.rng.choice(PORTS)
        if self.rng.random() < 0.5:
            data["target"]["base_url"] = url
            data["target"].pop("ca_bundle")
        else:
            data["endpoints"][0]["path"] = url.replace("127.0.0.1", "127.0.0.1") + "/x"
            if url.startswith(("ftp", "http://[")) or url == "http://":
                data["endpoints"][0]["path"] = "http://127.0.0.1:-5/x"
        return Case(f"port {url}", _dump(data), True)

    def huge(self) -> Case:
        data = self.data()
        size = self.rng.choice([201, 5000, 300_000])
        spot = self.rng.choice([("accounts", 0, "role"), ("accounts", 0, "name"), ("name",), ("endpoints", 1, "name"),
                                ("flows", 0, "name"), ("accounts", 3, "tenant"), ("target", "health_path")])
        if spot == ("target", "health_path"):
            size = max(size, 3000)
        _set(data, spot, "x" * size)
        return Case(f"{size} chars in {'.'.join(map(str, spot))}", _dump(data), True)

    def huge_env(self) -> Case:
        data = self.data()
        choice = self.rng.choice(["role", "name", "key"])
        if choice == "key":
            data["name"] = "${" + "N" * self.rng.choice([300, 100_000]) + "}"
        else:
            data["accounts"][1][choice] = "${BIG}"
        return Case(f"huge via env ({choice})", _dump(data), True)

    def missing_file(self) -> Case:
        data = self.data()
        key = self.rng.choice(["evidence", "waivers", "hierarchy", "ca_bundle", "ca_folder"])
        if key == "ca_bundle":
            data["target"]["ca_bundle"] = "no-such-ca.pem"
        elif key == "ca_folder":
            data["target"]["ca_bundle"] = str(self.tmp)
        else:
            data[key] = f"no-such-{key}.yaml"
        return Case(f"missing {key}", _dump(data), True)

    def odd_key(self) -> Case:
        data = self.data()
        mappings = [p for p in _paths(data) if isinstance(_at(data, *p), dict)]
        target = _at(data, *self.rng.choice(mappings))
        key = self.rng.choice([1, None, True, 2.5, -7])
        target[key] = "x"
        return Case(f"non-string key {key!r}", _dump(data), True)

    def broken_text(self) -> Case:
        pos = self.rng.randrange(len(DEMO))
        how = self.rng.choice(["cut", "insert", "dup_line", "drop_line"])
        if how == "cut":
            text = DEMO[:pos]
        elif how == "insert":
            text = DEMO[:pos] + self.rng.choice(["\t", ":", "- ", "{", "]", "'", "\"", "&", "*", "%", "@", "`",
                                                 "\x00", "\ufeff", "---\n", "...\n"]) + DEMO[pos:]
        else:
            lines = DEMO.splitlines(keepends=True)
            i = self.rng.randrange(len(lines))
            lines[i:i + 1] = [lines[i], lines[i]] if how == "dup_line" else []
            text = "".join(lines)
        return Case(f"text {how} at {pos}", text, False)

    def deep(self) -> Case:
        depth = self.rng.choice([150, 2000])
        return Case(f"nesting {depth}", DEMO + "deep: " + "[" * depth + "]" * depth + "\n", True)

    def merge(self) -> Case:
        """Anchors and merge keys used properly must still load (exit 0)."""
        text = DEMO.replace("tenant: acme, auth: {method: login", "tenant: acme, auth: &login {method: login", 1)
        text = text.replace("auth: {method: login, url: /api/auth/login, username: manager",
                            "auth: {<<: *login, username: manager", 1)
        assert text.count("*login") == 1
        return Case("merge keys", text, False)


KINDS = ["tag", "bomb", "recursive", "wrong_type", "control", "port", "huge", "huge_env", "missing_file",
         "odd_key", "broken_text", "deep", "wrong_type", "broken_text", "tag"]


def generate(tmp: Path, n: int = CASES, seed: int = SEED) -> list[Case]:
    rng = random.Random(seed)
    gen = Gen(rng, tmp)
    cases = [gen.merge()]
    for i in range(n - 1):
        cases.append(getattr(gen, KINDS[i % len(KINDS)])())
    return cases


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    tmp = tmp_path_factory.mktemp("fuzz")
    ca = tmp / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n")
    return {"DEMO_BASE_URL": "https://127.0.0.1:8443", "DEMO_CA_BUNDLE": str(ca), "BIG": BIG, **SECRETS}


def _check_output(case: Case, code: int, out: str, elapsed: float) -> None:
    label = f"{case.name}: exit {code}: {out[:300]!r}"
    assert code in (0, 2), label
    assert "Traceback" not in out and "internal error" not in out, label
    assert elapsed < MAX_CASE_S, f"{case.name}: took {elapsed:.2f} s"
    assert not any(s in out for s in SECRETS.values()), label
    if case.must_fail:
        assert code == 2, label
    errors = [line for line in out.splitlines() if line.startswith("crm-audit: error:")]
    if code == 2:
        assert len(errors) == 1, label
        assert len(errors[0]) <= MAX_ERROR_CHARS + len("crm-audit: error: "), label


def test_base_profile_and_merge_keys_are_valid(tmp_path: Path, env: dict[str, str]) -> None:
    for case in generate(tmp_path, n=1):
        prof = tmp_path / "p.yaml"
        prof.write_text(case.text, encoding="utf-8")
        res = CliRunner().invoke(cli, ["validate", str(prof)], env=env)
        assert res.exit_code == 0, res.output


def test_hundreds_of_hostile_profiles_end_in_exit_0_or_2_quickly(tmp_path: Path, env: dict[str, str]) -> None:
    runner = CliRunner()
    cases = generate(tmp_path)
    codes: dict[int, int] = {}
    for i, case in enumerate(cases):
        prof = tmp_path / f"p{i}.yaml"
        prof.write_text(case.text, encoding="utf-8", errors="surrogatepass")
        t0 = time.perf_counter()
        res = runner.invoke(cli, ["validate", str(prof)], env=env)
        elapsed = time.perf_counter() - t0
        assert res.exception is None or isinstance(res.exception, SystemExit), f"{case.name}: {res.exception!r}"
        _check_output(case, res.exit_code, res.output, elapsed)
        codes[res.exit_code] = codes.get(res.exit_code, 0) + 1
    assert codes.get(2, 0) > len(cases) // 2, codes  # the mutations mostly break the profile
    assert sum(c.must_fail for c in cases) > 100


@pytest.mark.parametrize("kind", ["bomb", "recursive", "tag", "control", "huge_env", "odd_key"])
def test_real_validate_subprocess_refuses_hostile_profile(tmp_path: Path, env: dict[str, str], kind: str) -> None:
    """The same path through a real `crm-audit validate` process (exit 2, one line, bounded time)."""
    gen = Gen(random.Random(SEED), tmp_path)
    case = getattr(gen, kind)()
    case.must_fail = case.must_fail or kind != "tag"
    prof = tmp_path / "p.yaml"
    prof.write_text(case.text, encoding="utf-8")
    sub_env = {**os.environ, **env, "BIG": "r" * 100_000}  # argv/env strings are capped at 128 KiB by the kernel
    sub_env.pop("CRM_AUDIT_DEBUG", None)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "crm_audit", "validate", str(prof)], capture_output=True, text=True,
                          env=sub_env, timeout=60)
    elapsed = time.perf_counter() - t0
    _check_output(case, proc.returncode, proc.stdout + proc.stderr, 0.0)
    assert elapsed < 20, f"{case.name}: a whole process took {elapsed:.1f} s"  # interpreter start-up included
