"""Robust error handling: missing, malformed and other owners' ids, bodies of the wrong shape, existence oracles.

Every discovered item operation (an operation with one id parameter: read, update, delete,
or a described ``METHOD /path/{id}``) is sent a missing id (a large integer, or an absent
UUID when the API's ids are UUIDs) and a malformed one; reads always, writes only with
``allow.writes`` and only where a read of the same id did not find a record. Wrong-shape
bodies (a wrong field type, an oversized value, a JSON array instead of an object, a wrong
content type) go only to the configured resources' create and to the audit's own records'
update. Other accounts' ids are only the audit's own tagged canaries. A 5xx (or an error the
CRM reports as a failure, such as a JSON-RPC ``ServerError``) is a finding, one per (check,
operation) with a replayable request; no answer is not assessed. Anything a probe created
by accident is found by the run tag and removed through ``ctx.defer``. Everything is bounded
by ``max_error_probes`` and ``max_body_probes``; the id probes go out ``surface_workers`` at a time
(reads first, then the writes they allow).
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from itertools import groupby
from typing import Any

from crm_audit.core.adapter import Adapter, Operation, flat
from crm_audit.core.model import Evidence, NotAssessed, Severity, Status
from crm_audit.core.profile import Account
from crm_audit.core.target import Exchange

from .common import HINT_WRITES, INDICATOR_ACCESS, INDICATOR_HARDENING, AccessRun, refs, slug
from .discovery import discovered_surface
from .hardening import trace_kinds

CHECK_MISSING = "access.errors.server_error_on_missing_id"
CHECK_MALFORMED_ID = "access.errors.server_error_on_malformed_id"
CHECK_BODY = "access.errors.server_error_on_malformed_body"
CHECK_ORACLE = "access.errors.existence_oracle"

#: a large integer id no CRM of audit size holds (fits a signed 32-bit column)
MISSING_INT = 999_999_937
#: a UUID-shaped id that is absent (version 4 layout, all zeros but the variant bits)
MISSING_UUID = "00000000-0000-4000-8000-00000000c0de"
#: an id no id parser accepts (a quote shows SQL built by string concatenation)
MALFORMED_ID = "not-an-id'"
#: the oversized value sent in a text field (bounded: 64 KiB)
OVERSIZED = 64 * 1024
#: state-changing paths never sent a write, even with a missing id
_UNSAFE = re.compile(r"(?i)(log-?out|sign-?out|revoke|reset|restore|trigger|shutdown|purge|flush|import|upload|"
                     r"password|activate|deactivate|status)")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_WRITE_METHODS = ("PUT", "PATCH", "DELETE", "POST")


@dataclass
class _Result:
    """What one check's probes showed: 5xx per operation, unanswered ones, and how many were judged."""

    hits: dict[str, list[tuple[Operation, str, Exchange]]] = field(default_factory=dict)
    silent: list[Exchange] = field(default_factory=list)
    judged: int = 0
    left_out: int = 0

    def record(self, run: AccessRun, op: Operation, kind: str, ex: Exchange) -> None:
        if server_failed(run, ex):
            self.hits.setdefault(op.name, []).append((op, kind, ex))
        elif not ex.answered or ex.status in (502, 503, 504):
            self.silent.append(ex)
        else:
            self.judged += 1


def server_failed(run: AccessRun, ex: Exchange) -> bool:
    """The CRM answered and said it failed: a 5xx of the application (not a gateway's 502/503/504), or an
    error the adapter reads as a failure of the CRM (a JSON-RPC ``ServerError`` in a 200 body)."""
    if not ex.answered or ex.status in (502, 503, 504):
        return False
    return (ex.status or 0) >= 500 or run.outcome(ex) == "error"


