"""Tests for digits.data: the registry, the lookup order, downloads through a real HTTP server on
loopback, the shipped MNIST copy, Debian's Fashion-MNIST, the validation split and the tf.data
pipeline (reading and verifying single files is tests/test_idx.py).

Everything except the shipped MNIST and the system Fashion-MNIST works on small files the
tests write themselves; every location `load_dataset` looks in is redirected into tmp_path.
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
import http.server
import shutil
import socket
import threading
from pathlib import Path

import numpy as np
import pytest
from test_idx import check_error, idx_bytes, sha256, write_npz

from digits import data, idx
from digits.data import DataError, DatasetSpec

# Independent references: the official SHA-256s of the decompressed MNIST files, copied from the
# shared data README (data/mnist/README.md beside the checkout).
MNIST_README_SHA256 = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
# Fashion-MNIST's published SHA-256s of the decompressed files (zalandoresearch/fashion-mnist).
FASHION_SHA256 = {
    "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}
FASHION_SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")
FILE_NAMES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
TINY_HINT = "ask the tiny-dataset fixture"


# ---------------------------------------------------------------- helpers


def make_tiny(seed: int = 0, train: int = 200, test: int = 20):
    """Random (incompressible) images, labels cycling 0..9; returns arrays and file name -> IDX bytes.

    200 training images make the .gz about 157 kB, more than one 64 kB download chunk.
    """
    rng = np.random.default_rng(seed)
    arrays = {
        "x_train": rng.integers(0, 256, (train, 28, 28), dtype=np.uint8),
        "y_train": ((np.arange(train) + seed) % 10).astype(np.uint8),
        "x_test": rng.integers(0, 256, (test, 28, 28), dtype=np.uint8),
        "y_test": ((np.arange(test) * 3 + seed) % 10).astype(np.uint8),
    }
    contents = dict(zip(FILE_NAMES, (idx_bytes(arrays[key]) for key in ("x_train", "y_train", "x_test", "y_test"))))
    return arrays, contents


def tiny_spec(contents: dict[str, bytes], mirrors: tuple[str, ...] = (), **changes) -> DatasetSpec:
    spec = DatasetSpec(
        name="tiny",
        files=dict(data.MNIST_FILES),
        sha256={name: sha256(content) for name, content in contents.items()},
        mirrors=mirrors,
        class_names=tuple(str(digit) for digit in range(10)),
        install_hint=TINY_HINT,
    )
    return dataclasses.replace(spec, **changes)


def write_files(directory: Path, contents: dict[str, bytes], compress: bool = True) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, content in contents.items():
        if compress:
            (directory / f"{name}.gz").write_bytes(gzip.compress(content))
        else:
            (directory / name).write_bytes(content)
    return directory


def assert_same_arrays(dataset: data.Dataset, arrays: dict[str, np.ndarray]) -> None:
    for key, expected in arrays.items():
        np.testing.assert_array_equal(getattr(dataset, key), expected)
    assert dataset.x_train.dtype == np.uint8 and dataset.x_test.dtype == np.uint8
    assert dataset.y_train.dtype == np.int64 and dataset.y_test.dtype == np.int64
    assert dataset.x_train.shape == (len(arrays["x_train"]), 28, 28)
    assert dataset.x_test.shape == (len(arrays["x_test"]), 28, 28)


def dead_url() -> str:
    """A loopback URL whose port has nothing listening (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def no_network(*args, **kwargs):
    raise AssertionError(f"the network was used: urlopen{args}")


# ---------------------------------------------------------------- fixtures


@pytest.fixture
def places(tmp_path, monkeypatch):
    """Every location load_dataset looks in, redirected under tmp_path; returns them by name."""
    monkeypatch.delenv("DIGITS_DATA_DIR", raising=False)
    monkeypatch.setattr(data, "SHIPPED_DIR", tmp_path / "shipped")
    monkeypatch.setattr(data, "SYSTEM_DIR", tmp_path / "system")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    # Loopback must never go through a proxy from the environment.
    monkeypatch.setenv("no_proxy", "*")
    monkeypatch.setenv("NO_PROXY", "*")
    return {
        "shipped": tmp_path / "shipped" / "tiny",
        "system": tmp_path / "system" / "tiny",
        "cache": tmp_path / "xdg-cache" / "digits" / "datasets" / "tiny",
        "root": tmp_path,
    }


@pytest.fixture
def tiny(places, monkeypatch):
    """A registered 'tiny' dataset (no mirrors) with no files anywhere yet; returns arrays, contents."""
    arrays, contents = make_tiny()
    monkeypatch.setitem(data.DATASETS, "tiny", tiny_spec(contents))
    return arrays, contents


@pytest.fixture
def serve():
    """Start real HTTP servers on loopback serving a directory; all are shut down afterwards."""
    started = []

    def start(directory: Path):
        requests: list[str] = []

        class Handler(http.server.SimpleHTTPRequestHandler):
            def do_GET(self):
                requests.append(self.path)
                super().do_GET()

            def log_message(self, *args):  # keep pytest's output clean
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(directory)))
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        stopped = []

        def stop():
            if not stopped:
                stopped.append(True)
                server.shutdown()
                server.server_close()
                thread.join(timeout=5)

        server.requests, server.stop = requests, stop
        server.url = f"http://127.0.0.1:{server.server_address[1]}/"
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def mirror_dir(tmp_path, tiny):
    """A directory holding the tiny dataset's four .gz files, as a mirror serves them."""
    return write_files(tmp_path / "mirror", tiny[1])


