"""Backups of the live database: create (optionally AES-256-GCM encrypted), list, read, delete, restore.

Encrypted file format: ``b"CRMAENC1"`` + 12-byte random nonce + AES-GCM ciphertext of the
SQLite file (the 16-byte tag appended, no associated data), key = ``DEMO_BACKUP_KEY`` (hex).
The catalogue lives outside the database so a restore does not forget newer backups.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from crm_audit_demo.db import Database
from crm_audit_demo.timefmt import iso, utc_now

MAGIC = b"CRMAENC1"
SQLITE_MAGIC = b"SQLite format 3\x00"


def encrypt(plain: bytes, key: bytes) -> bytes:
    """``MAGIC + nonce + AES-GCM(plain)``."""
    nonce = secrets.token_bytes(12)
    return MAGIC + nonce + AESGCM(key).encrypt(nonce, plain, None)


def decrypt(blob: bytes, key: bytes) -> bytes:
    """Inverse of :func:`encrypt`; raises ValueError on a foreign or tampered file."""
    if not blob.startswith(MAGIC):
        raise ValueError("not an encrypted demo CRM backup")
    nonce, ciphertext = blob[len(MAGIC):len(MAGIC) + 12], blob[len(MAGIC) + 12:]
    try:
        return AESGCM(key).decrypt(nonce, ciphertext, None)
    except Exception as exc:  # cryptography raises InvalidTag
        raise ValueError("backup cannot be decrypted") from exc


class BackupStore:
    """Backup files in ``directory`` plus their in-memory catalogue (ids 1, 2, ...)."""

    def __init__(self, db: Database, directory: Path, key: bytes, encrypted: bool = True) -> None:
        self.db = db
        self.directory = Path(directory)
        self.key = key
        self.encrypted = encrypted
        self._catalogue: list[dict[str, Any]] = []
        self._next_id = 1  # ids are never reused, also after a delete
        self._lock = threading.Lock()
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        for old in self.directory.glob("backup-*"):
            old.unlink()

    def create(self, kind: str = "manual", created_at: datetime | None = None) -> dict[str, Any]:
        """Back up the live database now; ``created_at`` overrides the recorded time."""
        with tempfile.TemporaryDirectory(dir=self.directory) as tmp:
            plain_path = Path(tmp, "snapshot.db")
            self.db.backup_to(plain_path)
            plain = plain_path.read_bytes()
        blob = encrypt(plain, self.key) if self.encrypted else plain
        moment = created_at or utc_now()
        with self._lock:
            backup_id = self._next_id
            self._next_id += 1
            path = self.directory / f"backup-{backup_id:04d}.db{'.enc' if self.encrypted else ''}"
            path.write_bytes(blob)
            os.chmod(path, 0o600)
            os.utime(path, (moment.timestamp(), moment.timestamp()))
            meta = {"id": backup_id, "created_at": iso(moment), "size": len(blob),
                    "sha256": hashlib.sha256(blob).hexdigest(), "encrypted": self.encrypted,
                    "kind": kind, "_path": path}
            self._catalogue.append(meta)
        return self.public(meta)

    @staticmethod
    def public(meta: dict[str, Any]) -> dict[str, Any]:
        """Catalogue entry as served by the API."""
        return {k: v for k, v in meta.items() if not k.startswith("_")}

    def list(self) -> list[dict[str, Any]]:
        """All backups, newest first."""
        with self._lock:
            entries = list(self._catalogue)
        entries.sort(key=lambda m: (m["created_at"], m["id"]), reverse=True)
        return [self.public(m) for m in entries]

    def get(self, backup_id: int) -> dict[str, Any] | None:
        """Catalogue entry (with private keys) or None."""
        with self._lock:
            return next((m for m in self._catalogue if m["id"] == backup_id), None)

    def latest(self) -> dict[str, Any] | None:
        """The newest backup's entry, or None."""
        entries = self.list()
        return self.get(entries[0]["id"]) if entries else None

    def read(self, backup_id: int) -> bytes | None:
        """The downloadable bytes of a backup, or None if unknown."""
        meta = self.get(backup_id)
        return Path(meta["_path"]).read_bytes() if meta else None

    def delete(self, backup_id: int) -> bool:
        """Remove a backup's file and catalogue entry; False if unknown."""
        with self._lock:
            meta = next((m for m in self._catalogue if m["id"] == backup_id), None)
            if meta is None:
                return False
            self._catalogue.remove(meta)
        Path(meta["_path"]).unlink(missing_ok=True)
        return True

    def restore(self, backup_id: int, drop_cases: bool = False) -> float:
        """Replace the live database with backup ``backup_id``; return the duration in seconds.

        Raises KeyError for an unknown id and ValueError for a corrupt or tampered file.
        ``drop_cases`` (the restore-loses-table flaw) empties ``cases`` afterwards.
        """
        started = time.perf_counter()
        meta = self.get(backup_id)
        if meta is None:
            raise KeyError(backup_id)
        blob = Path(meta["_path"]).read_bytes()
        if hashlib.sha256(blob).hexdigest() != meta["sha256"]:
            raise ValueError("backup checksum mismatch")
        plain = decrypt(blob, self.key) if blob.startswith(MAGIC) else blob
        if not plain.startswith(SQLITE_MAGIC):
            raise ValueError("backup is not a SQLite database")
        with tempfile.TemporaryDirectory(dir=self.directory) as tmp:
            plain_path = Path(tmp, "restore.db")
            plain_path.write_bytes(plain)
            self.db.restore_from(plain_path)
        if drop_cases:
            self.db.execute("DELETE FROM cases")
        return time.perf_counter() - started
