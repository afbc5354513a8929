"""crm_audit.core.accounts: picking accounts by role, tenant, purpose and privilege."""

from __future__ import annotations

from typing import Any

from crm_audit.core import accounts
from crm_audit.core.profile import Profile

FULL = {a: "allow" for a in ("list", "read", "create", "update", "delete")}
READ = {**{a: "deny" for a in ("create", "update", "delete")}, "list": "allow", "read": "allow"}


def profile(rows: list[dict[str, Any]], matrix: dict[str, Any] | None = None) -> Profile:
    return Profile.model_validate({"target": {"base_url": "http://crm.test"}, "accounts": rows,
                                   "access_matrix": matrix or {}})


DEMO = profile([
    {"name": "lock", "role": "admin", "tenant": "acme", "purpose": "lockout"},
    {"name": "sales", "role": "sales", "tenant": "acme"},
    {"name": "boss", "role": "Admin", "tenant": "acme"},
    {"name": "mgr", "role": "manager", "tenant": "acme"},
    {"name": "viewer", "role": "viewer", "tenant": "acme"},
    {"name": "g_admin", "role": "admin", "tenant": "globex"},
], {"Admin": {"contacts": FULL}, "admin": {"contacts": FULL}, "sales": {"contacts": FULL},
    "manager": {"contacts": FULL}, "viewer": {"contacts": READ}})


def names(found: list[Any]) -> list[str]:
    return [a.name for a in found]


def test_filters_keep_profile_order_and_leave_the_lockout_account_out() -> None:
    assert names(accounts.accounts(DEMO)) == ["sales", "boss", "mgr", "viewer", "g_admin"]
    assert names(accounts.accounts(DEMO, role="admin")) == ["g_admin"]
    assert names(accounts.accounts(DEMO, role=("admin", "Admin"), tenant="acme")) == ["boss"]
    assert names(accounts.accounts(DEMO, purpose="lockout")) == ["lock"]
    assert names(accounts.accounts(DEMO, purpose=None, role="admin")) == ["lock", "g_admin"]
    assert names(accounts.accounts(DEMO, exclude=["sales", "mgr"], tenant="acme")) == ["boss", "viewer"]


def test_first_tries_roles_in_the_order_given() -> None:
    assert accounts.first(DEMO, role=("manager", "admin")).name == "mgr"
    assert accounts.first(DEMO, role=("nobody", "admin")).name == "g_admin"
    assert accounts.first(DEMO, role="nobody") is None


def test_admin_prefers_admin_roles_case_insensitively_then_privilege() -> None:
    assert accounts.admin(DEMO).name == "boss"                      # 'Admin' is an admin role; lockout never
    assert accounts.admin(DEMO, tenant="globex").name == "g_admin"
    assert accounts.admin(DEMO, exclude=["boss", "g_admin"]).name == "mgr"
    plain = profile([{"name": "a", "role": "viewer"}, {"name": "b", "role": "rep"}],
                    {"viewer": {"contacts": READ}, "rep": {"contacts": FULL}})
    assert accounts.admin(plain).name == "b"                          # no admin role: the most allow cells
    assert accounts.admin(profile([])) is None


def test_least_privileged_is_read_only_then_fewest_allow_cells() -> None:
    assert accounts.least_privileged(DEMO).name == "viewer"
    assert accounts.least_privileged(DEMO, other_role_than="viewer").name == "sales"
    no_matrix = profile([{"name": "op", "role": "admin"}, {"name": "x", "role": "rep"}, {"name": "y", "role": "rep2"}])
    assert accounts.least_privileged(no_matrix, other_role_than="op").name == "x"   # ties: profile order
    assert accounts.least_privileged(profile([{"name": "op", "role": "admin"}]), other_role_than="op") is None


def test_matrix_helpers() -> None:
    viewer, sales = DEMO.account("viewer"), DEMO.account("sales")
    assert accounts.may(DEMO, sales, "contacts", "create") and not accounts.may(DEMO, viewer, "contacts", "create")
    assert not accounts.may(DEMO, sales, "leads", "read")            # the matrix does not allow it
    assert accounts.privilege(DEMO, sales) == 5 and accounts.privilege(DEMO, viewer) == 2
    assert accounts.most_privileged(DEMO, resource="contacts", action="create", exclude=["sales"]).name == "boss"
    assert accounts.may(profile([{"name": "a", "role": "r"}]), profile([{"name": "a", "role": "r"}]).accounts[0],
                        "contacts", "delete")                           # no matrix: assumed allowed
    assert accounts.name_of(None) is None and accounts.name_of(sales) == "sales"


def test_by_privilege_orders_most_first_and_keeps_ties_in_profile_order() -> None:
    assert names(accounts.by_privilege(DEMO)) == ["sales", "boss", "mgr", "g_admin", "viewer"]
    assert names(accounts.by_privilege(DEMO, most_first=False, tenant="acme")) == ["viewer", "sales", "boss", "mgr"]
