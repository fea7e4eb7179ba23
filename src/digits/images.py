"""Any image -> MNIST-style 28x28: decode, clean, crop, scale, centre.

The one preprocessing path for every picture that reaches a model (CLI files, API uploads,
the drawing page). MNIST digits are ink-bright on black, their larger side scaled into a
20x20 box with anti-aliasing, their centre of mass at pixel (14, 14) of 28x28 (the mean
over MNIST's test set is row 13.99, column 14.01), strokes about 2-3 pixels wide. A photo
or scan is made to match:

    load_gray(source) -> (H, W) float32, 0 black .. 1 white: PNG, JPEG, BMP, GIF, WebP, TIFF,
        HEIC or AVIF, from a path or bytes; EXIF rotation applied, transparency laid on white paper
        (on black when the opaque part is light strokes: white ink drawn on a transparent canvas).
        A file of several pages (a multi-page TIFF, an animation) is refused: `load_pages` reads each.
    prepare(gray) -> Prepared: a blocky enlargement of a small picture redrawn smoothly from its
        own pixels (`smooth_blocks`), polarity found (dark-on-light is inverted), lighting removed
        (a robust quadratic surface), notebook lines taken out (`erase_rules`), and printed
        form lines: boxes, rows of boxes, a line under the ink (`erase_form_lines`), ink kept with
        its grey edges, specks dropped, stroke
        width brought into MNIST's range, then MNIST's crop / 20x20 / centre-of-mass recipe. With a
        model's `soft_above`, ink blurred more than that (`ink_blur`) is taken as it is instead.
    to_gray(source): the same decoding for a path, bytes, a PIL image or an array (a canvas).
    prepare_file(source), prepare_array(array): prepare() from a file or any 2-D, RGB or RGBA
        array; an MNIST image (28x28, digit already 20 px) is only re-centred by whole pixels,
        as MNIST itself was, so it comes back unchanged.
    to_model_input(batch): the one rule that scales 28x28 pixels for a model (uint8 0..255,
        floats 0..1 or 0..255), for training arrays, raw API pixels and prepared pictures alike.
    analyse(gray) -> Ink, ink_mask, cut_digit: the cleaned picture's labelled ink, and one digit
        cut out of it; the building blocks of `digits.multidigit` (whole numbers).

A picture without ink gives `ink_found=False`, not an error. Bad input raises `ImageError`
(a `ValueError`) with one line naming the file, the problem and the fix.
"""

from __future__ import annotations

import functools
import io
import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError
from scipy import ndimage

MAX_PIXELS = 50_000_000  # refuse larger pictures before decoding them (decompression bombs)
PAGED = {"TIFF", "GIF", "WEBP", "PNG"}  # formats whose further frames are pictures of their own (a TIFF's pages, an
# animation's frames); an MPO's second frame and a HEIF's other images are a camera's previews and depth maps
MAX_PAGES = 200  # load_pages reads at most this many pages of one file
REDUCED = 1  # a TIFF page whose NewSubfileType (tag 254) has this bit is a reduced copy of another (a thumbnail)
FORMATS = {"PNG", "JPEG", "MPO", "BMP", "GIF", "WEBP", "TIFF", "HEIF", "AVIF"}  # MPO: JPEG from cameras; HEIF: an
# iPhone camera's photos (HEIC), through pi-heif, imported only when a file is one; AVIF: Pillow >= 11.3
HEIF_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs", b"mif1", b"msf1"}
AVIF_BRANDS = {b"avif", b"avis"}
BOX, CANVAS, CENTRE = 20, 28, 14.0  # MNIST: digit fits 20x20, canvas 28x28, centre of mass (row, column)
WORK_PIXELS = 1024 * 1024  # larger pictures are averaged down to about this many pixels before cleaning:
# by area, not by their longer side, so a long strip of digits keeps the resolution its height gives it
DETAIL = 80  # crops smaller than this are enlarged first, so stroke arithmetic has pixels to use
OVERSHOOT = 1.05  # 16-bit and float pictures: the brightest pixel may pass white by this much (resampling)
STROKE_RANGE = (2.0, 3.0)  # strokes are brought into this width, 28x28 pixels (MNIST: 10%..90% = 1.8..3.5)
# an unsharp mask before a digit's strokes are found: ink + AMOUNT x (ink - ink blurred by SIGMA MNIST pixels), so a
# blurred photo keeps the holes of its loops and its faint thin strokes; a sharp picture's bold strokes keep their
# half-intensity edges (chosen on validation digits under the stress conditions: scripts/tune_sharpen.py,
# benchmarks/results/sharpen_tune.json). A single digit's reading only: on the pieces cut from a whole number it
# read fewer touching validation strips whole (benchmarks/results/validation_strips_sharpened.json)
SHARPEN_AMOUNT, SHARPEN_SIGMA = 3.0, 2.5
# a soft picture (far off, enlarged from few pixels, out of focus) may be taken as it is: no unsharp mask, strokes
# not re-drawn, for a model trained on such pictures (its card's `soft_above`, chosen on validation digits by
# scripts/tune_soft.py). How soft: `ink_blur`, the Gaussian blur (MNIST pixels) that best turns the ink's own strokes
# into the ink, tried on SOFT_GRID with the ink's larger side drawn SOFT_SCALE x 20 pixels
SOFT_GRID = tuple(round(0.1 * step, 1) for step in range(31))
SOFT_SCALE = 2
MODE_BAND = 0.04  # the second paper fit (`_background`, start="mode") starts from border pixels this near its
# most common shade (of 50 bins; set once, not tuned). On 1,000 validation digits under benchmarks/stress.py's
# conditions (seed 1) it found the ink of 29 of the 34 the first fit called blank (blur 11 of 13, low resolution 10
# of 13, thick strokes 5 of 5, paper 2 of 2, broken 1 of 1), and the shipped model read 20 of them right
EIGHT_NEIGHBOURS = np.ones((3, 3), bool)
RULE_ACROSS, RULE_THIN = 0.9, 0.7  # ruled lines: faint ink across this share of the width, at most this many
# stroke widths thick (notebook lines are thinner than the pen; the bar of a 7 is as thick as its stem)
RULE_PICTURE = 32  # pixels wide at least: a narrower picture is a digit's crop (MNIST's 28x28, a Fashion-MNIST
# item spanning its frame), where a line cannot be told from a bar, and no notebook line crosses it
RULE_BESIDE = 0.6  # a line stands out: the rows just beside it hold faint ink across less than this share
RULE_FAINT = 0.75  # and is fainter than the ink (its level across the row at most this; the ink's is about 1)
RULE_OVER = 0.25  # on a line, a pixel this much above the line's own level is the pen's ink drawn over it
# printed form lines (`erase_form_lines`): a box around a digit, a row of boxes around a number, a line under it.
# Set on 200 validation digits drawn in boxes and over lines (their reading, not a target's figure), then fixed
LINE_COVER = 0.85  # a side of the ink is a line: its outermost ink lies on one straight line across this share
LINE_BEND = (1.5, 0.015)  # within this many pixels + this share of its length (printed: straight; a pen's bar bends)
LINE_TILT = 0.1  # a line leans at most this much (about 6 degrees)
LINE_THIN = 0.25  # at most this share of the ink's extent across it thick, and as thick along most of its length
LINE_FINE = 0.5  # a line under the ink touching it is at most this many of the ink's stroke widths thick (printed,
# finer than the pen: the straight base of a 2, or the bar of an upside-down T, is as thick as the rest);
LINE_WIDE = 0.5  # a line apart from the ink above it spans at least this share of the ink's width (not a dash)
LINE_APART = 0.7  # or, narrower than the ink (the lowest piece of ink: `_line_apart`), this share of it
LINE_LONG = 6  # and this many times as long as it is thick
LINE_OUTSIDE = 0.1  # at most this share of the rest of the ink lies beyond a line (outside its box, under it)
LINE_EVEN = 0.15  # and divides the row into equal boxes: each wall within this share of a box's width of its place
LINE_LEVELS = (0.25, 0.1)  # lines are looked for in the ink at least this strong, then (none found) at least this:
# a thin printed line is often fainter than the pen, and a faint row of boxes may have lost its bottom to erase_rules
LINE_INNER = 0.9  # in a box with four sides, a wall running down this share of the rows between top and bottom may
# be an inner wall of a row of boxes (a 1 written in a box is shorter than its box and seldom straight to the pixel)
BLOCK_LIFT = 2.5  # a picture enlarged by repeating its pixels (nearest neighbour) has its pixel-to-pixel steps on
# the edges of the blocks: their share of the steps is this many times the edges' share of rows and of columns
# (scripts/block_check.py, 300 validation digits rendered: photos and smooth enlargements at most 1.6, blocky
# ones at least 2.75)
BLOCK_MIN = 4  # blocks at least this many pixels on a side
BLOCK_SOURCE = 256  # from a source of at most this many pixels on a side, and at least BLOCK_SMALLEST
BLOCK_SMALLEST = 5  # (fewer pixels cannot draw a digit; one strong edge across a photo is not a grid)
BLOCK_SQUARE = 1.25  # blocks about as tall as they are wide (at most this ratio)
BLOCK_FLAT = 0.1  # and the picture is flat inside them: it departs from its blocks' values by at most this share
# of how far it departs from its median (JPEG's error; block_check.py: 121 of 136 blocky validation pictures pass;
# a hard-edged plus sign, a checkered silhouette and an MNIST 1 whose edges fall on a grid: 0.15-0.27)


