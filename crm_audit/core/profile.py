"""The audit profile: a YAML file, validated, with secrets only as ${ENV_VAR} references.

Every mistake becomes one :class:`ProfileError` line that names the key and the file
position, never a traceback.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from crm_audit.core.errors import UsageError, dotted, error_lines, first_error
from crm_audit.core.safeyaml import clip, parse_text, read_file

_ENV_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_TEMPLATE_RE = re.compile(r"\{(username|password|code|token)\}")
_SECRET_KEYS = {"password", "token", "api_key", "secret", "client_secret"}


MAX_ERROR_CHARS = 400
MAX_NAME_CHARS = 200
MAX_PATH_CHARS = 2048
MAX_HEADER_CHARS = 8192
_TOKEN_RE = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 9110 token: header names, methods, auth schemes


class ProfileError(UsageError):
    """A profile problem, already phrased as one line for the user (at most MAX_ERROR_CHARS characters)."""

    def __init__(self, message: str) -> None:
        super().__init__(clip(message, MAX_ERROR_CHARS))


def _has_controls(v: str) -> bool:
    """C0/C1 control characters, DEL, Unicode line separators and lone surrogates (undecodable bytes)."""
    return any(ord(c) < 32 or 127 <= ord(c) < 160 or c in "\u2028\u2029" or 0xD800 <= ord(c) < 0xE000 for c in v)


def _text(limit: int) -> Any:
    def check(v: str) -> str:
        if not v.strip():
            raise ValueError("must not be empty")
        if len(v) > limit:
            raise ValueError(f"is {len(v):,} characters long; at most {limit:,}")
        if _has_controls(v):
            raise ValueError("must not contain control characters (CR, LF, tab …)")
        return v
    return AfterValidator(check)


def _header_safe(v: str) -> str:
    if v != v.strip():
        raise ValueError("has surrounding white space")
    try:
        v.encode("latin-1")
    except UnicodeEncodeError:
        raise ValueError("is sent in an HTTP header, so it must be Latin-1 text") from None
    return v


def _token(v: str) -> str:
    if v and not _TOKEN_RE.fullmatch(v):
        raise ValueError("must be an HTTP token (letters, digits and !#$%&'*+.^_`|~-, no spaces)")
    return v


def _url_port(v: str) -> str:
    if v.lower().startswith(("http://", "https://")):
        try:
            port = urlsplit(v).port
        except ValueError:
            port = 0
        if port == 0:
            raise ValueError("has an invalid port: give 1–65535")
    return v


Name = Annotated[str, _text(MAX_NAME_CHARS)]
"""A name, role or label: 1–200 characters, no control characters."""
UrlPath = Annotated[str, _text(MAX_PATH_CHARS), AfterValidator(_url_port)]
"""A path or in-scope URL: at most 2048 characters, no control characters, a valid port."""
HeaderName = Annotated[str, _text(MAX_NAME_CHARS), AfterValidator(_token)]
"""An HTTP header name (or method, or auth scheme): a token."""
FilePath = Annotated[str, _text(MAX_PATH_CHARS)]
"""A file path (or a bundled name): at most 2048 characters, no control characters."""
Method = Annotated[str, Field(max_length=20), AfterValidator(_token)]
"""An HTTP method: a short token."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TargetConfig(_Strict):
    """Where the CRM is and how far the audit may go."""

    base_url: str = Field(description="where the API lives: http:// or https:// with a host")
    scope: list[Name] = Field(default_factory=list,
                             description="hosts the audit may contact (exact, or *.domain); default: the base_url host")
    verify_tls: bool = Field(True, description="verify the server certificate (false only for throwaway test servers); "
                                               "false wins over ca_bundle")
    ca_bundle: FilePath | None = Field(None, description="PEM of the CA that signed the server certificate")
    timeout_s: float = Field(10.0, gt=0, le=600,
                             description="longest wait for the connection or for the next bytes of an answer")
    deadline_s: float = Field(30.0, gt=0, le=3600,
                              description="total time of one request, retries and redirects included "
                                          "(docs/reliability.md); a request given a longer timeout gets that long")
    max_response_bytes: int = Field(16 * 1024 * 1024, ge=1024, le=1024 ** 3,
                                    description="largest answer read, counted after gzip/deflate decoding; "
                                                "a larger one is not assessed")
    retries: int = Field(2, ge=0, le=10,
                         description="further attempts of GET/HEAD/OPTIONS and logins after a connection error, "
                                     "429 or 502/503/504, with exponential backoff and jitter, within deadline_s")
    max_retry_after_s: float = Field(10.0, ge=0, le=600,
                                     description="longest Retry-After honoured; a longer one is not waited for")
    rate_limit_rps: float = Field(50.0, gt=0, le=10_000, description="the audit never sends faster than this")
    request_budget: int = Field(20_000, gt=0, description="nor more requests than this in one run (load included)")
    max_redirects: int = Field(5, ge=0, le=20, description="in-scope redirects followed at most; off-scope never")
    health_path: UrlPath = Field("/", description="checked first: an unreachable target stops the audit (exit 3)")
    headers: dict[str, str] = Field(default_factory=dict, description="extra headers on every request")

    @field_validator("base_url")
    @classmethod
    def _url(cls, v: str) -> str:
        if len(v) > MAX_PATH_CHARS or _has_controls(v) or " " in v:
            raise ValueError(f"must be a URL of at most {MAX_PATH_CHARS} characters without spaces or control characters")
        _url_port(v)
        parts = urlsplit(v)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL with a host")
        if "@" in parts.netloc or "\\" in v:
            raise ValueError("must not hold credentials (user:password@): give them in accounts[].auth")
        return v.rstrip("/")

    @field_validator("headers")
    @classmethod
    def _header_values(cls, v: dict[str, str]) -> dict[str, str]:
        for name, value in v.items():
            if not _TOKEN_RE.fullmatch(name) or len(name) > MAX_NAME_CHARS:
                raise ValueError(f"header name {clip(name, 40)!r} is not an HTTP token (letters, digits, -)")
            if value != value.strip() or _has_controls(value) or len(value) > MAX_HEADER_CHARS:
                raise ValueError(f"header {name!r}: value has surrounding white space or control characters, "
                                 f"or is longer than {MAX_HEADER_CHARS}")
            _header_safe(value)
        return v

    @model_validator(mode="after")
    def _default_scope(self) -> TargetConfig:
        host = urlsplit(self.base_url).hostname or ""
        if not self.scope:
            self.scope = [host]
        elif not any(_host_matches(host, s) for s in self.scope):
            raise ValueError(f"scope {self.scope} does not include the base_url host {host!r}")
        return self


