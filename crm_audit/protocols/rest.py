"""The built-in ``rest`` adapter: a REST CRM described entirely in the profile's ``adapter:`` section.

It implements the :class:`~crm_audit.core.adapter.Adapter` contract from paths, field paths,
pagination, body templates and denial rules (docs/profile.md, "adapter (type: rest)").
"""

from __future__ import annotations

import builtins
import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from crm_audit.core.adapter import (
    NAMED_OPERATIONS,
    Action,
    Adapter,
    Caller,
    Discovery,
    FieldKind,
    Operation,
    Outcome,
    RawCredentials,
    classify_http,
    dig,
    flat,
    nest,
    path_params,
)
from crm_audit.core.hookspecs import hookimpl
from crm_audit.core.target import Exchange, Target
from crm_audit.protocols.tagged import TaggedAdapter

_PARAM = re.compile(r"\{[^}]+\}")


class Pagination(BaseModel):
    """How a list is paged: ``limit_offset`` (limit=…&offset=…), ``page`` (page=…&page_size=…) or ``none``."""

    model_config = ConfigDict(extra="forbid")
    style: Literal["limit_offset", "page", "none"] = Field("limit_offset", description="paging style")
    limit_param: str = Field("limit", description="limit_offset: page size parameter")
    offset_param: str = Field("offset", description="limit_offset: offset parameter")
    page_param: str = Field("page", description="page: page number parameter")
    page_size_param: str = Field("page_size", description="page: page size parameter")
    first_page: int = Field(1, description="page: number of the first page")


