"""reading, fuzzed (issue 15): a thousand generated pictures that are hard to read, each read in every mode with a
real model; every one gets a Reading, none raises. Its own file (the suite's longest test): pytest-xdist keeps a
file on one process, so the other process runs test_reading.py meanwhile."""

from __future__ import annotations

import numpy as np

from digits import reading

SYMBOLS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789=+-*/#%&@?!<>()[]{}~^_|:;.,'\"$"


def odd_picture(rng: np.random.Generator, fonts: list):
    """A generated picture that is hard to read: symbols and letters in any training font (small, huge, cut off
    at a corner), strips of several glyphs, shapes, thin rules, blank paper or noise; mostly small (fast)."""
    from PIL import Image, ImageDraw, ImageFont

    from helpers import drawn_text

    kind = rng.choice(["glyphs"] * 8 + ["drawn"] * 2 + ["shapes"] * 3 + ["rules", "strip", "blank", "tiny", "large"])
    height, width = (int(side) for side in {"tiny": rng.integers(1, 10, 2), "large": rng.integers(100, 240, 2),
                                             "strip": rng.permutation([rng.integers(8, 24), rng.integers(60, 180)])
                                             }.get(kind, rng.integers(10, 48, 2)))
    if kind == "drawn":  # DejaVu Sans as a phone photographs it, centred or near a corner
        text = "".join(rng.choice(list(SYMBOLS), int(rng.integers(1, 4))))
        picture = drawn_text(text, size=(width, height), font_size=int(rng.integers(4, 2 * max(height, width))))
        if rng.random() < 0.5:
            picture = picture.transform(picture.size, Image.Transform.AFFINE,
                                        (1, 0, width // 3, 0, 1, height // 3), fillcolor=255)
    else:
        paper = int(rng.integers(100, 256))
        ink = int(rng.integers(0, max(1, paper - 20)))
        if rng.random() < 0.25:
            paper, ink = ink, paper  # light ink on a dark ground
        picture = Image.new("L", (width, height), paper)
        pen = ImageDraw.Draw(picture)
        side = min(height, width)
        if kind in ("glyphs", "strip", "tiny", "large"):
            for _ in range(int(rng.integers(1, 3))):
                text = "".join(rng.choice(list(SYMBOLS), int(rng.integers(1, 9 if kind == "strip" else 4))))
                size = int(rng.integers(4, max(5, int(side * 1.3))))
                font = ImageFont.truetype(str(fonts[rng.integers(len(fonts))]), size)
                if rng.random() < 0.3:  # at the top-left corner, maybe cut off
                    x, y = (int(rng.integers(-size // 3, size // 4 + 1)) for _ in range(2))
                else:
                    x, y = int(rng.integers(-size // 2, width)), int(rng.integers(-size // 2, height))
                pen.text((x, y), text, fill=ink, font=font)
        if kind in ("shapes", "large"):
            for _ in range(int(rng.integers(1, 4))):
                xs, ys = np.sort(rng.integers(-5, width + 5, 2)), np.sort(rng.integers(-5, height + 5, 2))
                box, line = [int(xs[0]), int(ys[0]), int(xs[1]), int(ys[1])], int(rng.integers(1, side // 6 + 2))
                fill = ink if rng.random() < 0.3 else None
                shape = rng.choice(["ellipse", "rectangle", "line", "arc", "polygon", "dot"])
                if shape == "ellipse":
                    pen.ellipse(box, outline=ink, width=line, fill=fill)
                elif shape == "rectangle":
                    pen.rectangle(box, outline=ink, width=line, fill=fill)
                elif shape == "line":
                    pen.line(box, fill=ink, width=line)
                elif shape == "arc":
                    pen.arc(box, int(rng.integers(0, 360)), int(rng.integers(0, 360)), fill=ink, width=line)
                elif shape == "polygon":
                    pen.polygon([(int(rng.integers(0, width)), int(rng.integers(0, height))) for _ in range(5)],
                                outline=ink, fill=fill)
                else:
                    pen.point((int(rng.integers(0, width)), int(rng.integers(0, height))), fill=ink)
        if kind == "rules" or rng.random() < 0.1:  # thin rules, whole or in part, across or down
            for _ in range(int(rng.integers(1, 4))):
                at, start, stop = int(rng.integers(0, 10_000)), int(rng.integers(-5, 30)), int(rng.integers(30, 300))
                ends = [(start, at % height), (stop, at % height)] if rng.random() < 0.5 else \
                    [(at % width, start), (at % width, stop)]
                pen.line(ends, fill=ink, width=int(rng.integers(1, 3)))
    array = np.asarray(picture, np.float32) / 255
    noise = float(rng.choice([0.0, 0.0, 0.0, 0.03, 0.1, 0.4] if kind != "blank" else [0.0, 0.01, 0.2, 1.0]))
    if noise:
        array = np.clip(array + rng.normal(0, noise, array.shape), 0, 1).astype(np.float32)
    return str(kind), array


def test_thousands_of_odd_pictures_never_raise(tiny_run):
    """Fuzzing the reading path: 1,000 generated pictures (symbols, letters, shapes, rules, strips, corners, tiny
    and large, blank and noise) each read in every mode with a real model; every one gets a Reading, none raises."""
    from digits import synthetic
    from digits.predictor import Predictor

    predictor = Predictor(tiny_run / "model.onnx")
    fonts = synthetic.training_fonts()
    rng = np.random.default_rng(15)
    failures, kinds = [], {}
    for index in range(1000):
        kind, picture = odd_picture(rng, fonts)
        for mode in reading.MODES:
            try:
                found = reading.read(picture, mode=mode, model=predictor)
            except Exception as error:  # noqa: BLE001 - every failure is collected, then reported
                failures.append(f"picture {index} ({kind}, {picture.shape}, {mode}): {type(error).__name__}: {error}")
                continue
            kinds[found.kind] = kinds.get(found.kind, 0) + 1
    assert not failures, f"{len(failures)} reads raised, first: " + "; ".join(failures[:5])
    assert all(kinds.get(kind, 0) >= 10 for kind in reading.KINDS), kinds  # the pictures reach every kind
