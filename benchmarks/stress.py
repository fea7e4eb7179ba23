"""MNIST test digits under conditions outside what training samples, per model (issue 14).

Each condition renders the same first N test digits as photos (benchmarks/real_images.py's `render`,
with one thing pushed past what the reader's recipe, configs/reader.json, augments with): fewer pixels,
thicker and thinner strokes, stronger slant and rotation, pencil on ruled paper, blur, broken strokes.
The photo's own draws (size, margins, lighting, noise, JPEG) come from the seed and the digit's index, as
in real_images.py, so a condition's picture differs from its clean twin by the condition; the condition's
draws (slant direction, gap places, filter) from the seed, its name and the index. Each picture goes
through `images.prepare_file` once; every model classifies the same prepared stack (a model that reads soft
pictures as they are, `Predictor.soft_above`, takes each picture's soft preparation where its blur is above its
own: each picture is then also prepared that way once). Loss: points of
accuracy lost against `clean`. Target: on every condition the reader loses at most half of what the
baseline (`cnn-fast`) loses; where the baseline loses nothing, at most 0.1 point.
With --split validation the digits are the validation split's instead (the 5% of the training set that
configs/reader.json holds out; use another --seed), to choose between models without the test set.
Writes benchmarks/results/stress.json.
Usage: python benchmarks/stress.py --run cnn-fast=RUN --run best-full=RUN --run reader=RUN [--samples 2000]
       [--seed 0] [--split test|validation] [--baseline cnn-fast] [--reader reader] [--conditions thick thin ...]
       [--sheet sheet.png]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import math
import sys
import time
import zlib
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parent))
import real_images  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

# condition -> its fixed parameters. Training (configs/reader.json) samples: shift 2.5 px, rotation +-10 deg,
# zoom +-10%, slant +-0.25, aspect +-20%, elastic up to 1.2 px, strokes +2 / -1 px, 1-2 gaps on 15% of
# pictures, digits 8-16 px tall on 20%, blur sigma up to 0.8 px, ink texture 0.4 (MNIST pixels throughout).
CONDITIONS = {
    "clean": {},  # real_images' default rendering: the baseline every loss is measured against
    "lowres": {"digit_height": 6.0,  # px tall (training draws 8-16 px), taken small: a box filter ...
               "filters": ["nearest", "bicubic"]},  # ... then enlarged, blocky or smooth (training: bilinear)
    "thick": {"stroke_change": 3.5},  # a marker: training widens by at most 2 px, real_images by 2.0
    "thin": {"stroke_change": -1.2},  # a hairline: training thins by at most 1 px, real_images by 0.8
    "slant": {"shear": 0.45},  # top moved 0.45 x height sideways, both ways (training: up to 0.25)
    "rotation": {"degrees": 20.0},  # both ways (training: up to 10)
    # pencil on tinted, grainy, ruled paper: grey graphite takes 30% of the paper's light (real_images' lightest
    # ink takes at least half; training's digits are full-strength ink); the paper's tooth leaves up to half the
    # graphite out (training's ink texture fades by at most 24%, in smooth blotches); ruled lines every 14 px,
    # 0.8 px wide (thinner than the strokes, about 2.5), bluish, half as dark as the pencil (training has none);
    # cream, pale blue, pale green or kraft paper (real_images tints by at most 8%)
    "paper": {"ink_contrast": 0.3, "grain": 0.5, "line_spacing": 14.0, "line_width": 0.8, "line_contrast": 0.15,
              "tints": [[0.95, 0.91, 0.78], [0.86, 0.9, 0.95], [0.87, 0.94, 0.84], [0.82, 0.7, 0.55]]},
    "blur": {"sigma": 1.6},  # focus blur of 1.6 px (training: up to 0.8; real_images: about 0.3 at most)
    "broken": {"gaps": [3, 4], "gap_width": 1.0},  # every digit cut 3-4 times (training: 1-2 cuts on 15%)
}
FILTERS = {"nearest": Image.Resampling.NEAREST, "bilinear": Image.Resampling.BILINEAR,
           "bicubic": Image.Resampling.BICUBIC}
VALIDATION_SPLIT = 0.05  # --split validation: configs/reader.json's held-out share of the training set
ZERO_LOSS_ALLOWANCE = 0.1  # points the reader may lose where the baseline loses nothing
SHEET_COLUMNS = 12
EIGHT_NEIGHBOURS = np.ones((3, 3), bool)


def allowed_loss(baseline_loss: float) -> float:
    """Points of accuracy the reader may lose on a condition where the baseline loses `baseline_loss`."""
    return baseline_loss / 2 if baseline_loss > 0 else ZERO_LOSS_ALLOWANCE


def target_met(baseline_loss: float, reader_loss: float) -> bool:
    return reader_loss <= allowed_loss(baseline_loss) + 1e-9  # 1e-9: losses are differences of float means


def slanted(ink: np.ndarray, shear: float) -> np.ndarray:
    """Ink sheared so its top row moves `shear` x height to the right of its bottom row (left if negative)."""
    height = ink.shape[0]
    reach = int(math.ceil(abs(shear) * height / 2)) + 1
    padded = np.pad(ink, ((0, 0), (reach, reach)))
    # output (row, col) samples input (row, col + shear * (row - centre)): above the centre, from the left
    return ndimage.affine_transform(padded, [[1.0, 0.0], [shear, 1.0]], offset=[0.0, -shear * (height - 1) / 2],
                                    order=1)


def broken(ink: np.ndarray, rng: np.random.Generator, gaps: int, width: float, spacing: float = 6.0) -> np.ndarray:
    """Ink with `gaps` cuts across its strokes, `width` px wide along the stroke, at least `spacing` px apart.

    Each cut takes one stroke's cross-section only, not a neighbouring stroke the straight band also crosses
    (the other side of a small loop)."""
    core = ink >= 0.5
    rows, cols = np.nonzero(core)
    gradient_rows, gradient_cols = np.gradient(ndimage.gaussian_filter(ink, 1.0))
    # the structure tensor's main direction runs across the stroke (the gradient is zero on the ridge itself)
    tensor = [ndimage.gaussian_filter(product, 1.5) for product in
              (gradient_cols * gradient_cols, gradient_cols * gradient_rows, gradient_rows * gradient_rows)]
    centres: list[tuple[int, int]] = []
    for index in rng.permutation(rows.size):
        if all(math.hypot(rows[index] - row, cols[index] - col) >= spacing for row, col in centres):
            centres.append((int(rows[index]), int(cols[index])))
        if len(centres) == gaps:
            break
    grid_rows, grid_cols = np.mgrid[0:ink.shape[0], 0:ink.shape[1]].astype(np.float32)
    keep = np.ones_like(ink)
    for row, col in centres:
        xx, xy, yy = (float(part[row, col]) for part in tensor)
        across = 0.5 * math.atan2(2 * xy, xx - yy)  # angle of (col, row) across the stroke
        along = np.abs(-(grid_cols - col) * math.sin(across) + (grid_rows - row) * math.cos(across))
        sideways = np.abs((grid_cols - col) * math.cos(across) + (grid_rows - row) * math.sin(across))
        band = (along <= width / 2 + 0.5) & (sideways <= 5.0)
        pieces, _ = ndimage.label(core & band, EIGHT_NEIGHBOURS)
        stroke = ndimage.binary_dilation(pieces == pieces[row, col]) & band  # with its grey edge
        keep *= 1 - np.clip(width / 2 + 0.5 - along, 0, 1) * stroke
    return ink * keep


def pencil_on_ruled_paper(pen: np.ndarray, scale: float, rng: np.random.Generator, ink_contrast: float,
                          grain: float, line_spacing: float, line_width: float, line_contrast: float,
                          tints: list) -> np.ndarray:
    """`render`'s surface for `paper`: grainy pencil on tinted paper with ruled lines -> (H, W, 3) 0..1."""
    tint = np.asarray(tints[int(rng.integers(len(tints)))]) * rng.uniform(0.9, 1.0)
    tooth = ndimage.gaussian_filter(rng.normal(0, 1, pen.shape), max(0.25 * scale, 0.5))
    tooth = np.clip(0.5 + tooth / (2 * max(float(tooth.std()), 1e-6)), 0, 1)  # the paper's grain, 0..1
    paper = tint * (1 + 0.04 * (tooth - 0.5))[..., None]
    line = real_images.printed_lines(pen.shape[0], line_spacing * scale, max(line_width * scale, 1.0), rng)
    line = line[:, None, None]
    paper = paper * (1 - line_contrast * line * np.array([1.3, 1.0, 0.4]))  # bluish: takes red and green
    graphite = pen * (1 - grain * tooth)  # grey: the same share of every colour
    return paper * (1 - ink_contrast * graphite)[..., None]


