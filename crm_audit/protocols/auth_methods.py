"""The built-in authentication methods, registered through ``crm_audit_register_auth`` like any plugin.

bearer, api_key, basic; ``login`` (a JSON or form login flow: nested body template, token from a
dotted path or built from several answer fields, refusals in a 200 body); ``cookie`` (a login
whose session is a cookie); ``csrf_form`` (fetch the form, carry its CSRF token and cookie);
``oauth2_client_credentials`` and ``oauth2_password``; ``command`` (passwordless: a local
program prints the one-time token or code). docs/plugins.md, "Authentication".
"""

from __future__ import annotations

import base64
import html
import re
import subprocess
import time
from typing import Any

from pydantic import SecretStr

from crm_audit.core.auth import AuthMethod, Credentials, LoginAttempt, compose, fill, json_path
from crm_audit.core.hookspecs import hookimpl
from crm_audit.core.processes import stop_processes
from crm_audit.core.target import Exchange, Target

MAX_COMMAND_OUTPUT = 64 * 1024


class NoAuth(AuthMethod):
    name = "none"
    description = "anonymous: no credentials"
    version = "1.0.0"

    def login(self, target: Target) -> Credentials:
        return Credentials()


class Bearer(AuthMethod):
    name = "bearer"
    description = "a fixed token in a header (default Authorization: Bearer …)"
    version = "1.0.0"

    def login(self, target: Target) -> Credentials:
        token = _secret(self.auth.token)
        return Credentials(headers=self.present(Credentials(), token), token=token)


class ApiKey(AuthMethod):
    name = "api_key"
    description = "an API key in a header (default X-API-Key)"
    version = "1.0.0"

    def login(self, target: Target) -> Credentials:
        return Credentials(headers={self.auth.header or "X-API-Key": _secret(self.auth.api_key)})


class Basic(AuthMethod):
    name = "basic"
    description = "HTTP basic authentication"
    version = "1.0.0"

    def login(self, target: Target) -> Credentials:
        enc = base64.b64encode(f"{self.auth.username}:{_secret(self.auth.password)}".encode()).decode()
        return Credentials(headers={self.auth.header or "Authorization": f"Basic {enc}"}, secrets=[enc])


class PasswordLogin(AuthMethod):
    """Shared by the password flows: send, judge, and turn an accepted answer into credentials."""

    password_login = True

    def login(self, target: Target) -> Credentials:
        return self.accepted(self.attempt(target, self.auth.username or "", _secret(self.auth.password)))

    def accepted(self, tried: LoginAttempt) -> Credentials:
        """The credentials of an accepted attempt; :class:`AuthFailed` with its refusal otherwise."""
        if tried.credentials is None:
            raise self.fail(tried.refused or "refused")
        return tried.credentials

    def attempt(self, target: Target, username: str, password: str) -> LoginAttempt:
        target.redactor.add(password)
        ex = self.send(target, username, password)
        return self.judge(target, ex)

    def send(self, target: Target, username: str, password: str) -> Exchange:
        """The login request (redacted, retried, in the account's own cookie jar)."""
        body = fill(self.auth.body, username=username, password=password)
        kw: dict[str, Any] = {"json": body} if self.auth.body_format == "json" else {"data": body}
        return target.auth_request(self.account.name, "POST", self.auth.url or "", **kw)

    def judge(self, target: Target, ex: Exchange) -> LoginAttempt:
        if ex.error:
            return LoginAttempt(ex, refused=ex.error)
        if ex.status != 200:
            return LoginAttempt(ex, refused=f"HTTP {ex.status}")
        from crm_audit.core.target import TargetError

        try:
            data = ex.json()
        except TargetError as exc:
            return LoginAttempt(ex, refused=str(exc))
        return self.from_answer(target, ex, data)

    def from_answer(self, target: Target, ex: Exchange, data: Any) -> LoginAttempt:
        """Credentials from a JSON login answer: token_template / token_path, expiry, refusal in the body."""
        auth = self.auth
        if auth.error_path and json_path(data, auth.error_path) is not None:
            return LoginAttempt(ex, refused=f"the answer holds {auth.error_path!r} (refused in the body)")
        token = json_path(data, auth.token_path)
        token = token if isinstance(token, str) and token else None
        secrets: list[str] = []
        if auth.token_template:
            value, parts = compose(auth.token_template, data)
            if value is None:
                return LoginAttempt(ex, refused=f"a field of token_template {auth.token_template!r} is missing")
            secrets = [p for p in parts if len(p) >= 8]
        elif token is None:
            return LoginAttempt(ex, refused=f"no token at {auth.token_path!r} in the response")
        else:
            value = token
        for s in [value, token, *secrets]:
            target.redactor.add(s)
        header = auth.header or "Authorization"
        creds = Credentials(headers={header: (f"{auth.scheme} " if auth.scheme else "") + value}, token=token,
                            secrets=secrets, expires_at=_expiry(data, auth.expires_in_path), state={"answer": data})
        return LoginAttempt(ex, creds)

    def present(self, credentials: Credentials, token: str) -> dict[str, str]:
        auth = self.auth
        answer = credentials.state.get("answer")
        if auth.token_template and answer is not None:
            value, _ = compose(auth.token_template, _replace(answer, auth.token_path, token))
            return {auth.header or "Authorization": (f"{auth.scheme} " if auth.scheme else "") + (value or token)}
        return super().present(credentials, token)