def replay(ex: Exchange, max_body: int = 600) -> str:
    """A curl command line that repeats the request (credentials as a placeholder, body redacted and cut)."""
    ev = ex.evidence(0)
    url = (ev.request or "").split("  (as ", 1)[0].split(" ", 1)[-1]
    parts = ["curl", "-X", ex.method, shlex.quote(url)]
    if ex.account:
        parts += ["-H", shlex.quote(f"<credentials of account {ex.account}>")]
    ctype = ex.request_headers.get("Content-Type") or ex.request_headers.get("content-type")
    if ctype:
        parts += ["-H", shlex.quote(f"Content-Type: {ctype}")]
    if ex.request_body:
        body = ex.request_body.decode("utf-8", "replace")
        if ex._redactor is not None:
            body = ex._redactor.redact(body) or ""
        if len(body) > max_body:
            body = body[:max_body] + f"…({len(ex.request_body)} bytes in all)"
        parts += ["--data", shlex.quote(body)]
    return " ".join(parts)


def _evidence(ex: Exchange, expected: str, what: str) -> Evidence:
    return ex.evidence(200, expected=expected, observed=f"{ex.status} ({what})", details={"replay": replay(ex)})


# ---------------------------------------------------------------------- sending


def _missing_for(run: AccessRun, op: Operation) -> Any:
    """A missing id shaped like the ids the operation takes (seen in list answers): an absent UUID when they are
    UUIDs, else a large integer — a differently shaped id would only be a malformed one."""
    surface = discovered_surface(run)
    seen = surface.sample_ids.get(op.name) or [i for ids in surface.sample_ids.values() for i in ids]
    return MISSING_UUID if any(isinstance(i, str) and _UUID.match(i) for i in seen) else MISSING_INT


def absent_like(rid: Any) -> Any:
    """An id of the same shape as ``rid`` that no record has (to compare a hidden record with a missing one)."""
    if isinstance(rid, int) or (isinstance(rid, str) and rid.isdigit()):
        return MISSING_INT if isinstance(rid, int) else str(MISSING_INT)
    text = str(rid)
    if _UUID.match(text):
        return MISSING_UUID
    if re.fullmatch(r"[0-9a-fA-F]{8,}", text):
        return "0" * (len(text) - 4) + "c0de"
    return text[:-1] + ("x" if text[-1:] != "x" else "y")


def _item_ops(run: AccessRun) -> list[Operation]:
    """Operations with one id parameter, the configured resources' first, each request once."""
    ops = [o for o in discovered_surface(run).operations if len(o.params) == 1
           and (o.action in ("read", "update", "delete") or (o.action is None and o.method in ("GET",) + _WRITE_METHODS))]
    wanted = set(run.resources())
    ops = [o for o in ops if o.resource is None or o.resource in wanted]
    return sorted(ops, key=lambda o: (o.resource is None, run.resources().index(o.resource) if o.resource else 0))


def _method(op: Operation) -> str:
    if op.method and op.path:
        return op.method
    return {"read": "GET", "update": "PATCH", "delete": "DELETE"}.get(op.action or "", "POST")


def _path_key(op: Operation) -> str:
    """Which record an operation addresses: its path template when the id is in the path (REST: a described
    POST on /contacts/{pk}/ and the resource's GET share it), else its resource (RPC: one endpoint for all)."""
    if op.path and "{" in op.path:
        return re.sub(r"\{[^}]+\}", "{}", op.path).rstrip("/")
    return op.resource or op.name


def _sender(adapter: Adapter, op: Operation, rid: Any, caller: str | None,
            body: dict[str, Any] | None = None) -> Callable[[], Exchange]:
    """How to send ``op`` for id ``rid``: the adapter's record methods for resource operations, else ``call``."""
    if op.resource and op.action == "read":
        return lambda: adapter.read(op.resource or "", rid, caller)[1]
    if op.resource and op.action == "update":
        return lambda: adapter.update(op.resource or "", rid, caller, body)[1]
    if op.resource and op.action == "delete":
        return lambda: adapter.delete(op.resource or "", rid, caller)
    return lambda: adapter.call(op, {op.params[0]: rid}, caller)[1]


