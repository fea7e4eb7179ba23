"""Datasets: the registry, lookup, download, the validation split and the tf.data pipeline.

Every array that reaches a model comes through `load_dataset`, which finds the files (a
directory given by flag or `DIGITS_DATA_DIR`, the copy shipped inside this package, Debian's
`/usr/share/datasets/<name>/`, then the user cache), verifies the SHA-256 of the
decompressed bytes against the registry, and only then parses them. When no location has
the files they are downloaded from the official mirrors, verified and written atomically.
Any problem is a `DataError` (a `ValueError`) whose one-line message names the file, what
was expected and what to do.
"""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from . import files
from .idx import DataError, decompress, idx_length, read_idx, read_npz, verify  # noqa: F401  (DataError is part of this module's API)

ROLES = ("train_images", "train_labels", "test_images", "test_labels")
SHIPPED_DIR = Path(__file__).parent / "datasets"
SYSTEM_DIR = Path("/usr/share/datasets")  # Debian's dataset-* packages install here


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    files: dict[str, str]  # role -> IDX file name (without .gz)
    sha256: dict[str, str]  # IDX file name -> SHA-256 of its decompressed bytes
    mirrors: tuple[str, ...]  # base URLs that serve "<file>.gz"
    class_names: tuple[str, ...]
    npz_sha256: str | None = None  # Keras's single-file copy, where one exists
    install_hint: str = ""  # how to get the files without the network
    sizes: dict[str, int] = field(default_factory=dict)  # file name -> decompressed length: nothing past it is read


MNIST_SIZES = {"train-images-idx3-ubyte": 47_040_016, "train-labels-idx1-ubyte": 60_008,
               "t10k-images-idx3-ubyte": 7_840_016, "t10k-labels-idx1-ubyte": 10_008}  # Fashion-MNIST's too

MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}

