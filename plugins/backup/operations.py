"""Backup operations: an HTTP call through the audit's Target, or a local command.

A profile describes each operation (trigger_backup, list_backups, download_backup, restore,
health, delete_backup) either as ``{http: {...}}`` or as ``{command: "...", timeout_s, env}``.
Commands run without a shell by default, with a timeout, in their own process group (killed on
timeout or when the audit is cancelled), with captured output that is bounded (at most
``OUTPUT_MAX_BYTES`` kept, the rest drained and counted) and redacted before it is kept.
Secrets reach a command only through ``env`` (resolved from ``${ENV}`` by the profile loader);
a command line that would carry one of them is refused.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from crm_audit.core.adapter import dig
from crm_audit.core.model import Evidence, NotAssessed
from crm_audit.core.probe import ProbeContext
from crm_audit.core.processes import stop_processes

OUTPUT_KEEP_CHARS = 2000
#: most bytes of a command's output kept (enough for a JSON backup list); the rest is drained, not kept
OUTPUT_MAX_BYTES = 4 << 20
_READ_CHUNK = 64 << 10


class HttpOp(BaseModel):
    """One HTTP call; ``{id}`` in the path is the backup id."""

    model_config = ConfigDict(extra="forbid")
    method: str = "GET"
    path: str
    account: str | None = Field(None, description="account to call as (default: the probe's operator account)")
    anonymous: bool = Field(False, description="call without credentials (e.g. a public health check)")
    body: dict[str, Any] | None = None
    items_path: str | None = Field(None, description="where the list of backups is in the response")
    id_field: str = "id"
    created_at_field: str = "created_at"
    checksum_field: str | None = Field(None, description="field of a backup entry holding its checksum")
    checksum_header: str | None = Field(None, description="download response header holding the checksum")
    timeout_s: float = Field(120.0, gt=0, le=7200)


class OperationSpec(BaseModel):
    """``{http: {...}}`` or ``{command: "...", timeout_s, env, shell}``."""

    model_config = ConfigDict(extra="forbid")
    http: HttpOp | None = None
    command: str | None = Field(None, description="placeholders: {backup_path} {backup_id} {backup_dir} {run_id}")
    timeout_s: float = Field(600.0, gt=0, le=86_400)
    env: dict[str, str] = Field(default_factory=dict, description="extra env vars; give secrets as ${ENV}")
    shell: bool = Field(False, description="run through /bin/sh (pipes); placeholders are shell-quoted")
    items_path: str | None = Field(None, description="list_backups command: where the list is in its JSON output")
    id_field: str = "id"
    created_at_field: str = "created_at"
    checksum_field: str | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> OperationSpec:
        if (self.http is None) == (self.command is None):
            raise ValueError("give exactly one of 'http' or 'command'")
        return self

    @property
    def kind(self) -> str:
        return "http" if self.http is not None else "command"

    # parse settings, whichever kind the operation is
    @property
    def p_items_path(self) -> str | None:
        return self.http.items_path if self.http else self.items_path

    @property
    def p_id_field(self) -> str:
        return self.http.id_field if self.http else self.id_field

    @property
    def p_created_at_field(self) -> str:
        return self.http.created_at_field if self.http else self.created_at_field

    @property
    def p_checksum_field(self) -> str | None:
        return self.http.checksum_field if self.http else self.checksum_field


class Operations(BaseModel):
    """The backup hooks of one CRM; any may be missing (its checks are then skipped)."""

    model_config = ConfigDict(extra="forbid")
    trigger_backup: OperationSpec | None = None
    list_backups: OperationSpec | None = None
    download_backup: OperationSpec | None = None
    restore: OperationSpec | None = None
    health: OperationSpec | None = None
    delete_backup: OperationSpec | None = Field(
        None, description="deletes one backup ({id} / {backup_id}); the probe deletes every backup it created")


@dataclass
class OpResult:
    """What one operation did: success, HTTP status or exit code, timing, data, kept evidence."""

    name: str
    ok: bool
    status: int | None = None
    elapsed_s: float = 0.0
    data: Any = None
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    error: str | None = None
    evidence: Evidence | None = None
    #: why this result cannot be judged (no answer, 5xx, timed out, cut by the audit's own cap);
    #: None when it is a real answer (success, a 4xx refusal, or a command's exit code)
    not_assessed: NotAssessed | None = None
    #: the output or body went over the audit's byte cap and was cut
    truncated: bool = False

    def items(self, spec: OperationSpec) -> list[dict[str, Any]] | None:
        """The backup entries of a list response (``items_path``), dicts only; None when unreadable."""
        data = dig(self.data, spec.p_items_path)
        if data is None and isinstance(self.data, list):
            data = self.data
        return [i for i in data if isinstance(i, dict)] if isinstance(data, list) else None


def run_http(ctx: ProbeContext, name: str, op: HttpOp, operator: str | None, backup_id: Any = None,
             account: str | None | bool = False, max_bytes: int | None = None) -> OpResult:
    """Send one HTTP operation through ``ctx.target``; ``account`` overrides who calls (None: anonymous).

    A body longer than ``max_bytes`` is cut to it and the result marked ``truncated``
    (not assessed: the audit's own byte cap).
    """
    path = op.path.replace("{id}", str(backup_id)) if backup_id is not None else op.path
    who: str | None
    if account is not False:
        who = account  # type: ignore[assignment]
    elif op.anonymous:
        who = None
    else:
        who = op.account or operator
    ex = ctx.target.request(op.method, path, account=who, json=op.body, timeout=op.timeout_s)
    if ex.status == 401 and who is not None and account is False:
        ctx.target.forget_token(who)  # a restore may have reset sessions: log in again once
        ex = ctx.target.request(op.method, path, account=who, json=op.body, timeout=op.timeout_s)
    body, truncated = ex.body, False
    if max_bytes is not None and len(body) > max_bytes:
        body, truncated = body[:max_bytes], True
    return OpResult(name=name, ok=ex.ok, status=ex.status, elapsed_s=ex.elapsed_s,
                    data=None if truncated else ex.json_or_none(), body=body, headers=dict(ex.headers),
                    error=ex.error or (None if ex.ok else f"HTTP {ex.status}"), evidence=ex.evidence(),
                    not_assessed=NotAssessed.audit_limit if truncated else ex.not_assessed, truncated=truncated)


def fill_command(spec: OperationSpec, values: Mapping[str, Any]) -> list[str] | str:
    """The argv (or shell line) with placeholders filled; values are quoted for a shell."""
    assert spec.command is not None
    if spec.shell:
        line = spec.command
        for k, v in values.items():
            line = line.replace("{" + k + "}", shlex.quote(str(v)))
        return line
    argv = shlex.split(spec.command)
    out = []
    for arg in argv:
        for k, v in values.items():
            arg = arg.replace("{" + k + "}", str(v))
        out.append(arg)
    return out


def run_command(name: str, spec: OperationSpec, values: Mapping[str, Any], redact: Callable[[str], str],
                cancel: threading.Event | None = None, cwd: str | None = None) -> OpResult:
    """Run a command operation with its timeout; stop its whole process group on timeout/cancel."""
    cmd = fill_command(spec, values)
    shown_line = cmd if isinstance(cmd, str) else shlex.join(cmd)
    secrets = [v for v in spec.env.values() if len(v) >= 4]
    shown = redact(shown_line)
    details = {"env": sorted(spec.env), "timeout_s": spec.timeout_s}
    if any(s in shown_line for s in secrets):
        msg = "refused: a secret from 'env' would appear on the command line; pass it only through env"
        return OpResult(name=name, ok=False, error=msg, not_assessed=NotAssessed.not_configured,
                        evidence=Evidence(request=f"$ {shown}", excerpt=msg, details=details))
    env = {**os.environ, **spec.env}
    t0 = time.perf_counter()
    try:
        proc = subprocess.Popen(cmd, shell=spec.shell, env=env, cwd=cwd, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    except OSError as exc:
        msg = redact(f"cannot start: {exc.strerror or exc}")
        return OpResult(name=name, ok=False, error=msg, elapsed_s=time.perf_counter() - t0,
                        not_assessed=NotAssessed.request_failed,
                        evidence=Evidence(request=f"$ {shown}", excerpt=msg, details=details))
    out = BoundedOutput(OUTPUT_MAX_BYTES)
    reader = threading.Thread(target=out.drain, args=(proc.stdout,), daemon=True)
    reader.start()
    deadline = t0 + spec.timeout_s
    stopped: str | None = None
    while proc.poll() is None:
        if cancel is not None and cancel.is_set():
            stopped = "cancelled"
        elif time.perf_counter() > deadline:
            stopped = f"timed out after {spec.timeout_s:g} s"
        if stopped:
            stop_processes([proc], grace_s=0)  # the command, its children and its process group
            break
        time.sleep(0.05)
    proc.wait()
    reader.join(5)
    elapsed = time.perf_counter() - t0
    output = out.head.decode("utf-8", "replace")
    kept = (redact(out.tail.decode("utf-8", "replace")) or "")[-OUTPUT_KEEP_CHARS:]  # redact, then cut
    rc = proc.returncode
    ok = stopped is None and rc == 0
    error = stopped or (None if ok else f"exit code {rc}")
    data = _json_or_none(output) if ok and not out.truncated else None
    details = {**details, "output_bytes": out.total, **({"output_kept_bytes": OUTPUT_MAX_BYTES} if out.truncated else {})}
    why = (NotAssessed.interrupted if stopped == "cancelled" else NotAssessed.timed_out) if stopped else None
    return OpResult(name=name, ok=ok, status=rc, elapsed_s=elapsed, data=data, body=out.head, error=error,
                    not_assessed=why, truncated=out.truncated,
                    evidence=Evidence(request=f"$ {shown}", status=rc, excerpt=kept,
                                      observed=error or "exit code 0", details=details))


class BoundedOutput:
    """A command's output read to the end, keeping at most ``limit`` bytes from the start and a short tail."""

    def __init__(self, limit: int, tail_bytes: int = 4 * OUTPUT_KEEP_CHARS) -> None:
        self.limit = limit
        self.tail_bytes = tail_bytes
        self._head = bytearray()
        self.tail = b""
        self.total = 0

    @property
    def head(self) -> bytes:
        return bytes(self._head)

    @property
    def truncated(self) -> bool:
        return self.total > len(self._head)

    def drain(self, stream: Any) -> None:
        """Read ``stream`` until EOF in chunks; memory stays within limit + tail whatever it sends."""
        if stream is None:
            return
        while chunk := stream.read1(_READ_CHUNK) if hasattr(stream, "read1") else stream.read(_READ_CHUNK):
            self.add(chunk)

    def add(self, chunk: bytes) -> None:
        self.total += len(chunk)
        room = self.limit - len(self._head)
        if room > 0:
            self._head += chunk[:room]
        self.tail = (self.tail + chunk)[-self.tail_bytes:]


def _json_or_none(text: str) -> Any:
    import json

    try:
        return json.loads(text)
    except ValueError:
        return None
