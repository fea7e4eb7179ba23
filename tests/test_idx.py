"""Tests for digits.idx: the IDX (raw or gzip) and Keras npz readers, SHA-256 verification and
the one-line DataError each reader raises for a missing, truncated, corrupt or wrong file.

Every file is written by the tests themselves, except the shipped MNIST label file, which is
read with the SHA-256 published in the MNIST README.
"""

from __future__ import annotations

import gzip
import hashlib
import struct
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pytest

from digits import data, idx
from digits.idx import DataError

# Independent references: the IDX magic numbers from the format description, and the
# official SHA-256 of the decompressed MNIST test labels (data/mnist/README.md beside the checkout).
IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC = 0x00000803, 0x00000801
MNIST_TEST_LABELS_SHA256 = "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"


# ---------------------------------------------------------------- helpers (tests/test_data.py imports them)


def idx_bytes(array, magic: int | None = None) -> bytes:
    """IDX bytes for a uint8 array: big-endian magic, big-endian dimension sizes, then the data."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    if magic is None:
        magic = {1: IDX_LABELS_MAGIC, 3: IDX_IMAGES_MAGIC}[array.ndim]
    return struct.pack(">I", magic) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


def sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def check_error(error: BaseException, *fragments: str) -> str:
    """A DataError is a ValueError with a one-line message holding every fragment."""
    assert isinstance(error, DataError)
    assert isinstance(error, ValueError)
    message = str(error)
    assert "\n" not in message, message
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    return message


def write_npz(path: Path, compressed: bool = False, drop: str | None = None) -> dict[str, np.ndarray]:
    """A small Keras-style mnist.npz (12 training, 4 test images); returns the four arrays it holds."""
    rng = np.random.default_rng(5)
    arrays = {
        "x_train": rng.integers(0, 256, (12, 28, 28), dtype=np.uint8),
        "y_train": ((np.arange(12) + 5) % 10).astype(np.uint8),
        "x_test": rng.integers(0, 256, (4, 28, 28), dtype=np.uint8),
        "y_test": ((np.arange(4) * 3 + 5) % 10).astype(np.uint8),
    }
    saved = {key: value for key, value in arrays.items() if key != drop}
    (np.savez_compressed if compressed else np.savez)(path, **saved)
    return arrays


# ---------------------------------------------------------------- the module's surface


def test_magic_numbers_match_the_format_description():
    assert (idx.IMAGE_MAGIC, idx.LABEL_MAGIC) == (IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC)


def test_data_still_exports_the_readers():
    assert data.DataError is idx.DataError and issubclass(DataError, ValueError)
    assert (data.read_idx, data.read_npz, data.verify, data.decompress) == (
        idx.read_idx, idx.read_npz, idx.verify, idx.decompress)


def test_verify_returns_the_digest_or_names_the_file():
    content = b"some bytes"
    assert idx.verify(content, sha256(content), "anywhere") == sha256(content)
    with pytest.raises(DataError) as caught:
        idx.verify(content, "0" * 64, Path("dir/file"))
    check_error(caught.value, "dir/file", "SHA-256", sha256(content)[:16], "0" * 16, "replace")


def test_decompress_only_what_starts_with_gzip_magic():
    content = idx_bytes(np.arange(10, dtype=np.uint8))
    assert idx.decompress(content, "raw") is content
    assert idx.decompress(gzip.compress(content), "packed") == content
    with pytest.raises(DataError) as caught:
        idx.decompress(gzip.compress(content)[:15], "https://mirror/labels.gz")
    check_error(caught.value, "https://mirror/labels.gz", "damaged gzip", "fetch it again")


def test_read_bytes_decompresses_by_magic(tmp_path):
    content = idx_bytes(np.arange(10, dtype=np.uint8))
    (tmp_path / "packed").write_bytes(gzip.compress(content))
    (tmp_path / "raw.gz").write_bytes(content)
    assert idx.read_bytes(tmp_path / "packed") == content
    assert idx.read_bytes(tmp_path / "raw.gz") == content


# ---------------------------------------------------------------- IDX reading


def test_read_idx_raw_round_trip(tmp_path):
    images = np.random.default_rng(1).integers(0, 256, (7, 28, 28), dtype=np.uint8)
    labels = np.array([0, 9, 3, 255, 1, 2, 7], dtype=np.uint8)
    (tmp_path / "images").write_bytes(idx_bytes(images))
    (tmp_path / "labels").write_bytes(idx_bytes(labels))
    read_images, read_labels = idx.read_idx(tmp_path / "images"), idx.read_idx(str(tmp_path / "labels"))
    assert read_images.dtype == np.uint8 and read_images.shape == (7, 28, 28)
    assert read_labels.dtype == np.uint8 and read_labels.shape == (7,)
    np.testing.assert_array_equal(read_images, images)
    np.testing.assert_array_equal(read_labels, labels)


def test_read_idx_header_is_big_endian(tmp_path):
    # A hand-written 2-image 2x3 file: if the reader got the byte order wrong, the shape would be absurd.
    content = b"\x00\x00\x08\x03" + b"\x00\x00\x00\x02" + b"\x00\x00\x00\x02" + b"\x00\x00\x00\x03" + bytes(range(12))
    (tmp_path / "hand").write_bytes(content)
    np.testing.assert_array_equal(idx.read_idx(tmp_path / "hand"), np.arange(12, dtype=np.uint8).reshape(2, 2, 3))


@pytest.mark.parametrize("file_name", ["images.gz", "images.bin", "images"])
def test_read_idx_gzip_is_detected_by_magic_not_by_name(tmp_path, file_name):
    images = np.random.default_rng(2).integers(0, 256, (5, 28, 28), dtype=np.uint8)
    (tmp_path / file_name).write_bytes(gzip.compress(idx_bytes(images)))
    np.testing.assert_array_equal(idx.read_idx(tmp_path / file_name), images)


def test_read_idx_raw_content_in_a_gz_named_file(tmp_path):
    labels = np.arange(10, dtype=np.uint8)
    (tmp_path / "labels.gz").write_bytes(idx_bytes(labels))  # not actually compressed
    np.testing.assert_array_equal(idx.read_idx(tmp_path / "labels.gz"), labels)


def test_read_idx_verifies_sha256_of_decompressed_bytes(tmp_path):
    labels = np.arange(20, dtype=np.uint8) % 10
    content = idx_bytes(labels)
    packed = gzip.compress(content)
    path = tmp_path / "labels.gz"
    path.write_bytes(packed)
    np.testing.assert_array_equal(idx.read_idx(path, sha256(content)), labels)
    # The hash of the compressed bytes is not what is verified.
    with pytest.raises(DataError) as caught:
        idx.read_idx(path, sha256(packed))
    check_error(caught.value, str(path), "SHA-256", "replace", sha256(content)[:16], sha256(packed)[:16])


def test_read_idx_wrong_sha256_names_file_and_says_replace(tmp_path):
    path = tmp_path / "train-labels-idx1-ubyte"
    path.write_bytes(idx_bytes(np.arange(10, dtype=np.uint8)))
    with pytest.raises(DataError) as caught:
        idx.read_idx(path, "0" * 64)
    check_error(caught.value, str(path), "replace", "SHA-256")


@pytest.mark.parametrize("cut", [1, 784, 3000])
def test_read_idx_truncated_raw_file(tmp_path, cut):
    content = idx_bytes(np.zeros((5, 28, 28), dtype=np.uint8))
    path = tmp_path / "images"
    path.write_bytes(content[:-cut])
    with pytest.raises(DataError) as caught:
        idx.read_idx(path)
    check_error(caught.value, str(path), "truncated", str(len(content) - cut), str(len(content)))


def test_read_idx_trailing_bytes_are_an_error(tmp_path):
    path = tmp_path / "labels"
    path.write_bytes(idx_bytes(np.arange(10, dtype=np.uint8)) + b"\x00")
    with pytest.raises(DataError) as caught:
        idx.read_idx(path)
    check_error(caught.value, str(path), "19 bytes", "needs 18")


@pytest.mark.parametrize("content, fragment", [
    (b"", "too short"),
    (b"\x00\x00\x08", "too short"),
    (struct.pack(">II", IDX_IMAGES_MAGIC, 5), "truncated IDX header"),  # 3 dims announced, 1 given
])
def test_read_idx_truncated_header(tmp_path, content, fragment):
    path = tmp_path / "stub"
    path.write_bytes(content)
    with pytest.raises(DataError) as caught:
        idx.read_idx(path)
    check_error(caught.value, str(path), fragment, "replace")


def test_read_idx_truncated_gzip(tmp_path):
    packed = gzip.compress(idx_bytes(np.random.default_rng(3).integers(0, 256, (30, 28, 28), dtype=np.uint8)))
    path = tmp_path / "images.gz"
    path.write_bytes(packed[: len(packed) // 2])
    with pytest.raises(DataError) as caught:
        idx.read_idx(path)
    check_error(caught.value, str(path), "damaged gzip")


def test_read_idx_gzip_with_corrupt_body(tmp_path):
    packed = bytearray(gzip.compress(idx_bytes(np.arange(2000, dtype=np.uint8) % 10)))
    packed[-8] ^= 0xFF  # the CRC-32 trailer no longer matches
    path = tmp_path / "labels.gz"
    path.write_bytes(bytes(packed))
    with pytest.raises(DataError) as caught:
        idx.read_idx(path)
    check_error(caught.value, str(path), "damaged gzip")


@pytest.mark.parametrize("magic", [0x00000D03, 0x00000802, 0x08030000, 0xFFFFFFFF])
def test_read_idx_wrong_magic(tmp_path, magic):
    path = tmp_path / "odd"
    path.write_bytes(idx_bytes(np.zeros((2, 28, 28), dtype=np.uint8), magic=magic))
    with pytest.raises(DataError) as caught:
        idx.read_idx(path)
    check_error(caught.value, str(path), f"0x{magic:08x}", "not an IDX file", "replace")


def test_read_idx_text_file_is_not_idx(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("this is not an IDX file at all\n")
    with pytest.raises(DataError) as caught:
        idx.read_idx(path)
    check_error(caught.value, str(path), "not an IDX file")


def test_read_idx_negative_dimension_is_a_data_error(tmp_path):
    # Sizes (-1, -1, 784) multiply to 784: the header must not be read as signed.
    content = struct.pack(">IiiI", IDX_IMAGES_MAGIC, -1, -1, 784) + bytes(784)
    path = tmp_path / "evil"
    path.write_bytes(content)
    with pytest.raises(DataError) as caught:
        idx.read_idx(path)
    check_error(caught.value, str(path), "truncated or corrupt")


def test_read_idx_directory(tmp_path):
    with pytest.raises(DataError) as caught:
        idx.read_idx(tmp_path)
    check_error(caught.value, str(tmp_path), "directory")


def test_read_idx_missing_file(tmp_path):
    path = tmp_path / "nowhere" / "train-images-idx3-ubyte"
    with pytest.raises(DataError) as caught:
        idx.read_idx(path)
    check_error(caught.value, str(path), "cannot read")


def test_parse_idx_names_its_source():
    with pytest.raises(DataError) as caught:
        idx.parse_idx(b"\x00\x00\x08\x01\x00\x00\x00\x05\x01", "the-upload")
    check_error(caught.value, "the-upload", "truncated")
    np.testing.assert_array_equal(idx.parse_idx(idx_bytes(np.array([4, 2], dtype=np.uint8))), [4, 2])


def test_shipped_mnist_read_idx_with_readme_sha():
    labels = idx.read_idx(data.SHIPPED_DIR / "mnist" / "t10k-labels-idx1-ubyte.gz", MNIST_TEST_LABELS_SHA256)
    assert labels.shape == (10000,)


# ---------------------------------------------------------------- npz reading


@pytest.mark.parametrize("compressed", [False, True])
def test_read_npz_round_trip_and_sha(tmp_path, compressed):
    path = tmp_path / "tiny.npz"
    arrays = write_npz(path, compressed)
    loaded = idx.read_npz(path, sha256(path.read_bytes()))
    assert sorted(loaded) == ["x_test", "x_train", "y_test", "y_train"]
    for key in arrays:
        np.testing.assert_array_equal(loaded[key], arrays[key])
    assert idx.read_npz(str(path)).keys() == loaded.keys()  # no hash given: no check


def test_read_npz_wrong_sha(tmp_path):
    path = tmp_path / "tiny.npz"
    write_npz(path)
    with pytest.raises(DataError) as caught:
        idx.read_npz(path, "f" * 64)
    check_error(caught.value, str(path), "SHA-256", "replace")


def test_read_npz_missing_key(tmp_path):
    path = tmp_path / "tiny.npz"
    write_npz(path, drop="y_test")
    with pytest.raises(DataError) as caught:
        idx.read_npz(path, sha256(path.read_bytes()))
    check_error(caught.value, str(path), "y_test", "replace")


def test_read_npz_not_a_zip(tmp_path):
    path = tmp_path / "fake.npz"
    path.write_bytes(b"PK but not really a zip archive")
    with pytest.raises(DataError) as caught:
        idx.read_npz(path)
    check_error(caught.value, str(path), "not a Keras MNIST npz")


def _bomb(content: bytes, zeros: int) -> bytes:
    """`content` then `zeros` zero bytes, gzipped: 50 MB of zeros pack into about 50 KB."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = bytes(1 << 20)
    parts = [packer.compress(content)] + [packer.compress(block) for _ in range(zeros >> 20)]
    return b"".join(parts) + packer.flush()


