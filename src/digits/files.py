"""Atomic file writing: every file digits writes appears whole or not at all.

Each writer puts the content into a temporary file in the target's directory (same file
system, same suffix so tools that look at it still work), flushes it to disk, then renames
it over the target with `os.replace`, which is atomic on POSIX and Windows. A crash or a
kill leaves either the old file or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it replaces `path`, on error it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # keep a double suffix (".weights.h5"): Keras checks file names by their ending
    suffix = "".join(path.suffixes[-2:]) if len(path.suffixes) > 1 and len(path.suffixes[-2]) <= 8 else path.suffix
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(descriptor)
    try:
        yield Path(temporary)
        os.chmod(temporary, 0o644)  # mkstemp makes 0600; results are meant to be shared
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def remove_temporaries(directory: str | Path) -> list[Path]:
    """Delete the temporary files `atomic_path` left in `directory` (their writer was killed); returns them.
    Only for a directory no live writer uses (digits names none of its own files with a leading dot)."""
    left = [path for path in Path(directory).glob(".*") if path.is_file()]
    for path in left:
        path.unlink(missing_ok=True)
    return left


def write_bytes(path: str | Path, content: bytes) -> Path:
    with atomic_path(path) as temporary:
        with open(temporary, "wb") as stream:
            stream.write(content)
            stream.flush()
            os.fsync(stream.fileno())
    return Path(path)


def _to_builtin(value: Any) -> Any:
    """json.dumps fallback: NumPy scalars and arrays become Python numbers and lists."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def write_json(path: str | Path, value: Any) -> Path:
    return write_bytes(path, (json.dumps(value, indent=2, default=_to_builtin) + "\n").encode())
