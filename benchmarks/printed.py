"""Printed digits: the ten digits and whole numbers set in fonts no training step uses, read as `digits predict`
reads a file (auto mode).

A reader trained on MNIST learns the digits of 500 American writers of 1990; print brings shapes they seldom drew
(a 1 with a flag and no foot, as Roboto and Open Sans set it, reads as a 7). Training prints digits in matplotlib's
bundled fonts only (`digits.synthetic.printed_digits`), so every font here is unseen. Two sets of Debian's font
packages, chosen before any was read:

    choosing   looked at while `printed_digits` was made, and what a recipe is judged by (`--set choosing`)
    held-out   read for final figures only (`--set held-out`), never to choose

Each package weighs the same (a picture draws its package, then one of its files). Per set and model:
    singles   every file's ten digits at two sizes (24 and 64 px), each alone on light paper: read exactly
    numbers   `--numbers` numbers of 2-8 digits (seeded), each in one font at 16-64 px, on paper of random light
              with noise and a little blur, sometimes turned by up to 2 degrees: read exactly

    python benchmarks/printed.py --run shipped=src/digits/shipped/model.onnx [--run NAME=PATH ...] \
        [--set choosing|held-out ...] [--numbers 300] [--seed 1] [--font-root /usr/share/fonts] [--out FILE]

Writes benchmarks/results/printed.json (or --out) with the machine it ran on.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, predictors, save  # noqa: E402
from stress import parse_runs  # noqa: E402

FONT_ROOT = Path("/usr/share/fonts")
SETS = {  # Debian package: where its fonts lie under FONT_ROOT (a glob; .ttf and .otf files are taken)
    "choosing": {"fonts-roboto": "truetype/roboto/**/*", "fonts-open-sans": "truetype/open-sans/*",
                 "fonts-lato": "truetype/lato/*", "fonts-cantarell": "opentype/cantarell/*",
                 "fonts-inconsolata": "truetype/inconsolata/*", "fonts-firacode": "truetype/firacode/*",
                 "fonts-crosextra-carlito": "truetype/crosextra/Carlito*",
                 "fonts-crosextra-caladea": "truetype/crosextra/Caladea*",
                 "fonts-ebgaramond": "opentype/ebgaramond/*", "fonts-linuxlibertine": "opentype/linux-libertine/*",
                 "fonts-comic-neue": "opentype/comic-neue/*", "fonts-courier-prime": "opentype/courier-prime/*"},
    "held-out": {"fonts-croscore": "truetype/croscore/*", "fonts-hack": "truetype/hack/*",
                 "fonts-jetbrains-mono": "truetype/jetbrains-mono/*", "fonts-cabin": "opentype/cabin/*",
                 "fonts-oxygen": "truetype/oxygen/*", "fonts-quicksand": "truetype/quicksand/*",
                 "fonts-sil-andika": "truetype/andika/*", "fonts-sil-charis": "truetype/charis/*",
                 "fonts-go": "fonts-go/*", "fonts-inter": "opentype/inter/*", "fonts-manrope": "truetype/manrope/*",
                 "fonts-b612": "opentype/b612/*", "fonts-mononoki": "truetype/mononoki/*",
                 "fonts-junicode": "opentype/junicode/*"},
}
LEFT_OUT = ("LinBiolinum_K",)  # Linux Biolinum Keyboard draws each character on a key cap: not text
SINGLE_SIZES = (24, 64)  # px, the font's size for the ten digits alone
NUMBER_SIZE = (16, 64)  # px, a number's font size
NUMBER_DIGITS = (2, 8)


def fonts_of(name: str, root: Path = FONT_ROOT) -> dict[str, list[Path]]:
    """{package: its font files} for the packages of set `name` that are installed (a package with no file is left
    out); ValueError naming the packages to install when none is."""
    found = {}
    for package, pattern in SETS[name].items():
        files = sorted(path for path in root.glob(pattern)
                       if path.suffix in (".ttf", ".otf") and path.stem not in LEFT_OUT)
        if files:
            found[package] = files
    if not found:
        raise ValueError(f"no font of the {name} set is installed; run: apt-get install {' '.join(SETS[name])}")
    return found


def printed(text: str, font_path: Path, size: int, rng: np.random.Generator | None = None) -> np.ndarray:
    """`text` set in the font at `size` px, dark on light paper, (H, W) uint8; with `rng`, the paper's light,
    the ink's darkness, noise, a little blur and up to 2 degrees of turn are drawn from it."""
    from PIL import Image, ImageDraw, ImageFilter, ImageFont

    font = ImageFont.truetype(str(font_path), size)
    left, top, right, bottom = font.getbbox(text)
    margin = max(4, size // 2)
    paper, ink = (255, 0) if rng is None else (int(rng.integers(200, 256)), int(rng.integers(0, 90)))
    picture = Image.new("L", (right - left + 2 * margin, bottom - top + 2 * margin), paper)
    ImageDraw.Draw(picture).text((margin - left, margin - top), text, font=font, fill=ink)
    if rng is None:
        return np.asarray(picture)
    if rng.random() < 0.5:
        picture = picture.rotate(rng.uniform(-2, 2), Image.Resampling.BILINEAR, expand=True, fillcolor=paper)
    if rng.random() < 0.5:
        picture = picture.filter(ImageFilter.GaussianBlur(rng.uniform(0.2, 0.6) * size / 32))
    gray = np.asarray(picture, np.float32) + rng.normal(0, rng.uniform(1, 8), picture.size[::-1])
    return np.clip(gray, 0, 255).astype(np.uint8)


def measure(predictor, fonts: dict[str, list[Path]], numbers: int, seed: int) -> dict:
    from digits import reading

    per_digit, misread = {digit: [] for digit in "0123456789"}, Counter()
    for path, size, digit in itertools.product(itertools.chain(*fonts.values()), SINGLE_SIZES, "0123456789"):
        text = reading.read(printed(digit, path, size), "auto", predictor).text
        per_digit[digit].append(text == digit)
        if text != digit:
            misread[f"{digit} -> {text or '(nothing)'}"] += 1
    right = [hit for hits in per_digit.values() for hit in hits]
    exact, examples, packages = [], [], list(fonts)
    for index in range(numbers):
        rng = np.random.default_rng([seed, index])
        files = fonts[packages[int(rng.integers(len(packages)))]]
        path = files[int(rng.integers(len(files)))]
        truth = "".join(str(digit) for digit in rng.integers(0, 10, int(rng.integers(NUMBER_DIGITS[0],
                                                                                     NUMBER_DIGITS[1] + 1))))
        text = reading.read(printed(truth, path, int(rng.integers(*NUMBER_SIZE)), rng), "auto", predictor).text
        exact.append(text == truth)
        if text != truth and len(examples) < 20:
            examples.append({"font": path.name, "truth": truth, "read": text})
    return {"singles": {"pictures": len(right), "read_exactly": float(np.mean(right)),
                        "per_digit": {digit: float(np.mean(hits)) for digit, hits in per_digit.items()},
                        "misread": dict(misread.most_common(15))},
            "numbers": {"pictures": numbers, "read_exactly": float(np.mean(exact)) if exact else None,
                        "misread_examples": examples}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", action="append", required=True, metavar="NAME=PATH",
                        help="a model to read with: a run directory or a model file (repeatable)")
    parser.add_argument("--set", action="append", choices=list(SETS), dest="sets",
                        help="font sets to read (repeatable; default: choosing; held-out is for final figures)")
    parser.add_argument("--numbers", type=int, default=300, help="numbers per set (default: 300)")
    parser.add_argument("--seed", type=int, default=1, help="the numbers' seed (default: 1)")
    parser.add_argument("--font-root", default=str(FONT_ROOT), help=f"where fonts are installed (default: {FONT_ROOT})")
    parser.add_argument("--out", help="results file (default: benchmarks/results/printed.json)")
    args = parser.parse_args()
    if args.numbers < 0:
        parser.error(f"--numbers {args.numbers} is negative; pass 0 or more")
    try:
        runs = parse_runs(args.run)
        fonts = {name: fonts_of(name, Path(args.font_root)) for name in args.sets or ["choosing"]}
    except ValueError as error:
        parser.error(str(error))
    loaded = predictors(parser, runs.values())
    result = {"machine": machine(), "runs": runs, "numbers": args.numbers, "seed": args.seed,
              "single_sizes": list(SINGLE_SIZES), "number_size": list(NUMBER_SIZE), "sets": {}}
    for name, found in fonts.items():
        entry = {"packages": {package: [path.name for path in files] for package, files in found.items()},
                 "missing": [package for package in SETS[name] if package not in found], "models": {}}
        for label, path in runs.items():
            started = time.perf_counter()
            entry["models"][label] = measure(loaded[path], found, args.numbers, args.seed)
            entry["models"][label]["seconds"] = round(time.perf_counter() - started, 1)
            figures = entry["models"][label]
            print(f"{name:9} {label:12} singles {figures['singles']['read_exactly']:.2%} "
                  f"(1s {figures['singles']['per_digit']['1']:.2%})  numbers {figures['numbers']['read_exactly']:.2%}")
        result["sets"][name] = entry
    print(f"wrote {save('printed', result, args.out)}")


if __name__ == "__main__":
    main()
