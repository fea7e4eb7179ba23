"""A battery of bad HTTP inputs for a live `digits serve` (issue 15): every route and protocol, sent as raw
bytes over loopback sockets so that broken framing, odd headers and hang-ups can be sent too.

    cases(model, max_batch, max_body, full)  the cases, grouped; `full=False` leaves out the slow and the
                                             big ones (the CI battery, tests/api/test_battery.py);
                                             `full=True` is benchmarks/battery.py's (with the issue's own
                                             inputs at full size: 100,000 repeated outputs on 256 images,
                                             16 MB JSON bodies, 49-megapixel pictures, 256 of them in one
                                             upload)
    send(url, case)                          one case: its status (None: no answer), answer size, seconds
    run(url, cases)                          every case in turn -> result dicts
    summary(results)                         answers by status, the largest answer, what went wrong

A bad input must get a 4xx (`expect="4xx"`), or at least no server error (`expect="<500"`: odd but valid
requests, such as an unknown query parameter); a client that hangs up (`hangup=True`) gets no answer;
broken HTTP framing may be answered 400 by uvicorn or closed without an answer (`may_close=True`).
Plain helpers (imported as `from battery import ...`), like bodies.py.
"""

from __future__ import annotations

import gzip
import io
import json
import socket
import time
import zlib
from dataclasses import dataclass

import numpy as np
from PIL import Image

from bodies import png_header

SIDE = 28


@dataclass
class Case:
    group: str
    name: str
    request: bytes  # the raw bytes sent
    expect: str = "4xx"  # "4xx" or "<500"
    hangup: bool = False  # the client closes after sending `request` (a partial request): no answer expected
    may_close: bool = False  # broken framing: uvicorn may close without answering


def http(method: str, path: str, body: bytes = b"", content_type: str | None = "application/json",
         headers: dict | None = None, length: int | None = None, version: str = "HTTP/1.1") -> bytes:
    """A raw request; `length` overrides the Content-Length header (None: the body's length)."""
    lines = [f"{method} {path} {version}", "Host: 127.0.0.1", "Connection: close"]
    if content_type is not None:
        lines.append(f"Content-Type: {content_type}")
    if body or length is not None or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body) if length is None else length}")
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return "\r\n".join(lines).encode("latin-1") + b"\r\n\r\n" + body


def dumps(value) -> bytes:
    return json.dumps(value, allow_nan=True).encode()


def picture(array: np.ndarray, kind: str = "PNG", **options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, kind, **options)
    return buffer.getvalue()


def multipart(parts: list[tuple[str, str | None, str, bytes]], boundary: str = "battery") -> tuple[bytes, str]:
    """(body, content type) of a form: parts are (field, filename or None, content type, data)."""
    chunks = []
    for field, filename, kind, data in parts:
        disposition = f'form-data; name="{field}"' + (f'; filename="{filename}"' if filename else "")
        chunks.append(f"--{boundary}\r\nContent-Disposition: {disposition}\r\nContent-Type: {kind}\r\n\r\n".encode()
                      + data + b"\r\n")
    return b"".join(chunks) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def v2_body(images: np.ndarray, datatype: str = "UINT8", **extra) -> dict:
    return {"inputs": [{"name": "images", "shape": list(images.shape), "datatype": datatype,
                        "data": images.ravel().tolist()}], **extra}