def use_mirrors(monkeypatch, contents, *urls):
    monkeypatch.setitem(data.DATASETS, "tiny", tiny_spec(contents, mirrors=tuple(urls)))


# ---------------------------------------------------------------- the registry


def test_get_spec_unknown_lists_known():
    with pytest.raises(ValueError) as caught:
        data.get_spec("nope")
    message = str(caught.value)
    assert "'nope'" in message and "mnist" in message and "fashion-mnist" in message
    assert "\n" not in message


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
def test_registry_entries_are_complete(name):
    spec = data.get_spec(name)
    assert spec.name == name
    assert tuple(spec.files) == data.ROLES
    assert set(spec.sha256) == set(spec.files.values())
    assert all(len(digest) == 64 and int(digest, 16) >= 0 for digest in spec.sha256.values())
    assert len(spec.class_names) == 10
    assert spec.mirrors and all(mirror.endswith("/") for mirror in spec.mirrors)
    assert spec.install_hint


def test_registry_mnist_hashes_match_the_readme():
    assert data.get_spec("mnist").sha256 == MNIST_README_SHA256
    assert data.get_spec("fashion-mnist").sha256 == FASHION_SHA256


# ---------------------------------------------------------------- lookup order and verification


def test_lookup_order(tiny, places, tmp_path, monkeypatch):
    arrays, contents = tiny
    flag_dir, env_dir = tmp_path / "flag", tmp_path / "env"
    for directory in (flag_dir, env_dir, places["shipped"], places["system"], places["cache"]):
        write_files(directory, contents)
    monkeypatch.setenv("DIGITS_DATA_DIR", str(env_dir))

    dataset = data.load_dataset("tiny", data_dir=flag_dir, allow_download=False)
    assert dataset.source == str(flag_dir)
    assert_same_arrays(dataset, arrays)
    assert data.load_dataset("tiny", data_dir=str(flag_dir), allow_download=False).source == str(flag_dir)
    assert data.load_dataset("tiny", allow_download=False).source == str(env_dir)
    monkeypatch.delenv("DIGITS_DATA_DIR")
    assert data.load_dataset("tiny", allow_download=False).source == str(places["shipped"])
    shutil.rmtree(places["shipped"])
    assert data.load_dataset("tiny", allow_download=False).source == str(places["system"])
    shutil.rmtree(places["system"])
    dataset = data.load_dataset("tiny", allow_download=False)
    assert dataset.source == str(places["cache"])
    assert_same_arrays(dataset, arrays)


