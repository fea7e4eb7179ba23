"""images: any picture -> MNIST-style 28x28; polarity, lighting, size, centring, strokes, formats,
bad files; and the real-images benchmark's generator with a real trained model."""

from __future__ import annotations

import io
import struct
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFile

from digits import data, images, multidigit

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import real_images  # noqa: E402


@pytest.fixture(scope="module")
def mnist():
    dataset = data.load_dataset("mnist")
    return dataset.x_test, dataset.y_test


def picture(digit: np.ndarray, size=(200, 160), digit_height=100, top_left=None, dark_on_light=True) -> np.ndarray:
    """An MNIST digit enlarged smoothly onto a page: (height, width) gray 0..1."""
    height, width = size
    enlarged = np.asarray(Image.fromarray(digit.astype(np.float32) / 255).resize(
        (digit_height, digit_height), Image.Resampling.BICUBIC)).clip(0, 1)
    ink = np.zeros(size, np.float32)
    top, left = top_left or ((height - digit_height) // 2, (width - digit_height) // 2)
    ink[top:top + digit_height, left:left + digit_height] = enlarged
    return 0.95 - 0.85 * ink if dark_on_light else 0.05 + 0.85 * ink


def centre_of_mass(image: np.ndarray) -> tuple[float, float]:
    rows, cols = np.mgrid[0:image.shape[0], 0:image.shape[1]]
    return float((image * rows).sum() / image.sum()), float((image * cols).sum() / image.sum())


def encode(gray: np.ndarray, format: str, **options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.round(gray * 255).astype(np.uint8)).save(buffer, format, **options)
    return buffer.getvalue()


# ---------------------------------------------------------------- single digits


def test_polarity_is_found_both_ways(mnist):
    digit = mnist[0][0]
    dark, light = images.prepare(picture(digit)), images.prepare(picture(digit, dark_on_light=False))
    assert dark.ink_found and light.ink_found
    assert dark.inverted and not light.inverted
    assert np.abs(dark.image - light.image).mean() < 0.01
    assert dark.image.dtype == np.float32 and dark.image.shape == (28, 28)
    assert 0.0 <= dark.image.min() and dark.image.max() <= 1.0 and dark.image.max() > 0.9


def test_off_centre_digit_is_centred_at_mnist_centre_of_mass(mnist):
    """MNIST's convention: centre of mass at pixel (row 14, column 14) of 28x28 (test-set mean 13.99, 14.01)."""
    digit = mnist[0][3]
    corner = images.prepare(picture(digit, size=(400, 300), digit_height=90, top_left=(5, 200)))
    row, col = centre_of_mass(corner.image)
    assert abs(row - 14.0) < 0.5 and abs(col - 14.0) < 0.5
    top, left, bottom, right = corner.box
    assert 5 <= top < 30 and 200 <= left < 240 and bottom <= 100 and right <= 295
    rows, cols = np.flatnonzero(corner.image.max(1) >= 0.5), np.flatnonzero(corner.image.max(0) >= 0.5)
    assert 18 <= rows[-1] - rows[0] + 1 <= 21 and cols[-1] - cols[0] + 1 <= 21  # fitted to MNIST's 20x20 box
    middle = images.prepare(picture(digit, size=(400, 300), digit_height=90))
    assert np.abs(corner.image - middle.image).mean() < 0.03  # same digit, other sub-pixel phase


def test_huge_and_tiny_pictures(mnist):
    digit = mnist[0][1]
    reference = images.prepare(picture(digit)).image
    huge = images.prepare(picture(digit, size=(2000, 3000), digit_height=1200))
    assert huge.ink_found and np.abs(huge.image - reference).mean() < 0.05
    assert huge.box[2] - huge.box[0] > 600  # in the original picture's pixels
    small = np.asarray(Image.fromarray(digit).resize((12, 12), Image.Resampling.BOX), np.float32) / 255
    tiny = images.prepare(1.0 - small)
    assert tiny.ink_found and tiny.image.max() > 0.9
    assert np.hypot(*(np.array(centre_of_mass(tiny.image)) - 14.0)) < 0.7
    assert np.abs(tiny.image - reference).mean() < 0.12


def test_uneven_lighting_is_removed(mnist):
    digit = mnist[0][2]
    evenly_lit = picture(digit, size=(240, 320), digit_height=120)
    rows, cols = np.mgrid[0:240, 0:320]
    shadow = evenly_lit * (0.45 + 0.55 * cols / 320) * (0.8 + 0.2 * rows / 240)  # a dim corner, falling light
    lit, shaded = images.prepare(evenly_lit), images.prepare(shadow)
    assert shaded.ink_found and shaded.inverted
    assert np.abs(shaded.image - lit.image).mean() < 0.03
    assert (shaded.image[:3] == 0).all() and (shaded.image[:, :3] == 0).all()  # no paper left around it


def test_blank_and_noise_find_no_ink():
    rng = np.random.default_rng(0)
    rows, cols = np.mgrid[0:200, 0:300]
    pages = {"white": np.full((200, 300), 0.97, np.float32),
             "black": np.zeros((50, 50), np.float32),
             "noise": np.clip(0.8 + rng.normal(0, 0.02, (200, 300)), 0, 1).astype(np.float32),
             "gradient": (0.5 + 0.4 * cols / 300 + 0.05 * rows / 200).astype(np.float32),
             "single pixel": np.full((1, 1), 0.5, np.float32)}
    for name, page in pages.items():
        result = images.prepare(page)
        assert not result.ink_found, name
        assert result.box is None and not result.image.any(), name
        assert multidigit.segment(page) == [], name


def test_mnist_images_pass_through_nearly_unchanged(mnist):
    x_test = mnist[0][:300]
    prepared = np.stack([images.prepare_array(image).image for image in x_test])
    difference = np.abs(prepared - x_test.astype(np.float32) / 255).mean((1, 2))
    assert np.median(difference) < 0.04 and difference.max() < 0.15
    assert not any(images.prepare_array(image).inverted for image in x_test[:20])
    as_float = images.prepare_array(x_test[0].astype(np.float32) / 255).image
    np.testing.assert_allclose(as_float, prepared[0], atol=1e-3)
    rgba = np.dstack([np.repeat(255 - x_test[0][..., None], 3, -1), np.full((28, 28), 255, np.uint8)])
    assert np.abs(images.prepare_array(rgba).image - prepared[0]).mean() < 0.02


def test_prepare_array_refuses_other_shapes():
    for shape in [(28,), (2, 28, 28), (28, 28, 2), (0, 28)]:
        with pytest.raises(images.ImageError, match="expected a 2-D image"):
            images.prepare_array(np.zeros(shape, np.float32))


def stroke_drawing(width: int) -> np.ndarray:
    """A 7 with a crossbar, drawn with a pen `width` pixels wide on a 300x300 page."""
    page = Image.new("L", (300, 300), 255)
    draw = ImageDraw.Draw(page)
    draw.line([(70, 60), (230, 60), (130, 250)], fill=0, width=width, joint="curve")
    draw.line([(110, 160), (215, 160)], fill=0, width=width)
    return np.asarray(page, np.float32) / 255


def test_stroke_width_is_brought_into_mnist_range():
    thin, thick = images.prepare(stroke_drawing(3)), images.prepare(stroke_drawing(40))
    assert thin.stroke_change > 0 > thick.stroke_change
    assert thin.stroke_width < images.STROKE_RANGE[0] < images.STROKE_RANGE[1] < thick.stroke_width
    assert thin.stroke_width + thin.stroke_change == pytest.approx(images.STROKE_RANGE[0])
    assert thick.stroke_width + thick.stroke_change == pytest.approx(images.STROKE_RANGE[1])
    mass_thin, mass_thick = thin.image.sum(), thick.image.sum()
    raw_thin, raw_thick = (1 - stroke_drawing(3)).sum(), (1 - stroke_drawing(40)).sum()
    assert raw_thick / raw_thin > 8
    assert 0.6 < mass_thin / mass_thick < 1.0  # 2 and 3 pixels wide at 28x28
    assert 60 < mass_thin < 170 and 60 < mass_thick < 170  # MNIST's 10th-90th percentile: 62-148


# ---------------------------------------------------------------- decoding


def test_every_format_round_trips(tmp_path, mnist):
    gray = picture(mnist[0][4], size=(90, 70), digit_height=60)
    for format, options, tolerance in [("PNG", {}, 0.003), ("JPEG", {"quality": 95}, 0.02), ("BMP", {}, 0.003),
                                       ("GIF", {}, 0.003), ("WEBP", {"quality": 95}, 0.02), ("TIFF", {}, 0.003)]:
        content = encode(gray, format, **options)
        path = tmp_path / f"digit.{format.lower()}"
        path.write_bytes(content)
        for source in (path, str(path), content):
            loaded = images.load_gray(source)
            assert loaded.shape == gray.shape and loaded.dtype == np.float32, format
            assert np.abs(loaded - gray).mean() < tolerance, format
        assert images.prepare_file(path).ink_found


def test_colour_sixteen_bit_and_palette_pictures(mnist):
    gray = picture(mnist[0][5], size=(60, 60), digit_height=50)
    blue_ink = np.dstack([gray, gray, np.full_like(gray, 0.9)])  # blue ink on white
    rgb = images.load_gray(encode(blue_ink, "PNG"))
    assert np.corrcoef(rgb.ravel(), gray.ravel())[0, 1] > 0.99
    buffer = io.BytesIO()
    Image.fromarray(np.round(gray * 65535).astype(np.uint16)).save(buffer, "PNG")
    np.testing.assert_allclose(images.load_gray(buffer.getvalue()), gray, atol=2e-3)
    palette = io.BytesIO()
    Image.fromarray(np.round(gray * 255).astype(np.uint8)).convert("P").save(palette, "PNG")
    assert np.abs(images.load_gray(palette.getvalue()) - gray).mean() < 0.01


def test_transparent_png_is_laid_on_white(mnist):
    digit = mnist[0][6]
    ink = np.asarray(Image.fromarray(digit).resize((112, 112), Image.Resampling.BICUBIC))
    rgba = np.zeros((112, 112, 4), np.uint8)  # black everywhere; only the alpha channel draws
    rgba[..., 3] = ink
    buffer = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buffer, "PNG")
    gray = images.load_gray(buffer.getvalue())
    assert gray[0, 0] == 1.0 and gray.min() < 0.05  # transparent -> white paper, ink -> dark
    result = images.prepare(gray)
    assert result.inverted
    assert np.abs(result.image - images.prepare(1.0 - ink / 255.0).image).mean() < 0.01