def _host_matches(host: str, pattern: str) -> bool:
    host, pattern = host.lower().strip("[]"), pattern.lower().strip("[]")
    if pattern.startswith("*."):
        return host.endswith(pattern[1:])
    return host == pattern


#: the authentication methods crm-audit ships (plugins add more through crm_audit_register_auth)
BUILTIN_AUTH = ("none", "bearer", "api_key", "basic", "login", "cookie", "csrf_form",
                "oauth2_client_credentials", "oauth2_password", "command")


class AuthStep(_Strict):
    """One HTTP request of a login flow (a logout, a 'send me a code' request)."""

    url: UrlPath = Field(description="path or in-scope URL")
    method: Method = Field("POST", description="HTTP method")
    body: dict[str, Any] = Field(default_factory=dict,
                                 description="body template (nested); {username}, {token} are filled in")
    body_format: Literal["json", "form"] = Field("json", description="json or form-encoded")


class AuthConfig(_Strict):
    """How one account authenticates: a built-in method or one a plugin registers (docs/plugins.md#authentication)."""

    method: Annotated[str, Field(max_length=80), AfterValidator(_token)] = Field(
        "none", description="none, bearer, api_key, basic, login, cookie, csrf_form, oauth2_client_credentials, "
                            "oauth2_password, command, or a plugin's method")
    token: SecretStr | None = Field(None, description="bearer: the token")
    api_key: SecretStr | None = Field(None, description="api_key: the key")
    username: Annotated[str, _text(256)] | None = Field(None, description="the user name (basic, login flows, command)")
    password: SecretStr | None = Field(None, description="basic and login flows: the password")
    header: HeaderName | None = Field(None, description="header carrying the credential (default Authorization, X-API-Key)")
    scheme: Annotated[str, Field(max_length=40), AfterValidator(_token)] = Field(
        "Bearer", description="prefix of the token in the header (e.g. Bearer, JWT, Token; '' for none)")
    url: UrlPath | None = Field(None, description="login (or OAuth2 token, or code exchange) path or URL")
    body: dict[str, Any] = Field(
        default_factory=lambda: {"username": "{username}", "password": "{password}"},
        description="login body template, nested as deep as the API wants; {username}, {password} "
                    "(and {code} for command) are filled in",
    )
    body_format: Literal["json", "form"] = Field("json", description="login body: json or form-encoded")
    token_path: str = Field("access_token", description="dotted path of the token in the JSON answer")
    token_template: str | None = Field(
        None, description="the credential built from several answer fields, e.g. '{result.uid}:{result.session_id}' "
                          "(dotted paths in braces); wins over token_path")
    error_path: str | None = Field(
        None, description="dotted path that, when present in a 200 answer, means the login was refused (JSON-RPC: error)")
    expires_in_path: str | None = Field(
        None, description="dotted path of the lifetime in seconds; the credential is renewed shortly before")
    form_url: UrlPath | None = Field(None, description="csrf_form: the page holding the form (default: url)")
    csrf_field: Annotated[str, Field(max_length=200)] = Field(
        "csrfmiddlewaretoken", description="csrf_form: the hidden input carrying the CSRF token")
    csrf_header: HeaderName | None = Field(None, description="csrf_form: also send the CSRF token in this header")
    client_id: Annotated[str, _text(256)] | None = Field(None, description="oauth2: the client id")
    client_secret: SecretStr | None = Field(None, description="oauth2: the client secret")
    scope: Annotated[str, Field(max_length=1000)] | None = Field(None, description="oauth2: the scope asked for")
    command: list[Annotated[str, _text(4096)]] | None = Field(
        None, description="command: argv of a local program printing the one-time token or code "
                          "(no shell; {username} is filled in)")
    command_timeout_s: float = Field(30.0, gt=0, le=600, description="command: longest run of the program")
    start: AuthStep | None = Field(None, description="command: request sent first (e.g. 'e-mail me a code')")
    logout: AuthStep | None = Field(None, description="how the session is ended (default: no logout request)")
    options: dict[str, Any] = Field(default_factory=dict, description="settings of a plugin's auth method")

    @model_validator(mode="after")
    def _complete(self) -> AuthConfig:
        need = {
            "bearer": ["token"],
            "api_key": ["api_key"],
            "basic": ["username", "password"],
            "login": ["url", "username", "password"],
            "cookie": ["url", "username", "password"],
            "csrf_form": ["url", "username", "password"],
            "oauth2_client_credentials": ["url", "client_id", "client_secret"],
            "oauth2_password": ["url", "client_id", "username", "password"],
            "command": ["command"],
        }.get(self.method, [])
        missing = [k for k in need if getattr(self, k) is None]
        if missing:
            raise ValueError(f"method {self.method!r} needs {', '.join(missing)}")
        for key in ("token", "api_key"):
            secret = getattr(self, key)
            if secret is not None:
                try:
                    _header_safe(secret.get_secret_value())
                except ValueError as exc:
                    raise ValueError(f"{key} {exc}") from None
        return self