def render_condition(name: str, digit: np.ndarray, seed: int, index: int) -> bytes:
    """Test digit `index` (28x28, uint8 or float 0..1) as a photo under condition `name` (see CONDITIONS)."""
    if name not in CONDITIONS:
        raise ValueError(f"unknown condition {name!r}; known: {', '.join(CONDITIONS)}")
    parameters = CONDITIONS[name]
    ink = real_images.as_ink(digit)
    photo = np.random.default_rng([seed, index])  # real_images' draws for this digit: the clean twin's
    own = np.random.default_rng([seed, zlib.crc32(name.encode()), index])
    if name == "clean":
        return real_images.render(ink, photo)
    if name == "lowres":
        resample = FILTERS[parameters["filters"][int(own.integers(len(parameters["filters"])))]]
        return real_images.render(ink, photo, low_resolution=(parameters["digit_height"], resample))
    if name in ("thick", "thin"):
        return real_images.render(ink, photo, stroke_change=parameters["stroke_change"])
    if name == "slant":
        return real_images.render(slanted(ink, parameters["shear"] * own.choice((-1, 1))), photo)
    if name == "rotation":
        angle = parameters["degrees"] * own.choice((-1, 1))
        return real_images.render(ndimage.rotate(ink, angle, reshape=True, order=1), photo)
    if name == "paper":
        return real_images.render(ink, photo, surface=partial(pencil_on_ruled_paper, **parameters))
    if name == "blur":
        return real_images.render(ink, photo, blur=parameters["sigma"])
    if name == "broken":
        stroke_change = own.uniform(*real_images.STROKE_CHANGE)
        gaps = int(own.integers(parameters["gaps"][0], parameters["gaps"][1] + 1))
        # the pen widens the strokes by stroke_change, closing the gaps by as much: cut them that much wider
        width = max(parameters["gap_width"] + stroke_change, 0.5)
        return real_images.render(broken(ink, own, gaps, width), photo, stroke_change=stroke_change)
    raise NotImplementedError(f"CONDITIONS holds {name!r}, but render_condition does not draw it")


