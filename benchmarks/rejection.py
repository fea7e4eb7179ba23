"""Does the reader know what it doesn't know? Real digits against non-digits, at the stored operating point.

In-distribution: the MNIST test digits, and the same digits rendered as photos (benchmarks/real_images.py's
renderer) read through `digits.images`. Non-digits, each family through the same preparation a picture takes:

    fashion-mnist     Fashion-MNIST test images (Debian's dataset-fashion-mnist): never seen in training
    letters-unseen    letters (not the digit look-alikes) in fonts no training step used (Liberation, FreeFont,
                      URW... whatever of them is installed): never seen in training
    script-unseen     Greek and Cyrillic letters (not the digit look-alikes) in those fonts: a script no
                      training step drew
    scribbles, shapes, symbols, silhouettes   generated training families (digits.synthetic), unseen seeds
    look-alikes       O o I l S s Z z B G b g q D T t J j in the unseen fonts: reported, not counted against targets

Per family: AUROC of the model's digit score (`Predictor.predict_scores`: the calibrated chance of a digit
from the energy, or the top probability for a model fitted before it; digits should score higher), the share
refused at the model's stored threshold (a picture with no ink counts as refused), and the share of real digits
refused; accuracy on all digits and on accepted digits; ECE (15 bins) on the MNIST test set and the rendered photos.
The first --auto pictures of each family and of the photos are also read as `digits predict` reads a file
(`reading.read`, auto mode, where one shape may be cut into a number): the share answered "not a digit" (or no
ink), and the share read as a number with no piece refused. The scores above see each picture as one digit.
Every recipe given is measured side by side (default: configs/cnn-995.json, the max-softmax baseline, and
configs/cnn-995-oe.json, the same with Outlier Exposure). Writes benchmarks/results/rejection.json.
Usage: python benchmarks/rejection.py [--config configs/cnn-995-oe.json ...] [--run RUN ...] [--samples 2000]
       [--auto 500]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

ROOT = Path(__file__).resolve().parents[1]
UNSEEN_FONT_DIRS = ("/usr/share/fonts/truetype/liberation", "/usr/share/fonts/truetype/liberation2",
                    "/usr/share/fonts/truetype/freefont", "/usr/share/fonts/opentype/urw-base35",
                    "/usr/share/fonts/truetype/noto", "/usr/share/fonts/truetype/ubuntu")
TARGETS = {"refused_per_family": 0.90, "refused_fashion_mnist": 0.98, "mnist_refused": 0.01, "photos_refused": 0.02,
           "auroc": 0.99, "ece": 0.01}
SEED = 20_000  # far from every training seed
UNSEEN_SCRIPT = "ЖЩФЯДЛПЮШЦЫЭЙКМНХжщфяшцыэйкмнхΩΨΦΣΠΛΘΞΓΔλπψφωξ"  # Greek, Cyrillic; no 3-, 4-, 6-, 0-like letters


def unseen_fonts() -> list[Path]:
    fonts = [path for directory in UNSEEN_FONT_DIRS for path in sorted(Path(directory).glob("*.[ot]tf"))]
    return fonts


def prepared_inputs(pictures, soft_above: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Pictures through the reading path's preparation (`soft_above`: a model's, `Predictor.soft_above`): (N, 28, 28)
    inputs and whether each has ink."""
    from digits import images

    found = [images.prepare(images.to_gray(picture), soft_above) for picture in pictures]
    return np.stack([item.image for item in found]), np.array([item.ink_found for item in found])


