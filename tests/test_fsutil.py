"""write_atomic: whole files only, the requested permissions, and the process umask left alone."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from crm_audit.fsutil import write_atomic


def _umask_from_proc() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("Umask:"):
            return int(line.split()[1], 8)
    raise AssertionError("no Umask line in /proc/self/status")


@pytest.fixture()
def umask_027():
    old = os.umask(0o027)
    try:
        yield
    finally:
        os.umask(old)


def test_modes_follow_the_umask_or_the_explicit_mode(tmp_path: Path, umask_027: None) -> None:
    write_atomic(tmp_path / "a.txt", "hello")
    write_atomic(tmp_path / "b.key", b"secret", mode=0o600)
    write_atomic(tmp_path / "c.txt", "wide", mode=0o644)  # explicit: not narrowed by the umask
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in tmp_path.iterdir()}
    assert modes == {"a.txt": 0o640, "b.key": 0o600, "c.txt": 0o644}
    assert (tmp_path / "a.txt").read_text() == "hello"


def test_the_process_umask_is_never_touched(tmp_path: Path, umask_027: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """os.umask is process-wide: setting it, even for an instant, races with probe threads creating files."""
    def no_umask(_mask: int) -> int:
        raise AssertionError("write_atomic called os.umask")

    monkeypatch.setattr(os, "umask", no_umask)
    for i in range(20):
        write_atomic(tmp_path / f"f{i % 3}.txt", f"v{i}")
    assert {stat.S_IMODE(p.stat().st_mode) for p in tmp_path.iterdir()} == {0o640}
    assert _umask_from_proc() == 0o027
    assert not list(tmp_path.glob(".*.tmp"))
