"""A real CRM as a test target: django-crm 0.9.0 on PostgreSQL, served by gunicorn.

Follows /work/shared/domain/django-crm-facts.md: pinned venv, ``settings.Domain``
WSGI shim, ``CELERY_BROKER_URL=memory://`` as an env var, an ALLOWED_HOSTS
override module, DEBUG unset, random SECRET_KEY (unless ``default_secret``).

Typical use::

    with PostgresServer() as pg, DjangoCrmServer(pg) as crm:
        requests.post(crm.base_url + "/api/auth/login/",
                      json={"email": "admin1@example.com",
                            "password": crm.env["DJANGO_CRM_ADMIN1_PASSWORD"]})

Env knobs: ``CRM_AUDIT_DJANGO_CRM_VENV`` (venv dir to use/create),
``CRM_AUDIT_VERBOSE=1`` (log each step's wall time to stderr),
``CRM_AUDIT_DJANGO_CRM_SCHEMA_CACHE=0`` (always run the full migrate).
"""

from __future__ import annotations

import atexit
import json
import os
import secrets
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from crm_audit.core.net import free_port

from .common import build_venv, requirements_key, stop_process, timed, verbose_log, wait_http
from .postgres import PostgresServer

__all__ = [
    "DEFAULT_SECRET_KEY",
    "REQUIREMENTS_FILE",
    "USERS",
    "DbInfo",
    "DjangoCrmServer",
    "ensure_venv",
    "venv_dir_for",
]

REQUIREMENTS_FILE = Path(__file__).with_name("django_crm_requirements.txt")
# Hard-coded in django-crm 0.9.0 crm/settings.py; also signs the JWTs (facts: flaw 2).
DEFAULT_SECRET_KEY = "&q1&ftrxho9lrzm$$%6!cplb5ac957-9y@t@17u(3yqqb#9xl%"
VENV_ENV = "CRM_AUDIT_DJANGO_CRM_VENV"
SCHEMA_CACHE_ENV = "CRM_AUDIT_DJANGO_CRM_SCHEMA_CACHE"

# email -> (role, env var holding its password)
USERS: dict[str, tuple[str, str]] = {
    "admin1@example.com": ("ADMIN", "DJANGO_CRM_ADMIN1_PASSWORD"),
    "admin2@example.com": ("ADMIN", "DJANGO_CRM_ADMIN2_PASSWORD"),
    "user1@example.com": ("USER", "DJANGO_CRM_USER1_PASSWORD"),
    "user2@example.com": ("USER", "DJANGO_CRM_USER2_PASSWORD"),
    "lockout@example.com": ("USER", "DJANGO_CRM_LOCKOUT_PASSWORD"),
    # the token-lifecycle checks change its password and deactivate it (and undo both)
    "disposable@example.com": ("USER", "DJANGO_CRM_DISPOSABLE_PASSWORD"),
}

# Env vars that would change django-crm's behaviour if inherited from the caller.
_STRIP_ENV = {
    "DEBUG", "ENV_TYPE", "SECRET_KEY", "DJANGO_SETTINGS_MODULE", "DBNAME", "DBUSER",
    "DBPASSWORD", "DBHOST", "DBPORT", "CELERY_BROKER_URL", "DOMAIN_NAME", "PYTHONPATH",
    "PYTHONHOME", "VIRTUAL_ENV", "PGPASSWORD", "PGPASSFILE", "PGSERVICE",
}


_log = verbose_log("django-crm target")


def _timed(timings: dict[str, float], step: str) -> AbstractContextManager[None]:
    """Record a step's wall time in ``timings`` (and log it when verbose)."""
    return timed(timings, step, _log)


# ---------------------------------------------------------------------------
# virtualenv
# ---------------------------------------------------------------------------
def _requirements_hash(requirements: Path = REQUIREMENTS_FILE) -> str:
    """Hash of the requirements file plus the interpreter version: the venv cache key."""
    return requirements_key(requirements, f"{sys.version_info.major}.{sys.version_info.minor}")