def test_exif_orientation_is_applied():
    stored = np.full((20, 40), 255, np.uint8)
    stored[:, :20] = 0  # dark left half, as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display", as phones write
    buffer = io.BytesIO()
    Image.fromarray(stored).save(buffer, "JPEG", exif=exif, quality=95)
    gray = images.load_gray(buffer.getvalue())
    assert gray.shape == (40, 20)  # portrait once turned
    assert gray[:18].mean() < 0.1 and gray[22:].mean() > 0.9  # the left half is now on top


def bomb_png(width: int = 100_000, height: int = 100_000) -> bytes:
    """A PNG header that claims width x height pixels, with no real data behind it."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def noisy_picture(format: str) -> bytes:
    values = np.random.default_rng(0).random((300, 300))
    return encode(values, format, **({"quality": 90} if format == "JPEG" else {}))


BAD_INPUTS = {
    "not an image": (lambda tmp: b"hello, this is plain text and not a picture\n" * 20, "not an image"),
    "empty": (lambda tmp: b"", "empty"),
    "truncated png": (lambda tmp: noisy_picture("PNG")[:20_000], "truncated or damaged"),
    "truncated jpeg": (lambda tmp: noisy_picture("JPEG")[:8_000], "truncated or damaged"),
    "header only png": (lambda tmp: noisy_picture("PNG")[:60], "truncated or damaged"),
    "bomb": (lambda tmp: bomb_png(), "decompression bomb"),
    "pdf": (lambda tmp: b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n", "PDF"),
    "svg": (lambda tmp: b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"><circle r="4"/></svg>',
            "SVG"),
    "unsupported format": (lambda tmp: encode(np.ones((8, 8)), "PPM"), "unsupported format"),
    "directory": (lambda tmp: tmp, "is a directory"),
    "missing": (lambda tmp: tmp / "nowhere" / "digit.png", "does not exist"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_inputs_raise_one_clear_line(tmp_path, case):
    make, fragment = BAD_INPUTS[case]
    made = make(tmp_path)
    sources = [made] if isinstance(made, Path) else [made, tmp_path / "upload.bin"]
    if not isinstance(made, Path):
        sources[1].write_bytes(made)
    for source in sources:
        started = time.perf_counter()
        with pytest.raises(images.ImageError) as caught:
            images.prepare_file(source)
        assert time.perf_counter() - started < 5  # never hangs, never decodes a bomb
        message = str(caught.value)
        assert isinstance(caught.value, ValueError)
        assert fragment in message and "\n" not in message and len(message) < 300, message
        if isinstance(source, Path):
            assert str(source) in message  # names the file
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_pixel_limit_is_checked_before_decoding(monkeypatch, mnist):
    content = encode(picture(mnist[0][0], size=(100, 100), digit_height=60), "PNG")
    monkeypatch.setattr(images, "MAX_PIXELS", 5_000)
    with pytest.raises(images.ImageError, match="decompression bomb"):
        images.load_gray(content, name="scan.png")
    monkeypatch.setattr(images, "MAX_PIXELS", 50_000)
    assert images.load_gray(content).shape == (100, 100)


# ---------------------------------------------------------------- with a real model


@pytest.fixture(scope="module")
def predictor(tmp_path_factory):
    from digits import config, engine, train

    out = tmp_path_factory.mktemp("images") / "cnn-fast"
    settings = config.load(Path(__file__).resolve().parents[1] / "configs" / "cnn-fast.json")
    return engine.Predictor(train.train(settings, out=out, verbose=0).run_dir)


def test_rendered_photos_and_strips_read_like_mnist(predictor, mnist):
    x_test, y_test = mnist
    result = real_images.measure(predictor.predict_proba, x_test, y_test, samples=200, strips=30, seed=0)
    # measured with this recipe (seeds 0, 1, 2): clean 0.995, rendered 0.995-1.0, strips 0.90-0.97
    assert result["clean_accuracy"] > 0.97
    assert result["rendered_accuracy"] >= 0.98
    assert result["kept_fraction"] >= 0.98
    assert result["strip_read_rate"] >= 0.85
    assert result["ink_not_found"] == 0


def test_generator_is_seeded_and_realistic(mnist):
    x_test = mnist[0]
    first = real_images.render_digit(x_test[0], np.random.default_rng([0, 0]))
    assert first == real_images.render_digit(x_test[0], np.random.default_rng([0, 0]))
    sizes = [Image.open(io.BytesIO(real_images.render_digit(x_test[index], np.random.default_rng([0, index])))).size
             for index in range(30)]
    assert all(8 <= min(size) and max(size) <= 620 for size in sizes) and max(max(size) for size in sizes) > 300
    gray = images.load_gray(real_images.render_strip(list(x_test[:4]), np.random.default_rng(1)))
    assert gray.shape[1] > gray.shape[0] and np.median(gray) > 0.5  # wide, light paper