class ImageError(ValueError):
    """A file or upload that is not a readable image of a supported format."""


@dataclass(frozen=True)
class Prepared:
    image: np.ndarray  # (28, 28) float32 in 0..1, ink bright on black, as MNIST
    ink_found: bool  # False for a blank page or noise: no digit to read
    inverted: bool  # the input had dark ink on a light ground
    box: tuple[int, int, int, int] | None  # (top, left, bottom, right) of the ink in the input; bottom/right exclusive
    stroke_width: float = 0.0  # measured stroke width, in 28x28 pixels, before normalising
    stroke_change: float = 0.0  # width added (+) or removed (-) to reach MNIST's range, 28x28 pixels
    shape: int | None = None  # multidigit: the shape of connected ink it was cut from (0, 1, ... left to right)
    blur: float | None = None  # the ink's blur (`ink_blur`, MNIST pixels), where a soft_above asked for it


# ---------------------------------------------------------------- decoding


def _brands(head: bytes) -> tuple[bytes, set[bytes]]:
    """An ISO base-media file's major brand and every brand its ftyp box names; (b"", set()) for other files."""
    if head[4:8] != b"ftyp":
        return b"", set()
    box = head[8:int.from_bytes(head[:4], "big")]
    return head[8:12], {box[start:start + 4] for start in range(0, len(box) - 3, 4)}  # major, version, compatible


def _heif(head: bytes) -> bool:
    """A file of a HEIF brand: a HEIC photo; AVIF (a brand of its own among the box's brands) is left to Pillow."""
    major, brands = _brands(head)
    return major in HEIF_BRANDS and not brands & AVIF_BRANDS


def _heif_opener(label: str) -> None:
    """Teach Pillow HEIF: pi-heif (a dependency: pillow-heif's decoder alone, LGPL libraries; imported here, so that
    other pictures never pay for it), else pillow-heif where that is what is installed."""
    try:
        _register_heif()
    except ImportError:
        raise ImageError(f"{label} is a HEIC/HEIF photo (an iPhone camera's format), which needs pi-heif; "
                         "run `pip install pi-heif` or export it as JPEG") from None


@functools.cache
def _register_heif() -> None:
    try:
        import pi_heif as heif
    except ImportError:
        import pillow_heif as heif
    heif.register_heif_opener()


def _sniff(head: bytes) -> str:
    """What a file that Pillow cannot read probably is, for the error message."""
    text = head.lstrip()[:200].lower()
    if head.startswith(b"%PDF"):
        return "a PDF document"
    if _heif(head):
        return "a HEIC/HEIF file that libheif cannot decode (damaged, or an image sequence)"
    if _brands(head)[0] in AVIF_BRANDS:
        return "an AVIF picture (Pillow reads them from version 11.3: `pip install -U pillow`)"
    if text.startswith(b"<svg") or (text.startswith(b"<?xml") and b"<svg" in text):
        return "an SVG drawing"
    return "not an image"


def load_gray(source: str | Path | bytes, name: str | None = None) -> np.ndarray:
    """Decode a path or bytes to (H, W) float32 gray, 0 black .. 1 white; raise ImageError if unreadable, or if it
    holds several pages (a multi-page TIFF, an animated GIF, WebP or PNG): reading one of them would drop the others
    silently (`load_pages` reads them all)."""
    return _load(source, name, every_page=False)[0]


def load_pages(source: str | Path | bytes, name: str | None = None) -> list[np.ndarray]:
    """Every page of a picture, each as `load_gray` decodes a picture of one page: the pages of a multi-page TIFF
    (its thumbnails left out), the frames of an animated GIF, WebP or PNG; [the picture] for any other. At most
    MAX_PAGES (more raise ImageError)."""
    return _load(source, name, every_page=True)


def _pages(image: Image.Image) -> list[int]:
    """The frames of an opened picture that are pictures of their own (see PAGED), by index; [0] for one."""
    count = getattr(image, "n_frames", 1) if image.format in PAGED else 1
    if count < 2 or image.format != "TIFF":
        return list(range(count))
    pages = []
    for index in range(count):
        image.seek(index)
        if not int(image.tag_v2.get(254, 0)) & REDUCED:
            pages.append(index)
    image.seek(0)
    return pages


def _load(source: str | Path | bytes, name: str | None, every_page: bool) -> list[np.ndarray]:
    label = name or (f"{len(source)}-byte upload" if isinstance(source, (bytes, bytearray)) else str(source))
    if isinstance(source, (bytes, bytearray)):
        stream, head = io.BytesIO(source), bytes(source[:512])
    else:
        path = Path(source)
        if not path.exists():
            raise ImageError(f"{label} does not exist; check the path")
        if path.is_dir():
            raise ImageError(f"{label} is a directory, not an image file; pass one image file")
        if not path.is_file():  # a FIFO or device would block forever
            raise ImageError(f"{label} is not a regular file; pass an image file")
        try:
            with path.open("rb") as opened:
                head = opened.read(512)
            stream = path.open("rb") if head else None
        except OSError as error:
            raise ImageError(f"cannot read {label} ({error.strerror or error}); check its permissions") from None
    if not head:
        raise ImageError(f"{label} is empty (0 bytes); pass a complete image file")
    if _heif(head):
        _heif_opener(label)
    try:
        # Pillow warns (89 to 178 megapixels) or raises (more) in Image.open; both mean a bomb. The
        # filter is process-wide: should threads race on it, the MAX_PIXELS check below still holds.
        with stream, warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(stream) as image:
                if image.format not in FORMATS:
                    raise ImageError(f"{label} is {image.format}, an unsupported format; "
                                     f"convert it to PNG or JPEG (supported: {', '.join(sorted(FORMATS))})")
                pages = _pages(image)
                if len(pages) > 1 and not every_page:
                    raise ImageError(f"{label} holds {len(pages)} pages (a multi-page TIFF or an animation), and "
                                     "one picture is read at a time; save the page to read as a picture of its own "
                                     "(digits predict reads every page of a file, as does digits.images.load_pages)")
                if len(pages) > MAX_PAGES:
                    raise ImageError(f"{label} holds {len(pages)} pages, more than the {MAX_PAGES} read from one "
                                     "file; split it into files of fewer pages")
                grays = []
                for page in pages:
                    image.seek(page)
                    if image.width * image.height > MAX_PIXELS:
                        raise Image.DecompressionBombError("too many pixels")
                    image.load()  # inside the try: a truncated file fails here, never half-decoded
                    grays.append(_to_gray(ImageOps.exif_transpose(image)))
                return grays
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(f"{label} claims more than {MAX_PIXELS // 1_000_000} megapixels (a decompression "
                         "bomb or a huge scan); resize it before reading") from None
    except UnidentifiedImageError:
        raise ImageError(f"{label} is {_sniff(head)}, not a picture Pillow can read; "
                         "export it as PNG or JPEG") from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError, MemoryError) as error:
        reason = str(error).splitlines()[0][:120] if str(error) else type(error).__name__
        raise ImageError(f"{label} is truncated or damaged ({reason}); save or upload it again") from None