class Account(_Strict):
    """One identity the audit acts as; several roles (and two tenants, where the CRM has them)."""

    name: Name = Field(description="unique name, used by endpoints, flows and probe options")
    role: Name = Field(description="the CRM role; access_matrix rows are roles")
    tenant: Name | None = Field(None, description="tenant / organisation, for cross-tenant checks")
    auth: AuthConfig = Field(default_factory=AuthConfig, description="how it authenticates")
    purpose: Literal["general", "lockout", "disposable"] = Field(
        "general", description="'lockout': a dedicated account the login-limit test may lock; 'disposable': a "
                               "dedicated account the token-lifecycle checks may change the password of and "
                               "deactivate (both restored afterwards); neither is used by other checks"
    )
    headers: dict[str, str] = Field(default_factory=dict,
                                    description="extra headers on every request as this account (not secrets)")
    context: dict[str, Any] = Field(
        default_factory=dict, description="per-request context for CRMs that select company or tenant per request; "
                                          "the adapter sends it (jsonrpc: in params.context)")

    @field_validator("headers")
    @classmethod
    def _header_values(cls, v: dict[str, str]) -> dict[str, str]:
        return TargetConfig._header_values(v)


class Endpoint(_Strict):
    """An endpoint whose response time is measured (latency) and loaded (load): an HTTP request (``path``),
    or an adapter operation (``operation``, e.g. a read-only RPC call) timed by latency only."""

    name: Name = Field(description="label in reports")
    path: UrlPath | None = Field(None, description="path (or in-scope URL); not with operation")
    operation: Name | None = Field(None, description="adapter operation to call instead of a path, e.g. "
                                                     "contacts.list or contacts.search_read; success is an "
                                                     "allowed answer; only read operations are timed")
    method: Method = Field("GET", description="HTTP method (with operation: CALL, set by the loader)")
    account: Name | None = Field(None, description="account to call it as (none: anonymous)")
    slo_p95_ms: float | None = Field(None, gt=0, description="expected 95th percentile in ms")
    params: dict[str, Any] = Field(default_factory=dict, description="query parameters (with operation: its arguments)")
    expect_status: list[int] = Field(default_factory=lambda: [200], description="statuses that count as success")

    @model_validator(mode="after")
    def _one_target(self) -> Endpoint:
        if (self.path is None) == (self.operation is None):
            raise ValueError("give exactly one of path and operation")
        if self.operation is not None:
            if "method" in self.model_fields_set and self.method != OPERATION_METHOD:
                raise ValueError("method: not with operation (the adapter chooses the request)")
            self.method = OPERATION_METHOD
        return self