def families(samples: int) -> tuple[dict, dict, list[str]]:
    """name -> its pictures for each non-digit family, the look-alikes, and what is missing."""
    from digits import data, synthetic

    found, missing = {}, []
    try:
        fashion = data.load_dataset("fashion-mnist", allow_download=False).x_test[:samples]
        found["fashion-mnist"] = list(fashion)
    except ValueError as error:
        missing.append(f"fashion-mnist ({str(error).splitlines()[0][:120]}; apt-get install dataset-fashion-mnist)")
    fonts = unseen_fonts()
    trained = {path.name for path in synthetic.training_fonts()}
    fonts = [path for path in fonts if path.name not in trained]
    lookalikes = {}
    if fonts:
        letters = "".join(letter for letter in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                          if letter not in synthetic.LOOKALIKES)
        found["letters-unseen"] = list(synthetic.pictures("letters", samples, SEED, fonts=fonts, letters=letters))
        lookalikes["look-alikes"] = list(synthetic.pictures("letters", samples // 2, SEED + 1, fonts=fonts,
                                                            letters=synthetic.LOOKALIKES))
        found["script-unseen"] = list(synthetic.pictures("letters", samples, SEED + 9, fonts=fonts,
                                                         letters=UNSEEN_SCRIPT))
    else:
        missing.append("letters in unseen fonts (apt-get install fonts-liberation fonts-freefont-ttf)")
    for offset, family in enumerate(("scribbles", "shapes", "symbols", "silhouettes"), 2):
        found[family] = list(synthetic.pictures(family, samples, SEED + offset))
    return found, lookalikes, missing


def refused_in_auto_mode(predictor, pictures) -> dict:
    """Pictures read as `digits predict` reads a file (auto mode: a shape may be cut into a number): the share
    answered "not a digit" (or no ink), and the share read as a number of several digits with none refused."""
    from digits import reading

    found = [reading.read(picture, "auto", predictor) for picture in pictures]
    return {"auto_read": len(found),
            "refused_auto": float(np.mean([item.kind in ("not_a_digit", "no_ink") for item in found])),
            "numbers_auto": float(np.mean([item.kind == "number" and not any(digit.not_a_digit for digit in item.digits)
                                           for item in found]))}


def measure(predictor, digits_in: dict, non_digits: dict, lookalikes: dict) -> dict:
    from digits import calibration

    threshold = predictor.reject_below
    result = {"temperature": predictor.temperature, "score": predictor.score, "reject_below": threshold,
              "energy_below": predictor.energy_below, "digits": {}, "non_digits": {}, "lookalikes": {}}
    scores = {}
    for name, (inputs, labels, ink, pictures) in digits_in.items():
        probabilities, score = predictor.predict_scores(inputs)
        score = np.where(ink, score, 0.0)
        accepted = score >= threshold
        right = probabilities.argmax(1) == labels
        scores[name] = score
        result["digits"][name] = {"images": len(labels), "refused": float(1 - accepted.mean()),
                                  "accuracy": float(right.mean()),
                                  "accuracy_accepted": float(right[accepted].mean()) if accepted.any() else None,
                                  "ece": calibration.expected_calibration_error(probabilities, labels),
                                  **(refused_in_auto_mode(predictor, pictures) if len(pictures) else {})}
    for group, key in ((non_digits, "non_digits"), (lookalikes, "lookalikes")):
        for name, (inputs, ink, pictures) in group.items():
            score = np.where(ink, predictor.predict_scores(inputs)[1], 0.0)
            result[key][name] = {"images": len(score), "refused": float((score < threshold).mean()),
                                 "auroc_vs_mnist": calibration.auroc(scores["mnist-test"], score),
                                 "auroc_vs_photos": calibration.auroc(scores["photos"], score),
                                 **(refused_in_auto_mode(predictor, pictures) if len(pictures) else {})}
    return result