def test_candidate_dirs_order(places, tmp_path, monkeypatch):
    spec = data.get_spec("mnist")
    cache = tmp_path / "xdg-cache" / "digits" / "datasets" / "mnist"
    tail = [tmp_path / "shipped" / "mnist", tmp_path / "system" / "mnist", cache]
    assert [path for _, path in data.candidate_dirs(spec)] == tail
    monkeypatch.setenv("DIGITS_DATA_DIR", "/env/dir")
    assert [path for _, path in data.candidate_dirs(spec)] == [Path("/env/dir")] + tail
    # The flag replaces the environment variable, it does not add to it.
    assert [path for _, path in data.candidate_dirs(spec, "/flag")] == [Path("/flag")] + tail


def test_cache_dir_defaults_to_home_cache(monkeypatch, tmp_path):
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert data.cache_dir() == tmp_path / ".cache" / "digits" / "datasets"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert data.cache_dir() == tmp_path / "xdg" / "digits" / "datasets"


def test_env_dir_without_the_files_falls_through(tiny, places, tmp_path, monkeypatch):
    # DIGITS_DATA_DIR serves every dataset, so one it does not hold is looked for further on.
    (tmp_path / "env").mkdir()
    monkeypatch.setenv("DIGITS_DATA_DIR", str(tmp_path / "env"))
    write_files(places["system"], tiny[1])
    assert data.load_dataset("tiny", allow_download=False).source == str(places["system"])


def test_raw_and_gzip_files_mix_in_one_directory(tiny, tmp_path):
    arrays, contents = tiny
    names = list(contents)
    write_files(tmp_path / "mixed", {name: contents[name] for name in names[:2]}, compress=False)
    write_files(tmp_path / "mixed", {name: contents[name] for name in names[2:]}, compress=True)
    assert_same_arrays(data.load_dataset("tiny", data_dir=tmp_path / "mixed", allow_download=False), arrays)


def test_explicit_data_dir_without_files_names_it(tiny, places, tmp_path, monkeypatch):
    monkeypatch.setattr(data.urllib.request, "urlopen", no_network)
    write_files(places["shipped"], tiny[1])  # a good copy elsewhere must not be used instead
    empty = tmp_path / "empty"
    empty.mkdir()
    # Three of four files is not enough either.
    write_files(tmp_path / "partial", {name: tiny[1][name] for name in FILE_NAMES[:3]})
    for directory in (empty, tmp_path / "partial", tmp_path / "does-not-exist"):
        with pytest.raises(DataError) as caught:
            data.load_dataset("tiny", data_dir=directory)
        check_error(caught.value, str(directory), "train-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


@pytest.mark.parametrize("broken_file", FILE_NAMES)
def test_corrupt_file_in_chosen_location_is_an_error(tiny, places, monkeypatch, broken_file):
    monkeypatch.setattr(data.urllib.request, "urlopen", no_network)
    _, contents = tiny
    _, other = make_tiny(seed=9)
    write_files(places["shipped"], {**contents, broken_file: other[broken_file]})
    write_files(places["system"], contents)  # a good copy later in the order is not a fallback
    with pytest.raises(DataError) as caught:
        data.load_dataset("tiny")
    check_error(caught.value, str(places["shipped"] / f"{broken_file}.gz"), "SHA-256", "replace")


def test_truncated_gzip_in_chosen_location(tiny, places):
    _, contents = tiny
    write_files(places["system"], contents)
    path = places["system"] / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:5000])
    write_files(places["cache"], contents)
    with pytest.raises(DataError) as caught:
        data.load_dataset("tiny", allow_download=False)
    check_error(caught.value, str(path), "damaged gzip")


def test_arrays_that_do_not_belong_together(places, tmp_path, monkeypatch):
    arrays, contents = make_tiny()
    cases = {
        "labels for": {**contents, "train-labels-idx1-ubyte": idx_bytes(np.zeros(7, dtype=np.uint8))},
        "out of range": {**contents, "t10k-labels-idx1-ubyte": idx_bytes(np.full(20, 10, dtype=np.uint8))},
        "expected (N, 28, 28)": {**contents, "t10k-images-idx3-ubyte": idx_bytes(np.zeros((20, 27, 28), dtype=np.uint8))},
    }
    for fragment, files in cases.items():
        directory = write_files(tmp_path / fragment.replace(" ", "_").replace("(", "").replace(")", ""), files)
        monkeypatch.setitem(data.DATASETS, "tiny", tiny_spec(files))  # hashes match: only the shapes are wrong
        with pytest.raises(DataError) as caught:
            data.load_dataset("tiny", data_dir=directory, allow_download=False)
        check_error(caught.value, str(directory), fragment)