def _prober(run: AccessRun) -> Account | None:
    """The account that sends the id probes: the most privileged general account (it may write)."""
    accts = sorted(run.general_accounts(), key=lambda a: -run.privilege(a.role))
    return accts[0] if accts else None


def _note_traces(run: AccessRun, ex: Exchange) -> None:
    """Error answers that leak stack traces, for ``access.errors.stack_trace`` (hardening reads the note)."""
    if ex.status is None or ex.status < 400:
        return
    kinds = trace_kinds(ex)
    leaks = run.notes.setdefault("trace_leaks", [])
    if kinds and len(leaks) < 5:
        leaks.append(ex.evidence(200, expected="a short error message", observed=", ".join(kinds),
                                 details={"replay": replay(ex)}))


# ---------------------------------------------------------------------- the checks


def check_robustness(run: AccessRun) -> None:
    """Send missing and malformed ids to every item operation, bad bodies to the resources, and look for
    5xx answers and existence oracles; report one finding per (check, operation)."""
    adapter = run.ctx.adapter
    kw: dict[str, Any] = dict(indicator=INDICATOR_HARDENING, references=refs("API8", "CWE-755", "CWE-209"),
                              severity=Severity.medium)
    acct = _prober(run)
    if adapter is None or acct is None:
        for fid in (CHECK_MISSING, CHECK_MALFORMED_ID, CHECK_BODY, CHECK_ORACLE):
            run.skip(fid, "Error handling not tested (no adapter or no general account)", NotAssessed.not_configured,
                     "describe the CRM under adapter: and add a general account", **kw)
        return
    results = {CHECK_MISSING: _Result(), CHECK_MALFORMED_ID: _Result()}
    _id_probes(run, adapter, acct, results)
    _report(run, CHECK_MISSING, results[CHECK_MISSING], "a missing id", "404 (or 400)", **kw)
    _report(run, CHECK_MALFORMED_ID, results[CHECK_MALFORMED_ID], "a malformed id", "400 or 404", **kw)
    if not run.ctx.allow_writes:
        run.skip(CHECK_BODY, "Bodies of the wrong shape not tested (they create or change records: writes not "
                 "allowed)", NotAssessed.safety, HINT_WRITES, **kw)
    else:
        body = _Result()
        _body_probes(run, adapter, body)
        _report(run, CHECK_BODY, body, "a body of the wrong shape", "400, 413, 415 or 422", **kw)
    check_oracle(run)