class JsonLogin(PasswordLogin):
    name = "login"
    description = "a login flow: POST a (nested) JSON or form body, take the token from the answer"
    version = "1.0.0"


class CookieLogin(PasswordLogin):
    name = "cookie"
    description = "a login whose session is a cookie (the answer's Set-Cookie)"
    version = "1.0.0"

    def judge(self, target: Target, ex: Exchange) -> LoginAttempt:
        if ex.error:
            return LoginAttempt(ex, refused=ex.error)
        cookies = target.auth_cookies(self.account.name)
        if not (200 <= (ex.status or 0) < 400):
            return LoginAttempt(ex, refused=f"HTTP {ex.status}")
        if self.auth.error_path and json_path(ex.json_or_none(), self.auth.error_path) is not None:
            return LoginAttempt(ex, refused=f"the answer holds {self.auth.error_path!r} (refused in the body)")
        if not cookies:
            return LoginAttempt(ex, refused="no session cookie was set")
        return LoginAttempt(ex, Credentials(cookies=cookies))


class CsrfFormLogin(PasswordLogin):
    name = "csrf_form"
    description = "a CSRF-protected form login: fetch the form, post it with its token and cookie"
    version = "1.0.0"

    def send(self, target: Target, username: str, password: str) -> Exchange:
        page = target.auth_request(self.account.name, "GET", self.auth.form_url or self.auth.url or "")
        token = _csrf_token(page.text, self.auth.csrf_field) if page.ok else None
        token = token or target.auth_cookies(self.account.name).get("csrftoken")
        body = fill(self.auth.body, username=username, password=password)
        if token:
            target.redactor.add(token)
            body[self.auth.csrf_field] = token
        headers = {"Referer": target.url(self.auth.form_url or self.auth.url or "")}
        if token and self.auth.csrf_header:
            headers[self.auth.csrf_header] = token
        kw: dict[str, Any] = {"json": body} if self.auth.body_format == "json" else {"data": body}
        self._csrf = token
        return target.auth_request(self.account.name, "POST", self.auth.url or "", headers=headers, **kw)

    def judge(self, target: Target, ex: Exchange) -> LoginAttempt:
        if ex.error:
            return LoginAttempt(ex, refused=ex.error)
        status = ex.status or 0
        form_again = f'name="{self.auth.csrf_field}"' in ex.text and "password" in ex.text.lower()
        if not (300 <= status < 400 or (200 <= status < 300 and not form_again)):
            return LoginAttempt(ex, refused=f"HTTP {status}" + (" (the form came back)" if form_again else ""))
        cookies = target.auth_cookies(self.account.name)
        headers: dict[str, str] = {}
        csrf = cookies.get("csrftoken") or getattr(self, "_csrf", None)
        if self.auth.csrf_header and csrf:
            headers[self.auth.csrf_header] = csrf
        return LoginAttempt(ex, Credentials(headers=headers, cookies=cookies))


class OAuth2Password(PasswordLogin):
    name = "oauth2_password"
    description = "OAuth2 resource-owner password grant at the token endpoint (auth.url)"
    version = "1.0.0"

    def send(self, target: Target, username: str, password: str) -> Exchange:
        form = {"grant_type": "password", "username": username, "password": password, **_client(self)}
        return target.auth_request(self.account.name, "POST", self.auth.url or "", data=form)


class OAuth2ClientCredentials(PasswordLogin):
    name = "oauth2_client_credentials"
    description = "OAuth2 client-credentials grant at the token endpoint (auth.url)"
    version = "1.0.0"
    password_login = False

    def login(self, target: Target) -> Credentials:
        form = {"grant_type": "client_credentials", **_client(self)}
        return self.accepted(self.judge(target, target.auth_request(self.account.name, "POST", self.auth.url or "",
                                                                   data=form)))

    def attempt(self, target: Target, username: str, password: str) -> LoginAttempt:
        raise NotImplementedError("oauth2_client_credentials does not log in with a password")