class DenialRule(BaseModel):
    """An answer the CRM gives for a refusal (or another outcome) that its HTTP status alone does not say.

    A rule matches when the status is one of ``status`` (empty: any), the JSON answer holds a
    non-empty value at ``path`` (when set) and ``match`` (when set) is found in that value —
    or in the whole body when ``path`` is not set. The first matching rule decides.
    """

    model_config = ConfigDict(extra="forbid")
    status: list[int] = Field(default_factory=list, description="HTTP statuses it applies to (empty: any)")
    path: str | None = Field(None, description="dotted path in the JSON answer that must hold a non-empty value, "
                                               "e.g. error")
    match: str | None = Field(None, description="regular expression searched in that value (or the body), "
                                                "e.g. (?i)not allowed|permission")
    outcome: Outcome = Field("denied", description="what a matching answer means")

    @field_validator("match")
    @classmethod
    def _regex(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                re.compile(v)
            except re.error as exc:
                raise ValueError(f"not a regular expression: {exc}") from None
        return v


class ResourceConfig(BaseModel):
    """One generic resource (contacts, leads …): where it lives and where its records keep what the probes read."""

    model_config = ConfigDict(extra="forbid")
    path: str = Field(description="collection path: GET lists, POST creates")
    item_path: str | None = Field(None, description="path of one record, with {id}; default path/{id}")
    list_items_path: str | None = Field(None, description="dotted path of the records in a list answer; "
                                                          "'' means the answer itself is the list; default adapter's")
    create: dict[str, Any] = Field(default_factory=dict, description="create body template; {tag} {n} are filled in")
    update: dict[str, Any] = Field(default_factory=dict, description="update body template that changes a record "
                                                                     "visibly; {tag} {n} are filled in")
    update_method: str = Field("PATCH", description="PATCH sends only the chosen fields; PUT sends the update "
                                                    "template with the chosen fields on top")
    item_record_path: str | None = Field(None, description="dotted path of the record in a single-record answer "
                                                           "(e.g. contact_obj); default: the answer itself")
    create_id_path: str | None = Field(None, description="dotted path of the record in a create answer; "
                                                         "default: the answer itself")
    reread_after_create: Literal["auto", "always", "never"] = Field(
        "auto", description="re-read a created record by id: auto = when the create answer lacks fields "
                            "of the body (a stub such as {error, message, id})")
    owner_field: str | None = Field(None, description="dotted path of the record's owner (e.g. owner_id, "
                                                      "created_by.id)")
    tenant_field: str | None = Field(None, description="dotted path of the record's tenant (e.g. tenant_id, org.id)")
    owner_write_field: str | None = Field(None, description="body key that sets the owner; default owner_field")
    tenant_write_field: str | None = Field(None, description="body key that sets the tenant; default tenant_field "
                                                             "(org.id is sent as {org: {id: …}})")


class RestConfig(BaseModel):
    """``adapter:`` with ``type: rest`` (the default): a REST CRM described in the profile."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["rest"] = "rest"
    id_field: str = Field("id", description="dotted path of a record's id")
    list_items_path: str = Field("items", description="dotted path of the records in a list answer; "
                                                      "'' means the answer itself is the list")
    total_path: str | None = Field("total", description="dotted path of the total count in a list answer")
    pagination: Pagination = Field(default_factory=Pagination, description="how lists are paged")
    tag_field: str | None = Field("tags", description="list field the run tag is put in on create "
                                                      "(null: the tag goes only into the body template's texts)")
    tag_filter_param: str | None = Field("tag", description="query parameter that filters a list by tag "
                                                            "(null: the CRM cannot; lists are searched)")
    openapi: str | None = Field(None, description="path of the OpenAPI/Swagger JSON document")
    openapi_account: str | None = Field(None, description="account that fetches the OpenAPI document "
                                                          "(default: anonymous)")
    denials: list[DenialRule] = Field(default_factory=list,
                                      description="answers that mean a refusal beyond 401/403/405 (a 200 body "
                                                  "with an error, a 400 'not allowed'); checked first")
    resources: dict[str, ResourceConfig] = Field(default_factory=dict, description="generic resource → its API")
    operations: dict[str, str] = Field(
        default_factory=dict, description="named operation → its request as 'METHOD /path' ({name} path parameters "
                                          "from the arguments; the rest goes in the query of GET/DELETE, else the "
                                          "JSON body), e.g. {me: GET /api/me, update_me: PATCH /api/me}; names: "
                                          + ", ".join(NAMED_OPERATIONS))

    @field_validator("operations")
    @classmethod
    def _requests(cls, v: dict[str, str]) -> dict[str, str]:
        for name, request in v.items():
            if _parse_op(request).path is None:
                raise ValueError(f"{name}: {request!r} is not 'METHOD /path' (e.g. GET /api/me)")
        return v


class RestAdapter(TaggedAdapter):
    """A REST CRM described in the profile: resource paths, field paths, pagination, bodies, denials."""

    type = "rest"
    version = "0.3.0"
    description = "Generic REST adapter configured in the profile (paths, field paths, pagination, bodies, denials)"
    config_model = RestConfig
    config: RestConfig  # validated from config_model by Adapter.__init__

    def __init__(self, config: dict[str, Any], target: Target) -> None:
        super().__init__(config, target)  # self.config: RestConfig, validated from config_model
        self._rules = [(r, re.compile(r.match) if r.match else None) for r in self.config.denials]

    # ------------------------------------------------------------------ paths
    def resources(self) -> list[str]:
        return list(self.config.resources)

    def _rc(self, name: str) -> ResourceConfig:
        try:
            return self.config.resources[name]
        except KeyError:
            raise KeyError(f"adapter has no resource {name!r} (adapter.resources)") from None

    def _item_template(self, resource: str) -> str:
        rc = self._rc(resource)
        return rc.item_path or rc.path.rstrip("/") + "/{id}"

    def _item(self, resource: str, record_id: Any) -> str:
        return self._item_template(resource).replace("{id}", str(record_id))

    def _send(self, method: str, path: str, account: Caller, **kw: Any) -> Exchange:
        """One request as a profile account, raw credentials, or anonymously."""
        if isinstance(account, RawCredentials):
            return self.target.request(method, path, auth=False, headers=dict(account.headers), **kw)
        if account is None:
            return self.target.request(method, path, auth=False, **kw)
        return self.target.request(method, path, account=account, **kw)

    # ------------------------------------------------------------------ fields
    def field_path(self, resource: str, kind: FieldKind) -> str | None:
        if kind == "id":
            return self.config.id_field
        if kind == "tag":
            return self.config.tag_field
        rc = self.config.resources.get(resource)
        if rc is None:
            return None
        return rc.owner_field if kind == "owner" else rc.tenant_field

    def field_change(self, resource: str, kind: FieldKind, value: Any) -> dict[str, Any] | None:
        rc = self.config.resources.get(resource)
        write = (rc.owner_write_field if kind == "owner" else rc.tenant_write_field if kind == "tenant" else None) \
            if rc else None
        path = write or self.field_path(resource, kind)
        return {path: value} if path else None

    # ------------------------------------------------------------------ records
    def _items(self, resource: str, data: Any) -> list[dict[str, Any]]:
        rc = self._rc(resource)
        items = dig(data, rc.list_items_path if rc.list_items_path is not None else self.config.list_items_path)
        if items is None and isinstance(data, list):
            items = data
        return [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []

    def total(self, resource: str, ex: Exchange) -> int | None:
        """The count at ``total_path`` of an allowed list answer."""
        if not self.config.total_path or self.classify(ex) != "allowed":
            return None
        value = dig(ex.json_or_none(), self.config.total_path)
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    def supports_tag_filter(self, resource: str) -> bool:
        return bool(self.config.tag_filter_param)

    def list(self, resource: str, account: Caller, limit: int = 50, offset: int = 0, *,
             tag: str | None = None, filters: Mapping[str, Any] | None = None,
             params: Mapping[str, Any] | None = None) -> tuple[list[dict[str, Any]], Exchange]:
        """The contract's list; ``filters`` are sent as query parameters; ``params`` (REST only) as they are."""
        p = self.config.pagination
        q: dict[str, Any] = dict(params or {})
        q.update(filters or {})
        if tag is not None and self.config.tag_filter_param:
            q[self.config.tag_filter_param] = tag
        if p.style == "limit_offset":
            q.update({p.limit_param: limit, p.offset_param: offset})
        elif p.style == "page":
            q.update({p.page_param: p.first_page + offset // max(limit, 1), p.page_size_param: limit})
        ex = self._send("GET", self._rc(resource).path, account, params=q)
        if self.classify(ex) != "allowed":
            return [], ex
        return self._items(resource, ex.json_or_none()), ex

    def _record(self, resource: str, ex: Exchange) -> dict[str, Any] | None:
        if self.classify(ex) != "allowed":
            return None
        data = dig(ex.json_or_none(), self._rc(resource).item_record_path)
        return data if isinstance(data, dict) else None

    def read(self, resource: str, record_id: Any, account: Caller) -> tuple[dict[str, Any] | None, Exchange]:
        ex = self._send("GET", self._item(resource, record_id), account)
        return self._record(resource, ex), ex

    def create(self, resource: str, account: Caller, tag: str, n: int = 0,
               overrides: Mapping[str, Any] | None = None) -> tuple[dict[str, Any] | None, Exchange]:
        rc = self._rc(resource)
        body, n = self.create_values(rc.create, tag, n)
        body = _merge(body, nest(overrides or {}))
        ex = self._send("POST", rc.path, account, json=body)
        if self.classify(ex) != "allowed":
            return None, ex
        data = ex.json_or_none()
        record = dig(data, rc.create_id_path) if rc.create_id_path else data
        rid = self.record_id(record) if isinstance(record, dict) else None
        if rid is None:
            record = self._find_tagged(resource, account, tag, body)
        elif rc.reread_after_create == "always" or (
                rc.reread_after_create == "auto" and not all(k in record for k in body)):
            again, _ = self.read(resource, rid, account)
            record = again if again is not None else record
        self.remember(resource, record, tag, n)
        return record, ex

    def _find_tagged(self, resource: str, account: Caller, tag: str, body: dict[str, Any]) -> dict[str, Any] | None:
        """Find a just-created record when the CRM does not return it (some return only 'ok').

        The record must carry every tagged value of the body (they hold the create's unique
        ``{n}``); list order is not relied on, since CRMs list newest- or oldest-first.
        """
        items, _ = self.list(resource, account, limit=100, tag=tag)
        tagged_values = [v for v in body.values() if isinstance(v, str) and tag in v]
        if tagged_values:
            matches = [i for i in items if all(v in flat(i) for v in tagged_values)]
        else:
            matches = [i for i in items if tag in flat(i)]
        return matches[0] if len(matches) == 1 else None

    def update_changes(self, resource: str, record_id: Any) -> dict[str, Any]:
        """The profile's update template, filled with the tag and number the record was created with."""
        return self.update_values(resource, record_id, self._rc(resource).update)

    def update(self, resource: str, record_id: Any, account: Caller,
               changes: Mapping[str, Any] | None = None) -> tuple[dict[str, Any] | None, Exchange]:
        rc = self._rc(resource)
        template = self.update_changes(resource, record_id)
        if changes is None:
            body = nest(template)
        elif rc.update_method.upper() == "PUT":
            body = _merge(nest(template), nest(changes))  # a full-record PUT needs the other required fields
        else:
            body = nest(changes)
        ex = self._send(rc.update_method, self._item(resource, record_id), account, json=body)
        return self._record(resource, ex), ex

    def delete(self, resource: str, record_id: Any, account: Caller) -> Exchange:
        return self._send("DELETE", self._item(resource, record_id), account)

    # ------------------------------------------------------------------ operations
    def _own_operations(self) -> builtins.list[Operation]:  # ``list`` is the method above here
        ops: builtins.list[Operation] = []
        for res, rc in self.config.resources.items():
            item = self._item_template(res)
            steps: tuple[tuple[Action, str, str], ...] = (
                ("list", "GET", rc.path), ("create", "POST", rc.path), ("read", "GET", item),
                ("update", rc.update_method.upper(), item), ("delete", "DELETE", item))
            for action, method, path in steps:
                ops.append(Operation(name=f"{res}.{action}", resource=res, action=action, params=path_params(path),
                                     safe=method == "GET", method=method, path=path))
        return ops

    def _match(self, method: str, path: str) -> tuple[str | None, Action | None]:
        """The resource and action a documented (method, path) performs, when it is one of the adapter's."""
        norm = _PARAM.sub("{}", path).rstrip("/")
        for op in self._own_operations():
            if op.method == method and _PARAM.sub("{}", op.path or "").rstrip("/") == norm:
                return op.resource, op.action
        return None, None

    def discover(self, account: Caller = None) -> Discovery:
        """The resources' own operations, then every operation of the OpenAPI/Swagger document (``openapi``),
        fetched as ``account`` (default: ``openapi_account``, else anonymously)."""
        ops = self._own_operations()
        doc_path = self.config.openapi
        if not doc_path:
            return Discovery(operations=ops)
        who = account if account is not None else self.config.openapi_account
        ex = self._send("GET", doc_path, who)
        doc = ex.json_or_none() if self.classify(ex) == "allowed" else None
        if not isinstance(doc, dict):
            return Discovery(operations=ops, source=doc_path, exchange=ex)
        base = doc.get("basePath", "") if isinstance(doc.get("basePath"), str) else ""
        seen = {o.name for o in ops}
        for path, verbs in (doc.get("paths") or {}).items():
            if not isinstance(verbs, dict) or not isinstance(path, str):
                continue
            for method in verbs:
                m = str(method).upper()
                if m not in ("GET", "POST", "PUT", "PATCH", "DELETE"):
                    continue
                full = base.rstrip("/") + path
                name = f"{m} {full}"
                if name in seen:
                    continue
                seen.add(name)
                res, action = self._match(m, full)
                ops.append(Operation(name=name, resource=res, action=action, params=path_params(full),
                                     safe=m == "GET", method=m, path=full, described=True))
        return Discovery(operations=ops, source=doc_path, exchange=ex)

    def offers(self, name: str) -> bool:
        """The resources' operations, the named ones in ``operations``, and any ``METHOD /path`` request."""
        return (name in self.config.operations or super().offers(name)
                or (name not in NAMED_OPERATIONS and _parse_op(name).path is not None))

    def call(self, operation: Operation | str, args: Mapping[str, Any] | None, account: Caller) -> tuple[Any, Exchange]:
        """An HTTP operation: path parameters from ``args``, the rest as query (GET/DELETE) or JSON body.

        A named operation (``me`` …) is the request ``operations`` maps it to.
        """
        name = operation.name if isinstance(operation, Operation) else operation
        if name in self.config.operations and (isinstance(operation, str) or not operation.path):
            mapped = _parse_op(self.config.operations[name])
            operation = Operation(name=name, params=mapped.params, safe=mapped.safe, method=mapped.method,
                                  path=mapped.path)
        op = operation if isinstance(operation, Operation) else next(
            (o for o in self._own_operations() if o.name == operation), None) or _parse_op(operation)
        if not op.path or not op.method:
            return super().call(op, args, account)
        rest = dict(args or {})
        path = op.path
        for name in path_params(path):
            if name not in rest:
                raise KeyError(f"operation {op.name!r} needs argument {name!r}")
            path = path.replace("{" + name + "}", str(rest.pop(name)))
        if op.name == "users.update" and isinstance(rest.get("values"), Mapping):  # the fields to set: the body
            rest.update(nest(rest.pop("values")))
        kw: dict[str, Any] = {"params": rest or None} if op.method in ("GET", "DELETE") else {"json": rest}
        ex = self._send(op.method, path, account, **kw)
        return (ex.json_or_none() if self.classify(ex) == "allowed" else None), ex

    # ------------------------------------------------------------------ answers
    def classify(self, ex: Exchange) -> Outcome:
        """The profile's ``denials`` rules first, then the HTTP reading (docs/plugins.md, "Outcomes")."""
        if ex.answered and ex.not_assessed is None and self._rules:
            data = None
            for rule, pattern in self._rules:
                if rule.status and ex.status not in rule.status:
                    continue
                if rule.path:
                    data = ex.json_or_none() if data is None else data
                    value = dig(data, rule.path)
                    if value in (None, "", [], {}, False):
                        continue
                    text = flat(value)
                else:
                    text = ex.text
                if pattern is None or pattern.search(text):
                    return rule.outcome
        return classify_http(ex)


def _merge(base: dict[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``top`` laid over it, nested dicts merged."""
    out = dict(base)
    for k, v in top.items():
        out[k] = _merge(out[k], v) if isinstance(out.get(k), dict) and isinstance(v, Mapping) else v
    return out


def _parse_op(name: str) -> Operation:
    """``"GET /api/x/{id}"`` as an operation; anything else as a named one."""
    method, _, path = name.partition(" ")
    if path.startswith("/") and method.isupper():
        return Operation(name=name, method=method, path=path, params=path_params(path), safe=method == "GET")
    return Operation(name=name)


@hookimpl
def crm_audit_register_adapters() -> list[type[Adapter]]:
    """The built-in ``rest`` adapter, registered like any plugin's (entry point ``adapter_rest``)."""
    return [RestAdapter]