def test_npz_location(places, tmp_path, monkeypatch):
    path = tmp_path / "npz" / "tiny.npz"
    path.parent.mkdir()
    arrays = write_npz(path)
    digest = sha256(path.read_bytes())
    monkeypatch.setitem(data.DATASETS, "tiny", tiny_spec(make_tiny()[1], npz_sha256=digest))
    dataset = data.load_dataset("tiny", data_dir=path.parent, allow_download=False)
    assert_same_arrays(dataset, arrays)
    assert dataset.sha256 == {"tiny.npz": digest}
    path.write_bytes(path.read_bytes() + b"\x00")
    with pytest.raises(DataError) as caught:
        data.load_dataset("tiny", data_dir=path.parent, allow_download=False)
    check_error(caught.value, str(path), "SHA-256")


def test_dataset_fields_and_checksum(tiny, places, tmp_path, monkeypatch):
    arrays, contents = tiny
    write_files(places["system"], contents)
    write_files(tmp_path / "raw", contents, compress=False)
    first = data.load_dataset("tiny", allow_download=False)
    assert first.name == "tiny"
    assert first.class_names == tuple("0123456789")
    assert first.sha256 == {name: sha256(content) for name, content in contents.items()}
    assert_same_arrays(first, arrays)
    assert set(np.unique(first.y_train)) == set(range(10))
    checksum = first.checksum
    assert len(checksum) == 64 and int(checksum, 16) >= 0
    assert first.checksum == checksum
    assert data.load_dataset("tiny", allow_download=False).checksum == checksum
    # The order the hashes were gathered in does not matter.
    assert dataclasses.replace(first, sha256=dict(reversed(first.sha256.items()))).checksum == checksum
    # Same content, different place and compression: the same dataset.
    assert data.load_dataset("tiny", data_dir=tmp_path / "raw", allow_download=False).checksum == checksum

    # One changed label file (and a registry that expects it) names a different dataset.
    changed = dict(contents)
    labels = arrays["y_test"].copy()
    labels[0] = (labels[0] + 1) % 10
    changed["t10k-labels-idx1-ubyte"] = idx_bytes(labels)
    write_files(tmp_path / "changed", changed)
    monkeypatch.setitem(data.DATASETS, "tiny", tiny_spec(changed))
    other = data.load_dataset("tiny", data_dir=tmp_path / "changed", allow_download=False)
    np.testing.assert_array_equal(other.y_test, labels)
    assert other.checksum != checksum
    assert other.sha256["t10k-labels-idx1-ubyte"] != first.sha256["t10k-labels-idx1-ubyte"]


def test_not_found_without_download(tiny, places, serve, mirror_dir, monkeypatch):
    server = serve(mirror_dir)
    use_mirrors(monkeypatch, tiny[1], server.url)
    monkeypatch.setattr(data.urllib.request, "urlopen", no_network)
    with pytest.raises(DataError) as caught:
        data.load_dataset("tiny", allow_download=False)
    check_error(caught.value, "tiny not found", str(places["shipped"]), str(places["system"]),
                str(places["cache"]), TINY_HINT)
    assert server.requests == []
    assert not places["cache"].exists()


# ---------------------------------------------------------------- download over loopback HTTP


