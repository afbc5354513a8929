"""The weighted task mix a load test replays, derived from the profile or given in the options.

Both the probe (master side) and ``crm-audit load-worker`` (remote side) build the mix with
:func:`task_mix`, so the same profile yields the same locustfile on every machine.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from pydantic import BaseModel, ConfigDict, Field

from crm_audit.core.profile import Profile


class LoadTask(BaseModel):
    """One request kind in the mix (path relative to the target's base URL)."""

    model_config = ConfigDict(extra="forbid")
    name: str
    path: str
    method: str = "GET"
    account: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    weight: float = Field(1.0, gt=0)
    expect_status: list[int] = Field(default_factory=lambda: [200])


def task_mix(profile: Profile, tasks: list[LoadTask] | None) -> list[LoadTask]:
    """The options' tasks, or by default every GET endpoint of the profile with weight 1."""
    if tasks:
        return list(tasks)
    return [
        LoadTask(name=ep.name, path=ep.path, method="GET", account=ep.account, params=dict(ep.params),
                 expect_status=list(ep.expect_status))
        for ep in profile.endpoints if ep.method.upper() == "GET"
    ]


def task_rows(tasks: list[LoadTask]) -> list[dict[str, Any]]:
    """JSON rows embedded in the locustfile: the query string is already encoded into the path."""
    rows = []
    for t in tasks:
        path = "/" + t.path.lstrip("/")
        if t.params:
            path += ("&" if "?" in path else "?") + urlencode(t.params, doseq=True)
        rows.append({"name": t.name, "method": t.method.upper(), "path": path, "account": t.account,
                     "weight": t.weight, "expect": list(t.expect_status)})
    return rows