DATASETS: dict[str, DatasetSpec] = {
    "mnist": DatasetSpec(
        name="mnist",
        files=MNIST_FILES,
        sha256={
            "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
            "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
            "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
            "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        },
        mirrors=(
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
        ),
        class_names=tuple(str(digit) for digit in range(10)),
        npz_sha256="731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1",
        install_hint="it ships with digits; reinstall the package",
        sizes={**MNIST_SIZES, "mnist.npz": 11_490_434},
    ),
    "fashion-mnist": DatasetSpec(
        name="fashion-mnist",
        files=MNIST_FILES,
        sha256={
            "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
            "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
            "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
            "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        },
        mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        class_names=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                     "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
        install_hint="on Debian/Ubuntu: apt-get install dataset-fashion-mnist",
        sizes=MNIST_SIZES,
    ),
}


@dataclass
class Dataset:
    name: str
    x_train: np.ndarray  # (N, 28, 28) uint8
    y_train: np.ndarray  # (N,) int64
    x_test: np.ndarray  # (M, 28, 28) uint8
    y_test: np.ndarray  # (M,) int64
    class_names: tuple[str, ...]
    source: str  # where the files were found
    sha256: dict[str, str] = field(default_factory=dict)  # file -> verified SHA-256

    @property
    def checksum(self) -> str:
        """One SHA-256 over the verified per-file hashes: names this exact dataset."""
        joined = "\n".join(f"{name} {digest}" for name, digest in sorted(self.sha256.items()))
        return hashlib.sha256(joined.encode()).hexdigest()


def get_spec(name: str) -> DatasetSpec:
    if name not in DATASETS:
        raise ValueError(f"unknown dataset '{name}'; known datasets: {', '.join(DATASETS)}")
    return DATASETS[name]


def _check_arrays(images: np.ndarray, labels: np.ndarray, where: str, classes: int) -> None:
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        raise DataError(f"{where}: images have shape {images.shape}, expected (N, 28, 28); wrong file?")
    if labels.shape != (len(images),):
        raise DataError(f"{where}: {len(labels)} labels for {len(images)} images; the files do not belong together")
    if labels.size and labels.max() >= classes:
        raise DataError(f"{where}: label {labels.max()} is out of range 0..{classes - 1}; wrong file?")


# ---------------------------------------------------------------- finding and downloading


def cache_dir() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "digits" / "datasets"


def _find_file(directory: Path, name: str) -> Path | None:
    for candidate in (directory / f"{name}.gz", directory / name):
        if candidate.is_file():
            return candidate
    return None


def _holds(directory: Path, spec: DatasetSpec) -> bool:
    try:
        if spec.npz_sha256 and (directory / f"{spec.name}.npz").is_file():
            return True
        return all(_find_file(directory, name) for name in spec.files.values())
    except OSError as error:  # e.g. a directory that may not be searched: one line, not a bare [Errno 13]
        raise _unreadable(directory, error) from None


def _unreadable(directory: Path, error: OSError) -> DataError:
    return DataError(f"cannot read the data directory {directory}: {error.strerror or error}; give this user read "
                     "access to it (chmod/chown) or point --data-dir / DIGITS_DATA_DIR elsewhere")


def _check_chosen(label: str, directory: Path, spec: DatasetSpec) -> None:
    """The directory the user named (--data-dir or DIGITS_DATA_DIR) must be a readable directory."""
    fix = "drop the flag" if label == "--data-dir" else f"fix or unset {label}"
    try:
        if not directory.exists():
            raise DataError(f"{label} {directory} does not exist: expected a directory holding "
                            f"{', '.join(spec.files.values())} (each optionally .gz); create it and put the "
                            f"files there, or {fix}")
        if not directory.is_dir():
            raise DataError(f"{label} {directory} is a file, not a directory; point it at the directory "
                            f"that holds the {spec.name} files, or {fix}")
        os.listdir(directory)
    except OSError as error:
        raise _unreadable(directory, error) from None


def candidate_dirs(spec: DatasetSpec, data_dir: str | Path | None = None) -> list[tuple[str, Path]]:
    """Where to look, in order: flag, environment, shipped copy, Debian, user cache."""
    places: list[tuple[str, Path]] = []
    if data_dir is not None:
        places.append(("--data-dir", Path(data_dir)))
    elif os.environ.get("DIGITS_DATA_DIR"):
        places.append(("DIGITS_DATA_DIR", Path(os.environ["DIGITS_DATA_DIR"])))
    places += [
        ("shipped copy", SHIPPED_DIR / spec.name),
        ("system datasets", SYSTEM_DIR / spec.name),
        ("user cache", cache_dir() / spec.name),
    ]
    return places


def _read_from(directory: Path, spec: DatasetSpec) -> Dataset:
    npz = directory / f"{spec.name}.npz"
    if spec.npz_sha256 and npz.is_file() and not _find_file(directory, spec.files["train_images"]):
        arrays = read_npz(npz, spec.npz_sha256, spec.sizes.get(npz.name))
        digests = {npz.name: spec.npz_sha256}
    else:
        arrays, digests = {}, {}
        for role, name in spec.files.items():
            path = _find_file(directory, name)
            if path is None:
                raise DataError(f"{directory / name}[.gz] is missing; put all four {spec.name} IDX files there")
            arrays[role] = read_idx(path, spec.sha256[name], spec.sizes.get(name))
            digests[name] = spec.sha256[name]
        arrays = {"x_train": arrays["train_images"], "y_train": arrays["train_labels"],
                  "x_test": arrays["test_images"], "y_test": arrays["test_labels"]}
    for split in ("train", "test"):
        _check_arrays(arrays[f"x_{split}"], arrays[f"y_{split}"], f"{directory} ({split})", len(spec.class_names))
    return Dataset(
        name=spec.name,
        x_train=arrays["x_train"], y_train=arrays["y_train"].astype(np.int64),
        x_test=arrays["x_test"], y_test=arrays["y_test"].astype(np.int64),
        class_names=spec.class_names, source=str(directory), sha256=digests,
    )


def _fetch(url: str, progress: Callable[[int, int], None] | None, timeout: float) -> bytes:
    chunks, done = [], 0
    with urllib.request.urlopen(url, timeout=timeout) as response:
        total = int(response.headers.get("Content-Length") or 0)
        while chunk := response.read(1 << 16):
            chunks.append(chunk)
            done += len(chunk)
            if progress:
                progress(done, total)
    return b"".join(chunks)


def download(spec: DatasetSpec, target: Path, progress: Callable[[str, int, int], None] | None = None,
             timeout: float = 30.0) -> Path:
    """Fetch each missing file from the first mirror that serves it intact; verify, then write atomically."""
    for name in spec.files.values():
        if _find_file(target, name):
            continue
        errors = []
        for mirror in spec.mirrors:
            url = f"{mirror}{name}.gz"
            try:
                packed = _fetch(url, (lambda done, total: progress(name, done, total)) if progress else None, timeout)
            except (urllib.error.URLError, OSError, ValueError) as error:
                errors.append(f"{url}: {getattr(error, 'reason', error)}")
                continue
            try:
                verify(decompress(packed, url, spec.sizes.get(name), idx_length), spec.sha256[name], url)
            except DataError as error:  # a mirror serving the wrong bytes: try the next one
                errors.append(str(error))
                continue
            files.write_bytes(target / f"{name}.gz", packed)
            break
        else:
            raise DataError(f"could not download {name}.gz ({'; '.join(errors)})")
    return target


def load_dataset(name: str = "mnist", data_dir: str | Path | None = None, allow_download: bool = True,
                 progress: Callable[[str, int, int], None] | None = None) -> Dataset:
    """Find, verify and load a registered dataset; download it into the cache if needed."""
    spec = get_spec(name)
    places = candidate_dirs(spec, data_dir)
    if places[0][0] in ("--data-dir", "DIGITS_DATA_DIR"):
        _check_chosen(*places[0], spec)
    if data_dir is not None and not _holds(Path(data_dir), spec):
        raise DataError(
            f"--data-dir {data_dir} does not hold {name}: expected {', '.join(spec.files.values())} "
            "(each optionally .gz); put the files there or drop the flag"
        )
    for _, directory in places:
        if _holds(directory, spec):
            return _read_from(directory, spec)
    target = cache_dir() / name
    hint = f"{spec.install_hint}, or " if spec.install_hint else ""
    looked = ", ".join(str(directory) for _, directory in places)
    if not allow_download:
        raise DataError(f"{name} not found (looked in {looked}); {hint}"
                        f"put the four IDX files in one of those directories")
    try:
        download(spec, target, progress)
    except DataError as error:
        raise DataError(
            f"{name} not found locally (looked in {looked}) and the download failed: {error}. "
            f"Without a network, {hint}copy the four IDX files "
            f"({', '.join(spec.files.values())}, .gz or raw) into {target} or DIGITS_DATA_DIR"
        ) from None
    return _read_from(target, spec)


# ---------------------------------------------------------------- arrays for models


def split_validation(x: np.ndarray, y: np.ndarray, fraction: float, seed: int = 0):
    """Hold out a seeded random `fraction` of (x, y) for validation; returns x_tr, y_tr, x_val, y_val."""
    order = np.random.default_rng(seed).permutation(len(x))
    count = max(1, int(round(len(x) * fraction)))
    held, kept = order[:count], order[count:]
    return x[kept], y[kept], x[held], y[held]


def training_arrays(config, data_dir=None, progress=None):
    """A recipe's data (`config`: dataset, limit, validation_split), loaded, limited and split:
    (dataset, x_train, y_train, x_val, y_val), images as model inputs. The split is seeded and the
    same for every run with the same limit and fraction (ensembles calibrate on their members')."""
    from .images import to_model_input

    dataset = load_dataset(config.dataset, data_dir=data_dir, progress=progress)
    x, y = dataset.x_train, dataset.y_train
    if config.limit is not None:
        x, y = x[: config.limit], y[: config.limit]
    x_train, y_train, x_val, y_val = split_validation(x, y, config.validation_split)
    return dataset, to_model_input(x_train), y_train, to_model_input(x_val), y_val


def make_tf_dataset(x: np.ndarray, y: np.ndarray, batch_size: int, shuffle: bool = False, seed: int = 0,
                    augment: dict | None = None, num_classes: int | None = None,
                    outliers: np.ndarray | None = None, outlier_share: float = 0.0):
    """A tf.data pipeline over arrays held in memory, that never waits on I/O.

    Shuffling permutes indices (cheap) and each batch is gathered from the in-memory tensors.
    `augment` (keyword arguments of `digits.augment.batch`: {"shift": px, "elastic": px, ...})
    transforms each training batch on the fly; `num_classes` turns labels into one-hot vectors (for label smoothing).
    `outliers` ((M, 28, 28, 1) non-digits, Outlier Exposure; needs `num_classes`) are mixed into
    every batch so that they make up `outlier_share` of it, with uniform targets (1/classes each:
    "none of these"), augmented like the digits; they cycle independently of the digits.
    """
    import tensorflow as tf

    from . import augment as augment_module

    images, labels = tf.constant(x), tf.constant(y)
    indices = tf.data.Dataset.range(len(x))
    if shuffle:
        indices = indices.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    parts = [indices.batch(batch_size)]
    augmenting = bool(augment and any(augment.values()))
    if augmenting:
        parts.append(tf.data.Dataset.random(seed=seed).batch(2))  # a fresh stateless seed per batch
    mixing = outliers is not None and outlier_share > 0
    if mixing:
        if not num_classes:
            raise ValueError("outliers need one-hot targets: pass num_classes")
        extra = tf.constant(outliers)
        per_batch = max(1, round(batch_size * outlier_share / (1.0 - outlier_share)))
        parts.append(tf.data.Dataset.range(len(outliers)).shuffle(len(outliers), seed=seed + 1,
                                                                  reshuffle_each_iteration=True)
                     .repeat().batch(per_batch))

    def gather(index, *more):
        batch, label = tf.gather(images, index), tf.gather(labels, index)
        if num_classes:
            label = tf.one_hot(label, num_classes)
        if mixing:
            outlier_index = more[-1]
            batch = tf.concat([batch, tf.gather(extra, outlier_index)], 0)
            label = tf.concat([label, tf.fill([tf.shape(outlier_index)[0], num_classes], 1.0 / num_classes)], 0)
        if augmenting:
            batch = augment_module.batch(batch, more[0], **augment)
        return batch, label

    dataset = tf.data.Dataset.zip(tuple(parts)) if len(parts) > 1 else parts[0]
    dataset = dataset.map(gather, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.prefetch(tf.data.AUTOTUNE)