#: the ``method`` of an operation endpoint: no HTTP method of its own (the load mix takes GET paths only)
OPERATION_METHOD = "CALL"


class FlowStep(_Strict):
    """One step of a business flow, acting through the adapter on the audit's own records."""

    name: Name = Field(description="label in reports")
    action: Literal["create", "read", "update", "delete", "list", "request"] = Field(description="what the step does")
    resource: Name | None = Field(None, description="adapter resource it acts on")
    body: dict[str, Any] = Field(default_factory=dict, description="fields to send (create/update/request)")
    method: Method | None = Field(None, description="request: HTTP method")
    path: UrlPath | None = Field(None, description="request: path")
    save_as: Name | None = Field(None, description="name under which later steps refer to the record")
    ref: Name | None = Field(None, description="name of an earlier step whose record this acts on")


class Flow(_Strict):
    """A business flow (e.g. lead → opportunity → case), timed end to end."""

    name: Name = Field(description="label in reports")
    account: Name | None = Field(None, description="account that runs it")
    runs: int = Field(3, ge=1, le=1000, description="how many times it runs (completion rate = completed / runs)")
    slo_s: float | None = Field(None, description="expected completion time in seconds")
    steps: list[FlowStep] = Field(description="ordered steps")


class Allow(_Strict):
    """What the audit may do beyond reading."""

    writes: bool = Field(False, description="create/update/delete the audit's own tagged records")
    disruptive: bool = Field(False, description="lockout attempts, restore, load above the default")


class ThresholdGate(_Strict):
    """A bound on every measurement of one indicator (e.g. p95 ≤ 300 ms)."""

    indicator: str = Field(description="indicator id (docs/indicators.md)")
    max: float | None = Field(None, description="fail when any measurement is above")
    min: float | None = Field(None, description="fail when any measurement is below")


