"""crm_audit.core.processes and crm_audit.core.net: the one process-tree stopper and the one port helper.

Real processes are started and the test asks the kernel afterwards whether they still exist.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil

from crm_audit.core.net import free_port
from crm_audit.core.processes import stop_processes

# a parent that starts a child, which starts a grandchild; each writes its pid, then sleeps.
# IGNORE_TERM=1 makes every one of them ignore SIGTERM, so only SIGKILL ends them.
TREE = r"""
import os, signal, subprocess, sys, time
depth, out, ignore = int(sys.argv[1]), sys.argv[2], sys.argv[3] == "1"
if ignore:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
with open(os.path.join(out, f"pid{depth}"), "w") as fh:
    fh.write(str(os.getpid()))
if depth < 2:
    subprocess.Popen([sys.executable, __file__, str(depth + 1), out, sys.argv[3]])
time.sleep(120)
"""


def _start_tree(tmp_path: Path, ignore_term: bool, new_session: bool = True) -> tuple[subprocess.Popen[bytes], list[int]]:
    script = tmp_path / "tree.py"
    script.write_text(TREE)
    proc = subprocess.Popen([sys.executable, str(script), "0", str(tmp_path), "1" if ignore_term else "0"],
                            start_new_session=new_session)
    deadline = time.monotonic() + 20
    while not (tmp_path / "pid2").exists():
        assert time.monotonic() < deadline, "the process tree did not start"
        time.sleep(0.05)
    time.sleep(0.2)  # the grandchild has written its pid; let it reach sleep()
    return proc, [int((tmp_path / f"pid{i}").read_text()) for i in range(3)]


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _gone_within(pids: list[int], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while any(_alive(p) for p in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_stops_the_whole_tree_with_sigterm(tmp_path: Path) -> None:
    proc, pids = _start_tree(tmp_path, ignore_term=False)
    assert all(_alive(p) for p in pids)
    t0 = time.monotonic()
    stop_processes([proc], grace_s=5)
    assert _gone_within(pids, 5), [p for p in pids if _alive(p)]
    assert time.monotonic() - t0 < 4, "SIGTERM was enough: no need to wait out the grace period"
    assert proc.returncode == -15  # the root was reaped with its real status


def test_kills_what_ignores_sigterm_after_the_grace(tmp_path: Path) -> None:
    proc, pids = _start_tree(tmp_path, ignore_term=True, new_session=False)
    t0 = time.monotonic()
    stop_processes([proc], grace_s=0.5)
    assert _gone_within(pids, 5), [p for p in pids if _alive(p)]
    assert time.monotonic() - t0 >= 0.5
    assert proc.returncode == -9


def test_orphans_of_a_session_are_reached_through_its_group(tmp_path: Path) -> None:
    proc, pids = _start_tree(tmp_path, ignore_term=True)
    psutil.Process(pids[1]).kill()  # the grandchild is orphaned: no longer below the root
    assert _gone_within([pids[1]], 5)
    assert _alive(pids[2]) and pids[2] not in [c.pid for c in psutil.Process(proc.pid).children(recursive=True)]
    stop_processes([proc], grace_s=0)
    assert _gone_within(pids, 5), [p for p in pids if _alive(p)]


def test_idempotent_and_finished_processes(tmp_path: Path) -> None:
    done = subprocess.Popen([sys.executable, "-c", "pass"])
    done.wait()
    stop_processes([done])
    stop_processes([done])
    stop_processes([])
    assert done.returncode == 0


def test_free_port_is_bindable() -> None:
    port = free_port()
    assert 0 < port < 65536
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", port))