def _id_probes(run: AccessRun, adapter: Adapter, acct: Account, results: dict[str, _Result]) -> None:
    """Missing ids (reads first, then writes where the read found nothing), then malformed ids; bounded."""
    ops = [o for o in _item_ops(run) if _method(o) == "GET" or not _UNSAFE.search(o.path or o.name)]
    writes = [o for o in ops if _method(o) != "GET"]
    budget = run.opts.max_error_probes
    found_by_read: dict[str, bool] = {}
    plan: list[tuple[int, str, Operation, Any, str]] = []
    # one missing id per record path, the read's: a write goes only to the id a read showed absent
    by_path = {_path_key(o): _missing_for(run, o) for o in reversed(ops) if _method(o) == "GET"}
    for op in ops:  # the configured resources' operations first; in each group reads, then writes
        write = _method(op) != "GET"
        if write and not run.ctx.allow_writes:
            continue
        group = 0 if op.resource else 4
        missing = by_path.get(_path_key(op), _missing_for(run, op))
        plan.append((group + (2 if write else 0), CHECK_MISSING, op, missing, f"id {missing}"))
        plan.append((group + (3 if write else 1), CHECK_MALFORMED_ID, op, MALFORMED_ID, f"id {MALFORMED_ID}"))
    plan.sort(key=lambda p: p[0])
    sent = 0
    # consecutive reads (or writes) go out together, a few at a time; a write only after the reads that decide it
    for _, batch in groupby(plan, key=lambda p: _method(p[2]) != "GET"):
        todo: list[tuple[str, Operation, Any, str, dict[str, Any] | None]] = []
        for _, check, op, rid, kind in batch:
            is_write = _method(op) != "GET"
            if is_write and check == CHECK_MISSING and found_by_read.get(_path_key(op), True):
                continue  # no read of this id showed it absent: never write to what may be a real record
            if sent >= budget:
                results[check].left_out += 1
                continue
            sent += 1
            changes = (adapter.update_changes(op.resource, rid) or None) if op.resource and op.action == "update" else None
            todo.append((check, op, rid, kind, changes))

        def send(item: tuple[str, Operation, Any, str, dict[str, Any] | None]) -> Exchange:
            run.ctx.check_cancelled()
            _, op, rid, _, body = item
            return _sender(adapter, op, rid, acct.name, body)()

        with ThreadPoolExecutor(max_workers=max(1, min(run.opts.surface_workers, len(todo) or 1)),
                                thread_name_prefix="robustness") as pool:
            answers = list(pool.map(send, todo))
        for (check, op, _, kind, body), ex in zip(todo, answers):
            is_write = _method(op) != "GET"
            _note_traces(run, ex)
            results[check].record(run, op, kind, ex)
            if is_write and body and op.resource and run.outcome(ex) == "allowed":
                _sweep_upsert(run, adapter, op.resource, acct, body)
            if not is_write and check == CHECK_MISSING:
                found_by_read[_path_key(op)] = run.outcome(ex) == "allowed" or not ex.answered
    if not run.ctx.allow_writes and writes:
        run.skip(f"{CHECK_MISSING}.writes", f"Missing and malformed ids: {len(writes)} write operations not tested "
                 "(writes not allowed)", NotAssessed.safety, HINT_WRITES, indicator=INDICATOR_HARDENING,
                 severity=Severity.medium, references=refs("API8", "CWE-755"))


def _sweep_upsert(run: AccessRun, adapter: Adapter, res: str, acct: Account, body: dict[str, Any]) -> None:
    """An update of a missing id that was accepted may have created a record (an upsert, or a save of an empty
    instance): delete the records holding every text value of that body (one of them is unique to it)."""
    marks = [v for v in body.values() if isinstance(v, str) and v]
    if not any(len(v) >= 12 for v in marks):
        return
    items, ex = adapter.list(res, acct.name, limit=200)
    if run.outcome(ex) != "allowed":
        return
    for item in items:
        rid = adapter.record_id(item)
        if rid is None or not all(m in flat(item) for m in marks):
            continue
        run.notes.setdefault("creates", []).append((res, rid, acct.tenant))
        run.ctx.defer(f"delete {res}/{rid} (created by an update of a missing id)",
                      partial(run.cleanup, res, rid, acct.name))