class Gates(_Strict):
    """Pass/fail rules for CI (exit code 1 when one fails); the command line can add more."""

    fail_under: float | None = Field(None, ge=0, le=100, description="overall score floor")
    fail_under_dimension: dict[str, float] = Field(default_factory=dict, description="dimension id → score floor")
    fail_on: Literal["info", "low", "medium", "high", "critical"] | None = Field(
        None, description="fail on any open failed finding at or above this severity")
    thresholds: list[ThresholdGate] = Field(default_factory=list, description="indicator bounds")
    fail_on_regression: bool = Field(False, description="fail on regressions against --baseline")
    regression_threshold: float | None = Field(None, gt=0, description="relative median change (0.2 = 20%)")
    regression_min_delta_ms: float | None = Field(None, ge=0, description="absolute median change a regression also needs")
    min_coverage: float | None = Field(
        None, ge=0, le=1, description="coverage floor (0..1) checked whenever any gate is set; default: verdict.min_coverage")
    fail_on_verdict: Literal["not-fit", "conditions"] | None = Field(
        None, description="not-fit: fail on Not fit or Inconclusive; conditions: fail on anything but Fit")
    expected_skips: list[str] = Field(
        default_factory=list, description="probe ids allowed to be skipped without failing the probes gate")


class VerdictRules(_Strict):
    """Thresholds of the verdict rules (docs/scoring.md, "Verdict")."""

    min_coverage: float = Field(0.6, ge=0, le=1,
                                description="below this share of the hierarchy's weight assessed: Inconclusive")
    essential: dict[str, float] = Field(
        default_factory=lambda: {"sec": 0.5},
        description="dimension id → coverage it needs, else Inconclusive (security by default)")


Action = Literal["list", "read", "create", "update", "delete"]
#: allow / deny; own: only the caller's own records (list shows none of a colleague's, read refuses them)
Decision = Literal["allow", "deny", "own"]


class Actors(_Strict):
    """Which accounts the object-level checks (BOLA, tenant isolation, mass assignment) act as.

    Unset keys follow the rules in docs/access-control.md ("Choosing actors"); a check that
    cannot find the account it needs is skipped with a hint naming it.
    """

    actor: Name | None = Field(None, description="account that tries to reach others' records (default: the least "
                                                 "privileged account that may create and has a same-role colleague)")
    peer: Name | None = Field(None, description="colleague of actor (same role and tenant) whose records it must not "
                                                "change where plugins.access.owner_only_actions says so")
    other_tenant: Name | None = Field(None, description="account of another tenant whose records actor must never "
                                                        "reach (default: the most privileged writer of another tenant)")