def test_download_into_cache_then_read_from_cache(tiny, places, serve, mirror_dir, monkeypatch):
    arrays, contents = tiny
    server = serve(mirror_dir)
    use_mirrors(monkeypatch, contents, server.url)
    calls = []
    dataset = data.load_dataset("tiny", progress=lambda name, done, total: calls.append((name, done, total)))
    assert dataset.source == str(places["cache"])
    assert_same_arrays(dataset, arrays)
    assert server.requests == [f"/{name}.gz" for name in FILE_NAMES]

    # Exactly the four files, byte for byte what was served; no temporary or .part files left.
    assert sorted(path.name for path in places["cache"].iterdir()) == sorted(f"{name}.gz" for name in FILE_NAMES)
    for name in FILE_NAMES:
        assert (places["cache"] / f"{name}.gz").read_bytes() == (mirror_dir / f"{name}.gz").read_bytes()

    assert [name for name in FILE_NAMES if any(call[0] == name for call in calls)] == list(FILE_NAMES)
    for name in FILE_NAMES:
        size = (mirror_dir / f"{name}.gz").stat().st_size
        done = [call[1] for call in calls if call[0] == name]
        assert all(call[2] == size for call in calls if call[0] == name)
        assert all(later > earlier for earlier, later in zip(done, done[1:])), done
        assert done[-1] == size
    train_done = [call[1] for call in calls if call[0] == "train-images-idx3-ubyte"]
    assert len(train_done) >= 2  # ~157 kB comes in more than one 64 kB chunk

    server.stop()
    monkeypatch.setattr(data.urllib.request, "urlopen", no_network)
    again = data.load_dataset("tiny", progress=lambda *args: pytest.fail("progress called without a download"))
    assert again.source == str(places["cache"])
    assert_same_arrays(again, arrays)
    assert again.checksum == dataset.checksum
    assert len(server.requests) == 4


def test_download_fetches_only_missing_files(tiny, places, serve, mirror_dir, monkeypatch):
    arrays, contents = tiny
    write_files(places["cache"], {name: contents[name] for name in FILE_NAMES[:2]}, compress=False)
    server = serve(mirror_dir)
    use_mirrors(monkeypatch, contents, server.url)
    assert_same_arrays(data.load_dataset("tiny"), arrays)
    assert server.requests == [f"/{name}.gz" for name in FILE_NAMES[2:]]


@pytest.mark.parametrize("bad_file", [FILE_NAMES[0], FILE_NAMES[3]])
@pytest.mark.parametrize("damage", ["other dataset", "truncated gzip", "not gzip"])
def test_mirror_with_wrong_content(tiny, places, serve, mirror_dir, monkeypatch, bad_file, damage):
    _, contents = tiny
    path = mirror_dir / f"{bad_file}.gz"
    if damage == "other dataset":
        path.write_bytes(gzip.compress(make_tiny(seed=7)[1][bad_file]))
    elif damage == "truncated gzip":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    else:
        path.write_bytes(b"<html>404 but with status 200</html>")
    server = serve(mirror_dir)
    use_mirrors(monkeypatch, contents, server.url)
    with pytest.raises(DataError) as caught:
        data.load_dataset("tiny")
    check_error(caught.value, f"{server.url}{bad_file}.gz",
                "damaged gzip" if damage == "truncated gzip" else "SHA-256")
    # The bad file never reaches the cache, nor does any temporary file; what is there verifies.
    cached = sorted(places["cache"].iterdir()) if places["cache"].exists() else []
    assert all(path.name in {f"{name}.gz" for name in FILE_NAMES} for path in cached), cached
    assert not (places["cache"] / f"{bad_file}.gz").exists()
    for path in cached:
        assert sha256(gzip.decompress(path.read_bytes())) == sha256(contents[path.name[:-3]])
    if bad_file == FILE_NAMES[0]:
        assert cached == []


def test_failed_cache_write_leaves_nothing(tiny, places, serve, mirror_dir, monkeypatch):
    server = serve(mirror_dir)
    use_mirrors(monkeypatch, tiny[1], server.url)

    def disk_full(descriptor):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(data.files.os, "fsync", disk_full)
    with pytest.raises((OSError, DataError)):
        data.load_dataset("tiny")
    assert server.requests == ["/train-images-idx3-ubyte.gz"]
    assert not places["cache"].exists() or list(places["cache"].iterdir()) == []


def test_first_mirror_dead_second_good(tiny, places, serve, mirror_dir, monkeypatch):
    arrays, contents = tiny
    server = serve(mirror_dir)
    use_mirrors(monkeypatch, contents, dead_url(), server.url)
    dataset = data.load_dataset("tiny")
    assert dataset.source == str(places["cache"])
    assert_same_arrays(dataset, arrays)
    assert server.requests == [f"/{name}.gz" for name in FILE_NAMES]


