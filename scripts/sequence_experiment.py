"""Experiment (issue 14): read a whole number without cutting it, with a small convolutional sequence model
trained by CTC (Graves et al. 2006; the CRNN family of Shi et al. 2016, convolutions only) on numbers written
with MNIST training digits, here against the lattice of `multidigit` on the same validation strips.

    python scripts/sequence_experiment.py data --count 60000 --seed 1 --out build/seq/train.npz
    python scripts/sequence_experiment.py train --data build/seq/train.npz --epochs 6 --out build/seq/run
        [--size large]   (a wider model: SIZES; a run resumes at its own size)
    python scripts/sequence_experiment.py eval --model build/seq/run --strips 1000 --lattice --out build/seq/eval.json
    python scripts/sequence_experiment.py combine --results build/seq/eval.json
    python scripts/sequence_experiment.py export --model build/seq/run --out build/seq/sequence.onnx

Training numbers: 1-6 digits of the training split less the validation split that configs/reader.json holds
out (data.split_validation, 5%), written by this script's own generator (`number`: each digit scaled, nudged
up or down, strokes thickened or not, neighbours apart or overlapping by 1-4 columns), photographed by
`synthetic._photograph` (the generator of the Outlier Exposure families), then prepared as `strip_input`
prepares any picture. Evaluation: the validation digits in the strips `benchmarks/validation_strips.py` reads
(same renderer and seeds, benchmarks/real_images.py's), so its figures sit beside the lattice's in
benchmarks/results/validation_strips_reader-v6.json, strip by strip.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from multiprocessing import Pool
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

from digits import files, sequence
from digits.sequence import BLANK, HEIGHT, WIDTH  # model input (rows, columns); class 10 is CTC's blank

ROOT = Path(__file__).resolve().parents[1]


def strip_input(gray: np.ndarray) -> np.ndarray | None:
    """The model's input for a picture (any array `images.to_gray` takes): `digits.sequence.strip_input` of its
    ink, the one function training data and reading share; None when there is no ink."""
    from digits import images

    return sequence.strip_input(images.analyse(images.to_gray(gray)))


def number(digits: np.ndarray, labels: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """One number of 1-6 of `digits` (float 0..1, ink bright) as ink (rows, columns) and its text."""
    count = int(rng.integers(1, 7))
    chosen = rng.integers(len(digits), size=count)
    touching = rng.random() < 0.6
    parts = []
    for index in chosen:
        digit = digits[index][:, digits[index].max(0) > 0.1]
        scale = rng.uniform(0.85, 1.1)
        size = (max(1, round(digit.shape[1] * scale * rng.uniform(0.85, 1.15))), max(1, round(28 * scale)))
        parts.append(np.asarray(Image.fromarray(digit).resize(size, Image.Resampling.BILINEAR), np.float32))
    if touching:
        gaps = np.where(rng.random(count) < 0.85, -rng.integers(1, 5, count), rng.integers(0, 5, count))
    else:
        gaps = np.where(rng.random(count) < 0.1, -1, rng.integers(1, 9, count))
    width = sum(part.shape[1] for part in parts) + int(gaps[:-1].sum()) + 12
    ink, column = np.zeros((40, max(width, 16)), np.float32), 6
    for index, part in enumerate(parts):
        row = 6 + int(rng.integers(-3, 4)) + (28 - part.shape[0]) // 2
        row = int(np.clip(row, 0, 40 - part.shape[0]))
        end = min(column + part.shape[1], ink.shape[1])
        ink[row:row + part.shape[0], column:end] = np.maximum(ink[row:row + part.shape[0], column:end],
                                                              part[:, :end - column])
        column += part.shape[1] + int(gaps[index])
    if rng.random() < 0.35:  # a broader pen
        ink = ndimage.grey_dilation(ink, size=(2, 2) if rng.random() < 0.7 else (3, 3))
    elif rng.random() < 0.2:  # a finer one
        ink = np.clip((ink - 0.45) * 2.5, 0, 1)
    shear = rng.uniform(-0.25, 0.25)
    if abs(shear) > 0.05:
        ink = ndimage.affine_transform(ink, [[1, 0], [shear, 1]], offset=[0, -shear * ink.shape[0] / 2], order=1)
    return np.clip(ink, 0, 1), "".join(str(int(labels[index])) for index in chosen)


_SHARED: dict = {}  # each worker's copy of the training digits, sent once (`_share`), not with every task


def _share(pixels: np.ndarray, labels: np.ndarray) -> None:
    _SHARED.update(digits=np.asarray(pixels, np.float32) / 255.0, labels=labels)


def _make(task):
    from digits import synthetic

    seed, start, stop = task
    digits, labels = _SHARED["digits"], _SHARED["labels"]
    pictures, texts = np.zeros((stop - start, HEIGHT, WIDTH), np.uint8), []
    for row, index in enumerate(range(start, stop)):
        rng = np.random.default_rng([seed, index])
        while True:
            ink, text = number(digits, labels, rng)
            scale = rng.uniform(1.2, 4.0)
            size = (max(8, round(ink.shape[1] * scale)), max(8, round(ink.shape[0] * scale)))
            photo = synthetic._photograph(np.clip(np.asarray(Image.fromarray(ink).resize(
                size, Image.Resampling.BILINEAR), np.float32), 0, 1), rng)
            found = strip_input(photo)
            if found is not None:
                break
        pictures[row] = np.round(found * 255).astype(np.uint8)
        texts.append(text)
    return pictures, texts


def training_digits():
    from digits import data

    dataset = data.load_dataset("mnist", allow_download=False)
    x_train, y_train, x_val, y_val = data.split_validation(dataset.x_train, dataset.y_train, 0.05)
    return x_train, y_train, x_val, y_val


def make_data(args):
    from tqdm import tqdm

    x_train, y_train, _, _ = training_digits()
    chunk = 500
    tasks = [(args.seed, start, min(start + chunk, args.count)) for start in range(0, args.count, chunk)]
    pictures, texts = [], []
    with Pool(args.workers, initializer=_share, initargs=(x_train, y_train)) as pool:
        for made, said in tqdm(pool.imap(_make, tasks), total=len(tasks), desc="numbers", unit="chunk"):
            pictures.append(made)
            texts.extend(said)
    with files.atomic_path(args.out) as temporary:
        np.savez_compressed(temporary, pictures=np.concatenate(pictures), texts=np.array(texts))
    print(f"{args.count} numbers -> {args.out}")


# the sequence model's sizes: (Conv2D filters per block, Conv1D widths, Conv1D dilations). "small" is the model
# shipped since 2026-12-05; "large" has 1.5 times the filters and four dilated Conv1D layers twice as wide (each step
# sees 33 steps, six or seven digits' width, instead of 9, under two), for the question stop 53 left: does more
# capacity, not more data (stop 51's sequence2), read touching strips better?
SIZES = {"small": ((16, 32, 64, 128), (128, 128), (1, 1)),
         "large": ((24, 48, 96, 192), (256, 256, 256, 256), (1, 2, 4, 1))}


def _keras():
    """Keras, with TensorFlow imported first and quietly (`digits.runtime.load`: its start-up banners go to no one,
    its real errors still reach stderr)."""
    from digits import runtime

    runtime.load()
    import keras

    return keras


def build_model(size: str = "small"):
    keras = _keras()
    layers = keras.layers

    filters, widths, dilations = SIZES[size]
    inputs = keras.Input((HEIGHT, WIDTH, 1))
    x = inputs
    for count, pool in zip(filters, ((2, 2), (2, 2), (2, 1), (4, 1))):
        x = layers.Conv2D(count, 3, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization()(x)
        x = layers.ReLU()(x)
        x = layers.MaxPooling2D(pool)(x)
    x = layers.Reshape((WIDTH // 4, filters[-1]))(x)  # (columns, features): 48 steps
    for width, dilation in zip(widths, dilations):
        x = layers.Conv1D(width, 5, padding="same", dilation_rate=dilation, activation="relu")(x)
        x = layers.Dropout(0.2)(x)
    outputs = layers.Dense(BLANK + 1)(x)  # logits per step
    return keras.Model(inputs, outputs)


def run_size(run: Path) -> str:
    """The size a run was trained at (its size.json; "small" for runs from before sizes)."""
    found = Path(run) / "size.json"
    return json.loads(found.read_text())["size"] if found.exists() else "small"


def encode(texts):
    lengths = np.array([len(text) for text in texts], np.int32)
    targets = np.zeros((len(texts), 6), np.int32)
    for row, text in enumerate(texts):
        targets[row, :len(text)] = [int(char) for char in text]
    return targets, lengths


def train(args):
    keras = _keras()
    import tensorflow as tf

    loaded = np.load(args.data)
    pictures, texts = loaded["pictures"], loaded["texts"]
    targets, lengths = encode(texts)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    size = getattr(args, "size", "small")
    trained = run_size(out) if (out / "state.json").exists() else size  # a run resumes at its own size
    if trained != size:
        sys.exit(f"sequence_experiment: error: {out} was trained at --size {trained}, not {size}; "
                 f"resume it with --size {trained} or train into another --out")
    files.write_json(out / "size.json", {"size": size})
    model = build_model(size)
    steps = WIDTH // 4

    def ctc(y_true, y_pred):
        target, length = y_true[:, :6], y_true[:, 6]
        batch = tf.shape(y_pred)[0]
        return keras.ops.ctc_loss(tf.cast(target, tf.int32), y_pred, tf.cast(length, tf.int32),
                                  tf.fill([batch], steps), mask_index=BLANK)

    per_epoch = int(np.ceil(len(pictures) / args.batch))
    schedule = keras.optimizers.schedules.CosineDecay(args.lr, per_epoch * args.epochs, warmup_target=None)
    model.compile(optimizer=keras.optimizers.Adam(schedule), loss=ctc)
    first = 0
    checkpoint = out / "checkpoint.weights.h5"
    state = out / "state.json"
    spent = 0.0  # seconds of training so far, over every resume
    if state.exists():
        saved = json.loads(state.read_text())
        first, spent = saved["epoch"], saved.get("seconds", 0.0)
        # the optimizer's slots must exist before loading, else Keras skips Adam's moments (with a warning)
        model.optimizer.build(model.trainable_variables)
        model.load_weights(checkpoint)
        model.optimizer.iterations.assign(first * per_epoch)
        print(f"resumed after epoch {first}")

    class Save(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            nonlocal spent
            spent += time.perf_counter() - self.started
            with files.atomic_path(checkpoint) as temporary:
                self.model.save_weights(temporary)
            files.write_json(state, {"epoch": epoch + 1, "loss": logs.get("loss"), "seconds": round(spent, 1)})

    labels = np.concatenate([targets, lengths[:, None]], 1).astype(np.float32)
    model.fit(pictures[..., None].astype(np.float32) / 255.0, labels, batch_size=args.batch, epochs=args.epochs,
              initial_epoch=first, callbacks=[Save()], verbose=2, shuffle=True)
    model.save(out / "model.keras")
    print(f"saved {out / 'model.keras'}")


decode = sequence.decode  # greedy CTC decoding: (text, sure) per row


def evaluate(args):
    keras = _keras()

    sys.path.insert(0, str(ROOT / "benchmarks"))
    import real_images
    from common import machine

    from digits import images

    if (Path(args.model) / "model.keras").exists():
        model = keras.models.load_model(Path(args.model) / "model.keras", compile=False)
    else:  # a run still training: its last epoch's weights
        model = build_model(run_size(args.model))
        model.load_weights(Path(args.model) / "checkpoint.weights.h5")
    _, _, x_val, y_val = training_digits()
    baseline = json.loads((ROOT / "benchmarks/results/validation_strips_reader-v6.json").read_text())
    lattice = baseline["runs"]["reader-v6"]
    if args.lattice:  # each strip's reading by the package (the shipped model's lattice), to combine with
        from digits import reading
        from digits.predictor import Predictor

        predictor = Predictor(str(ROOT / "src/digits/shipped/model.onnx"))
    result = {"model": args.model, "strips": args.strips, "machine": machine()}
    for kind, touching, seed in (("touching", 1.0, 900), ("mixed", None, 901)):
        truths, inputs, photos = [], [], []
        for truth, photo in real_images.strip_photos(x_val, y_val, args.strips, [seed], touching):
            found = strip_input(images.to_gray(photo))
            truths.append(truth)
            inputs.append(found if found is not None else np.zeros((HEIGHT, WIDTH), np.float32))
            if args.lattice:
                photos.append(photo)
        started = time.perf_counter()
        read = decode(np.asarray(model.predict(np.stack(inputs)[..., None], verbose=0)))
        seconds = time.perf_counter() - started
        right = [text == truth for (text, _), truth in zip(read, truths)]
        theirs = [char == "1" for char in lattice[f"{kind}_strips"][:args.strips]]
        if args.lattice:
            result[f"{kind}_strips"] = [
                {"truth": truth, "sequence": text, "sequence_sure": sure,
                 "lattice": reading.read(photo, "number", predictor).number}
                for truth, photo, (text, sure) in zip(truths, photos, read)]
        result[kind] = {"read_whole": float(np.mean(right)), "lattice_read_whole": float(np.mean(theirs)),
                        "both": int(sum(a and b for a, b in zip(right, theirs))),
                        "sequence_only": int(sum(a and not b for a, b in zip(right, theirs))),
                        "lattice_only": int(sum(b and not a for a, b in zip(right, theirs))),
                        "model_seconds": seconds,
                        "misread": [(truth, text) for (text, _), truth, ok in zip(read, truths, right) if not ok][:40]}
        print(kind, {key: value for key, value in result[kind].items() if key != "misread"}, flush=True)
    if args.out:
        files.write_json(args.out, result)


def export(args):
    """The trained model as ONNX (`digits.export.convert`, as runs are exported), for the reading half
    (`digits.sequence.SequenceReader`); checked against Keras on generated numbers: the same logits (within
    1e-3) and the same readings. `ship_model.py --sequence` installs it beside the shipped model."""
    keras = _keras()

    from digits.export import convert

    model = keras.models.load_model(Path(args.model) / "model.keras", compile=False)
    strips = np.zeros((64, HEIGHT, WIDTH, 1), np.float32)
    x_train, y_train, _, _ = training_digits()
    _share(x_train, y_train)
    strips[..., 0] = _make((12345, 0, 64))[0] / 255.0  # numbers no training set holds (their own seed)
    expected = np.asarray(model(strips, training=False))
    convert(model, "onnx", Path(args.out))  # written beside, then renamed into place
    got = sequence.SequenceReader(args.out).logits(strips)
    texts = [[text for text, _ in sequence.decode(logits)] for logits in (got, expected)]
    if np.abs(got - expected).max() > 1e-3 or texts[0] != texts[1]:
        Path(args.out).unlink()
        sys.exit(f"sequence_experiment: error: the ONNX copy answers differently from the Keras model "
                 f"(largest difference {np.abs(got - expected).max():.2g}); report this as a bug")
    print(f"{args.out}: {Path(args.out).stat().st_size} bytes, the same readings as {args.model}/model.keras")


def combine(args):
    """From an `eval --lattice` JSON: the lattice's reading, replaced by the sequence model's where the two differ
    and the sequence model is at least SURE sure. SURE is chosen on the even-numbered strips (the most strips of
    both kinds read whole, ties to the higher SURE) and reported on the odd-numbered ones, which played no part;
    also kept apart: the same, but never replacing a reading with a piece refused as not a digit ("12?4": the
    sequence model has never seen a non-digit, so it would read a letter in a number as some digit)."""
    found = json.loads(Path(args.results).read_text())
    kinds = ("touching", "mixed")
    grid = [0.0, 0.5, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999, 1.01]

    def whole(strips, sure, keep_refusals=False):
        return [(row["sequence"] if row["sequence"] != row["lattice"] and row["sequence_sure"] >= sure
                 and not (keep_refusals and "?" in row["lattice"]) else row["lattice"]) == row["truth"]
                for row in strips]

    halves = {kind: (found[f"{kind}_strips"][0::2], found[f"{kind}_strips"][1::2]) for kind in kinds}
    chosen = max(grid, key=lambda sure: (sum(sum(whole(halves[kind][0], sure)) for kind in kinds), sure))
    result = {"sure": chosen, "grid": grid}
    for kind in kinds:
        for name, strips in zip(("choose", "check"), halves[kind]):
            result[f"{kind}_{name}"] = {"lattice": float(np.mean(whole(strips, 1.01))),
                                        "sequence": float(np.mean([row["sequence"] == row["truth"] for row in strips])),
                                        "combined": float(np.mean(whole(strips, chosen))),
                                        "combined_keeping_refusals": float(np.mean(whole(strips, chosen, True))),
                                        "strips": len(strips)}
    print(json.dumps(result, indent=1))
    if args.out:
        files.write_json(args.out, result)


NEEDS = {"data": ("out",), "train": ("data", "out"), "eval": ("model",), "combine": ("results",),
         "export": ("model", "out")}  # the options each action cannot do without


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["data", "train", "eval", "combine", "export"])
    parser.add_argument("--results", help="combine: a JSON written by eval --lattice")
    parser.add_argument("--count", type=int, default=60000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--data")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--size", choices=sorted(SIZES), default="small", help="train: the model's size (SIZES)")
    parser.add_argument("--model")
    parser.add_argument("--strips", type=int, default=1000)
    parser.add_argument("--lattice", action="store_true", help="eval: also keep each strip's reading by the "
                        "shipped model through the package (slow: the lattice reads every strip again)")
    parser.add_argument("--out")
    args = parser.parse_args()
    for name in NEEDS[args.action]:
        if not getattr(args, name):
            parser.error(f"{args.action} needs --{name} (see the usage at the top of {Path(__file__).name})")
    for name, makes in (("data", "data --out FILE"), ("results", "eval --lattice --out FILE")):
        if name in NEEDS[args.action] and not Path(getattr(args, name)).is_file():
            parser.error(f"--{name} {getattr(args, name)}: no such file; write one with `{makes}`")
    trained = ("model.keras",) if args.action == "export" else ("model.keras", "checkpoint.weights.h5")
    if "model" in NEEDS[args.action] and not any((Path(args.model) / name).is_file() for name in trained):
        parser.error(f"--model {args.model}: no trained model there; train one with `train --data FILE --out "
                     f"{args.model}` (export needs a finished run: model.keras)")
    {"data": make_data, "train": train, "eval": evaluate, "combine": combine, "export": export}[args.action](args)


if __name__ == "__main__":
    main()