class Profile(_Strict):
    """A whole audit profile, as loaded and validated."""

    name: Name = Field("CRM", description="shown in reports")
    target: TargetConfig = Field(description="where the CRM is and how far the audit may go")
    accounts: list[Account] = Field(default_factory=list, description="identities the audit acts as")
    adapter: dict[str, Any] = Field(default_factory=lambda: {"type": "rest"},
                                    description="how resources map onto the API (docs/plugins.md#adapters)")
    endpoints: list[Endpoint] = Field(default_factory=list, description="endpoints to time")
    flows: list[Flow] = Field(default_factory=list, description="business flows to time")
    access_matrix: dict[str, dict[str, dict[Action, Decision]]] = Field(
        default_factory=dict, description="role → resource → action → allow / deny / own (list and read: only "
                                          "the role's own records), as intended (docs/access-control.md)")
    actors: Actors = Field(default_factory=Actors, description="accounts the object-level access checks act as")
    allow: Allow = Field(default_factory=Allow, description="writes and disruptive checks")
    plugins: dict[str, dict[str, Any]] = Field(default_factory=dict, description="per-probe options (below)")
    probes: list[Name] | None = Field(None, description="probe ids to run, in this order (default: all)")
    hierarchy: FilePath = Field("default", description="default | security | vendor-selection | none | a YAML path")
    evidence: FilePath | None = Field(None, description="evidence file (YAML/CSV): costs, surveys, SLAs (docs/scoring.md)")
    waivers: FilePath | None = Field(None, description="waivers file of accepted findings (docs/ci.md)")
    gates: Gates = Field(default_factory=Gates, description="CI gates")
    verdict: VerdictRules = Field(default_factory=VerdictRules, description="verdict thresholds")

    # not part of the file: where it came from and its digest
    source_path: str | None = Field(None, exclude=True)
    digest: str = Field("", exclude=True)

    @model_validator(mode="after")
    def _references(self) -> Profile:
        names = [a.name for a in self.accounts]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"duplicate account name(s): {', '.join(sorted(dup))}")
        for ep in self.endpoints:
            if ep.account and ep.account not in names:
                raise ValueError(f"endpoint {ep.name!r} names unknown account {ep.account!r}")
        for _i, ep in enumerate(self.endpoints):
            if ep.path and ep.path.startswith(("http://", "https://")):
                host = urlsplit(ep.path).hostname or ""
                if not host_in_scope(host, self.target.scope):
                    raise ValueError(f"endpoint {ep.name!r}: host {host!r} is outside target.scope {self.target.scope}")
        roles = {a.role for a in self.accounts}
        for role in self.access_matrix:
            if role not in roles:
                raise ValueError(f"access_matrix role {role!r} has no account (roles: {sorted(roles)})")
            for res, cells in self.access_matrix[role].items():
                for action, decision in cells.items():
                    if decision == "own" and action not in ("list", "read"):
                        raise ValueError(f"access_matrix.{role}.{res}.{action}: 'own' applies to list and read only "
                                         "(owner-only update/delete: plugins.access.owner_only_actions)")
        for key in ("actor", "peer", "other_tenant"):
            name = getattr(self.actors, key)
            if name is not None and name not in names:
                raise ValueError(f"actors.{key} names unknown account {name!r}")
        return self

    def account(self, name: str) -> Account:
        for a in self.accounts:
            if a.name == name:
                return a
        raise KeyError(name)

    def accounts_with_role(self, role: str) -> list[Account]:
        return [a for a in self.accounts if a.role == role]

    def secret_values(self) -> list[str]:
        """Every resolved secret, so the redactor can mask it wherever it shows up."""
        out: list[str] = []
        for a in self.accounts:
            for s in (a.auth.token, a.auth.api_key, a.auth.password, a.auth.client_secret):
                if s is not None:
                    out.append(s.get_secret_value())
        return out


# ---------------------------------------------------------------- loading


def load_profile(path: str | Path, env: Mapping[str, str] | None = None) -> Profile:
    """Read, resolve ${ENV} references in and validate a profile file."""
    path = Path(path)
    text = read_file(path, "profile file", ProfileError)
    return parse_profile(text, source=str(path), base_dir=path.parent, env=env)


def parse_profile(
    text: str, source: str = "<profile>", base_dir: Path | None = None, env: Mapping[str, str] | None = None
) -> Profile:
    """Validate profile text; ``env`` defaults to the process environment.

    Relative file paths are resolved against ``base_dir`` (default: the current folder) and
    every file the profile names must exist.
    """
    env = os.environ if env is None else env
    data, lines = parse_text(text, source, ProfileError)
    if not isinstance(data, dict):
        raise ProfileError(f"{source}: a profile is a YAML mapping with at least a 'target' key")
    digest = hashlib.sha256(json.dumps(_canonical(data), sort_keys=True, default=str).encode()).hexdigest()
    resolved = _resolve_env(data, (), env, source, lines)
    if base_dir is not None:
        _resolve_paths(resolved, base_dir)
    try:
        profile = Profile.model_validate(resolved)
    except ValidationError as exc:
        raise ProfileError(_first_error(exc, source, lines)) from None
    _check_files(profile, source, lines)
    return profile.model_copy(update={"source_path": source, "digest": digest})


