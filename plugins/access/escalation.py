"""Self-escalation: a low-privilege user updating its own user record with privilege or tenant fields.

The own record comes from the named operation ``me`` (else the ``users.list`` answer as an
admin, matched by the account's login name). The fields tried are the privilege and tenant
fields that record shows (``role``, ``is_admin``, ``groups``, ``tenant_id``, ``company`` …), set
to the admin's or the other tenant's value as their own ``me`` shows it (flags: true), and the
hidden ones: privilege and tenant fields the own record leaves out, yet the request body of a
described user-item update declares (the OpenAPI/Swagger document the discovery fetched, ``$ref``
followed a bounded depth) or the admin's view of the user (``users.list``) shows. A hidden field
is tried only where the admin's view shows its value — it is re-read and restored as the admin
sees it; one declared but shown to no one is named as not tried. Every update method the API
accepts is tried: the adapter's ``update_me``, its ``users.update`` on the own id, and each
described PUT/PATCH on a user item (``…/users/{id}``; a PUT carries the whole own record plus the
change). A change counts only when the re-read shows it, and is confirmed by an admin-only action
(``users.list``) that the account was refused before (with a fresh login, for tokens that carry
the role). The
original values are always put back — as the account, else as the admin — and checked by
re-reading; what could not be restored is named in the probe's ``left_behind``. It changes a
real account, so it runs only with ``allow.disruptive``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

from crm_audit.core.adapter import Discovery, Operation, nest
from crm_audit.core.model import NotAssessed, Severity
from crm_audit.core.profile import Account
from crm_audit.core.target import Exchange

from .common import (
    HINT_DISRUPTIVE,
    INDICATOR_ACCESS,
    AccessRun,
    Tally,
    refs,
    same_value,
)

FID = "access.self_escalation"
FIX = ("Never let a user write its own role, flags, groups, permissions or tenant: serialize user updates "
       "through an allow-list of profile fields and let only administrators change privileges, on a separate "
       "endpoint that checks the caller's role.")
#: privilege fields of a user record, by their usual names
PRIVILEGE = frozenset({"role", "roles", "user_role", "user_type", "is_admin", "is_staff", "is_superuser",
                       "superuser", "admin", "groups", "group", "permissions", "user_permissions", "scopes",
                       "access_level"})
#: tenant fields of a user record, by their usual names
TENANT = frozenset({"tenant", "tenant_id", "company", "company_id", "companies", "organization", "organization_id",
                    "organisation", "org", "org_id", "employee", "workspace", "workspace_id", "team", "teams"})
#: role names that say "administrator" (they break ties where the access matrix does not tell roles apart)
ADMIN_ROLE = re.compile(r"(?i)admin|owner|super|root")
#: how deep a described request-body schema is followed ($ref hops, allOf/anyOf/oneOf nesting)
_MAX_SCHEMA_DEPTH = 8
#: a described operation on one user: its path ends in a users-like collection and one parameter
_USER_ITEM = re.compile(r"(?i)/(users?|members?|employees?|staff|people|accounts/users)/\{[^}]+\}/?$")

Sender = Callable[[dict[str, Any]], Exchange]


def check_self_escalation(run: AccessRun) -> None:
    """A low-privilege account must not change its own privilege or tenant fields by any update method."""
    kw: dict[str, Any] = dict(indicator=INDICATOR_ACCESS, severity=Severity.critical, remediation=FIX,
                              references=refs("API5", "API3", "CWE-269", "CWE-915"))
    what = "Self-escalation (own role/tenant)"
    adapter = run.ctx.adapter
    if adapter is None:
        run.skip(FID, f"{what} not tested (no adapter)", NotAssessed.not_configured,
                 "describe the CRM under adapter: in the profile", **kw)
        return
    if not run.ctx.allow_disruptive:
        run.skip(FID, f"{what} not tested (it changes a real account: disruptive checks not allowed)",
                 NotAssessed.safety, HINT_DISRUPTIVE, **kw)
        return
    low, admin = _pair(run)
    if low is None or admin is None:
        run.skip(FID, f"{what} not tested (needs a low-privilege and an admin account)", NotAssessed.needs_account,
                 "add a general account of a low-privilege role and one of the most privileged role "
                 "(access_matrix tells them apart)", **kw)
        return
    own, oex = _own_record(run, low, admin)
    if own is None:
        if oex is not None and run.verdict(oex) not in ("allow", "deny"):
            run.unassessed(FID, what, oex, **kw)
        else:
            run.skip(FID, f"{what} not tested (the own user record cannot be read)", NotAssessed.not_configured,
                     "map the adapter's 'me' operation (adapter.operations.me), or 'users.list' for an admin", **kw)
        return
    uid = own.get("id", own.get("uid"))
    wanted, original, hidden, blind = _targets(run, own, low, admin, uid)
    if not wanted:
        run.skip(FID, f"{what} not tested (the own user record shows no privilege or tenant field)",
                 NotAssessed.not_applicable, "map 'me' to an operation that returns the user's role / tenant fields",
                 **kw)
        return
    senders = _senders(run, low, own)
    if not senders:
        run.skip(FID, f"{what} not tested (no way to update the own user)", NotAssessed.not_configured,
                 "map the adapter's 'update_me' operation, or describe PUT/PATCH …/users/{id} in the OpenAPI document",
                 **kw)
        return
    # registered before the first change, so an error or Ctrl-C between change and restore still restores
    run.ctx.defer(f"restore {low.name}'s own {', '.join(original)}",
                  lambda: _restore(run, low, admin, uid, original, senders, final=True))
    gate = _admin_gate(run, low)
    parts = Tally()
    # privilege and tenant fields apart: a user moved to another tenant may no longer act in its own (its
    # context names the old one), so the tenant move is judged by the re-read alone and undone at once
    groups = [({k: v for k, v in wanted.items() if k.lower() in PRIVILEGE}, True),
              ({k: v for k, v in wanted.items() if k.lower() not in PRIVILEGE}, False)]
    changed: set[str] = set()
    for label, send in senders.items():
        for fields, privilege in groups:
            if fields:
                run.ctx.check_cancelled()
                changed |= _try(run, low, admin, uid, label, send, fields, original, gate if privilege else None,
                                senders, parts, hidden)
    took = ", ".join(sorted(changed)) or "an admin-only action opened"
    untried = f"; not tried: {', '.join(sorted(blind))} (described, but shown to no one)" if blind else ""
    parts.report(run, FID, what=what, bad=f"{low.name} can raise its own privileges ({took})",
                 good=f"{low.name} cannot change its own {', '.join(wanted)} ({', '.join(senders)}){untried}", **kw)


def _pair(run: AccessRun) -> tuple[Account | None, Account | None]:
    """(the least privileged general account that has a more privileged one, the most privileged one),
    the admin of the low account's tenant first."""
    accts = run.general_accounts()
    if not accts:
        return None, None
    def rank(a: Account) -> tuple[int, bool]:
        return (run.privilege(a.role), bool(ADMIN_ROLE.search(a.role)))
    low = min(accts, key=rank)
    top = [a for a in accts if rank(a) > rank(low)]
    top.sort(key=lambda a: (a.tenant != low.tenant, tuple(-x for x in rank(a))))
    return (low, top[0]) if top else (None, None)