def prepared_views(photo: bytes, soft: bool):
    """(the picture prepared as a model without soft_above reads it, its ink's blur (`images.ink_blur`; NaN
    without ink), and, with `soft`, its image prepared as it is, else None)."""
    from digits import images

    ink = images.analyse(images.load_gray(photo))  # analysed once, cut out both ways
    sharp = images.prepare_ink(ink, soft_above=math.inf)  # sharpened and re-drawn as ever, its blur measured
    blur = np.nan if sharp.blur is None else sharp.blur
    return sharp, blur, images.prepare_ink(ink, soft_above=-1.0).image if soft else None  # every ink as it is


def selected(sharp: np.ndarray, soft: np.ndarray | None, blur: np.ndarray, soft_above: float | None) -> np.ndarray:
    """Per picture, the soft preparation (or its reading) where its blur is above `soft_above` (None: never), else
    the sharp one."""
    if soft_above is None:
        return sharp
    chosen = np.asarray(blur) > soft_above
    return np.where(chosen.reshape((-1,) + (1,) * (sharp.ndim - 1)), soft, sharp)


def _cache_file(cache: str | Path, name: str, count: int, seed: int, soft: bool = False) -> Path:
    """Where a condition's prepared stack is kept: named by the code that draws and prepares it."""
    from digits import images

    code = hashlib.sha256(b"".join(Path(module.__file__).read_bytes() for module in (sys.modules[__name__], real_images,
                                                                                     images))).hexdigest()[:16]
    return Path(cache) / f"stress-{name}-n{count}-seed{seed}{'-soft' if soft else ''}-{code}.npz"


