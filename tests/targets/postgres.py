"""Throwaway PostgreSQL cluster for integration tests.

Uses Debian's ``postgresql`` package (``/usr/lib/postgresql/<major>/bin``).
We run as root, so every server-side binary is run as the ``postgres`` OS user
via ``runuser -u postgres --``. The cluster listens on 127.0.0.1 only, on a
free port, with its own unix-socket dir, and is removed again on stop.
"""

from __future__ import annotations

import atexit
import glob
import os
import secrets
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

from crm_audit.core.net import free_port

__all__ = ["PostgresServer", "find_pg_bin_dir", "quote_ident", "quote_literal"]

PG_OS_USER = "postgres"


def require_postgres() -> None:
    """Skip the calling test when PostgreSQL cannot run here; in CI (CI set) fail instead, so nothing hides."""
    import pytest

    reason = None
    if os.geteuid() != 0:
        reason = "needs root (initdb runs via runuser -u postgres)"
    else:
        try:
            find_pg_bin_dir()
        except RuntimeError as exc:
            reason = str(exc)
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL unavailable in CI: {reason}")
        pytest.skip(reason)


def find_pg_bin_dir() -> Path:
    """Return the newest ``/usr/lib/postgresql/*/bin`` that has initdb (env ``CRM_AUDIT_PG_BIN`` wins)."""
    override = os.environ.get("CRM_AUDIT_PG_BIN")
    if override:
        return Path(override)
    candidates = [Path(p) for p in glob.glob("/usr/lib/postgresql/*/bin") if Path(p, "initdb").exists()]
    if not candidates:
        raise RuntimeError("PostgreSQL server binaries not found; install them with: apt-get install -y postgresql")

    def major(p: Path) -> float:
        try:
            return float(p.parent.name)
        except ValueError:
            return 0.0

    return max(candidates, key=major)


def quote_ident(name: str) -> str:
    """Quote an SQL identifier (doubles embedded double quotes)."""
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    """Quote an SQL string literal (doubles embedded single quotes)."""
    return "'" + value.replace("'", "''") + "'"