def user_record(data: Any) -> dict[str, Any] | None:
    """The user record in a ``me`` answer: the answer itself, or the one nested dict holding an id."""
    if not isinstance(data, dict):
        return None
    if "id" in data or "uid" in data:
        return data
    inner = [v for v in data.values() if isinstance(v, dict) and ("id" in v or "uid" in v)]
    return inner[0] if len(inner) == 1 else None


def _me(run: AccessRun, who: str) -> tuple[dict[str, Any] | None, Exchange | None]:
    op = run.operation("me")
    if op is None:
        return None, None
    data, ex = run.call(op, None, who)
    return user_record(data), ex


def _own_record(run: AccessRun, low: Account, admin: Account) -> tuple[dict[str, Any] | None, Exchange | None]:
    """The low account's own user record: ``me``, else the admin's ``users.list`` matched by login name."""
    rec, ex = _me(run, low.name)
    if rec is not None:
        return rec, ex
    users = run.operation("users.list")
    login = (low.auth.username or "").lower()
    if users is None or not login:
        return None, ex
    data, uex = run.call(users, {"limit": 200}, admin.name)
    for item in _items(data):
        if login in (str(item.get("email", "")).lower(), str(item.get("username", "")).lower()):
            return item, uex
    return None, uex


def _items(data: Any) -> list[dict[str, Any]]:
    if isinstance(data, list):
        return [d for d in data if isinstance(d, dict)]
    if isinstance(data, dict):
        for v in data.values():
            if isinstance(v, list) and v and isinstance(v[0], dict):
                return [d for d in v if isinstance(d, dict)]
    return []