def test_first_mirror_404_second_good(tiny, places, serve, mirror_dir, tmp_path, monkeypatch):
    arrays, contents = tiny
    (tmp_path / "empty-mirror").mkdir()
    empty, good = serve(tmp_path / "empty-mirror"), serve(mirror_dir)
    use_mirrors(monkeypatch, contents, empty.url, good.url)
    assert_same_arrays(data.load_dataset("tiny"), arrays)
    assert empty.requests == good.requests == [f"/{name}.gz" for name in FILE_NAMES]


def test_first_mirror_wrong_content_second_good(tiny, places, serve, mirror_dir, tmp_path, monkeypatch):
    arrays, contents = tiny
    wrong = tmp_path / "wrong-mirror"
    wrong.mkdir()
    for name in FILE_NAMES:
        (wrong / f"{name}.gz").write_bytes(gzip.compress(make_tiny(seed=7)[1][name]))
    bad, good = serve(wrong), serve(mirror_dir)
    use_mirrors(monkeypatch, contents, bad.url, good.url)
    assert_same_arrays(data.load_dataset("tiny"), arrays)
    assert bad.requests == good.requests == [f"/{name}.gz" for name in FILE_NAMES]


def test_all_mirrors_dead_says_where_to_put_files(tiny, places, monkeypatch):
    _, contents = tiny
    first, second = dead_url(), dead_url()
    use_mirrors(monkeypatch, contents, first, second)
    with pytest.raises(DataError) as caught:
        data.load_dataset("tiny")
    check_error(caught.value, "download failed", "Without a network", str(places["cache"]), "DIGITS_DATA_DIR",
                f"{first}train-images-idx3-ubyte.gz", f"{second}train-images-idx3-ubyte.gz",
                TINY_HINT, *FILE_NAMES)
    assert not places["cache"].exists() or not any(places["cache"].iterdir())


# ---------------------------------------------------------------- the shipped MNIST copy


@pytest.fixture(scope="module")
def mnist():
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("DIGITS_DATA_DIR", raising=False)
        patch.setattr(data.urllib.request, "urlopen", no_network)
        return data.load_dataset("mnist", allow_download=False)


def test_shipped_mnist_files_exist():
    directory = data.SHIPPED_DIR / "mnist"
    assert directory == Path(data.__file__).parent / "datasets" / "mnist"
    for name in FILE_NAMES:
        path = directory / f"{name}.gz"
        assert path.is_file(), path
        assert path.read_bytes()[:2] == b"\x1f\x8b"


