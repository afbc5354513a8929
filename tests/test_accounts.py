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


def test_own_rules_and_role_privilege() -> None:
    own = profile([{"name": "rep", "role": "rep"}, {"name": "ro", "role": "ro"}],
                  {"rep": {"contacts": {"list": "own", "read": "own", "create": "allow"}},
                   "ro": {"contacts": {"list": "allow", "read": "deny"}}})
    rep, ro = own.account("rep"), own.account("ro")
    assert accounts.rule(own, "rep", "contacts", "read") == "own" and accounts.rule(own, "rep", "leads", "read") is None
    assert accounts.may(own, rep, "contacts", "read")               # 'own': allowed on its own records
    assert not accounts.may(own, ro, "contacts", "read")
    assert accounts.role_privilege(own, "rep") == 1 and accounts.role_privilege(own, "nobody") == 0
    assert accounts.most_privileged(own, resource="contacts", action="create").name == "rep"


def test_the_access_probe_picks_through_the_core() -> None:
    """AccessRun's account helpers answer exactly as crm_audit.core.accounts does."""
    from types import SimpleNamespace

    from crm_audit_plugins.access.common import AccessRun

    run = AccessRun.__new__(AccessRun)
    run.ctx = SimpleNamespace(profile=DEMO)
    assert run.general_accounts() == accounts.accounts(DEMO)
    assert run.first_of_role("admin", tenant="globex").name == "g_admin"
    assert run.writer("contacts", "acme", exclude=["sales"]).name == "boss"
    assert run.privilege("viewer") == 2 and run.may(DEMO.account("viewer"), "contacts", "read")
