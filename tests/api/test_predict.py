"""POST /predict (digits.api.routes.predict): pixels, uploads, raw image bodies and base64 JSON, in
every mode, and every bad input as a clear 4xx.

A real small model (`cnn_fast_run`) serves; pictures reach it through the one reading path
(digits.reading, digits.images), which the tests check by comparing with it directly. Every
prediction is a Reading's JSON (`Reading.to_dict()`), the shape `digits predict --json` prints.
"""

from __future__ import annotations

import base64
import io
import json
import time

import numpy as np
import pytest
from PIL import Image

from bodies import MAX_BATCH, detail, digit_strip, png, png_header, settings
from helpers import save_heic

from digits import images

pytest.importorskip("fastapi", reason="the API needs the api extra: pip install 'digits[api]'")

READING_KEYS = {"kind", "ink_found", "digit", "label", "number", "confidence", "uncertain", "inverted", "box",
                "probabilities", "top3", "digits"}
DIGIT_KEYS = {"digit", "label", "confidence", "not_a_digit", "uncertain", "box", "line", "mark", "after",
              "probabilities", "top3"}


def assert_top3(top3: list, probabilities) -> None:
    """top3: the three likeliest classes, most likely first, as {"digit": int, "label": str, "probability"}."""
    order = np.argsort(-np.asarray(probabilities))[:3]
    assert [entry["digit"] for entry in top3] == [int(index) for index in order]
    for entry, index in zip(top3, order):
        assert set(entry) == {"digit", "label", "probability"} and type(entry["digit"]) is int
        assert entry["label"] == str(index) and entry["probability"] == pytest.approx(probabilities[index])


def assert_one_digit(result: dict, extra: set = frozenset()) -> dict:
    """A digit reading with exactly one entry in `digits` that repeats the answer; returns that entry."""
    assert set(result) == READING_KEYS | extra, set(result) ^ (READING_KEYS | extra)
    assert result["kind"] == "digit" and result["number"] is None and result["ink_found"] is True
    assert type(result["digit"]) is int and result["label"] == str(result["digit"])
    (entry,) = result["digits"]
    assert set(entry) <= DIGIT_KEYS | {"input"} and DIGIT_KEYS <= set(entry)
    assert entry["not_a_digit"] is False  # kind digit: the one piece was accepted as a digit
    for key in ("digit", "label", "confidence", "uncertain", "probabilities", "top3", "box"):
        assert entry[key] == result[key], key
    assert result["confidence"] == pytest.approx(max(result["probabilities"]))
    assert_top3(result["top3"], result["probabilities"])
    return entry


def test_predict_pixels_match_the_model(client, predictor, mnist):
    x, y = mnist
    expected = predictor.predict_proba(x[:4])
    single = client.post("/predict", json={"pixels": x[0].tolist()})
    assert single.status_code == 200, single.text
    body = single.json()
    assert body["model"] == "cnn" and body["version"] == "1"
    (result,) = body["predictions"]
    entry = assert_one_digit(result)
    assert result["kind"] == "digit" and result["digit"] == expected[0].argmax() == y[0]
    assert result["label"] == str(y[0]) and result["uncertain"] is False
    np.testing.assert_allclose(result["probabilities"], expected[0], atol=1e-5)
    assert result["confidence"] == pytest.approx(expected[0].max(), abs=1e-5)
    # raw pixels are not a picture: no box, not inverted, and the same Reading shape as pictures
    assert result["box"] is None and entry["box"] is None and result["inverted"] is False
    # a batch, and floats in 0..1 instead of 0..255, give the same answers
    batch = client.post("/predict", json={"pixels": (x[:4] / 255.0).tolist()}).json()["predictions"]
    np.testing.assert_allclose([row["probabilities"] for row in batch], expected, atol=1e-5)
    assert [row["digit"] for row in batch] == [int(label) for label in y[:4]]
    for row in batch:
        assert "input" not in assert_one_digit(row) and "input" not in row and "filename" not in row