def _canonical(obj: Any) -> Any:
    """``obj`` with every mapping key as text, so json.dumps(sort_keys=True) never meets mixed key types."""
    if isinstance(obj, dict):
        return {(k if isinstance(k, str) else f"!{type(k).__name__} {k}"): _canonical(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_canonical(v) for v in obj]
    return obj


def _looks_like_path(name: str) -> bool:
    """The rule the hierarchy loader uses: a .yaml/.yml name or one with a slash is a file, else a bundled name."""
    return name.endswith((".yaml", ".yml")) or "/" in name or "\\" in name


def _check_files(profile: Profile, source: str, lines: dict[tuple[Any, ...], int]) -> None:
    """Every file the profile names exists: one line naming the key, else."""
    files: list[tuple[tuple[str, ...], str, str | None]] = [
        (("target", "ca_bundle"), "CA bundle", profile.target.ca_bundle),
        (("evidence",), "evidence", profile.evidence),
        (("waivers",), "waivers", profile.waivers),
        (("hierarchy",), "hierarchy", profile.hierarchy if _looks_like_path(profile.hierarchy) else None),
    ]
    for path, what, name in files:
        if name is None:
            continue
        p = Path(name)
        problem = None if p.is_file() else ("is a folder" if p.is_dir() else "not found")
        if problem:
            raise ProfileError(f"{_where(source, lines, path)}: {_dotted(path)}: cannot read {what} file "
                               f"{clip(name, 120)}: {problem}")


def _resolve_paths(data: dict[str, Any], base_dir: Path) -> None:
    target = data.get("target")
    if isinstance(target, dict) and isinstance(target.get("ca_bundle"), str):
        target["ca_bundle"] = str((base_dir / target["ca_bundle"]).resolve())
    for key in ("evidence", "waivers"):
        if isinstance(data.get(key), str):
            data[key] = str((base_dir / data[key]).resolve())


def _resolve_env(obj: Any, path: tuple[Any, ...], env: Mapping[str, str], source: str,
                 lines: dict[tuple[Any, ...], int]) -> Any:
    if isinstance(obj, dict):
        return {k: _resolve_env(v, path + (k,), env, source, lines) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_resolve_env(v, path + (i,), env, source, lines) for i, v in enumerate(obj)]
    is_secret = bool(path) and str(path[-1]) in _SECRET_KEYS
    if isinstance(obj, str) and is_secret and _TEMPLATE_RE.fullmatch(obj.strip()):
        return obj  # a login-body template such as {password}, filled in at login time
    if isinstance(obj, str):
        refs = _ENV_RE.findall(obj)
        if is_secret and not (refs and _ENV_RE.fullmatch(obj.strip())):
            raise ProfileError(
                f"{_where(source, lines, path)}: {_dotted(path)}: secrets must be given as "
                "${ENV_VAR}, not written in the profile"
            )
        for name in refs:
            if name not in env:
                raise ProfileError(
                    f"{_where(source, lines, path)}: {_dotted(path)}: environment variable {clip(name, 60)} is not set"
                )
        value = _ENV_RE.sub(lambda m: env[m.group(1)], obj)
        if is_secret and (value != value.strip() or _has_controls(value) or len(value) > MAX_HEADER_CHARS):
            names = clip(", ".join(refs), 60)
            raise ProfileError(
                f"{_where(source, lines, path)}: {_dotted(path)}: the value of {names} has surrounding white space "
                f"or control characters (a trailing newline from a file?), or is longer than {MAX_HEADER_CHARS}"
            )
        return value
    if is_secret and obj is not None:
        raise ProfileError(
            f"{_where(source, lines, path)}: {_dotted(path)}: secrets must be given as ${{ENV_VAR}}"
        )
    return obj


def _dotted(path: tuple[Any, ...]) -> str:
    return dotted(path) or "(top level)"


def _where(source: str, lines: dict[tuple[Any, ...], int], path: tuple[Any, ...]) -> str:
    p = tuple(path)
    while p and p not in lines:
        p = p[:-1]
    line = lines.get(p)
    return f"{source}:{line}" if line else source


def _first_error(exc: ValidationError, source: str, lines: dict[tuple[Any, ...], int]) -> str:
    loc = error_lines(exc)[0][0] if exc.errors() else ()
    return f"{_where(source, lines, loc)}: " + first_error(
        exc, unknown="unknown key (check the spelling; see `crm-audit init` for every key)", count_more=True)


def host_in_scope(host: str, scope: list[str]) -> bool:
    """True when host matches one of the scope entries (exact, or *.domain)."""
    return any(_host_matches(host, s) for s in scope)