def test_shipped_mnist_loads_and_verifies(mnist):
    assert mnist.source == str(data.SHIPPED_DIR / "mnist")
    assert mnist.x_train.shape == (60000, 28, 28) and mnist.x_train.dtype == np.uint8
    assert mnist.x_test.shape == (10000, 28, 28) and mnist.x_test.dtype == np.uint8
    assert mnist.y_train.shape == (60000,) and mnist.y_train.dtype == np.int64
    assert mnist.y_test.shape == (10000,) and mnist.y_test.dtype == np.int64
    assert sorted(set(mnist.y_train.tolist())) == list(range(10))
    assert sorted(set(mnist.y_test.tolist())) == list(range(10))
    assert mnist.sha256 == MNIST_README_SHA256
    assert mnist.class_names == tuple("0123456789")
    # Well-known facts about MNIST: the first labels and the per-class test counts.
    assert mnist.y_train[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert mnist.y_test[:5].tolist() == [7, 2, 1, 0, 4]
    assert np.bincount(mnist.y_test).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert mnist.x_train.max() == 255 and mnist.x_train.min() == 0


# ---------------------------------------------------------------- Fashion-MNIST from Debian


@pytest.mark.skipif(not FASHION_SYSTEM_DIR.is_dir(),
                    reason=f"{FASHION_SYSTEM_DIR} is absent (apt-get install dataset-fashion-mnist)")
def test_system_fashion_mnist(monkeypatch):
    monkeypatch.delenv("DIGITS_DATA_DIR", raising=False)
    monkeypatch.setattr(data.urllib.request, "urlopen", no_network)
    dataset = data.load_dataset("fashion-mnist", allow_download=False)
    assert dataset.source == str(FASHION_SYSTEM_DIR)
    assert dataset.x_train.shape == (60000, 28, 28) and dataset.x_test.shape == (10000, 28, 28)
    assert dataset.y_train.dtype == np.int64
    assert np.bincount(dataset.y_train).tolist() == [6000] * 10  # Fashion-MNIST is balanced
    assert np.bincount(dataset.y_test).tolist() == [1000] * 10
    assert dataset.sha256 == FASHION_SHA256
    assert dataset.class_names[0] == "T-shirt/top" and dataset.class_names[9] == "Ankle boot"


# ---------------------------------------------------------------- arrays for models


def indexed(count: int):
    """x[i] encodes i (in a 28x28 float image), y[i] = i."""
    return np.arange(count, dtype=np.float32)[:, None, None] * np.ones((1, 28, 28), np.float32), np.arange(count)


def test_split_validation_sizes_disjoint_covering():
    x, y = indexed(100)
    x_train, y_train, x_val, y_val = data.split_validation(x, y, 0.1, seed=3)
    assert len(x_train) == len(y_train) == 90 and len(x_val) == len(y_val) == 10
    assert set(y_train.tolist()).isdisjoint(y_val.tolist())
    assert sorted(y_train.tolist() + y_val.tolist()) == list(range(100))
    # Labels stay with their images.
    np.testing.assert_array_equal(x_train[:, 0, 0], y_train)
    np.testing.assert_array_equal(x_val[:, 27, 27], y_val)
    assert sorted(y_val.tolist()) != list(range(10))  # shuffled, not the first tenth


def test_split_validation_is_seeded():
    x, y = indexed(50)
    first = data.split_validation(x, y, 0.2, seed=7)
    second = data.split_validation(x, y, 0.2, seed=7)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    other = data.split_validation(x, y, 0.2, seed=8)
    assert not np.array_equal(first[3], other[3])


def test_split_validation_rounding_and_minimum():
    x, y = indexed(10)
    assert len(data.split_validation(x, y, 0.25)[3]) == 2  # round(2.5) -> 2
    assert len(data.split_validation(x, y, 0.01)[3]) == 1  # never an empty validation set
    assert len(data.split_validation(x, y, 0.5)[0]) == 5


def test_make_tf_dataset_batches_and_shuffles_with_seed():
    x, y = indexed(10)
    batches = list(data.make_tf_dataset(x, y, batch_size=4).as_numpy_iterator())
    assert [len(batch_y) for _, batch_y in batches] == [4, 4, 2]
    assert np.concatenate([batch_y for _, batch_y in batches]).tolist() == list(range(10))
    shuffled = np.concatenate([batch_y for _, batch_y in data.make_tf_dataset(x, y, 4, shuffle=True, seed=1)])
    again = np.concatenate([batch_y for _, batch_y in data.make_tf_dataset(x, y, 4, shuffle=True, seed=1)])
    assert sorted(shuffled.tolist()) == list(range(10)) and shuffled.tolist() != list(range(10))
    np.testing.assert_array_equal(shuffled, again)
    for batch_x, batch_y in data.make_tf_dataset(x, y, 3, shuffle=True, seed=2):
        np.testing.assert_array_equal(batch_x.numpy()[:, 5, 5], batch_y.numpy())


# ---------------------------------------------------------------- augmentation in the tf.data pipeline


def _labelled_blocks(count=64):
    """Images whose ink brightness encodes the label: label k -> a 12x12 block of value (k+1)/10."""
    labels = np.arange(count) % 10
    images = np.zeros((count, 28, 28, 1), np.float32)
    for index, label in enumerate(labels):
        images[index, 8:20, 8:20, 0] = (label + 1) / 10
    return images, labels


def test_augmentation_keeps_labels_with_their_images():
    images, labels = _labelled_blocks()
    pipeline = data.make_tf_dataset(images, labels, 16, shuffle=True, seed=3,
                                    augment={"shift": 2.5, "rotation": 15, "zoom": 0.1})
    seen = 0
    for batch, batch_labels in pipeline:
        batch, batch_labels = batch.numpy(), batch_labels.numpy()
        for image, label in zip(batch, batch_labels):
            # the block's interior keeps its brightness, wherever the transform moved it
            assert np.isclose(image.max(), (label + 1) / 10, atol=1e-3)
            assert not np.array_equal(image, images[0] * 0)  # nothing was blanked out
        seen += len(batch)
    assert seen == len(images)


def test_augmentation_moves_pixels_and_is_reproducible():
    images, labels = _labelled_blocks(16)
    first = next(iter(data.make_tf_dataset(images, labels, 16, seed=1, augment={"shift": 3.0})))[0].numpy()
    again = next(iter(data.make_tf_dataset(images, labels, 16, seed=1, augment={"shift": 3.0})))[0].numpy()
    other = next(iter(data.make_tf_dataset(images, labels, 16, seed=2, augment={"shift": 3.0})))[0].numpy()
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    assert not np.array_equal(first, images)


def test_one_hot_labels_for_label_smoothing():
    images, labels = _labelled_blocks(10)
    _, one_hot = next(iter(data.make_tf_dataset(images, labels, 10, num_classes=10)))
    np.testing.assert_array_equal(one_hot.numpy().argmax(1), labels)


def test_a_gzip_bomb_in_the_data_dir_stops_at_the_registry_size(tiny, tmp_path, monkeypatch):
    from test_idx import _bomb, _peak_bytes

    _, contents = tiny
    monkeypatch.setitem(data.DATASETS, "tiny", tiny_spec(contents, sizes={n: len(c) for n, c in contents.items()}))
    directory = write_files(tmp_path / "bombed", contents)
    bomb = directory / "train-images-idx3-ubyte.gz"
    bomb.write_bytes(_bomb(b"", 50 << 20))  # no IDX header to go by: the registry's size bounds it
    peak, error = _peak_bytes(lambda: data.load_dataset("tiny", data_dir=directory, allow_download=False))
    check_error(error, str(bomb), f"more than the {len(contents['train-images-idx3-ubyte']):,} bytes")
    assert peak < 4 * idx.CHUNK


def test_the_registry_knows_every_file_size():
    for spec in data.DATASETS.values():
        assert set(spec.sizes) >= set(spec.files.values())


@pytest.mark.parametrize("how", ["missing", "a file"])
def test_a_data_dir_that_is_no_directory_is_refused_alike_by_flag_and_environment(tiny, places, tmp_path,
                                                                                  monkeypatch, how):
    write_files(places["shipped"], tiny[1])  # a good copy elsewhere must not be used instead
    target = tmp_path / "chosen"
    if how == "a file":
        target.write_text("not a directory")
    fragment = "does not exist" if how == "missing" else "is a file, not a directory"
    with pytest.raises(DataError) as caught:
        data.load_dataset("tiny", data_dir=target, allow_download=False)
    check_error(caught.value, "--data-dir", str(target), fragment)
    monkeypatch.setenv("DIGITS_DATA_DIR", str(target))
    with pytest.raises(DataError) as caught:
        data.load_dataset("tiny", allow_download=False)
    check_error(caught.value, "DIGITS_DATA_DIR", str(target), fragment, "unset")


def test_an_unreadable_data_dir_is_one_line_naming_it(tiny, places, tmp_path, monkeypatch):
    # Root may read any directory, so an unreadable one is made another way: a name longer than the file system
    # allows fails to be read just as chmod 000 does (an OSError, not "missing"), through the same path.
    unreadable = tmp_path / ("x" * 300)
    for chosen in ({"data_dir": unreadable}, {}):
        monkeypatch.setenv("DIGITS_DATA_DIR", str(unreadable))
        with pytest.raises(DataError) as caught:
            data.load_dataset("tiny", allow_download=False, **chosen)
        check_error(caught.value, "cannot read the data directory", str(unreadable), "chmod")
