"""POST /predict: image files (multipart or a raw image/* body), base64 images or raw `pixels` in JSON.

Images go through the one preprocessing path (imaging.py -> digits.images); `pixels` are
already 28x28 and are only validated (tensors.py). Every answer carries the predicted class,
its confidence, all probabilities and the uncertain flag; `include_input=true` adds the 28x28
the model saw; `mode=number` reads a picture of several digits as a number. Errors are
FastAPI-style `{"detail": "..."}`: 400 unreadable body, 413 too large, 415 wrong content
type, 422 readable but unusable input, 503 not ready, 504 too slow.
"""

from __future__ import annotations

import asyncio
import base64
import binascii

import numpy as np
import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from . import imaging, schemas, tensors
from .errors import ApiError
from .lean import LeanRoute
from .service import Busy, Service

router = APIRouter(tags=["predict"], route_class=LeanRoute)
DUMP = orjson.OPT_SERIALIZE_NUMPY
JSON_KEYS = {"pixels", "image", "mode", "include_input"}
TRUE, FALSE = {"true", "1", "yes", "on"}, {"false", "0", "no", "off", ""}


def service_of(request: Request) -> Service:
    service = getattr(request.app.state, "service", None)
    if service is None or not service.ready:
        raise ApiError(503, "the model is still loading; retry in a few seconds (poll /health/ready)",
                       {"Retry-After": "2"})
    return service


