"""The one way crm-audit stops the processes it started: the whole tree, politely then firmly.

The demo server, Locust's master and workers, the ``load-worker`` command and the backup
probe's commands all start child processes that may start their own (a shell, a worker
pool, ``pg_dump`` under a script). :func:`stop_processes` ends each root *and every
descendant* (found with psutil before anything is signalled, so none is orphaned unseen):
SIGTERM, a grace period, then SIGKILL for whatever is left; a root started in its own
session (``start_new_session=True``) has its process group killed last, which also reaches
descendants that were already orphaned. Roots given as ``Popen`` objects are reaped, so their
``returncode`` is the real one.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterable
from typing import Any

import psutil

#: seconds between SIGTERM and SIGKILL unless the caller says otherwise
DEFAULT_GRACE_S = 5.0


def stop_processes(procs: Iterable[subprocess.Popen[Any]], grace_s: float = DEFAULT_GRACE_S) -> None:
    """Stop every still-running process of ``procs`` with all its descendants; idempotent.

    ``grace_s`` is how long they get after SIGTERM before SIGKILL; 0 kills at once.
    """
    roots = [p for p in procs if p.poll() is None]
    if not roots:
        for p in procs:
            p.poll()
        return
    descendants = [c for p in roots for c in _descendants(p.pid)]
    groups = [p.pid for p in roots if _leads_own_group(p.pid)]
    first = signal.SIGKILL if grace_s <= 0 else signal.SIGTERM
    for p in roots:
        _signal_popen(p, first)
    for c in descendants:
        _signal_psutil(c, first)
    deadline = time.monotonic() + max(grace_s, 0.0)
    for p in roots:
        try:
            p.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            _signal_popen(p, signal.SIGKILL)
    _, alive = psutil.wait_procs(descendants, timeout=max(0.0, deadline - time.monotonic()))
    for c in alive:
        _signal_psutil(c, signal.SIGKILL)
    for pgid in groups:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    for p in roots:
        p.wait()
    psutil.wait_procs(alive, timeout=1.0)


def _descendants(pid: int) -> list[psutil.Process]:
    try:
        found: list[psutil.Process] = psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []
    return found


def _leads_own_group(pid: int) -> bool:
    """True when ``pid`` leads its own process group (started with ``start_new_session``), not ours."""
    try:
        return os.getpgid(pid) == pid and os.getpgid(pid) != os.getpgrp()
    except (ProcessLookupError, PermissionError):
        return False


def _signal_popen(proc: subprocess.Popen[Any], sig: int) -> None:
    try:
        proc.send_signal(sig)  # a no-op once the process is reaped
    except (ProcessLookupError, PermissionError):
        pass


def _signal_psutil(proc: psutil.Process, sig: int) -> None:
    try:
        proc.send_signal(sig)
    except psutil.Error:
        pass
