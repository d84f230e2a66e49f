"""Files written whole or not at all, and folders checked before a run writes into them.

A process killed while writing leaves either the old file or the new one, never half of one: the
data goes to a temporary file in the same folder (same file system, so the rename is atomic), is
flushed to disk, and is renamed over the target with :func:`os.replace`.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from latentbench.errors import ConfigError


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        # a failed or interrupted write leaves the target as it was and no temporary file behind
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def check_folder(path: str | Path, what: str) -> Path:
    """Refuse a folder path that is, or lies under, an existing file, with a :class:`ConfigError`
    naming ``what`` (the option or config key that gave the path) instead of an OSError later."""
    path = Path(path)
    for p in (path, *path.parents):
        if p.exists():
            if not p.is_dir():
                where = "" if p == path else f" (its parent {p} is a file)"
                raise ConfigError(what, f"{path} is not a folder{where}",
                                  "pass a folder path (it is created when missing), or move the file away")
            break
    return path


def ensure_folder(path: str | Path, what: str) -> Path:
    """:func:`check_folder`, then create the folder and its parents."""
    path = check_folder(path, what)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(what, f"cannot create the folder {path}: {e.strerror or e}",
                          "pass a folder you can write to") from None
    return path