def prepare_conditions(digits: np.ndarray, names: list[str], seed: int, cache: str | Path | None = None,
                       soft: bool = False) -> dict:
    """Each condition's pictures rendered and prepared once: name -> {stack (N, 28, 28), blur (N,), ink_not_found,
    times}, and with `soft` soft_stack (N, 28, 28): each prepared as it is too (`prepared_views`). With `cache` (a
    directory), a condition prepared before by the same code is read back instead."""
    from digits import files

    prepared = {}
    if cache:
        for name in names:
            path = _cache_file(cache, name, len(digits), seed, soft)
            if path.is_file():
                with np.load(path) as kept:
                    prepared[name] = {"stack": kept["stack"], "blur": kept["blur"],
                                      "ink_not_found": int(kept["ink_not_found"]),
                                      "render_ms": float(kept["render_ms"]), "prepare_ms": float(kept["prepare_ms"])}
                    if soft:
                        prepared[name]["soft_stack"] = kept["soft_stack"]
        names = [name for name in names if name not in prepared]

    try:
        from tqdm import tqdm
        bar = tqdm(total=len(names) * len(digits), file=sys.stderr, unit="picture", mininterval=2.0)
    except ImportError:
        bar = None
    for name in names:
        stack, blurs, soft_stack, missing, rendering, preparing = [], [], [], 0, 0.0, 0.0
        for index, digit in enumerate(digits):
            started = time.perf_counter()
            photo = render_condition(name, digit, seed, index)
            rendered = time.perf_counter()
            item, blur, as_it_is = prepared_views(photo, soft)
            preparing += time.perf_counter() - rendered
            rendering += rendered - started
            stack.append(item.image)
            blurs.append(blur)
            soft_stack.append(as_it_is)
            missing += not item.ink_found
            if bar is not None:
                bar.set_postfix_str(name, refresh=False)
                bar.update()
        if bar is None:
            print(f"{name}: {len(digits)} pictures prepared", file=sys.stderr)
        prepared[name] = {"stack": np.stack(stack), "blur": np.asarray(blurs, np.float32), "ink_not_found": missing,
                          "render_ms": 1000 * rendering / len(digits), "prepare_ms": 1000 * preparing / len(digits)}
        if soft:
            prepared[name]["soft_stack"] = np.stack(soft_stack)
        if cache:
            buffer = io.BytesIO()
            np.savez(buffer, **prepared[name])
            files.write_bytes(_cache_file(cache, name, len(digits), seed, soft), buffer.getvalue())
    if bar is not None:
        bar.close()
    return prepared


def summarise(accuracies: dict[str, dict[str, float]], baseline: str, reader: str) -> dict:
    """label -> condition -> accuracy  ->  per condition: accuracies, losses in points, the target."""
    conditions = {}
    for name in next(iter(accuracies.values())):
        losses = {label: round(100 * (row["clean"] - row[name]), 6) for label, row in accuracies.items()}
        target = None
        if baseline in losses and reader in losses and name != "clean":
            target = {"baseline_loss": losses[baseline], "reader_loss": losses[reader],
                      "allowed_loss": allowed_loss(losses[baseline]),
                      "rule": "half the baseline's loss" if losses[baseline] > 0 else
                              f"the baseline loses nothing: {ZERO_LOSS_ALLOWANCE} point",
                      "met": target_met(losses[baseline], losses[reader])}
        conditions[name] = {"accuracy": {label: row[name] for label, row in accuracies.items()},
                            "loss_points": losses, "target": target}
    return conditions


