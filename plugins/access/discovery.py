"""Attack-surface discovery: which collections and item operations the API serves, and who reaches them.

The surface is built from the adapter's ``discover`` (its resources' operations plus the
CRM's own description: OpenAPI/Swagger, an RPC listing), the safe named operations, and the
ids and links found in list answers (to fill item-path parameters). Every safe operation is
called once per caller (one account per role and tenant; anonymously only the collections); unsafe operations
(writes, and GETs whose path says they change state, such as a logout) are never called.
Other checks (data exposure, unbounded collections, error handling) reuse the answers
through :func:`discovered_surface`, so the surface costs its requests only once per run.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from crm_audit.core.adapter import NAMED_OPERATIONS, Discovery, Operation
from crm_audit.core.profile import Account
from crm_audit.core.target import Exchange

from .answers import records_of
from .common import AccessRun

#: what would let a check whose requests got no usable answer run (its evidence shows the failed request)
RETRY_HINT = "re-run when the target answers these requests (see the evidence); raise target.timeout_s if they timed out"
#: the caller name used in ``Surface.reach`` for requests sent without credentials
ANONYMOUS = "(anonymous)"
#: GET paths that may change state (a logout revokes the audit's own token): never called
_UNSAFE_PATH = re.compile(r"(?i)(log-?out|sign-?out|revoke|delete|destroy|remove|reset|restore|trigger|shutdown|"
                          r"purge|flush|unsubscribe|activate|deactivate|approve|confirm|verify|import|upload)")
_PARAM = re.compile(r"\{[^}]+\}")
_NOTE = "surface"
#: RPC methods that list an RPC API's methods (asked only of adapters that call methods by name)
LISTING_METHODS = ("system.listMethods", "system.list_methods", "rpc.discover")
#: RPC method suffixes that only read: a collection, or an item read (``read``/``get``, with an id)
_SAFE_SUFFIX = frozenset({"search_read", "search", "list", "get", "read", "info", "status", "version", "listMethods",
                          "list_methods", "describe", "fields_get", "name_get", "search_count", "count"})


@dataclass
class Surface:
    """The operations the API serves and what each caller reached.

    ``operations``: every discovered operation (safe or not); ``collections``: safe operations
    without parameters (lists, settings, dashboards …); ``items``: safe operations with an id
    parameter; ``sample_ids``: item operation name → ids seen in list answers (and links);
    ``reach``: caller (account name, or :data:`ANONYMOUS`) → operation name → the adapter's
    outcome (allowed / denied / not_found / error / unknown) or ``skipped`` (budget);
    ``answers``: (caller, operation name) → the exchange, for checks that judge the bodies;
    ``items_of``: collection name → item operation names it feeds; ``discovery``: what
    ``adapter.discover`` returned (its ``source`` and fetch exchange); ``named``: named operation
    (``me``, ``users.list`` …) → the discovered operation that is the same request.
    """

    operations: list[Operation] = field(default_factory=list)
    collections: list[Operation] = field(default_factory=list)
    items: list[Operation] = field(default_factory=list)
    sample_ids: dict[str, list[Any]] = field(default_factory=dict)
    reach: dict[str, dict[str, str]] = field(default_factory=dict)
    answers: dict[tuple[str, str], Exchange] = field(default_factory=dict)
    items_of: dict[str, list[str]] = field(default_factory=dict)
    discovery: Discovery | None = None
    listing: str | None = None
    named: dict[str, str] = field(default_factory=dict)
    callers: list[str] = field(default_factory=list)
    truncated: int = 0

    def answer(self, caller: str | None, op: Operation | str) -> Exchange | None:
        """The exchange discovery got for ``op`` as ``caller`` (None: anonymous), or None when not called."""
        name = op.name if isinstance(op, Operation) else op
        return self.answers.get((caller or ANONYMOUS, name))

    def collection_of(self, item: Operation | str) -> Operation | None:
        """The collection whose answers fill ``item``'s id parameter, if one was matched."""
        name = item.name if isinstance(item, Operation) else item
        return next((c for c in self.collections if name in self.items_of.get(c.name, [])), None)


