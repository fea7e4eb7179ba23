"""Dataset files: IDX (gzip or raw) and Keras's `mnist.npz` readers, checked by SHA-256.

The bytes of every file are checked against the registry's SHA-256 (of the decompressed
content) before they are parsed, so a truncated, corrupt or wrong file is refused with a
`DataError` (a `ValueError`) whose one line names the file and what to do, never read half.
"""

from __future__ import annotations

import hashlib
import math
import struct
import zlib
from pathlib import Path
from typing import Callable

import numpy as np

IMAGE_MAGIC, LABEL_MAGIC = 0x00000803, 0x00000801


class DataError(ValueError):
    """A dataset file is missing, unreadable, corrupt or not what the registry expects."""


CHUNK = 1 << 20  # bytes inflated at a time
MAX_BYTES = 1 << 30  # no dataset file is larger: what a file whose size nothing else tells may hold
HEAD = 4 + 4 * 255  # the longest IDX header


def read_bytes(path: Path, limit: int | None = None, length_of: Callable[[bytes], int | None] | None = None) -> bytes:
    """The file's content, decompressed if it is gzip (detected by magic, not by name), never more than `limit`
    bytes (`decompress`)."""
    try:
        raw = Path(path).read_bytes()
    except IsADirectoryError:
        raise DataError(f"{path} is a directory, not a data file; point to the file itself") from None
    except OSError as error:
        raise DataError(f"cannot read {path}: {error.strerror or error}; check the path and permissions") from None
    return decompress(raw, str(path), limit, length_of)


def decompress(raw: bytes, source: str, limit: int | None = None,
               length_of: Callable[[bytes], int | None] | None = None) -> bytes:
    """gzip-decompress `raw` if it starts with gzip's magic; otherwise return it as is.

    Never more than `limit` bytes (default `MAX_BYTES`) are inflated, nor more than `length_of(start)` says
    the content is (called on its first `HEAD` bytes; None: it cannot tell): a longer content (a decompression
    bomb, the wrong file) is a `DataError` raised after inflating at most one `CHUNK` past what was allowed."""
    limit = MAX_BYTES if limit is None else limit
    if raw[:2] != b"\x1f\x8b":
        if len(raw) > limit:
            raise _too_big(source, limit)
        return raw
    parts, produced, pending, measured = [], 0, raw, length_of is None
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        while True:
            piece = inflater.decompress(pending, min(CHUNK, limit + 1 - produced))
            pending = inflater.unconsumed_tail
            parts.append(piece)
            produced += len(piece)
            if inflater.eof:
                rest = inflater.unused_data.lstrip(b"\0")  # another gzip member follows, or zero padding
                if rest:
                    pending, inflater = rest, zlib.decompressobj(16 + zlib.MAX_WBITS)
            elif not piece and not pending:
                raise EOFError("compressed file ended before the end-of-stream marker was reached")
            done = inflater.eof and not pending
            if not measured and (produced >= HEAD or done):
                measured, length = True, length_of(b"".join(parts)[:HEAD])
                limit = limit if length is None else min(limit, length)
            if produced > limit:
                raise _too_big(source, limit)
            if done:
                return b"".join(parts)
    except (EOFError, zlib.error) as error:
        raise DataError(
            f"{source} is a damaged gzip file ({error}); it is truncated or corrupt: delete it and fetch it again"
        ) from None


def _too_big(source: str, limit: int) -> DataError:
    return DataError(f"{source} holds more than the {limit:,} bytes it should (a decompression bomb or the wrong "
                     "file); it is corrupt: replace it with the original")


def idx_length(head: bytes) -> int | None:
    """The length an IDX file starting with `head` has, by its header; None if `head` is no uint8 IDX header."""
    if len(head) < 4:
        return None
    magic, = struct.unpack(">i", head[:4])
    if magic not in (IMAGE_MAGIC, LABEL_MAGIC):
        return None
    header = 4 + 4 * (magic & 0xFF)
    if len(head) < header:
        return None
    return header + math.prod(struct.unpack(f">{magic & 0xFF}I", head[4:header]))


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


def read_idx(path: str | Path, expected_sha256: str | None = None, max_bytes: int | None = None) -> np.ndarray:
    """Read an IDX file (gzip or raw); if given, verify the decompressed bytes' SHA-256 first. Nothing is
    inflated past `max_bytes` (the registry's size for the file) nor past the length its own header gives."""
    path = Path(path)
    content = read_bytes(path, max_bytes, idx_length)
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


def read_npz(path: str | Path, expected_sha256: str | None = None,
             max_bytes: int | None = None) -> dict[str, np.ndarray]:
    """Read Keras's `mnist.npz` (x_train, y_train, x_test, y_test), verifying the file's SHA-256."""
    path = Path(path)
    content = read_bytes(path, max_bytes)
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
