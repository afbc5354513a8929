"""Passwordless login to django-crm 1.x as a local command: prints one access token (JWT) on stdout.

A test-harness stand-in for the user's mailbox: it asks for a magic link, reads the link's
token from the ``magic_link_token`` table with psql (stored in plain text, the facts say), and
trades it for tokens at ``/api/auth/magic-link/verify/``. Standard library + psql only.

    python tests/targets/django_crm_1x_login.py EMAIL [--field access_token]   # whole login
    python tests/targets/django_crm_1x_login.py --read-token EMAIL            # only the link's token

``--read-token`` suits crm-audit's ``command`` login flow, which sends the magic-link request
(``auth.start``) and the verify (``auth.url``) itself and needs only the one-time token.

Env: ``DJANGO_CRM_1X_URL`` (base URL, loopback), ``DJANGO_CRM_1X_DB_URL`` (libpq URI without
password), ``PGPASSWORD`` (that role's password), optional ``CRM_AUDIT_PG_BIN`` (psql's folder).
Nothing secret is printed except the requested token; errors name the step, never a secret.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from typing import Any

__all__ = ["magic_link_login"]


def _post(url: str, body: dict[str, Any], timeout: float = 30) -> tuple[int, dict[str, Any]]:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json", "Accept": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        try:
            return e.code, json.loads(e.read() or b"{}")
        except ValueError:
            return e.code, {}


def _psql() -> str:
    pg_bin = os.environ.get("CRM_AUDIT_PG_BIN")
    return os.path.join(pg_bin, "psql") if pg_bin else (shutil.which("psql") or "psql")


def _latest_token(db_url: str, email: str, since: float) -> str | None:
    """The newest unused link token for ``email`` created after ``since`` (epoch seconds)."""
    sql = ("SELECT token FROM magic_link_token WHERE lower(email) = lower(:'email') AND NOT is_used "
           "AND delivery = 'link' AND expires_at > now() AND created_at >= to_timestamp(:since) ORDER BY created_at DESC LIMIT 1")
    proc = subprocess.run([_psql(), "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-v", f"email={email}",
                           "-v", f"since={since - 5:.3f}", "-d", db_url], input=sql + ";\n",
                          capture_output=True, text=True, timeout=30)
    if proc.returncode != 0:
        raise RuntimeError(f"reading the magic-link token failed: {proc.stderr.strip()[:300]}")
    return proc.stdout.strip() or None


def _wait_token(db_url: str, email: str, since: float, timeout_s: float) -> str:
    """Poll the DB for the link token (the request stores it synchronously, so normally at once)."""
    deadline = time.monotonic() + timeout_s
    while True:
        token = _latest_token(db_url, email, since)
        if token is not None:
            return token
        if time.monotonic() > deadline:
            raise RuntimeError("no magic-link token was stored for that e-mail (django-crm stores at most "
                               "5 links per e-mail and hour, and answers 200 either way)")
        time.sleep(0.2)


def magic_link_login(base_url: str, db_url: str, email: str, timeout_s: float = 20.0) -> dict[str, Any]:
    """Request a magic link for ``email``, read its token from the DB, verify it; return the verify answer."""
    t0 = time.time()
    status, _ = _post(base_url.rstrip("/") + "/api/auth/magic-link/request/", {"email": email, "delivery": "link"})
    if status != 200:
        raise RuntimeError(f"magic-link request answered {status} (throttled?)")
    token = _wait_token(db_url, email, t0, timeout_s)
    status, answer = _post(base_url.rstrip("/") + "/api/auth/magic-link/verify/", {"token": token})
    if status != 200 or "access_token" not in answer:
        raise RuntimeError(f"magic-link verify answered {status}")
    return answer


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("email")
    ap.add_argument("--field", default="access_token", help="field of the verify answer to print")
    ap.add_argument("--read-token", action="store_true",
                    help="only print the newest unused magic-link token of EMAIL (requested in the last minute)")
    args = ap.parse_args(argv)
    try:
        if args.read_token:
            token = _wait_token(os.environ["DJANGO_CRM_1X_DB_URL"], args.email, time.time() - 60, 10.0)
            print(token)
            return 0
        answer = magic_link_login(os.environ["DJANGO_CRM_1X_URL"], os.environ["DJANGO_CRM_1X_DB_URL"], args.email)
    except KeyError as e:
        print(f"django_crm_1x_login: set {e.args[0]}", file=sys.stderr)
        return 2
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as e:
        print(f"django_crm_1x_login: {e}", file=sys.stderr)
        return 1
    value = answer.get(args.field)
    print(value if isinstance(value, str) else json.dumps(value))
    return 0


if __name__ == "__main__":
    sys.exit(main())
