"""The django-crm 0.9.0 test target behaves as the verified facts file says.

Starts PostgreSQL + django-crm once per module (warm venv: a few seconds) and
checks the behaviours the probes rely on: JWT login per user, the ``JWT``
auth scheme, per-USER contact visibility, anonymous ADMIN signup (flaw 1),
forged tokens under the default SECRET_KEY (flaw 2), public swagger, and a
pg_dump/pg_restore round trip.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import subprocess
from pathlib import Path
from typing import Any

import pytest
import requests
from targets.django_crm import DEFAULT_SECRET_KEY, USERS, DjangoCrmServer
from targets.postgres import PostgresServer

pytestmark = pytest.mark.integration


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(token: str) -> dict[str, Any]:
    """Decode a JWT payload without verifying it."""
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def _forge(claims: dict[str, Any], key: str) -> str:
    """HS256-sign ``claims`` with ``key`` (what an attacker does with the default key)."""
    head = _b64url(json.dumps({"typ": "JWT", "alg": "HS256"}).encode())
    body = _b64url(json.dumps(claims).encode())
    sig = hmac.new(key.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{_b64url(sig)}"


def _login(crm: DjangoCrmServer, email: str, password: str | None = None) -> str:
    r = requests.post(
        crm.base_url + "/api/auth/login/",
        json={"email": email, "password": password or crm.password(email)},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    return r.json()["token"]


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"JWT {token}"}


def _contact_ids(crm: DjangoCrmServer, token: str) -> set[int]:
    r = requests.get(crm.base_url + "/api/contacts/?limit=100", headers=_auth(token), timeout=30)
    assert r.status_code == 200, r.text
    return {c["id"] for c in r.json()["contact_obj_list"]}


def test_exposed_api(crm: DjangoCrmServer) -> None:
    assert crm.base_url.startswith("http://127.0.0.1:")
    assert set(crm.env) == {v for _, v in USERS.values()} | {"PGPASSWORD"}
    assert {e: u["role"] for e, u in crm.users.items()} == {e: r for e, (r, _) in USERS.items()}
    assert {"contacts", "leads", "accounts", "opportunities", "cases"} <= set(crm.records)
    defects = {r["defect"] for recs in crm.records.values() for r in recs if r["defect"]}
    assert {"duplicate_contact", "bad_phone", "bad_email"} <= defects
    assert crm.secret_key != DEFAULT_SECRET_KEY and crm.pid


@pytest.mark.parametrize("email", list(USERS))
def test_login_gives_jwt(crm: DjangoCrmServer, email: str) -> None:
    token = _login(crm, email)
    claims = _claims(token)
    assert claims["email"] == email and claims["id"] == crm.users[email]["id"]
    assert claims["role"] == USERS[email][0]
    assert "exp" not in claims  # flaw 3: no expiry


def test_jwt_scheme_required(crm: DjangoCrmServer) -> None:
    token = _login(crm, "admin1@example.com")
    url = crm.base_url + "/api/contacts/"
    none = requests.get(url, timeout=30)
    assert none.status_code == 401 and none.headers.get("WWW-Authenticate", "").startswith("JWT")
    assert requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=30).status_code == 401
    assert requests.get(url, headers=_auth(token), timeout=30).status_code == 200


def test_user_sees_only_own_contacts(crm: DjangoCrmServer) -> None:
    contacts = crm.records["contacts"]
    everything = {c["id"] for c in contacts}
    assert _contact_ids(crm, _login(crm, "admin1@example.com")) == everything
    for email in ("user1@example.com", "user2@example.com"):
        mine = {c["id"] for c in contacts if c["owner"] == email or email in c["assigned_to"]}
        seen = _contact_ids(crm, _login(crm, email))
        assert seen == mine and seen < everything, email


def test_anonymous_register_creates_admin(crm: DjangoCrmServer) -> None:
    email = f"anon-{secrets.token_hex(4)}@example.com"
    password = secrets.token_urlsafe(12)
    r = requests.post(
        crm.base_url + "/api/auth/register/",
        json={"email": email, "username": email.split("@")[0], "password": password},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    token = _login(crm, email, password)
    assert _claims(token)["role"] == "ADMIN"
    assert requests.get(crm.base_url + "/api/users/", headers=_auth(token), timeout=30).status_code == 200


def test_swagger_public(crm: DjangoCrmServer) -> None:
    r = requests.get(crm.base_url + "/swagger.json", timeout=60)
    assert r.status_code == 200 and r.json()["swagger"] == "2.0"
    assert r.json()["basePath"] == "/api"


def test_forged_token_rejected_with_random_key(crm: DjangoCrmServer) -> None:
    forged = _forge({"id": crm.users["admin1@example.com"]["id"]}, DEFAULT_SECRET_KEY)
    assert requests.get(crm.base_url + "/api/users/", headers=_auth(forged), timeout=30).status_code == 401


def test_forged_token_accepted_with_default_key(pg: PostgresServer) -> None:
    with DjangoCrmServer(pg, db_name="crm_default_key", default_secret=True, seed=False) as weak:
        assert weak.secret_key == DEFAULT_SECRET_KEY
        forged = _forge({"id": weak.users["admin1@example.com"]["id"]}, DEFAULT_SECRET_KEY)
        r = requests.get(weak.base_url + "/api/users/", headers=_auth(forged), timeout=30)
        assert r.status_code == 200, r.text
    pg.drop_database("crm_default_key")


def _sh(cmd: str, crm: DjangoCrmServer) -> None:
    proc = subprocess.run(cmd, shell=True, env={**os.environ, **crm.pg_env}, capture_output=True, text=True)
    assert proc.returncode == 0, f"{cmd}\n{proc.stderr}"


def test_pg_dump_restore_round_trip(crm: DjangoCrmServer, tmp_path: Path) -> None:
    token = _login(crm, "admin1@example.com")
    email = f"backup-{secrets.token_hex(4)}@example.com"
    r = requests.post(
        crm.base_url + "/api/contacts/",
        json={"first_name": f"Backup{secrets.token_hex(3)}", "last_name": "Probe", "email": email},
        headers=_auth(token),
        timeout=30,
    )
    assert r.status_code == 200, r.text
    r = requests.get(crm.base_url + "/api/contacts/?limit=100", headers=_auth(token), timeout=30)
    [cid] = [c["id"] for c in r.json()["contact_obj_list"] if c["email"] == email]

    dump = tmp_path / "crm.dump"
    assert "PGPASSWORD" not in crm.pg_dump_cmd(dump) and crm.db.password not in crm.pg_dump_cmd(dump)
    _sh(crm.pg_dump_cmd(dump), crm)
    assert dump.stat().st_size > 0

    assert requests.delete(f"{crm.base_url}/api/contacts/{cid}/", headers=_auth(token), timeout=30).status_code == 200
    assert cid not in _contact_ids(crm, token)

    _sh(crm.pg_restore_cmd(dump), crm)  # over the live DB, gunicorn still running
    assert cid in _contact_ids(crm, token)
    crm.restart()
    r = requests.get(f"{crm.base_url}/api/contacts/{cid}/", headers=_auth(token), timeout=30)
    assert r.status_code == 200 and r.json()["contact_obj"]["email"] == email
