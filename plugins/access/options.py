"""Options under ``plugins.access`` in the profile (all optional; defaults come from the profile)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Check = Literal["anonymous", "vertical", "objects", "properties", "tokens", "login", "lockout",
                "registration", "hardening", "logging", "surface", "data_exposure",
                "collections", "metadata", "lifecycle", "passwords", "escalation", "injection",
                "robustness"]
ALL_CHECKS: tuple[Check, ...] = ("anonymous", "vertical", "objects", "properties", "tokens", "login",
                               "lockout", "registration", "hardening", "logging", "surface", "data_exposure",
                               "collections", "metadata", "lifecycle", "passwords", "escalation", "injection",
                               "robustness")
Action = Literal["list", "read", "create", "update", "delete"]


#: the 'audit_log' operation's default arguments (copied per options object)
_DEFAULT_LOG_PARAMS: dict[str, str | int] = {"limit": 1000}


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
    max_surface_operations: int = Field(60, ge=0, le=1000, description="surface discovery: at most this many safe "
                                        "operations (collections and item reads) are called, once per caller")
    surface_page_size: int = Field(50, ge=1, le=1000, description="surface discovery: page size asked of the "
                                                                  "adapter's resource lists")
    surface_workers: int = Field(3, ge=1, le=16, description="surface discovery: requests sent at a time (the "
                                                             "target's rate limit and budget still hold)")
    surface_budget_reserve: int = Field(200, ge=0, description="surface checks stop calling (and report the rest "
                                                               "as skipped) when fewer requests than this are left "
                                                               "in the request budget")
    large_collection_bytes: int = Field(1_000_000, ge=1, description="unbounded collections: an unpaginated answer "
                                                                     "at least this large is a finding")
    metadata_paths: list[str] = Field(
        default_factory=lambda: ["/version", "/api/version", "/api/info", "/info", "/api/status", "/status",
                                 "/api/tenants", "/api/databases", "/web/database/list", "/api/system/info",
                                 "/server-info", "/actuator/info", "/actuator/env"],
        description="unauthenticated metadata: extra paths tried anonymously (REST adapters; besides the "
                    "discovered collections)")
    token_wordlist_extra: list[str] = Field(default_factory=list, description="extra HMAC secrets to try")
    lockout_attempts: int = Field(8, ge=1, le=50, description="wrong passwords sent to the lockout account")
    lockout_max_s: float = Field(60.0, ge=0, le=3600, description="a lock that still refuses the lockout account's "
                                 "correct password after this many seconds is an account denial of service; the "
                                 "probe waits up to this long (plus a margin) to see a lock lift")
    max_error_probes: int = Field(60, ge=0, le=1000, description="robust error handling: at most this many "
                                  "missing/malformed-id requests (reads first, then writes)")
    max_body_probes: int = Field(40, ge=0, le=1000, description="robust error handling: at most this many "
                                 "wrong-shape body requests (and the creates they bend) on the resources")
    lifecycle_args: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="token lifecycle and password storage: the arguments sent to each named operation, as a "
                    "template per operation (replaces its default); a value that is exactly '{name}' keeps the "
                    "value's type. Defaults: change_password {old_password: '{old}', new_password: '{new}'}, "
                    "users.deactivate and users.activate {id: '{id}'}, users.create {username: '{email}', email: "
                    "'{email}', password: '{password}'}; also {local} (the e-mail's local part) and {tag}")
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
    audit_log_params: dict[str, str | int] = Field(default_factory=lambda: _DEFAULT_LOG_PARAMS.copy(),
                                                   description="arguments of the 'audit_log' operation")
    audit_log_items_path: str | None = Field(
        None, description="dotted path of the entries in the log answer; '' = the answer is the list "
                          "(default: items, results, entries or records)")
    audit_log_entity_names: dict[str, str] = Field(
        default_factory=dict, description="resource -> how the log names its entity type, e.g. {contacts: Contact}")
    cors_origin: str = "https://evil.example"
    check_hsts: bool = True