def venv_dir_for(requirements: Path = REQUIREMENTS_FILE) -> Path:
    """Where the venv lives: ``$CRM_AUDIT_DJANGO_CRM_VENV`` or ``~/.cache/crm-audit/django-crm-venv-<hash>``."""
    override = os.environ.get(VENV_ENV)
    if override:
        return Path(override).expanduser()
    return Path.home() / ".cache" / "crm-audit" / f"django-crm-venv-{_requirements_hash(requirements)}"


def ensure_venv(venv_dir: Path | None = None, requirements: Path = REQUIREMENTS_FILE) -> Path:
    """Create (once) a venv with the pinned django-crm stack; reuse it when its marker matches.

    A file lock serialises concurrent builders; a marker written last means a
    half-built venv (killed build) is detected and rebuilt.
    """
    venv = Path(venv_dir) if venv_dir else venv_dir_for(requirements)

    def create(venv: Path) -> None:
        t0 = time.monotonic()
        # No pip inside the venv: the host pip installs into it (--python), ~3 s faster.
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
        pip = [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python")]
        if _pip_supports_python_option():
            cmd = pip
        else:  # pip < 22.3: fall back to a venv with its own pip
            subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
            cmd = [str(venv / "bin" / "python"), "-m", "pip"]
        # --no-compile: skip byte-compiling boto3/botocore & co; imports compile what they use.
        proc = subprocess.run(
            [*cmd, "install", "--disable-pip-version-check", "-q", "--no-compile",
             "-r", str(requirements)],
            capture_output=True, text=True,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"pip install for django-crm failed:\n{proc.stdout}\n{proc.stderr}")
        _log(f"venv build ({venv}): {time.monotonic() - t0:.2f}s")

    return build_venv(venv, _requirements_hash(requirements), create)


def _pip_supports_python_option() -> bool:
    try:
        import pip  # noqa: PLC0415

        major, minor = (int(x) for x in pip.__version__.split(".")[:2])
        return (major, minor) >= (22, 3)
    except Exception:
        return False


# ---------------------------------------------------------------------------
# files written into the run dir
# ---------------------------------------------------------------------------
_SETTINGS_PY = '''\
"""Local settings for the crm-audit test target (facts: ALLOWED_HOSTS is hard-coded)."""
from crm.settings import *  # noqa: F401,F403

ALLOWED_HOSTS = {allowed_hosts!r}
'''

_WSGI_PY = '''\
"""WSGI entry with the settings.Domain shim (facts: every create 500s without it)."""
import os

from django.core.wsgi import get_wsgi_application

application = get_wsgi_application()

from django.conf import settings  # noqa: E402

settings.Domain = os.environ.get("DOMAIN_NAME") or "localhost:8000"
'''

# Runs inside the django-crm venv: migrate, create users, seed records. Reads
# JSON from stdin (so passwords never hit argv) and prints one JSON result line.
_BOOTSTRAP_PY = r'''
import datetime
import json
import sys

import django

django.setup()
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

cfg = json.load(sys.stdin)
out = {"users": {}, "records": {}}
if cfg.get("migrate"):
    call_command("migrate", interactive=False, verbosity=0)
if cfg.get("migrate_check"):
    call_command("migrate", check=True, verbosity=0)  # raises SystemExit(1) if unapplied

from common.models import User  # noqa: E402
from contacts.models import Contact  # noqa: E402
from leads.models import Lead  # noqa: E402
from accounts.models import Account  # noqa: E402
from opportunity.models import Opportunity  # noqa: E402
from cases.models import Case  # noqa: E402

users = {}
for email, spec in cfg.get("users", {}).items():
    admin = spec["role"] == "ADMIN"
    u = User.objects.create_user(
        username=email.split("@")[0], email=email, password=spec["password"],
        role=spec["role"], is_admin=admin, has_sales_access=True,
        has_marketing_access=admin, first_name=email.split("@")[0].capitalize(),
    )
    users[email] = u
    out["users"][email] = {"id": u.id, "role": u.role}


def rec(resource, obj, owner, assigned=(), defect=None, label=None):
    for a in assigned:
        obj.assigned_to.add(users[a])
    out["records"].setdefault(resource, []).append({
        "id": obj.id, "owner": owner, "assigned_to": list(assigned),
        "label": label or str(obj), "defect": defect,
    })
    return obj


if cfg.get("seed") and users:
    U = users
    today = datetime.date.today()
    # contacts: (first, last, email, phone, owner, assigned, defect)
    contacts = [
        ("Alice", "Anders", "alice.anders@acme.example", "+14155550101", "user1@example.com", [], None),
        ("Bob", "Brown", "bob.brown@globex.example", "+14155550102", "admin1@example.com", ["user1@example.com"], None),
        ("Carol", "Chen", "carol.chen@initech.example", "+442071838750", "user2@example.com", [], None),
        ("Dave", "Diaz", "dave.diaz@umbrella.example", "+14155550104", "admin2@example.com", [], None),
        # duplicate-looking: same person as Alice, different case / plus-tag e-mail
        ("alice", "anders", "Alice.Anders+crm@ACME.example", "+14155550199", "user2@example.com", [], "duplicate_contact"),
        # invalid phone number (not E.164, too short)
        ("Eve", "Evans", "eve.evans@hooli.example", "12345", "user1@example.com", [], "bad_phone"),
        # malformed e-mail address
        ("Frank", "Fox", "frank.fox@@example", None, "user2@example.com", ["user1@example.com"], "bad_email"),
    ]
    contact_objs = {}
    for first, last, email, phone, owner, assigned, defect in contacts:
        c = Contact.objects.create(first_name=first, last_name=last, email=email, phone=phone,
                                   created_by=U[owner], is_active=True)
        contact_objs[email] = rec("contacts", c, owner, assigned, defect, f"{first} {last}")
    # leads
    leads = [
        ("Acme expansion", "Alice", "Anders", "alice.anders@acme.example", "assigned", "user1@example.com", [], None),
        ("Globex renewal", "Bob", "Brown", "bob.brown@globex.example", "in process", "user2@example.com", ["user1@example.com"], None),
        ("Initech pilot", "Carol", "Chen", "carol.chen@initech.example", "assigned", "admin1@example.com", [], None),
        ("ACME Expansion", "Alice", "Anders", "alice.anders@acme.example", "assigned", "user2@example.com", [], "duplicate_lead"),
        ("Untitled lead", None, None, None, "assigned", "user1@example.com", [], "missing_contact_info"),
    ]
    for title, first, last, email, status, owner, assigned, defect in leads:
        l = Lead.objects.create(title=title, first_name=first, last_name=last, email=email, status=status,
                                source="call", created_by=U[owner], is_active=True)
        rec("leads", l, owner, assigned, defect, title)
    # accounts
    def billing(city, country="US"):
        return dict(billing_address_line="1 Main St", billing_street="Main St", billing_city=city,
                    billing_state="CA", billing_postcode="94105", billing_country=country)
    accounts = [
        ("Acme Corp", "info@acme.example", billing("San Francisco"), "user1@example.com", [], None),
        ("Globex", "info@globex.example", billing("Springfield"), "user2@example.com", ["user1@example.com"], None),
        ("Initech", "info@initech.example", billing("Austin"), "admin1@example.com", [], None),
        ("ACME Corporation", "info@acme.example", billing("San Francisco"), "admin2@example.com", [], "duplicate_account"),
        ("Nameless Ltd", "billing@nameless.example", {}, "user2@example.com", [], "missing_billing_address"),
    ]
    account_objs = []
    for name, email, bill, owner, assigned, defect in accounts:
        a = Account.objects.create(name=name, email=email, created_by=U[owner], is_active=True, **bill)
        account_objs.append(rec("accounts", a, owner, assigned, defect, name))
    a_acme, a_globex, a_initech = account_objs[0], account_objs[1], account_objs[2]
    # opportunities
    opps = [
        ("Acme 100 seats", a_acme, "QUALIFICATION", 20, 12000, None, "user1@example.com", [], None),
        ("Globex upsell", a_globex, "NEGOTIATION/REVIEW", 70, 50000, today + datetime.timedelta(days=30), "user2@example.com", ["user1@example.com"], None),
        ("Initech rollout", a_initech, "CLOSED WON", 100, 80000, today - datetime.timedelta(days=10), "admin2@example.com", [], None),
        ("Stale deal", a_acme, "PROPOSAL/PRICE QUOTE", 150, -500, today - datetime.timedelta(days=400), "user2@example.com", [], "invalid_probability_and_amount"),
    ]
    for name, acct, stage, prob, amount, closed_on, owner, assigned, defect in opps:
        o = Opportunity.objects.create(name=name, account=acct, stage=stage, probability=prob, amount=amount,
                                       currency="USD", closed_on=closed_on, created_by=U[owner], is_active=True)
        rec("opportunities", o, owner, assigned, defect, name)
    # cases
    cases = [
        ("Login broken", "New", "High", a_acme, today + datetime.timedelta(days=7), "user1@example.com", [], None),
        ("Invoice question", "Assigned", "Normal", a_globex, today + datetime.timedelta(days=14), "user2@example.com", ["user1@example.com"], None),
        ("Outage report", "Pending", "Urgent", a_initech, today + datetime.timedelta(days=2), "admin1@example.com", [], None),
        ("Closed but open-dated", "Closed", "Low", None, today + datetime.timedelta(days=365), "user2@example.com", [], "closed_case_future_close_date"),
    ]
    for name, status, prio, acct, closed_on, owner, assigned, defect in cases:
        k = Case.objects.create(name=name, status=status, priority=prio, case_type="Incident", account=acct,
                                closed_on=closed_on, created_by=U[owner], is_active=True)
        rec("cases", k, owner, assigned, defect, name)
    # one web-form integration key (flaw 5: any USER reads it at GET /api/api-settings/)
    from common.models import APISettings  # noqa: E402
    APISettings.objects.create(title="web forms", website="https://forms.example.com",
                               created_by=U["admin1@example.com"])

connection.close()
print("CRM_AUDIT_RESULT " + json.dumps(out))
'''


@dataclass(frozen=True)
class DbInfo:
    """Connection facts for the CRM's database (password: also in ``.env['PGPASSWORD']``)."""

    host: str
    port: int
    name: str
    user: str
    password: str


# ---------------------------------------------------------------------------
# the server
# ---------------------------------------------------------------------------
class DjangoCrmServer:
    """django-crm 0.9.0 + gunicorn on 127.0.0.1:<free port>, backed by ``postgres``.

    Attributes after start: ``base_url``, ``env`` (passwords by env-var name, plus
    PGPASSWORD), ``users`` (email -> {id, role}), ``records`` (resource -> list of
    {id, owner, assigned_to, label, defect}), ``secret_key``, ``db`` (DbInfo),
    ``timings`` (step -> seconds), ``run_dir``, ``venv_dir``, ``pid``.
    """

    def __init__(
        self,
        postgres: PostgresServer,
        venv_dir: Path | None = None,
        *,
        default_secret: bool = False,
        seed: bool = True,
        workers: int = 2,
        db_name: str = "crm",
        db_user: str | None = None,
        allowed_hosts: list[str] | None = None,
        schema_cache: bool | None = None,
        extra_gunicorn_args: list[str] | None = None,
    ) -> None:
        self.postgres = postgres
        self._venv_arg = Path(venv_dir) if venv_dir else None
        self.venv_dir: Path | None = None
        self.default_secret = default_secret
        self.seed = seed
        self.workers = workers
        self.allowed_hosts = ["127.0.0.1", "localhost", *(allowed_hosts or [])]
        if schema_cache is None:
            schema_cache = os.environ.get(SCHEMA_CACHE_ENV, "1") not in ("0", "")
        self.schema_cache = schema_cache
        self.extra_gunicorn_args = list(extra_gunicorn_args or [])
        self.secret_key: str = DEFAULT_SECRET_KEY if default_secret else secrets.token_urlsafe(50)
        # One role per CRM DB (role defaults to the DB name) so several targets can share a cluster.
        self.db = DbInfo(postgres.host, 0, db_name, db_user or db_name, secrets.token_urlsafe(18))
        self.host = "127.0.0.1"
        self.port: int = 0
        self.run_dir: Path | None = None
        self.env: dict[str, str] = {}
        self.users: dict[str, dict[str, Any]] = {}
        self.records: dict[str, list[dict[str, Any]]] = {}
        self.timings: dict[str, float] = {}
        self._proc: subprocess.Popen[bytes] | None = None
        self._started = False

    # -- public API --------------------------------------------------------
    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>`` (no trailing slash; API lives under ``/api/``)."""
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        """PID of the gunicorn master, or None when not running."""
        return self._proc.pid if self._proc and self._proc.poll() is None else None

    @property
    def pg_env(self) -> dict[str, str]:
        """Env to add when running :meth:`pg_dump_cmd`/:meth:`pg_restore_cmd` (password never on argv)."""
        return {"PGPASSWORD": self.db.password}

    def password(self, email: str) -> str:
        """Password of a seeded user."""
        return self.env[USERS[email][1]]

    def row_counts(self) -> dict[str, int]:
        """Rows per table of the CRM's database (every table of schema public), counted by the cluster superuser."""
        sql = ("SELECT table_name, (xpath('/row/c/text()', query_to_xml(format('SELECT count(*) AS c FROM %I.%I', "
               "table_schema, table_name), false, true, '')))[1]::text FROM information_schema.tables "
               "WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY 1;")
        out = self.postgres.superuser_psql(sql, db=self.db.name)
        return {name: int(n) for name, _, n in (line.partition("|") for line in out.splitlines() if line)}

    def pg_dump_cmd(self, path: str | Path) -> str:
        """Shell command: custom-format dump of the CRM DB to ``path``. Needs PGPASSWORD in env."""
        return " ".join([
            shlex.quote(str(self.postgres.bin_dir / "pg_dump")),
            "-h", self.db.host, "-p", str(self.db.port), "-U", shlex.quote(self.db.user),
            "-d", shlex.quote(self.db.name), "-Fc", "-f", shlex.quote(str(path)),
        ])

    def pg_restore_cmd(self, path: str | Path, db_name: str | None = None) -> str:
        """Shell command: restore ``path`` over the live DB (``--clean --if-exists``, one transaction).

        Safe while gunicorn runs: Django opens a connection per request (CONN_MAX_AGE=0),
        so no session holds locks between requests. Needs PGPASSWORD in env.
        """
        return " ".join([
            shlex.quote(str(self.postgres.bin_dir / "pg_restore")),
            "-h", self.db.host, "-p", str(self.db.port), "-U", shlex.quote(self.db.user),
            "-d", shlex.quote(db_name or self.db.name),
            "--clean", "--if-exists", "--no-owner", "--exit-on-error", "--single-transaction",
            shlex.quote(str(path)),
        ])

    def __enter__(self) -> DjangoCrmServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> DjangoCrmServer:
        """Build/reuse venv, create DB, migrate, create users and records, serve; cleans up on failure."""
        if self._started:
            return self
        atexit.register(self.stop)
        self._started = True
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Terminate gunicorn (by its PID) and remove the run dir; idempotent. The DB is left to postgres."""
        self._stop_gunicorn()
        if self.run_dir is not None:
            shutil.rmtree(self.run_dir, ignore_errors=True)
            self.run_dir = None
        self._started = False
        try:
            atexit.unregister(self.stop)
        except Exception:  # pragma: no cover
            pass

    def restart(self, db_name: str | None = None) -> None:
        """Restart gunicorn on the same port (e.g. after a restore); ``db_name`` switches database."""
        if db_name:
            self.db = DbInfo(self.db.host, self.db.port, db_name, self.db.user, self.db.password)
        t0 = time.monotonic()
        self._stop_gunicorn()
        self._start_gunicorn()
        self.timings["restart"] = round(time.monotonic() - t0, 3)
        _log(f"restart: {self.timings['restart']:.2f}s")

    # -- internals ---------------------------------------------------------
    def _start(self) -> None:
        t_all = time.monotonic()
        with _timed(self.timings, "venv"):
            self.venv_dir = ensure_venv(self._venv_arg)
        self.db = DbInfo(self.postgres.host, self.postgres.port, self.db.name, self.db.user, self.db.password)
        self.run_dir = Path(tempfile.mkdtemp(prefix="crm-audit-djcrm-"))
        (self.run_dir / "crm_local_settings.py").write_text(_SETTINGS_PY.format(allowed_hosts=self.allowed_hosts))
        (self.run_dir / "crm_audit_wsgi.py").write_text(_WSGI_PY)
        (self.run_dir / "crm_audit_bootstrap.py").write_text(_BOOTSTRAP_PY)
        self.port = free_port(self.host)

        with _timed(self.timings, "create_db"):
            self.postgres.create_role_db(self.db.user, self.db.password, self.db.name)
        cache = self._schema_cache_path()
        restored = False
        if self.schema_cache and cache.exists():
            with _timed(self.timings, "restore_schema_cache"):
                restored = self._pg_restore(cache)
        passwords = {email: secrets.token_urlsafe(16) for email in USERS}
        if not restored:
            with _timed(self.timings, "migrate"):
                self._bootstrap({"migrate": True})
            if self.schema_cache:
                with _timed(self.timings, "write_schema_cache"):
                    self._write_schema_cache(cache)
        with _timed(self.timings, "users_and_records"):
            result = self._bootstrap({
                "migrate": restored,  # no-op when the cache is current; applies anything missing
                "users": {e: {"password": passwords[e], "role": USERS[e][0]} for e in USERS},
                "seed": self.seed,
            })
        self.users = result["users"]
        self.records = result["records"]
        self.env = {USERS[e][1]: passwords[e] for e in USERS}
        self.env["PGPASSWORD"] = self.db.password
        with _timed(self.timings, "serve"):
            self._start_gunicorn()
        self.timings["start_total"] = round(time.monotonic() - t_all, 3)
        _log(f"start_total: {self.timings['start_total']:.2f}s ({self.base_url})")

    def _schema_cache_path(self) -> Path:
        """Dump of a freshly migrated DB, next to the venv (same key), per PG major version."""
        assert self.venv_dir is not None
        return self.venv_dir / f"migrated-pg{self.postgres.bin_dir.parent.name}.dump"

    def _write_schema_cache(self, cache: Path) -> None:
        tmp = cache.with_suffix(f".tmp{os.getpid()}")
        proc = subprocess.run(
            [str(self.postgres.bin_dir / "pg_dump"), "-h", self.db.host, "-p", str(self.db.port),
             "-U", self.db.user, "-d", self.db.name, "-Fc", "-f", str(tmp)],
            env={**os.environ, **self.pg_env}, capture_output=True, text=True,
        )
        if proc.returncode == 0:
            os.replace(tmp, cache)
        else:
            tmp.unlink(missing_ok=True)
            _log(f"schema cache not written: {proc.stderr.strip()}")

    def _pg_restore(self, dump: Path) -> bool:
        """Restore a migrated-schema dump into the (empty) DB; False means fall back to migrate."""
        proc = subprocess.run(
            [str(self.postgres.bin_dir / "pg_restore"), "-h", self.db.host, "-p", str(self.db.port),
             "-U", self.db.user, "-d", self.db.name, "--no-owner", "--exit-on-error", "--single-transaction",
             str(dump)],
            env={**os.environ, **self.pg_env}, capture_output=True, text=True,
        )
        if proc.returncode != 0:
            _log(f"schema cache unusable, migrating instead: {proc.stderr.strip()[:300]}")
            self.postgres.drop_database(self.db.name)
            self.postgres.create_database(self.db.name, self.db.user)
            return False
        return True

    def _app_env(self) -> dict[str, str]:
        """Environment for every django-crm process (facts: env, not settings, drives it)."""
        assert self.run_dir is not None and self.venv_dir is not None
        env = {k: v for k, v in os.environ.items() if k not in _STRIP_ENV}
        env.update({
            "DJANGO_SETTINGS_MODULE": "crm_local_settings",
            "PYTHONPATH": str(self.run_dir),
            "DBNAME": self.db.name,
            "DBUSER": self.db.user,
            "DBPASSWORD": self.db.password,
            "DBHOST": self.db.host,
            "DBPORT": str(self.db.port),
            "CELERY_BROKER_URL": "memory://",
            "DOMAIN_NAME": f"{self.host}:{self.port}",
            "PATH": f"{self.venv_dir / 'bin'}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        })
        if not self.default_secret:
            env["SECRET_KEY"] = self.secret_key
        return env

    def _bootstrap(self, cfg: dict[str, Any]) -> dict[str, Any]:
        """Run the in-venv bootstrap script (cwd = run dir, where server.log goes)."""
        assert self.run_dir is not None and self.venv_dir is not None
        proc = subprocess.run(
            [str(self.venv_dir / "bin" / "python"), str(self.run_dir / "crm_audit_bootstrap.py")],
            input=json.dumps(cfg), cwd=str(self.run_dir), env=self._app_env(),
            capture_output=True, text=True, timeout=600,
        )
        for line in reversed(proc.stdout.splitlines()):
            if line.startswith("CRM_AUDIT_RESULT "):
                if proc.returncode == 0:
                    return json.loads(line.split(" ", 1)[1])
        raise RuntimeError(f"django-crm bootstrap failed (rc={proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")

    def _start_gunicorn(self) -> None:
        assert self.run_dir is not None and self.venv_dir is not None
        log = open(self.run_dir / "gunicorn.log", "ab")
        try:
            self._proc = subprocess.Popen(
                [
                    str(self.venv_dir / "bin" / "python"), "-m", "gunicorn", "crm_audit_wsgi:application",
                    "-b", f"{self.host}:{self.port}", "-w", str(self.workers),
                    "--pid", str(self.run_dir / "gunicorn.pid"), "--chdir", str(self.run_dir),
                    "--graceful-timeout", "5",
                    *self.extra_gunicorn_args,
                ],
                cwd=str(self.run_dir), env=self._app_env(), stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )
        finally:
            log.close()
        self._wait_ready()

    def _wait_ready(self, timeout: float = 60.0) -> None:
        """Poll until gunicorn answers HTTP (any status below 500) or fail with its log."""
        log = self.run_dir / "gunicorn.log" if self.run_dir else None
        wait_http(self.base_url + "/api/auth/login/", self._proc, log, timeout)

    def _stop_gunicorn(self, timeout: float = 15.0) -> None:
        """SIGTERM the gunicorn master by PID, wait, then SIGKILL its process group if needed."""
        proc, self._proc = self._proc, None
        stop_process(proc, timeout)
