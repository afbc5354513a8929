"""Embedded demo CRM: a real FastAPI/uvicorn service over SQLite, with switchable flaws.

Used by ``crm-audit demo`` and by every probe's tests. Importing this package is cheap
(stdlib only); FastAPI is imported in the server process.

Starting one
------------
``DemoServer(flaws=(), delay_ms=0, capacity=16, tls=True, port=0, data_dir=None, seed=7, protocol="rest")``
is a context manager (or ``start()``/``stop()``). It runs ``python -m crm_audit_demo serve``
as a child process on 127.0.0.1 and exposes ``base_url`` (``https://127.0.0.1:PORT``),
``ca_path`` (test CA PEM; None without TLS), ``pid``, ``flaws`` (frozenset), ``data_dir`` and
``env``: every secret by env-var name -- the passwords of ``DEMO_USERS`` (below),
``DEMO_API_KEY``, ``DEMO_JWT_SECRET`` (signing key, to forge/inspect tokens in tests) and
``DEMO_BACKUP_KEY`` (64 hex chars, AES-256 key of encrypted backups). Unknown flaw names
raise ValueError. ``FLAWS`` maps each flaw name to a one-line description.
Standalone: ``python -m crm_audit_demo serve --port N [--flaw NAME ...] [--delay-ms N]
[--capacity N] [--no-tls] [--data-dir D] [--seed N]``; secrets come from the same env vars,
absent ones are generated into ``<data-dir>/secrets.env`` (0600).
Every start reseeds: a fresh database, fresh certificates, an empty backup catalogue plus
the "nightly" backup. With ``requests`` pass ``verify=str(ca_path)`` per request: a
``REQUESTS_CA_BUNDLE`` env var silently overrides ``Session.verify``.

Accounts (username = e-mail; user ids are 1..9 in this order)
--------------------------------------------------------------
1 admin@acme.example (admin, DEMO_ADMIN_PASSWORD), 2 manager@acme.example (manager,
DEMO_MANAGER_PASSWORD), 3 sales@acme.example (sales, DEMO_SALES_PASSWORD),
4 sales2@acme.example (sales, DEMO_SALES2_PASSWORD), 5 readonly@acme.example (readonly,
DEMO_READONLY_PASSWORD), 6 lockout@acme.example (sales, DEMO_LOCKOUT_PASSWORD; for
lockout tests, owns no records), 7 admin@globex.example (admin, DEMO_GLOBEX_ADMIN_PASSWORD),
8 sales@globex.example (sales, DEMO_GLOBEX_SALES_PASSWORD), 9 disposable@acme.example (sales,
DEMO_DISPOSABLE_PASSWORD; for token-lifecycle tests, owns no records). Header ``X-API-Key:
$DEMO_API_KEY`` authenticates as service user 10 integration@acme.example (readonly, acme,
``kind: "service"``, cannot log in). Tenant ids are the strings ``"acme"`` and ``"globex"``
(records' ``tenant_id``, the token's ``tenant`` claim). ``acme`` is the operator tenant.

API (JSON; prefix /api; OpenAPI at /openapi.json, public; no /docs UI)
----------------------------------------------------------------------
- ``GET /api/health`` -> ``{"status":"ok"}``; anonymous, outside the capacity limit.
- ``POST /api/auth/login {"username","password"}`` -> ``{"access_token","token_type":"bearer",
  "expires_in":900}``. JWT HS256, claims ``sub`` (user id, string), ``tenant``, ``role``, ``iat``,
  ``exp`` (+900 s), ``jti``. Username matching is case-insensitive. Bad credentials -> 401
  ``{"detail":"invalid username or password"}`` (unknown users cost the same scrypt time).
  Lockout: per username (unknown ones too), failures 1-5 within 15 min answer 401; from the
  6th attempt on, for 60 s after the 5th failure, every attempt (even the right password)
  -> 429 ``{"detail":"too many failed attempts"}`` + ``Retry-After`` (seconds). A success resets.
- ``POST /api/auth/logout`` (any authenticated caller) -> 204; revokes the token's jti.
- ``POST /api/auth/register`` -> 403 ``{"detail":"registration disabled"}`` (whatever the body).
- ``GET /api/me`` -> user object; ``PATCH /api/me`` changes ``first_name``/``last_name`` only.
  User object: ``id, username, email, first_name, last_name, role, tenant_id, kind
  ("person"|"service"), active, created_at, updated_at`` -- never ``password_hash``.
  Authorization uses the token's role/tenant claims; a role change applies at next login.
- Records ``contacts, accounts, leads, opportunities, cases`` (fields: see ``resources.py``):
  ``GET /api/<r>?limit=&offset=&tag=`` -> ``{"items","total","limit","offset"}``, caller's tenant,
  ordered by id, default limit 50, larger limits are clamped to 200 (limit<1 or offset<0 -> 422),
  ``tag`` = exact tag match. ``POST`` -> 201 record; ``GET|PUT|PATCH|DELETE /api/<r>/{id}`` ->
  200/200/200/204. Required on POST/PUT: contacts first_name+last_name, accounts name, leads
  title, opportunities name, cases subject. PUT resets omitted fields to null/defaults
  (accounts churned=false, leads status=new, opportunities stage=prospecting, cases
  status=new, priority=normal, type=question) but keeps ``tags`` unless given. ``id, tenant_id,
  owner_id, created_at, updated_at`` in bodies are ignored; unknown keys are ignored.
  Enum/type errors, a required field set to null, or a reference (``account_id``,
  ``contact_id``, ``lead_id``, ``converted_opportunity_id``, ``repeat_of``) to no record of the
  same tenant -> 422 (FastAPI's ``{"detail":[{"type","loc","msg","input"}]}``). E-mail and
  phone formats are not validated (data quality is the audit's job).
  Timestamps: ISO 8601 UTC ``YYYY-MM-DDTHH:MM:SSZ``.
- Authorization: checks run in order role (403) -> record in caller's tenant (404) ->
  ownership (403). admin and manager: all record actions in their tenant; sales: list/read
  all, create, update/delete own records only; readonly and the API key: list/read only.
  Other tenant's or unknown id -> 404 ``{"detail":"not found"}``; a non-integer id -> 404.
  No/invalid/expired/revoked credentials -> 401 ``{"detail": "not authenticated" | "invalid
  token" | "token expired" | "token revoked" | "invalid API key"}`` + ``WWW-Authenticate: Bearer``.
- ``GET /api/users?limit=&offset=`` (admin) -> ``{"items","total","limit","offset"}`` of its tenant;
  ``GET /api/users/{id}`` (admin; other tenant -> 404). Others -> 403.
- Credentials (``api_users.py``): ``POST /api/me/password {"old_password","new_password"}`` -> 200
  (wrong old -> 400, new under 8 characters -> 422); every earlier token of the user is then
  revoked. Admin only, users of its tenant, never itself (403; unknown -> 404): ``POST /api/users
  {"username","password",role?,first_name?,last_name?}`` -> 201 user (hashed password; 409 if
  taken), ``DELETE /api/users/{id}`` -> 204, ``POST /api/users/{id}/deactivate|activate`` -> 200
  user; a deactivated user cannot log in and its tokens are refused.
- ``GET /api/admin/audit-log?limit=`` (admin; default 100, max 1000) -> ``{"items":[{"at",
  "actor","action","target","ip"}]}`` newest first, the admin's tenant plus unattributable
  events. actions: login, login_failed, login_locked, logout, create, update, delete,
  register, backup, backup_download, restore; target like ``contacts/12``, ``backup/3``,
  ``user/5`` (``user/<username>`` for failed logins).
- Backups -- instance-wide, so only an admin of the operator tenant (admin@acme.example);
  manager and the globex admin -> 403: ``POST /api/admin/backups`` -> 201 ``{"id","created_at",
  "size","sha256","encrypted","kind"}`` (kind "nightly" | "manual"; ids 1, 2, ...);
  ``GET /api/admin/backups`` -> ``{"items"}`` newest first; ``GET /api/admin/backups/{id}/download``
  -> application/octet-stream + ``X-Checksum-SHA256``; ``POST /api/admin/backups/{id}/restore`` ->
  200 ``{"restored":id,"duration_s"}`` (synchronous; checksum and SQLite integrity verified
  first, else 409). Backup 1 is the "nightly" one, created_at = start - 2 h. Encrypted file:
  ``b"CRMAENC1"`` + 12-byte nonce + AES-256-GCM(SQLite file) with the 16-byte tag appended,
  no associated data, key ``DEMO_BACKUP_KEY``. The catalogue and the audit log live outside
  the database, so a restore keeps them.
- Every API request except health holds one of ``capacity`` slots and sleeps ``delay_ms``
  inside it (throughput ~ capacity/delay).
- Headers: ``Strict-Transport-Security: max-age=63072000; includeSubDomains`` (HTTPS),
  ``X-Content-Type-Options: nosniff``, ``X-Frame-Options: DENY``, ``Content-Security-Policy:
  default-src 'none'; frame-ancestors 'none'``, ``Referrer-Policy: no-referrer`` on all responses,
  ``Cache-Control: no-store`` on /api; no ``Server``/``X-Powered-By``; no CORS headers at all
  (a preflight gets 405). Unhandled errors -> 500 ``{"detail":"internal error"}``.
- TLS: test CA (CA:TRUE) signs an RSA-2048 leaf (SAN localhost, 127.0.0.1, ::1; 30 days);
  TLS 1.2 (ECDHE + AES-GCM/ChaCha20 only) and TLS 1.3.

Flaws (each off by default; see ``FLAWS``): where the flaw text is terse --
``bola`` drops the tenant and ownership steps on the five record resources (role step stays:
readonly still cannot write). ``tenant-leak`` also affects ``GET /api/users``.
``no-role-check`` drops both role and ownership steps for DELETE on records.
``mass-assignment``: ``owner_id`` (int) / ``tenant_id`` (str) in record bodies are stored;
``PATCH /api/me`` stores ``role`` / ``tenant_id`` when they are valid values.
``leak-hashes``: ``password_hash`` in /api/me, /api/users, register responses.
``hidden-privilege``: ``GET /api/me`` leaves ``role`` out (the PATCH answers and admins' user views
still show it); a valid ``role`` in PUT/PATCH on the caller's own ``/api/users/{id}`` is stored.
``no-expiry``: login still says ``expires_in: 900``. ``user-enum`` also skips the dummy hash
(a timing difference too). ``open-registration`` needs an e-mail-like username and a
password of 8+ characters (422 otherwise, 409 if taken). ``cors`` answers preflights itself
(204). ``no-security-headers`` removes all six headers above (HSTS included).
``backup-public``: list/create/download anonymous; restore still needs the operator admin.
``token-after-password-change``, ``token-after-deactivation``: the earlier tokens stay valid.
``plaintext-password``: ``POST /api/users`` stores the password as it is (so the new user's
login fails) and answers it back in ``password``.
``weak-tls``: TLS 1.0-1.3 with ``ALL:!aNULL:!eNULL:@SECLEVEL=0`` (CBC, static-RSA, CAMELLIA,
ARIA...; this OpenSSL build has no 3DES).

JSON-RPC face (``protocol="jsonrpc"``, ``--protocol jsonrpc``)
--------------------------------------------------------------
``POST /api/jsonrpc`` beside the REST API, serving the same data, roles, tenants and flaws through
the same handlers: ``auth.login {login, password}`` -> ``{uid, session_id, company, expires_in}``;
then ``X-Session: <uid>:<session_id>`` (or ``X-API-Key``) and ``params.context.company`` on every
call; ``<model>.search_read|read|create|write|unlink``, ``users.*``, ``audit_log.search_read``,
``auth.logout``, ``auth.register``. Always HTTP 200 with ``error: {code, message: "<Name>: …"}``
on failure (AuthenticationError, SessionExpired, AccessError, MissingError, ValidationError,
UserError, TooManyAttempts). ``DemoServer.profile_name`` names the bundled profile for it
(``demo-jsonrpc.yaml``); see ``api_jsonrpc.py``.

Seeded data: see ``data.py`` (``SEEDED_DEFECTS`` with exact defect definitions, ``SIZES``).
"""

from crm_audit_demo.config import DEMO_USERS, DemoUser
from crm_audit_demo.data import SEEDED_DEFECTS
from crm_audit_demo.flaws import FLAWS, validate_flaws
from crm_audit_demo.server import DemoServer

__all__ = ["DEMO_USERS", "FLAWS", "SEEDED_DEFECTS", "DemoServer", "DemoUser", "validate_flaws"]
