"""Picking the account a check acts as: by role, tenant, purpose and privilege.

Every helper reads only the profile (its ``accounts`` and ``access_matrix``) and never
contacts the target. By default only ``purpose: general`` accounts are picked: a
``purpose: lockout`` account is one the login-limit test may lock (``disposable``: one the
token-lifecycle checks may change), so a check gets it only by asking for it
(``purpose="lockout"``). Ties keep the order of the profile's accounts. This is the one
account picker: probes (the access probe's ``AccessRun`` included) pick through it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from crm_audit.core.profile import Account, Profile

#: an account's purpose: general, or lockout (the one account the login-limit test may lock)
Purpose = Literal["general", "lockout", "disposable"]

#: role names taken for administrators, most trusted first (compared case-insensitively)
ADMIN_ROLES = ("admin", "administrator", "superuser", "manager")
#: parts of a role name that mark a read-only role (compared case-insensitively)
READ_ONLY_HINTS = ("read", "view", "guest", "audit")


def accounts(profile: Profile, *, role: str | Iterable[str] | None = None, tenant: str | None = None,
             purpose: Purpose | None = "general", exclude: Iterable[str] = ()) -> list[Account]:
    """The profile's accounts that match every filter given, in profile order.

    ``role`` is one role or several (any of them); ``purpose`` None takes every purpose;
    ``exclude`` names accounts to leave out.
    """
    roles = {role} if isinstance(role, str) else (set(role) if role is not None else None)
    skip = set(exclude)
    return [a for a in profile.accounts
            if (roles is None or a.role in roles) and (tenant is None or a.tenant == tenant)
            and (purpose is None or a.purpose == purpose) and a.name not in skip]


def first(profile: Profile, *, role: str | Iterable[str] | None = None, tenant: str | None = None,
          purpose: Purpose | None = "general", exclude: Iterable[str] = ()) -> Account | None:
    """The first matching account; several roles are tried in the order given."""
    if role is None or isinstance(role, str):
        found = accounts(profile, role=role, tenant=tenant, purpose=purpose, exclude=exclude)
        return found[0] if found else None
    for one in role:
        hit = first(profile, role=one, tenant=tenant, purpose=purpose, exclude=exclude)
        if hit is not None:
            return hit
    return None


def rule(profile: Profile, role: str, resource: str, action: str) -> str | None:
    """'allow', 'deny' or 'own' from the access matrix, or None when the profile does not say."""
    decision = profile.access_matrix.get(role, {}).get(resource, {}).get(action)  # type: ignore[call-overload]
    return str(decision) if decision is not None else None


def may(profile: Profile, account: Account, resource: str, action: str) -> bool:
    """True when the access matrix allows ``action`` on ``resource`` to the account's role ('own' counts).

    Without an access matrix every action is assumed allowed (a check then verifies by doing).
    """
    if not profile.access_matrix:
        return True
    return rule(profile, account.role, resource, action) in ("allow", "own")


def role_privilege(profile: Profile, role: str) -> int:
    """How many actions the access matrix allows ``role`` (0 without a matrix)."""
    cells = profile.access_matrix.get(role, {})
    return sum(1 for actions in cells.values() for decision in actions.values() if decision == "allow")


def privilege(profile: Profile, account: Account) -> int:
    """How many actions the access matrix allows the account's role (0 without a matrix)."""
    return role_privilege(profile, account.role)


def _admin_rank(account: Account) -> int:
    role = account.role.lower()
    return ADMIN_ROLES.index(role) if role in ADMIN_ROLES else len(ADMIN_ROLES)


def _read_only(account: Account) -> bool:
    role = account.role.lower()
    return any(hint in role for hint in READ_ONLY_HINTS)


def admin(profile: Profile, *, tenant: str | None = None, exclude: Iterable[str] = ()) -> Account | None:
    """The account that operates and reads everything: an admin, else the most privileged.

    Order: a role of :data:`ADMIN_ROLES` (in that order), then the most allow cells in the
    access matrix, then profile order; ``None`` when no general account matches.
    """
    found = accounts(profile, tenant=tenant, exclude=exclude)
    if not found:
        return None
    return min(found, key=lambda a: (_admin_rank(a), -privilege(profile, a)))


def by_privilege(profile: Profile, *, tenant: str | None = None, exclude: Iterable[str] = (),
                 most_first: bool = True) -> list[Account]:
    """The general accounts ordered by their allow cells in the access matrix (ties: profile order)."""
    found = accounts(profile, tenant=tenant, exclude=exclude)
    return sorted(found, key=lambda a: -privilege(profile, a) if most_first else privilege(profile, a))


def most_privileged(profile: Profile, *, tenant: str | None = None, exclude: Iterable[str] = (),
                    resource: str | None = None, action: str | None = None) -> Account | None:
    """The general account with the most allow cells; with ``resource`` and ``action``, one that may do it."""
    found = [a for a in by_privilege(profile, tenant=tenant, exclude=exclude)
             if resource is None or action is None or may(profile, a, resource, action)]
    return found[0] if found else None


def least_privileged(profile: Profile, *, tenant: str | None = None, exclude: Iterable[str] = (),
                     other_role_than: str | Account | None = None) -> Account | None:
    """A general account with as little privilege as possible: a read-only role, else the fewest allow cells.

    ``other_role_than`` (an account or its name) leaves out accounts sharing that account's role.
    """
    if isinstance(other_role_than, str):
        other_role_than = next((a for a in profile.accounts if a.name == other_role_than), None)
    found = [a for a in accounts(profile, tenant=tenant, exclude=exclude)
             if other_role_than is None or a.role != other_role_than.role]
    if not found:
        return None
    return min(found, key=lambda a: (not _read_only(a), privilege(profile, a)))


def name_of(account: Account | None) -> str | None:
    """The account's name, or None: what ``Target.request(account=…)`` and the adapter take."""
    return account.name if account is not None else None