def verdict(result: dict) -> dict:
    """Which targets a recipe meets (look-alikes excluded)."""
    refused = {name: row["refused"] for name, row in result["non_digits"].items()}
    return {"families_refused": all(share >= (TARGETS["refused_fashion_mnist"] if name == "fashion-mnist"
                                              else TARGETS["refused_per_family"]) for name, share in refused.items()),
            "auroc": all(min(row["auroc_vs_mnist"], row["auroc_vs_photos"]) >= TARGETS["auroc"]
                         for row in result["non_digits"].values()),
            "mnist_refused": result["digits"]["mnist-test"]["refused"] <= TARGETS["mnist_refused"],
            "photos_refused": result["digits"]["photos"]["refused"] <= TARGETS["photos_refused"],
            "ece": result["digits"]["mnist-test"]["ece"] <= TARGETS["ece"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", action="append", help="recipe to train and measure (repeatable; default: "
                                                          "configs/cnn-995.json and configs/cnn-995-oe.json)")
    parser.add_argument("--run", action="append", help="an already trained run to measure (repeatable)")
    parser.add_argument("--samples", type=int, default=2000, help="images per family and rendered photos (2000)")
    parser.add_argument("--auto", type=int, default=500, help="pictures per family also read whole in auto mode, "
                                                               "as `digits predict` reads a file (default: 500)")
    parser.add_argument("--out", help="where to write the JSON (default: benchmarks/results/rejection.json)")
    args = parser.parse_args()

    from common import machine, predictors, repo_relative, save
    from real_images import render_digit
    from tqdm import tqdm

    from digits import config, data, train
    from digits.predictor import Predictor

    given = predictors(parser, args.run or [])
    started = time.perf_counter()
    print("rendering the pictures ...", file=sys.stderr)
    mnist = data.load_dataset("mnist")
    photos = [render_digit(mnist.x_test[index], np.random.default_rng([SEED, index]))
              for index in tqdm(range(args.samples), desc="photos", file=sys.stderr)]
    pictures, lookalike_pictures, missing = families(args.samples)
    prepared_for = {}

    def inputs(soft_above):
        """(digits, non-digits, look-alikes) as a model reading soft pictures above `soft_above` is shown them:
        each picture prepared, with its ink found, and the first --auto pictures themselves."""
        if soft_above not in prepared_for:
            photo_inputs, photo_ink = prepared_inputs(photos, soft_above)
            prepared_for[soft_above] = (
                {"mnist-test": (mnist.x_test, mnist.y_test, np.ones(len(mnist.y_test), bool), []),
                 "photos": (photo_inputs, mnist.y_test[:args.samples], photo_ink, photos[:args.auto])},
                *({name: (*prepared_inputs(found, soft_above), found[:args.auto]) for name, found in group.items()}
                  for group in (pictures, lookalike_pictures)))
        return prepared_for[soft_above]

    configs = args.config or ([] if args.run else ["configs/cnn-995.json", "configs/cnn-995-oe.json"])
    recipes = {}
    with tempfile.TemporaryDirectory() as scratch:
        models = [(repo_relative(str(Path(run).resolve())), predictor) for run, predictor in given.items()]
        for recipe in configs:
            path = Path(recipe) if Path(recipe).is_file() else ROOT / recipe
            print(f"training {recipe} ...", file=sys.stderr)
            models.append((recipe, Predictor(train.train(config.load(path), out=Path(scratch) / path.stem,
                                                         verbose=0).run_dir)))
        for name, predictor in models:
            result = measure(predictor, *inputs(predictor.soft_above))
            result["soft_above"] = predictor.soft_above
            result["test_accuracy"] = predictor.info.metrics.get("test_accuracy")
            result["met"] = verdict(result)
            recipes[name] = result
    summary = {"benchmark": "rejection", "recipes": recipes, "samples": args.samples, "auto": args.auto,
               "targets": TARGETS, "missing": missing, "seconds": time.perf_counter() - started,
               "command": " ".join(["python", "benchmarks/rejection.py", *sys.argv[1:]]), "machine": machine()}
    path = save("rejection", summary, args.out)
    for name, result in recipes.items():
        print(f"\n{name}: threshold {result['reject_below']:.3f}, temperature {result['temperature']:.2f}")
        for family, row in result["digits"].items():
            print(f"  {family:16} refused {row['refused']:7.2%}  accuracy {row['accuracy']:.4f}  ECE {row['ece']:.4f}")
        for group in ("non_digits", "lookalikes"):
            for family, row in result[group].items():
                auto = f"  auto mode refused {row['refused_auto']:7.2%}" if "refused_auto" in row else ""
                print(f"  {family:16} refused {row['refused']:7.2%}  AUROC {row['auroc_vs_mnist']:.4f} "
                      f"(photos {row['auroc_vs_photos']:.4f}){auto}")
        print(f"  targets met: {result['met']}")
    for line in missing:
        print(f"missing: {line}", file=sys.stderr)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
