"""A real multi-tenant CRM as a test target: django-crm 1.35 (BottleCRM) on PostgreSQL, under gunicorn.

Follows /work/shared/domain/django-crm-1x-facts.md: Python 3.12 venv with pinned packages
(cached under ~/.cache/crm-audit, keyed by the pins), two database roles (``<db>_owner`` owns
the database and runs migrate; ``<db>_app`` serves the app and is NOT a superuser, so
row-level security separates the tenants), a cached ``pg_dump -Fc`` of the migrated schema,
settings as real env vars (memory Celery broker, DEBUG off, ENV_TYPE=dev), gunicorn on
127.0.0.1 with ``--no-control-socket --forwarded-allow-ips=''``, stopped by PID.

Seeded (Django ORM, inside each org's RLS context): two orgs, in each an ADMIN, a USER and a
spare USER; five records per resource per org, a few with known data-quality defects; one
personal access token (``bcrm_pat_…``) per account, in ``env`` only.

    with PostgresServer() as pg, DjangoCrm1xServer(pg) as crm:
        requests.get(crm.base_url + "/api/leads/",
                     headers={"Authorization": "Bearer " + crm.env["DJANGO_CRM_1X_ALPHA_USER_PAT"]})

Env knobs: ``CRM_AUDIT_PYTHON312`` (interpreter), ``CRM_AUDIT_DJANGO_CRM_1X_VENV`` (venv dir),
``CRM_AUDIT_DJANGO_CRM_SCHEMA_CACHE=0`` (always migrate), ``CRM_AUDIT_VERBOSE=1``.
"""

from __future__ import annotations

import atexit
import glob
import json
import os
import secrets
import shutil
import subprocess
import tempfile
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from crm_audit.core.net import free_port

from .common import CACHE_ROOT, build_venv, requirements_key, stop_process, timed, verbose_log, wait_http
from .postgres import PostgresServer, quote_ident, quote_literal

__all__ = ["ACCOUNTS", "COUNTED_TABLES", "ORGS", "REQUIREMENTS_FILE", "Account1x", "DjangoCrm1xServer", "ensure_venv", "find_python312"]

REQUIREMENTS_FILE = Path(__file__).with_name("django_crm_1x_requirements.txt")
LOGIN_SCRIPT = Path(__file__).with_name("django_crm_1x_login.py")
PYTHON_ENV = "CRM_AUDIT_PYTHON312"
VENV_ENV = "CRM_AUDIT_DJANGO_CRM_1X_VENV"
SCHEMA_CACHE_ENV = "CRM_AUDIT_DJANGO_CRM_SCHEMA_CACHE"
ORGS = ("Alpha Corp", "Beta Corp")
#: tables an audit could leave something in: their row counts must match before and after one
COUNTED_TABLES = ("users", "profile", "organization", "personal_access_token", "contacts", "accounts", "lead",
                  "opportunity", "case", "task", "comment", "teams", "tags", '"apiSettings"', "attachments")


@dataclass(frozen=True)
class Account1x:
    """One seeded login: its e-mail, org, role and the env var that holds its PAT."""

    name: str
    email: str
    org: str
    role: str

    @property
    def pat_env(self) -> str:
        return f"DJANGO_CRM_1X_{self.name.upper()}_PAT"


ACCOUNTS: tuple[Account1x, ...] = tuple(
    Account1x(f"{key}_{who}", f"{who}@{key}.example", org, role)
    for key, org in (("alpha", ORGS[0]), ("beta", ORGS[1]))
    for who, role in (("admin", "ADMIN"), ("user", "USER"), ("spare", "USER"))
)

# Env vars that would change django-crm's behaviour if inherited from the caller.
_STRIP_ENV = {
    "DEBUG", "ENV_TYPE", "SECRET_KEY", "DJANGO_SETTINGS_MODULE", "DBNAME", "DBUSER", "DBPASSWORD",
    "DBHOST", "DBPORT", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "DOMAIN_NAME", "PYTHONPATH",
    "PYTHONHOME", "VIRTUAL_ENV", "PGPASSWORD", "PGPASSFILE", "PGSERVICE", "ALLOWED_HOSTS", "CACHE_URL",
    "CORS_ALLOW_ALL", "TRUST_PROXY_SSL_HEADER", "NUM_PROXIES", "DB_POOL_ENABLED",
}

