"""HTTP side of transport security: HSTS, plain-HTTP redirect, cookies' Secure flag.

Requests go through the audit's Target (scope, rate, budget, redaction). When the Target
cannot complete the TLS handshake (an untrusted or expired certificate is exactly what the
probe looks for), the HSTS header sslyze saw on its own connection is used instead.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit

from crm_audit.core.model import Evidence, NotAssessed

from .scan import HstsSeen

HSTS_PASS_AGE = 31_536_000  # one year: passes
HSTS_MOZILLA_AGE = 63_072_000  # two years: what Mozilla's configurations ask for


class ExchangeLike(Protocol):
    """What this module needs from ``crm_audit.core.target.Exchange`` (read-only)."""

    @property
    def status(self) -> int | None: ...
    @property
    def headers(self) -> Mapping[str, str]: ...
    @property
    def url(self) -> str: ...
    @property
    def error(self) -> str | None: ...

    def evidence(self, excerpt_chars: int = 300, **extra: Any) -> Evidence: ...


class TargetLike(Protocol):
    def request(self, method: str, path_or_url: str, *, allow_redirects: bool = ...) -> ExchangeLike: ...

    def in_scope(self, url: str) -> bool: ...


@dataclass(frozen=True)
class HstsInfo:
    """A parsed Strict-Transport-Security header; ``present`` is False when absent or invalid."""

    present: bool
    max_age: int | None = None
    include_subdomains: bool = False
    preload: bool = False
    raw: str | None = None
    source: str = "target"

    def as_artifact(self) -> dict[str, Any] | None:
        if not self.present:
            return None
        return {
            "max_age": self.max_age,
            "include_subdomains": self.include_subdomains,
            "preload": self.preload,
            "source": self.source,
        }


RedirectVerdict = Literal["redirects", "no_redirect", "not_served", "skipped", "timed_out"]


@dataclass(frozen=True)
class RedirectResult:
    """What the plain-HTTP port did: redirect to HTTPS, serve content, or nothing at all."""

    verdict: RedirectVerdict
    url: str | None = None
    status: int | None = None
    location: str | None = None
    reason: str = ""
    evidence: Evidence | None = None


@dataclass
class HttpFacts:
    """Everything the HTTP checks learned about one HTTPS endpoint."""

    https_url: str
    hsts: HstsInfo | None = None
    cookies: list[str] = field(default_factory=list)
    insecure_cookies: list[str] = field(default_factory=list)
    redirect: RedirectResult | None = None
    error: str | None = None
    evidence: Evidence | None = None


_MAX_AGE_RE = re.compile(r'^max-age\s*=\s*"?(\d+)"?$', re.I)


def parse_hsts(value: str | None, source: str = "target") -> HstsInfo:
    """Parse an HSTS header (RFC 6797); a header without a valid max-age counts as absent."""
    if not value:
        return HstsInfo(present=False, raw=value, source=source)
    max_age: int | None = None
    include_sub = preload = False
    for part in value.split(";"):
        token = part.strip()
        m = _MAX_AGE_RE.match(token)
        if m:
            max_age = int(m.group(1))
        elif token.lower() == "includesubdomains":
            include_sub = True
        elif token.lower() == "preload":
            preload = True
    return HstsInfo(max_age is not None, max_age, include_sub, preload, value, source)


def from_sslyze(seen: HstsSeen | None) -> HstsInfo | None:
    if seen is None:
        return None
    return HstsInfo(seen.present, seen.max_age, seen.include_subdomains, seen.preload, None, "sslyze")


_COOKIE_SPLIT_RE = re.compile(r",\s*(?=[^;,=\s]+=)")


def split_set_cookie(value: str) -> list[str]:
    """Split Set-Cookie headers that an HTTP client folded into one comma-joined value.

    A comma followed by ``name=`` starts a new cookie; commas inside ``Expires`` dates do not.
    """
    out: list[str] = []
    for piece in _COOKIE_SPLIT_RE.split(value):
        if out and re.match(r"^\d{2}[ -]\w{3}[ -]\d{2,4}", piece.strip()):
            out[-1] += ", " + piece  # an Expires date split by mistake
        elif piece.strip():
            out.append(piece.strip())
    return out


def set_cookies(headers: Mapping[str, str]) -> list[str]:
    """Every Set-Cookie header of a response, one string per cookie."""
    raw = getattr(headers, "get_all", None)
    if callable(raw):  # e.g. email.message / http.client headers
        values = list(raw("Set-Cookie") or [])
    else:
        value = headers.get("Set-Cookie") or headers.get("set-cookie")
        values = [value] if value else []
    return [c for v in values for c in split_set_cookie(v)]


def cookie_name(cookie: str) -> str:
    return cookie.split("=", 1)[0].strip()


def insecure_cookie_names(cookies: list[str]) -> list[str]:
    """Names of cookies set without the Secure attribute (names only: values are secrets)."""
    bad = []
    for c in cookies:
        attrs = {a.strip().split("=", 1)[0].lower() for a in c.split(";")[1:]}
        if "secure" not in attrs:
            bad.append(cookie_name(c))
    return bad


def judge_redirect(exchange: ExchangeLike, https_host: str) -> RedirectResult:
    """Classify the plain-HTTP answer: a redirect to https:// on the same host passes."""
    ev = exchange.evidence(excerpt_chars=200)
    if exchange.error or exchange.status is None:
        # a refused connection is an answer (nothing is served); a timeout is not
        verdict: RedirectVerdict = "timed_out" if getattr(exchange, "failure", None) == NotAssessed.timed_out else "not_served"
        return RedirectResult(verdict, exchange.url, None, None, exchange.error or "no answer", ev)
    location = exchange.headers.get("location") or exchange.headers.get("Location")
    if exchange.status in (301, 302, 303, 307, 308) and location:
        loc = urlsplit(location)
        if loc.scheme == "https" and (loc.hostname or "").lower() == https_host.lower():
            return RedirectResult("redirects", exchange.url, exchange.status, location, "", ev)
        if loc.scheme == "https":
            return RedirectResult("redirects", exchange.url, exchange.status, location, "redirects to another HTTPS host", ev)
        return RedirectResult("no_redirect", exchange.url, exchange.status, location, "redirect does not go to https://", ev)
    return RedirectResult("no_redirect", exchange.url, exchange.status, location, f"answers {exchange.status} over plain HTTP", ev)