def _reread(run: AccessRun, low: Account, admin: Account, uid: Any, fields: Iterable[str] = ()) -> dict[str, Any] | None:
    """The own record as it is now: ``me`` as the account, else as the admin sees it in ``users.list``; the
    ``fields`` ``me`` does not show (hidden from the account) as the admin sees them."""
    rec, _ = _me(run, low.name)
    if rec is None:
        return _listed_user(run, admin, uid)
    missing = [k for k in fields if k not in rec]
    if missing:
        seen = _listed_user(run, admin, uid) or {}
        rec = {**rec, **{k: seen[k] for k in missing if k in seen}}
    return rec


def _listed_user(run: AccessRun, admin: Account, uid: Any) -> dict[str, Any] | None:
    """The user ``uid`` as the admin's ``users.list`` shows it (None: not listed, or no such operation)."""
    users = run.operation("users.list")
    if users is None:
        return None
    data, _ = run.call(users, {"limit": 200}, admin.name)
    return next((i for i in _items(data) if same_value(i.get("id"), uid)), None)


def _sensitive(name: Any) -> bool:
    return str(name).lower() in PRIVILEGE or str(name).lower() in TENANT


def _targets(run: AccessRun, own: dict[str, Any], low: Account, admin: Account,
             uid: Any) -> tuple[dict[str, Any], dict[str, Any], dict[str, str], set[str]]:
    """(field → value to try, field → its value now, hidden field → where it was found, fields not tried).

    Privilege fields at the admin's value (flags: true), tenant fields at another tenant's value, each only
    where it differs from the current one. Besides the fields the own record shows, the hidden ones: privilege
    and tenant fields the own record leaves out, yet the described user update declares or the admin's view of
    the user (``users.list``) shows — tried only where the admin's view shows their value (to judge the change
    and the restore); declared fields no one is shown are returned as not tried."""
    theirs, _ = _me(run, admin.name)
    other = next((a for a in run.general_accounts() if a.tenant and low.tenant and a.tenant != low.tenant), None)
    foreign, _ = _me(run, other.name) if other is not None else (None, None)
    shown = {str(k).lower() for k in own}
    declared = {k: f"declared by {op}" for k, op in described_user_fields(run).items()
                if _sensitive(k) and k.lower() not in shown}
    seen = (_listed_user(run, admin, uid) or {}) if uid is not None else {}
    hidden = {str(k): declared.get(str(k), f"shown to {admin.name}") for k in seen
              if _sensitive(k) and str(k).lower() not in shown}
    aid = theirs.get("id", theirs.get("uid")) if theirs is not None else None
    if hidden and theirs is not None and aid is not None and any(k not in theirs for k in hidden):
        theirs = {**(_listed_user(run, admin, aid) or {}), **theirs}  # the admin's own, as listed
    known = {**own, **{k: seen[k] for k in hidden}}
    out: dict[str, Any] = {}
    for key, value in known.items():
        name = str(key).lower()
        if name in PRIVILEGE:
            if isinstance(value, bool):
                want: Any = True
            elif theirs is not None and key in theirs:
                want = theirs[key]
            elif isinstance(value, str) and name in ("role", "user_role"):
                want = admin.role
            else:
                continue
        elif name in TENANT and foreign is not None and key in foreign:
            want = foreign[key]
        else:
            continue
        if want is not None and not isinstance(want, dict) and not same_value(want, value) and want != value:
            out[str(key)] = want
    return (out, {k: known[k] for k in out}, {k: v for k, v in hidden.items() if k in out},
            {k for k in declared if k not in hidden})


