"""The drawing page (digits.api.routes.pages): served from the package, offline, and driven in a real
browser: Debian's Chromium under Playwright draws digits with the mouse on a live `digits serve`
and reads the prediction the page shows.

Screenshots go to test-artifacts/. The browser tests skip only when /usr/bin/chromium is absent
(CI installs it with `apt-get install -y chromium`; `playwright install` is never needed).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from helpers import REPO

pytest.importorskip("fastapi", reason="the API needs the api extra: pip install 'digits[api]'")

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO / "test-artifacts"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
needs_chromium = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's Chromium at /usr/bin/chromium "
                                                                  "(apt-get install -y chromium)")

# Strokes in fractions of the canvas: a "7" (bar, then diagonal) and a "1" (one vertical line).
SEVEN = [[(0.25, 0.22), (0.75, 0.22), (0.45, 0.85)]]
ONE = [[(0.52, 0.15), (0.50, 0.85)]]
SEVEN_ONE = [[(0.08, 0.25), (0.42, 0.25), (0.22, 0.80)], [(0.72, 0.20), (0.70, 0.80)]]  # "71", well apart


def test_drawing_page_is_served_from_the_package(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    assert '<canvas id="pad"' in html and 'accept="image/*"' in html and "capture" in html
    assert '<option value="auto" selected>' in html  # the page reads in auto mode, as the API and the CLI
    script, style = client.get("/static/app.js"), client.get("/static/style.css")
    assert script.status_code == 200 and style.status_code == 200
    assert "pointerdown" in script.text and "/predict" in script.text and "toBlob" in script.text
    assert "touch-action: none" in style.text and "pixelated" in style.text
    for text in (html, script.text, style.text):  # works offline: nothing from a CDN
        assert "http://" not in text and "https://" not in text


# ------------------------------------------------------------------ in a real browser


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield chromium
        chromium.close()


def draw(page, strokes, steps: int = 12) -> None:
    box = page.locator("#pad").bounding_box()
    for stroke in strokes:
        points = [(box["x"] + fx * box["width"], box["y"] + fy * box["height"]) for fx, fy in stroke]
        page.mouse.move(*points[0])
        page.mouse.down()
        for x, y in points[1:]:
            page.mouse.move(x, y, steps=steps)
        page.mouse.up()


def shown_prediction(page) -> str:
    page.wait_for_function("document.querySelector('#digit').textContent.trim() !== '–'", timeout=15000)
    page.wait_for_function("document.querySelectorAll('#bars li').length === 10", timeout=15000)
    return page.locator("#digit").inner_text().strip()


@needs_chromium
@pytest.mark.parametrize("ink, strokes, expected", [("dark", SEVEN, "7"), ("light", ONE, "1")])
def test_drawing_a_digit_shows_the_prediction(browser, live, ink, strokes, expected):
    page = browser.new_page(viewport={"width": 900, "height": 800})
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        page.goto(live + "/", wait_until="networkidle")
        page.wait_for_function("document.querySelector('#model').textContent.startsWith('model cnn')")
        assert page.locator("#pad").evaluate("element => getComputedStyle(element).touchAction") == "none"
        assert page.locator("#mode").input_value() == "auto"
        page.select_option("#ink", ink)
        with page.expect_response(lambda response: "/predict" in response.url and response.status == 200) as sent:
            draw(page, strokes)
        assert "mode=auto" in sent.value.url and "include_input=true" in sent.value.url
        digit = shown_prediction(page)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"drawing-page-{expected}-{ink}.png"), full_page=True)
        assert digit == expected, page.locator("#confidence").inner_text()
        confidence = float(page.locator("#confidence").inner_text().removeprefix("confidence ").rstrip("%")) / 100
        assert page.locator("#uncertain").is_visible() == (confidence < 0.5)  # the default DIGITS_UNCERTAIN_BELOW
        assert page.locator("#bars li.top").get_attribute("data-label") == expected
        assert page.locator("#seen canvas").count() == 1  # the 28x28 the model saw (digits[0].input), upscaled
        assert page.locator("#seen canvas").evaluate("canvas => [canvas.width, canvas.height]") == [28, 28]
        page.click("#clear")
        assert page.locator("#digit").inner_text().strip() == "–"
        assert not errors, errors
    finally:
        page.close()


@pytest.fixture(scope="module")
def refusing(cnn_fast_run, tmp_path_factory):
    """A live `digits serve RUN --reject-below 1.0`: every picture with ink is answered "not a digit"."""
    from bodies import LiveServer

    with LiveServer(cnn_fast_run, tmp_path_factory.mktemp("refusing-server"), "--reject-below", "1.0") as server:
        yield server.url


@needs_chromium
def test_a_drawing_that_is_not_a_digit_says_so(browser, refusing):
    page = browser.new_page(viewport={"width": 900, "height": 800})
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        page.goto(refusing + "/", wait_until="networkidle")
        page.select_option("#ink", "dark")
        with page.expect_response(lambda response: "/predict" in response.url and response.status == 200) as sent:
            draw(page, SEVEN)
        assert sent.value.json()["predictions"][0]["kind"] in ("not_a_digit", "no_ink")  # (no_ink: the first dot)
        page.wait_for_function("document.querySelector('#status').textContent === 'That does not look like a digit.'"
                               " && document.querySelectorAll('#seen canvas').length === 1", timeout=15000)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "drawing-page-not-a-digit.png"), full_page=True)
        assert page.locator("#digit").inner_text().strip() == "?"
        assert page.locator("#confidence").inner_text().strip() == "not a digit"
        assert page.locator("#bars li").count() == 0  # no digit's probabilities: it is not one
        assert not page.locator("#uncertain").is_visible()  # refused, which is not the same as unsure
        assert page.locator("#seen canvas").evaluate("canvas => [canvas.width, canvas.height]") == [28, 28]
        page.click("#clear")
        assert page.locator("#digit").inner_text().strip() == "–"
        assert not errors, errors
    finally:
        page.close()


@needs_chromium
def test_uploading_a_photo_shows_the_prediction(browser, live, mnist, tmp_path):
    from PIL import Image

    x, y = mnist
    photo = tmp_path / "photo.png"
    Image.fromarray(255 - x[1]).resize((224, 224), Image.Resampling.BICUBIC).save(photo)
    page = browser.new_page()
    try:
        page.goto(live + "/", wait_until="networkidle")
        with page.expect_response(lambda response: "/predict" in response.url):
            page.set_input_files("#photo", str(photo))
        assert shown_prediction(page) == str(int(y[1]))
        assert page.locator("#seen canvas").count() == 1
    finally:
        page.close()


@needs_chromium
def test_a_photo_of_numbers_on_two_lines_shows_them_one_under_the_other(browser, live, mnist, tmp_path):
    """The number's text breaks between lines; the page shows the break (one line "207 14" before its style)."""
    from PIL import Image

    x, y = mnist
    page_of_ink = np.zeros((84, 84), np.uint8)
    page_of_ink[:28], page_of_ink[56:, :56] = np.concatenate([x[1], x[3], x[0]], 1), np.concatenate([x[2], x[4]], 1)
    photo = tmp_path / "lines.png"
    Image.fromarray(255 - page_of_ink).resize((336, 336), Image.Resampling.BICUBIC).save(photo)
    page = browser.new_page(viewport={"width": 900, "height": 800})
    try:
        page.goto(live + "/", wait_until="networkidle")
        with page.expect_response(lambda response: "/predict" in response.url and response.status == 200):
            page.set_input_files("#photo", str(photo))
        page.wait_for_function("document.querySelectorAll('#seen canvas').length === 5", timeout=15000)
        shown = [line.strip() for line in page.locator("#digit").inner_text().splitlines()]
        assert shown == ["".join(str(y[i]) for i in (1, 3, 0)), "".join(str(y[i]) for i in (2, 4))], shown
    finally:
        page.close()


