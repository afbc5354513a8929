"""The adapter contract: everything a probe needs from a CRM, whatever its protocol.

Probes speak to a CRM only through the methods of :class:`Adapter` (list, read, create,
update, delete, the record's id / owner / tenant / tag, discovery of operations, calling a
named operation) and judge every answer only through :meth:`Adapter.classify`, which reads
it as one :data:`Outcome`. The built-in ``rest`` adapter (``crm_audit/protocols/rest.py``) is
configured in the profile's ``adapter:`` section and registered there through the
``crm_audit_register_adapters`` hook, exactly as a third-party adapter plugin is
(docs/plugins.md, "Adapters" and "Write an adapter").

Data conventions: records are JSON-like dicts; dates and times are ISO-8601 strings
(``2024-05-01`` / ``2024-05-01T12:00:00Z``), numbers are JSON numbers, an empty value is
``None`` (never ``""`` or a CRM's own "false" placeholder) — convert typed values in the adapter.
"""

from __future__ import annotations

import abc
import builtins
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, get_args

from pydantic import BaseModel

from crm_audit.core.auth import json_path
from crm_audit.core.target import Exchange, Target, TargetError

#: how an answer reads, for every probe alike (see :meth:`Adapter.classify`)
Outcome = Literal["allowed", "denied", "not_found", "error", "unknown"]
OUTCOMES: tuple[str, ...] = get_args(Outcome)
#: the generic actions on a resource
Action = Literal["list", "read", "create", "update", "delete"]
#: the record fields a probe asks the adapter about (dotted paths in the REST adapter's profile)
FieldKind = Literal["id", "owner", "tenant", "tag"]


@dataclass(frozen=True)
class RawCredentials:
    """Raw credentials to send instead of a profile account's (a forged, revoked or self-registered token).

    ``headers`` are sent as they are, with no account authentication; ``context`` is for
    protocols that carry the caller in the call itself (a JSON-RPC ``context``), merged into
    what the adapter sends where it knows how. ``label`` names the caller in evidence.
    """

    headers: Mapping[str, str] = field(default_factory=dict)
    context: Mapping[str, Any] = field(default_factory=dict)
    label: str = "credentials"


#: who sends a request: a profile account's name, raw :class:`RawCredentials`, or None (anonymous)
Caller = str | RawCredentials | None

#: Operations beyond records that probes ask every adapter for by these names through
#: :meth:`Adapter.call` (name → (safe, what it is: arguments → result)). An adapter maps the ones its
#: CRM has (:meth:`Adapter.offers` says which); a check that needs an unmapped one is not assessed.
NAMED_OPERATIONS: dict[str, tuple[bool, str]] = {
    "me": (True, "the caller's own user record; no arguments → the record (a dict)"),
    "update_me": (False, "change the caller's own user record; arguments: the fields to set (dotted paths "
                         "allowed) → the record as answered"),
    "users.list": (True, "the users the caller may see; arguments: limit, offset → the answer (users, "
                         "possibly wrapped)"),
    "users.update": (False, "change a user's fields; arguments: id, values (the fields to set, dotted paths "
                            "allowed) → the user as answered"),
    "users.delete": (False, "remove a user; arguments: id → the answer"),
    "register": (False, "anonymous self-registration; arguments: the sign-up fields (username, password …) "
                        "→ the new user (with its id, when the CRM says it)"),
    "audit_log": (True, "the access log; arguments: limit (and other filters) → the answer (its entries, "
                        "possibly wrapped)"),
    "change_password": (False, "change the caller's own password; arguments: old_password, new_password → the "
                               "answer"),
    "users.create": (False, "create a user (as an admin); arguments: username, email, password (and whatever else "
                            "the CRM needs) → the new user, or only an acknowledgement"),
    "users.deactivate": (False, "deactivate (disable) a user so it can no longer log in; arguments: id → the answer"),
    "users.activate": (False, "activate a deactivated user again; arguments: id → the answer"),
}


@dataclass(frozen=True)
class Operation:
    """One operation the CRM offers, found by :meth:`Adapter.discover` (or built by a probe for :meth:`Adapter.call`).

    ``name``: stable and unique, e.g. ``GET /api/contacts/{id}`` or ``contacts.read``.
    ``resource``/``action``: the generic resource and action it performs, when known.
    ``params``: the arguments it needs (path parameters, or required RPC arguments).
    ``safe``: reads only (GET, ``*.read``/``search_read``) — the only kind probes call freely.
    ``method``/``path``: the HTTP request it is, where it is one (timed by latency discovery).
    ``described``: it comes from the CRM's own description (not only from the adapter's mapping).
    """

    name: str
    resource: str | None = None
    action: Action | None = None
    params: tuple[str, ...] = ()
    safe: bool = False
    method: str | None = None
    path: str | None = None
    described: bool = False