_log = verbose_log("django-crm 1.x target")


def _timed(timings: dict[str, float], step: str) -> AbstractContextManager[None]:
    return timed(timings, step, _log)


# ---------------------------------------------------------------------------
# interpreter and venv
# ---------------------------------------------------------------------------
def find_python312() -> str:
    """Path of a Python 3.12 interpreter (``$CRM_AUDIT_PYTHON312``, PATH, pyenv); one clear line if none."""
    cands = [os.environ.get(PYTHON_ENV, ""), shutil.which("python3.12") or ""]
    try:
        out = subprocess.run(["pyenv", "which", "python3.12"], capture_output=True, text=True, timeout=20,
                             env={**os.environ, "PYENV_VERSION": os.environ.get("PYENV_VERSION") or _pyenv_312()})
        cands.append(out.stdout.strip() if out.returncode == 0 else "")
    except (OSError, subprocess.TimeoutExpired):
        pass
    cands += sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.12*/bin/python3.12")), reverse=True)
    for c in cands:
        if c and os.access(c, os.X_OK) and _is_312(c):
            return c
    raise RuntimeError("django-crm 1.x needs Python 3.12 (install it, e.g. `pyenv install 3.12`, "
                       f"or point {PYTHON_ENV} at a python3.12)")


def _is_312(python: str) -> bool:
    """True when ``python`` runs and is 3.12 (a pyenv shim without a selected version is not)."""
    try:
        out = subprocess.run([python, "-c", "import sys; print(sys.version_info[:2] == (3, 12))"],
                             capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.stdout.strip() == "True"


def _pyenv_312() -> str:
    """The newest installed pyenv 3.12.x version name, or '3.12'."""
    vers = sorted(Path(p).name for p in glob.glob(os.path.expanduser("~/.pyenv/versions/3.12*")))
    return vers[-1] if vers else "3.12"


def venv_key(requirements: Path = REQUIREMENTS_FILE) -> str:
    """Cache key of the venv and the schema dump: the pins plus the interpreter line (3.12)."""
    return requirements_key(requirements, "3.12")


def ensure_venv(python: str | None = None, venv_dir: Path | None = None,
                requirements: Path = REQUIREMENTS_FILE) -> Path:
    """Create (once) a Python 3.12 venv with the pinned django-crm 1.x stack; reuse it when current."""
    key = venv_key(requirements)
    override = os.environ.get(VENV_ENV)
    venv = Path(venv_dir or override or CACHE_ROOT / f"django-crm-1x-venv-{key}").expanduser()

    def create(venv: Path) -> None:
        t0 = time.monotonic()
        subprocess.run([python or find_python312(), "-m", "venv", str(venv)], check=True)
        proc = subprocess.run(
            [str(venv / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check", "-q",
             "--no-compile", "-r", str(requirements)], capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"pip install for django-crm 1.x failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
        _log(f"venv build ({venv}): {time.monotonic() - t0:.2f}s")

    return build_venv(venv, key, create)


# ---------------------------------------------------------------------------
# files written into the run dir
# ---------------------------------------------------------------------------
_MANAGE_PY = '''\
"""manage.py shim (the wheel ships none)."""
import os
import sys

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings")
from django.core.management import execute_from_command_line  # noqa: E402

execute_from_command_line(sys.argv)
'''

_SEED_PY = (Path(__file__).with_name("django_crm_1x_seed.py")).name


@dataclass(frozen=True)
class DbRoles:
    """The CRM database and its two roles (passwords only here and in ``env``)."""

    host: str
    port: int
    name: str
    owner: str
    owner_password: str
    app: str
    app_password: str


class DjangoCrm1xServer:
    """django-crm 1.35 + gunicorn on 127.0.0.1:<free port>, backed by ``postgres``.

    After start: ``base_url``, ``env`` (PATs by env-var name, DB passwords), ``accounts``
    (name -> {user_id, profile_id, org_id, org, role, email}), ``orgs`` (name -> id),
    ``records`` (resource -> [{id, org, owner, label, defect}]), ``db`` (DbRoles), ``timings``,
    ``run_dir``, ``venv_dir``, ``pid``.
    """

    def __init__(self, postgres: PostgresServer, *, db_name: str = "crm1x", workers: int = 2,
                 seed: bool = True, schema_cache: bool | None = None,
                 extra_env: dict[str, str] | None = None) -> None:
        self.postgres = postgres
        self.workers = workers
        self.seed = seed
        if schema_cache is None:
            schema_cache = os.environ.get(SCHEMA_CACHE_ENV, "1") not in ("0", "")
        self.schema_cache = schema_cache
        self.extra_env = dict(extra_env or {})
        self.secret_key = secrets.token_urlsafe(48)
        self.db = DbRoles(postgres.host, 0, db_name, f"{db_name}_owner", secrets.token_urlsafe(18),
                          f"{db_name}_app", secrets.token_urlsafe(18))
        self.host = "127.0.0.1"
        self.port = 0
        self.run_dir: Path | None = None
        self.venv_dir: Path | None = None
        self.env: dict[str, str] = {}
        self.accounts: dict[str, dict[str, Any]] = {}
        self.orgs: dict[str, str] = {}
        self.records: dict[str, list[dict[str, Any]]] = {}
        self.timings: dict[str, float] = {}
        self._proc: subprocess.Popen[bytes] | None = None
        self._started = False

    # -- public API --------------------------------------------------------
    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>`` (no trailing slash)."""
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        """PID of the gunicorn master, or None when not running."""
        return self._proc.pid if self._proc and self._proc.poll() is None else None

    def pat(self, name: str) -> str:
        """The personal access token of seeded account ``name`` (e.g. ``alpha_user``)."""
        return self.env[next(a.pat_env for a in ACCOUNTS if a.name == name)]

    def psql(self, sql: str) -> str:
        """Run SQL on the CRM database as the cluster superuser (bypasses RLS); -At output."""
        return self.postgres.superuser_psql(sql, db=self.db.name)

    def row_counts(self) -> dict[str, int]:
        """Rows per table of ``COUNTED_TABLES`` (read as superuser: RLS hides nothing), plus unrevoked PATs."""
        sql = " UNION ALL ".join(f"SELECT '{t}', count(*) FROM public.{t}" for t in COUNTED_TABLES)
        sql += " UNION ALL SELECT 'active_pats', count(*) FROM personal_access_token WHERE revoked_at IS NULL;"
        rows = [ln.split("|") for ln in self.psql(sql).splitlines() if ln]
        return {k.strip('"'): int(v) for k, v in rows}

    def manage(self, *args: str, as_owner: bool = False, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        """Run ``manage.py ARGS`` in the venv, connected as the app role (or the owner)."""
        assert self.run_dir is not None and self.venv_dir is not None
        return subprocess.run([str(self.venv_dir / "bin" / "python"), str(self.run_dir / "manage.py"), *args],
                              cwd=str(self.run_dir), env=self._app_env(as_owner), capture_output=True,
                              text=True, timeout=timeout)

    def login_env(self) -> dict[str, str]:
        """Env for ``django_crm_1x_login.py`` (magic-link login as a local command)."""
        d = self.db
        return {"DJANGO_CRM_1X_URL": self.base_url, "PGPASSWORD": d.app_password,
                "DJANGO_CRM_1X_DB_URL": f"postgresql://{d.app}@{d.host}:{d.port}/{d.name}",
                "CRM_AUDIT_PG_BIN": str(self.postgres.bin_dir)}

    def __enter__(self) -> DjangoCrm1xServer:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def start(self) -> DjangoCrm1xServer:
        """Build/reuse venv, create DB and roles, restore or migrate, seed, serve; cleans up on failure."""
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
        """Terminate gunicorn by its PID and remove the run dir; idempotent. The DB is left to postgres."""
        proc, self._proc = self._proc, None
        stop_process(proc)
        if self.run_dir is not None:
            shutil.rmtree(self.run_dir, ignore_errors=True)
            self.run_dir = None
        self._started = False
        try:
            atexit.unregister(self.stop)
        except Exception:  # pragma: no cover
            pass

    # -- internals ---------------------------------------------------------
    def _start(self) -> None:
        t_all = time.monotonic()
        with _timed(self.timings, "venv"):
            self.venv_dir = ensure_venv()
        d = self.db
        self.db = DbRoles(d.host, self.postgres.port, d.name, d.owner, d.owner_password, d.app, d.app_password)
        self.run_dir = Path(tempfile.mkdtemp(prefix="crm-audit-djcrm1x-"))
        (self.run_dir / "manage.py").write_text(_MANAGE_PY)
        shutil.copy(Path(__file__).with_name(_SEED_PY), self.run_dir / _SEED_PY)
        self.port = free_port(self.host)
        with _timed(self.timings, "create_db"):
            self._create_db()
        cache = self.venv_dir / f"migrated-pg{self.postgres.bin_dir.parent.name}.dump"
        restored = False
        if self.schema_cache and cache.exists():
            with _timed(self.timings, "restore_schema_cache"):
                restored = self._pg_restore(cache)
        if not restored:
            with _timed(self.timings, "migrate"):
                self._check(self.manage("migrate", "--no-input", "-v", "0", as_owner=True), "migrate")
            if self.schema_cache:
                with _timed(self.timings, "write_schema_cache"):
                    self._pg_dump(cache)
        if self.seed:
            with _timed(self.timings, "seed"):
                self._seed()
        with _timed(self.timings, "serve"):
            self._start_gunicorn()
        self.timings["start_total"] = round(time.monotonic() - t_all, 3)
        _log(f"start_total: {self.timings['start_total']:.2f}s ({self.base_url})")

    def _create_db(self) -> None:
        """Two roles (neither a superuser), the DB owned by the owner, default grants to the app role."""
        d, q, lit = self.db, quote_ident, quote_literal
        self.postgres.superuser_psql(
            f"CREATE ROLE {q(d.owner)} LOGIN PASSWORD {lit(d.owner_password)} NOSUPERUSER NOBYPASSRLS;\n"
            f"CREATE ROLE {q(d.app)} LOGIN PASSWORD {lit(d.app_password)} NOSUPERUSER NOBYPASSRLS;")
        self.postgres.create_database(d.name, d.owner)
        self.postgres.superuser_psql(
            f"ALTER DEFAULT PRIVILEGES FOR ROLE {q(d.owner)} GRANT SELECT,INSERT,UPDATE,DELETE ON TABLES TO {q(d.app)};\n"
            f"ALTER DEFAULT PRIVILEGES FOR ROLE {q(d.owner)} GRANT USAGE,SELECT ON SEQUENCES TO {q(d.app)};",
            db=d.name)

    def _pg(self, tool: str, *args: str) -> subprocess.CompletedProcess[str]:
        d = self.db
        return subprocess.run([str(self.postgres.bin_dir / tool), "-h", d.host, "-p", str(d.port), "-U", d.owner,
                               "-d", d.name, *args], env={**os.environ, "PGPASSWORD": d.owner_password},
                              capture_output=True, text=True, timeout=300)

    def _pg_dump(self, cache: Path) -> None:
        """Cache the freshly migrated schema, dumped as the superuser (FORCE'd RLS stops the owner's pg_dump)."""
        tmp = cache.with_suffix(f".tmp{os.getpid()}")
        try:
            self.postgres.superuser_dump(self.db.name, tmp, "--no-owner", "--no-privileges")
            os.replace(tmp, cache)
        except (RuntimeError, OSError) as e:
            tmp.unlink(missing_ok=True)
            _log(f"schema cache not written: {str(e)[:300]}")

    def _pg_restore(self, dump: Path) -> bool:
        """Restore the cached schema as the owner (default grants reach the app role); False: migrate instead."""
        proc = self._pg("pg_restore", "--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction",
                        str(dump))
        if proc.returncode != 0:
            _log(f"schema cache unusable, migrating instead: {proc.stderr.strip()[:300]}")
            self.postgres.drop_database(self.db.name)
            self.postgres.superuser_psql(f"DROP ROLE {quote_ident(self.db.owner)}; DROP ROLE {quote_ident(self.db.app)};")
            self._create_db()
            return False
        return True

    def _app_env(self, as_owner: bool = False) -> dict[str, str]:
        """Environment for every django-crm process (the facts: real env vars, memory broker)."""
        assert self.run_dir is not None and self.venv_dir is not None
        d = self.db
        env = {k: v for k, v in os.environ.items() if k not in _STRIP_ENV}
        env.update({
            "DJANGO_SETTINGS_MODULE": "crm.settings", "SECRET_KEY": self.secret_key, "ENV_TYPE": "dev",
            "DEBUG": "False", "DBNAME": d.name, "DBHOST": d.host, "DBPORT": str(d.port),
            "DBUSER": d.owner if as_owner else d.app,
            "DBPASSWORD": d.owner_password if as_owner else d.app_password,
            "CELERY_BROKER_URL": "memory://", "CELERY_RESULT_BACKEND": "cache+memory://",
            "ALLOWED_HOSTS": "127.0.0.1,localhost", "DOMAIN_NAME": self.base_url,
            "PATH": f"{self.venv_dir / 'bin'}:{os.environ.get('PATH', '/usr/bin:/bin')}",
            **self.extra_env,
        })
        return env

    @staticmethod
    def _check(proc: subprocess.CompletedProcess[str], what: str) -> None:
        if proc.returncode != 0:
            raise RuntimeError(f"django-crm 1.x {what} failed (rc={proc.returncode}):\n"
                               f"{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")

    def _seed(self) -> None:
        """Orgs, users, profiles, records and PATs (seed script in the venv, config on stdin)."""
        assert self.run_dir is not None and self.venv_dir is not None
        cfg = {"accounts": [a.__dict__ for a in ACCOUNTS]}
        proc = subprocess.run([str(self.venv_dir / "bin" / "python"), str(self.run_dir / _SEED_PY)],
                              input=json.dumps(cfg), cwd=str(self.run_dir), env=self._app_env(),
                              capture_output=True, text=True, timeout=300)
        lines = proc.stdout.splitlines()
        result = next((ln for ln in reversed(lines) if ln.startswith("CRM_AUDIT_RESULT ")), None)
        if proc.returncode != 0 or result is None:
            safe = "\n".join(ln for ln in lines if not ln.startswith("CRM_AUDIT_RESULT"))  # PATs stay out
            raise RuntimeError(f"django-crm 1.x seeding failed (rc={proc.returncode}):\n{safe[-2000:]}\n"
                               f"{proc.stderr[-4000:]}")
        out = json.loads(result.split(" ", 1)[1])
        self.orgs, self.accounts, self.records = out["orgs"], out["accounts"], out["records"]
        self.env = {a.pat_env: out["pats"][a.name] for a in ACCOUNTS}
        self.env.update({"PGPASSWORD": self.db.app_password})

    def _start_gunicorn(self) -> None:
        assert self.run_dir is not None and self.venv_dir is not None
        log_path = self.run_dir / "gunicorn.log"
        with open(log_path, "ab") as log:
            self._proc = subprocess.Popen(
                [str(self.venv_dir / "bin" / "python"), "-m", "gunicorn", "crm.wsgi:application",
                 "--bind", f"{self.host}:{self.port}", "--workers", str(self.workers), "--no-control-socket",
                 "--forwarded-allow-ips=", "--pid", str(self.run_dir / "gunicorn.pid"),
                 "--graceful-timeout", "5", "--timeout", "120"],
                cwd=str(self.run_dir), env=self._app_env(), stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True)
        wait_http(self.base_url + "/healthz/", self._proc, log_path, timeout=90)
