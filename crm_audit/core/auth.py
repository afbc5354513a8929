"""Authentication as a plugin point: how an account logs in and how its requests are authenticated.

An auth method is a class registered through the ``crm_audit_register_auth`` hook (the built-ins
in ``crm_audit.protocols.auth_methods`` exactly like a third party's). The profile's ``accounts[].auth.method``
picks one by its ``name``. :class:`crm_audit.core.target.Target` calls :meth:`AuthMethod.login` once per
account, keeps the :class:`Credentials` it returns, adds them to every request as that account,
renews them shortly before ``expires_at`` (:meth:`AuthMethod.refresh`) and redacts every value in
them. Every request a method sends goes through ``target.auth_request`` (scope, rate limit,
budget, timing, redaction, a cookie jar of the account's own).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ValidationError

from crm_audit.core.errors import CannotRun, first_error
from crm_audit.core.profile import Account, AuthConfig

if TYPE_CHECKING:  # pragma: no cover
    from crm_audit.core.target import Exchange, Target

#: renew credentials this many seconds before they expire
RENEW_MARGIN_S = 10.0
_PLACEHOLDER = re.compile(r"\{([A-Za-z0-9_.-]+)\}")

Signer = Callable[[str, str, bytes | None], Mapping[str, str]]
"""``signer(method, url, body) -> headers`` added to each prepared request (request signing)."""


class AuthFailed(CannotRun):
    """A login, refresh or logout could not be completed; one line, no secret in it."""


@dataclass
class Credentials:
    """How the requests of one logged-in account are authenticated."""

    headers: dict[str, str] = field(default_factory=dict)
    cookies: dict[str, str] = field(default_factory=dict)
    #: epoch seconds after which they are no longer valid (None: no known expiry)
    expires_at: float | None = None
    #: the bearer token inside them, when there is one (token checks tamper with it)
    token: str | None = None
    signer: Signer | None = None
    #: anything refresh or logout needs later (a refresh token, a session id)
    state: dict[str, Any] = field(default_factory=dict)
    #: further values to redact (parts of a composite header, a one-time code)
    secrets: list[str] = field(default_factory=list)

    def secret_values(self) -> list[str]:
        """Every value the redactor must mask: header and cookie values, the token, extra secrets."""
        values = [*self.headers.values(), *self.cookies.values(), *self.secrets]
        if self.token:
            values.append(self.token)
        for v in list(self.headers.values()):
            scheme, _, rest = v.partition(" ")
            if rest and scheme.isalpha():
                values.append(rest)
        return [v for v in values if v]

    def expiring(self, now: float | None = None) -> bool:
        """True when they expire within :data:`RENEW_MARGIN_S`."""
        if self.expires_at is None:
            return False
        return (now if now is not None else time.time()) >= self.expires_at - RENEW_MARGIN_S


@dataclass
class LoginAttempt:
    """One login try with a given user name and password (or one-time code)."""

    exchange: Exchange | None
    credentials: Credentials | None = None
    #: why it was refused, when it was ("HTTP 401", "error in the answer", …)
    refused: str | None = None

    @property
    def accepted(self) -> bool:
        return self.credentials is not None


class AuthMethod:
    """Base class of authentication methods; one instance per account.

    Subclasses set ``name`` (what ``auth.method`` names), ``description``, ``version``, and
    implement :meth:`login`. ``options_model`` (a pydantic model) validates ``auth.options``.
    ``password_login`` says :meth:`attempt` works: lockout and user-enumeration checks use it.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    version: ClassVar[str] = "0.0.0"
    options_model: ClassVar[type[BaseModel] | None] = None
    password_login: ClassVar[bool] = False

    def __init__(self, account: Account) -> None:
        self.account = account
        self.auth: AuthConfig = account.auth
        self.options: Any = None
        if self.options_model is not None:
            try:
                self.options = self.options_model.model_validate(account.auth.options)
            except ValidationError as exc:
                raise AuthFailed(first_error(exc, f"accounts.{account.name}.auth.options")) from None

    def login(self, target: Target) -> Credentials:
        """Log the account in; raise :class:`AuthFailed` with one clear line when refused."""
        raise NotImplementedError  # pragma: no cover

    def refresh(self, target: Target, old: Credentials) -> Credentials:
        """New credentials for expiring ones; by default a fresh login."""
        return self.login(target)

    def logout(self, target: Target, credentials: Credentials) -> Exchange | None:
        """End the session (``auth.logout`` in the profile); None when there is no way to."""
        step = self.auth.logout
        if step is None:
            return None
        body = fill(step.body, username=self.auth.username or "", token=credentials.token or "")
        kw: dict[str, Any] = ({"json": body} if step.body_format == "json" else {"data": body}) if step.body else {}
        return target.request(step.method, step.url, account=self.account.name, **kw)

    def attempt(self, target: Target, username: str, password: str) -> LoginAttempt:
        """Try to log in as ``username`` with ``password``; never raises for a refusal."""
        raise NotImplementedError(f"auth method {self.name!r} does not log in with a password")

    def present(self, credentials: Credentials, token: str) -> dict[str, str]:
        """Headers that present ``token`` in place of the account's own (token-tampering checks)."""
        header = self.auth.header or "Authorization"
        return {header: (f"{self.auth.scheme} " if self.auth.scheme else "") + token}

    def fail(self, what: str) -> AuthFailed:
        """An :class:`AuthFailed` naming the account: ``login for account 'x' failed: <what>``."""
        return AuthFailed(f"login for account {self.account.name!r} failed: {what}")


# ---------------------------------------------------------------- helpers for methods


def json_path(data: Any, path: str | None) -> Any:
    """Follow a dotted path (``result.uid``, ``items.0.id``) into a JSON answer; None when absent."""
    if not path:
        return data
    for part in path.split("."):
        if isinstance(data, Mapping):
            data = data.get(part)
        elif isinstance(data, list) and part.isdigit() and int(part) < len(data):
            data = data[int(part)]
        else:
            return None
    return data


def fill(template: Any, **values: str) -> Any:
    """A nested body template with ``{name}`` placeholders of ``values`` filled in every string."""
    if isinstance(template, str):
        return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), template)
    if isinstance(template, dict):
        return {k: fill(v, **values) for k, v in template.items()}
    if isinstance(template, list):
        return [fill(v, **values) for v in template]
    return template


def compose(template: str, answer: Any) -> tuple[str | None, list[str]]:
    """``template`` with each ``{dotted.path}`` replaced by that field of ``answer``.

    Returns (the text, the field values used), or (None, []) when a field is missing or not scalar.
    """
    parts: list[str] = []
    missing = False

    def one(m: re.Match[str]) -> str:
        nonlocal missing
        value = json_path(answer, m.group(1))
        if isinstance(value, bool) or not isinstance(value, (str, int, float)) or value == "":
            missing = True
            return ""
        parts.append(str(value))
        return str(value)

    text = _PLACEHOLDER.sub(one, template)
    return (None, []) if missing else (text, parts)


def discover(extra: Iterable[object] = ()) -> dict[str, type[AuthMethod]]:
    """Every auth method the installed plugins (and ``extra`` plugin objects) register, by name
    (``Registry.auth_methods``; a method without a name or registered twice is a PluginError)."""
    from crm_audit.core.plugins import make_plugin_manager

    return dict(make_plugin_manager(extra).auth_methods)
