"""Non-digits we draw ourselves, for Outlier Exposure: a model learns a "not a digit" answer from them.

Six families, none from another real dataset: letters (A-Z a-z minus LOOKALIKES, in matplotlib's
bundled fonts), symbols (# $ % & @ ... and math/arrow glyphs), shapes (triangles, squares, stars,
crosses, arrows, grids, blobs, spirals, hearts; never a plain circle, which reads as 0, nor one
straight stroke, which reads as 1), scribbles (3-8 crossing curves, zigzags and loop coils),
silhouettes (filled objects with a textured surface, as a photo of a thing shows it) and scripts
(letters of other scripts: SCRIPTS). And pairs of digits: `pairs` puts two given digits side by
side, touching or close, as one picture (two digits are not one digit).

    pictures(family, count, seed) -> raw (H, W) float32 gray pictures 0..1, as a phone or scanner
        sees them: ink of random darkness on light paper (sometimes light on dark), 40..200 px,
        small rotation, blur and noise. Picture i depends only on (seed, family, i).
    pairs(digits, count, seed) -> (count, 28, 28) uint8: two of `digits` at a time, prepared as one.
    non_digits(count, seed) -> (count, 28, 28) uint8: the families mixed evenly and shuffled, each
        picture through `images.prepare` (what a model sees); one without ink, or whose prepared ink
        is a thin upright bar (`reads_as_one`: an 'i' that lost its dot), is replaced by another.
        Cached in the user cache as digits/synthetic/<sha256>.npz; the key covers the arguments,
        GENERATOR_VERSION and the source of this module and of `digits.images`, so a change to
        either draws afresh.

images.prepare (about 5 ms a picture; drawing one takes about 1 ms) is most of the cost: 12,000 take
about 75 CPU-seconds, so large requests use one worker process per core (spawned, never forked: the
caller may hold TensorFlow's threads). Results do not depend on the number of workers.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import math
import os
import sys
import zipfile
import zlib
from concurrent.futures import as_completed
from concurrent.futures.process import BrokenProcessPool
from functools import lru_cache
from pathlib import Path
from typing import Callable

import numpy as np
import PIL
from PIL import Image, ImageDraw, ImageFont
from scipy import ndimage

from . import files, images
from .workers import cores, pool as worker_pool

GENERATOR_VERSION = 2  # bump when the pictures change on purpose (the source hash catches the rest)
FAMILIES = ("letters", "symbols", "shapes", "scribbles", "silhouettes", "scripts")  # what pictures() draws
# Letters of other scripts that the training fonts draw, for the "scripts" family (a script is chosen evenly,
# then a letter). Never Greek or Cyrillic: benchmarks/rejection.py keeps those unseen. Each letter that the
# shipped reader of 2026-12-02 accepted as a digit in half or more of 16 renders was left out as a look-alike
# (Hebrew vav and samekh, Armenian oh, Arabic alif, ...): scripts/choose_script_glyphs.py prints the choice.
SCRIPTS = {
    "Armenian": "ԱԲԵԷԸԹԺԻԼԽՃՄՈՌՍՐՒՓՔՖաբդեէըթժիխհձղճմնոջռստրւքֆև",
    "Hebrew": "אהחםמנעץצקשת",
    "Arabic": "خذسشصضعغكلم",
    "Georgian": "ბდთლმოქღშჩძწჲჶჸჺ",
    "Tifinagh": "ⴱⴲⴳⴴⴷⴸⴹⴺⴼⴽⴾⴿⵃⵄⵅⵆⵇⵈⵉⵊⵋⵌⵍⵎⵐⵒⵕⵗⵘⵛⵜⵝⵞⵟⵠⵡⵣⵤⵥ",
    "Lao": "ກຄຍຕທນບປຜຝພຟມຢສຫ",
    "Canadian": "ᐁᐂᐃᐄᐅᐆᐇᐉᐊᐋᐌᐍᐎᐏᐐᐑᐒᐓᐔᐕᐖᐗᐘᐙᐚᐛᐝᐞᐡᐢᐥᐦᐧᐨᐩᐫᐬᐭᐮᐯᐰᐱᐲᐴᐵᐸᐹᐺᐻᐼᐽᐾᐿᑀᑁᑂᑃᑄᑅᑆᑇᑉᑌᑍᑎᑏᑔᑕᑖᑗᑘᑙᑚᑛᑜᑡᑢᑣᑤᑥᑦᑧᑨᑩ",
    "Ogham": "ᚂᚃᚄᚅᚆᚇᚈᚉᚊᚋᚌᚍᚎᚏᚐᚑᚒᚓᚔᚕᚖᚗᚘᚙᚚ",
    "N'Ko": "ߌߍߎߏߑߒߓߖߘߙߚߛߜߝߡߥ",
}
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
LOOKALIKES = "OoIlSsZzBGbgqDTtJj"  # letters that honestly look like digits: never used as non-digits
SYMBOLS = ("#$%&@*+=<>?~^{}"  # never | / \ ( ) [ ] ! (strokes, a 1) nor circled or digit-like glyphs
           "←→↔⇐⇒⇔⇄∞∑∏√±×÷≠≈≤≥≡∈∉∩∪∀∇∆∠⊥¬∧∨★☆♠♣♥♦✓✗⌘")
FONT_FILES = ("DejaVuSans", "DejaVuSans-Bold", "DejaVuSans-Oblique", "DejaVuSans-BoldOblique",
              "DejaVuSerif", "DejaVuSerif-Bold", "DejaVuSerif-Italic", "DejaVuSerif-BoldItalic",
              "DejaVuSansMono", "DejaVuSansMono-Bold", "DejaVuSansMono-Oblique", "DejaVuSansMono-BoldOblique",
              "STIXGeneral", "STIXGeneralBol", "STIXGeneralItalic", "STIXGeneralBolIta",
              "cmr10", "cmb10", "cmss10", "cmti10", "cmtt10", "cmmi10")
SIDE = (40, 200)  # picture height, px; most are drawn under 80 px, where images.prepare is cheapest
LIGHT_ON_DARK = 0.15  # share of pictures with light ink on a dark ground (a blackboard, a screen)
CHUNK = 200  # pictures per task of non_digits; part of the seeding, so changing it changes the pictures
PARALLEL_FROM = 2000  # non_digits uses worker processes from this many pictures on (spawning costs ~1 s)
ONE_LIKE = (0.3, 40.0)  # prepared ink this thin (minor/major axis) and this near upright (degrees) reads as a 1:
# 96% of MNIST's test 1s, under 2.1% of any other digit; such non-digits ('i' without its dot, '}') are redrawn
GLYPH_MIN = 28  # px: letters and symbols are never drawn smaller than this (MNIST's digits are 20 px)
BOLD_COVERAGE = 0.5  # glyphs are drawn bolder only while ink covers at most this share of their box
SUPERSAMPLE = 2  # shapes and scribbles are drawn this many times larger, then averaged down (anti-aliasing)


# ---------------------------------------------------------------- fonts and alphabets


def training_fonts() -> list[Path]:
    """matplotlib's bundled TTFs (DejaVu Sans/Serif/Mono and their bold/italic variants, STIX, Computer Modern):
    installed with the training extra on every machine, so training is reproducible anywhere."""
    spec = importlib.util.find_spec("matplotlib")  # finds the package without importing it
    if spec is None or not spec.submodule_search_locations:
        raise ValueError("the training fonts are matplotlib's; install the training extra "
                         "(pip install 'digits[cpu]') or pass fonts=[...] yourself")
    folder = Path(list(spec.submodule_search_locations)[0]) / "mpl-data" / "fonts" / "ttf"
    found = [folder / f"{name}.ttf" for name in FONT_FILES if (folder / f"{name}.ttf").is_file()]
    if not found:
        raise ValueError(f"no training fonts in {folder}; reinstall matplotlib or pass fonts=[...]")
    return found


def _faithful(font: Path) -> bool:
    """Computer Modern maps ASCII punctuation to TeX's glyphs ('<' draws an inverted '!'): letters only."""
    return not Path(font).name.startswith("cm")


@lru_cache(maxsize=512)
def _font(path: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size)