def _pictures() -> dict[str, bytes]:
    """Odd but well-formed image files, and files that only look like images."""
    rng = np.random.default_rng(15)
    digit = np.full((112, 112), 255, np.uint8)
    digit[20:92, 50:62] = 0  # a "1"
    noise = rng.integers(0, 256, (64, 64), dtype=np.uint8)
    files = {
        "a one (PNG)": picture(digit),
        "noise (PNG)": picture(noise),
        "1x1 (PNG)": picture(np.zeros((1, 1), np.uint8)),
        "blank 200x200 (PNG)": picture(np.full((200, 200), 255, np.uint8)),
        "strip 20000x20 (PNG)": picture(np.full((20, 20000), 255, np.uint8)),
        "strip 1x5000 (PNG)": picture(np.zeros((5000, 1), np.uint8)),
        "RGBA transparent (PNG)": picture(np.zeros((40, 40, 4), np.uint8)),
        "16-bit (PNG)": picture(np.full((40, 40), 40000, np.uint16)),
        "JPEG": picture(digit, "JPEG"),
        "GIF": picture(digit, "GIF"),
        "BMP": picture(digit, "BMP"),
        "float TIFF, max just over 255": picture(np.where(digit > 0, 255.5, 0).astype(np.float32), "TIFF"),
        "float TIFF with NaN": picture(np.full((32, 32), np.nan, np.float32), "TIFF"),
        "WebP": picture(digit, "WEBP"),
        "ICO": picture(np.stack([digit[:64, :64]] * 3, -1), "ICO"),
    }
    cmyk = io.BytesIO()
    Image.new("CMYK", (40, 40), (0, 0, 0, 255)).save(cmyk, "JPEG")
    files["CMYK JPEG"] = cmyk.getvalue()
    frames = [Image.fromarray(digit), Image.fromarray(255 - digit)]
    animated = io.BytesIO()
    frames[0].save(animated, "GIF", save_all=True, append_images=frames[1:])
    files["animated GIF"] = animated.getvalue()
    png = files["a one (PNG)"]
    files.update({
        "truncated PNG": png[:len(png) // 2],
        "PNG signature only": png[:8],
        "truncated JPEG": files["JPEG"][:200],
        "PNG claiming 100000x100000 (bomb header)": png_header(100_000, 100_000),
        "PNG claiming 0x0": png_header(0, 0),
        "PNG claiming 1x2^31": png_header(1, 2**31 - 1),
        "garbage bytes": rng.integers(0, 256, 3000, dtype=np.uint8).tobytes(),
        "text": b"this is not a picture",
        "SVG": b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><text>7</text></svg>',
        "PDF": b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF",
        "ZIP": b"PK\x03\x04" + bytes(100),
        "HTML": b"<html><body><img src=x onerror=alert(1)></body></html>",
        "empty file": b"",
    })
    return files


def big_blank_png(megapixels: int = 49) -> bytes:
    side = int((megapixels * 1_000_000) ** 0.5)
    return picture(np.full((side, side), 255, np.uint8), compress_level=9)


def cases(model: str, max_batch: int, max_body: int, full: bool = False) -> list[Case]:
    """The battery for a server serving `model` with `max_batch` images per request and `max_body` bytes."""
    one = np.zeros((1, SIDE, SIDE), np.uint8)
    pixels = one[0].tolist()
    v2 = f"/v2/models/{model}/infer"
    v1 = f"/v1/models/{model}:predict"
    out: list[Case] = []

    def add(group, name, request, **options):
        out.append(Case(group, name, request, **options))

    # ---------------------------------------------------------------- every route with the wrong method
    routes = {"/": "GET", "/predict": "POST", "/info": "GET", "/metrics": "GET", "/health/live": "GET",
              "/health/ready": "GET", "/v2": "GET", "/v2/health/live": "GET", "/v2/health/ready": "GET",
              f"/v2/models/{model}": "GET", f"/v2/models/{model}/versions/1": "GET",
              f"/v2/models/{model}/ready": "GET", f"/v2/models/{model}/config": "GET", v2: "POST",
              f"/v2/models/{model}/versions/1/infer": "POST", "/v2/repository/index": "POST",
              f"/v1/models/{model}": "GET", f"/v1/models/{model}/metadata": "GET", v1: "POST",
              f"/v1/models/{model}/versions/1:predict": "POST", "/docs": "GET", "/openapi.json": "GET",
              "/static/app.js": "GET"}
    for path, method in routes.items():
        wrong = ["PUT", "DELETE", "PATCH", "POST" if method == "GET" else "GET"]
        if full:
            wrong += ["OPTIONS", "TRACE"]
        for verb in wrong:
            add("wrong method", f"{verb} {path}", http(verb, path, b"{}" if verb != "GET" else b""))

    # ---------------------------------------------------------------- unknown models, versions, paths
    for path, method in [("/v2/models/nope", "GET"), ("/v2/models/nope/ready", "GET"),
                         (f"/v2/models/{model}/versions/2", "GET"), (f"/v2/models/{model}/versions/2/ready", "GET"),
                         ("/v2/models/nope/config", "GET"), ("/v2/models/nope/infer", "POST"),
                         (f"/v2/models/{model}/versions/2/infer", "POST"), ("/v1/models/nope", "GET"),
                         (f"/v1/models/{model}/versions/7", "GET"), ("/v1/models/nope/metadata", "GET"),
                         ("/v1/models/nope:predict", "POST"), (f"/v1/models/{model}/versions/7:predict", "POST"),
                         (f"/v1/models/{model}:classify", "POST"), (f"/v1/models/{model}:regress", "POST"),
                         (f"/v1/models/{model}", "POST"), ("/v2/models/" + "x" * 10000, "GET"),
                         ("/v2/models/%E2%98%83/infer", "POST"), ("/v2/models/%00/infer", "POST"),
                         ("/v3/models", "GET"), ("/predict/extra", "POST"), ("/static/missing.js", "GET"),
                         ("/static/../../../etc/passwd", "GET"), ("/static/%2e%2e/%2e%2e/etc/passwd", "GET"),
                         ("/static/..%2f..%2fetc%2fpasswd", "GET"), ("//predict", "POST"), ("/" + "a/" * 2000, "GET")]:
        body = dumps(v2_body(one)) if method == "POST" else b""
        add("unknown model or path", f"{method} {path[:60]}", http(method, path, body))

    # ---------------------------------------------------------------- /predict: JSON
    predict_json = {
        "empty body": b"", "one brace": b"{", "null": b"null", "a list": b"[]", "a number": b"1",
        "a string": b'"pixels"', "empty object": b"{}", "pixels null": dumps({"pixels": None}),
        "pixels []": dumps({"pixels": []}), "pixels [[]]": dumps({"pixels": [[]]}), "pixels 5": dumps({"pixels": 5}),
        "pixels string": dumps({"pixels": "abc"}), "27x28": dumps({"pixels": pixels[:27]}),
        "28x27": dumps({"pixels": [row[:27] for row in pixels]}),
        "ragged rows": dumps({"pixels": pixels[:27] + [[0] * 5]}),
        "NaN": dumps({"pixels": [[float("nan")] * SIDE] * SIDE}),
        "Infinity": dumps({"pixels": [[float("inf")] * SIDE] * SIDE}),
        "1e400": b'{"pixels": [[1e400]]}', "negative": dumps({"pixels": [[-1] * SIDE] * SIDE}),
        "over 255": dumps({"pixels": [[256] * SIDE] * SIDE}), "1e308": dumps({"pixels": [[1e308] * SIDE] * SIDE}),
        "booleans": dumps({"pixels": [[True] * SIDE] * SIDE}), "nulls inside": dumps({"pixels": [[None] * SIDE] * SIDE}),
        "strings inside": dumps({"pixels": [["0"] * SIDE] * SIDE}),
        "objects inside": dumps({"pixels": [[{"v": 0}] * SIDE] * SIDE}),
        "3 channels": dumps({"pixels": [[[0, 0, 0]] * SIDE] * SIDE}),
        "28x28x2": dumps({"pixels": [[[0, 0]] * SIDE] * SIDE}),
        "5-D": dumps({"pixels": [[pixels]]}),
        "too many images": dumps({"pixels": [pixels] * (max_batch + 1)}),
        "no images": dumps({"pixels": [[[]]]}),
        "deep nesting": b'{"pixels": ' + b"[" * 5000 + b"]" * 5000 + b"}",
        "both pixels and image": dumps({"pixels": pixels, "image": "aGk="}),
        "unknown field": dumps({"pixels": pixels, "colour": "red"}),
        "mode unknown": dumps({"pixels": pixels, "mode": "sideways"}),
        "mode number with pixels": dumps({"pixels": pixels, "mode": "number"}),
        "mode a list": dumps({"pixels": pixels, "mode": ["digit"]}),
        "include_input maybe": dumps({"pixels": pixels, "include_input": "maybe"}),
        "include_input 2": dumps({"pixels": pixels, "include_input": 2}),
        "image not base64": dumps({"image": "not base64!!"}),
        "image base64 of text": dumps({"image": "aGVsbG8gd29ybGQ="}),
        "image a number": dumps({"image": 7}), "image null in a list": dumps({"image": [None]}),
        "image data: URL without base64": dumps({"image": "data:image/png,abcd"}),
        "image empty list": dumps({"image": []}), "image empty string": dumps({"image": ""}),
        "too many base64 images": dumps({"image": ["aGk="] * (max_batch + 1)}),
        "invalid UTF-8": b'{"pixels": "\xff\xfe"}', "UTF-8 BOM": b"\xef\xbb\xbf" + dumps({"pixels": pixels}),
        "UTF-16": dumps({"pixels": pixels}).decode().encode("utf-16"),
        "duplicate keys": b'{"pixels": 1, "pixels": ' + dumps(pixels) + b"}",
        "trailing garbage": dumps({"pixels": pixels}) + b"}}}", "a megabyte of zeros": b"[" + b"0," * 500_000 + b"0]",
    }
    for name, body in predict_json.items():  # duplicate keys: the last one counts, as in every JSON parser
        add("/predict JSON", name, http("POST", "/predict", body), expect="<500" if name == "duplicate keys" else "4xx")
    if full:  # the issue's 16 MB JSON bodies (parsed off the event loop now), just under and just over the limit
        zeros = b'{"pixels": [' + b"0," * ((max_body - 20) // 2) + b"0]}"
        add("/predict JSON", "16 MB of pixels (over max_batch)", http("POST", "/predict", zeros[:max_body - 16] + b"0]}"))
        add("/v2 JSON", "16 MB V2 request (one image, then spaces)",
            http("POST", v2, json.dumps(v2_body(one)).encode().ljust(max_body - 1)), expect="<500")
    add("/predict JSON", "declares a body over the limit", http("POST", "/predict", b"", length=max_body + 1))

    # ---------------------------------------------------------------- /predict: content types, files, forms
    files = _pictures()
    for name, data in files.items():
        add("/predict image body", name, http("POST", "/predict", data, "image/png"),
            expect="<500" if name in ("a one (PNG)", "noise (PNG)", "1x1 (PNG)", "blank 200x200 (PNG)", "JPEG", "GIF",
                                      "BMP", "WebP", "ICO", "CMYK JPEG", "animated GIF", "16-bit (PNG)",
                                      "RGBA transparent (PNG)", "strip 20000x20 (PNG)", "strip 1x5000 (PNG)",
                                      "float TIFF, max just over 255", "float TIFF with NaN") else "4xx")
    for kind in (None, "text/plain", "application/xml", "application/x-www-form-urlencoded", "text/html",
                 "application/json-patch", "image", "multipart/form-data", "multipart/mixed; boundary=x",
                 "application/json; charset=latin-1-bogus"):
        body = b"x=1" if kind != "application/json; charset=latin-1-bogus" else b"{"
        add("/predict content type", f"Content-Type {kind}", http("POST", "/predict", body, kind))
    png = files["a one (PNG)"]
    form, form_type = multipart([("file", "one.png", "image/png", png)])
    for cut in (0, 10, len(form) // 3, len(form) // 2, len(form) - 12, len(form) - 3):
        add("/predict multipart", f"truncated at {cut} of {len(form)} bytes", http("POST", "/predict", form[:cut],
                                                                                      form_type))
    add("/predict multipart", "no boundary parameter", http("POST", "/predict", form, "multipart/form-data"))
    add("/predict multipart", "wrong boundary", http("POST", "/predict", form, "multipart/form-data; boundary=other"))
    add("/predict multipart", "garbage", http("POST", "/predict", b"garbage" * 50, form_type))
    add("/predict multipart", "no files", http("POST", "/predict", *multipart([("note", None, "text/plain", b"hi")])))
    add("/predict multipart", "mode unknown", http("POST", "/predict", *multipart(
        [("file", "one.png", "image/png", png), ("mode", None, "text/plain", b"sideways")])))
    add("/predict multipart", "include_input maybe", http("POST", "/predict", *multipart(
        [("file", "one.png", "image/png", png), ("include_input", None, "text/plain", b"maybe")])))
    add("/predict multipart", "too many files", http("POST", "/predict", *multipart(
        [("file", f"{index}.png", "image/png", png) for index in range(max_batch + 1)])))
    add("/predict multipart", "101 text fields", http("POST", "/predict", *multipart(
        [("file", "one.png", "image/png", png)] + [(f"f{index}", None, "text/plain", b"x") for index in range(101)])))
    for name in ("text", "empty file", "PNG claiming 100000x100000 (bomb header)", "truncated PNG", "SVG"):
        add("/predict multipart", f"a file: {name}", http("POST", "/predict", *multipart(
            [("file", "upload.png", "image/png", files[name])])))
    add("/predict multipart", "a file without a filename", http("POST", "/predict", *multipart(
        [("file", None, "image/png", png)])), expect="<500")
    add("/predict multipart", 'a filename with quotes, slashes and ..', http("POST", "/predict", *multipart(
        [("file", '../../etc/passwd\\"x', "image/png", png)])), expect="<500")

    # ---------------------------------------------------------------- query parameters
    for query, expect in (("mode=sideways", "4xx"), ("mode=", "4xx"), ("mode=number&mode=digit", "<500"),
                          ("include_input=maybe", "4xx"), ("include_input=2", "4xx"), ("colour=red", "<500"),
                          ("mode=%ff%fe", "4xx"), ("mode=%zz", "4xx"), ("&".join(f"p{i}=1" for i in range(5000)), "<500"),
                          ("mode=" + "d" * 20000, "4xx")):
        add("query parameters", f"/predict?{query[:40]}", http("POST", f"/predict?{query}", dumps({"pixels": pixels})),
            expect=expect)
    for path in ("/metrics?name[]=x", "/info?x=%ff", "/v2/health/ready?verbose=1"):
        add("query parameters", path, http("GET", path), expect="<500")

    # ---------------------------------------------------------------- /v2 (Open Inference Protocol)
    good = v2_body(one)
    first = good["inputs"][0]
    v2_json = {
        "empty body": b"", "not JSON": b"{", "a list": b"[]", "null": b"null", "no inputs": dumps({}),
        "inputs a string": dumps({"inputs": "images"}), "two inputs": dumps({"inputs": [first, first]}),
        "unknown input": dumps({"inputs": [{**first, "name": "pixels"}]}),
        "datatype INT64": dumps({"inputs": [{**first, "datatype": "INT64"}]}),
        "datatype BYTES": dumps({"inputs": [{**first, "datatype": "BYTES"}]}),
        "datatype null": dumps({"inputs": [{**first, "datatype": None}]}),
        "shape flat": dumps({"inputs": [{**first, "shape": [784]}]}),
        "shape negative": dumps({"inputs": [{**first, "shape": [-1, 28, 28]}]}),
        "shape strings": dumps({"inputs": [{**first, "shape": [1, 28, "28"]}]}),
        "shape huge, no data": dumps({"inputs": [{**first, "shape": [2**62, 28, 28]}]}),
        "shape booleans": dumps({"inputs": [{**first, "shape": [True, 28, 28]}]}),
        "count mismatch": dumps({"inputs": [{**first, "shape": [2, 28, 28]}]}),
        "3 channels": dumps({"inputs": [{**first, "shape": [1, 28, 28, 3], "data": [0] * 2352}]}),
        "NaN": dumps({"inputs": [{**first, "datatype": "FP32", "data": [0.0] * 783 + [float("nan")]}]}),
        "strings in data": dumps({"inputs": [{**first, "data": [0] * 783 + ["x"]}]}),
        "negative FP32": dumps({"inputs": [{**first, "datatype": "FP32", "data": [-3.0] * 784}]}),
        "fractional UINT8": dumps({"inputs": [{**first, "data": [0.5] * 784}]}),
        "UINT8 over 255": dumps({"inputs": [{**first, "data": [300] * 784}]}),
        "no data": dumps({"inputs": [{key: value for key, value in first.items() if key != "data"}]}),
        "nested data": dumps({"inputs": [{**first, "data": [[[0] * 28] * 28]}]}),
        "too many images": dumps(v2_body(np.zeros((max_batch + 1, SIDE, SIDE), np.uint8))),
        "no images": dumps(v2_body(np.zeros((0, SIDE, SIDE), np.uint8))),
        "unknown output": dumps({**good, "outputs": [{"name": "logits"}]}),
        "output without a name": dumps({**good, "outputs": [{}]}),
        "outputs not a list": dumps({**good, "outputs": {"name": "probabilities"}}),
        "outputs of strings": dumps({**good, "outputs": ["probabilities"]}),
        "output twice": dumps({**good, "outputs": [{"name": "probabilities"}] * 2}),
        "output 1,000 times": dumps({**good, "outputs": [{"name": "probabilities"}] * 1000}),
        "classification -1": dumps({**good, "outputs": [{"name": "probabilities", "parameters": {"classification": -1}}]}),
        "classification a string": dumps({**good, "outputs": [{"name": "probabilities",
                                                               "parameters": {"classification": "3"}}]}),
        "classification 10^18": dumps({**good, "outputs": [{"name": "probabilities",
                                                            "parameters": {"classification": 10**18}}]}),
        "parameters a list": dumps({**good, "parameters": []}),
        "output parameters a list": dumps({**good, "outputs": [{"name": "probabilities", "parameters": []}]}),
        "input parameters a list": dumps({"inputs": [{**first, "parameters": []}]}),
        "id a number": dumps({**good, "id": 5}),
    }
    for name, body in v2_json.items():
        add("/v2 JSON", name, http("POST", v2, body), expect="<500" if name in (
            "id a number", "classification 10^18", "nested data") else "4xx")  # nested data: as Triton takes it
    if full:  # the issue's request: 256 images and 100,000 repeats of the one output (6.7 MB; a 3 GB answer before)
        flood = v2_body(np.zeros((max_batch, SIDE, SIDE), np.uint8), outputs=[{"name": "probabilities"}] * 100_000)
        add("/v2 JSON", f"{max_batch} images, output 100,000 times", http("POST", v2, dumps(flood)))
    tensor = one.tobytes()
    header = {"inputs": [{**{key: value for key, value in first.items() if key != "data"},
                          "parameters": {"binary_data_size": len(tensor)}}]}
    header_bytes = dumps(header)
    binary = {
        "header length not a number": ({"Inference-Header-Content-Length": "abc"}, header_bytes + tensor),
        "header length past the body": ({"Inference-Header-Content-Length": "999999"}, header_bytes + tensor),
        "header length negative": ({"Inference-Header-Content-Length": "-5"}, header_bytes + tensor),
        "header length cuts the JSON": ({"Inference-Header-Content-Length": "10"}, header_bytes + tensor),
        "tensor short": ({"Inference-Header-Content-Length": str(len(header_bytes))}, header_bytes + tensor[:-4]),
        "tensor long": ({"Inference-Header-Content-Length": str(len(header_bytes))}, header_bytes + tensor + b"xx"),
        "binary without binary_data_size": ({"Inference-Header-Content-Length": str(len(dumps(good)))},
                                            dumps(good) + tensor),
        "binary_data_size a string": ({"Inference-Header-Content-Length": str(len(header_bytes) + 2)},
                                      header_bytes.replace(str(len(tensor)).encode(), b'"784"') + tensor),
    }
    for name, (headers, body) in binary.items():
        add("/v2 binary", name, http("POST", v2, body, "application/octet-stream", headers))
    bomb = gzip.compress(b" " * (max_body + 1024), 9)
    encoded = {
        "gzip corrupt": ("gzip", b"\x1f\x8b\x08\x00garbage"), "deflate corrupt": ("deflate", b"not deflate"),
        "gzip bomb (inflates past the body limit)": ("gzip", bomb),
        "deflate bomb": ("deflate", zlib.compress(b"0" * (max_body + 1024), 9)),
        "brotli": ("br", b"\x00"), "gzip of not JSON": ("gzip", gzip.compress(b"{")),
        "gzip, gzip": ("gzip, gzip", gzip.compress(gzip.compress(dumps(good)))),
    }
    for name, (encoding, body) in encoded.items():
        add("/v2 compressed", name, http("POST", v2, body, headers={"Content-Encoding": encoding}))
    add("/v2 content type", "text/plain", http("POST", v2, dumps(good), "text/plain"))
    add("/v2 content type", "multipart", http("POST", v2, *multipart([("file", "x", "image/png", png)])))

    # ---------------------------------------------------------------- /v1 (TensorFlow Serving REST)
    v1_json = {
        "empty body": b"", "not JSON": b"{", "a list": b"[]", "no fields": dumps({}),
        "instances and inputs": dumps({"instances": [pixels], "inputs": [pixels]}),
        "instances empty": dumps({"instances": []}), "instances a number": dumps({"instances": 3}),
        "instances of wrong keys": dumps({"instances": [{"pixels": pixels}]}),
        "instances of mixed objects": dumps({"instances": [{"images": pixels}, pixels]}),
        "inputs of a wrong key": dumps({"inputs": {"pixels": [pixels]}}),
        "signature unknown": dumps({"signature_name": "classify", "instances": [pixels]}),
        "unknown field": dumps({"instances": [pixels], "colour": 1}),
        "one 28x28 as instances": dumps({"instances": pixels}),
        "NaN": dumps({"instances": [[[float("nan")] * SIDE] * SIDE]}),
        "strings": dumps({"instances": [[["x"] * SIDE] * SIDE]}),
        "too many": dumps({"instances": [pixels] * (max_batch + 1)}),
        "ragged": dumps({"instances": [pixels, pixels[:3]]}),
    }
    for name, body in v1_json.items():
        add("/v1 JSON", name, http("POST", v1, body))
    add("/v1 content type", "text/plain", http("POST", v1, dumps({"instances": [pixels]}), "text/plain"))

    # ---------------------------------------------------------------- odd headers and broken HTTP framing
    body = dumps({"pixels": pixels})
    start = b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/json\r\n"
    framing = {
        "Content-Length not a number": (start + b"Content-Length: abc\r\n\r\n" + body, True),
        "Content-Length negative": (start + b"Content-Length: -5\r\n\r\n" + body, True),
        "Content-Length huge": (start + b"Content-Length: 99999999999999999999\r\n\r\n", True),
        "two different Content-Lengths": (start + b"Content-Length: 5\r\nContent-Length: 6\r\n\r\n" + body, True),
        "Content-Length and chunked": (start + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
                                       True),
        "bad chunk size": (start + b"Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n", True),
        "chunked, empty": (start + b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", True),
        "Transfer-Encoding gzip": (start + b"Transfer-Encoding: gzip\r\n\r\n" + body, True),
        "body longer than Content-Length": (start + b"Content-Length: 3\r\n\r\n" + body, True),
        "no Host": (b"GET /health/live HTTP/1.1\r\nConnection: close\r\n\r\n", True),
        "HTTP/1.0": (b"GET /info HTTP/1.0\r\n\r\n", True),
        "HTTP/2.0 in a request line": (b"GET /info HTTP/2.0\r\nHost: x\r\n\r\n", True),
        "HTTP/9.9": (b"GET /info HTTP/9.9\r\nHost: x\r\n\r\n", True),
        "no version": (b"GET /info\r\n\r\n", True),
        "lower-case method": (b"get /info HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", True),
        "unknown method": (b"BREW /predict HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", True),
        "TLS handshake": (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(40), True),
        "not HTTP": (b"hello\r\n\r\n", True),
        "NUL bytes in the path": (b"GET /in\x00fo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", True),
        "spaces in the path": (b"GET /in fo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", True),
        "absolute URL": (b"GET http://evil.example/info HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", True),
        "OPTIONS *": (b"OPTIONS * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", True),
        "header without a colon": (b"GET /info HTTP/1.1\r\nHost: x\r\nNoColon\r\nConnection: close\r\n\r\n", True),
        "header name with spaces": (b"GET /info HTTP/1.1\r\nHost: x\r\nBad Name: 1\r\nConnection: close\r\n\r\n", True),
        "non-ASCII header value": ("GET /info HTTP/1.1\r\nHost: x\r\nX-Name: \u00e9\u00e8\r\nConnection: close\r\n\r\n"
                                   .encode("latin-1"), True),
        "a 64 KB header": (b"GET /info HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 65536 + b"\r\nConnection: close\r\n\r\n",
                           True),
        "300 headers": (b"GET /info HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: 1\r\n" % index for index in range(300))
                        + b"Connection: close\r\n\r\n", True),
        "LF line endings": (b"GET /info HTTP/1.1\nHost: x\nConnection: close\n\n", True),
        "Expect: 100-continue": (start + b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(body) + body, True),
        "obs-fold header": (b"GET /info HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n  folded\r\nConnection: close\r\n\r\n", True),
    }
    for name, (request, may_close) in framing.items():
        add("headers and framing", name, request, expect="<500", may_close=may_close)
    for name, headers in {"Accept: image/png": {"Accept": "image/png"}, "Accept-Encoding: br": {"Accept-Encoding": "br"},
                          "Content-Encoding gzip on /predict": {"Content-Encoding": "gzip"},
                          "X-Forwarded-For spoofed": {"X-Forwarded-For": "1.2.3.4, <script>"},
                          "Range": {"Range": "bytes=0-10"}, "Cookie 8 KB": {"Cookie": "a=" + "b" * 8000},
                          "Authorization junk": {"Authorization": "Bearer \x01\x02"}}.items():
        add("headers and framing", name, http("POST", "/predict", body, headers=headers), expect="<500")

    # ---------------------------------------------------------------- clients that hang up
    hangups = {
        "/predict JSON, 5 of 100 bytes": http("POST", "/predict", b'{"pix', length=100),
        "/predict image, half a PNG": http("POST", "/predict", png[:len(png) // 2], "image/png", length=len(png)),
        "/predict multipart, half a form": http("POST", "/predict", form[:len(form) // 2], form_type, length=len(form)),
        "/v2 JSON, 5 of 1000 bytes": http("POST", v2, b'{"inp', length=1000),
        "/v2 binary, header only": http("POST", v2, header_bytes, "application/octet-stream",
                                        {"Inference-Header-Content-Length": str(len(header_bytes))},
                                        length=len(header_bytes) + len(tensor)),
        "/v1 JSON, 5 of 100 bytes": http("POST", v1, b'{"ins', length=100),
        "headers only, no body": http("POST", "/predict", b"", length=100),
        "half a request line": b"POST /pred",
        "half the headers": b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Ty",
    }
    for name, request in hangups.items():
        add("hang-ups", name, request, hangup=True)
    for index in range(50 if full else 5):  # many clients in a row: one log line each, never a traceback
        add("hang-ups", f"/predict JSON, 5 of 100 bytes, again ({index + 1})", hangups["/predict JSON, 5 of 100 bytes"],
            hangup=True)

    if full:  # the issue's pictures: a 49-megapixel blank PNG alone, max_batch of them in one upload (15 MB that
        # held the picture pool for a minute), then a strip of 40 digits' width
        blank = big_blank_png()
        add("/predict image body", "blank 49-megapixel PNG", http("POST", "/predict", blank, "image/png"),
            expect="<500")
        add("/predict multipart", f"{max_batch} blank 49-megapixel PNGs in one upload", http("POST", "/predict", *multipart(
            [("file", f"{index}.png", "image/png", blank) for index in range(max_batch)])))
        add("/predict image body", "5000x60 strip", http("POST", "/predict", picture(
            np.full((60, 5000), 255, np.uint8)), "image/png"), expect="<500")
    return out


def send(url: str, case: Case, timeout: float = 60, forbidden: tuple[str, ...] = ()) -> dict:
    """Send one case; its status (None: no answer), answer bytes and seconds, and which of `forbidden` (the
    server's paths, "Traceback") the answer shows."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    started = time.perf_counter()
    status, answer, error = None, b"", None
    try:
        with socket.create_connection((host, int(port)), timeout=timeout) as connection:
            connection.sendall(case.request)
            if not case.hangup:
                chunks = []
                while chunk := connection.recv(1 << 20):
                    chunks.append(chunk)
                answer = b"".join(chunks)
    except OSError as caught:  # a reset after uvicorn refused the framing, or a timeout
        error = f"{type(caught).__name__}: {caught}"
    while answer.startswith(b"HTTP/1.1 1") and b"\r\n\r\n" in answer:  # 100 Continue: the answer follows
        answer = answer.split(b"\r\n\r\n", 1)[1]
    if answer.startswith(b"HTTP/"):
        status = int(answer.split(b" ", 2)[1])
    leaks = [text for text in forbidden if text.encode() in answer]
    return {"group": case.group, "name": case.name, "status": status, "answer_bytes": len(answer), "leaks": leaks,
            "seconds": round(time.perf_counter() - started, 4), "error": error, "expect": case.expect,
            "hangup": case.hangup, "may_close": case.may_close}


def run(url: str, battery: list[Case], timeout: float = 60, forbidden: tuple[str, ...] = ("Traceback",)) -> list[dict]:
    return [send(url, case, timeout, forbidden) for case in battery]


def problem(result: dict) -> str | None:
    """What is wrong with one case's result, or None."""
    status = result["status"]
    if result["leaks"]:
        return f"the answer shows {', '.join(result['leaks'])}"
    if result["hangup"]:
        return None if status is None else f"answered {status} to a client that hung up"
    if status is None:
        return None if result["may_close"] else f"no answer ({result['error']})"
    if status >= 500:
        return f"answered {status}"
    if result["expect"] == "4xx" and not 400 <= status < 500:
        return f"answered {status}, expected a 4xx"
    return None


def summary(results: list[dict]) -> dict:
    by_status: dict[str, int] = {}
    for result in results:
        key = "no answer" if result["status"] is None else str(result["status"])
        by_status[key] = by_status.get(key, 0) + 1
    problems = [f"{result['group']}: {result['name']}: {problem(result)}" for result in results if problem(result)]
    return {"cases": len(results), "by_status": dict(sorted(by_status.items())),
            "server_errors": sum(1 for result in results if (result["status"] or 0) >= 500),
            "max_answer_bytes": max(result["answer_bytes"] for result in results), "problems": problems}