def _flag(value, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in TRUE | FALSE:
        return value.lower() in TRUE
    raise ApiError(422, f"{name}={value!r} is not a boolean; use true or false")


def _mode(value) -> str:
    if value not in imaging.MODES:
        raise ApiError(422, f"mode={value!r} is unknown; use one of {', '.join(imaging.MODES)}")
    return value


def _as_uint8(image: np.ndarray) -> np.ndarray:
    return np.round(np.clip(image, 0, 1) * 255).astype(np.uint8)


def digit_results(probabilities: np.ndarray, names: list[str], threshold: float,
                  inputs: np.ndarray | None = None) -> list[dict]:
    top = probabilities.argmax(1)
    confidence = probabilities[np.arange(len(top)), top]
    results = [{"kind": "digit", "digit": int(index), "label": names[index], "confidence": confidence[row],
                "uncertain": bool(confidence[row] < threshold), "probabilities": probabilities[row]}
               for row, index in enumerate(top)]
    if inputs is not None:
        for result, image in zip(results, _as_uint8(inputs)):
            result["input"] = image
    return results


def number_result(number: imaging.Number, names: list[str], threshold: float, include_input: bool) -> dict:
    digits = []
    for position, entry in enumerate(number.reading["digits"]):
        index = int(entry["digit"])
        digit = {"digit": index, "label": names[index], "confidence": float(entry["confidence"]),
                 "uncertain": bool(entry["confidence"] < threshold), "box": entry.get("box"),
                 "probabilities": None if number.probabilities is None else number.probabilities[position]}
        if include_input and number.inputs is not None:
            digit["input"] = _as_uint8(number.inputs[position])
        digits.append(digit)
    return {"kind": "number", "number": number.reading["number"], "confidence": float(number.reading["confidence"]),
            "uncertain": any(digit["uncertain"] for digit in digits) or not digits,
            "ink_found": bool(number.reading["ink_found"]), "digits": digits}


def _decode_base64(text, position: int) -> bytes:
    what = "image" if position < 0 else f"image[{position}]"
    if not isinstance(text, str):
        raise ApiError(422, f"{what} must be a base64 string of an image file, not {type(text).__name__}")
    if text.startswith("data:"):
        header, _, text = text.partition(",")
        if ";base64" not in header:
            raise ApiError(422, f"{what} is a data: URL without ;base64; send base64-encoded image bytes")
    text = "".join(text.split())
    try:
        return base64.b64decode(text, altchars=b"-_" if ("-" in text or "_" in text) else None, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(422, f"{what} is not valid base64; encode the image file's bytes with base64") from None


async def _images(service: Service, uploads: list[tuple[bytes, str]], mode: str, include_input: bool) -> list[dict]:
    """Prepare pictures on the image pool, then classify the single digits in one batched call."""
    service.admit_pictures()
    try:
        read = await asyncio.gather(*(service.run_blocking(imaging.read, data, name, mode, service.predict_sync)
                                      for data, name in uploads))
    except ValueError as error:  # images.ImageError and friends: one line naming the file and the fix
        raise ApiError(422, str(error).splitlines()[0]) from None
    names, threshold = service.class_names, service.settings.uncertain_below
    inked = [item for item in read if isinstance(item, imaging.Digit) and item.ink_found]
    probabilities = await service.predict(np.stack([item.image for item in inked])) if inked else None
    results, next_row = [], 0
    for item, (_, name) in zip(read, uploads):
        if isinstance(item, imaging.Number):
            result = number_result(item, names, threshold, include_input)
            if service.metrics is not None:
                for digit in result["digits"]:
                    service.metrics.observe_label(digit["label"])
        elif item.ink_found:
            result = digit_results(probabilities[next_row:next_row + 1], names, threshold,
                                   item.image[None] if include_input else None)[0]
            next_row += 1
        else:
            result = {"kind": "digit", "digit": None, "label": None, "confidence": 0.0, "uncertain": True,
                      "probabilities": None}
            if include_input:
                result["input"] = _as_uint8(item.image)
        if isinstance(item, imaging.Digit):
            result.update(ink_found=item.ink_found, inverted=item.inverted,
                          box=list(item.box) if item.box is not None else None)
        result["filename"] = name
        results.append(result)
    return results


async def _from_json(request: Request, service: Service, mode: str, include_input: bool):
    body = await request.body()
    if not body:
        raise ApiError(400, "the request body is empty; send JSON with 'pixels' (28x28 numbers) or 'image' "
                            "(base64 of an image file)")
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise ApiError(400, f"the body is not valid JSON ({error}); send a JSON object") from None
    if not isinstance(payload, dict):
        raise ApiError(422, "the JSON body must be an object with 'pixels' or 'image'")
    unknown = set(payload) - JSON_KEYS
    if unknown:
        raise ApiError(422, f"unknown field(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(JSON_KEYS))}")
    if payload.get("mode") is not None:
        mode = _mode(payload["mode"])
    if payload.get("include_input") is not None:
        include_input = _flag(payload["include_input"], "include_input")
    pixels, image = payload.get("pixels"), payload.get("image")
    if (pixels is None) == (image is None):
        raise ApiError(422, "send exactly one of 'pixels' (28x28 numbers, or a list of them) and 'image' "
                            "(base64 of an image file, or a list of them)")
    if pixels is not None:
        if mode == "number":
            raise ApiError(422, "mode=number needs a picture ('image' or a file): 'pixels' is one 28x28 digit")
        try:
            array = tensors.uint8_image(pixels)
            if array is None:
                array = tensors.as_array(pixels, "pixels")
            images = tensors.to_batch(array, "pixels", service.settings.max_batch)
        except tensors.BatchTooLarge as error:
            raise ApiError(413, str(error)) from None
        except ValueError as error:
            raise ApiError(422, str(error)) from None
        probabilities = await service.predict(images)
        return digit_results(probabilities, service.class_names, service.settings.uncertain_below,
                             images if include_input else None)
    texts = image if isinstance(image, list) else [image]
    if not texts:
        raise ApiError(422, "'image' is an empty list; send at least one base64 image")
    _check_count(len(texts), service)
    uploads = [(_decode_base64(text, position if isinstance(image, list) else -1),
                f"image[{position}]" if isinstance(image, list) else "image") for position, text in enumerate(texts)]
    return await _images(service, uploads, mode, include_input)


def _check_count(count: int, service: Service) -> None:
    if count > service.settings.max_batch:
        raise ApiError(413, f"{count} images in one request, more than the limit of {service.settings.max_batch}; "
                            "split the request (or raise DIGITS_MAX_BATCH)")


async def _from_form(request: Request, service: Service, mode: str, include_input: bool):
    settings = service.settings
    try:
        form = await request.form(max_files=settings.max_batch + 1, max_fields=100,
                                  max_part_size=settings.max_body_bytes)
    except HTTPException as error:
        if "Too many files" in str(error.detail):
            _check_count(settings.max_batch + 1, service)
        raise ApiError(400, f"the multipart body is malformed ({error.detail}); send image files as "
                            "multipart/form-data") from None
    try:
        files = [value for _, value in form.multi_items() if isinstance(value, UploadFile)]
        if form.get("mode") is not None and not isinstance(form.get("mode"), UploadFile):
            mode = _mode(form.get("mode"))
        if form.get("include_input") is not None and not isinstance(form.get("include_input"), UploadFile):
            include_input = _flag(form.get("include_input"), "include_input")
        if not files:
            raise ApiError(422, "the form holds no files; attach one or more image files (any field name)")
        _check_count(len(files), service)
        uploads = [(await file.read(), file.filename or f"file[{position}]") for position, file in enumerate(files)]
    finally:
        await form.close()
    return await _images(service, uploads, mode, include_input)


PREDICT_OPENAPI = {
    "parameters": [
        {"name": "mode", "in": "query", "required": False,
         "schema": {"type": "string", "enum": list(imaging.MODES), "default": "digit"},
         "description": "pictures: one digit, a whole number (digits read left to right), or auto"},
        {"name": "include_input", "in": "query", "required": False, "schema": {"type": "boolean", "default": False},
         "description": "also return the 28x28 the model saw (0..255, ink bright)"}],
    "requestBody": {"required": True, "content": {
        "application/json": {"schema": schemas.inline_schema(schemas.PredictRequest)},
        "multipart/form-data": {"schema": {"type": "object", "properties": {
            "files": {"type": "array", "items": {"type": "string", "format": "binary"}}}}},
        "image/png": {"schema": {"type": "string", "format": "binary"}},
        "image/jpeg": {"schema": {"type": "string", "format": "binary"}}}},
}


@router.post("/predict", response_model=schemas.PredictResponse, openapi_extra=PREDICT_OPENAPI,
             summary="Classify digits: image files, base64 images or 28x28 pixels",
             responses={status: {"model": schemas.ErrorDetail} for status in (400, 408, 413, 415, 422, 503, 504)})
async def predict(request: Request):
    service = service_of(request)
    mode, include_input = "digit", False
    if request.scope["query_string"]:  # parsing an empty query string still costs microseconds
        query = request.query_params
        mode = _mode(query.get("mode", "digit"))
        include_input = _flag(query.get("include_input", "false"), "include_input")
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    try:
        if media == "application/json" or media.endswith("+json"):
            results = await _from_json(request, service, mode, include_input)
        elif media == "multipart/form-data":
            results = await _from_form(request, service, mode, include_input)
        elif media.startswith("image/") or media == "application/octet-stream":
            body = await request.body()
            if not body:
                raise ApiError(400, "the request body is empty; send the image file's bytes")
            results = await _images(service, [(body, "upload")], mode, include_input)
        else:
            raise ApiError(415, f"Content-Type {media or '(none)'!r} is not supported; send application/json, "
                                "multipart/form-data (image files) or an image/* body")
    except Busy as error:
        raise ApiError(503, f"{error}", {"Retry-After": "5"}) from None
    except (asyncio.TimeoutError, TimeoutError):
        raise ApiError(504, f"prediction took longer than {service.settings.timeout_seconds:g} s; retry, send "
                            "fewer images, or raise DIGITS_TIMEOUT_SECONDS") from None
    return Response(orjson.dumps({"model": service.name, "version": service.version, "predictions": results},
                                 option=DUMP), media_type="application/json")
