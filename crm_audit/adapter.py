"""Target adapters: how generic notions (contacts, leads, cases …) map onto one CRM's API.

The built-in ``rest`` adapter is configured entirely in the profile's ``adapter:`` section
and is registered through the ``crm_audit_register_adapters`` hook, exactly as a
third-party adapter plugin would be (see docs/plugins.md).
"""

from __future__ import annotations

import itertools
from typing import Any, ClassVar, Iterator, Literal

from pydantic import BaseModel, ConfigDict, Field

from .hookspecs import hookimpl
from .target import Exchange, Target, TargetError


class Adapter:
    """Base class of target adapters; probes call only these methods."""

    type: ClassVar[str] = ""
    version: ClassVar[str] = "0.0.0"
    description: ClassVar[str] = ""

    def __init__(self, config: dict[str, Any], target: Target) -> None:
        self.raw_config = config
        self.target = target

    def resources(self) -> list[str]:  # pragma: no cover - interface
        raise NotImplementedError

    def list(self, resource: str, account: str | None, limit: int = 50, offset: int = 0) -> tuple[list[dict], Exchange]:
        raise NotImplementedError  # pragma: no cover

    def create(self, resource: str, account: str | None, tag: str, n: int = 0,
               overrides: dict[str, Any] | None = None) -> tuple[dict | None, Exchange]:
        raise NotImplementedError  # pragma: no cover

    def read(self, resource: str, record_id: Any, account: str | None) -> tuple[dict | None, Exchange]:
        raise NotImplementedError  # pragma: no cover

    def update(self, resource: str, record_id: Any, account: str | None,
               body: dict[str, Any] | None = None) -> tuple[dict | None, Exchange]:
        raise NotImplementedError  # pragma: no cover

    def delete(self, resource: str, record_id: Any, account: str | None) -> Exchange:
        raise NotImplementedError  # pragma: no cover

    def update_body(self, resource: str, record_id: Any) -> dict[str, Any]:
        """A body that changes the record visibly (probes check the change took effect)."""
        return {}

    def record_id(self, record: dict) -> Any:
        raise NotImplementedError  # pragma: no cover

    def iterate(self, resource: str, account: str | None, max_records: int = 1000, page_size: int = 100) -> Iterator[dict]:
        """Every record of a resource, page by page, at most ``max_records``.

        Ends quietly on an empty page or a refusal (4xx: nothing more this account may read);
        raises :class:`IncompleteRead` when a page got no usable answer (network error,
        timeout, 5xx), so a figure is never computed on part of the data as if it were all.
        """
        offset = 0
        seen = 0
        while seen < max_records:
            items, ex = self.list(resource, account, limit=min(page_size, max_records - seen), offset=offset)
            if ex.not_assessed is not None:
                raise IncompleteRead(f"{resource}: reading page at offset {offset} failed after {seen} record(s): "
                                     f"{ex.error or f'HTTP {ex.status}'}", ex)
            if not ex.ok or not items:
                return
            for item in items:
                yield item
                seen += 1
                if seen >= max_records:
                    return
            offset += len(items)


class IncompleteRead(TargetError):
    """A listing broke off: the records read so far are not the whole collection."""

    def __init__(self, message: str, exchange: Exchange) -> None:
        super().__init__(message)
        self.exchange = exchange


class Pagination(BaseModel):
    model_config = ConfigDict(extra="forbid")
    style: Literal["limit_offset", "page", "none"] = "limit_offset"
    limit_param: str = "limit"
    offset_param: str = "offset"
    page_param: str = "page"
    page_size_param: str = "page_size"
    first_page: int = 1


class ResourceConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str
    item_path: str | None = Field(None, description="path of one record, with {id}; default path/{id}")
    list_items_path: str | None = None
    create: dict[str, Any] = Field(default_factory=dict, description="body template; {tag} {n} are filled in")
    update: dict[str, Any] = Field(default_factory=dict)
    update_method: str = "PATCH"
    item_record_path: str | None = Field(None, description="where a single-record response wraps the record, e.g. contact_obj")
    owner_field: str | None = None
    tenant_field: str | None = None
    create_id_path: str | None = None


class RestConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["rest"] = "rest"
    id_field: str = "id"
    list_items_path: str = "items"
    total_path: str | None = "total"
    pagination: Pagination = Field(default_factory=Pagination)
    tag_field: str | None = "tags"
    tag_filter_param: str | None = "tag"
    openapi: str | None = None
    resources: dict[str, ResourceConfig] = Field(default_factory=dict)


def dig(data: Any, path: str | None) -> Any:
    """Follow a dotted path into nested dicts; '' or None returns data itself."""
    if not path:
        return data
    for part in path.split("."):
        if isinstance(data, dict):
            data = data.get(part)
        elif isinstance(data, list) and part.isdigit() and int(part) < len(data):
            data = data[int(part)]
        else:
            return None
    return data


def _flat(record: dict) -> str:
    return " ".join(str(v) for v in record.values())


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