@lru_cache(maxsize=64)
def _glyphs(chars: str, fonts: tuple[str, ...]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """Each character with the fonts that really draw it (not their 'missing glyph' box, not nothing)."""
    table = []
    for char in chars:
        having = []
        for path in fonts:
            font = _font(path, 40)
            missing, drawn = font.getmask("\uffff"), font.getmask(char)
            if drawn.getbbox() and (drawn.size != missing.size or bytes(drawn) != bytes(missing)):
                having.append(path)
        if having:
            table.append((char, tuple(having)))
    return tuple(table)


def alphabet(letters: str | None = None) -> str:
    """The letters drawn: A-Z a-z without LOOKALIKES (what training sees), or exactly `letters`, each once
    (a benchmark may ask for the lookalikes themselves)."""
    if letters is None:
        return "".join(char for char in LETTERS if char not in LOOKALIKES)
    wrong = sorted({char for char in letters if not char.isalpha()})
    if wrong or not letters:
        raise ValueError(f"letters={letters!r} holds {''.join(wrong)!r}, which are not letters; pass letters only")
    return "".join(dict.fromkeys(letters))


# ---------------------------------------------------------------- drawing ink (coverage 0..1, ink = 1)


def _side(rng: np.random.Generator) -> int:
    """A picture's height: mostly 40..80 px, where images.prepare is fastest (it costs twice as much at
    150 px), a sixth anywhere in SIDE."""
    low, high = (SIDE[0], 80) if rng.random() < 0.85 else SIDE
    return int(round(math.exp(rng.uniform(math.log(low), math.log(high)))))


def _glyph(rng: np.random.Generator, table, height: int, width: int) -> np.ndarray:
    char, having = table[rng.integers(len(table))]
    path = having[rng.integers(len(having))]
    # the glyph's height in the picture; at least GLYPH_MIN px, or blur fills small counters ('e' into a blot)
    target = max(rng.uniform(0.45, 0.8) * height, min(GLYPH_MIN, 0.85 * height))
    left, top, right, bottom = _font(path, 64).getbbox(char)
    # drawn near its final size (enlarging a small drawing blurs it; shrinking a big one loses hairlines)
    fit = min(target / max(bottom - top, 1), 0.85 * width / max(right - left, 1))
    font = _font(path, int(np.clip(round(64 * fit / 4) * 4, 8, 400)))
    layer = _text(char, font, 0)
    bold = int(rng.integers(0, font.size // 14 + 1))  # thicker strokes, as a marker would draw them,
    if bold:  # while ink stays under half the glyph's box: past that, gaps close ('m', 'e', '=' into blots)
        thick = _text(char, font, bold)
        if np.mean(np.asarray(thick.crop(thick.getbbox())) >= 128) <= BOLD_COVERAGE:
            layer = thick
    layer = layer.rotate(rng.uniform(-12, 12), Image.Resampling.BILINEAR, expand=True)
    layer = layer.crop(layer.getbbox())
    scale = min(target, layer.height) / layer.height * np.array([rng.uniform(0.85, 1.15), 1.0])  # narrower, wider
    scale *= min(1.0, 0.9 * width / (layer.width * scale[0]), 0.9 * height / (layer.height * scale[1]))
    size = (max(2, round(layer.width * scale[0])), max(2, round(layer.height * scale[1])))
    layer = np.asarray(layer.resize(size, Image.Resampling.BILINEAR), np.float32) / 255
    ink = np.zeros((height, width), np.float32)
    row, col = rng.integers(0, height - size[1] + 1), rng.integers(0, width - size[0] + 1)
    ink[row:row + size[1], col:col + size[0]] = layer
    return ink


def _text(char: str, font: ImageFont.FreeTypeFont, bold: int) -> Image.Image:
    left, top, right, bottom = font.getbbox(char, stroke_width=bold)
    layer = Image.new("L", (right - left + 4, bottom - top + 4), 0)
    ImageDraw.Draw(layer).text((2 - left, 2 - top), char, font=font, fill=255, stroke_width=bold, stroke_fill=255)
    return layer


def _polygon(corners: int, rng: np.random.Generator, radii=(1.0,)) -> np.ndarray:
    angles = rng.uniform(0, 2 * math.pi) + np.arange(corners) * 2 * math.pi / corners
    radius = np.resize(np.asarray(radii), corners)
    return np.stack([radius * np.cos(angles), radius * np.sin(angles)], 1)


def _rotated(points: np.ndarray, degrees: float) -> np.ndarray:
    angle = math.radians(degrees)
    return points @ np.array([[math.cos(angle), math.sin(angle)], [-math.sin(angle), math.cos(angle)]])


def _chaikin(points: np.ndarray, rounds: int = 3) -> np.ndarray:
    """A smooth open curve through the corners' neighbourhood (Chaikin's corner cutting)."""
    for _ in range(rounds):
        near, far = 0.75 * points[:-1] + 0.25 * points[1:], 0.25 * points[:-1] + 0.75 * points[1:]
        points = np.concatenate([points[:1], np.stack([near, far], 1).reshape(-1, 2), points[-1:]])
    return points


def _shape(rng: np.random.Generator) -> tuple[list, float]:
    """One shape as strokes in unit coordinates: [("line"|"loop"|"fill"|"hatch", points, ...)], pen scale."""
    kind = rng.choice(["triangle", "square", "rectangle", "star", "cross", "plus", "arrow", "grid", "hatched",
                       "blob", "spiral", "heart"])
    filled = rng.random() < 0.3 and kind != "rectangle"  # images.prepare thins a filled rectangle into a dash
    pen = 1.0
    if kind == "triangle":
        while True:  # no sliver triangles: a sliver is a stroke, and a stroke is a 1
            corners = rng.uniform(-1, 1, (3, 2))
            sides = np.roll(corners, -1, 0) - corners
            cosines = [-(sides[i] @ sides[i - 1]) / (np.linalg.norm(sides[i]) * np.linalg.norm(sides[i - 1]) + 1e-9)
                       for i in range(3)]
            if max(cosines) < math.cos(math.radians(28)):
                break
        parts = [("fill" if filled else "loop", corners)]
    elif kind in ("square", "rectangle"):
        height = 1.0 if kind == "square" else rng.uniform(0.45, 0.8)  # lying down: tall reads as 0, flat as a dash
        corners = np.array([[-1, -height], [1, -height], [1, height], [-1, height]])
        parts = [("fill" if filled else "loop", _rotated(corners, rng.uniform(0, 90) if kind == "square"
                                                         else rng.uniform(-15, 15)))]
    elif kind == "star":
        points = int(rng.integers(5, 9))
        if rng.random() < 0.25:  # a pentagram, drawn in one line
            corners = _polygon(5, rng)
            parts = [("loop", corners[[0, 2, 4, 1, 3]])]
        else:
            outline = _polygon(2 * points, rng, (1.0, rng.uniform(0.35, 0.55)))
            parts = [("fill" if rng.random() < 0.4 else "loop", outline)]
    elif kind == "cross":  # an X: two strokes crossing at 50..130 degrees
        tilt, spread = rng.uniform(-20, 20), rng.uniform(25, 65)
        parts = [("line", _rotated(np.array([[-1, 0], [1, 0]]) * rng.uniform(0.8, 1.2), 90 + tilt + sign * spread))
                 for sign in (-1, 1)]
        pen = 1.3
    elif kind == "plus":
        arms = rng.uniform(0.75, 1.0, 2)
        strokes = [np.array([[-arms[0], 0], [arms[0], 0]]), np.array([[0, -arms[1]], [0, arms[1]]])]
        parts = [("line", _rotated(stroke, rng.uniform(-15, 15))) for stroke in strokes]
        pen = 1.3
    elif kind == "arrow":  # near horizontal: a slanted arrow with its head on top reads as a 7
        length, width = rng.uniform(0.35, 0.6), rng.uniform(0.3, 0.5)  # a big head: a small one is lost at 28x28
        head = np.array([[1 - length, -width], [1, 0], [1 - length, width]])
        tail = -rng.uniform(0.3, 1.0)
        double = rng.random() < 0.25
        if rng.random() < 0.2:  # a block arrow, filled
            shaft = rng.uniform(0.1, 0.2)
            outline = np.array([[tail, -shaft], [1 - length, -shaft], *head[:1], [1, 0], head[2], [1 - length, shaft],
                                [tail, shaft]])
            parts = [("fill", outline)]
        else:
            parts = [("line", np.array([[tail, 0], [1, 0]])), ("fill" if filled else "line", head)]
            if double:
                back = np.array([[tail + length, -width], [tail, 0], [tail + length, width]])
                parts.append(("fill" if filled else "line", back))
        angle = rng.uniform(-15, 15) + (180 if rng.random() < 0.5 else 0)
        parts = [(part, _rotated(points, angle)) for part, points in parts]
        pen = 1.2
    elif kind == "grid":  # a # or a tic-tac-toe board, at most 4 lines each way so the cells stay open
        across, down = int(rng.integers(2, 5)), int(rng.integers(2, 5))
        parts = [("line", np.array([[-1, y], [1, y]]) + rng.normal(0, 0.04, (2, 2)))
                 for y in np.linspace(-0.7, 0.7, across)]
        parts += [("line", np.array([[x, -1], [x, 1]]) + rng.normal(0, 0.04, (2, 2)))
                  for x in np.linspace(-0.7, 0.7, down)]
        parts = [(part, _rotated(points, rng.uniform(-12, 12))) for part, points in parts]
    elif kind == "hatched":  # a square or triangle filled with parallel lines (alone they read as 1s) or crossed ones
        outline = _polygon(int(rng.choice([3, 4])), rng)
        crossed = rng.random() < 0.4
        angles = [rng.uniform(0, 180)] + ([rng.uniform(0, 180)] if crossed else [])
        parts = [("hatch", outline, angles, int(rng.integers(3, 6)))]
        if not crossed or rng.random() < 0.5:
            parts.append(("loop", outline))
    elif kind == "blob":  # a lumpy filled blob: lobes of order 2..5, never a smooth ellipse
        angles = np.linspace(0, 2 * math.pi, 90, endpoint=False)
        radius = np.ones_like(angles)
        for order, amplitude in zip(range(2, 6), rng.dirichlet(np.ones(4)) * rng.uniform(0.35, 0.6)):
            radius += amplitude * np.cos(order * angles + rng.uniform(0, 2 * math.pi))
        radius = np.maximum(radius, 0.25)
        parts = [("fill", np.stack([radius * np.cos(angles), radius * np.sin(angles)], 1))]
    elif kind == "spiral":  # 2..2.7 turns: fewer reads as a 6 or a 0, more closes up at 28x28
        turns = rng.uniform(2.0, 2.7)
        if rng.random() < 0.3:  # a square spiral
            steps = int(turns * 4)
            corners = [(k + 1) / steps * np.array([[1, 0], [0, 1], [-1, 0], [0, -1]][k % 4]) for k in range(steps)]
            points = np.cumsum(np.array(corners), 0)
        else:
            angle = np.linspace(0, 2 * math.pi * turns, int(60 * turns))
            points = np.stack([angle * np.cos(angle), angle * np.sin(angle)], 1)
        parts = [("line", points * [1 if rng.random() < 0.5 else -1, 1])]
        pen = 0.8
    else:  # a heart
        angle = np.linspace(0, 2 * math.pi, 80, endpoint=False)
        top = 13 * np.cos(angle) - 5 * np.cos(2 * angle) - 2 * np.cos(3 * angle) - np.cos(4 * angle)
        points = np.stack([16 * np.sin(angle) ** 3, -top], 1)
        parts = [("fill" if rng.random() < 0.5 else "loop", _rotated(points, rng.uniform(-15, 15)))]
    return parts, pen


def _scribble(rng: np.random.Generator) -> tuple[list, float]:
    """3..8 strokes of one pen, each through the middle so that they cross into one tangle (apart, one of
    them could be a digit): smooth curves, zigzags and coils of loops. Few strokes are likelier, as
    many merge into a blot at 28x28."""
    parts, centre, turn = [], rng.uniform(-0.25, 0.25, 2), rng.uniform(0, math.pi)
    strokes = int(rng.choice(np.arange(3, 9), p=[0.3, 0.25, 0.18, 0.12, 0.09, 0.06]))
    for _ in range(strokes):
        kind = rng.choice(["curve", "zigzag", "loops"], p=[0.45, 0.3, 0.25])
        middle = centre + rng.uniform(-0.1, 0.1, 2)
        angle = turn + len(parts) * math.pi / strokes + rng.uniform(-0.2, 0.2)  # directions fanned out: they cross
        reach = rng.uniform(0.6, 1.0) * np.array([math.cos(angle), math.sin(angle)])
        start, end = middle - reach, middle + reach
        if kind == "curve":
            bends = [(start + middle) / 2, (middle + end) / 2] + rng.uniform(-0.4, 0.4, (2, 2))
            points = _chaikin(np.array([start, bends[0], middle, bends[1], end]))
        elif kind == "zigzag":
            teeth = int(rng.integers(3, 6))
            along = start + np.linspace(0, 1, teeth + 1)[:, None] * (end - start)
            normal = np.array([-(end - start)[1], (end - start)[0]]) / (np.linalg.norm(end - start) + 1e-9)
            points = along + normal * rng.uniform(0.15, 0.4) * np.where(np.arange(teeth + 1) % 2, 1, -1)[:, None]
        else:  # near horizontal: loops stacked upright read as an 8
            angle = rng.uniform(-0.5, 0.5)
            reach = np.linalg.norm(reach) * np.array([math.cos(angle), math.sin(angle)])
            start, end = middle - reach, middle + reach
            loops = int(rng.integers(3, 6))
            radius = rng.uniform(0.5, 0.8) * np.linalg.norm(end - start) / loops
            fraction = np.linspace(0, 1, 40 * loops)
            phase = 2 * math.pi * loops * fraction + rng.uniform(0, 2 * math.pi)
            points = start + fraction[:, None] * (end - start) + radius * np.stack([np.cos(phase), np.sin(phase)], 1)
        parts.append(("line", points))
    return parts, 0.7


def _draw(parts: list, pen: float, rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Strokes in unit coordinates -> ink coverage (height, width), fitted into the picture with a margin."""
    everything = np.concatenate([part[1] for part in parts])
    low, high = everything.min(0), everything.max(0)
    size = rng.uniform(0.5, 0.8) * min(height, width)  # the shape's larger side, px
    scale = size / max(high - low) * np.array([rng.uniform(0.85, 1.15), 1.0])
    scale *= min(1.0, 0.85 * width / (scale[0] * (high - low)[0]), 0.85 * height / (scale[1] * (high - low)[1]))
    extent = (high - low) * scale
    offset = np.array([rng.uniform(0.07 * width, width - extent[0] - 0.07 * width),
                       rng.uniform(0.07 * height, height - extent[1] - 0.07 * height)])
    stroke = max(1.5, pen * rng.uniform(0.04, 0.1) * size) * SUPERSAMPLE  # pen width, supersampled px
    canvas = Image.new("L", (width * SUPERSAMPLE, height * SUPERSAMPLE), 0)
    draw = ImageDraw.Draw(canvas)
    for kind, points, *details in parts:
        xy = [tuple(point) for point in ((points - low) * scale + offset) * SUPERSAMPLE]
        if kind == "fill":
            draw.polygon(xy, fill=255)
        elif kind == "hatch":  # parallel lines over the outline's box, kept inside the outline
            angles, lines = details
            inside = Image.new("L", canvas.size, 0)
            ImageDraw.Draw(inside).polygon(xy, fill=255)
            hatch = Image.new("L", canvas.size, 0)
            centre, reach = np.mean(xy, 0), np.ptp(np.array(xy), 0).max()
            for angle in angles:
                along = np.array([math.cos(math.radians(angle)), math.sin(math.radians(angle))])
                across = np.array([-along[1], along[0]])
                for shift in np.linspace(-0.4, 0.4, lines) * reach:
                    ends = [tuple(centre + across * shift + sign * reach * along) for sign in (-1, 1)]
                    ImageDraw.Draw(hatch).line(ends, fill=255, width=round(stroke))
            canvas.paste(hatch, (0, 0), inside)
        else:
            if kind == "loop":
                xy = xy + xy[:2]
            # round joints where corners are sharp; dense curves need none (PIL draws each one as a pie slice)
            draw.line(xy, fill=255, width=round(stroke), joint="curve" if len(xy) < 24 else None)
            if kind == "line":  # round pen ends
                for x, y in (xy[0], xy[-1]):
                    draw.ellipse((x - stroke / 2, y - stroke / 2, x + stroke / 2, y + stroke / 2), fill=255)
    return np.asarray(canvas.reduce(SUPERSAMPLE), np.float32) / 255


def _silhouette(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A filled object with a textured surface (a garment, a bag, a shoe, a leaf, a stone as a photo shows
    it): a smooth random outline, filled, shaded by a gradient, stripes or a weave, sometimes with a handle
    or a cut-out. Digits are strokes; nothing filled is a digit."""
    corners = int(rng.integers(5, 11))
    if rng.random() < 0.5:  # most made things are mirror-symmetric: draw one half, mirror it
        angles = np.sort(rng.uniform(-math.pi / 2, math.pi / 2, corners))
        radii = rng.uniform(0.35, 1.0, corners)
        half = np.stack([radii * np.cos(angles), radii * np.sin(angles)], 1)
        outline = np.vstack([half, half[::-1] * [-1, 1]])
    else:
        angles = np.sort(rng.uniform(0, 2 * math.pi, corners))
        radii = rng.uniform(0.45, 1.0, corners)
        outline = np.stack([radii * np.cos(angles), radii * np.sin(angles)], 1)
    outline = outline * [rng.uniform(0.5, 1.6), 1.0]
    parts = [("fill", _chaikin(np.vstack([outline, outline[:1]]), rounds=int(rng.integers(0, 4))))]
    if rng.random() < 0.25:  # a handle or strap over the top
        top = outline[:, 1].min()
        span = rng.uniform(0.3, 0.6)
        arc = np.linspace(0, math.pi, 24)
        parts.append(("line", np.stack([span * np.cos(arc), top - 0.4 * span * np.sin(arc)], 1)))
    ink = _draw(parts, rng.uniform(0.6, 1.2), rng, height, width)
    rows, cols = np.mgrid[0:height, 0:width] / max(height, width)
    shade = rng.uniform(0.5, 1.0) + rng.uniform(-0.4, 0.4) * rows + rng.uniform(-0.4, 0.4) * cols
    texture = rng.choice(["plain", "stripes", "weave", "mottled"])
    if texture == "stripes":
        angle = rng.uniform(0, math.pi)
        shade = shade - 0.35 * (np.sin((rows * math.cos(angle) + cols * math.sin(angle)) * rng.uniform(20, 60)) > 0.3)
    elif texture == "weave":
        period = rng.uniform(15, 40)
        shade = shade - 0.25 * ((np.sin(rows * period) > 0) ^ (np.sin(cols * period) > 0))
    elif texture == "mottled":
        shade = shade + ndimage.gaussian_filter(rng.standard_normal((height, width)), max(1.0, height / 30)) * 0.6
    if rng.random() < 0.2:  # a cut-out: the ground shows through (a button hole, the gap of a sandal)
        centre = np.array([rng.uniform(0.35, 0.65) * height, rng.uniform(0.35, 0.65) * width])
        radius = rng.uniform(0.05, 0.12) * min(height, width)
        shade = np.where(np.hypot(*(np.mgrid[0:height, 0:width] - centre[:, None, None])) < radius, 0.0, shade)
    return (ink * np.clip(shade, 0.25, 1.0)).astype(np.float32)


def _photograph(ink: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Ink coverage -> a gray picture: paper and ink of random levels, a lighting slope, blur, noise."""
    if rng.random() < 0.4:
        ink = ndimage.gaussian_filter(ink, rng.uniform(0.3, 0.8) * ink.shape[0] / 64)  # out of focus
    contrast = rng.uniform(0.35, 0.9)
    if rng.random() < LIGHT_ON_DARK:
        ground = rng.uniform(0.0, 0.3)
        ink_level = min(ground + contrast, 1.0)
    else:
        ground = rng.uniform(0.7, 1.0)
        ink_level = max(ground - contrast, 0.0)
    rows, cols = np.linspace(-0.5, 0.5, ink.shape[0])[:, None], np.linspace(-0.5, 0.5, ink.shape[1])[None, :]
    paper = ground + rng.uniform(-0.12, 0.12) * rows + rng.uniform(-0.12, 0.12) * cols  # uneven light
    noise = rng.standard_normal(ink.shape, dtype=np.float32) * rng.uniform(0.003, 0.025)
    gray = paper + (ink_level - ground) * ink + noise
    return np.clip(gray, 0, 1).astype(np.float32)


PAIR_OVERLAP = (-2, 3)  # columns of ink two digits of a pair share, MNIST pixels (negative: a gap that wide)
PAIR_SCALE = (1.5, 4.0)  # a pair's picture is this many times MNIST's size
PAIR_WIDTH = 12  # columns: a pair narrower than this (two 1s drawn over each other) could pass for one digit


def pairs(digits: np.ndarray, count: int, seed: int) -> np.ndarray:
    """(count, 28, 28) uint8: two of `digits` ((N, 28, 28) MNIST-style, ink bright) side by side, their ink
    overlapping by up to 3 columns or 1-2 columns apart, one up to 2 px higher, photographed and prepared as
    one picture: what `images.prepare` makes of two touching digits read as one (the whole picture in auto
    mode, a merged candidate in a number). Seeded: the same digits and seed give the same pairs."""
    _whole("count", count)
    _whole("seed", seed)
    digits = np.asarray(digits, np.float32)
    if digits.ndim == 4 and digits.shape[-1] == 1:  # model inputs (N, 28, 28, 1)
        digits = digits[..., 0]
    if digits.ndim != 3 or len(digits) < 2:
        raise ValueError(f"digits has shape {digits.shape}; pass at least two (28, 28) digits as (N, 28, 28)")
    digits = digits / (255.0 if digits.max() > 1 else 1.0)
    rng = np.random.default_rng([int(seed), zlib.crc32(b"pairs")])
    out = np.zeros((count, images.CANVAS, images.CANVAS), np.uint8)
    made = 0
    while made < count:
        first, second = (digit[:, digit.max(0) > 0.1] for digit in digits[rng.integers(len(digits), size=2)])
        overlap, lift = int(rng.integers(PAIR_OVERLAP[0], PAIR_OVERLAP[1] + 1)), int(rng.integers(-2, 3))
        left = 4 + first.shape[1] - overlap
        end = max(left + second.shape[1], 4 + first.shape[1])  # past the pair's last inked column
        if end - 4 < PAIR_WIDTH:
            continue
        ink = np.zeros((32, end + 4), np.float32)
        ink[2:30, 4:4 + first.shape[1]] = first
        window = ink[2 + lift:30 + lift, left:left + second.shape[1]]
        np.maximum(window, second, out=window)
        scale = rng.uniform(*PAIR_SCALE)
        size = (round(ink.shape[1] * scale), round(ink.shape[0] * scale))
        ink = np.clip(np.asarray(Image.fromarray(ink).resize(size, Image.Resampling.BILINEAR)), 0, 1)
        prepared = images.prepare(_photograph(ink, rng))
        if prepared.ink_found:
            out[made] = np.round(prepared.image * 255).astype(np.uint8)
            made += 1
    return out


def _whole(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{name}={value!r}; pass a whole number >= 0")


def pictures(family: str, count: int, seed: int, fonts: list[Path] | None = None,
             letters: str | None = None) -> list[np.ndarray]:
    """`count` raw pictures of `family`, (H, W) float32 0..1 gray, seeded (same seed, same pictures).

    letters: A-Z a-z minus LOOKALIKES (or exactly `letters`), drawn with `fonts`
    (default training_fonts()); symbols: SYMBOLS that the fonts really have (Computer Modern is
    skipped: its ASCII punctuation is TeX's); scripts: SCRIPTS in those fonts; shapes; scribbles;
    silhouettes. Unknown family -> ValueError."""
    if family not in FAMILIES:
        raise ValueError(f"unknown non-digit family {family!r}; choose from {', '.join(FAMILIES)}")
    _whole("count", count)
    _whole("seed", seed)
    if letters is not None and family != "letters":
        raise ValueError(f"letters= applies to the 'letters' family, not {family!r}; leave it out")
    table = None
    if family in ("letters", "symbols", "scripts"):
        paths = [Path(font) for font in (training_fonts() if fonts is None else fonts)]
        absent = [str(font) for font in paths if not font.is_file()]
        if absent or not paths:
            raise ValueError(f"fonts {absent or '[]'} not found; pass existing .ttf/.otf files or None")
        if family == "symbols":
            paths = [font for font in paths if _faithful(font)]
        having = tuple(map(str, paths))
        if family == "scripts":  # one table per script, each script drawn as often
            table = [found for found in (_glyphs(chars, having) for chars in SCRIPTS.values()) if found]
        else:
            table = _glyphs(alphabet(letters) if family == "letters" else SYMBOLS, having)
        if not table:
            raise ValueError(f"none of the fonts {list(having)} draws {family}; pass other fonts")
    out = []
    for index in range(count):
        rng = np.random.default_rng([int(seed), zlib.crc32(family.encode()), index])
        height = _side(rng)
        width = int(np.clip(round(height * rng.uniform(0.8, 1.25)), *SIDE))
        if family == "scripts":
            ink = _glyph(rng, table[rng.integers(len(table))], height, width)
        elif table is not None:
            ink = _glyph(rng, table, height, width)
        elif family == "silhouettes":
            ink = _silhouette(rng, height, width)
        else:
            ink = _draw(*(_shape(rng) if family == "shapes" else _scribble(rng)), rng, height, width)
        out.append(_photograph(ink, rng))
    return out


# ---------------------------------------------------------------- prepared, mixed and cached


def _derived(*numbers: int) -> int:
    return int(np.random.SeedSequence([int(number) for number in numbers]).generate_state(1)[0])


def reads_as_one(image: np.ndarray) -> bool:
    """A prepared 28x28 image whose ink is a thin, near-upright bar: a model would rightly call it a 1."""
    ink = np.asarray(image, np.float64)
    mass = ink.sum()
    if mass <= 0:
        return False
    rows, cols = np.mgrid[0:ink.shape[0], 0:ink.shape[1]]
    row, col = (ink * rows).sum() / mass, (ink * cols).sum() / mass
    across_rows = (ink * (rows - row) ** 2).sum() / mass
    across_cols = (ink * (cols - col) ** 2).sum() / mass
    cross = (ink * (rows - row) * (cols - col)).sum() / mass
    half, spread = (across_rows + across_cols) / 2, math.hypot((across_rows - across_cols) / 2, cross)
    thinness = math.sqrt(max(half - spread, 0.0) / (half + spread))
    tilt = abs(math.degrees(0.5 * math.atan2(2 * cross, across_rows - across_cols)))  # major axis from upright
    return thinness < ONE_LIKE[0] and tilt < ONE_LIKE[1]


def _prepared(family: str, count: int, seed: int, fonts: list[Path] | None) -> np.ndarray:
    """(count, 28, 28) uint8 of one family, as images.prepare makes them; pictures without ink, or whose
    prepared ink reads as a 1, are replaced by others."""
    out = np.zeros((count, images.CANVAS, images.CANVAS), np.uint8)
    waiting, batch = list(range(count)), pictures(family, count, seed, fonts)
    for attempt in range(1, 50):
        still = []
        for index, picture in zip(waiting, batch):
            prepared = images.prepare(picture)
            if prepared.ink_found and not reads_as_one(prepared.image):
                out[index] = np.round(prepared.image * 255).astype(np.uint8)
            else:
                still.append(index)
        if not still:
            return out
        waiting, batch = still, pictures(family, len(still), _derived(seed, attempt), fonts)
    raise RuntimeError(f"images.prepare finds no usable ink in {family} pictures; the generator is broken")


def _fingerprint() -> str:
    """This module's and digits.images's source: the cache is drawn afresh when either changes."""
    return hashlib.sha256(Path(__file__).read_bytes() + Path(images.__file__).read_bytes()).hexdigest()


def cache_path(count: int, seed: int, families=FAMILIES, fonts: list[Path] | None = None) -> Path:
    """Where non_digits(count, seed, families, fonts) is cached."""
    key = {"generator": GENERATOR_VERSION, "count": int(count), "seed": int(seed), "families": list(families),
           "fonts": None if fonts is None else [str(Path(font).resolve()) for font in fonts],
           "pillow": PIL.__version__, "source": _fingerprint()}
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()
    return _cache_dir() / f"{digest}.npz"


def _cache_dir() -> Path:
    """The user cache (XDG_CACHE_HOME or ~/.cache)/digits/synthetic."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "digits" / "synthetic"


def _cached(path: Path, count: int) -> np.ndarray | None:
    """The cached array, or None when it is missing or damaged (then it is drawn again)."""
    try:
        with np.load(path, allow_pickle=False) as stored:
            pixels = stored["images"]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error):
        return None
    if pixels.dtype != np.uint8 or pixels.shape != (count, images.CANVAS, images.CANVAS):
        return None
    return pixels


def _workers(requested: int | None, count: int, tasks: int) -> int:
    """How many processes draw: `requested`, or one per core from PARALLEL_FROM pictures on."""
    if requested is not None and (isinstance(requested, bool) or not isinstance(requested, (int, np.integer))
                                  or requested < 1):
        raise ValueError(f"workers={requested!r}; pass a whole number >= 1 or None (automatic)")
    main = getattr(sys.modules.get("__main__"), "__file__", None)
    if main and not os.path.exists(main):  # spawned workers re-import __main__: a script read from stdin has none
        return 1
    if requested is None:
        if count < PARALLEL_FROM:
            return 1
        requested = cores()
    return max(1, min(int(requested), tasks))


def _run(function: Callable, tasks: list[tuple], sizes: list[int], processes: int,
         progress: Callable[[int, int], None] | None) -> list:
    """[function(*task) for task in tasks], in `processes` spawned workers when more than one (in this process
    when they cannot start: a script read from stdin); progress(done, total) counts each task's `sizes`."""
    results, done, total = [None] * len(tasks), 0, sum(sizes)
    if processes > 1:
        try:
            with worker_pool(processes) as pool:
                futures = {pool.submit(function, *task): number for number, task in enumerate(tasks)}
                for future in as_completed(futures):
                    results[futures[future]] = future.result()
                    done += sizes[futures[future]]
                    if progress:
                        progress(done, total)
        except BrokenProcessPool:  # workers cannot start: finish in this process
            pass
    for number, task in enumerate(tasks):
        if results[number] is None:
            results[number] = function(*task)
            done += sizes[number]
            if progress:
                progress(done, total)
    return results


def non_digits(count: int, seed: int, families=FAMILIES, fonts: list[Path] | None = None,
               progress: Callable[[int, int], None] | None = None, workers: int | None = None) -> np.ndarray:
    """(count, 28, 28) uint8 non-digits, `families` mixed evenly and shuffled, each picture through
    images.prepare (a picture without ink is replaced by another). Cached in the user cache
    (XDG_CACHE_HOME or ~/.cache)/digits/synthetic/<sha256>.npz, written atomically; a damaged file is
    drawn again. progress(done, count) is called as pictures are done; workers: processes
    (default: one per core from PARALLEL_FROM pictures on); the result does not depend on it."""
    families = tuple(families)
    unknown = [family for family in families if family not in FAMILIES]
    if unknown or not families:
        raise ValueError(f"unknown non-digit families {unknown or '()'}; choose from {', '.join(FAMILIES)}")
    _whole("count", count)
    _whole("seed", seed)
    path = cache_path(count, seed, families, fonts)
    pixels = _cached(path, count)
    if pixels is not None:
        if progress:
            progress(count, count)
        return pixels
    tasks = []  # (family, pictures, seed, fonts): CHUNK pictures each, seeded by family and chunk, not by worker
    for number, family in enumerate(families):
        share = count // len(families) + (number < count % len(families))
        for chunk, start in enumerate(range(0, share, CHUNK)):
            tasks.append((family, min(CHUNK, share - start), _derived(seed, zlib.crc32(family.encode()), chunk), fonts))
    results = _run(_prepared, tasks, [task[1] for task in tasks], _workers(workers, count, len(tasks)), progress)
    pixels = np.concatenate(results) if results else np.zeros((0, images.CANVAS, images.CANVAS), np.uint8)
    pixels = pixels[np.random.default_rng([int(seed), 1]).permutation(count)]  # families mixed through
    buffer = io.BytesIO()
    np.savez_compressed(buffer, images=pixels)
    files.write_bytes(path, buffer.getvalue())
    return pixels


# ---------------------------------------------------------------- digits cut out of touching numbers

PIECE_DIGITS = (2, 4)  # a touching number is 2 to 4 digits
PIECE_OVERLAP = (1, 3)  # columns of ink two neighbours share (they touch, as real_images' touching strips do)
PIECE_SCALE = (1.5, 4.0)  # the number's picture is this many times MNIST's size
PIECE_SHARE, PIECE_COVER = 0.85, 0.8  # a candidate is one digit: this share of its ink is that digit's, and it
# holds this share of that digit's ink (scripts/seg_eval.py labels candidates the same way)
PIECE_CHUNK = 500  # pieces per task of touching_pieces; part of the seeding
PIECE_POOL = 3000  # digits each task draws its numbers from (a random subset, so tasks stay small to send)


def _uniform(batch: np.ndarray) -> np.ndarray:
    """A classifier with no opinion: candidates are cut by shape alone (their scores are not used here)."""
    return np.full((len(batch), 10), 0.1, np.float32)


def _number(digits: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """2-4 of `digits` (float 0..1) written touching: (ink, owner: each pixel's digit 0..D-1, chosen indices)."""
    chosen = [int(index) for index in rng.integers(len(digits), size=int(rng.integers(PIECE_DIGITS[0],
                                                                                        PIECE_DIGITS[1] + 1)))]
    return (*_written([digits[index] for index in chosen], rng), chosen)


def _written(cells: list[np.ndarray], rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """28x28 `cells` (float 0..1) written left to right, touching: (ink, owner: each pixel's cell 0..D-1)."""
    parts = [cell[:, cell.max(0) > 0.1] for cell in cells]
    overlaps = rng.integers(PIECE_OVERLAP[0], PIECE_OVERLAP[1] + 1, len(parts))
    width = 8 + sum(part.shape[1] for part in parts) - int(overlaps[:-1].sum())
    layers, column = np.zeros((len(parts), 32, width), np.float32), 4
    for index, part in enumerate(parts):
        row = 2 + int(rng.integers(-2, 3))
        layers[index, row:row + 28, column:column + part.shape[1]] = part
        column += part.shape[1] - int(overlaps[index])
    ink = layers.max(0)
    _, (near_rows, near_cols) = ndimage.distance_transform_edt(ink <= 0.1, return_indices=True)
    return ink, layers.argmax(0)[near_rows, near_cols]


def _cut(ink: np.ndarray, owner: np.ndarray, cells: int, rng: np.random.Generator) -> tuple[dict, dict] | None:
    """A touching number's ink (with `owner`, of `cells` cells) photographed at a random scale and cut by
    `multidigit`'s lattice by shape: (the lattice, {cell: the keys of the candidates that are that cell}: PIECE_SHARE
    of the candidate's ink is the cell's, and it holds PIECE_COVER of the cell's), or None where nothing is cut."""
    from . import multidigit

    scale = rng.uniform(*PIECE_SCALE)
    size = (round(ink.shape[1] * scale), round(ink.shape[0] * scale))
    picture = _photograph(np.clip(np.asarray(Image.fromarray(ink).resize(size, Image.Resampling.BILINEAR)), 0, 1),
                          rng)
    found = images.analyse(picture)
    if found.labels is None:
        return None
    lattice = multidigit._lattice(found, _uniform, keep_masks=True)
    if lattice is None:
        return None
    core = found.intensity >= 0.5
    rows, cols = np.nonzero(core)
    whose = np.full(core.shape, -1)  # each core pixel's cell, through the picture back to the number
    whose[rows, cols] = owner[np.clip(((rows + 0.5) * found.factor / scale).astype(int), 0, owner.shape[0] - 1),
                              np.clip(((cols + 0.5) * found.factor / scale).astype(int), 0, owner.shape[1] - 1)]
    totals = np.bincount(whose[core], minlength=cells)
    matches: dict[int, list] = {}
    for key, mask in zip(lattice["keys"], lattice["masks"]):
        counts = np.bincount(whose[mask & core], minlength=cells)
        top = int(counts.argmax())
        if counts[top] >= PIECE_SHARE * max(1, counts.sum()) and counts[top] >= PIECE_COVER * max(1, totals[top]):
            matches.setdefault(top, []).append(key)
    return lattice, matches


def _pieces(digits: np.ndarray, labels: np.ndarray, count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(count, 28, 28) uint8 and (count,) labels: one task of touching_pieces."""
    rng = np.random.default_rng([int(seed), zlib.crc32(b"pieces")])
    digits = np.asarray(digits, np.float32) / 255.0
    out, out_labels, made = np.zeros((count, images.CANVAS, images.CANVAS), np.uint8), np.zeros(count, np.int64), 0
    for _ in range(count * 20):  # a number gives a piece for most of its digits; this bound is never reached
        if made == count:
            return out, out_labels
        ink, owner, chosen = _number(digits, rng)
        if (cut := _cut(ink, owner, len(chosen), rng)) is None:
            continue
        lattice, matches = cut
        for digit in sorted(matches):  # one cut of each digit, drawn among the right ones
            if made < count:
                key = matches[digit][int(rng.integers(len(matches[digit])))]
                out[made] = np.round(lattice["candidates"][key].image * 255).astype(np.uint8)
                out_labels[made] = int(labels[chosen[digit]])
                made += 1
    raise RuntimeError("no digit could be cut out of the touching numbers; the generator is broken")


def touching_pieces(digits: np.ndarray, labels: np.ndarray, count: int, seed: int,
                    progress: Callable[[int, int], None] | None = None,
                    workers: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(count, 28, 28) uint8 digits and (count,) their labels, cut out of numbers written touching: 2-4 of
    `digits` ((N, 28, 28) MNIST-style, ink bright, with `labels`) overlapping by 1-3 columns, photographed,
    cut into candidates by `multidigit`'s lattice (by shape: the classifier is not asked) and each digit taken
    as one candidate that holds it (PIECE_SHARE, PIECE_COVER), prepared as the reader sees it in a number:
    a stroke of its neighbour left on, a stroke of its own cut off. Seeded; cached like non_digits (the key
    includes the digits); progress(done, count); workers as non_digits (the result does not depend on it)."""
    return _from_digits("pieces", _pieces, digits, labels, count, seed, progress, workers, _cutting_source())


def _cutting_source() -> str:
    """The code touching_pieces and intruders draw with (this module, digits.images and digits.multidigit, whose
    lattice cuts their numbers): their caches are drawn afresh when it changes."""
    return _fingerprint() + hashlib.sha256(Path(images.__file__).with_name("multidigit.py").read_bytes()).hexdigest()


def _intruders(digits: np.ndarray, others: np.ndarray, count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(count, 28, 28) uint8 and (count,) labels (-1: not a digit): one task of intruders."""
    rng = np.random.default_rng([int(seed), zlib.crc32(b"intruders")])
    digits, others = np.asarray(digits, np.float32) / 255.0, np.asarray(others, np.float32) / 255.0
    out, made = np.zeros((count, images.CANVAS, images.CANVAS), np.uint8), 0
    for _ in range(count * 50):  # most numbers give their non-digit's piece; this bound is never reached
        if made == count:
            return out, np.full(count, -1, np.int64)
        cells = [digits[int(index)] for index in rng.integers(len(digits), size=int(rng.integers(PIECE_DIGITS[0],
                                                                                                 PIECE_DIGITS[1] + 1)))]
        place = int(rng.integers(len(cells)))
        cells[place] = others[int(rng.integers(len(others)))]
        ink, owner = _written(cells, rng)
        cut = _cut(ink, owner, len(cells), rng)
        if cut is None or place not in cut[1]:
            continue
        lattice, matches = cut
        key = matches[place][int(rng.integers(len(matches[place])))]
        out[made] = np.round(lattice["candidates"][key].image * 255).astype(np.uint8)
        made += 1
    raise RuntimeError("no non-digit could be cut out of the touching numbers; the generator is broken")


def intruders(digits: np.ndarray, non_digits: np.ndarray, count: int, seed: int,
              progress: Callable[[int, int], None] | None = None, workers: int | None = None) -> np.ndarray:
    """(count, 28, 28) uint8 non-digits as the reader meets them inside a number: one of `non_digits` ((M, 28, 28)
    uint8, as non_digits() makes them) written touching 1-3 of `digits` ((N, 28, 28) MNIST-style, ink bright) as
    touching_pieces writes its numbers, photographed, cut into candidates by `multidigit`'s lattice by shape, and one
    candidate that is the non-digit (PIECE_SHARE, PIECE_COVER) taken, prepared as the reader sees a piece of a
    number: a stroke of a neighbouring digit left on, one of its own cut off. Outlier Exposure's "intruders" family:
    a letter or mark cut out of a number scores as a digit far more than one alone (docs/reader.md, 2026-12-08).
    Seeded; cached, progress and workers as touching_pieces."""
    _whole("count", count)
    _whole("seed", seed)
    pixels, others = _as_pixels(digits), _as_pixels(non_digits)
    if pixels.ndim != 3 or len(pixels) < 1 or others.ndim != 3 or len(others) < 1:
        raise ValueError(f"digits has shape {pixels.shape} and non_digits {others.shape}; pass (N, 28, 28) digits and "
                         "(M, 28, 28) non-digits, N, M >= 1")
    key = {"generator": "intruders-1", "count": int(count), "seed": int(seed), "pillow": PIL.__version__,
           "chunk": PIECE_CHUNK, "pool": PIECE_POOL, "digits": hashlib.sha256(pixels.tobytes()).hexdigest(),
           "non_digits": hashlib.sha256(others.tobytes()).hexdigest(), "source": _cutting_source()}

    def tasks() -> list[tuple]:  # (digits, non-digits, pictures, seed): each its own seeded subsets of both
        made = []
        for chunk, start in enumerate(range(0, count, PIECE_CHUNK)):
            rng = np.random.default_rng([int(seed), chunk, 1])
            mine = rng.choice(len(pixels), min(PIECE_POOL, len(pixels)), replace=False)
            theirs = rng.choice(len(others), min(PIECE_POOL, len(others)), replace=False)
            made.append((pixels[mine], others[theirs], min(PIECE_CHUNK, count - start), _derived(seed, chunk)))
        return made

    return _labelled("intruders", key, count, _intruders, tasks, 2, workers, progress)[0]


def _as_pixels(pictures: np.ndarray) -> np.ndarray:
    """(N, 28, 28) uint8 from MNIST-style pictures: uint8 as they are, floats 0..1 scaled, model inputs (N, 28, 28,
    1) squeezed."""
    pictures = np.asarray(pictures)
    if pictures.ndim == 4 and pictures.shape[-1] == 1:
        pictures = pictures[..., 0]
    if pictures.dtype != np.uint8 and pictures.size and pictures.max() <= 1:
        return np.round(pictures * 255).astype(np.uint8)
    return np.asarray(pictures, np.uint8)


def digit_photos(digits: np.ndarray, labels: np.ndarray, count: int, seed: int,
                 progress: Callable[[int, int], None] | None = None,
                 workers: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(count, 28, 28) uint8 digits and (count,) their labels: `digits` ((N, 28, 28) MNIST-style, ink bright,
    with `labels`) each photographed as the non-digits are (`_photograph`: paper, light, focus, noise), some
    drawn with a thinner or bolder pen (PHOTO_STROKE), some small and enlarged (PHOTO_LOWRES), some out of focus
    (PHOTO_BLUR), then prepared by `images.prepare`: the digit as the reader sees a photo of it. The non-digits
    of Outlier Exposure come to the model through the same path, so a model trained on these cannot tell digits
    from non-digits by the path's own marks. Seeded, cached, progress and workers as touching_pieces."""
    return _from_digits("photos", _photos, digits, labels, count, seed, progress, workers, _fingerprint())


def _from_digits(name: str, draw: Callable, digits: np.ndarray, labels: np.ndarray, count: int, seed: int,
                 progress: Callable[[int, int], None] | None, workers: int | None,
                 source: str) -> tuple[np.ndarray, np.ndarray]:
    """touching_pieces and digit_photos: `draw(digits, labels, count, seed)` -> (images, labels) run as seeded
    tasks of PIECE_CHUNK pictures, each over its own random PIECE_POOL of the digits, in worker processes; the
    result cached under `name` and a key of the arguments, the digits and `source` (the code that draws)."""
    _whole("count", count)
    _whole("seed", seed)
    pixels, labels = _as_pixels(digits), np.asarray(labels).reshape(-1)
    if pixels.ndim != 3 or len(pixels) < 2 or len(labels) != len(pixels):
        raise ValueError(f"digits has shape {pixels.shape} and labels {labels.shape}; pass (N, 28, 28) digits, "
                         "N >= 2, and N labels")
    key = {"generator": f"{name}-1", "count": int(count), "seed": int(seed), "pillow": PIL.__version__,
           "chunk": PIECE_CHUNK, "pool": PIECE_POOL,
           "digits": hashlib.sha256(pixels.tobytes() + labels.astype(np.int64).tobytes()).hexdigest(),
           "source": source}

    def tasks() -> list[tuple]:  # (digits, labels, pictures, seed): each draws from its own seeded subset of the digits
        made = []
        for chunk, start in enumerate(range(0, count, PIECE_CHUNK)):
            chosen = np.random.default_rng([int(seed), chunk]).choice(len(pixels), min(PIECE_POOL, len(pixels)),
                                                                      replace=False)
            made.append((pixels[chosen], labels[chosen], min(PIECE_CHUNK, count - start), _derived(seed, chunk)))
        return made

    return _labelled(name, key, count, draw, tasks, 2, workers, progress)


def _labelled(name: str, key: dict, count: int, draw: Callable, tasks: Callable[[], list[tuple]], size_at: int,
              workers: int | None, progress: Callable[[int, int], None] | None) -> tuple[np.ndarray, np.ndarray]:
    """(count, 28, 28) uint8 digits and (count,) labels cached under `name` and `key`, or `draw(*task)` run for each
    of `tasks()` (task[size_at] pictures each) in worker processes, joined in order and cached atomically."""
    path = _cache_dir() / f"{name}-{hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()}.npz"
    try:
        with np.load(path, allow_pickle=False) as stored:
            cached, cached_labels = stored["images"], stored["labels"]
        if cached.shape == (count, images.CANVAS, images.CANVAS) and cached_labels.shape == (count,):
            if progress:
                progress(count, count)
            return cached, cached_labels
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error):
        pass
    jobs = tasks()
    results = _run(draw, jobs, [job[size_at] for job in jobs], _workers(workers, count, len(jobs)), progress)
    empty = (np.zeros((0, images.CANVAS, images.CANVAS), np.uint8), np.zeros(0, np.int64))
    made, made_labels = (np.concatenate(parts) for parts in zip(*results)) if results else empty
    buffer = io.BytesIO()
    np.savez_compressed(buffer, images=made, labels=made_labels)
    files.write_bytes(path, buffer.getvalue())
    return made, made_labels


PHOTO_SCALE = (1.5, 5.0)  # a digit's photo is this many times MNIST's size (42 to 140 px)
PHOTO_STROKE = (-0.8, 2.5)  # its pen this many MNIST pixels thinner (-) or bolder than the writer's
PHOTO_LOWRES, PHOTO_SMALL = 0.2, (8, 16)  # this share drawn with the digit this many px tall, then enlarged
PHOTO_BLUR = (0.3, 1.2)  # this share out of focus by up to this many MNIST pixels (and _photograph's own blur)
# (all inside what benchmarks/stress.py's conditions draw: strokes +3.5 and -1.2, 6 px, blur 1.6)


def _photo_ink(digit: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One MNIST-style digit (0..1, ink bright) -> its ink as drawn for a photo: enlarged, its pen made thinner
    or bolder, maybe drawn small and enlarged, maybe out of focus (see PHOTO_*)."""
    scale = rng.uniform(*PHOTO_SCALE)
    side = round(images.CANVAS * scale)
    ink = np.clip(np.asarray(Image.fromarray(digit).resize((side, side), Image.Resampling.BILINEAR)), 0, 1)
    core = ink >= 0.5
    if core.any():
        _, depth, box = images._depth(core)
        ink = images._redraw(core, depth, box, rng.uniform(*PHOTO_STROKE) * scale / 2)
    if rng.random() < PHOTO_LOWRES:
        filters = (Image.Resampling.NEAREST, Image.Resampling.BILINEAR, Image.Resampling.BICUBIC)
        height = int(rng.integers(PHOTO_SMALL[0], PHOTO_SMALL[1] + 1))
        ink = _drawn_small(ink, height, filters[int(rng.integers(len(filters)))])
    if rng.random() < PHOTO_BLUR[0]:
        ink = ndimage.gaussian_filter(ink, rng.uniform(0.0, PHOTO_BLUR[1]) * ink.shape[0] / images.CANVAS)
    return np.clip(ink, 0, 1).astype(np.float32)


def _drawn_small(ink: np.ndarray, height: int, resample) -> np.ndarray:
    """Square ink drawn with its digit (MNIST: 20 of 28 px) `height` px tall, then enlarged back by `resample`."""
    small = max(2, round(height * ink.shape[0] / images.BOX))
    picture = Image.fromarray(ink.astype(np.float32)).resize((small, small), Image.Resampling.BOX)
    return np.asarray(picture.resize(ink.shape[::-1], resample))


def _photos(digits: np.ndarray, labels: np.ndarray, count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(count, 28, 28) uint8 and (count,) labels: one task of digit_photos."""
    rng = np.random.default_rng([int(seed), zlib.crc32(b"photos")])
    digits = np.asarray(digits, np.float32) / 255.0
    out, out_labels, made = np.zeros((count, images.CANVAS, images.CANVAS), np.uint8), np.zeros(count, np.int64), 0
    for _ in range(count * 20):  # a photo whose ink the reader cannot find is drawn again; never this often
        if made == count:
            return out, out_labels
        index = int(rng.integers(len(digits)))
        prepared = images.prepare(_photograph(_photo_ink(digits[index], rng), rng))
        if prepared.ink_found:
            out[made] = np.round(prepared.image * 255).astype(np.uint8)
            out_labels[made] = int(labels[index])
            made += 1
    raise RuntimeError("the reader finds no ink in the digits' photos; the generator is broken")


# ---------------------------------------------------------------- digits printed in fonts

PRINTED_CHUNK = 500  # printed digits per task of printed_digits; part of the seeding
NUMERAL_FONTS_LEFT_OUT = ("cmmi10",)  # TeX's math italic draws old-style figures (a 3, 4, 5, 7, 9 below the line)
PEN_SHARE = 0.3  # this share of printed_digits is a 1 or a 7 drawn by pen as continental writers draw them
ONE_FLAG = ((25.0, 65.0), (0.15, 0.45))  # a 1's flag: degrees below horizontal, length in digit heights
SEVEN_BAR = ((-10.0, 10.0), (0.4, 0.8))  # a 7's bar: degrees off horizontal, length in digit heights


def numeral_fonts() -> list[Path]:
    """training_fonts() that draw lining figures: the fonts printed_digits draws with by default."""
    return [font for font in training_fonts() if font.stem not in NUMERAL_FONTS_LEFT_OUT]


def _pen_digit(digit: int, rng: np.random.Generator) -> list:
    """A 1 or a 7 as strokes in unit coordinates (y down), the way writers outside MNIST's draw them: a 1 with a
    flag falling from the top of its stem (ONE_FLAG), sometimes a foot; a 7 with a near-level bar (SEVEN_BAR),
    its stem upright to slanting, sometimes crossed. The flag falls and the bar does not: that tells them apart."""
    lean = rng.uniform(-0.05, 0.2)  # how far the top stands right of the foot, in digit heights
    top, foot = np.array([lean, 0.0]), np.array([0.0, 1.0])
    if digit == 1:
        angle, length = math.radians(rng.uniform(*ONE_FLAG[0])), rng.uniform(*ONE_FLAG[1])
        parts = [("line", np.array([top + length * np.array([-math.cos(angle), math.sin(angle)]), top, foot]))]
        if rng.random() < 0.35:
            half = rng.uniform(0.15, 0.3)
            parts.append(("line", np.array([foot - [half, 0.0], foot + [half, 0.0]])))
        return parts
    angle, length = math.radians(rng.uniform(*SEVEN_BAR[0])), rng.uniform(*SEVEN_BAR[1])
    top = top + [length, 0.0]
    foot = top + [-rng.uniform(0.0, 0.5), 1.0]
    parts = [("line", np.array([top - length * np.array([math.cos(angle), math.sin(angle)]), top, foot]))]
    if rng.random() < 0.4:
        middle, half = (top + foot) / 2, rng.uniform(0.15, 0.3)
        parts.append(("line", np.array([middle - [half, 0.0], middle + [half, 0.0]])))
    return parts


def _printed(count: int, seed: int, fonts: tuple[str, ...], pen_share: float) -> tuple[np.ndarray, np.ndarray]:
    """(count, 28, 28) uint8 and (count,) labels: one task of printed_digits, `pen_share` of them drawn by pen."""
    rng = np.random.default_rng([int(seed), zlib.crc32(b"printed")])
    table = {char: having for char, having in _glyphs("0123456789", fonts)}
    if len(table) < 10:
        raise ValueError(f"the fonts {list(fonts)} draw only the digits {''.join(sorted(table))}; pass fonts that "
                         "draw all ten")
    out, out_labels, made = np.zeros((count, images.CANVAS, images.CANVAS), np.uint8), np.zeros(count, np.int64), 0
    for _ in range(count * 20):  # a picture whose ink the reader cannot find is drawn again; never this often
        if made == count:
            return out, out_labels
        height = _side(rng)
        width = int(np.clip(round(height * rng.uniform(0.8, 1.25)), *SIDE))
        if rng.random() < pen_share:
            digit = int(rng.choice([1, 7]))
            ink = _draw(_pen_digit(digit, rng), rng.uniform(0.6, 1.6), rng, height, width)
        else:
            digit = int(rng.integers(10))
            ink = _glyph(rng, [(str(digit), table[str(digit)])], height, width)
        prepared = images.prepare(_photograph(ink, rng))
        if prepared.ink_found:
            out[made] = np.round(prepared.image * 255).astype(np.uint8)
            out_labels[made] = digit
            made += 1
    raise RuntimeError("the reader finds no ink in the printed digits; the generator is broken")


def printed_digits(count: int, seed: int, fonts: list[Path] | None = None,
                   progress: Callable[[int, int], None] | None = None,
                   workers: int | None = None, pen_share: float = PEN_SHARE) -> tuple[np.ndarray, np.ndarray]:
    """(count, 28, 28) uint8 digits and (count,) their labels: each digit (0-9 at random) printed in one of `fonts`
    (default numeral_fonts(): matplotlib's bundled fonts, so training is reproducible anywhere) as the letters of
    Outlier Exposure are (`_glyph`: a size, a bolder stroke, a small rotation, a narrower or wider shape), or,
    for `pen_share` of them (1: all), a 1 or a 7 drawn by pen (`_pen_digit`), then photographed (`_photograph`)
    and prepared by `images.prepare`. Print holds shapes MNIST's writers seldom drew, a 1 with a flag and a foot,
    a 4 open at the top, a 7 with a serif; the pen, a 1 with a flag and no foot, a crossed 7. Seeded; cached and
    run in worker processes like touching_pieces (the result does not depend on them)."""
    _whole("count", count)
    _whole("seed", seed)
    if not 0.0 <= pen_share <= 1.0:
        raise ValueError(f"pen_share is a share (0..1), got {pen_share}; try {PEN_SHARE}")
    paths = [Path(font) for font in (numeral_fonts() if fonts is None else fonts)]
    absent = [str(font) for font in paths if not font.is_file()]
    if absent or not paths:
        raise ValueError(f"fonts {absent or '[]'} not found; pass existing .ttf/.otf files or None")
    having = tuple(str(font.resolve()) for font in paths)
    key = {"generator": "printed-1", "count": int(count), "seed": int(seed), "pillow": PIL.__version__,
           "chunk": PRINTED_CHUNK, "pen_share": float(pen_share), "fonts": [Path(font).name for font in having],
           "source": _fingerprint()}
    return _labelled("printed", key, count, _printed,
                     lambda: [(min(PRINTED_CHUNK, count - start), _derived(seed, chunk), having, float(pen_share))
                              for chunk, start in enumerate(range(0, count, PRINTED_CHUNK))], 0, workers, progress)
