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
    """What the access probe checks; the CRM's own-user, user, registration and log operations come from the
    adapter (``adapter.operations``), the ``*_path`` keys are their REST shorthand."""

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
    login_path: str | None = Field(None, description="no longer used: logins go through each account's auth method "
                                                     "(Target.try_login); kept so older profiles load")
    login_body: dict[str, str] | None = Field(None, description="no longer used (see login_path)")
    login_body_format: Literal["json", "form"] | None = Field(None, description="no longer used (see login_path)")
    register_path: str | None = Field(None, description="REST shorthand of the adapter's 'register' operation "
                                                        "(POST), e.g. /api/auth/register")
    register_body: dict[str, str] = Field(
        default_factory=lambda: {"username": "{username}", "password": "{password}"},
        description="arguments of the 'register' operation; {username} (= {email}), {local} (its local part), "
                    "{password} are filled in")
    register_domain: str = "audit.example"
    user_delete_path: str | None = Field(None, description="REST shorthand of the adapter's 'users.delete' operation "
                                                           "(DELETE, with {id})")
    logout_path: str | None = Field(None, description="no longer used: logout is the account's auth.logout "
                                                      "(Target.logout); kept so older profiles load")
    me_path: str | None = Field(None, description="REST shorthand of the adapter's 'me' (GET) and 'update_me' "
                                                  "(PATCH) operations, e.g. /api/me")
    me_role_field: str = Field("role", description="dotted path of the role in the own user record (e.g. user_obj.role)")
    me_tenant_field: str = Field("tenant_id", description="dotted path of the tenant in the own user record")
    users_path: str | None = Field(None, description="REST shorthand of the adapter's 'users.list' operation (GET), "
                                                     "e.g. /api/users")
    audit_log_path: str | None = Field(None, description="REST shorthand of the adapter's 'audit_log' operation "
                                                         "(GET), e.g. /api/admin/audit-log")
    audit_log_account: str | None = Field(None, description="account that reads the access log (default: an admin)")
    audit_log_params: dict[str, str | int] = Field(default_factory=lambda: {"limit": 1000},
                                                   description="arguments of the 'audit_log' operation")
    audit_log_items_path: str | None = Field(
        None, description="dotted path of the entries in the log answer; '' = the answer is the list "
                          "(default: items, results, entries or records)")
    audit_log_entity_names: dict[str, str] = Field(
        default_factory=dict, description="resource -> how the log names its entity type, e.g. {contacts: Contact}")
    cors_origin: str = "https://evil.example"
    check_hsts: bool = True