class PostgresServer:
    """A private PostgreSQL cluster in a temp dir, started on enter and destroyed on exit.

    ``fast=True`` (default) turns off fsync/synchronous_commit/full_page_writes:
    it is a throwaway cluster, and this roughly halves Django's migrate time.
    """

    host: str = "127.0.0.1"

    def __init__(self, fast: bool = True, bin_dir: Path | None = None) -> None:
        self.bin_dir: Path = Path(bin_dir) if bin_dir else find_pg_bin_dir()
        self.fast = fast
        self.port: int = 0
        self.base_dir: Path | None = None
        self.data_dir: Path | None = None
        self.socket_dir: Path | None = None
        self.log_path: Path | None = None
        self.superuser = "postgres"
        self.superuser_password = secrets.token_urlsafe(18)
        self._running = False

    # -- lifecycle ---------------------------------------------------------
    def __enter__(self) -> PostgresServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> PostgresServer:
        """initdb + pg_ctl start; on any failure everything created so far is removed."""
        if self._running:
            return self
        atexit.register(self.stop)
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        self.base_dir = Path(tempfile.mkdtemp(prefix="crm-audit-pg-"))
        os.chmod(self.base_dir, 0o711)  # the postgres user must traverse it
        self.data_dir = self.base_dir / "data"
        self.socket_dir = self.base_dir / "sock"
        self.log_path = self.base_dir / "postgres.log"
        pwfile = self.base_dir / "pwfile"
        for d in (self.data_dir, self.socket_dir):
            d.mkdir(mode=0o700)
            shutil.chown(d, PG_OS_USER, PG_OS_USER)
        pwfile.write_text(self.superuser_password + "\n")
        os.chmod(pwfile, 0o600)
        shutil.chown(pwfile, PG_OS_USER, PG_OS_USER)
        self.log_path.touch()
        shutil.chown(self.log_path, PG_OS_USER, PG_OS_USER)

        self._run_as_pg(
            [
                str(self.bin_dir / "initdb"), "-D", str(self.data_dir), "-U", self.superuser,
                "--auth-local=peer", "--auth-host=scram-sha-256", f"--pwfile={pwfile}",
                "-E", "UTF8", "--locale=C.UTF-8", "--no-sync",
            ]
        )
        pwfile.unlink()
        opts = [
            "-c listen_addresses=127.0.0.1",
            f"-c unix_socket_directories={self.socket_dir}",
        ]
        if self.fast:
            opts += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
        # Retry on a port race: another process may grab the port between probe and bind.
        last_err: Exception | None = None
        for _ in range(5):
            self.port = free_port(self.host)
            try:
                self._run_as_pg(
                    [
                        str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-l", str(self.log_path),
                        "-w", "-t", "60", "-o", " ".join(opts + [f"-p {self.port}"]), "start",
                    ]
                )
                self._running = True
                return
            except subprocess.CalledProcessError as e:
                last_err = e
                time.sleep(0.2)
        raise RuntimeError(f"postgres failed to start: {last_err}\n{self.log_tail()}")

    def stop(self) -> None:
        """Fast-stop the server and delete its directory; safe to call repeatedly."""
        base = self.base_dir
        if base is None:
            return
        if self._running or (self.data_dir and (self.data_dir / "postmaster.pid").exists()):
            try:
                self._run_as_pg(
                    [str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "-w", "-t", "30", "stop"],
                    timeout=60,
                )
            except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
                self._kill_postmaster()
        self._running = False
        shutil.rmtree(base, ignore_errors=True)
        self.base_dir = None
        try:
            atexit.unregister(self.stop)
        except Exception:  # pragma: no cover - interpreter shutdown
            pass

    def _kill_postmaster(self) -> None:
        """Last resort: SIGKILL the postmaster recorded in postmaster.pid."""
        try:
            pid = int((self.data_dir / "postmaster.pid").read_text().split()[0])  # type: ignore[operator]
            os.kill(pid, 9)
        except (OSError, ValueError, IndexError, TypeError):
            pass

    # -- helpers -----------------------------------------------------------
    def _run_as_pg(self, argv: list[str], timeout: float = 120, input: str | None = None) -> str:
        """Run argv as the postgres OS user (cwd = our dir, so it never sits in /root)."""
        proc = subprocess.run(
            ["runuser", "-u", PG_OS_USER, "--", *argv],
            cwd=str(self.base_dir) if self.base_dir else "/",
            capture_output=True,
            text=True,
            timeout=timeout,
            input=input,
        )
        if proc.returncode != 0:
            raise subprocess.CalledProcessError(proc.returncode, argv, proc.stdout, proc.stderr)
        return proc.stdout

    def log_tail(self, n: int = 40) -> str:
        """Last lines of the server log, for error messages."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])  # type: ignore[union-attr]
        except (OSError, AttributeError):
            return ""

    def superuser_psql(self, sql: str, db: str = "postgres") -> str:
        """Run SQL as the cluster superuser over the private unix socket (peer auth); return -At output."""
        if not self._running:
            raise RuntimeError("postgres is not running")
        try:
            return self._run_as_pg(
                [
                    str(self.bin_dir / "psql"), "-h", str(self.socket_dir), "-p", str(self.port),
                    "-U", self.superuser, "-d", db, "-v", "ON_ERROR_STOP=1", "-X", "-q", "-At",
                ],
                input=sql,
            )
        except subprocess.CalledProcessError as e:
            raise RuntimeError(f"psql failed: {e.stderr.strip()}") from e

    def superuser_dump(self, db: str, dest: Path, *args: str) -> None:
        """``pg_dump -Fc`` of ``db`` as the superuser (row-level security does not hide rows from it) to ``dest``."""
        if not self._running or self.socket_dir is None:
            raise RuntimeError("postgres is not running")
        tmp = self.socket_dir / f"dump-{secrets.token_hex(4)}"  # a folder the postgres user may write
        try:
            self._run_as_pg([str(self.bin_dir / "pg_dump"), "-h", str(self.socket_dir), "-p", str(self.port),
                             "-U", self.superuser, "-d", db, "-Fc", "-f", str(tmp), *args], timeout=300)
        except subprocess.CalledProcessError as e:
            raise RuntimeError(f"pg_dump failed: {e.stderr.strip()}") from e
        shutil.move(str(tmp), str(dest))

    def create_role_db(self, user: str, password: str, db: str) -> None:
        """Create a LOGIN role with a password and a database it owns."""
        self.superuser_psql(f"CREATE ROLE {quote_ident(user)} LOGIN PASSWORD {quote_literal(password)};")
        self.create_database(db, user)

    def create_database(self, name: str, owner: str, template: str | None = None) -> None:
        """Create database ``name`` owned by ``owner`` (optionally copied from ``template``)."""
        tmpl = f" TEMPLATE {quote_ident(template)}" if template else ""
        self.superuser_psql(f"CREATE DATABASE {quote_ident(name)} OWNER {quote_ident(owner)}{tmpl};")

    def drop_database(self, name: str) -> None:
        """Drop database ``name`` if it exists, disconnecting any sessions (PG13+ FORCE)."""
        self.superuser_psql(f"DROP DATABASE IF EXISTS {quote_ident(name)} WITH (FORCE);")

    def dsn(self, user: str, db: str) -> str:
        """libpq keyword DSN over TCP (no password: pass it via PGPASSWORD)."""
        return f"host={self.host} port={self.port} user={user} dbname={db}"