def test_predict_include_input_returns_what_the_model_saw(client, mnist):
    x, _ = mnist
    for query, body in (("?include_input=true", {"pixels": x[0].tolist()}),
                        ("", {"pixels": x[0].tolist(), "include_input": True})):
        result = client.post("/predict" + query, json=body).json()["predictions"][0]
        entry = assert_one_digit(result)  # the input sits with its digit, not beside the reading
        assert "input" not in result
        np.testing.assert_array_equal(np.array(entry["input"]), x[0])


def test_uncertain_threshold_is_configurable(predictor, mnist):
    from fastapi.testclient import TestClient

    from digits.api.app import create_app

    x, _ = mnist
    for threshold, expected in ((1.0, True), (0.0, False)):
        with TestClient(create_app(settings(uncertain_below=threshold), predictor=predictor)) as test_client:
            result = test_client.post("/predict", json={"pixels": x[0].tolist()}).json()["predictions"][0]
            assert result["uncertain"] is expected and result["digits"][0]["uncertain"] is expected


def test_a_refused_picture_is_not_a_digit(predictor, mnist):
    """reject_below (digits serve --reject-below, DIGITS_REJECT_BELOW) overrides the model's stored threshold:
    at 1.0 every picture and every raw pixels image is refused (kind not_a_digit, its piece flagged, what it
    resembled most still there); at 0 refusal is off."""
    from fastapi.testclient import TestClient

    from digits.api.app import create_app

    x, y = mnist
    upload = {"file": ("seven.png", png(x[0]), "image/png")}
    with TestClient(create_app(settings(reject_below=1.0), predictor=predictor)) as test_client:
        assert test_client.app.state.service.reject_below == 1.0 != predictor.reject_below
        response = test_client.post("/predict?include_input=true", files=upload)
        assert response.status_code == 200, response.text
        (result,) = response.json()["predictions"]
        assert set(result) == READING_KEYS | {"filename"} and result["filename"] == "seven.png"
        assert result["kind"] == "not_a_digit" and result["ink_found"] is True and result["uncertain"] is False
        assert (result["digit"], result["label"], result["number"]) == (None, None, None)
        (entry,) = result["digits"]
        assert set(entry) == DIGIT_KEYS | {"input"} and entry["not_a_digit"] is True and entry["uncertain"] is False
        assert entry["digit"] == y[0] and entry["label"] == str(y[0])  # the closest class, for display
        assert result["probabilities"] == entry["probabilities"] and len(result["probabilities"]) == 10
        assert result["confidence"] == entry["confidence"] == pytest.approx(max(entry["probabilities"]))
        assert result["confidence"] < 1.0 and result["box"] == entry["box"] and len(entry["box"]) == 4
        assert_top3(result["top3"], result["probabilities"])
        assert np.array(entry["input"]).shape == (28, 28)
        pixels = test_client.post("/predict", json={"pixels": x[:3].tolist()}).json()["predictions"]
        assert [row["kind"] for row in pixels] == ["not_a_digit"] * 3
        for row, label in zip(pixels, y[:3]):
            assert set(row) == READING_KEYS and row["digit"] is None and row["uncertain"] is False
            assert row["digits"][0]["not_a_digit"] is True and row["digits"][0]["digit"] == label
        strip = {"file": ("number.png", png(digit_strip([x[1], x[3], x[0]])), "image/png")}
        number = test_client.post("/predict?mode=number", files=strip).json()["predictions"][0]
        assert number["kind"] == "number" and number["number"] == "???" and number["uncertain"] is True
        assert [digit["not_a_digit"] for digit in number["digits"]] == [True] * 3
        auto = test_client.post("/predict", files=strip).json()["predictions"][0]  # auto: no piece is a digit
        assert auto["kind"] == "not_a_digit" and auto["number"] is None and len(auto["digits"]) == 3
    with TestClient(create_app(settings(reject_below=0.0), predictor=predictor)) as test_client:
        result = test_client.post("/predict", files=upload).json()["predictions"][0]
        assert result["kind"] == "digit" and result["digit"] == y[0]


