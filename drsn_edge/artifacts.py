"""Writing artifacts atomically, and where they live under build/.

A stage that fails half-way must not leave a file that the next stage would trust, so every
artifact is written to a temporary file next to its destination and renamed into place.
"""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path


def build_dir() -> Path:
    return Path(os.environ.get("DRSN_EDGE_BUILD", "build"))


def paths() -> dict[str, Path]:
    """The artifact layout (documented in the README, section 'Artifacts')."""
    b = build_dir()
    return {
        "build": b,
        "data": b / "data",
        "model": b / "model",
        "reports": b / "reports",
        "plots": b / "reports" / "plots",
        "firmware": b / "firmware",            # firmware/<board>/: src/, firmware.elf/.bin/.map
        "flash_state": b / "flash.json",       # the board `drsn-edge flash` started or flashed
    }


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _umask()


@contextmanager
def atomic_path(dest: str | Path, suffix: str | None = None):
    """Yield a temporary path beside `dest`; rename it onto `dest` only on success."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=suffix or dest.suffix,
                               dir=dest.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        # mkstemp makes the file private (0600); an artifact gets the mode any new file gets.
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, dest)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_bytes(dest: str | Path, data: bytes) -> Path:
    with atomic_path(dest) as tmp:
        tmp.write_bytes(data)
    return Path(dest)


def write_text(dest: str | Path, text: str) -> Path:
    return write_bytes(dest, text.encode())


def write_json(dest: str | Path, obj) -> Path:
    return write_text(dest, json.dumps(obj, indent=2, sort_keys=False, default=_jsonable) + "\n")


def _jsonable(obj):
    import numpy as np
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot write {type(obj).__name__} to JSON")
