"""Options under ``plugins.access`` in the profile (all optional; defaults come from the profile)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Check = Literal["anonymous", "vertical", "objects", "properties", "tokens", "login", "lockout",
                "registration", "hardening", "logging"]
ALL_CHECKS: tuple[str, ...] = ("anonymous", "vertical", "objects", "properties", "tokens", "login",
                               "lockout", "registration", "hardening", "logging")
Action = Literal["list", "read", "create", "update", "delete"]


class AccessOptions(BaseModel):
    """What the access probe checks and where the CRM keeps its auth endpoints."""

    model_config = ConfigDict(extra="forbid")
    checks: list[Check] = Field(default_factory=lambda: list(ALL_CHECKS), description="checks to run")
    resources: list[str] | None = Field(None, description="adapter resources to test (default: all)")
    owner_only_actions: dict[str, list[Action]] = Field(
        default_factory=dict,
        description="role -> actions it may perform only on records it owns, e.g. {sales: [update, delete]}",
    )
    owner_assignment_roles: list[str] = Field(
        default_factory=list, description="roles allowed to set the owner field to someone else")
    read_others: bool = Field(False, description="read-only checks may read records the audit did not create")
    public_paths: list[str] = Field(default_factory=list, description="paths meant to answer anonymously")
    max_openapi_paths: int = Field(60, ge=0, le=1000)
    token_wordlist_extra: list[str] = Field(default_factory=list, description="extra HMAC secrets to try")
    lockout_attempts: int = Field(8, ge=1, le=50, description="wrong passwords sent to the lockout account")
    login_path: str | None = Field(None, description="default: the login url of the accounts' auth config")
    login_body: dict[str, str] | None = Field(None, description="default: the accounts' auth body template")
    login_body_format: Literal["json", "form"] | None = None
    register_path: str | None = Field(None, description="self-registration endpoint to test, e.g. /api/auth/register")
    register_body: dict[str, str] = Field(
        default_factory=lambda: {"username": "{username}", "password": "{password}"},
        description="registration body; {username} (= {email}), {local} (its local part), {password} are filled in")
    register_domain: str = "audit.example"
    user_delete_path: str | None = Field(None, description="admin path to remove a registered user, with {id}")
    logout_path: str | None = Field(None, description="e.g. /api/auth/logout (POST with the token)")
    me_path: str | None = Field("/api/me", description="the caller's own user record (GET, PATCH)")
    me_role_field: str = Field("role", description="dotted path of the role in the own user record (e.g. user_obj.role)")
    me_tenant_field: str = Field("tenant_id", description="dotted path of the tenant in the own user record")
    users_path: str | None = Field("/api/users", description="admin-only user list (exposure and registration checks)")
    audit_log_path: str | None = Field(None, description="admin path of the access log, e.g. /api/admin/audit-log")
    audit_log_account: str | None = Field(None, description="account that reads the access log (default: an admin)")
    audit_log_params: dict[str, str | int] = Field(default_factory=lambda: {"limit": 1000})
    audit_log_items_path: str | None = Field(
        None, description="dotted path of the entries in the log answer; '' = the answer is the list "
                          "(default: items, results or entries)")
    audit_log_entity_names: dict[str, str] = Field(
        default_factory=dict, description="resource -> how the log names its entity type, e.g. {contacts: Contact}")
    cors_origin: str = "https://evil.example"
    check_hsts: bool = True
