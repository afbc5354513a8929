"""The one HTTP client every probe uses.

It enforces scope (off-scope hosts are never contacted, off-scope redirects never
followed), the rate limit and the request budget; it bounds every request (a total deadline,
a byte cap on the decoded body, a JSON depth bound) and retries idempotent requests and logins
a bounded number of times; it times every exchange the same way (perf_counter around the whole
exchange, time to first byte kept apart); and it redacts secrets from everything kept as
evidence. docs/reliability.md says what happens with each hostile answer.
"""

from __future__ import annotations

import contextlib
import random
import re
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

import requests
import urllib3
from requests.structures import CaseInsensitiveDict
from urllib3.exceptions import LocationParseError
from urllib3.util import parse_url

if TYPE_CHECKING:  # pragma: no cover
    from crm_audit.core.auth import AuthMethod, Credentials, LoginAttempt, Signer

from crm_audit.core.bounded import CapHit, DeadlineHit, TooDeep, parse_json, read_body, retry_after_s
from crm_audit.core.errors import CannotRun
from crm_audit.core.model import Evidence, NotAssessed
from crm_audit.core.profile import Account, Profile, host_in_scope
from crm_audit.core.redact import Redactor

#: answers worth another attempt (with backoff, and Retry-After honoured up to a limit)
RETRY_STATUSES = frozenset({429, 502, 503, 504})
#: methods retried on their own; logins are retried too (Target._login asks for it)
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS"})
BACKOFF_BASE_S = 0.25
BACKOFF_MAX_S = 4.0


class TargetError(CannotRun):
    """The target cannot be used (unreachable, TLS failure, login failure)."""


class OutOfScope(TargetError):
    """A request to a host outside the profile's scope was refused before sending."""


class BudgetExceeded(TargetError):
    """The profile's request budget is used up."""


class Cancelled(TargetError):
    """The probe that sent this request was stopped (timed out or interrupted)."""


@dataclass
class Exchange:
    """One request and its response (or error), with timings in seconds."""

    method: str
    url: str
    status: int | None = None
    headers: CaseInsensitiveDict[str] = field(default_factory=CaseInsensitiveDict)
    body: bytes = b""
    elapsed_s: float = 0.0
    ttfb_s: float | None = None
    error: str | None = None
    account: str | None = None
    request_headers: dict[str, str] = field(default_factory=dict)
    request_body: bytes | None = None
    redirects: list[str] = field(default_factory=list)
    blocked_redirect: str | None = None
    _redactor: Redactor | None = field(default=None, repr=False)

    #: why no usable answer came back, when none did (set with ``error``)
    failure: NotAssessed | None = None
    #: attempts sent for this exchange (retries included); timings are those of the last one
    attempts: int = 1
    #: seconds waited before each retry (backoff or Retry-After)
    retry_waits_s: list[float] = field(default_factory=list)
    #: the bounds this exchange ran under: timeout_s, deadline_s, max_response_bytes
    limits: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """A whole 2xx answer came back."""
        return self.error is None and self.status is not None and 200 <= self.status < 300

    @property
    def answered(self) -> bool:
        """True when a whole answer (any status) came back; False: nothing to judge by."""
        return self.error is None and self.status is not None

    @property
    def not_assessed(self) -> NotAssessed | None:
        """Why a check resting on this exchange cannot be judged: no answer, or a 5xx.

        None when the target gave a real answer (2xx/3xx/4xx) that a check may judge.
        """
        if not self.answered:
            return self.failure or NotAssessed.request_failed
        if self.status is not None and self.status >= 500:
            return NotAssessed.request_failed
        return None

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        """The response body as JSON; raises TargetError with a clear line when it is not.

        JSON nested deeper than ``bounded.MAX_JSON_DEPTH`` is refused: ``error`` and ``failure``
        (audit_limit) are set, so checks resting on this answer are not assessed.
        """
        if self.error:
            raise TargetError(f"{self.method} {self._safe_url()}: no usable answer: {self.error}")
        try:
            return parse_json(self.body)
        except TooDeep as exc:
            self.error = f"answer refused: JSON {exc}"
            self.failure = NotAssessed.audit_limit
            raise TargetError(f"{self.method} {self._safe_url()}: {self.error}") from None
        except ValueError:
            ctype = self.headers.get("content-type", "?")
            raise TargetError(
                f"{self.method} {self._safe_url()} answered {ctype} where JSON was expected "
                f"(status {self.status})"
            ) from None

    def json_or_none(self) -> Any:
        try:
            return self.json()
        except TargetError:
            return None

    def _safe_url(self) -> str:
        return self._redactor.redact(self.url) if self._redactor else self.url

    def evidence(self, excerpt_chars: int = 300, **extra: Any) -> Evidence:
        """Redacted request line, status and a short response excerpt for a finding.

        A failed or retried exchange also records its attempts and the bounds it ran under.
        """
        r = self._redactor or Redactor()
        excerpt = self.error if self.error else (r.redact(self.text) or "")[:excerpt_chars]
        req = f"{self.method} {r.redact(self.url)}"
        if self.account:
            req += f"  (as {self.account})"
        details = dict(extra.pop("details", None) or {})
        if self.error or self.attempts > 1:
            details.setdefault("transport", {
                "attempts": self.attempts, "failure": self.failure.value if self.failure else None,
                "retry_waits_s": [round(w, 3) for w in self.retry_waits_s], **self.limits})
        return Evidence(request=req, status=self.status, excerpt=r.redact(excerpt), details=details, **extra)