def _to_gray(image: Image.Image) -> np.ndarray:
    if image.mode in ("I", "F") or image.mode.startswith("I;16"):  # 16-bit and float pictures
        values = np.nan_to_num(np.asarray(image, dtype=np.float32))
        high = float(values.max()) if values.size else 0.0
        # white is 1 (floats), 255 or 65535: the first that the brightest pixel does not pass by more than a
        # little (resampling overshoots: a float picture of 0..255 data may hold 256.3)
        tops = (65535.0,) if image.mode.startswith("I;16") else (1.0, 255.0) if image.mode == "F" else (255.0,)
        top = next((top for top in tops if high <= OVERSHOOT * top), 65535.0)
        return np.clip(values / top, 0, 1)
    if _transparent(image):
        image = _laid_flat(image)
    return np.asarray(image.convert("L"), dtype=np.float32) / 255.0


def _transparent(image: Image.Image) -> bool:
    return image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info


def _laid_flat(image: Image.Image) -> Image.Image:
    """A picture with transparency laid on paper: white, as a viewer shows it, unless the opaque part is light ink
    covering less than half of the picture (white strokes exported from a dark canvas, which white paper would
    erase): then black, so that the ink keeps its contrast."""
    rgba = image.convert("RGBA")
    opaque = np.asarray(rgba.getchannel("A")) > 127
    backdrop = "white"
    if opaque.any() and opaque.mean() < 0.5:
        light = np.asarray(rgba.convert("RGB").convert("L"))[opaque] > 127
        backdrop = "black" if light.mean() > 0.5 else "white"
    return Image.alpha_composite(Image.new("RGBA", image.size, backdrop), rgba)


def load_rgb(source: str | Path | bytes, page: int = 0) -> np.ndarray:
    """The picture as people see it, for figures: (H, W, 3) float32 0..1, EXIF rotation applied,
    transparency laid flat as `load_gray` lays it; 16-bit and float pictures in gray; `page`: which of
    `load_pages`' pages. Call it on a source `load_gray` or `load_pages` accepted (that is where bad files are
    refused)."""
    stream = io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else open(source, "rb")
    with stream:
        if _heif(stream.read(512)):  # as much of the head as load_gray looks at
            _heif_opener(str(source) if isinstance(source, (str, Path)) else "the picture")
        stream.seek(0)
        with Image.open(stream) as image:
            image.seek(_pages(image)[page])
            image = ImageOps.exif_transpose(image)
            if image.mode in ("I", "F") or image.mode.startswith("I;16"):
                return np.repeat(_to_gray(image)[..., None], 3, axis=2)
            if _transparent(image):
                image = _laid_flat(image)
            return np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0


def to_gray(source, name: str | None = None) -> np.ndarray:
    """Any picture -> (H, W) float32 gray 0..1: a path, bytes, a PIL image, or a 2-D / (H, W, 1|3|4)
    array (uint8 0..255 or float 0..1; colour is grayscaled and RGBA laid flat, as a file would be)."""
    if isinstance(source, (str, Path, bytes, bytearray)):
        return load_gray(source, name)
    if isinstance(source, Image.Image):
        return _to_gray(ImageOps.exif_transpose(source))
    array = np.asarray(source)
    if array.dtype == object or array.dtype.kind not in "biuf":
        raise ImageError(f"{name or 'the picture'} is a {type(source).__name__}; pass a path, bytes, "
                         "a PIL image or a numeric array")
    if array.ndim == 3 and array.shape[-1] in (3, 4):
        as_bytes = array if array.dtype == np.uint8 else np.round(np.clip(array, 0, 1) * 255).astype(np.uint8)
        return _to_gray(Image.fromarray(np.ascontiguousarray(as_bytes)))
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim != 2 or min(array.shape) < 1:
        raise ImageError(f"expected a 2-D image or (H, W, 1|3|4) array, got shape {array.shape}")
    scale = 255.0 if array.dtype == np.uint8 else 1.0
    return np.clip(np.nan_to_num(array.astype(np.float32) / scale), 0, 1)


def prepare_file(source: str | Path | bytes, name: str | None = None, soft_above: float | None = None) -> Prepared:
    return prepare(load_gray(source, name), soft_above)


def prepare_array(array) -> Prepared:
    """A 2-D gray, (H, W, 1), RGB or RGBA array, uint8 0..255 or float 0..1 (e.g. MNIST, a canvas)."""
    return prepare(to_gray(array))


def to_model_input(images, what: str = "images") -> np.ndarray:
    """The one pixel-scaling rule: a batch (N, 28, 28), (N, 28, 28, 1) or one (28, 28) image ->
    (N, 28, 28, 1) float32 in 0..1, what every model takes. uint8 is 0..255; other numbers are 0..1,
    or 0..255 when any value is above 1. NaN, infinities and values outside 0..255 are refused with
    a `ValueError` naming `what`. Pixels are used as given (MNIST-style: ink bright on black)."""
    array = given = np.asarray(images)
    if array.ndim == 2:
        array = array[None]
    if array.ndim == 4 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim != 3 or array.shape[1:] != (CANVAS, CANVAS):
        raise ValueError(f"{what} has shape {tuple(given.shape)}; expected a batch of shape (N, 28, 28) or "
                         "(N, 28, 28, 1)")
    if array.dtype == np.uint8:
        return (array.astype(np.float32) / 255.0)[..., None]
    if array.dtype == bool or array.dtype.kind not in "iuf":
        raise ValueError(f"{what} has dtype {array.dtype}; pass uint8 (0..255) or numbers (0..1 or 0..255)")
    with np.errstate(over="ignore"):  # 1e308 becomes inf, refused below (not a warning in a server's log)
        scaled = array.astype(np.float32)
    if not scaled.size:
        return scaled[..., None]
    # NaN propagates into both; ufunc.reduce skips ndarray.min's Python wrapper (this is a hot path)
    low, high = float(np.minimum.reduce(scaled, axis=None)), float(np.maximum.reduce(scaled, axis=None))
    if low != low or high != high or abs(low) == np.inf or abs(high) == np.inf:
        raise ValueError(f"{what} holds NaN or infinite values; pass finite pixels in 0..1 or 0..255")
    if low < 0 or high > 255:
        raise ValueError(f"{what} holds values from {low:g} to {high:g}; pixels must be in 0..1 or 0..255")
    if high > 1:
        scaled /= 255.0
    return scaled[..., None]


# ---------------------------------------------------------------- cleaning


