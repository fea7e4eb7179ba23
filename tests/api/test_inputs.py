"""Request inputs (digits.api.inputs): the uint8 shortcut against the general path, the checks of
to_batch and as_array, base64 images, and pictures read through the one reading path."""

from __future__ import annotations

import base64

import numpy as np
import pytest

from bodies import png

pytest.importorskip("fastapi", reason="the API needs the api extra: pip install 'digits[api]'")

from digits import images  # noqa: E402
from digits.api import inputs  # noqa: E402
from digits.api.deps import ApiError  # noqa: E402


def test_the_uint8_shortcut_agrees_with_the_general_path(mnist):
    """inputs.uint8_image (the common 28x28 0..255 request) gives what np.asarray + to_batch give,
    and hands everything else (floats, booleans, bad values, other shapes) to the general path."""
    x, _ = mnist
    whole = x[0].tolist()
    fast = inputs.uint8_image(whole)
    assert fast is not None and fast.dtype == np.uint8 and fast.shape == (1, 28, 28)
    np.testing.assert_array_equal(inputs.to_batch(fast, "pixels", 8),
                                  inputs.to_batch(inputs.as_array(whole, "pixels"), "pixels", 8))
    mixed = [list(row) for row in whole]
    mixed[14][14] = True  # a boolean among whole numbers: numpy reads it as 1, and so does the shortcut
    np.testing.assert_array_equal(inputs.uint8_image(mixed)[0], np.asarray(mixed))
    others = {"floats": (x[0] / 255.0).tolist(), "all booleans": [[False] * 28 for _ in range(28)],
              "negative": [[-1] * 28 for _ in range(28)], "above 255": [[256] * 28 for _ in range(28)],
              "null": [[None] * 28 for _ in range(28)], "string": [["7"] * 28 for _ in range(28)],
              "ragged": [[0] * 28 for _ in range(27)] + [[0] * 27], "a batch": [whole], "27 rows": whole[:27]}
    for name, value in others.items():
        assert inputs.uint8_image(value) is None, name


def test_to_batch_scales_by_the_one_rule(mnist):
    x, _ = mnist
    expected = images.to_model_input(x[:2])[..., 0]
    for array in (x[:2], x[:2, :, :, None], x[:2].astype(np.int32), x[:2] / 255.0):
        batch = inputs.to_batch(array, "pixels", 8)
        assert batch.shape == (2, 28, 28) and batch.dtype == np.float32
        np.testing.assert_allclose(batch, expected, atol=1e-6)
    assert inputs.to_batch(x[0], "pixels", 8).shape == (1, 28, 28)  # one image is a batch of one


@pytest.mark.parametrize("array, single_ok, error, fragment", [
    (np.zeros((28, 28)), False, ValueError, "expected (N, 28, 28) or (N, 28, 28, 1)"),
    (np.zeros((2, 28, 27)), True, ValueError, "has shape (2, 28, 27); expected (28, 28), (N, 28, 28)"),
    (np.zeros((1, 28, 28, 3)), True, ValueError, "shape (1, 28, 28, 3)"),
    (np.zeros((0, 28, 28)), True, ValueError, "holds no images"),
    (np.zeros((9, 28, 28)), True, inputs.BatchTooLarge, "9 images, more than the limit of 8"),
    (np.full((1, 28, 28), np.nan), True, ValueError, "NaN or infinite"),
    (np.full((1, 28, 28), 300.0), True, ValueError, "0..1 or 0..255"),
])
def test_to_batch_errors(array, single_ok, error, fragment):
    with pytest.raises(error) as raised:
        inputs.to_batch(array, "pixels", 8, single_ok=single_ok)
    assert fragment in str(raised.value) and str(raised.value).startswith("pixels ")
    assert issubclass(inputs.BatchTooLarge, ValueError)  # a 413, but still a ValueError for other callers


@pytest.mark.parametrize("value, fragment", [
    ([[0, 0], [0]], "not a rectangular array"),
    ([["a"] * 28] * 28, "only numbers"),
    ([[None] * 28] * 28, "strings, nulls or mixed values"),
    ([[True] * 28] * 28, "true/false"),
    ([[1j] * 28] * 28, "complex numbers"),
])
def test_as_array_errors(value, fragment):
    with pytest.raises(ValueError, match="^pixels") as raised:
        inputs.as_array(value, "pixels")
    assert fragment in str(raised.value)


def test_decode_base64(mnist):
    picture = png(mnist[0][0])
    encoded = base64.b64encode(picture).decode()
    assert inputs.decode_base64(encoded, -1) == picture
    assert inputs.decode_base64("data:image/png;base64," + encoded, -1) == picture
    assert inputs.decode_base64(base64.urlsafe_b64encode(picture).decode(), 0) == picture
    assert inputs.decode_base64(encoded[:40] + "\n " + encoded[40:], 0) == picture  # line breaks are ignored
    for value, position, status, fragment in (
            ("not base64!", -1, 422, "image is not valid base64"),
            ("not base64!", 3, 422, "image[3] is not valid base64"),
            (42, 1, 422, "image[1] must be a base64 string of an image file, not int"),
            (None, -1, 422, "not NoneType"),
            ("data:image/png,abc", -1, 422, "without ;base64")):
        with pytest.raises(ApiError) as raised:
            inputs.decode_base64(value, position)
        assert raised.value.status == status and fragment in raised.value.message


def test_read_picture_is_the_reading_path(predictor, mnist):
    from digits import reading

    x, y = mnist
    picture = png(x[0])
    read = inputs.read_picture(picture, "seven.png", "auto", predictor, 0.5)
    assert isinstance(read, reading.Reading) and read.kind == "digit" and read.digit == y[0]
    direct = reading.read(picture, "auto", predictor, 0.5, name="seven.png")
    assert read.to_dict() == direct.to_dict()
    with pytest.raises(images.ImageError, match="not an image"):  # a bad picture: its own one-line message
        inputs.read_picture(b"hello", "note.txt", "auto", predictor, 0.5)

    def broken(batch):
        raise RuntimeError("a bug in the reading path")

    with pytest.raises(images.ImageError, match=r"seven.png could not be read \(RuntimeError\)"):
        inputs.read_picture(picture, "seven.png", "number", broken, 0.5)


def test_a_list_too_long_for_a_batch_is_refused_before_it_is_converted():
    """A 16 MB body of 8 million numbers took half a second of converting (holding the GIL, so every other
    client waited) before its shape was refused: a list longer than a batch (or one image's rows) is refused
    first. The entries here could not even be converted: the length is what refuses them."""
    unconvertible = [object()] * 100
    with pytest.raises(inputs.BatchTooLarge, match="holds 100 entries, more than the limit of 8 images"):
        inputs.as_array(unconvertible, "pixels", 8)
    with pytest.raises(inputs.BatchTooLarge, match="limit of 8 images"):
        inputs.as_array(unconvertible[:29], "'instances'", 8)
    assert inputs.as_array([[0] * 28] * 28, "pixels", 8).shape == (28, 28)  # one image's 28 rows: not a batch
    with pytest.raises(ValueError, match="only numbers"):
        inputs.as_array(unconvertible[:8], "pixels", 8)