def collect(
    target: TargetLike,
    https_url: str,
    http_url: str | None,
    sslyze_hsts: HstsSeen | None = None,
) -> HttpFacts:
    """GET the HTTPS URL (and the plain-HTTP URL, when given) through the Target and judge them."""
    facts = HttpFacts(https_url=https_url)
    ex = target.request("GET", https_url, allow_redirects=False)
    if ex.error or ex.status is None:
        facts.error = ex.error or "no answer"
        facts.hsts = from_sslyze(sslyze_hsts)
    else:
        facts.evidence = ex.evidence(excerpt_chars=120)
        facts.hsts = parse_hsts(ex.headers.get("Strict-Transport-Security"))
        facts.cookies = [cookie_name(c) for c in set_cookies(ex.headers)]
        facts.insecure_cookies = insecure_cookie_names(set_cookies(ex.headers))
    if http_url is None:
        facts.redirect = RedirectResult("skipped", reason="no plain-HTTP port to test (set plugins.tls.http_port)")
    elif not target.in_scope(http_url):
        facts.redirect = RedirectResult("skipped", http_url, reason="plain-HTTP URL outside the scope")
    else:
        host = urlsplit(https_url).hostname or ""
        facts.redirect = judge_redirect(target.request("GET", http_url, allow_redirects=False), host)
    return facts