@dataclass
class Discovery:
    """What :meth:`Adapter.discover` found: the operations, where they were described, the fetch.

    ``source``: the description document or call (``/openapi.json``, ``system.listMethods``);
    None when the CRM describes nothing. ``exchange``: the request that fetched it (None when
    nothing was fetched) — when it got no usable answer, the operations are only the
    adapter's own and a check resting on the description is not assessed.
    """

    operations: list[Operation] = field(default_factory=list)
    source: str | None = None
    exchange: Exchange | None = None

    @property
    def described(self) -> bool:
        """True when the CRM's own description was read (not only the adapter's resources)."""
        return self.source is not None and self.exchange is not None and self.exchange.ok


class Adapter(abc.ABC):
    """Base class of target adapters; probes call only these methods.

    Every method that talks to the CRM returns the :class:`~crm_audit.core.target.Exchange` that
    decided it (for evidence and for :meth:`classify`), never raises for an answer the CRM
    gave (refusals, not-found, errors in the body) and never rewrites the exchange. Records
    are returned only when the call was *allowed* and the answer holds the record; on a
    denial, a not-found, an error or an unreadable answer the record is ``None`` (lists: ``[]``).
    ``account`` is a :data:`Caller`: a profile account's name, :class:`RawCredentials`, or None.
    """

    type: ClassVar[str] = ""
    version: ClassVar[str] = "0.0.0"
    description: ClassVar[str] = ""
    #: the pydantic model of the adapter's ``adapter:`` section (docs/profile.md lists its keys)
    config_model: ClassVar[builtins.type[BaseModel] | None] = None  # ``type`` here is the class variable above

    def __init__(self, config: dict[str, Any], target: Target) -> None:
        """Keep the target; validate ``config`` with :attr:`config_model` into ``self.config`` (raises ValidationError)."""
        self.raw_config = config
        self.target = target
        self.config: Any = self.config_model.model_validate(config) if self.config_model is not None else None

    # ------------------------------------------------------------------ records
    @abc.abstractmethod
    def resources(self) -> list[str]:
        """The generic resources this adapter maps (``contacts``, ``leads`` …), in profile order."""

    @abc.abstractmethod
    def list(self, resource: str, account: Caller, limit: int = 50, offset: int = 0, *,
             tag: str | None = None, filters: Mapping[str, Any] | None = None) -> tuple[list[dict[str, Any]], Exchange]:
        """One page of records: at most ``limit``, skipping ``offset``.

        ``tag``: only records carrying it, where the CRM can filter by it
        (:meth:`supports_tag_filter`); otherwise the page is unfiltered and callers check
        :meth:`has_tag`. ``filters``: field path → value equality filters the CRM applies
        (an adapter that cannot apply one raises ValueError, never ignores it).
        Allowed: the records (``[]`` for an empty page). Denied, not found (the resource
        does not exist), error, denial in a 200 body, unreadable: ``[]`` with the exchange.
        """

    @abc.abstractmethod
    def read(self, resource: str, record_id: Any, account: Caller) -> tuple[dict[str, Any] | None, Exchange]:
        """One record by id. Allowed: the record; denied / not found / error / denial in a 200 body: None."""

    @abc.abstractmethod
    def create(self, resource: str, account: Caller, tag: str, n: int = 0,
               overrides: Mapping[str, Any] | None = None) -> tuple[dict[str, Any] | None, Exchange]:
        """Create a record carrying ``tag`` (unique per ``n``; 0: the adapter numbers it), ``overrides`` on top.

        Returns the stored record — re-read when the create answered only a stub (an id, a
        message) — or None when refused, failed, or created but not found again (the
        exchange is the create's; classify it to tell which). ``overrides`` keys may be
        dotted paths (``org.id``); the adapter places them in the body.
        """

    @abc.abstractmethod
    def update(self, resource: str, record_id: Any, account: Caller,
               changes: Mapping[str, Any] | None = None) -> tuple[dict[str, Any] | None, Exchange]:
        """Set the fields in ``changes`` (field path → value) on a record; None: :meth:`update_changes`.

        The adapter adds whatever else the CRM needs to accept the update (a full-record PUT
        gets the other required fields), so the caller chooses only the fields it tests.
        Returns the record as answered when allowed and the answer holds it, else None.
        Whether it took effect is for the caller to confirm with :meth:`read`.
        """

    @abc.abstractmethod
    def delete(self, resource: str, record_id: Any, account: Caller) -> Exchange:
        """Delete a record; the exchange tells allowed / denied / not found / error through :meth:`classify`."""

    def update_changes(self, resource: str, record_id: Any) -> dict[str, Any]:
        """Field path → value that changes the record visibly (probes confirm the change by re-reading)."""
        return {}

    def total(self, resource: str, ex: Exchange) -> int | None:
        """The total number of records a list answer (``ex``, from :meth:`list`) reports; None when it says none."""
        return None

    def supports_tag_filter(self, resource: str) -> bool:
        """True when :meth:`list` with ``tag`` returns only tagged records (the CRM filters)."""
        return False

    def iterate(self, resource: str, account: Caller, max_records: int = 1000, page_size: int = 100) -> Iterator[dict[str, Any]]:
        """Every record of a resource, page by page, at most ``max_records``.

        Ends quietly on an empty page, a denial or a not-found (nothing more this account may
        read); raises :class:`IncompleteRead` when a page got no usable answer (network error,
        timeout, 5xx, an error or unreadable answer), so a figure is never computed on part of
        the data as if it were all.
        """
        offset = 0
        seen = 0
        while seen < max_records:
            items, ex = self.list(resource, account, limit=min(page_size, max_records - seen), offset=offset)
            outcome = self.classify(ex)
            if ex.not_assessed is not None or outcome == "error":
                raise IncompleteRead(f"{resource}: reading page at offset {offset} failed after {seen} record(s): "
                                     f"{ex.error or f'HTTP {ex.status}'}", ex)
            if outcome != "allowed" or not items:
                return
            for item in items:
                yield item
                seen += 1
                if seen >= max_records:
                    return
            offset += len(items)

    # ------------------------------------------------------------------ fields
    def field_path(self, resource: str, kind: FieldKind) -> str | None:
        """Where the record keeps ``kind`` (a dotted path, for hints and evidence); None: unknown.

        The default knows only ``id``. An adapter that maps owner / tenant / tag returns their paths.
        """
        return "id" if kind == "id" else None

    def field_value(self, resource: str, record: Mapping[str, Any] | None, kind: FieldKind) -> Any:
        """The record's ``kind`` value (id, owner, tenant, tag), or None when unknown or absent."""
        path = self.field_path(resource, kind)
        return dig(record, path) if (path and isinstance(record, Mapping)) else None

    def field_change(self, resource: str, kind: FieldKind, value: Any) -> dict[str, Any] | None:
        """The ``changes``/``overrides`` that set ``kind`` to ``value`` on a write; None when unknown."""
        path = self.field_path(resource, kind)
        return {path: value} if path else None

    def record_id(self, record: Mapping[str, Any] | None) -> Any:
        """The record's id (``field_value(…, "id")`` without a resource: ids sit alike in every resource)."""
        path = self.field_path("", "id")
        return dig(record, path) if (path and isinstance(record, Mapping)) else None

    def has_tag(self, resource: str, record: Mapping[str, Any] | None, tag: str) -> bool:
        """True when the record carries ``tag`` (in its tag field, else in any of its values)."""
        if not isinstance(record, Mapping):
            return False
        value = self.field_value(resource, record, "tag")
        return tag in flat(value) if value is not None else tag in flat(record)

    # ------------------------------------------------------------------ operations
    def discover(self, account: Caller = None) -> Discovery:
        """The operations the CRM offers: its own description (OpenAPI, RPC listing) as ``account``,
        plus the adapter's resources' list/read/create/update/delete. Never raises for an answer."""
        ops = [Operation(name=f"{r}.{a}", resource=r, action=a, params=("id",) if a in ("read", "update", "delete")
                         else (), safe=a in ("list", "read")) for r in self.resources() for a in get_args(Action)]
        return Discovery(operations=ops)

    def offers(self, name: str) -> bool:
        """True when :meth:`call` can call the operation ``name`` (sends nothing).

        The default offers the generic ``<resource>.<action>`` operations; adapters add the
        :data:`NAMED_OPERATIONS` they map and the CRM's own operations.
        """
        res, _, action = name.rpartition(".")
        return res in self.resources() and action in get_args(Action)

    def call(self, operation: Operation | str, args: Mapping[str, Any] | None, account: Caller) -> tuple[Any, Exchange]:
        """Call one discovered (or named) operation with ``args``; the decoded result when allowed, else None.

        The default maps the generic ``<resource>.<action>`` operations onto the record
        methods; adapters add the :data:`NAMED_OPERATIONS` they map and the CRM's own
        operations. An operation the adapter does not offer raises KeyError (nothing is sent).
        """
        op = operation if isinstance(operation, Operation) else Operation(name=operation)
        res, _, action = op.name.rpartition(".")
        res = op.resource or res
        args = dict(args or {})
        action = op.action or action
        if res not in self.resources() or action not in get_args(Action):
            raise KeyError(f"{self.type} adapter: no operation {op.name!r}")
        if action == "list":
            return self.list(res, account, limit=int(args.get("limit", 50)), offset=int(args.get("offset", 0)))
        if action == "read":
            return self.read(res, args["id"], account)
        if action == "create":
            return self.create(res, account, str(args.get("tag", "crm-audit")), overrides=args.get("values"))
        if action == "update":
            return self.update(res, args["id"], account, args.get("values"))
        ex = self.delete(res, args["id"], account)
        return (self.classify(ex) == "allowed"), ex

    # ------------------------------------------------------------------ answers
    def classify(self, ex: Exchange) -> Outcome:
        """How an answer reads: ``allowed``, ``denied``, ``not_found``, ``error`` or ``unknown``.

        ``error``: no answer (network, timeout, byte cap), a 5xx, or an error the CRM reports
        that is not a decision. ``denied``: a refusal (401/403/405 by default, and whatever the
        adapter recognises as one, such as a denial inside a 200 body or a 400 "not allowed").
        ``not_found``: the record or operation does not exist *for this caller* (404/410) —
        for access checks a way to deny. ``unknown``: an answer that is none of these (3xx,
        a 400 validation error, 409, 422, 429 …). Subclasses extend this for their protocol.
        """
        return classify_http(ex)