def discovered_surface(run: AccessRun) -> Surface:
    """The run's attack surface, built on first use and cached in ``run.notes["surface"]``."""
    got = run.notes.get(_NOTE)
    if got is None:
        got = build_surface(run)
        run.notes[_NOTE] = got
    return got


# ---------------------------------------------------------------------- building

def surface_callers(run: AccessRun) -> list[Account]:
    """One general account per (role, tenant), the most privileged first (its lists fill the item ids)."""
    seen: dict[tuple[str, str | None], Account] = {}
    for acct in run.general_accounts():
        seen.setdefault((acct.role, acct.tenant), acct)
    return sorted(seen.values(), key=lambda a: -run.privilege(a.role))


def _key(op: Operation) -> tuple[str, ...]:
    """What makes two discovered operations the same request (to call each only once)."""
    if op.resource and op.action:
        return ("res", op.resource, op.action)
    if op.method and op.path:
        return ("http", op.method, _PARAM.sub("{}", op.path).rstrip("/"))
    return ("name", op.name)


def _callable(op: Operation) -> bool:
    """Safe to send in discovery: reads only, and no path that sounds like a state change."""
    if not op.safe:
        return False
    text = op.path if op.path else op.name
    return not _UNSAFE_PATH.search(text or "")


def _operations(run: AccessRun, found: Discovery) -> list[Operation]:
    """The discovered operations, one per distinct request, plus the safe named ones nobody described."""
    ops: list[Operation] = []
    keys: set[tuple[str, ...]] = set()
    for op in found.operations:
        k = _key(op)
        if k not in keys:
            keys.add(k)
            ops.append(op)
    if not found.described:
        names = {o.name for o in ops}
        for name, (safe, _) in NAMED_OPERATIONS.items():
            if not safe or name in names:
                continue
            call = run.operation(name)
            if call is None:
                continue
            method, _, path = call.partition(" ")
            op = (Operation(name=name, safe=True, method=method, path=path) if path.startswith("/")
                  else Operation(name=name, safe=True))
            if _key(op) not in keys:
                keys.add(_key(op))
                ops.append(op)
    return ops


def _named(run: AccessRun, ops: list[Operation]) -> dict[str, str]:
    """Named operation → the discovered operation it is (same request, or the RPC method it maps to)."""
    adapter = run.ctx.adapter
    assert adapter is not None
    mapped = adapter.raw_config.get("operations") if isinstance(adapter.raw_config, dict) else None
    out: dict[str, str] = {}
    for name in NAMED_OPERATIONS:
        request = (mapped or {}).get(name) if isinstance(mapped, dict) else None
        request = request if isinstance(request, str) else run.operation(name)
        if request is None:
            continue
        method, _, path = request.partition(" ")
        want = ("http", method, _PARAM.sub("{}", path).rstrip("/")) if path.startswith("/") else None
        hit = next((o for o in ops if (want is not None and o.method and o.path and _key(
            Operation(name="", method=o.method, path=o.path)) == want) or o.name in (request, name)), None)
        if hit is not None:
            out[name] = hit.name
    return out


def rpc_listing(run: AccessRun, caller: str | None) -> tuple[str | None, list[str], Exchange | None]:
    """An RPC API's own method list (``system.listMethods`` …) as ``caller``: (method, names, exchange).

    Asked only of adapters that call methods by name (``offers`` takes the bare name); the first
    listing method that answers with a list of names wins. REST adapters are never asked.
    """
    adapter = run.ctx.adapter
    assert adapter is not None
    last: Exchange | None = None
    for name in LISTING_METHODS:
        if not adapter.offers(name):
            continue
        result, ex = adapter.call(name, None, caller)
        last = ex
        names = result.get("methods") if isinstance(result, dict) else result
        if run.outcome(ex) == "allowed" and isinstance(names, list) and all(isinstance(n, str) for n in names):
            return name, [n for n in names if n], ex
        if run.outcome(ex) in ("denied", "allowed"):
            return name, [], ex  # it exists; this caller may not list
    return None, [], last