@needs_chromium
def test_an_iphone_photo_the_browser_cannot_show_is_read_and_clears_the_pad(browser, live, mnist, tmp_path):
    """Chromium cannot decode HEIC: the server reads the file all the same, and the pad drops the drawing before it
    (it stayed on show beside the photo's reading)."""
    from PIL import Image

    from helpers import save_heic

    x, y = mnist
    photo = save_heic(Image.fromarray(255 - x[1]).resize((224, 224), Image.Resampling.BICUBIC),
                      tmp_path / "IMG_0001.HEIC")
    page = browser.new_page()
    try:
        page.goto(live + "/", wait_until="networkidle")
        page.select_option("#ink", "dark")
        with page.expect_response(lambda response: "/predict" in response.url and response.status == 200):
            draw(page, SEVEN)
        assert shown_prediction(page) == "7"
        with page.expect_response(lambda response: "/predict" in response.url and response.status == 200):
            page.set_input_files("#photo", str(photo))
        page.wait_for_function(f"document.querySelector('#digit').textContent.trim() === '{int(y[1])}'", timeout=15000)
        blank = """() => {
            const pad = document.querySelector('#pad');
            const pixels = pad.getContext('2d').getImageData(0, 0, pad.width, pad.height).data;
            return pixels.every((value) => value === 255);
        }"""
        page.wait_for_function(blank, timeout=5000)  # the 7 drawn before is gone (white paper, not the photo)
    finally:
        page.close()


