"""A listing that breaks off is never taken for the whole collection (issue 14)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from local_http import LocalServer

from crm_audit.core.adapter import IncompleteRead
from crm_audit.core.profile import Profile
from crm_audit.core.target import Target
from crm_audit.protocols.rest import RestAdapter


def pages(fail_at_offset: int | None, status: int = 502) -> Any:
    """/api/contacts: 5 records in pages of 2; the page at ``fail_at_offset`` answers ``status``."""
    def route(handler: Any) -> tuple[int, dict[str, str], bytes]:
        query = dict(p.split("=", 1) for p in handler.path.partition("?")[2].split("&") if "=" in p)
        offset, limit = int(query.get("offset", 0)), int(query.get("limit", 2))
        if offset == fail_at_offset:
            return status, {"Content-Type": "application/json"}, b'{"detail": "upstream"}'
        rows = [{"id": i, "email": f"u{i}@example.com"} for i in range(offset, min(offset + limit, 5))]
        return 200, {"Content-Type": "application/json"}, json.dumps(rows).encode()
    return route


def adapter_for(url: str) -> RestAdapter:
    profile = Profile.model_validate({"target": {"base_url": url, "rate_limit_rps": 1000},
                                      "adapter": {"type": "rest", "resources": {"contacts": {"path": "/api/contacts"}}}})
    return RestAdapter(profile.adapter, Target(profile))


def test_every_page_read_gives_every_record() -> None:
    with LocalServer({"/api/contacts": pages(None)}) as srv:
        assert [r["id"] for r in adapter_for(srv.base_url).iterate("contacts", None, page_size=2)] == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("status", [500, 502, 503])
def test_a_page_that_fails_midway_raises_instead_of_ending_short(status: int) -> None:
    with LocalServer({"/api/contacts": pages(2, status)}) as srv:
        got: list[int] = []
        with pytest.raises(IncompleteRead, match="offset 2 failed after 2 record"):
            for r in adapter_for(srv.base_url).iterate("contacts", None, page_size=2):
                got.append(r["id"])
        assert got == [0, 1]


def test_a_refusal_ends_the_listing_quietly() -> None:
    with LocalServer({"/api/contacts": pages(2, 403)}) as srv:
        assert [r["id"] for r in adapter_for(srv.base_url).iterate("contacts", None, page_size=2)] == [0, 1]