def _listed_operations(run: AccessRun, names: list[str], ops: list[Operation]) -> list[Operation]:
    """Operations for listed RPC methods the adapter did not already offer (safe by their read-only suffix)."""
    adapter = run.ctx.adapter
    assert adapter is not None
    mapped = adapter.raw_config.get("operations") if isinstance(adapter.raw_config, dict) else None
    known = {o.name for o in ops} | {v for v in (mapped or {}).values() if isinstance(v, str)}
    out = []
    for name in names[:500]:
        if name in known or name in LISTING_METHODS[1:]:
            continue
        suffix = name.rpartition(".")[2]
        safe = suffix in _SAFE_SUFFIX
        out.append(Operation(name=name, params=("id",) if suffix in ("read", "get") else (), safe=safe,
                             described=True))
    return out


def _rpc_names(run: AccessRun) -> dict[str, str]:
    """Named operation → the RPC method the adapter's ``operations`` maps it to (empty for REST paths)."""
    adapter = run.ctx.adapter
    mapped = adapter.raw_config.get("operations") if adapter is not None and isinstance(adapter.raw_config, dict) \
        else None
    return {k: v for k, v in (mapped or {}).items() if isinstance(v, str) and " " not in v}


def _is_collection(op: Operation) -> bool:
    return _callable(op) and not op.params and op.action in (None, "list")


def _is_item(op: Operation) -> bool:
    return _callable(op) and len(op.params) == 1 and op.action in (None, "read")


def _model(op: Operation, named: dict[str, str]) -> str:
    """The RPC model of an operation: its name's prefix, or that of the method a named operation maps to."""
    return named.get(op.name, op.name).rpartition(".")[0]


def _item_links(collections: list[Operation], items: list[Operation],
                named: dict[str, str] | None = None) -> dict[str, list[str]]:
    """collection → the item operations whose id its answers hold (same resource, path + '/{id}', RPC model)."""
    named = named or {}
    out: dict[str, list[str]] = {}
    for col in collections:
        linked = []
        for it in items:
            if col.resource and it.resource == col.resource:
                linked.append(it.name)
            elif col.path and it.path and not it.resource:
                base = col.path.rstrip("/")
                if re.fullmatch(re.escape(base) + r"/\{[^}]+\}/?", it.path):
                    linked.append(it.name)
            elif not col.path and not it.path and not it.resource and "." in it.name \
                    and _model(col, named) == it.name.rpartition(".")[0]:
                linked.append(it.name)  # RPC: same model (users.search_read → users.read)
        out[col.name] = linked
    return out


def _ids_from(run: AccessRun, op: Operation, result: Any, ex: Exchange) -> list[Any]:
    """Ids (at most 3) of the collection's records in a list answer: the adapter's records, else its own array."""
    adapter = run.ctx.adapter
    assert adapter is not None
    if isinstance(result, list) and all(isinstance(r, dict) for r in result) and result:
        recs = result
    else:
        data = result if result is not None else ex.json_or_none()
        recs = records_of(op, data)
    ids: list[Any] = []
    for rec in recs:
        rid = adapter.record_id(rec)
        if rid is not None and not isinstance(rid, (dict, list, bool)) and rid not in ids:
            ids.append(rid)
        if len(ids) >= 3:
            break
    return ids


def _ids_from_links(ex: Exchange, items: list[Operation]) -> dict[str, list[str]]:
    """Ids in links of an answer (``…/api/contacts/12/``) that match an item operation's path."""
    out: dict[str, list[str]] = {}
    text = ex.text[:200_000]
    for it in items:
        if not it.path:
            continue
        pattern = re.escape(_PARAM.sub("\x00", it.path)).replace("\x00", r"([A-Za-z0-9_-]{1,64})")
        for m in re.finditer(pattern + r"(?=[\"'/?#\s]|$)", text):
            out.setdefault(it.name, [])
            if m.group(1) not in out[it.name] and len(out[it.name]) < 3:
                out[it.name].append(m.group(1))
    return out


