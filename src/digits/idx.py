"""Dataset files: IDX (gzip or raw) and Keras's `mnist.npz` readers, checked by SHA-256.

The bytes of every file are checked against the registry's SHA-256 (of the decompressed
content) before they are parsed, so a truncated, corrupt or wrong file is refused with a
`DataError` (a `ValueError`) whose one line names the file and what to do, never read half.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import struct
import zlib
from pathlib import Path

import numpy as np

IMAGE_MAGIC, LABEL_MAGIC = 0x00000803, 0x00000801


class DataError(ValueError):
    """A dataset file is missing, unreadable, corrupt or not what the registry expects."""


def read_bytes(path: Path) -> bytes:
    """The file's content, decompressed if it is gzip (detected by magic, not by name)."""
    try:
        raw = Path(path).read_bytes()
    except IsADirectoryError:
        raise DataError(f"{path} is a directory, not a data file; point to the file itself") from None
    except OSError as error:
        raise DataError(f"cannot read {path}: {error.strerror or error}; check the path and permissions") from None
    return decompress(raw, str(path))


def decompress(raw: bytes, source: str) -> bytes:
    """gzip-decompress `raw` if it starts with gzip's magic; otherwise return it as is."""
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        return gzip.decompress(raw)
    except (EOFError, OSError, zlib.error) as error:
        raise DataError(
            f"{source} is a damaged gzip file ({error}); it is truncated or corrupt: delete it and fetch it again"
        ) from None


def parse_idx(content: bytes, source: str = "IDX data") -> np.ndarray:
    """Parse IDX bytes (big-endian header, then uint8 data) into an array."""
    if len(content) < 8:
        raise DataError(f"{source} is too short to be an IDX file ({len(content)} bytes); replace it")
    magic, = struct.unpack(">i", content[:4])
    if magic not in (IMAGE_MAGIC, LABEL_MAGIC):
        raise DataError(
            f"{source} is not an IDX file of uint8 images or labels (magic 0x{magic & 0xFFFFFFFF:08x}, "
            f"expected 0x{IMAGE_MAGIC:08x} or 0x{LABEL_MAGIC:08x}); replace it with the original file"
        )
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(content) < header:
        raise DataError(f"{source} has a truncated IDX header; replace it with the original file")
    shape = struct.unpack(f">{ndim}I", content[4:header])  # unsigned: a negative size is no size
    expected = header + math.prod(shape)  # exact, no int64 overflow on absurd headers
    if len(content) != expected:
        raise DataError(
            f"{source} holds {len(content)} bytes but its IDX header {tuple(shape)} needs {expected}; "
            "the file is truncated or corrupt: replace it with the original"
        )
    return np.frombuffer(content, dtype=np.uint8, offset=header).reshape(shape)


def read_idx(path: str | Path, expected_sha256: str | None = None) -> np.ndarray:
    """Read an IDX file (gzip or raw); if given, verify the decompressed bytes' SHA-256 first."""
    path = Path(path)
    content = read_bytes(path)
    if expected_sha256 is not None:
        verify(content, expected_sha256, path)
    return parse_idx(content, str(path))


def verify(content: bytes, expected_sha256: str, path: Path | str) -> str:
    digest = hashlib.sha256(content).hexdigest()
    if digest != expected_sha256:
        raise DataError(
            f"{path}: SHA-256 of its contents is {digest[:16]}..., expected {expected_sha256[:16]}...; "
            "the file is corrupt or not the right dataset: replace it with the original"
        )
    return digest


def read_npz(path: str | Path, expected_sha256: str | None = None) -> dict[str, np.ndarray]:
    """Read Keras's `mnist.npz` (x_train, y_train, x_test, y_test), verifying the file's SHA-256."""
    path = Path(path)
    content = read_bytes(path)
    if expected_sha256 is not None:
        verify(content, expected_sha256, path)
    import io
    import zipfile

    try:
        with np.load(io.BytesIO(content), allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in ("x_train", "y_train", "x_test", "y_test")}
    except (KeyError, ValueError, OSError, zipfile.BadZipFile) as error:
        raise DataError(
            f"{path} is not a Keras MNIST npz with x_train, y_train, x_test, y_test ({error}); replace it"
        ) from None
    return arrays