class _RateLimiter:
    def __init__(self, rps: float) -> None:
        self.interval = 1.0 / rps
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next)
            self._next = slot + self.interval
        delay = slot - time.monotonic()
        if delay > 0:
            time.sleep(delay)


class Target:
    """HTTP client bound to one profile's target, accounts, scope, rate and budget."""

    def __init__(self, profile: Profile, redactor: Redactor | None = None,
                 auth_methods: Mapping[str, type[AuthMethod]] | None = None) -> None:
        """``auth_methods`` (name → class) defaults to what the installed plugins register."""
        self.profile = profile
        self.config = profile.target
        self.redactor = redactor or Redactor()
        for s in profile.secret_values():
            self.redactor.add(s)
        self._limiter = _RateLimiter(self.config.rate_limit_rps)
        self._count = 0
        self._count_lock = threading.Lock()
        self._sessions: dict[str, requests.Session] = {}
        self._creds: dict[str, Credentials] = {}
        self._methods: dict[str, AuthMethod] = {}
        self._auth_classes: dict[str, type[AuthMethod]] | None = dict(auth_methods) if auth_methods else None
        self._login_locks: dict[str, threading.Lock] = {}
        self._auth_lock = threading.RLock()
        self._local = threading.local()
        #: transport problems that did not stop the audit (a certificate problem at the reachability check)
        self.warnings: list[str] = []
        for value in profile.target.headers.values():
            self.redactor.add(value)

    def bind_cancel(self, event: threading.Event | None) -> None:
        """Make requests from the calling thread stop (raise Cancelled) once ``event`` is set."""
        self._local.cancel = event

    def _check_cancelled(self) -> None:
        event = getattr(self._local, "cancel", None)
        if event is not None and event.is_set():
            raise Cancelled("the probe was stopped (timeout or Ctrl-C); no further requests")

    # ------------------------------------------------------------ accounting
    @property
    def requests_made(self) -> int:
        return self._count

    @property
    def budget_left(self) -> int:
        """Requests a probe may still send: the budget less what is kept back for cleanups."""
        return max(0, self.config.request_budget - self.cleanup_reserve - self._count)

    @property
    def cleanup_reserve(self) -> int:
        """Part of the request budget only cleanups may spend, so an audit that ran its budget
        out can still delete the records it created (5 %, at least 10, at most 200)."""
        return min(200, max(10, self.config.request_budget // 20), self.config.request_budget // 2)

    @contextlib.contextmanager
    def cleaning_up(self) -> Iterator[None]:
        """Requests sent inside this block (from this thread) may spend the cleanup reserve."""
        before = getattr(self._local, "cleanup", False)
        self._local.cleanup = True
        try:
            yield
        finally:
            self._local.cleanup = before

    def charge(self, n: int) -> None:
        """Count requests sent outside this client (Locust workers) against the budget.

        The sender must already have kept within ``budget_left``; this only keeps the count true.
        """
        with self._count_lock:
            self._count += max(0, int(n))

    def _spend(self) -> None:
        limit = self.config.request_budget
        if not getattr(self._local, "cleanup", False):
            limit -= self.cleanup_reserve
        with self._count_lock:
            if self._count >= limit:
                raise BudgetExceeded(
                    f"request budget of {self.config.request_budget} used up (target.request_budget; "
                    f"{self.cleanup_reserve} of it kept for cleanups)"
                )
            self._count += 1

    # ------------------------------------------------------------ scope
    def url(self, path_or_url: str) -> str:
        if re.match(r"(?i)^[a-z][a-z0-9+.-]*://", path_or_url):
            return path_or_url
        return self.config.base_url + "/" + path_or_url.lstrip("/")

    def in_scope(self, url: str) -> bool:
        """True when the host the HTTP stack would contact is in scope (parsed as urllib3 parses it)."""
        full = self.url(url)
        if "\\" in full:
            return False  # parsers disagree on backslashes: never guess
        try:
            parsed = parse_url(full)
        except LocationParseError:
            return False
        if parsed.auth or (parsed.scheme or "").lower() not in ("http", "https"):
            return False
        return host_in_scope(parsed.host or "", self.config.scope)

    def _check_scope(self, url: str) -> None:
        if not self.in_scope(url):
            host = self.redactor.redact(urlsplit(url).hostname or url)
            raise OutOfScope(f"{host} is outside the audit's scope {self.config.scope} (target.scope)")

    @property
    def verify(self) -> bool | str:
        """What requests verifies the certificate with: ``verify_tls: false`` wins over ``ca_bundle``."""
        if not self.config.verify_tls:
            return False
        return self.config.ca_bundle or True

    # ------------------------------------------------------------ auth
    def _session(self, key: str) -> requests.Session:
        with self._auth_lock:
            s = self._sessions.get(key)
            if s is None:
                s = requests.Session()
                s.trust_env = False  # never route the audit through a proxy from the environment
                s.headers["Accept-Encoding"] = "gzip, deflate"  # the encodings bounded.read_body decodes
                s.headers.update(self.config.headers)
                self._sessions[key] = s
            return s

    def _account(self, account: str | Account) -> Account:
        return account if isinstance(account, Account) else self.profile.account(account)

    def auth_method(self, account: str | Account) -> AuthMethod:
        """The account's auth method (``auth.method``), from the plugins' ``crm_audit_register_auth``."""
        from crm_audit.core.auth import AuthFailed, discover

        acct = self._account(account)
        with self._auth_lock:
            method = self._methods.get(acct.name)
            if method is not None:
                return method
            if self._auth_classes is None:
                self._auth_classes = discover()
            cls = self._auth_classes.get(acct.auth.method)
        if cls is None:
            known = ", ".join(sorted(self._auth_classes or {}))
            raise TargetError(f"accounts.{acct.name}.auth.method: no auth method {acct.auth.method!r} (known: {known})")
        try:
            method = cls(acct)
        except AuthFailed as exc:
            raise TargetError(self.redactor.redact(str(exc)) or "") from None
        with self._auth_lock:
            return self._methods.setdefault(acct.name, method)

    def credentials(self, account: str | Account, refresh: bool = False) -> Credentials | None:
        """The account's credentials: logged in on first use, renewed shortly before they expire.

        None for ``method: none``. Raises TargetError (one line, no secret) when the login fails.
        """
        from crm_audit.core.auth import AuthFailed

        acct = self._account(account)
        if acct.auth.method == "none":
            return None
        with self._auth_lock:
            lock = self._login_locks.setdefault(acct.name, threading.Lock())
        with lock:
            with self._auth_lock:
                cached = self._creds.get(acct.name)
            if cached is not None and not refresh and not cached.expiring():
                return cached
            method = self.auth_method(acct)
            try:
                creds = method.refresh(self, cached) if cached is not None and not refresh else method.login(self)
            except AuthFailed as exc:
                raise TargetError(self.redactor.redact(str(exc)) or "") from None
            for value in creds.secret_values():
                self.redactor.add(value)
            with self._auth_lock:
                self._creds[acct.name] = creds
            return creds

    def token(self, account: str | Account, refresh: bool = False) -> str | None:
        """The account's bearer token, when its credentials hold one (logging in first)."""
        creds = self.credentials(account, refresh=refresh)
        return creds.token if creds is not None else None

    def forget_token(self, account: str) -> None:
        """Drop the account's credentials: the next request logs in again."""
        with self._auth_lock:
            self._creds.pop(account, None)

    def logout(self, account: str) -> Exchange | None:
        """End the account's session (its method's ``logout``) and drop its credentials.

        None when the account is not logged in or its method has no way to log out.
        """
        with self._auth_lock:
            creds = self._creds.get(account)
        if creds is None:
            return None
        try:
            return self.auth_method(account).logout(self, creds)
        finally:
            self.forget_token(account)

    def try_login(self, account: str | Account, username: str | None = None,
                  password: str | None = None) -> LoginAttempt:
        """One login try through the account's method, with other credentials if given.

        Never raises for a refusal; raises NotImplementedError when the method logs in without a
        password (bearer, api_key …). Lockout and user-enumeration checks use it.
        """
        acct = self._account(account)
        method = self.auth_method(acct)
        pw = password if password is not None else (acct.auth.password.get_secret_value() if acct.auth.password else "")
        return method.attempt(self, username if username is not None else (acct.auth.username or ""), pw)

    def present_token(self, account: str | Account, token: str) -> dict[str, str]:
        """Headers presenting ``token`` the way the account's method presents its own (token checks)."""
        acct = self._account(account)
        creds = self.credentials(acct) or _empty_credentials()
        return self.auth_method(acct).present(creds, token)

    def auth_headers(self, account: str | None) -> dict[str, str]:
        """Headers that authenticate as the account (empty for anonymous), with its own ``headers``."""
        if account is None:
            return {}
        acct = self.profile.account(account)
        creds = self.credentials(acct)
        out: dict[str, str] = dict(acct.headers)
        if creds is not None:
            out.update(creds.headers)
            if creds.cookies:
                out["Cookie"] = "; ".join(f"{k}={v}" for k, v in creds.cookies.items())
        return out

    def context(self, account: str | None) -> dict[str, Any]:
        """The account's per-request context (company, tenant …) for the adapter to send; {} for anonymous."""
        return dict(self.profile.account(account).context) if account is not None else {}

    def auth_request(self, account: str, method: str, path_or_url: str, **kw: Any) -> Exchange:
        """A request of a login flow: no credentials, retried, in the account's own login cookie jar."""
        kw.setdefault("retry", True)
        return self.request(method, path_or_url, auth=False, jar=f"\x00login:{account}", **kw)

    def auth_cookies(self, account: str) -> dict[str, str]:
        """The cookies the account's login cookie jar holds now (added to the redactor)."""
        jar = self._session(f"\x00login:{account}").cookies
        cookies = {c.name: c.value or "" for c in jar}
        for value in cookies.values():
            self.redactor.add(value)
        return cookies

    def _signer(self, account: str | None) -> Signer | None:
        if account is None:
            return None
        with self._auth_lock:
            creds = self._creds.get(account)
        return creds.signer if creds is not None else None

    # ------------------------------------------------------------ requests
    def request(
        self,
        method: str,
        path_or_url: str,
        *,
        account: str | None = None,
        auth: bool = True,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        data: Any = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
        retry: bool | None = None,
        jar: str | None = None,
    ) -> Exchange:
        """Send one request as ``account`` (None: anonymous) and return the Exchange.

        ``timeout`` overrides ``target.timeout_s`` for this request and widens its deadline to
        at least that long. ``retry`` (default: only GET/HEAD/OPTIONS) retries connection errors,
        429 and 502/503/504 up to ``target.retries`` times within the deadline.
        Network, TLS, deadline and byte-cap problems come back as ``Exchange.error`` with
        ``Exchange.failure``; only scope, budget and cancellation raise. ``jar`` names another
        cookie jar than the account's (login flows use their own).
        """
        url = self.url(path_or_url)
        self._check_scope(url)
        hdrs: dict[str, str] = dict(self.auth_headers(account) if auth else {})
        if headers:
            hdrs.update(headers)
        session = self._session(jar if jar is not None else (account or ""))
        signer = self._signer(account) if auth else None
        clock = _Clock(max(self.config.deadline_s, timeout or 0.0), timeout or self.config.timeout_s)
        retrying = (method.upper() in IDEMPOTENT) if retry is None else retry
        redirects: list[str] = []
        ex = self._send(session, method, url, hdrs, params, json, data, clock, account, retrying, signer)
        while allow_redirects and ex.status in (301, 302, 303, 307, 308) and "location" in ex.headers:
            nxt = urljoin(ex.url, ex.headers["location"])
            if len(redirects) >= self.config.max_redirects:
                ex.error = f"more than {self.config.max_redirects} redirects"
                ex.failure = NotAssessed.request_failed
                break
            if not self.in_scope(nxt):
                ex.blocked_redirect = self.redactor.redact(nxt)
                break
            redirects.append(ex.url)
            if ex.status == 303 or (ex.status in (301, 302) and method.upper() == "POST"):
                method, json, data = "GET", None, None
            retrying = (method.upper() in IDEMPOTENT) if retry is None else retry
            ex = self._send(session, method, nxt, hdrs, None, json, data, clock, account, retrying, signer)
        ex.redirects = redirects
        return ex

    def _send(
        self, session: requests.Session, method: str, url: str, headers: dict[str, str],
        params: Mapping[str, Any] | None, json: Any, data: Any, clock: _Clock, account: str | None,
        retrying: bool, signer: Signer | None = None,
    ) -> Exchange:
        """One request with its retries; every attempt is charged to the budget and the rate limit."""
        waits: list[float] = []
        attempt = 0
        while True:
            attempt += 1
            ex = self._attempt(session, method, url, headers, params, json, data, clock, account, signer)
            ex.attempts, ex.retry_waits_s = attempt, list(waits)
            wait = self._retry_wait(ex, attempt, clock) if retrying else None
            if wait is None:
                return ex
            waits.append(wait)
            event = getattr(self._local, "cancel", None)
            if event is not None:
                event.wait(wait)
            else:
                time.sleep(wait)

    def _retry_wait(self, ex: Exchange, attempt: int, clock: _Clock) -> float | None:
        """Seconds to wait before another attempt, or None: keep this answer."""
        if attempt > self.config.retries or self.budget_left <= 0:
            return None
        if ex.status in RETRY_STATUSES and ex.error is None:
            asked = retry_after_s(ex.headers.get("retry-after")) if ex.status in (429, 503) else None
        elif ex.status is None and ex.failure is NotAssessed.request_failed and ex.error \
                and ex.error.startswith("connection failed"):
            asked = None
        else:
            return None
        if asked is not None:
            if asked > self.config.max_retry_after_s:
                return None  # waiting less than asked would only be refused again
            wait = asked
        else:
            cap = min(BACKOFF_MAX_S, BACKOFF_BASE_S * 2 ** (attempt - 1))
            wait = random.uniform(cap / 2, cap)  # exponential backoff with jitter
        if clock.started is not None and wait >= clock.left() - 0.05:
            return None  # no time left in this request's deadline for another attempt
        return wait

    def _attempt(
        self, session: requests.Session, method: str, url: str, headers: dict[str, str],
        params: Mapping[str, Any] | None, json: Any, data: Any, clock: _Clock, account: str | None,
        signer: Signer | None = None,
    ) -> Exchange:
        self._check_cancelled()
        ex = Exchange(method=method.upper(), url=url, account=account, _redactor=self.redactor)
        ex.limits = {"timeout_s": clock.timeout_s, "deadline_s": clock.limit_s,
                     "max_response_bytes": self.config.max_response_bytes}
        try:
            req = requests.Request(method.upper(), url, headers=headers, params=params, json=json, data=data)
            prep = session.prepare_request(req)
            if signer is not None:
                raw = prep.body.encode() if isinstance(prep.body, str) else prep.body
                signed = dict(signer(prep.method or method.upper(), prep.url or url, raw))
                for value in signed.values():
                    self.redactor.add(value)
                prep.headers.update(signed)
        except (ValueError, requests.exceptions.RequestException) as exc:
            ex.error = self.redactor.redact(f"request not sent: {type(exc).__name__}")
            ex.failure = NotAssessed.request_failed
            return ex
        self._check_scope(prep.url or url)  # what will really be contacted, after requests' own parsing
        self._spend()
        self._limiter.wait()
        clock.start()
        ex.url = prep.url or url
        ex.request_headers = dict(prep.headers)
        body = prep.body
        ex.request_body = body.encode() if isinstance(body, str) else body
        t0 = time.perf_counter()
        resp: requests.Response | None = None
        try:
            left = clock.left()
            if left <= 0:
                raise DeadlineHit()
            wait = min(clock.timeout_s, left)
            resp = session.send(prep, stream=True, timeout=(wait, wait), verify=self.verify, allow_redirects=False)
            ex.ttfb_s = time.perf_counter() - t0
            ex.status = resp.status_code
            ex.headers = resp.headers
            ex.body = read_body(resp.raw, resp.headers.get("content-encoding"), resp.headers.get("content-length"),
                                deadline=clock.deadline, read_timeout=clock.timeout_s,
                                cap=self.config.max_response_bytes)
            ex.elapsed_s = time.perf_counter() - t0
            # so close() keeps the connection alive
            resp._content, resp._content_consumed = ex.body, True  # type: ignore[attr-defined]  # private, not in types-requests
        except DeadlineHit:
            ex.error, ex.failure = self._timeout_text(clock), NotAssessed.timed_out
        except requests.exceptions.Timeout:
            ex.error, ex.failure = self._timeout_text(clock), NotAssessed.timed_out
        except CapHit as exc:
            what = "decompressed answer" if str(exc) == "decompressed" else "answer"
            ex.error = (f"{what} larger than the byte cap of {self.config.max_response_bytes} bytes "
                        "(target.max_response_bytes); not read further")
            ex.failure = NotAssessed.audit_limit
        except requests.exceptions.SSLError as exc:
            ex.error, ex.failure = f"TLS error: {_short(exc)}", NotAssessed.request_failed
        except requests.exceptions.RequestException as exc:
            kind = "connection failed" if ex.status is None else "answer cut off"
            ex.error, ex.failure = f"{kind}: {_short(exc)}", NotAssessed.request_failed
        except (urllib3.exceptions.HTTPError, OSError) as exc:  # raised while reading the streamed body
            if isinstance(exc, (urllib3.exceptions.ReadTimeoutError, TimeoutError)):
                ex.error, ex.failure = self._timeout_text(clock), NotAssessed.timed_out
            else:
                ex.error, ex.failure = f"answer cut off: {_short(exc)}", NotAssessed.request_failed
        finally:
            if resp is not None:
                resp.close()
        if ex.error:
            ex.elapsed_s = time.perf_counter() - t0
            ex.body = b""
            ex.error = _cut(self.redactor.redact(ex.error))
        return ex

    def _timeout_text(self, clock: _Clock) -> str:
        if clock.left() <= 0.01:
            return f"no whole answer within the deadline of {clock.limit_s:g} s (target.deadline_s)"
        return f"timed out: no data for {clock.timeout_s:g} s (target.timeout_s)"

    def check_reachable(self) -> str | None:
        """Raise TargetError with one clear line when the target does not answer at all.

        A target that answers only over a connection the audit cannot verify (certificate
        expired, self-signed, wrong host, failed handshake) is not a stop: the problem is
        returned and kept in ``warnings`` (the tls probe reports it as a finding), and the
        audit goes on with the verification the profile asks for.
        """
        ex = self.request("GET", self.config.health_path, auth=False)
        if ex.error and ex.error.startswith("TLS error"):
            hint = " (set target.ca_bundle to the CA that signed its certificate, or verify_tls: false)"
            warning = f"target {self.config.base_url}: {ex.error}{hint}; requests that need TLS will fail"
            self.warnings.append(warning)
            return warning
        if ex.error and ex.status is None:
            raise TargetError(f"target {self.config.base_url} unreachable: {ex.error}")
        if ex.error:
            warning = f"target {self.config.base_url}: health check {self.config.health_path}: {ex.error}"
            self.warnings.append(warning)
            return warning
        return None

    def close(self) -> None:
        for s in self._sessions.values():
            s.close()


def _empty_credentials() -> Credentials:
    from crm_audit.core.auth import Credentials

    return Credentials()


class _Clock:
    """The total deadline of one request (all its attempts, waits and redirects), started at its first send."""

    def __init__(self, limit_s: float, timeout_s: float) -> None:
        self.limit_s = limit_s
        self.timeout_s = timeout_s
        self.started: float | None = None

    def start(self) -> None:
        if self.started is None:
            self.started = time.monotonic()

    @property
    def deadline(self) -> float:
        return (self.started if self.started is not None else time.monotonic()) + self.limit_s

    def left(self) -> float:
        return self.deadline - time.monotonic()


def _short(exc: Exception) -> str:
    """The innermost useful sentence of a requests/urllib3 exception (not cut: redact first, then cut)."""
    text = str(exc)
    for marker in ("certificate verify failed", "Connection refused", "Name or service not known",
                   "No route to host", "wrong version number", "hostname", "timed out"):
        if marker in text:
            i = text.find(marker)
            return text[i:].split("')")[0].split("\")")[0].rstrip(")")
    return text.splitlines()[0] if text else type(exc).__name__


def _cut(text: str, most: int = 300) -> str:
    """An already redacted line, cut to ``most`` characters (never cut before redacting)."""
    return text if len(text) <= most else text[: most - 1] + "…"
