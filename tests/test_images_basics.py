"""digits.images on pictures the tests draw: polarity, centring, size, formats, EXIF, alpha, bad files."""

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw

from digits import data, images, multidigit


def _seven(size=200, ink=0, paper=255, offset=(0, 0), width=12, mode="L"):
    """A '7' drawn with a pen: dark ink on light paper by default."""
    picture = Image.new(mode, (size, size), paper)
    draw = ImageDraw.Draw(picture)
    dx, dy = offset
    scale = size / 200
    points = [(60 * scale + dx, 50 * scale + dy), (140 * scale + dx, 50 * scale + dy), (90 * scale + dx, 160 * scale + dy)]
    draw.line(points, fill=ink, width=max(1, int(width * scale)))
    return picture


def _gray(picture):
    return np.asarray(picture.convert("L"), np.float32) / 255.0


def _centre_of_mass(image):
    rows, columns = np.indices(image.shape)
    return (rows * image).sum() / image.sum(), (columns * image).sum() / image.sum()


def test_output_is_mnist_style():
    prepared = images.prepare(_gray(_seven()))
    assert prepared.ink_found and prepared.inverted
    assert prepared.image.shape == (28, 28) and prepared.image.dtype == np.float32
    assert 0.0 <= prepared.image.min() and prepared.image.max() <= 1.0 and prepared.image.max() > 0.9
    ink = np.argwhere(prepared.image > 0.1)
    height, width = ink.max(0) - ink.min(0) + 1
    assert max(height, width) <= 22 and max(height, width) >= 16  # fits MNIST's 20x20 box (plus blur)
    row, column = _centre_of_mass(prepared.image)
    assert abs(row - 14) <= 1 and abs(column - 14) <= 1


def test_polarity_both_ways_gives_the_same_digit():
    dark_on_light = images.prepare(_gray(_seven(ink=0, paper=255)))
    light_on_dark = images.prepare(_gray(_seven(ink=255, paper=0)))
    assert dark_on_light.inverted and not light_on_dark.inverted
    assert np.abs(dark_on_light.image - light_on_dark.image).mean() < 0.02


def test_off_centre_and_any_size_land_in_the_same_place():
    reference = images.prepare(_gray(_seven())).image
    for picture in (_seven(offset=(-45, 30)), _seven(size=3000, width=12), _seven(size=24, width=12)):
        prepared = images.prepare(_gray(picture))
        row, column = _centre_of_mass(prepared.image)
        assert abs(row - 14) <= 1 and abs(column - 14) <= 1
        assert np.abs(prepared.image - reference).mean() < 0.08


def test_uneven_lighting_is_removed():
    picture = _gray(_seven())
    gradient = np.linspace(-0.35, 0.0, picture.shape[1], dtype=np.float32)[None, :]  # dim on the left
    lit = np.clip(picture + gradient, 0, 1)
    assert np.abs(images.prepare(lit).image - images.prepare(picture).image).mean() < 0.05


def test_blank_page_has_no_ink():
    assert not images.prepare(np.ones((120, 80), np.float32)).ink_found
    noise = np.clip(0.97 + np.random.default_rng(0).normal(0, 0.005, (100, 100)), 0, 1).astype(np.float32)
    assert not images.prepare(noise).ink_found


def test_an_mnist_image_passes_through_nearly_unchanged():
    test = data.load_dataset("mnist")
    for index in range(5):
        original = test.x_test[index].astype(np.float32) / 255.0
        prepared = images.prepare_array(test.x_test[index])
        # Re-rendered (stroke width checked, resampled), not copied: close, and the same shape.
        assert np.abs(prepared.image - original).mean() < 0.06
        assert np.corrcoef(prepared.image.ravel(), original.ravel())[0, 1] > 0.85


@pytest.mark.parametrize("format_, suffix", [("PNG", "png"), ("JPEG", "jpg"), ("BMP", "bmp"), ("GIF", "gif"),
                                             ("WEBP", "webp"), ("TIFF", "tif")])
def test_every_format_decodes_to_the_same_digit(tmp_path, format_, suffix):
    path = tmp_path / f"seven.{suffix}"
    _seven().convert("RGB" if format_ == "JPEG" else "L").save(path, format=format_)
    reference = images.prepare(_gray(_seven())).image
    assert np.abs(images.prepare_file(path).image - reference).mean() < 0.05
    assert np.abs(images.prepare_file(path.read_bytes()).image - reference).mean() < 0.05  # bytes work too


def test_transparent_png_is_laid_on_white(tmp_path):
    picture = Image.new("RGBA", (200, 200), (0, 0, 0, 0))  # fully transparent black...
    ImageDraw.Draw(picture).line([(60, 50), (140, 50), (90, 160)], fill=(0, 0, 0, 255), width=12)  # ...opaque ink
    path = tmp_path / "alpha.png"
    picture.save(path)
    prepared = images.prepare_file(path)
    assert prepared.ink_found and prepared.inverted
    assert np.abs(prepared.image - images.prepare(_gray(_seven())).image).mean() < 0.05


def test_exif_orientation_is_applied(tmp_path):
    upright = _seven().convert("RGB")
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # what a sideways camera writes
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display
    path = tmp_path / "camera.jpg"
    stored.save(path, exif=exif, quality=95)
    shown = images.load_gray(path)
    assert shown.shape == (200, 200)
    assert np.abs(shown - _gray(upright)).mean() < 0.03  # upright again, not sideways


def _bomb_png(width, height):
    import struct
    import zlib

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


@pytest.mark.parametrize("name, content, fragment", [
    ("notes.png", b"just some text, not pixels", "not a picture"),
    ("empty.png", b"", "is empty"),
    ("bomb.png", _bomb_png(100_000, 100_000), "megapixels"),
    ("page.pdf", b"%PDF-1.4\n1 0 obj\n<<>>\nendobj\n", "PDF"),
])
def test_bad_files_get_one_line(tmp_path, name, content, fragment):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(images.ImageError) as caught:
        images.load_gray(path)
    message = str(caught.value)
    assert fragment in message and name in message and "\n" not in message


def test_truncated_files_are_refused(tmp_path):
    for format_, name in (("PNG", "cut.png"), ("JPEG", "cut.jpg")):
        buffer = io.BytesIO()
        _seven().convert("RGB").save(buffer, format=format_)
        (tmp_path / name).write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
        with pytest.raises(images.ImageError, match="truncated or damaged"):
            images.load_gray(tmp_path / name)


def test_directories_and_missing_paths(tmp_path):
    with pytest.raises(images.ImageError, match="is a directory"):
        images.load_gray(tmp_path)
    with pytest.raises(images.ImageError, match="does not exist"):
        images.load_gray(tmp_path / "missing.png")


def test_a_strip_of_digits_is_segmented_left_to_right():
    test = data.load_dataset("mnist")
    picks = [3, 2, 1, 0]  # labels 0, 1, 2, 7
    strip = np.concatenate([test.x_test[index] for index in picks], axis=1).astype(np.float32) / 255.0
    paper = 1.0 - np.kron(strip, np.ones((5, 5), np.float32))  # dark ink on white, 140 x 560
    pieces = multidigit.segment(paper)
    assert len(pieces) == len(picks)
    lefts = [piece.box[1] for piece in pieces]
    assert lefts == sorted(lefts)