def classify_http(ex: Exchange) -> Outcome:
    """The HTTP reading of an answer: 2xx allowed; 401/403/405 denied; 404/410 not found; 5xx or none error."""
    if not ex.answered or ex.not_assessed is not None:
        return "error"
    status = ex.status or 0
    if 200 <= status < 300:
        return "allowed"
    if status in (401, 403, 405):
        return "denied"
    if status in (404, 410):
        return "not_found"
    return "unknown"


class IncompleteRead(TargetError):
    """A listing broke off: the records read so far are not the whole collection."""

    def __init__(self, message: str, exchange: Exchange) -> None:
        super().__init__(message)
        self.exchange = exchange


# ---------------------------------------------------------------------- helpers for adapters

#: follow a dotted path into nested dicts and list indexes (``items.0.id``); '' or None returns data itself
dig = json_path


def put(data: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """Set a dotted path in a nested dict (creating the dicts on the way) and return the dict."""
    parts = path.split(".")
    node = data
    for part in parts[:-1]:
        nxt = node.get(part)
        if not isinstance(nxt, dict):
            nxt = node[part] = {}
        node = nxt
    node[parts[-1]] = value
    return data


def nest(changes: Mapping[str, Any]) -> dict[str, Any]:
    """Dotted-path keys expanded into nested dicts: ``{"org.id": 5}`` → ``{"org": {"id": 5}}``."""
    out: dict[str, Any] = {}
    for k, v in changes.items():
        put(out, k, v)
    return out


def flat(value: Any) -> str:
    """All scalar values of a JSON-like value as one string (to look for a tag in it)."""
    if isinstance(value, Mapping):
        return " ".join(flat(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return " ".join(flat(v) for v in value)
    return "" if value is None else str(value)


def fill(template: Any, **values: Any) -> Any:
    """Fill {name} placeholders in every string of a JSON-like template."""
    if isinstance(template, str):
        out = template
        for k, v in values.items():
            out = out.replace("{" + k + "}", str(v))
        return out
    if isinstance(template, dict):
        return {k: fill(v, **values) for k, v in template.items()}
    if isinstance(template, list):
        return [fill(v, **values) for v in template]
    return template


_PARAM = re.compile(r"\{([^}]+)\}")


def path_params(path: str) -> tuple[str, ...]:
    """The ``{name}`` parameters of a path template, in order."""
    return tuple(_PARAM.findall(path))