def test_uploads_take_the_one_preprocessing_path(client, predictor, mnist):
    x, y = mnist
    files = [("files", (f"digit{index}.png", png(x[index]), "image/png")) for index in range(3)]
    response = client.post("/predict?include_input=true", files=files)
    assert response.status_code == 200, response.text
    results = response.json()["predictions"]
    assert [result["filename"] for result in results] == ["digit0.png", "digit1.png", "digit2.png"]
    for index, result in enumerate(results):
        entry = assert_one_digit(result, {"filename"})  # the default mode, auto: one digit found, one digit read
        prepared = images.prepare_file(png(x[index]))  # what the CLI and the page do with the same file
        np.testing.assert_allclose(result["probabilities"], predictor.predict_proba(prepared.image[None])[0],
                                   atol=1e-5)
        np.testing.assert_array_equal(entry["input"], np.round(prepared.image * 255).astype(np.uint8))
        assert result["digit"] == y[index] and result["ink_found"] is True and result["inverted"] is True
        assert len(result["box"]) == 4 and result["box"] == list(prepared.box)


def test_raw_image_body_and_base64_json(client, mnist):
    x, y = mnist
    picture = png(x[1])
    raw = client.post("/predict", content=picture, headers={"Content-Type": "image/png"}).json()["predictions"][0]
    assert raw["digit"] == y[1] and raw["filename"] == "upload"
    assert_one_digit(raw, {"filename"})
    encoded = base64.b64encode(picture).decode()
    for body in ({"image": encoded}, {"image": "data:image/png;base64," + encoded},
                 {"image": base64.urlsafe_b64encode(picture).decode()}):
        result = client.post("/predict", json=body).json()["predictions"][0]
        assert result["probabilities"] == raw["probabilities"] and result["filename"] == "image"
    listed = client.post("/predict", json={"image": [encoded, base64.b64encode(png(x[2])).decode()]}).json()
    assert [row["digit"] for row in listed["predictions"]] == [y[1], y[2]]
    assert [row["filename"] for row in listed["predictions"]] == ["image[0]", "image[1]"]


def test_a_phone_s_heic_photo_reads_as_its_png(client, mnist, tmp_path):
    """An iPhone uploads HEIC: as a file and as a raw image/heic body it reads as the PNG of the same picture."""
    x, y = mnist
    picture = Image.open(io.BytesIO(png(x[1]))).resize((168, 168), Image.Resampling.BICUBIC)
    heic = save_heic(picture, tmp_path / "IMG_0001.HEIC").read_bytes()
    as_png = io.BytesIO()
    picture.save(as_png, "PNG")
    expected = client.post("/predict", content=as_png.getvalue(), headers={"Content-Type": "image/png"}).json()
    uploaded = client.post("/predict", files={"file": ("IMG_0001.HEIC", heic, "image/heic")})
    raw = client.post("/predict", content=heic, headers={"Content-Type": "image/heic"})
    assert uploaded.status_code == raw.status_code == 200, uploaded.text
    for answer in (uploaded.json(), raw.json()):
        reading = answer["predictions"][0]
        assert reading["digit"] == expected["predictions"][0]["digit"] == y[1]
        assert abs(reading["confidence"] - expected["predictions"][0]["confidence"]) < 0.02


