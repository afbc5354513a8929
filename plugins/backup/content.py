"""What a backup file is: readable customer data (plain text) or protected (encrypted).

Looks at magic bytes (SQLite, pg_dump custom format, zip, gzip, bzip2, xz, zstd, OpenSSL,
age, PGP), at text shapes (SQL dump, JSON, CSV), at Shannon entropy, and searches the file
(and whatever can be decompressed from it without a key) for canary values written before
the backup: a canary found in clear proves the customer data is readable.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import json
import lzma
import math
import re
import zipfile
import zlib
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

# magic -> (format, encrypted?)
MAGICS: list[tuple[bytes, str, bool]] = [
    (b"SQLite format 3\x00", "sqlite", False),
    (b"PGDMP", "pg_custom", False),
    (b"PK\x03\x04", "zip", False),
    (b"\x1f\x8b", "gzip", False),
    (b"BZh", "bzip2", False),
    (b"\xfd7zXZ\x00", "xz", False),
    (b"(\xb5/\xfd", "zstd", False),
    (b"Salted__", "openssl_enc", True),
    (b"age-encryption.org/v1", "age", True),
    (b"-----BEGIN AGE ENCRYPTED FILE-----", "age", True),
    (b"-----BEGIN PGP MESSAGE-----", "pgp", True),
]
READABLE = {"sqlite", "pg_custom", "sql", "json", "csv", "text"}
HIGH_ENTROPY = 7.5  # bits per byte; compressed or encrypted data sits near 8
SAMPLE = 1 << 20
MAX_INFLATE = 64 << 20

_SQL_RE = re.compile(rb"(CREATE TABLE|INSERT INTO|COPY [\w.\"]+ \(|-- PostgreSQL database dump|BEGIN TRANSACTION;)",
                     re.I)


@dataclass
class ContentReport:
    """Verdict on one backup file."""

    format: str
    size: int
    entropy: float
    plaintext: bool
    encrypted: bool
    canaries_found: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {"format": self.format, "size": self.size, "entropy_bits_per_byte": round(self.entropy, 3),
                "plaintext": self.plaintext, "encrypted": self.encrypted,
                "canaries_found": len(self.canaries_found), "notes": self.notes}


def entropy(data: bytes) -> float:
    """Shannon entropy in bits per byte of (the first MiB of) ``data``."""
    sample = data[:SAMPLE]
    if not sample:
        return 0.0
    n = len(sample)
    return -sum(c / n * math.log2(c / n) for c in Counter(sample).values())


def sniff(data: bytes) -> tuple[str, bool | None]:
    """(format, encrypted) from magic bytes and text shape; encrypted None when unknown."""
    for magic, fmt, enc in MAGICS:
        if data.startswith(magic):
            if fmt == "zip" and len(data) > 8 and data[6] & 0x01:
                return "zip", True  # general-purpose flag bit 0: entries are encrypted
            return fmt, enc
    head = data[:SAMPLE]
    if looks_like_html(head):
        return "html", False
    text = _as_text(head)
    if text is not None:
        stripped = text.lstrip()
        if _SQL_RE.search(head):
            return "sql", False
        if stripped[:1] in ("{", "[") and _json_prefix_ok(stripped):
            return "json", False
        if _looks_csv(text):
            return "csv", False
        return "text", False
    return "binary", None


def looks_like_html(head: bytes) -> bool:
    start = head[:512].lstrip().lower()
    return start.startswith((b"<!doctype html", b"<html", b"<?xml", b"<head", b"<body"))


def _as_text(head: bytes) -> str | None:
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:  # a cut multi-byte char at the very end is fine
            return None
        text = head[:exc.start].decode("utf-8")
    printable = sum(ch.isprintable() or ch in "\r\n\t" for ch in text[:4096])
    return text if text and printable / min(len(text), 4096) > 0.97 else None


def _json_prefix_ok(text: str) -> bool:
    try:
        json.loads(text)
        return True
    except json.JSONDecodeError as exc:
        return exc.pos >= len(text) - 2 or "Unterminated" in str(exc) or "Expecting" in str(exc) and exc.pos > 64


def _looks_csv(text: str) -> bool:
    lines = [ln for ln in text.splitlines()[:20] if ln.strip()]
    if len(lines) < 2:
        return False
    for sep in (",", ";", "\t"):
        counts = {ln.count(sep) for ln in lines[:-1]}
        if len(counts) == 1 and counts.pop() >= 1:
            return True
    return False


def inflate(data: bytes, fmt: str) -> list[bytes]:
    """Plain bytes reachable without a key: decompressed container or zlib streams in a pg dump."""
    out: list[bytes] = []
    try:
        if fmt == "gzip":
            with gzip.GzipFile(fileobj=io.BytesIO(data)) as fh:
                out.append(fh.read(MAX_INFLATE))
        elif fmt == "bzip2":
            out.append(bz2.BZ2Decompressor().decompress(data, MAX_INFLATE))
        elif fmt == "xz":
            out.append(lzma.LZMADecompressor().decompress(data, MAX_INFLATE))
        elif fmt == "zip":
            with zipfile.ZipFile(io.BytesIO(data)) as zf:
                budget = MAX_INFLATE
                for info in zf.infolist()[:50]:
                    if budget <= 0:
                        break
                    with zf.open(info) as fh:
                        chunk = fh.read(budget)
                    budget -= len(chunk)
                    out.append(chunk)
        elif fmt in ("pg_custom", "binary"):
            out.extend(_zlib_streams(data))
    except (OSError, EOFError, ValueError, zipfile.BadZipFile, RuntimeError, lzma.LZMAError):
        pass
    return out


def _zlib_streams(data: bytes, limit: int = 2000) -> list[bytes]:
    """Decompress zlib streams found at header positions (pg_dump -Fc compresses table data so)."""
    out: list[bytes] = []
    total = 0
    for m in re.finditer(rb"\x78[\x01\x5e\x9c\xda]", data):
        if len(out) >= limit or total >= MAX_INFLATE:
            break
        d = zlib.decompressobj()
        try:
            chunk = d.decompress(data[m.start():m.start() + MAX_INFLATE], MAX_INFLATE - total)
        except zlib.error:
            continue
        if chunk:
            out.append(chunk)
            total += len(chunk)
    return out


def analyse(data: bytes, canaries: list[str] | None = None) -> ContentReport:
    """Classify a backup and search it for canary values in clear."""
    fmt, enc = sniff(data)
    ent = entropy(data)
    notes: list[str] = []
    found = _search(data, canaries or [])
    if not found and canaries:
        for plain in inflate(data, fmt):
            found = _search(plain, canaries)
            if found:
                notes.append(f"canary values readable after decompressing the {fmt} data (no key needed)")
                break
    if enc is None:  # unknown binary: high entropy without a known container means encrypted
        if ent >= HIGH_ENTROPY and not found:
            enc = True
            notes.append(f"unrecognised container with high entropy ({ent:.2f} bits/byte): treated as encrypted")
        else:
            enc = False
            notes.append(f"unrecognised binary with entropy {ent:.2f} bits/byte: not evidently encrypted")
    if fmt in ("gzip", "bzip2", "xz", "zstd", "zip") and not enc:
        notes.append(f"{fmt} is compression, not encryption: anyone with the file can read it")
    plaintext = bool(found) or (not enc and fmt in READABLE | {"gzip", "bzip2", "xz", "zstd", "zip"})
    if fmt in ("pg_custom", "sqlite"):
        notes.append(f"{fmt} opens with standard tools without any key")
    return ContentReport(format=fmt, size=len(data), entropy=ent, plaintext=plaintext, encrypted=bool(enc) and not found,
                         canaries_found=found, notes=notes)


def _search(data: bytes, canaries: list[str]) -> list[str]:
    return [c for c in canaries if c and (c.encode() in data or c.encode("utf-16-le") in data)]


def looks_like_backup(data: bytes, headers: dict[str, str] | None = None) -> tuple[bool, str]:
    """Does a response body served at a guessable URL look like a backup file? (format, not HTML pages)."""
    if not data:
        return False, "empty"
    fmt, enc = sniff(data)
    disposition = (headers or {}).get("content-disposition", "") or (headers or {}).get("Content-Disposition", "")
    if fmt == "html":
        return False, fmt
    if fmt in ("sqlite", "pg_custom", "zip", "gzip", "bzip2", "xz", "zstd", "sql", "openssl_enc", "age", "pgp"):
        return True, fmt
    if fmt in ("json", "csv") and len(data) >= 512:
        return True, fmt
    if fmt == "binary" and (len(data) >= 1024 or "attachment" in disposition.lower()):
        return True, "binary (high entropy)" if entropy(data) >= HIGH_ENTROPY else "binary"
    return False, fmt


_HASHES = {32: "md5", 40: "sha1", 64: "sha256", 128: "sha512"}


def verify_checksum(data: bytes, offered: str) -> tuple[bool | None, str]:
    """Compare an offered hex checksum (optionally ``algo:hex``) with the data; None if unusable."""
    value = offered.strip().lower()
    algo = None
    if ":" in value:
        algo, value = value.split(":", 1)
    elif "=" in value:
        algo, value = value.split("=", 1)
    algo = (algo or _HASHES.get(len(value), "")).replace("-", "")
    if not re.fullmatch(r"[0-9a-f]+", value) or algo not in ("md5", "sha1", "sha256", "sha512"):
        return None, algo or "unknown"
    return hashlib.new(algo, data).hexdigest() == value, algo