def _peak_bytes(function) -> tuple[int, DataError]:
    """The most memory Python allocated while `function` ran, and the DataError it must raise."""
    tracemalloc.start()
    try:
        with pytest.raises(DataError) as caught:
            function()
        return tracemalloc.get_traced_memory()[1], caught.value
    finally:
        tracemalloc.stop()


def test_a_gzip_bomb_is_refused_at_the_size_it_should_have(tmp_path):
    """50 MB of zeros behind a real IDX header claiming 10 labels: inflation stops at the header's length."""
    labels = idx_bytes(np.arange(10, dtype=np.uint8))
    path = tmp_path / "train-labels-idx1-ubyte.gz"
    path.write_bytes(_bomb(labels, 50 << 20))
    assert path.stat().st_size < 200_000
    peak, error = _peak_bytes(lambda: idx.read_idx(path))
    check_error(error, str(path), f"more than the {len(labels):,} bytes", "replace it")
    assert peak < 4 * idx.CHUNK  # at most one piece past the header's length, never the 50 MB


def test_a_gzip_bomb_without_a_header_stops_at_the_registry_size(tmp_path):
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(_bomb(b"", 50 << 20))
    peak, error = _peak_bytes(lambda: idx.read_idx(path, max_bytes=1_000_000))
    check_error(error, str(path), "more than the 1,000,000 bytes")
    assert peak < 4 * idx.CHUNK
    peak, error = _peak_bytes(lambda: idx.decompress(path.read_bytes(), "a mirror", limit=1000))  # downloads too
    check_error(error, "a mirror", "more than the 1,000 bytes")
    assert peak < 4 * idx.CHUNK


def test_bounded_inflation_reads_concatenated_members_and_refuses_truncation():
    content = idx_bytes((np.arange(3000) % 10).astype(np.uint8))
    packed = gzip.compress(content[:1000]) + gzip.compress(content[1000:])
    assert idx.decompress(packed, "two members", limit=len(content), length_of=idx.idx_length) == content
    with pytest.raises(DataError) as caught:
        idx.decompress(packed, "two members", limit=len(content) - 1)
    check_error(caught.value, "two members", "more than")
    with pytest.raises(DataError) as caught:
        idx.decompress(gzip.compress(content)[:-30], "cut")
    check_error(caught.value, "cut", "damaged gzip")