def test_numbers_written_one_under_the_other_read_line_by_line(client, mnist):
    """Two numbers on two lines: one number whose text breaks between them, each digit with its line; the same
    reading as digits.read, through an upload and a raw body."""
    x, y = mnist
    top, bottom = digit_strip([x[1], x[3], x[0]]), digit_strip([x[2], x[4]])  # 2, 0, 7 over 1, 4
    picture = np.zeros((top.shape[0] + bottom.shape[0], top.shape[1]), np.uint8)
    picture[:top.shape[0]], picture[top.shape[0]:, :bottom.shape[1]] = top, bottom
    truth = "".join(str(y[i]) for i in (1, 3, 0)) + "\n" + "".join(str(y[i]) for i in (2, 4))
    for mode in ("auto", "number"):
        result = client.post(f"/predict?mode={mode}", files={"file": ("lines.png", png(picture), "image/png")})
        assert result.status_code == 200, result.text
        found = result.json()["predictions"][0]
        assert (found["kind"], found["number"]) == ("number", truth) == ("number", "207\n14")
        assert [digit["line"] for digit in found["digits"]] == [0, 0, 0, 1, 1]
    raw = client.post("/predict", content=png(picture), headers={"content-type": "image/png"}).json()
    assert raw["predictions"][0]["number"] == truth


def test_a_number_s_marks_reach_the_json(client, predictor, mnist):
    """A minus sign before a number, a colon between two of its digits and a percent sign after it (a drawn "-20:71%")
    come back in the number's text and as the digits' marks (and the last digit's `after`), as digits.read reads them,
    in both modes."""
    from PIL import ImageDraw

    x, _ = mnist
    strip = digit_strip([x[1], x[3], x[0], x[2]], gap=16)  # 2, 0, 7, 1
    picture = np.zeros((strip.shape[0], strip.shape[1] + 50), np.uint8)
    picture[:, 20:-30] = strip
    picture[25:28, 12:28] = 255  # a minus sign at the digits' middle height, just before the first
    picture[21:24, 110:113] = picture[30:33, 110:113] = 255  # a colon between the 0 and the 7
    page = Image.fromarray(picture)
    draw = ImageDraw.Draw(page)  # a percent sign after the 1: a slash and two rings
    draw.line([(200, 39), (214, 13)], fill=255, width=3)
    for left, top in ((195, 13), (210, 29)):
        draw.ellipse([left, top, left + 10, top + 10], outline=255, width=2)
    for digits in _marked_number(client, predictor, np.asarray(page), "-20:71%"):
        assert [digit["mark"] for digit in digits] == ["-", "", ":", ""]
        assert [digit["after"] for digit in digits] == ["", "", "", "%"]


def _marked_number(client, predictor, picture: np.ndarray, number: str) -> list[list[dict]]:
    """`picture` posted to /predict in both modes: each answer's digits, once its number is `number`, as digits.read
    reads it."""
    from digits import reading

    answers = []
    for mode in ("auto", "number"):
        result = client.post(f"/predict?mode={mode}", files={"file": ("marked.png", png(picture), "image/png")})
        assert result.status_code == 200, result.text
        found = result.json()["predictions"][0]
        assert found["number"] == reading.read(picture, mode=mode, model=predictor).number == number
        answers.append(found["digits"])
    return answers


def test_parentheses_reach_the_json(client, predictor, mnist):
    """A number in parentheses (a drawn "(207)") comes back with them in its text, the opening one as the first digit's
    mark and the closing one as the last digit's `after`, as digits.read reads it, in both modes."""
    from PIL import ImageDraw

    x, _ = mnist
    strip = digit_strip([x[1], x[3], x[0]])  # 2, 0, 7
    picture = np.zeros((strip.shape[0], strip.shape[1] + 40), np.uint8)
    picture[:, 20:-20] = strip
    page = Image.fromarray(picture)
    along = np.linspace(-1, 1, 20)
    for left, sign in ((22, 1), (picture.shape[1] - 28, -1)):  # parentheses 26 px tall, bowing out 5 px
        points = [(left + 5 * (t ** 2 if sign > 0 else 1 - t ** 2), 26 + 13 * t) for t in along]
        ImageDraw.Draw(page).line(points, fill=255, width=3, joint="curve")
    for digits in _marked_number(client, predictor, np.asarray(page), "(207)"):
        assert [(digit["mark"], digit["after"]) for digit in digits] == [("(", ""), ("", ""), ("", ")")]