def recipe_of(settings: dict) -> str | None:
    """The configs/*.json recipe a model was trained with (its seed aside), if one matches."""
    from digits import config

    try:
        trained = config.from_dict(settings).to_dict()
    except ValueError:
        return None
    trained.pop("seed")
    for path in sorted((ROOT / "configs").glob("*.json")):
        try:
            recipe = config.load(path).to_dict()
        except ValueError:
            continue
        recipe.pop("seed")
        if recipe == trained:
            return f"configs/{path.name}"
    return None


def contact_sheet(prepared: dict, path: str | Path) -> Path:
    """One row per condition: its first pictures as the models see them (28x28, ink bright), 3x enlarged."""
    from digits import files

    zoom, label = 3, 72
    sheet = Image.new("L", (label + SHEET_COLUMNS * 28 * zoom, len(prepared) * 28 * zoom), 0)
    pen = ImageDraw.Draw(sheet)
    for row, (name, item) in enumerate(prepared.items()):
        pen.text((4, row * 28 * zoom + 36), name, fill=255)
        for column, image in enumerate(item["stack"][:SHEET_COLUMNS]):
            tile = Image.fromarray(np.round(np.clip(image, 0, 1) * 255).astype(np.uint8))
            sheet.paste(tile.resize((28 * zoom, 28 * zoom), Image.Resampling.NEAREST),
                        (label + column * 28 * zoom, row * 28 * zoom))
    buffer = io.BytesIO()
    sheet.save(buffer, "PNG")
    return files.write_bytes(path, buffer.getvalue())


def parse_runs(values: list[str]) -> dict[str, str]:
    runs = {}
    for value in values:
        label, _, path = value.partition("=")
        if not label or not path:
            raise ValueError(f"--run {value!r} is not LABEL=PATH; write e.g. --run cnn-fast=build/stress/cnn-fast")
        if label in runs:
            raise ValueError(f"--run label {label!r} is given twice; give each model its own label")
        runs[label] = path
    return runs


def table(summary: dict) -> list[str]:
    labels = list(summary["models"])
    lines = [f"{'condition':10} " + " ".join(f"{label[:22]:>22}" for label in labels) + "  target"]
    for name, row in summary["conditions"].items():
        cells = " ".join(f"{row['accuracy'][label]:>13.2%} {row['loss_points'][label]:>+7.2f} " for label in labels)
        target = row["target"]
        verdict = "" if target is None else (f"{'met' if target['met'] else 'MISSED'} (reader loses "
                                             f"{target['reader_loss']:.2f}, allowed {target['allowed_loss']:.2f})")
        lines.append(f"{name:10} {cells} {verdict}")
    return lines


def digits_of(split: str, samples: int) -> tuple[np.ndarray, np.ndarray]:
    """The first `samples` digits and labels of the test set, or of the validation split (`VALIDATION_SPLIT` of
    the training set held out, as configs/reader.json holds it out: for choosing between models without the test
    set)."""
    from digits import data

    dataset = data.load_dataset("mnist")
    if split == "test":
        return dataset.x_test[:samples], dataset.y_test[:samples]
    _, _, x_val, y_val = data.split_validation(dataset.x_train, dataset.y_train, VALIDATION_SPLIT)
    return x_val[:samples], y_val[:samples]