def _senders(run: AccessRun, low: Account, own: dict[str, Any]) -> dict[str, Sender]:
    """Every way the account may update its own user: ``update_me``, the adapter's ``users.update`` on its own
    id, and described PUT/PATCH on a user item."""
    out: dict[str, Sender] = {}
    upd = run.operation("update_me")
    if upd is not None:
        out[upd] = lambda changes: run.call(upd, nest(changes), low.name)[1]
    uid = own.get("id", own.get("uid"))
    user_upd = run.operation("users.update")
    if user_upd is not None and uid is not None:
        out[user_upd] = lambda changes: run.call(user_upd, {"id": uid, "values": nest(changes)}, low.name)[1]
    for op in user_item_updates(run):
        out[op.name] = _item_sender(run, op, low.name, uid, own)
    return out


def user_item_updates(run: AccessRun) -> list[Operation]:
    """The described PUT/PATCH operations on one user (``…/users/{id}``), discovered once per run."""
    if "user_item_updates" not in run.notes:
        adapter = run.ctx.adapter
        assert adapter is not None  # only check_self_escalation's steps get here; it returns early without one
        found = adapter.discover()
        ops = [op for op in found.operations
               if op.method in ("PUT", "PATCH") and op.path and len(op.params) == 1 and _USER_ITEM.search(op.path)]
        run.notes["user_item_updates"] = ops
        run.notes["user_item_fields"] = described_fields(found, ops)
    updates: list[Operation] = run.notes["user_item_updates"]
    return updates


def described_user_fields(run: AccessRun) -> dict[str, str]:
    """Field → the user-item update whose described request body declares it (see :func:`described_fields`)."""
    user_item_updates(run)
    fields: dict[str, str] = run.notes.get("user_item_fields", {})
    return fields


def described_fields(found: Discovery, ops: list[Operation]) -> dict[str, str]:
    """Property → the first of ``ops`` whose request body the fetched OpenAPI/Swagger document declares it in
    (OpenAPI 3 ``requestBody``, Swagger 2 ``body``/``formData`` parameters; ``$ref``, ``allOf``/``anyOf``/``oneOf``
    followed a bounded depth; read-only properties left out). Empty when no such document was read."""
    doc = found.exchange.json_or_none() if found.described and found.exchange is not None else None
    if not isinstance(doc, dict) or not isinstance(doc.get("paths"), dict):
        return {}
    base = doc["basePath"].rstrip("/") if isinstance(doc.get("basePath"), str) else ""
    out: dict[str, str] = {}
    for op in ops:
        for path, verbs in doc["paths"].items():
            spec = verbs.get(str(op.method).lower()) if isinstance(verbs, dict) else None
            if base + str(path) == op.path and isinstance(spec, dict):
                for name in body_properties(doc, spec):
                    out.setdefault(name, op.name)
    return out