def _shrink(gray: np.ndarray, rows: int, cols: int | None = None) -> np.ndarray:
    """Average blocks of `rows` x `cols` pixels (`cols` defaults to `rows`) down to one each."""
    cols = rows if cols is None else cols
    if rows <= 1 and cols <= 1:
        return gray
    size = (max(1, gray.shape[1] // cols), max(1, gray.shape[0] // rows))
    return np.asarray(Image.fromarray(gray).resize(size, Image.Resampling.BOX))


def _background(gray: np.ndarray, start: str = "median") -> tuple[np.ndarray, float]:
    """A smooth quadratic lighting surface fitted to the paper only (ink is trimmed away), and its spread. The fit
    starts from the border's median shade, or with start="mode" from its most common shade and the border pixels
    near it: a dark or blurred digit that fills much of the border pulls the median off the paper (`clean`)."""
    factor = math.ceil(max(gray.shape) / 64)
    small = _shrink(gray, *(min(factor, max(1, side // 16)) for side in gray.shape))  # a long strip keeps rows

    def surface(height, width, coefficients):
        rows, cols = np.linspace(-1, 1, height)[:, None], np.linspace(-1, 1, width)[None, :]
        constant, row, col, row2, cross, col2 = coefficients
        return (constant + row * rows + col * cols + row2 * rows**2 + cross * rows * cols + col2 * cols**2)

    rows, cols = np.meshgrid(np.linspace(-1, 1, small.shape[0]), np.linspace(-1, 1, small.shape[1]), indexing="ij")
    design = np.stack([np.ones_like(rows), rows, cols, rows**2, rows * cols, cols**2], -1).reshape(-1, 6)
    values = small.ravel().astype(np.float64)
    # start from the border, which is mostly paper, then take every pixel that lies near the surface
    edge = max(1, round(0.15 * min(small.shape)))
    border = np.ones(small.shape, bool)
    border[edge:-edge, edge:-edge] = False
    border = border.ravel()
    if start == "mode":  # the paper is the border's one common shade; a blurred stroke's shades spread out
        counts, shades = np.histogram(values[border], bins=50, range=(0.0, 1.0))
        common = int(np.convolve(counts, np.ones(3), "same").argmax())
        level = (shades[common] + shades[common + 1]) / 2
        paper = border & (np.abs(values - level) <= MODE_BAND)
    else:
        level, paper = np.median(values[border]), border
    coefficients = np.array([level, 0, 0, 0, 0, 0])
    for step in range(8):
        deviation = np.abs(values - design @ coefficients)
        paper = (deviation <= max(2.5 * 1.4826 * np.median(deviation[paper]), 0.02)) & (border | (step >= 4))
        if paper.sum() < 12:
            break
        normal = design[paper].T @ design[paper] + 1e-6 * np.eye(6)  # 6x6 least squares
        coefficients = np.linalg.solve(normal, design[paper].T @ values[paper])
    spread = 1.4826 * float(np.median(np.abs(values - design @ coefficients)[paper])) if paper.any() else 0.0
    return surface(*gray.shape, coefficients).astype(np.float32), spread


def clean(gray: np.ndarray) -> tuple[np.ndarray, bool, bool]:
    """(H, W) gray -> (ink intensity 0..1 with the ground at 0, inverted, ink_found). Where no ink stands out of
    the paper fitted from the border's median shade, the paper is fitted again from its most common shade
    (`_background`): a blurred or bold digit filling the frame (a close-up photo) darkens so much of the border
    that the first fit bends into the ink, and its spread then hides the digit as noise."""
    # pixel-to-pixel differences measure the noise whatever share of the picture is ink
    steps = np.concatenate([np.diff(gray, axis=0).ravel(), np.diff(gray, axis=1).ravel()])
    step_noise = 1.4826 * float(np.median(np.abs(steps))) / math.sqrt(2) if steps.size else 0
    for start in ("median", "mode"):
        background, spread = _background(gray, start)
        residual = gray - background
        noise = max(step_noise, spread, 1 / 255)
        floor = max(5 * noise, 0.02)
        dark, light = np.clip(-residual - floor, 0, None).sum(), np.clip(residual - floor, 0, None).sum()
        inverted = bool(dark > light)  # ink is whichever side stands further out from the paper
        ink = -residual if inverted else residual
        candidates = ink[ink > floor]
        level = float(np.percentile(candidates, 90)) if candidates.size >= 4 else 0.0
        if level >= max(0.06, 8 * noise):
            return np.clip((ink - floor) / (level - floor), 0, 1).astype(np.float32), inverted, True
    return np.zeros_like(gray), inverted, False


# ---------------------------------------------------------------- one digit, MNIST's recipe


def stroke_width(core: np.ndarray) -> float:
    """Mean stroke width of a boolean shape in its own pixels (a straight w-wide stroke gives w). The distances are
    taken within the shape's box and a blank ring around it: the same as over the whole picture (a nearest blank
    pixel outside the ring has one as near in the ring), at a fraction of the cost on a large picture."""
    if not core.any():
        return 0.0
    shape, depth, _ = _depth(core)
    return _width(shape, depth)


def _depth(core: np.ndarray) -> tuple[np.ndarray, np.ndarray, tuple[int, int, int, int]]:
    """A non-empty boolean shape within its box, each of its pixels' distance to the nearest blank pixel (0 off
    the shape; taken within the box and a blank ring around it), and the box (top, left, bottom, right)."""
    box = top, left, bottom, right = bounds(core)
    core = core[top:bottom, left:right]
    return core, ndimage.distance_transform_edt(np.pad(core, 1))[1:-1, 1:-1], box


def _width(core: np.ndarray, depth: np.ndarray) -> float:
    """stroke_width from `_depth`'s shape and distances."""
    return max(4.0 * float(depth[core].mean()) - 2.0, 1.0)


def _redraw(core: np.ndarray, depth: np.ndarray, box: tuple[int, int, int, int], half: float) -> np.ndarray:
    """The shape `core` re-drawn `half` pixels bolder (thinner if negative) from its signed distance, with a blank
    margin for the growth: intensity 0..1. `depth` and `box` are `_depth(core)`'s distances and box, the same as
    over the whole picture; the blank side's distances only matter when the stroke grows (thinned, a blank pixel,
    at least 1 from the shape, stays blank: -0.5 there gives the same 0 as its distance would)."""
    top, left, bottom, right = box
    pad = max(int(math.ceil(half)), 0) + 2
    core = np.pad(core, pad)
    inside = np.zeros(core.shape)
    inside[pad + top:pad + bottom, pad + left:pad + right] = depth
    signed = np.where(core, inside - 0.5, 0.5 - ndimage.distance_transform_edt(~core) if half > 0 else -0.5)
    return np.clip(signed + half + 0.5, 0, 1).astype(np.float32)


def sharpen(intensity: np.ndarray, sigma: float, amount: float | None = None) -> np.ndarray:
    """Ink (ground 0) through an unsharp mask of `sigma` pixels: the ground around it stays 0 (its dip is
    clipped), so the ink keeps its box. Blurred as if the ground went on beyond the picture."""
    amount = SHARPEN_AMOUNT if amount is None else amount
    if amount <= 0 or sigma <= 0:
        return intensity
    soft = _gaussian(intensity.astype(np.float32), sigma)
    return np.clip(intensity + amount * (intensity - soft), 0, 1).astype(np.float32)


def _gaussian(image: np.ndarray, sigma: float, detail: float = 10.0) -> np.ndarray:
    """A Gaussian blur of `sigma` pixels with a 0 ground beyond the picture; exact below `detail` x 2 pixels. A
    wider one (a large digit's crop) is taken on blocks of k = sigma // detail pixels averaged, then interpolated
    back linearly: a few hundredths off at most, where the exact blur's cost grows with sigma (0.7 s at 100)."""
    blocks = int(sigma // detail)
    if blocks <= 1:
        return ndimage.gaussian_filter(image, sigma, mode="constant")
    height, width = image.shape
    padded = np.zeros((-(-height // blocks) * blocks, -(-width // blocks) * blocks), np.float32)
    padded[:height, :width] = image
    small = padded.reshape(padded.shape[0] // blocks, blocks, padded.shape[1] // blocks, blocks).mean((1, 3))
    # the block average and the interpolation blur by about blocks / 2 more: the small blur makes up the rest
    small = ndimage.gaussian_filter(small, math.sqrt(sigma**2 - blocks**2 / 4) / blocks, mode="constant")
    for axis, size in ((0, height), (1, width)):
        place = (np.arange(size) + 0.5) / blocks - 0.5  # each pixel's centre in block units
        first = np.clip(np.floor(place).astype(int), 0, small.shape[axis] - 1)
        after = np.minimum(first + 1, small.shape[axis] - 1)
        weight = np.clip(place - first, 0, 1).astype(np.float32).reshape((-1, 1) if axis == 0 else (1, -1))
        small = np.take(small, first, axis) * (1 - weight) + np.take(small, after, axis) * weight
    return small


def bounds(mask: np.ndarray) -> tuple[int, int, int, int]:
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    return int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1


def _window(image: np.ndarray, top: int, left: int, height: int, width: int) -> np.ndarray:
    """image[top:top+height, left:left+width], zero outside the image."""
    out = np.zeros((height, width), np.float32)
    rows = slice(max(top, 0), min(top + height, image.shape[0]))
    cols = slice(max(left, 0), min(left + width, image.shape[1]))
    if rows.start < rows.stop and cols.start < cols.stop:
        out[rows.start - top:rows.stop - top, cols.start - left:cols.stop - left] = image[rows, cols]
    return out


def ink_blur(intensity: np.ndarray) -> float:
    """How blurred one digit's ink (bright, ground 0) is, in MNIST pixels: the sigma on SOFT_GRID whose Gaussian
    blur best turns the ink's own strokes (intensity >= 0.5) into the ink as it is (least squares), with the
    strokes' larger side drawn SOFT_SCALE x BOX pixels. A photo of a pen's digit comes out at 0.2-0.4, an MNIST
    digit enlarged smoothly at about 0.5 (its anti-aliased edges), a digit 6 px tall enlarged or one blurred by 1.6
    MNIST pixels at 0.8-1.2 (benchmarks/stress.py's conditions, 1,000 validation digits, 5th-95th percentiles).
    The error falls with the blur to its least and then rises (so on all 5,394 digits of 600 other validation digits
    under the nine conditions, seed 5): the search stops at the first rise, after about 7 of the 31 blurs."""
    core = intensity >= 0.5
    if not core.any():
        return 0.0
    top, left, bottom, right = bounds(core)
    scale = SOFT_SCALE * BOX / max(bottom - top, right - left)
    height, width = (max(2, round(side * scale)) for side in intensity.shape)
    resample = Image.Resampling.BOX if scale < 1 else Image.Resampling.BILINEAR
    ink = np.pad(np.asarray(Image.fromarray(intensity.astype(np.float32)).resize((width, height), resample)), 8)
    strokes = (ink >= 0.5).astype(np.float32)
    best, least = 0, math.inf
    for index, sigma in enumerate(SOFT_GRID):  # the error falls to its least, then rises: stop at the first rise
        blurred = ndimage.gaussian_filter(strokes, sigma * SOFT_SCALE, mode="constant") if sigma else strokes
        error = float(np.square(blurred - ink).sum())
        if error >= least:
            break
        best, least = index, error
    return SOFT_GRID[best]


def to_mnist(intensity: np.ndarray, unsharp: bool = True,
             soft_above: float | None = None) -> tuple[np.ndarray, float, float, float | None]:
    """One digit's ink (bright, ground 0) -> (28x28, stroke width, stroke change, blur) by MNIST's recipe;
    `unsharp`: through the unsharp mask (`sharpen`) first. `soft_above`: ink blurred by more than this (`ink_blur`,
    MNIST pixels; the blur returned) is taken as it is, neither sharpened nor re-drawn (stroke change 0); None:
    never, and the blur is not measured (None)."""
    top, left, bottom, right = bounds(intensity >= 0.5)
    size = max(bottom - top, right - left)
    if intensity.shape == (CANVAS, CANVAS) and abs(size - BOX) <= 1:  # already MNIST-sized (an MNIST image):
        rows, cols = np.mgrid[0:CANVAS, 0:CANVAS]  # only re-centre it, by whole pixels as MNIST did
        mass = intensity.sum()
        shift_row, shift_col = (round(float((intensity * axis).sum() / mass) - CENTRE) for axis in (rows, cols))
        return _window(intensity, shift_row, shift_col, CANVAS, CANVAS), stroke_width(intensity >= 0.5), 0.0, None
    top, left, bottom, right = bounds(intensity > 0)
    intensity = intensity[max(top - 1, 0):bottom + 1, max(left - 1, 0):right + 1]  # the ink and a margin
    blur = None if soft_above is None else ink_blur(intensity)
    soft = blur is not None and blur > soft_above  # taken as it is
    width = stroke_width(intensity >= 0.5) * BOX / size if soft else 0.0
    # enlarge small crops smoothly: stroke arithmetic needs sub-pixel room, and a tiny crop taken as it is would come
    # out in blocks from the box filter
    if size < (BOX if soft else DETAIL):
        intensity = np.clip(ndimage.zoom(intensity, DETAIL / size, order=1, grid_mode=True, mode="grid-constant"), 0, 1)
        size = DETAIL
    if soft:
        return _scaled(intensity, BOX / size), width, 0.0, blur
    if unsharp:
        intensity = sharpen(intensity, SHARPEN_SIGMA * max(size, DETAIL) / BOX)
    # a thin stroke fades below half intensity in places: keep its faint parts; a one-pixel stroke of ink
    # just over half may fade below it everywhere when enlarged (a sliver cut off the end of a bar)
    peak = float(intensity.max())
    for threshold in (0.5, 0.25) if peak >= 0.5 else (peak / 2,):
        core = intensity >= threshold
        shape, depth, (top, left, bottom, right) = _depth(core)
        size = max(bottom - top, right - left)
        width = _width(shape, depth) * BOX / size  # in 28x28 pixels
        if width >= STROKE_RANGE[0]:
            break
    target = float(np.clip(width, *STROKE_RANGE))
    source = intensity
    if abs(target - width) > 0.05 or threshold < 0.5:  # re-draw the shape at the new width from its signed distance
        half = (target - width) * size / (2 * (BOX - target))  # dilation also grows the box
        redrawn = _redraw(core, depth, (top, left, bottom, right), half)
        if (redrawn >= 0.5).any():  # a dot the thinning would erase is kept as drawn
            source = redrawn
            top, left, bottom, right = bounds(source >= 0.5)
            size = max(bottom - top, right - left)
    return _scaled(source, BOX / size), width, target - width, blur


def _scaled(source: np.ndarray, scale: float) -> np.ndarray:
    """MNIST's crop: `source` (ink, ground 0) scaled by `scale` output pixels per source pixel, its centre of mass
    at CENTRE of the 28x28 canvas (box filter: anti-aliased)."""
    mass = source.sum()
    com_row = float((source.sum(1) * np.arange(source.shape[0])).sum() / mass)
    com_col = float((source.sum(0) * np.arange(source.shape[1])).sum() / mass)
    # output coordinate u (pixel edges) <- source coordinate (com + 0.5) + (u - (CENTRE + 0.5)) / scale
    first_row = com_row + 0.5 - (CENTRE + 0.5) / scale
    first_col = com_col + 0.5 - (CENTRE + 0.5) / scale
    span = CANVAS / scale
    row0, col0 = math.floor(first_row), math.floor(first_col)
    window = _window(source, row0, col0, math.ceil(span) + 2, math.ceil(span) + 2)
    box = (first_col - col0, first_row - row0, first_col - col0 + span, first_row - row0 + span)
    image = Image.fromarray(window).resize((CANVAS, CANVAS), Image.Resampling.BOX, box=box)
    return np.clip(np.asarray(image), 0, 1).astype(np.float32)


def erase_rules(intensity: np.ndarray) -> np.ndarray:
    """Ink intensity (ground 0) with ruled lines taken out: bands of rows where faint ink runs across at least
    RULE_ACROSS of the picture's width (a row either side is allowed for a slight tilt) and which are at most
    RULE_THIN times as thick as the strokes of the other ink, with rows beside them far emptier (RULE_BESIDE;
    the full-width bottom of a 2 in a tight crop has full rows beside it) and fainter than the ink (RULE_FAINT:
    a bar as dark as the pen is the digit's, whatever its width). Each band's pixels take the fainter of the rows
    just above and below it, so a stroke crossing the line stays whole and the line between strokes goes,
    except where the ink stands RULE_OVER above the line's level (a stroke of the digit running along it).
    A picture whose only ink is such lines is left as it is (a rule is not erased into blank paper)."""
    height, width = intensity.shape
    if height < 8 or width < RULE_PICTURE:
        return intensity
    faint = intensity > 0.1
    near = faint.copy()
    near[1:] |= faint[:-1]
    near[:-1] |= faint[1:]
    across = near.mean(1) >= RULE_ACROSS
    if not across.any():
        return intensity
    bands = [np.arange(rows.start, rows.stop) for rows, in ndimage.find_objects(ndimage.label(across)[0])]
    bands = [rows for rows in bands if faint[rows].mean(1).max() >= RULE_ACROSS]  # one row really runs across
    core = intensity >= 0.5
    others = core.copy()
    for rows in bands:
        others[max(rows[0] - 1, 0):rows[-1] + 2] = False
    if not others.any():
        return intensity
    stroke = stroke_width(others)
    erased = intensity.copy()
    for rows in bands:
        top, bottom = max(rows[0] - 1, 0), min(rows[-1] + 2, height)  # the band and its faint edges
        if (core[top:bottom].mean(1) >= 0.5).sum() > max(1.0, RULE_THIN * stroke):
            continue  # as thick as a stroke: a bar of the digit, not a line of the paper
        if np.median(intensity[rows], axis=1).max() > RULE_FAINT:
            continue  # as dark as the ink: a notebook's lines are fainter than what is written on them
        beside = [row for row in (top - 1, bottom) if 0 <= row < height]  # the rows just above and below
        if beside and faint[beside].mean(1).max() >= RULE_BESIDE:
            continue  # the rows beside it are nearly as full: the widest part of a broad stroke, not a line
        fill = intensity[beside].min(0) if beside else np.zeros(width, np.float32)
        band = intensity[top:bottom]
        inked = band > np.median(band, axis=1, keepdims=True) + RULE_OVER  # the pen's ink drawn over the line
        erased[top:bottom] = np.where(inked, band, fill)
    return erased


def _side_line(core: np.ndarray) -> tuple[float, float, float, int, int] | None:
    """The top side of `core`'s ink as a printed line: (row at column 0, slope, thickness, first column, last column
    + 1) when the topmost ink of LINE_COVER of its columns lies on one straight line (LINE_BEND, LINE_TILT), thin
    (LINE_THIN of the ink's height) and as thick along most of its length; None otherwise."""
    columns = np.flatnonzero(core.any(0))
    left, right = int(columns[0]), int(columns[-1]) + 1
    first = np.argmax(core, axis=0)
    x, y = columns.astype(np.float64), first[columns].astype(np.float64)
    if x.size < 8:
        return None
    tolerance = LINE_BEND[0] + LINE_BEND[1] * (right - left)
    rows_on = np.sort(y)  # a quick no: LINE_COVER of the columns must lie within a tilted line's rise
    need = int(math.ceil(LINE_COVER * (right - left)))
    if need > y.size or (rows_on[need - 1:] - rows_on[:y.size - need + 1]).min() > LINE_TILT * (right - left) \
            + 2 * tolerance:
        return None
    every = max(1, x.size // 128)  # the median of pairwise slopes (Theil-Sen): ink above the line does not pull it
    first_of, second_of = np.triu_indices(x[::every].size, 1)
    slope = float(np.median(np.diff(y[::every][[first_of, second_of]], axis=0) /
                            np.diff(x[::every][[first_of, second_of]], axis=0)))
    intercept = float(np.median(y - slope * x))
    for _ in range(2):  # then least squares over the columns on the line
        near = np.abs(y - (intercept + slope * x)) <= tolerance
        if near.sum() < 2:
            return None
        slope, intercept = np.polyfit(x[near], y[near], 1)
    near = np.abs(y - (intercept + slope * x)) <= tolerance
    if near.sum() < LINE_COVER * (right - left) or abs(slope) > LINE_TILT:
        return None
    on = columns[near]  # the ink's depth from the line's top edge down, column by column: to its first blank row
    below = ~core[:, on] & (np.arange(core.shape[0])[:, None] >= first[on][None, :])
    runs = np.where(below.any(0), np.argmax(below, axis=0), core.shape[0]) - first[on]
    thickness = float(np.median(runs))
    rows = np.flatnonzero(core.any(1))
    if thickness > LINE_THIN * (rows[-1] + 1 - rows[0]) or np.mean(runs <= 1.5 * thickness + 1) < 0.7:
        return None
    return float(intercept), float(slope), thickness, left, right


def _band_edges(line: tuple[float, float, float, int, int], columns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where a `_side_line`'s band lies in these columns: (its first row, the first row below it); the band holds the
    line and its grey edges, 1 + a quarter of its thickness either side."""
    intercept, slope, thickness, _, _ = line
    top, pad = intercept + slope * columns, 1 + thickness / 4
    return top - pad, top + thickness + pad


def _line_band(shape: tuple[int, int], line: tuple[float, float, float, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(the pixels of a `_side_line`'s band (`_band_edges`); the pixels beyond it, above it in its columns)."""
    first, below = _band_edges(line, np.arange(shape[1])[None, :])
    rows = np.arange(shape[0])[:, None]
    left, right = line[3:]
    band, beyond = (rows >= first) & (rows < below), rows < first
    for mask in (band, beyond):
        mask[:, :left] = False
        mask[:, right:] = False
    return band, beyond


_SIDES = {"top": (lambda a: a, lambda a: a), "bottom": (np.flipud, np.flipud),  # (view as top, back)
          "left": (np.transpose, np.transpose), "right": (lambda a: np.fliplr(a).T, lambda a: np.fliplr(a.T))}


def _inner_walls(ink: np.ndarray, top: tuple, bottom: tuple, ends: tuple[float, float]) -> np.ndarray:
    """The inner walls of a row of boxes whose top and bottom lines are `_side_line`s `top` and `bottom` (the bottom
    one fitted upside down): in the `ink` between them, column by column along the lines' perpendicular, runs of
    columns inked (within a pixel) down LINE_INNER of the rows between the lines there, no thicker than the lines
    (twice, and 5 pixels for their grey edges): a pen's stem is thicker than print, and shorter than its box. Of
    those, the walls are the ones that divide the box between its side walls `ends` (columns, at the middle row)
    into equal boxes, each where it should be within LINE_EVEN of a box's width, most boxes first: a stroke of a
    digit is seldom where a wall would be."""
    height, width = ink.shape
    columns = np.arange(width)
    # the first and last rows between the lines' bands, column by column
    upper, lower = _band_edges(top, columns)[1], height - 1 - _band_edges(bottom, columns)[1]
    walls = np.zeros_like(ink)
    first, last = int(max(np.floor(upper.min()), 0)), int(min(np.ceil(lower.max()) + 1, height))
    if last - first < 4:
        return walls
    rows = np.arange(first, last)
    slope = (top[1] - bottom[1]) / 2
    middle = (first + last) / 2
    shifted = np.rint(columns[None, :] - slope * (rows[:, None] - middle)).astype(np.intp)  # perpendicular
    inside = (shifted >= 0) & (shifted < width)
    clipped = np.clip(shifted, 0, width - 1)
    between = inside & (rows[:, None] >= upper[clipped]) & (rows[:, None] <= lower[clipped])
    near = ink.copy()  # inked within a pixel sideways: a wall one or two pixels wide strays off the rounded path
    near[:, 1:] |= ink[:, :-1]
    near[:, :-1] |= ink[:, 1:]
    inked = near[rows[:, None], clipped] & between
    depth = between.sum(0)
    full = (depth >= 4) & (inked.sum(0) >= LINE_INNER * np.maximum(depth, 1))
    thickest = 2 * max(top[2], bottom[2]) + 5  # and the pixel either side
    runs = [run for (run,) in ndimage.find_objects(ndimage.label(full)[0]) if run.stop - run.start <= thickest]
    centres = np.array([(run.start + run.stop - 1) / 2 for run in runs])
    left, right = ends
    for count in range(round((right - left) / max(thickest, 1)), 1, -1):  # the most boxes first
        cell = (right - left) / count
        expected = left + cell * np.arange(1, count)
        if not centres.size:
            break
        nearest = np.abs(centres[None, :] - expected[:, None]).argmin(1)
        if (np.abs(centres[nearest] - expected) <= LINE_EVEN * cell).all():
            for index in nearest:  # the walls where a row of equal boxes has them; other runs are the pen's
                run = runs[index]
                cells = shifted[:, max(run.start - 1, 0):min(run.stop + 1, width)]
                keep = between[:, max(run.start - 1, 0):min(run.stop + 1, width)]
                walls[np.broadcast_to(rows[:, None], cells.shape)[keep], cells[keep]] = True
            break
    return walls


def _middle_column(band: np.ndarray) -> float:
    """Where a side wall's band is, at the middle of its rows: its columns' mean."""
    rows = np.flatnonzero(band.any(1))
    return float(np.flatnonzero(band[(rows[0] + rows[-1]) // 2]).mean())


def erase_form_lines(intensity: np.ndarray) -> np.ndarray:
    """Ink intensity (ground 0) with printed form lines taken out, as dark as the pen or not: a box around the ink
    and the inner walls of a row of boxes, or a line under the ink (`_form_sides`), or a line under the ink and
    apart from it that is narrower than the ink (`_line_apart`). A stroke crossing a line is cut there. A picture
    narrower than RULE_PICTURE, or whose only ink is such lines, is left as it is."""
    if min(intensity.shape) < RULE_PICTURE:
        return intensity
    faint = intensity >= LINE_LEVELS[-1]
    for level in LINE_LEVELS:
        core = intensity >= level
        if core.sum() < 20:
            continue
        erase = _form_sides(core, faint)
        if erase is None:
            erase = _line_apart(core)
        if erase is not None:
            return np.where(erase, 0, intensity).astype(intensity.dtype)
    return intensity


def _form_sides(core: np.ndarray, faint: np.ndarray) -> np.ndarray | None:
    """The pixels to erase where the sides of the ink `core` are printed lines (`_side_line`): three or four of them (a
    box), with the inner walls of a row of boxes where it has all four (`_inner_walls`, in the `faint` ink: a thin
    wall fades in places; an open box's ink keeps off its open side); or the bottom one alone, at least LINE_WIDE as
    wide as the ink above it, and apart from it or finer than the pen (LINE_FINE). The rest of the ink must lie on the
    lines' inner side (LINE_OUTSIDE). None where there are none."""
    bands, beyond, lines = {}, {}, {}
    for side, (view, back) in _SIDES.items():
        line = _side_line(view(core))
        if line is not None:
            band, outside = _line_band(view(core).shape, line)
            bands[side], beyond[side], lines[side] = back(band), back(outside), line
    if not bands:
        return None
    rest = core & ~np.logical_or.reduce(list(bands.values()))
    if rest.sum() < 10:
        return None  # nothing but lines: not erased into blank paper
    # a line of a form has the rest of the ink on its inner side (a stroke may cross it): the bar of a plus sign or
    # the base of an L seen from above is a side of their ink, but ink lies on both sides of it
    bands = {side: band for side, band in bands.items() if (rest & beyond[side]).sum() <= LINE_OUTSIDE * rest.sum()}
    if not bands:
        return None
    rest = core & ~np.logical_or.reduce(list(bands.values()))
    if len(bands) >= 3:
        erase = np.logical_or.reduce(list(bands.values()))
        if len(bands) == 3:  # an open box: the rest keeps off its open side (else it may be that side, not found)
            open_side = next(side for side in _SIDES if side not in bands)
            view, thickest = _SIDES[open_side][0], max(lines[side][2] for side in bands)
            if np.flatnonzero(view(rest).any(1))[0] <= np.flatnonzero(view(core).any(1))[0] + 1 + thickest:
                return None
        if len(bands) == 4:
            walls = _inner_walls(faint & ~erase, lines["top"], lines["bottom"], (_middle_column(bands["left"]),
                                                                                    _middle_column(bands["right"])))
            if (rest & ~walls).sum() >= 10:
                erase |= walls
        return erase
    if "bottom" not in bands:
        return None
    rest = core & ~bands["bottom"]  # a line under the ink: the rest is all the other ink (a top bar too: a Sigma)
    top, left, bottom, right = bounds(rest)
    line = core & bands["bottom"]
    line_top, line_left, line_bottom, line_right = bounds(line)
    touching = bool((ndimage.binary_dilation(line, EIGHT_NEIGHBOURS) & rest).any())
    if touching and lines["bottom"][2] > LINE_FINE * stroke_width(rest):
        return None
    if bottom > line_bottom or line_right - line_left < LINE_WIDE * (right - left):
        return None
    return bands["bottom"]


def _line_apart(core: np.ndarray) -> np.ndarray | None:
    """A line under the ink and apart from it, as wide as LINE_APART of it or more (it may be narrower than the ink,
    which `_form_sides` needs it to span): the lowest piece of ink, when it is straight (LINE_BEND, LINE_TILT), as
    thick all along, LINE_LONG times as long as thick, and the rest of the ink lies above it and over it. Its pixels
    and a one-pixel ring (its grey edges); None where there is none."""
    labels, count = ndimage.label(core, EIGHT_NEIGHBOURS)
    if count < 2:
        return None
    boxes = ndimage.find_objects(labels)
    lowest = max(range(count), key=lambda index: boxes[index][0].stop)
    piece = labels == lowest + 1
    rows, cols = boxes[lowest]
    columns = np.arange(cols.start, cols.stop)
    inked = piece[:, columns]
    if not inked.any(0).all():
        return None
    first = np.argmax(inked, axis=0)
    last = inked.shape[0] - 1 - np.argmax(inked[::-1], axis=0)
    thickness = last - first + 1
    median = float(np.median(thickness))
    if columns.size < LINE_LONG * median or np.mean(thickness <= 1.5 * median + 1) < 0.9:
        return None
    slope, intercept = np.polyfit(columns, first, 1)
    straight = np.abs(first - (intercept + slope * columns)) <= LINE_BEND[0] + LINE_BEND[1] * columns.size
    if straight.mean() < 0.9 or abs(slope) > LINE_TILT:
        return None
    rest = core & ~piece
    if rest.sum() < 10:
        return None
    top, left, bottom, right = bounds(rest)
    overlap = min(right, cols.stop) - max(left, cols.start)
    if bottom > rows.start + 1 or columns.size < LINE_APART * (right - left) or overlap < 0.5 * columns.size:
        return None
    return ndimage.binary_dilation(piece, EIGHT_NEIGHBOURS)


def _blocks(size: int, source: int) -> np.ndarray:
    """For a line of `size` pixels enlarged from `source` by repeating pixels: the source pixel each one repeats
    (pixel centres scaled, as PIL's nearest neighbour does it, rounding included)."""
    return np.floor((np.arange(size) + 0.5) * (source / size)).astype(np.intp)


def _block_edges(size: int, source: int) -> np.ndarray:
    """Which of the line's size - 1 steps (pixel i to i + 1) cross from one source pixel to the next."""
    block = _blocks(size, source)
    return block[1:] != block[:-1]


def _block_grid(steps: np.ndarray) -> tuple[int, float]:
    """Mean step sizes along one axis -> (source size, lift) of the grid of block edges that gathers the steps
    best (lift: their share of the steps over their share of the positions); (0, 0.0) when none fits."""
    size, total = steps.size + 1, float(steps.sum())
    best, best_score = (0, 0.0), 0.0
    if total <= 0:
        return best
    for source in range(BLOCK_SMALLEST, min(BLOCK_SOURCE, size // BLOCK_MIN) + 1):
        edges = _block_edges(size, source)
        share, positions = float(steps[edges].sum()) / total, float(edges.mean())
        score = share * share / positions  # a grid twice as fine or half as fine scores half
        if score > best_score:
            best, best_score = (source, share / positions), score
    return best


def block_lines(gray: np.ndarray) -> tuple[int, int, float]:
    """(rows, columns, lift) of the block grid that gathers the picture's steps best along each axis; the lift is
    the weaker axis's (0.0 when no grid fits). Steps across a large picture are measured on every n-th line."""
    every = max(1, max(gray.shape) // 1024)
    rows, row_lift = _block_grid(np.abs(np.diff(gray[:, ::every], axis=0)).mean(1))
    cols, col_lift = _block_grid(np.abs(np.diff(gray[::every], axis=1)).mean(0))
    return rows, cols, min(row_lift, col_lift)


def block_source(gray: np.ndarray, rows: int, cols: int) -> tuple[np.ndarray, float]:
    """The picture taken back to a rows x cols source (each block's mean away from its edges), and how flat it is
    inside its blocks: its mean departure from its blocks' values over its mean departure from its median."""
    height, width = gray.shape
    row_block, col_block = _blocks(height, rows), _blocks(width, cols)
    row_edges, col_edges = _block_edges(height, rows), _block_edges(width, cols)
    row_inner, col_inner = np.ones(height, bool), np.ones(width, bool)  # away from the blocks' edges
    for inner, edges in ((row_inner, row_edges), (col_inner, col_edges)):
        inner[1:] &= ~edges
        inner[:-1] &= ~edges
    index = (row_block[:, None] * cols + col_block[None, :]).ravel()
    weight = (row_inner[:, None] & col_inner[None, :]).ravel().astype(np.float64)
    sums = np.bincount(index, gray.ravel() * weight, rows * cols)
    counts = np.bincount(index, weight, rows * cols)
    source = (sums / np.maximum(counts, 1)).reshape(rows, cols).astype(np.float32)
    departure = float(np.abs(gray - source.ravel()[index].reshape(height, width)).mean())
    spread = float(np.abs(gray - np.median(gray)).mean())
    return source, departure / spread if spread > 0 else (math.inf if departure > 0 else 0.0)


def smooth_blocks(gray: np.ndarray) -> np.ndarray:
    """A picture enlarged from a small one by repeating its pixels (blocky, nearest neighbour) is taken back to
    its own pixels (`block_source`) and enlarged smoothly (bicubic) to the same size, as a camera or a smooth
    enlargement would have drawn it; any other picture comes back as it is. Block edges must gather BLOCK_LIFT
    times their share of the steps across both axes (`block_lines`), with blocks at least BLOCK_MIN pixels wide,
    about square (BLOCK_SQUARE), from a source of BLOCK_SMALLEST to BLOCK_SOURCE pixels a side, and the picture
    must be flat inside them (BLOCK_FLAT)."""
    height, width = gray.shape
    if min(height, width) < 2 * BLOCK_MIN:
        return gray
    rows, cols, lift = block_lines(gray)
    if lift < BLOCK_LIFT:
        return gray
    block_height, block_width = height / rows, width / cols
    if max(block_height, block_width) > BLOCK_SQUARE * min(block_height, block_width):
        return gray
    source, flatness = block_source(gray, rows, cols)
    if flatness > BLOCK_FLAT:
        return gray
    enlarged = Image.fromarray(source).resize((width, height), Image.Resampling.BICUBIC)
    return np.clip(np.asarray(enlarged), 0, 1).astype(np.float32)


@dataclass
class Ink:
    """The cleaned picture and its labelled ink, at working resolution (`factor` times smaller)."""
    intensity: np.ndarray
    inverted: bool
    factor: int
    shape: tuple[int, int]  # of the original picture
    labels: np.ndarray | None = None  # ink cores (intensity >= 0.5), 8-connected; None: no ink
    owner: np.ndarray | None = None  # each inked pixel's nearest core label, 0 if none
    areas: np.ndarray | None = None
    boxes: list | None = None  # ndimage.find_objects slices, index label - 1


def analyse(gray: np.ndarray) -> Ink:
    gray = smooth_blocks(np.asarray(gray, np.float32))
    factor = max(1, math.ceil(math.sqrt(gray.size / WORK_PIXELS)))
    small = _shrink(gray, factor)
    intensity, inverted, found = clean(small)
    if found:
        intensity = erase_form_lines(erase_rules(intensity))
    ink = Ink(intensity, inverted, factor, gray.shape)
    core = intensity >= 0.5
    if not found or not core.any():
        return ink
    ink.labels, count = ndimage.label(core, EIGHT_NEIGHBOURS)
    ink.owner = _owners(core, ink.labels, intensity)
    ink.areas = np.bincount(ink.labels.ravel(), minlength=count + 1)
    ink.boxes = ndimage.find_objects(ink.labels)
    return ink


def _owners(core: np.ndarray, labels: np.ndarray, intensity: np.ndarray) -> np.ndarray:
    """Each inked pixel's nearest core label, 0 beyond 2 + the stroke width from every core (or blank). The
    distances are taken within the cores' box grown by that reach: every core lies inside it, so each pixel in it
    finds the same nearest core as over the whole picture, and a pixel outside it is farther than the reach."""
    shape, depth, (top, left, bottom, right) = _depth(core)
    reach = 2 + _width(shape, depth)
    grow = int(math.ceil(reach)) + 1
    top, left = max(top - grow, 0), max(left - grow, 0)
    bottom, right = min(bottom + grow, core.shape[0]), min(right + grow, core.shape[1])
    distance, (near_rows, near_cols) = ndimage.distance_transform_edt(~core[top:bottom, left:right],
                                                                      return_indices=True)
    near = labels[top:bottom, left:right][near_rows, near_cols]
    near[(distance > reach) | (intensity[top:bottom, left:right] <= 0)] = 0
    owner = np.zeros_like(labels)
    owner[top:bottom, left:right] = near
    return owner


def ink_mask(ink: Ink, members) -> np.ndarray:
    """The pixels (cores and their faint edges) of components `members`."""
    return np.isin(ink.owner, list(members))


def cut_digit(ink: Ink, mask: np.ndarray, unsharp: bool = True, soft_above: float | None = None) -> Prepared:
    """Cut one digit out of the cleaned picture and prepare it. The work is done within the mask's box and a
    one-pixel ring (where the picture has one), which holds all `to_mnist` takes of the whole picture: its ink
    and a margin. In an MNIST-sized picture, or where the box is MNIST-sized, the whole picture is used: `to_mnist`
    tells that size apart. `unsharp`, `soft_above`: as `to_mnist`'s."""
    top, left, bottom, right = bounds(mask)
    rows = slice(max(top - 1, 0), min(bottom + 1, mask.shape[0]))
    cols = slice(max(left - 1, 0), min(right + 1, mask.shape[1]))
    if (CANVAS, CANVAS) in (mask.shape, (rows.stop - rows.start, cols.stop - cols.start)):
        rows = cols = slice(None)
    inked = np.where(mask[rows, cols], ink.intensity[rows, cols], 0)
    row0, col0 = rows.start or 0, cols.start or 0  # the window's place in the picture
    top, left, bottom, right = bounds(inked >= 0.5)
    top, left, bottom, right = top + row0, left + col0, bottom + row0, right + col0
    image, width, change, blur = to_mnist(inked, unsharp, soft_above)
    box = (top * ink.factor, left * ink.factor, min(bottom * ink.factor, ink.shape[0]),
           min(right * ink.factor, ink.shape[1]))
    return Prepared(image, True, ink.inverted, box, width, change, blur=blur)


def span_of(members, boxes) -> tuple[int, int, int, int]:
    return (min(boxes[label - 1][0].start for label in members), min(boxes[label - 1][1].start for label in members),
            max(boxes[label - 1][0].stop for label in members), max(boxes[label - 1][1].stop for label in members))


def prepare(gray: np.ndarray, soft_above: float | None = None) -> Prepared:
    """One digit from (H, W) gray 0..1 (any polarity, any size) -> Prepared; `soft_above`: as `to_mnist`'s (a
    model's own, `Predictor.soft_above`)."""
    return prepare_ink(analyse(gray), soft_above)


def prepare_ink(ink: Ink, soft_above: float | None = None) -> Prepared:
    """`prepare` from the picture's analysis (`analyse`), when it is already taken."""
    if ink.labels is None:
        return Prepared(np.zeros((CANVAS, CANVAS), np.float32), False, ink.inverted, None)
    largest = ink.areas[1:].max()
    big = [label for label in range(1, ink.areas.size) if ink.areas[label] >= 0.1 * largest]
    top, left, bottom, right = span_of(big, ink.boxes)
    reach = 0.25 * max(bottom - top, right - left)  # small pieces near the digit are part of it, specks are not
    near = [label for label, (rows, cols) in enumerate(ink.boxes, 1)
            if label not in big and ink.areas[label] >= 0.01 * largest and rows.stop > top - reach
            and rows.start < bottom + reach and cols.stop > left - reach and cols.start < right + reach]
    return cut_digit(ink, ink_mask(ink, big + near), soft_above=soft_above)
