"""The demo CRM's SQLite database: one shared connection, its lock, schema, seed, backup/restore.

One connection guarded by a re-entrant lock keeps SQLite access simple and safe from the
worker threads FastAPI runs sync handlers on. Handlers that touch the database are sync
(threadpool), so a long restore blocks them, never the event loop (``/api/health`` stays up).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from crm_audit_demo.resources import RESOURCES, columns, schema_sql

_BASE_SCHEMA = """
CREATE TABLE tenants (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL
);
CREATE TABLE users (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  tenant_id TEXT NOT NULL REFERENCES tenants(id),
  username TEXT NOT NULL UNIQUE,
  email TEXT NOT NULL,
  first_name TEXT,
  last_name TEXT,
  role TEXT NOT NULL,
  kind TEXT NOT NULL DEFAULT 'person',
  password_hash TEXT,
  active INTEGER NOT NULL DEFAULT 1,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
CREATE TABLE api_keys (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  tenant_id TEXT NOT NULL REFERENCES tenants(id),
  user_id INTEGER NOT NULL REFERENCES users(id),
  name TEXT NOT NULL,
  key_sha256 TEXT NOT NULL UNIQUE,
  created_at TEXT NOT NULL
);
"""

DB_FILENAME = "crm.sqlite3"


class Database:
    """The live CRM database file and the single connection every request uses."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.lock = threading.RLock()
        self.conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self.conn.row_factory = sqlite3.Row
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")

    @classmethod
    def fresh(cls, data_dir: Path) -> Database:
        """Delete any previous database in ``data_dir`` and open an empty one with the schema."""
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(data_dir, DB_FILENAME + suffix).unlink(missing_ok=True)
        path = Path(data_dir, DB_FILENAME)
        path.touch(mode=0o600)  # journal/WAL files inherit the database file's mode
        db = cls(path)
        db.conn.executescript(_BASE_SCHEMA + schema_sql())
        return db

    def close(self) -> None:
        """Close the connection."""
        with self.lock:
            self.conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Hold the lock and run the block in one transaction (rolled back on error)."""
        with self.lock:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Rows of ``sql`` as plain dicts."""
        with self.lock:
            return [dict(row) for row in self.conn.execute(sql, params).fetchall()]

    def query_one(self, sql: str, params: Sequence[Any] = ()) -> dict[str, Any] | None:
        """First row of ``sql`` as a dict, or None."""
        with self.lock:
            row = self.conn.execute(sql, params).fetchone()
        return dict(row) if row is not None else None

    def execute(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        """Run one statement under the lock (autocommit)."""
        with self.lock:
            return self.conn.execute(sql, params)

    def insert_rows(self, table: str, rows: Sequence[Mapping[str, Any]]) -> None:
        """Bulk-insert rows (explicit ids allowed); ``tags`` lists are stored as JSON."""
        if not rows:
            return
        names = columns(table) if table in RESOURCES else list(rows[0].keys())
        sql = f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"
        values = [
            [json.dumps(r["tags"]) if n == "tags" else r.get(n) for n in names] for r in rows
        ]
        with self.transaction() as conn:
            conn.executemany(sql, values)

    def backup_to(self, target: Path) -> None:
        """Write a consistent copy of the live database to ``target`` (SQLite online backup)."""
        dest = sqlite3.connect(target)
        try:
            with self.lock:
                self.conn.backup(dest)
            dest.execute("PRAGMA journal_mode=DELETE")  # a self-contained single file
        finally:
            dest.close()

    def restore_from(self, source: Path) -> None:
        """Replace the live database content with the SQLite file ``source``."""
        src = sqlite3.connect(source)
        try:
            if src.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
                raise ValueError("backup failed its integrity check")
            with self.lock:
                src.backup(self.conn)
        finally:
            src.close()