def body_properties(doc: dict[str, Any], spec: dict[str, Any]) -> list[str]:
    """The property names one described operation (``spec``) declares for its request body."""
    schemas: list[Any] = []
    body = _deref(doc, spec.get("requestBody"))
    content = body.get("content") if isinstance(body, dict) else None
    if isinstance(content, dict):  # every media type: JSON, form and multipart bodies name the same fields
        schemas += [media.get("schema") for media in content.values() if isinstance(media, dict)]
    params = spec.get("parameters")
    for param in params if isinstance(params, list) else []:
        param = _deref(doc, param)
        if isinstance(param, dict) and param.get("in") == "body":
            schemas.append(param.get("schema"))
        elif isinstance(param, dict) and param.get("in") == "formData" and isinstance(param.get("name"), str):
            schemas.append({"properties": {param["name"]: param}})
    names: list[str] = []
    for schema in schemas:
        _properties(doc, schema, names, 0)
    return names


def _properties(doc: dict[str, Any], schema: Any, names: list[str], depth: int) -> None:
    schema = _deref(doc, schema)
    if not isinstance(schema, dict) or depth > _MAX_SCHEMA_DEPTH:
        return
    props = schema.get("properties")
    for name, prop in (props.items() if isinstance(props, dict) else ()):
        prop = _deref(doc, prop)
        if isinstance(name, str) and name not in names and not (isinstance(prop, dict) and prop.get("readOnly")):
            names.append(name)
    for key in ("allOf", "anyOf", "oneOf"):
        parts = schema.get(key)
        for part in parts if isinstance(parts, list) else []:
            _properties(doc, part, names, depth + 1)


def _deref(doc: dict[str, Any], node: Any) -> Any:
    """``node`` with its local ``$ref`` (``#/components/schemas/…``, ``#/definitions/…``) followed, a bounded
    number of hops, sibling keys laid over the target; an unresolvable reference reads as nothing."""
    for _ in range(_MAX_SCHEMA_DEPTH):
        ref = node.get("$ref") if isinstance(node, dict) else None
        if not isinstance(ref, str):
            return node
        if not ref.startswith("#/"):
            return None
        target: Any = doc
        for part in ref[2:].split("/"):
            part = part.replace("~1", "/").replace("~0", "~")
            target = target.get(part) if isinstance(target, dict) else None
        if not isinstance(target, dict):
            return None
        node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    return None


def _item_sender(run: AccessRun, op: Operation, who: str, uid: Any, own: dict[str, Any]) -> Sender:
    """PUT: the whole own record (its plain values) plus the changes; PATCH: the changes only."""
    def send(changes: dict[str, Any]) -> Exchange:
        body = {k: v for k, v in own.items() if v is not None and not isinstance(v, (dict, list))} \
            if op.method == "PUT" else {}
        body.update(changes)
        body.pop(op.params[0], None)
        return run.call(op, {**body, op.params[0]: uid}, who)[1]
    return send


def _admin_gate(run: AccessRun, low: Account) -> str | None:
    """The admin-only operation (``users.list``) when the account is refused it now; None otherwise."""
    users = run.operation("users.list")
    if users is None:
        return None
    _, ex = run.call(users, {"limit": 1}, low.name)
    return users if run.verdict(ex) == "deny" else None


def _try(run: AccessRun, low: Account, admin: Account, uid: Any, label: str, send: Sender, wanted: dict[str, Any],
         original: dict[str, Any], gate: str | None, senders: dict[str, Sender], parts: Tally,
         hidden: dict[str, str]) -> set[str]:
    """One update method: send the changes, re-read (``hidden`` fields as the admin sees them), confirm with the
    admin-only action, restore; the fields the re-read showed changed."""
    ex = send(wanted)
    outcome = run.outcome(ex)
    now = _reread(run, low, admin, uid, wanted)
    changed = [k for k, v in wanted.items() if now is not None and same_value(now.get(k), v)]
    if changed:
        confirm = gate is not None and _gate_allows(run, low, gate, relogin=True)
        note = f"; {gate} now allowed" if confirm else ""
        shown = ", ".join(f"{k} → {wanted[k]}" + (f" (hidden from its own record, {hidden[k]})" if k in hidden
                                                  else "") for k in changed)
        how = f"re-read; hidden fields as {admin.name} sees them" if any(k in hidden for k in changed) else "re-read"
        parts.hits.append(ex.evidence(200, expected="own privilege and tenant fields unchanged",
                                      observed=f"{label}: {shown} ({how}){note}"))
        _restore(run, low, admin, uid, original, senders, first=send)
        return set(changed)
    if outcome == "allowed" and gate is not None and _gate_allows(run, low, gate, relogin=False):
        parts.hits.append(ex.evidence(200, expected="admin-only action still refused",
                                      observed=f"{label} answered {ex.status}; {gate} now allowed"))
        _restore(run, low, admin, uid, original, senders, first=send)
        return set()
    if now is None:
        parts.silent.append(ex)
    elif outcome in ("allowed", "denied", "not_found") or (ex.status is not None and 400 <= ex.status < 500):
        parts.judged.append(label)
    else:
        parts.silent.append(ex)
    return set()