def _body_probes(run: AccessRun, adapter: Adapter, result: _Result) -> None:
    """Wrong field types, an oversized value, a JSON array and a wrong content type on create and update."""
    budget = run.opts.max_body_probes
    sent = 0
    tag = run.ctx.tag
    for res in run.resources():
        writer = run.writer(res, None)
        if writer is None:
            continue
        if sent + 1 > budget:
            result.left_out += 1
            continue
        rec, cex = run.create(res, writer)  # a normal create: its request is the one the variants bend
        sent += 1
        if rec is None:
            if cex is not None and server_failed(run, cex):
                result.record(run, Operation(name=f"{res}.create", resource=res, action="create"), "create", cex)
            continue
        rid = adapter.record_id(rec)
        field_name = _text_field(adapter, res, rec, tag)
        create_op = Operation(name=f"{res}.create", resource=res, action="create")
        update_op = Operation(name=f"{res}.update", resource=res, action="update")
        variants: list[tuple[Operation, str, Callable[[], Exchange]]] = []
        if field_name is not None:
            wrong = {field_name: [tag, {"crm-audit": 1}]}
            big = {field_name: tag + "x" * (OVERSIZED - len(tag))}
            variants += [
                (create_op, "wrong field type", partial(_create, run, res, writer, wrong)),
                (create_op, "oversized value", partial(_create, run, res, writer, big)),
                (update_op, "wrong field type", partial(_update, adapter, res, rid, writer.name, wrong)),
                (update_op, "oversized value", partial(_update, adapter, res, rid, writer.name, big)),
            ]
        if cex.request_body:
            variants += [
                (create_op, "JSON array instead of an object", partial(_bent, run, writer.name, cex, array=True)),
                (create_op, "wrong content type", partial(_bent, run, writer.name, cex, ctype="text/plain")),
            ]
        refused = True  # every bent create answered a 4xx refusal: nothing to look for
        for op, kind, send in variants:
            if sent >= budget:
                result.left_out += 1
                continue
            run.ctx.check_cancelled()
            ex = send()
            sent += 1
            _note_traces(run, ex)
            result.record(run, op, kind, ex)
            if op is create_op and not (ex.status is not None and 400 <= ex.status < 500
                                        and run.outcome(ex) != "allowed"):
                refused = False
        run.notes.setdefault("robustness_records", {})[(res, writer.name)] = rec
        if cex.request_body and not refused:
            _sweep(run, adapter, res, writer, rec)


def _create(run: AccessRun, res: str, writer: Account, overrides: dict[str, Any]) -> Exchange:
    """A create through ``run.create``: one the CRM accepts anyway is registered for deletion."""
    return run.create(res, writer, overrides=overrides)[1]


def _update(adapter: Adapter, res: str, rid: Any, acct: str, changes: dict[str, Any]) -> Exchange:
    return adapter.update(res, rid, acct, changes)[1]


def _text_field(adapter: Adapter, res: str, rec: dict[str, Any], tag: str) -> str | None:
    """A top-level text field the create filled with the run tag (it stays findable whatever is stored)."""
    idp = adapter.field_path(res, "id")
    for k, v in rec.items():
        if k != idp and isinstance(v, str) and tag in v:
            return k
    return None


def _bent(run: AccessRun, acct: str, ex: Exchange, *, array: bool = False, ctype: str | None = None) -> Exchange:
    """The request of ``ex`` (the adapter's create) sent again with its JSON body in an array, or another
    content type — the bytes the adapter built, so it fits any protocol that sends JSON."""
    body = ex.request_body or b""
    if array:
        try:
            body = json.dumps([json.loads(body)]).encode()
        except ValueError:
            body = b"[" + body + b"]"
    headers = {"Content-Type": ctype or ex.request_headers.get("Content-Type") or "application/json"}
    return run.ctx.target.request(ex.method, ex.url, account=acct, headers=headers, data=body)


def _sweep(run: AccessRun, adapter: Adapter, res: str, writer: Account, original: dict[str, Any]) -> None:
    """Delete copies of ``original`` a bent create body made: records holding all of its tagged values under
    another id (only those: other probes' records carry the run tag too)."""
    tag = run.ctx.tag
    marks = [v for v in original.values() if isinstance(v, str) and tag in v]
    if not marks:
        return
    first = str(adapter.record_id(original))
    items, ex = adapter.list(res, writer.name, limit=200, tag=tag)
    if run.outcome(ex) != "allowed":
        return
    for item in items:
        rid = adapter.record_id(item)
        if rid is None or str(rid) == first or not all(m in flat(item) for m in marks):
            continue
        run.notes.setdefault("creates", []).append((res, rid, writer.tenant))
        run.ctx.defer(f"delete {res}/{rid} (created by a wrong-shape body)", partial(run.cleanup, res, rid, writer.name))