def _send(run: AccessRun, op: Operation, args: dict[str, Any] | None, caller: str | None) -> tuple[Any, Exchange]:
    """One call of a safe operation; a resource's list and read go through ``adapter.list`` / ``read``."""
    adapter = run.ctx.adapter
    assert adapter is not None
    if op.resource and op.action == "list":
        return adapter.list(op.resource, caller, limit=run.opts.surface_page_size)
    if op.resource and op.action == "read":
        return adapter.read(op.resource, next(iter((args or {}).values()), None), caller)
    return adapter.call(op, args, caller)


def build_surface(run: AccessRun) -> Surface:
    """Discover the operations, call each safe one once per caller, collect ids for the item operations."""
    adapter = run.ctx.adapter
    surface = Surface()
    if adapter is None:
        return surface
    admin = surface_callers(run)
    found = adapter.discover(None)  # the description as the adapter is told to fetch it (REST: openapi_account)
    surface.discovery = found
    ops = _operations(run, found)
    if not found.described:
        listing, names, _ = rpc_listing(run, admin[0].name if admin else None)
        if names:
            surface.listing = listing
            ops = ops + _listed_operations(run, names, found.operations + ops)
    surface.operations = ops
    surface.named = _named(run, ops)
    limit = run.opts.max_surface_operations
    collections = [o for o in ops if _is_collection(o)]
    items = [o for o in ops if _is_item(o)]
    if len(collections) + len(items) > limit:
        surface.truncated = len(collections) + len(items) - limit
        collections = collections[:limit]
        items = items[:max(0, limit - len(collections))]
    surface.collections, surface.items = collections, items
    surface.items_of = _item_links(collections, items, _rpc_names(run))
    callers: list[str | None] = [a.name for a in admin] + [None]
    surface.callers = [c or ANONYMOUS for c in callers]
    for who in surface.callers:
        surface.reach[who] = {}
    got = _call_all(run, [(c, op, None) for c in callers for op in collections])
    for (caller, op, _), (result, ex) in zip([(c, op, None) for c in callers for op in collections], got):
        who = caller or ANONYMOUS
        _note(run, surface, who, op, ex)
        if ex is not None and surface.reach[who][op.name] == "allowed":
            for it in surface.items_of.get(op.name, []):
                have = surface.sample_ids.setdefault(it, [])
                have.extend(i for i in _ids_from(run, op, result, ex) if i not in have and len(have) < 3)
            for it, ids in _ids_from_links(ex, items).items():
                have = surface.sample_ids.setdefault(it, [])
                have.extend(i for i in ids if i not in have and len(have) < 3)
    # item reads as each account; anonymously only the collections (the anonymous check reads items itself)
    calls = [(c, op, {op.params[0]: surface.sample_ids[op.name][0]}) for c in callers if c is not None
             for op in items if surface.sample_ids.get(op.name)]
    for (caller, op, _), (_, ex) in zip(calls, _call_all(run, calls)):
        _note(run, surface, caller or ANONYMOUS, op, ex)
    return surface


def _note(run: AccessRun, surface: Surface, who: str, op: Operation, ex: Exchange | None) -> None:
    """Record one call's outcome (``skipped`` when the budget reserve stopped it)."""
    if ex is None:
        surface.reach[who][op.name] = "skipped"
        return
    surface.answers[(who, op.name)] = ex
    surface.reach[who][op.name] = run.outcome(ex)


def _call_all(run: AccessRun, calls: Sequence[tuple[str | None, Operation, dict[str, Any] | None]]
              ) -> list[tuple[Any, Exchange | None]]:
    """Send the calls, ``surface_workers`` at a time (the Target keeps scope, rate and budget); results in order.

    A call is not sent (None) once fewer than ``surface_budget_reserve`` requests are left.
    """
    def one(call: tuple[str | None, Operation, dict[str, Any] | None]) -> tuple[Any, Exchange | None]:
        run.ctx.check_cancelled()
        if run.ctx.target.budget_left < run.opts.surface_budget_reserve:
            return None, None
        caller, op, args = call
        return _send(run, op, args, caller)

    workers = max(1, min(run.opts.surface_workers, len(calls)))
    if workers == 1:
        return [one(c) for c in calls]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="surface") as pool:
        return list(pool.map(one, calls))