def _gate_allows(run: AccessRun, low: Account, gate: str | None, relogin: bool) -> bool:
    """The admin-only action is allowed to the account now (``relogin``: also after a fresh login, for tokens
    that carry the role)."""
    if gate is None:
        return False
    _, ex = run.call(gate, {"limit": 1}, low.name)
    if run.verdict(ex) == "allow":
        return True
    if relogin and _relogin(run, low):
        _, ex = run.call(gate, {"limit": 1}, low.name)
        run.notes.setdefault("escalation_relogin", set()).add(low.name)
        return run.verdict(ex) == "allow"
    return False


def _relogin(run: AccessRun, acct: Account) -> bool:
    """Log the account in again (its token may carry the old role); False when its method cannot."""
    try:
        run.ctx.target.credentials(acct.name, refresh=True)
    except Exception:
        return False
    return True


def _restore(run: AccessRun, low: Account, admin: Account, uid: Any, original: dict[str, Any],
             senders: dict[str, Sender], first: Sender | None = None, final: bool = False) -> None:
    """Put the original values back (the method that changed them first, then the others, as the account;
    then the admin's user-item update) and check by re-reading; a failure is named as left behind
    (``final``, the deferred cleanup after the probe: raised, so the runner names it)."""
    fields = dict(original)

    def back() -> bool:
        now = _reread(run, low, admin, uid, fields)
        return now is not None and all(same_value(now.get(k), v) for k, v in fields.items())

    if not back():
        for send in ([first] if first else []) + [s for s in senders.values() if s is not first]:
            send(dict(fields))
            if back():
                break
        else:
            _as_admin(run, admin, uid, fields)
    if low.name in run.notes.get("escalation_relogin", set()):
        _relogin(run, low)  # drop the token that carries the raised role
    if not back():
        note = f"{low.name}'s own {', '.join(fields)} could not be restored to {fields}: fix it by hand"
        if final:
            raise RuntimeError(note)
        left = run.notes.setdefault("left_behind", [])
        if note not in left:
            left.append(note)


def _as_admin(run: AccessRun, admin: Account, uid: Any, fields: dict[str, Any]) -> None:
    """The admin sets the user's fields back through the adapter's ``users.update``, else a described PUT/PATCH
    on the user item (a PUT with the record as the admin reads it now, so its required fields are there)."""
    if uid is None:
        return
    upd = run.operation("users.update")
    if upd is not None and run.outcome(run.call(upd, {"id": uid, "values": nest(fields)}, admin.name)[1]) == "allowed":
        return
    for op in sorted(user_item_updates(run), key=lambda o: o.method != "PATCH"):
        body = dict(fields)
        if op.method == "PUT":
            now = _listed_user(run, admin, uid)
            body = {**{k: v for k, v in (now or {}).items() if v is not None and not isinstance(v, (dict, list))},
                    **fields}
        body.pop(op.params[0], None)
        _, ex = run.call(op, {**body, op.params[0]: uid}, admin.name)
        if run.outcome(ex) == "allowed":
            return