def _report(run: AccessRun, check: str, result: _Result, what: str, expected: str, **kw: Any) -> None:
    """One failed finding per operation that answered 5xx; else pass / not assessed / skipped for the check."""
    for name, hits in result.hits.items():
        kinds = sorted({k for _, k, _ in hits})
        statuses = sorted({str(e.status) for _, _, e in hits})
        run.add(f"{check}.{slug(name)}", f"{name} answers {'/'.join(statuses)} (server error) for {what} "
                f"({', '.join(kinds)})", status=Status.failed,
                evidence=[_evidence(e, expected, k) for _, k, e in hits[:3]],
                remediation=_FIX[check], **kw)
    if result.hits:
        return
    note = f"; {result.left_out} more left out (max_error_probes / max_body_probes)" if result.left_out else ""
    title = f"Requests with {what} answer 4xx, not 5xx"
    if result.silent:
        run.unassessed(check, title, result.silent[0], remediation=_FIX[check], hint="run again when the target "
                       "answers: a timeout or a gateway error (502/503/504) is no verdict", **kw)
    elif result.judged:
        run.add(check, f"{title} ({result.judged} requests{note})", status=Status.passed, remediation=_FIX[check],
                evidence=[Evidence(request=f"{result.judged} requests with {what}", expected=expected,
                                   observed="no 5xx")], **kw)
    elif result.left_out:
        run.skip(check, f"{title}: not tested{note}", NotAssessed.audit_limit,
                 "raise plugins.access.max_error_probes / max_body_probes", remediation=_FIX[check], **kw)
    else:
        run.skip(check, f"{title}: not tested (no operation to send it to)", NotAssessed.not_configured,
                 "map resources in the adapter, or set adapter.openapi so item operations are discovered",
                 remediation=_FIX[check], **kw)


_FIX: dict[str, str] = {
    CHECK_MISSING: "Look the record up and answer 404 when it does not exist (e.g. get_object_or_404); never let "
                   "a DoesNotExist / null dereference escape as a 500.",
    CHECK_MALFORMED_ID: "Validate path and RPC ids before using them (a typed route converter or schema) and "
                        "answer 400/404 for anything that is not an id.",
    CHECK_BODY: "Validate request bodies with a schema before touching the database: answer 400/422 for wrong "
                "types and shapes, 413 for oversized values, 415 for an unsupported content type; keep creates "
                "atomic so a failure leaves no row behind.",
    CHECK_ORACLE: "Answer a record the caller may not see exactly like one that does not exist (same status and "
                  "body, usually 404).",
}


# ---------------------------------------------------------------------- existence oracle


def check_oracle(run: AccessRun) -> None:
    """Another account's canary read (and written) by a caller who may not see it must answer like a missing id."""
    adapter = run.ctx.adapter
    assert adapter is not None
    kw: dict[str, Any] = dict(indicator=INDICATOR_ACCESS, references=refs("API1", "CWE-203", "CWE-204"),
                              remediation=_FIX[CHECK_ORACLE])
    if not run.ctx.allow_writes:
        run.skip(CHECK_ORACLE, "Existence oracle not tested (it needs canary records of another account: writes "
                 "not allowed)", NotAssessed.safety, HINT_WRITES, severity=Severity.low, **kw)
        return
    tested = 0
    readable = 0
    silent: Exchange | None = None
    for res in run.resources():
        pair = _oracle_pair(run, res)
        if pair is None:
            continue
        owner, callers = pair
        rec = (run.notes.get("robustness_records") or {}).get((res, owner.name))  # the body probes' record
        if rec is None:
            rec, _ = run.own_record(res, owner, key="robustness")
        if rec is None:
            continue
        rid = adapter.record_id(rec)
        for caller in callers:
            run.ctx.check_cancelled()
            _, other = adapter.read(res, rid, caller.name)
            if run.expect_deny(other, f"{caller.name} reads {owner.name}'s {res}") == "allow":
                readable += 1
                continue  # readable: nothing hidden (the BOLA checks judge whether it should be)
            _, absent = adapter.read(res, absent_like(rid), caller.name)
            bad = next((x for x in (other, absent) if not x.answered or server_failed(run, x)
                        or x.status in (502, 503, 504)), None)
            if bad is not None:  # a 5xx is reported by the server-error checks; no oracle can be judged on it
                silent = silent or bad
                break
            tested += 1
            _judge_oracle(run, res, owner, caller, other, absent, **kw)
            break
    if tested:
        return
    if silent is not None:
        run.unassessed(CHECK_ORACLE, "A hidden record answers like a missing one", silent, severity=Severity.low,
                       hint="the hidden record or the missing id got no answer or a 5xx (see the server-error "
                            "findings); fix that, then run again", **kw)
        return
    why = ("every other account's record was readable: nothing hidden to tell apart" if readable else
           "no pair of accounts (another tenant, or another user) with a canary record")
    run.skip(CHECK_ORACLE, f"Existence oracle not tested ({why})",
             NotAssessed.not_applicable if readable else NotAssessed.needs_account,
             "nothing to run: no record was hidden from another account" if readable else
             "add a general account of another tenant (or another user) that may create records",
             severity=Severity.low, **kw)