def measure(predictors: dict, samples: int, seed: int, names: list[str], baseline: str, reader: str,
            sheet: str | None = None, cache: str | None = None, split: str = "test") -> dict:
    """Every model (label -> Predictor) on the first `samples` digits of `split` under `clean` and each condition."""
    from common import machine

    started = time.perf_counter()
    digits, truth = digits_of(split, samples)
    names = ["clean", *[name for name in names if name != "clean"]]
    if cache and split != "test":
        cache = Path(cache) / split  # other digits under the same names: kept apart from the test digits' pictures
    soft_above = {label: getattr(predictor, "soft_above", None) for label, predictor in predictors.items()}
    soft = any(value is not None for value in soft_above.values())
    prepared = prepare_conditions(digits, names, seed, cache, soft=soft)
    if sheet:
        contact_sheet(prepared, sheet)
    accuracies = {label: {name: float((predictor.predict_proba(selected(item["stack"], item.get("soft_stack"),
                                                                        item["blur"], soft_above[label])).argmax(1)
                                       == truth).mean()) for name, item in prepared.items()}
                  for label, predictor in predictors.items()}
    conditions = summarise(accuracies, baseline, reader)
    for name, row in conditions.items():
        row.update(parameters=CONDITIONS[name], ink_not_found=prepared[name]["ink_not_found"],
                   read_as_they_are={label: float(np.mean(prepared[name]["blur"] > value))
                                     for label, value in soft_above.items() if value is not None},
                   render_ms=prepared[name]["render_ms"], prepare_ms=prepared[name]["prepare_ms"])
    targets = [row["target"]["met"] for row in conditions.values() if row["target"] is not None]
    models = {}
    for label, predictor in predictors.items():
        recipe = recipe_of(predictor.info.config)  # and the file as it reads now, so a later change can be named
        models[label] = {"model": predictor.info.config.get("model"), "recipe": recipe, "backend": predictor.backend,
                         "soft_above": soft_above[label],
                         "config": json.loads((ROOT / recipe).read_text()) if recipe else None}
    return {"benchmark": "stress", "split": split, "samples": samples, "seed": seed, "baseline": baseline,
            "reader": reader,
            "target_rule": (f"reader's loss <= half of the baseline's, per condition; <= {ZERO_LOSS_ALLOWANCE} point "
                            "where the baseline loses nothing (loss: clean accuracy - condition accuracy, in points)"),
            "models": models, "conditions": conditions, "all_met": all(targets) if targets else None,
            "prepare_ms": float(np.mean([item["prepare_ms"] for item in prepared.values()])),
            "seconds": time.perf_counter() - started, "machine": machine()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", action="append", default=[], metavar="LABEL=PATH",
                        help="a model to measure: a run directory or model file, under a label (repeat)")
    parser.add_argument("--baseline", default="cnn-fast", help="label the target compares against (default: cnn-fast)")
    parser.add_argument("--reader", default="reader", help="label the target is for (default: reader)")
    parser.add_argument("--samples", type=int, default=2000, help="first N digits (default: 2000)")
    parser.add_argument("--split", choices=("test", "validation"), default="test",
                        help="whose digits: the test set, or the validation split, to choose between models without "
                             "the test set (use another --seed then; default: test)")
    parser.add_argument("--seed", type=int, default=0, help="(default: 0)")
    parser.add_argument("--conditions", nargs="+", choices=list(CONDITIONS), default=list(CONDITIONS),
                        help="a subset (clean is always added; default: all)")
    parser.add_argument("--sheet", help="also write a PNG of each condition's first prepared pictures here")
    parser.add_argument("--out", help="where to write the JSON (default: benchmarks/results/stress.json)")
    parser.add_argument("--cache", help="keep each condition's prepared pictures in this directory and reuse them "
                                        "(measure more models later without drawing again)")
    args = parser.parse_args()
    from common import save

    from digits.predictor import Predictor

    try:
        runs = parse_runs(args.run)
        if not runs:
            raise ValueError("name the models to measure: python benchmarks/stress.py --run cnn-fast=RUN_DIR "
                             "--run best-full=RUN_DIR --run reader=RUN_DIR")
        most = 10_000 if args.split == "test" else round(60_000 * VALIDATION_SPLIT)
        if not 1 <= args.samples <= most:
            raise ValueError(f"--samples {args.samples} is outside the {args.split} digits; pick 1..{most}")
        predictors = {label: Predictor(path) for label, path in runs.items()}  # before the long part
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    missing = [label for label in (args.baseline, args.reader) if label not in runs]
    if missing:
        print(f"no target checked: {' and '.join(missing)} not among the --run labels", file=sys.stderr)
    summary = measure(predictors, args.samples, args.seed, args.conditions, args.baseline, args.reader, args.sheet,
                      args.cache, args.split)
    path = save("stress", summary, args.out)
    print("\n".join(table(summary)))
    print(f"{args.samples} digits x {len(summary['conditions'])} conditions in {summary['seconds']:.0f} s "
          f"(prepare {summary['prepare_ms']:.1f} ms a picture); wrote {path}")


if __name__ == "__main__":
    main()