def test_a_date_s_slashes_reach_the_json(client, predictor, mnist):
    """A date written with slashes (a drawn "2/0/71") comes back with them in its text, each the mark of the digit after
    it, as digits.read reads it, in both modes."""
    from PIL import ImageDraw

    x, _ = mnist
    picture = np.zeros((52, 180), np.uint8)
    for left, index in ((12, 1), (60, 3), (108, 0), (138, 2)):  # 2, 0, 7, 1
        picture[12:40, left:left + 28] = x[index]
    page = Image.fromarray(picture)
    for middle in (50, 98):  # slashes 26 px tall leaning 25 degrees, in the gaps
        ImageDraw.Draw(page).line([(middle - 6, 39), (middle + 6, 13)], fill=255, width=3)
    for digits in _marked_number(client, predictor, np.asarray(page), "2/0/71"):
        assert [digit["mark"] for digit in digits] == ["", "/", "/", ""]


def test_number_mode_reads_several_digits(client, predictor, mnist):
    x, y = mnist
    picture = png(digit_strip([x[1], x[3], x[0]]))  # 2, 0, 7
    files = {"file": ("number.png", picture, "image/png")}
    result = client.post("/predict?mode=number&include_input=true", files=files).json()["predictions"][0]
    assert set(result) == READING_KEYS | {"filename"}
    assert result["kind"] == "number" and result["number"] == "".join(str(y[i]) for i in (1, 3, 0)) == "207"
    assert result["ink_found"] is True and len(result["digits"]) == 3
    # a number has no single digit, label, probabilities or top 3: each digit has its own
    assert (result["digit"], result["label"], result["probabilities"], result["top3"]) == (None, None, None, None)
    assert [digit["digit"] for digit in result["digits"]] == [2, 0, 7]
    assert [digit["label"] for digit in result["digits"]] == ["2", "0", "7"]
    assert result["confidence"] == pytest.approx(np.prod([digit["confidence"] for digit in result["digits"]]))
    assert all(len(digit["probabilities"]) == 10 and np.array(digit["input"]).shape == (28, 28)
               for digit in result["digits"])
    for digit in result["digits"]:
        assert set(digit) == DIGIT_KEYS | {"input"} and len(digit["box"]) == 4 and digit["not_a_digit"] is False
        assert_top3(digit["top3"], digit["probabilities"])
    lefts = [digit["box"][1] for digit in result["digits"]]
    assert lefts == sorted(lefts)  # left to right
    auto = client.post("/predict?mode=auto", files=files).json()["predictions"][0]
    assert auto["kind"] == "number" and auto["number"] == "207"
    default = client.post("/predict", files=files).json()["predictions"][0]  # auto is the default mode
    assert default["kind"] == "number" and default["number"] == "207"
    single = client.post("/predict?mode=auto", files={"file": ("one.png", png(x[0]), "image/png")}).json()
    assert single["predictions"][0]["kind"] == "digit" and single["predictions"][0]["digit"] == 7
    form_mode = client.post("/predict", files=files, data={"mode": "number"}).json()["predictions"][0]
    assert form_mode["number"] == "207"
    as_digit = client.post("/predict?mode=digit", files=files).json()["predictions"][0]
    assert len(as_digit["digits"]) == 1  # mode=digit: the whole picture is one piece...
    # ...which, three digits squeezed into one 28x28, the model may well refuse as not a digit (this one does)
    from digits import reading

    refused = reading.read(picture, mode="digit", model=predictor).kind == "not_a_digit"  # by its digit score
    assert as_digit["kind"] == ("not_a_digit" if refused else "digit") and as_digit["digits"][0]["not_a_digit"] is refused