@needs_chromium
def test_drawing_a_number_shows_every_digit(browser, live):
    """Two digits drawn apart: auto mode reads a number, and the page shows it with a 28x28 per digit."""
    page = browser.new_page(viewport={"width": 900, "height": 800})
    try:
        page.goto(live + "/", wait_until="networkidle")
        page.select_option("#ink", "dark")
        with page.expect_response(lambda response: "/predict" in response.url and response.status == 200):
            draw(page, SEVEN_ONE)
        page.wait_for_function("document.querySelectorAll('#seen canvas').length === 2", timeout=15000)
        assert page.locator("#digit").inner_text().strip() == "71", page.locator("#confidence").inner_text()
        assert page.locator("#bars li").count() == 10  # the first digit's probabilities
        assert page.locator("#confidence").inner_text().count("%") == 3  # the number's, then each digit's
    finally:
        page.close()


@needs_chromium
def test_api_docs_render_offline(browser, live):
    page = browser.new_page()
    try:
        page.goto(live + "/docs", wait_until="networkidle")
        page.wait_for_selector(".opblock", timeout=15000)  # Swagger UI drew the operations from /openapi.json
        text = page.locator("body").inner_text()
        assert "/predict" in text and "/v2/models/{name}/infer" in text and "/v1/models/{name}:predict" in text
    finally:
        page.close()


@pytest.fixture(scope="module")
def shipped(tmp_path_factory):
    """A live `digits serve` with no run named and no runs: the shipped model."""
    from bodies import LiveServer

    with LiveServer(None, tmp_path_factory.mktemp("shipped-server")) as server:
        yield server.url


@needs_chromium
def test_the_drawing_page_reads_with_the_shipped_model(browser, shipped):
    from digits import runs

    page = browser.new_page(viewport={"width": 900, "height": 800})
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        page.goto(shipped + "/", wait_until="networkidle")
        model = runs.read_card()["config"]["model"]
        page.wait_for_function(f"document.querySelector('#model').textContent.startsWith('model {model}')")
        page.select_option("#ink", "dark")
        draw(page, SEVEN)
        assert shown_prediction(page) == "7", page.locator("#confidence").inner_text()
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "drawing-page-shipped-model.png"), full_page=True)
        assert not errors, errors
    finally:
        page.close()