def _oracle_pair(run: AccessRun, res: str) -> tuple[Account, list[Account]] | None:
    """(the canary's owner, callers who should not see it): another tenant first, then another user of the
    owner's tenant (roles limited to their own records first, then the least privileged)."""
    general = run.general_accounts()
    for owner in sorted(general, key=lambda a: -run.privilege(a.role)):
        if not run.may(owner, res, "create"):
            continue
        others = [a for a in general if a.tenant and owner.tenant and a.tenant != owner.tenant]
        same = sorted((a for a in general if a.name != owner.name and a.tenant == owner.tenant),
                      key=lambda a: ("read" not in run.opts.owner_only_actions.get(a.role, []), run.privilege(a.role)))
        callers = others[:1] + same[:1]
        if callers:
            return owner, callers
    return None


def _judge_oracle(run: AccessRun, res: str, owner: Account, caller: Account, other: Exchange, absent: Exchange,
                  **kw: Any) -> None:
    fid = f"{CHECK_ORACLE}.{res}"
    cross = bool(owner.tenant and caller.tenant and owner.tenant != caller.tenant)
    sev = Severity.medium if cross else Severity.low
    whose = f"{owner.name}'s ({'another tenant' if cross else 'another user'})"
    title = f"{res}: a hidden record answers like a missing one"
    o1, o2 = run.outcome(other), run.outcome(absent)
    same_body = _shape(other) == _shape(absent)
    ev = [other.evidence(200, expected="the same answer as for a missing id", observed=f"{whose} record: {other.status} "
                         f"({o1})", details={"replay": replay(other)}),
          absent.evidence(200, expected="the same answer as for a hidden record", observed=f"missing id: "
                          f"{absent.status} ({o2})", details={"replay": replay(absent)})]
    if o1 != o2 or other.status != absent.status or not same_body:
        what = (f"{o1} vs {o2}" if o1 != o2 else "the same outcome, another body") + f", HTTP {other.status} vs " \
            f"{absent.status}"
        run.add(fid, f"{res}: existence oracle: {caller.name} is told {whose} record exists (hidden vs missing id: "
                f"{what})", status=Status.failed, severity=sev, evidence=ev, **kw)
    else:
        run.add(fid, f"{title} ({caller.name}: {other.status} for both)", status=Status.passed, severity=sev,
                evidence=ev, **kw)


def _shape(ex: Exchange) -> str:
    """An answer's body with ids and numbers taken out (a message naming the id is still the same message)."""
    return re.sub(r"[0-9a-fA-F]{8}-[0-9a-fA-F-]{27}|\d+", "#", ex.text[:2000]).strip()


__all__ = ["check_robustness", "check_oracle", "server_failed", "replay", "CHECK_MISSING", "CHECK_MALFORMED_ID",
           "CHECK_BODY", "CHECK_ORACLE"]