class CommandLogin(PasswordLogin):
    """Passwordless: a local program prints the one-time token (or a code exchanged at ``auth.url``)."""

    name = "command"
    description = "passwordless: a local command prints the one-time token or code (test deployments)"
    version = "1.0.0"

    def login(self, target: Target) -> Credentials:
        user = self.auth.username or ""
        if self.auth.start is not None:
            step = self.auth.start
            body = fill(step.body, username=user)
            kw: dict[str, Any] = ({"json": body} if step.body_format == "json" else {"data": body}) if body else {}
            ex = target.auth_request(self.account.name, step.method, step.url, **kw)
            if not ex.ok:
                raise self.fail(f"start request: {ex.error or f'HTTP {ex.status}'}")
        code = run_command(self.auth.command or [], user, self.auth.command_timeout_s, self.fail)
        target.redactor.add(code)
        if not self.auth.url:
            return Credentials(headers=self.present(Credentials(), code), token=code)
        credentials = self.accepted(self.attempt(target, user, code))
        credentials.secrets.append(code)
        return credentials

    def send(self, target: Target, username: str, password: str) -> Exchange:
        body = fill(self.auth.body, username=username, code=password, password=password)
        kw: dict[str, Any] = {"json": body} if self.auth.body_format == "json" else {"data": body}
        return target.auth_request(self.account.name, "POST", self.auth.url or "", **kw)

    def attempt(self, target: Target, username: str, password: str) -> LoginAttempt:
        if not self.auth.url:
            raise NotImplementedError("command without auth.url has no code to try")
        return super().attempt(target, username, password)


def run_command(argv: list[str], username: str, timeout_s: float, fail: Any) -> str:
    """Run ``argv`` (no shell) and return the first non-empty line it prints; its output is never echoed."""
    args = [a.replace("{username}", username) for a in argv]
    try:
        proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                shell=False)
    except OSError as exc:
        raise fail(f"command {args[0]!r} could not start: {exc.strerror}") from None
    try:
        out, _ = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        stop_processes([proc], grace_s=0)  # the command and whatever it started
        proc.communicate()
        raise fail(f"command {args[0]!r} did not finish within {timeout_s:g} s (auth.command_timeout_s)") from None
    if proc.returncode != 0:
        raise fail(f"command {args[0]!r} exited with status {proc.returncode}")
    text = out[:MAX_COMMAND_OUTPUT].decode("utf-8", "replace")
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    if not line or len(line) > 8192:
        raise fail(f"command {args[0]!r} printed no token")
    return line


def _secret(value: SecretStr | None) -> str:
    """The plain value of an optional secret from the profile; "" when it is not set."""
    return value.get_secret_value() if value else ""


def _client(method: AuthMethod) -> dict[str, str]:
    auth = method.auth
    form = {"client_id": auth.client_id or ""}
    if auth.client_secret is not None:
        form["client_secret"] = auth.client_secret.get_secret_value()
    if auth.scope:
        form["scope"] = auth.scope
    return form


def _expiry(data: Any, path: str | None) -> float | None:
    value = json_path(data, path or "expires_in")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        return None
    return time.time() + float(value)


def _replace(data: Any, path: str, value: str) -> Any:
    """A copy of ``data`` with the field at ``path`` set to ``value``."""
    if not path:
        return value
    head, _, rest = path.partition(".")
    if isinstance(data, dict):
        return {**data, head: _replace(data.get(head), rest, value)}
    return data


_INPUT = re.compile(r"<input\b[^>]*>", re.I)


def _csrf_token(page: str, field: str) -> str | None:
    """The value of the hidden input named ``field`` in an HTML page."""
    for tag in _INPUT.findall(page):
        if re.search(r'name\s*=\s*["\']?' + re.escape(field) + r'["\'\s>/]', tag):
            m = re.search(r'value\s*=\s*["\']([^"\']*)["\']', tag)
            if m:
                return html.unescape(m.group(1))
    return None


@hookimpl
def crm_audit_register_auth() -> list[type[AuthMethod]]:
    return [NoAuth, Bearer, ApiKey, Basic, JsonLogin, CookieLogin, CsrfFormLogin, OAuth2Password,
            OAuth2ClientCredentials, CommandLogin]
