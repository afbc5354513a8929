"""Writing files so that a reader never sees half of one: temp file in the same folder, then rename."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def write_atomic(path: str | os.PathLike[str], data: str | bytes, mode: int | None = None) -> None:
    """Write ``data`` to ``path`` atomically; ``mode`` defaults to 0o666 less the umask.

    The process umask is never read or changed (other threads may be creating files): the
    temp file is created with mode 0o666 and the kernel applies the umask, or, when ``mode``
    is given, created 0o600 and set to exactly ``mode`` with fchmod before any data is written.
    """
    path = Path(path)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = _create_temp(path, 0o666 if mode is None else 0o600)
    try:
        if mode is not None:
            os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _create_temp(path: Path, create_mode: int) -> tuple[int, Path]:
    """A new, exclusively created temp file beside ``path`` (the umask applies to ``create_mode``)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    for _ in range(100):
        tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
        try:
            return os.open(tmp, flags, create_mode), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"{path.parent}: could not create a temporary file")