def test_blank_picture_has_no_digit(client):
    blank = png(np.zeros((28, 28), np.uint8))
    for mode in ("digit", "number", "auto", None):
        query = "?include_input=true" + (f"&mode={mode}" if mode else "")
        result = client.post(f"/predict{query}", content=blank, headers={"Content-Type": "image/png"})
        result = result.json()["predictions"][0]
        assert set(result) - {"input"} == READING_KEYS | {"filename"}
        # kind no_ink in every mode: nothing to read, which is not an uncertain reading
        assert result["kind"] == "no_ink" and result["ink_found"] is False and result["uncertain"] is False
        assert result["digits"] == [] and result["confidence"] == 0.0 and result["box"] is None
        assert (result["digit"], result["label"], result["number"], result["probabilities"], result["top3"]) == \
            (None,) * 5
        if mode != "number":  # read as one picture (auto finds no digits): the blank 28x28 it prepared
            assert np.array(result["input"]).shape == (28, 28) and not np.any(result["input"])


@pytest.mark.parametrize("body, status, fragment", [
    (b"", 400, "empty"),
    (b"{not json", 400, "not valid JSON"),
    (b'{"pixels": [[NaN]]}', 400, "not valid JSON"),
    (b"[1, 2]", 422, "must be an object"),
    (b'{"pixel": []}', 422, "unknown field"),
    (b'{"pixels": null}', 422, "exactly one"),
    (b'{"pixels": [[0]], "image": "x"}', 422, "exactly one"),
    (b'{"pixels": [[0, 0], [0]]}', 422, "rectangular"),
    (b'{"pixels": [[1, 2], [3, 4]]}', 422, "shape (2, 2)"),
    (json.dumps({"pixels": np.zeros((27, 28)).tolist()}).encode(), 422, "shape (27, 28)"),
    (json.dumps({"pixels": np.zeros((1, 28, 28, 3)).tolist()}).encode(), 422, "shape (1, 28, 28, 3)"),
    (json.dumps({"pixels": [[["a"] * 28] * 28]}).encode(), 422, "only numbers"),
    (json.dumps({"pixels": [[[None] * 28] * 28]}).encode(), 422, "only numbers"),
    (json.dumps({"pixels": [[True] * 28] * 28}).encode(), 422, "true/false"),
    (json.dumps({"pixels": np.full((28, 28), -1).tolist()}).encode(), 422, "0..1 or 0..255"),
    (json.dumps({"pixels": np.full((28, 28), 256).tolist()}).encode(), 422, "0..1 or 0..255"),
    (b'{"pixels": [[1e999]]}', 400, "infinity"),  # JSON cannot carry NaN or infinities; binary tensors can
    (json.dumps({"pixels": []}).encode(), 422, "shape (0,)"),
    (json.dumps({"pixels": np.zeros((28, 28)).tolist(), "mode": "number"}).encode(), 422, "needs a picture"),
    (json.dumps({"pixels": np.zeros((28, 28)).tolist(), "mode": "digits"}).encode(), 422, "mode='digits'"),
    (json.dumps({"pixels": np.zeros((28, 28)).tolist(), "include_input": "maybe"}).encode(), 422, "not a boolean"),
    (json.dumps({"image": "not base64!"}).encode(), 422, "not valid base64"),
    (json.dumps({"image": 42}).encode(), 422, "base64 string"),
    (json.dumps({"image": []}).encode(), 422, "empty list"),
    (json.dumps({"image": "data:image/png,abc"}).encode(), 422, "without ;base64"),
    (json.dumps({"image": base64.b64encode(b"%PDF-1.4 not a picture").decode()}).encode(), 422, "PDF"),
    (json.dumps({"pixels": np.zeros((MAX_BATCH + 1, 28, 28)).tolist()}).encode(), 413, "limit of 8"),
    (json.dumps({"image": ["AAAA"] * (MAX_BATCH + 1)}).encode(), 413, "limit of 8"),
])
def test_predict_json_errors_are_clear_4xx(client, body, status, fragment):
    response = client.post("/predict", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == status, response.text
    assert fragment in detail(response)


@pytest.mark.parametrize("content, status, fragment", [
    (b"", 400, "empty"),
    (b"hello, not a picture", 422, "not an image"),
    (None, 422, "truncated or damaged"),  # the first half of a real PNG
    (png_header(60_000, 60_000), 422, "decompression bomb"),
    (png_header(9_000, 9_000), 422, "decompression bomb"),  # 81 MP: over digits.images' limit, under Pillow's
])
def test_bad_pictures_are_422_not_500(client, mnist, content, status, fragment):
    content = png(mnist[0][0])[:300] if content is None else content
    for mode in ("auto", "digit", "number"):
        for response in (client.post(f"/predict?mode={mode}", content=content, headers={"Content-Type": "image/png"}),
                         client.post(f"/predict?mode={mode}", files={"file": ("bad.png", content, "image/png")})):
            if content == b"" and "multipart" in response.request.headers["content-type"]:
                continue  # an empty file part is a picture problem, covered by the raw case
            assert response.status_code == status, response.text
            assert fragment in detail(response)


def test_a_file_of_several_pages_is_422_naming_them(client, mnist):
    """A multi-page TIFF or an animated GIF was read as its first page, the others dropped silently: it is 422 now,
    one line naming how many pages and the fix, uploaded or sent raw; the service reads the next picture."""
    pages = [Image.fromarray(255 - mnist[0][index]) for index in (0, 1)]
    for format_, kind in (("TIFF", "image/tiff"), ("GIF", "image/gif")):
        buffer = io.BytesIO()
        pages[0].save(buffer, format_, save_all=True, append_images=pages[1:])
        for response in (client.post("/predict", content=buffer.getvalue(), headers={"Content-Type": kind}),
                         client.post("/predict", files={"file": ("scan", buffer.getvalue(), kind)})):
            assert response.status_code == 422, response.text
            assert "holds 2 pages" in detail(response) and "save the page" in detail(response), format_
    answer = client.post("/predict", content=png(mnist[0][0]), headers={"Content-Type": "image/png"})
    assert answer.status_code == 200 and answer.json()["predictions"][0]["digit"] == mnist[1][0]


def test_odd_pictures_never_cost_a_500(client):
    rng = np.random.default_rng(0)
    odd = {"line": np.pad(np.full((1, 40), 255, np.uint8), 6),  # far wider than tall
           "specks": ((rng.random((120, 120)) > 0.97) * 255).astype(np.uint8),
           "dot": np.pad(np.full((1, 1), 255, np.uint8), 1), "stripes": np.tile(np.uint8([0, 255] * 30), (60, 1)),
           "pixel": np.zeros((1, 1), np.uint8)}
    for name, array in odd.items():
        for mode in ("digit", "number", "auto"):
            response = client.post(f"/predict?mode={mode}", files={"file": (f"{name}.png", png(array, 1, False),
                                                                            "image/png")})
            assert response.status_code in (200, 422), (name, mode, response.text)
    assert client.get("/health/ready").status_code == 200


def _pictures_read(client) -> float:
    """The service's count of pictures read (decoded, cleaned, classified), from /metrics."""
    for line in client.get("/metrics").text.splitlines():
        if line.startswith("digits_pictures_read_total "):
            return float(line.split()[1])
    return 0.0


def _blank(side: int) -> bytes:
    return png(np.full((side, side), 255, np.uint8), 1, False)  # a white page: a few KiB, side x side pixels


def test_a_saturated_pixel_budget_answers_503_and_pixels_still_work(predictor, mnist):
    from fastapi.testclient import TestClient

    from digits.api.app import create_app

    with TestClient(create_app(settings(timeout_seconds=1.0), predictor=predictor)) as client:
        budget = client.app.state.service.budget
        budget.used += budget.limit  # as if pictures of the whole budget were being read
        try:
            response = client.post("/predict", content=png(mnist[0][0]), headers={"Content-Type": "image/png"})
            assert response.status_code == 503 and response.headers["retry-after"] == "5"
            assert "DIGITS_MAX_PENDING_PIXELS" in detail(response)
            assert client.post("/predict", json={"pixels": mnist[0][0].tolist()}).status_code == 200
        finally:
            budget.release(budget.limit)
        assert client.post("/predict", content=png(mnist[0][0]), headers={"Content-Type": "image/png"}
                           ).status_code == 200


def test_pictures_over_the_pixel_budget_get_413_before_any_is_decoded(predictor):
    from fastapi.testclient import TestClient

    from digits.api.app import create_app

    with TestClient(create_app(settings(max_request_pixels=10_000_000), predictor=predictor)) as client:
        before = _pictures_read(client)
        files = [("files", (f"{index}.png", _blank(1500), "image/png")) for index in range(MAX_BATCH)]  # 18 MP
        response = client.post("/predict", files=files)
        assert response.status_code == 413 and response.headers["content-type"] == "application/json"
        assert "18,000,000 pixels" in detail(response) and "DIGITS_MAX_REQUEST_PIXELS" in detail(response)
        assert _pictures_read(client) == before  # refused from the headers: nothing decoded
        assert client.post("/predict", files=files[:4]).status_code == 200  # 9 MP fit
        assert _pictures_read(client) == before + 4


def test_a_timed_out_request_stops_reading_and_others_are_served(predictor, mnist):
    from fastapi.testclient import TestClient

    from digits.api.app import create_app

    many = 96  # white 2000 x 2000 pages: seconds of work in all, far more than the 1 s timeout
    with TestClient(create_app(settings(timeout_seconds=1.0, max_batch=many, max_request_pixels=10**9,
                                        max_pending_pixels=10**9), predictor=predictor)) as client:
        service, before = client.app.state.service, _pictures_read(client)
        files = [("files", (f"{index}.png", _blank(2000), "image/png")) for index in range(many)]
        response = client.post("/predict", files=files)
        assert response.status_code == 504, response.text
        for _ in range(600):  # the pictures it had started finish; no more are started
            if not service.image_jobs:
                break
            time.sleep(0.05)
        read = _pictures_read(client) - before
        assert 0 < read < many / 2, read
        assert service.budget.used == 0
        for _ in range(3):  # everyone else is served at once: no 503 while the big request's work drains
            answer = client.post("/predict", content=png(mnist[0][0]), headers={"Content-Type": "image/png"})
            assert answer.status_code == 200 and answer.json()["predictions"][0]["digit"] == 7
        assert _pictures_read(client) - before == read + 3  # nothing of the big request was read meanwhile


def test_predict_content_and_form_errors(client, mnist):
    assert client.post("/predict", content=b"pixels=1", headers={"Content-Type": "text/plain"}).status_code == 415
    assert client.post("/predict", content=b"x=1").status_code == 415  # a bare form post, as curl -d sends
    response = client.post("/predict", data={"mode": "digit"}, files={})
    assert response.status_code in (415, 422)
    no_files = client.post("/predict", files={"note": (None, "just text")})
    assert no_files.status_code == 422 and "no files" in detail(no_files)
    broken = client.post("/predict", content=b"--xyz\r\nnonsense",
                         headers={"Content-Type": "multipart/form-data; boundary=xyz"})
    assert broken.status_code == 400 and "truncated or malformed" in detail(broken), broken.text
    whole = client.build_request("POST", "/predict", files={"file": ("one.png", png(mnist[0][0]), "image/png")})
    whole.read()
    for cut in (0, len(whole.content) // 2, len(whole.content) - 10):  # a client's upload cut off: 400, not "no files"
        truncated = client.post("/predict", content=whole.content[:cut], headers={"Content-Type":
                                                                                   whole.headers["content-type"]})
        assert truncated.status_code == 400 and "truncated" in detail(truncated), (cut, truncated.text)
    assert client.post("/predict", content=whole.content,
                       headers={"Content-Type": whole.headers["content-type"]}).status_code == 200
    too_many = [("files", (f"{index}.png", png(mnist[0][0]), "image/png")) for index in range(MAX_BATCH + 1)]
    response = client.post("/predict", files=too_many)
    assert response.status_code == 413 and "limit of 8" in detail(response)
    assert client.post("/predict?mode=sideways", json={"pixels": mnist[0][0].tolist()}).status_code == 422
    assert client.get("/predict").status_code == 405