class RestAdapter(Adapter):
    """A REST CRM described in the profile: resource paths, id field, pagination, bodies."""

    type = "rest"
    version = "0.1.0"
    description = "Generic REST adapter configured in the profile (paths, ids, pagination, bodies)"
    _counter = itertools.count(1)

    def __init__(self, config: dict[str, Any], target: Target) -> None:
        super().__init__(config, target)
        self.config = RestConfig.model_validate(config)
        self._created: dict[tuple[str, str], tuple[str, int]] = {}

    def resources(self) -> list[str]:
        return list(self.config.resources)

    def resource(self, name: str) -> ResourceConfig:
        try:
            return self.config.resources[name]
        except KeyError:
            raise KeyError(f"adapter has no resource {name!r} (adapter.resources)") from None

    def item_path(self, resource: str, record_id: Any) -> str:
        rc = self.resource(resource)
        tpl = rc.item_path or rc.path.rstrip("/") + "/{id}"
        return tpl.replace("{id}", str(record_id))

    def record_id(self, record: dict) -> Any:
        return record.get(self.config.id_field) if isinstance(record, dict) else None

    def _items(self, resource: str, data: Any) -> list[dict]:
        rc = self.resource(resource)
        items = dig(data, rc.list_items_path if rc.list_items_path is not None else self.config.list_items_path)
        if items is None and isinstance(data, list):
            items = data
        return [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []

    def list(self, resource: str, account: str | None, limit: int = 50, offset: int = 0,
             params: dict[str, Any] | None = None) -> tuple[list[dict], Exchange]:
        p = self.config.pagination
        q: dict[str, Any] = dict(params or {})
        if p.style == "limit_offset":
            q.update({p.limit_param: limit, p.offset_param: offset})
        elif p.style == "page":
            q.update({p.page_param: p.first_page + offset // max(limit, 1), p.page_size_param: limit})
        ex = self.target.request("GET", self.resource(resource).path, account=account, params=q)
        if not ex.ok:
            return [], ex
        return self._items(resource, ex.json_or_none()), ex

    def create(self, resource: str, account: str | None, tag: str, n: int = 0,
               overrides: dict[str, Any] | None = None) -> tuple[dict | None, Exchange]:
        rc = self.resource(resource)
        n = n or next(self._counter)
        body = fill(rc.create, tag=tag, n=n)
        if self.config.tag_field and self.config.tag_field not in body:
            body[self.config.tag_field] = [tag]
        body.update(overrides or {})
        ex = self.target.request("POST", rc.path, account=account, json=body)
        if not ex.ok:
            return None, ex
        data = ex.json_or_none()
        record = dig(data, rc.create_id_path) if rc.create_id_path else data
        if not isinstance(record, dict) or self.record_id(record) is None:
            record = self._find_tagged(resource, account, tag, body)
        if record is not None:
            self._created[(resource, str(self.record_id(record)))] = (tag, n)
        return record, ex

    def _find_tagged(self, resource: str, account: str | None, tag: str, body: dict) -> dict | None:
        """Find a just-created record when the CRM does not return it (some return only 'ok').

        The record must carry every tagged value of the body (they hold the create's unique
        ``{n}``); list order is not relied on, since CRMs list newest- or oldest-first.
        """
        params = {self.config.tag_filter_param: tag} if self.config.tag_filter_param else None
        items, _ = self.list(resource, account, limit=100, params=params)
        tagged_values = [v for v in body.values() if isinstance(v, str) and tag in v]
        if tagged_values:
            matches = [i for i in items if all(v in _flat(i) for v in tagged_values)]
        else:
            matches = [i for i in items if tag in _flat(i)]
        return matches[0] if len(matches) == 1 else None

    def _record(self, resource: str, ex: Exchange) -> dict | None:
        data = dig(ex.json_or_none(), self.resource(resource).item_record_path) if ex.ok else None
        return data if isinstance(data, dict) else None

    def read(self, resource: str, record_id: Any, account: str | None) -> tuple[dict | None, Exchange]:
        ex = self.target.request("GET", self.item_path(resource, record_id), account=account)
        return self._record(resource, ex), ex

    def update_body(self, resource: str, record_id: Any) -> dict[str, Any]:
        """The profile's update template, filled with the tag and number the record was created with."""
        tag, n = self._created.get((resource, str(record_id)), ("crm-audit", next(self._counter)))
        return fill(self.resource(resource).update, tag=tag, n=n)

    def update(self, resource: str, record_id: Any, account: str | None,
               body: dict[str, Any] | None = None) -> tuple[dict | None, Exchange]:
        """Update a record; with no body, :meth:`update_body`."""
        rc = self.resource(resource)
        if body is None:
            body = self.update_body(resource, record_id)
        ex = self.target.request(rc.update_method, self.item_path(resource, record_id), account=account, json=body)
        return self._record(resource, ex), ex

    def delete(self, resource: str, record_id: Any, account: str | None) -> Exchange:
        return self.target.request("DELETE", self.item_path(resource, record_id), account=account)

    def openapi_paths(self) -> list[tuple[str, str]]:
        """(method, path) pairs from the CRM's OpenAPI/Swagger document, if it publishes one."""
        if not self.config.openapi:
            return []
        ex = self.target.request("GET", self.config.openapi, auth=False)
        doc = ex.json_or_none() if ex.ok else None
        if not isinstance(doc, dict):
            return []
        base = doc.get("basePath", "") if isinstance(doc.get("basePath"), str) else ""
        out = []
        for path, ops in (doc.get("paths") or {}).items():
            if isinstance(ops, dict):
                for method in ops:
                    if method.lower() in ("get", "post", "put", "patch", "delete"):
                        out.append((method.upper(), base.rstrip("/") + path))
        return out


@hookimpl
def crm_audit_register_adapters() -> list[type[Adapter]]:
    return [RestAdapter]
