"""POST /predict: image files (multipart or a raw image/* body), base64 images or raw `pixels` in JSON.

Pictures are read by `reading.read`, the path `digits predict` and `digits.read` take, in
the same default mode (`auto`: a number when several digits are found); each answer is a
Reading's JSON, the same fields with the same types as `digits predict --json`. `pixels`
are already 28x28 model inputs: they are only checked and scaled (inputs.py), classified
through the batcher and answered in the same shape. `include_input=true` adds the 28x28 the
model saw. Errors are FastAPI-style `{"detail": "..."}`: 400 unreadable body, 413 too large,
415 wrong content type, 422 readable but unusable input, 503 not ready or busy, 504 too slow.
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from ... import reading
from .. import inputs, schemas
from ..deps import (LARGE_BODY_BYTES, ApiError, LeanRoute, is_json, json_answer, media_type, off_loop, parse_json,
                    predict, service_of)
from ..service import Busy, ClientGone, Service

router = APIRouter(tags=["predict"], route_class=LeanRoute)
JSON_KEYS = {"pixels", "image", "mode", "include_input"}
TRUE, FALSE = {"true", "1", "yes", "on"}, {"false", "0", "no", "off", ""}
DEFAULT_MODE = "auto"  # as `digits predict` and `digits.read`


def _flag(value, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in TRUE | FALSE:
        return value.lower() in TRUE
    raise ApiError(422, f"{name}={value!r} is not a boolean; use true or false")


def _mode(value) -> str:
    if value not in reading.MODES:
        raise ApiError(422, f"mode={value!r} is unknown; use one of {', '.join(reading.MODES)}")
    return value


def _check_count(count: int, service: Service) -> None:
    if count > service.settings.max_batch:
        raise ApiError(413, f"{count} images in one request, more than the limit of {service.settings.max_batch}; "
                            "split the request (or raise DIGITS_MAX_BATCH)")


async def _pictures(service: Service, uploads: list[tuple[bytes, str]], mode: str, include_input: bool,
                    request: Request | None = None) -> list[dict]:
    """Read each picture on the image pool with the one reading path, bounded by pixels (service.read_all)."""
    pixels = sum(inputs.picture_pixels(data) for data, _ in uploads)
    if pixels > service.settings.max_request_pixels:
        raise ApiError(413, f"the pictures hold {pixels:,} pixels, more than the limit of "
                            f"{service.settings.max_request_pixels:,} per request; send fewer or smaller pictures "
                            "(or raise DIGITS_MAX_REQUEST_PIXELS)")
    threshold = service.settings.uncertain_below
    jobs = [(data, name, mode, service.predictor, threshold, service.reject_below) for data, name in uploads]
    try:
        found = await service.read_all(inputs.read_picture, jobs, pixels,
                                       gone=request.is_disconnected if request is not None else None)
    except ValueError as error:  # images.ImageError and friends: one line naming the file and the fix
        raise ApiError(422, str(error).splitlines()[0]) from None
    results = []
    for item, (_, name) in zip(found, uploads):
        if service.metrics is not None:
            for digit in item.digits:
                service.metrics.observe_label(digit.label)
        results.append({**item.to_dict(include_input), "filename": name})
    return results


def _pixel_batch(pixels, max_batch: int):
    with inputs.answered_as(422):
        array = inputs.uint8_image(pixels)
        if array is None:
            array = inputs.as_array(pixels, "pixels", max_batch)
        return inputs.to_batch(array, "pixels", max_batch)


async def _pixels(service: Service, batch, include_input: bool) -> list[dict]:
    probabilities, scores = await predict(service, batch)  # counted per model call by the batcher's metrics hook
    found = reading.from_pixels(probabilities, batch, service.class_names, service.settings.uncertain_below,
                                service.reject_below, scores)
    return [item.to_dict(include_input) for item in found]


def _json_request(body: bytes, service: Service, mode: str, include_input: bool):
    """A JSON body -> (mode, include_input, pixels as the model's batch or None, uploads or None), or an ApiError:
    CPU work only (parse, check, convert, decode base64), on a worker thread for a large body (`_from_json`)."""
    payload = parse_json(body,
                         "the request body is empty; send JSON with 'pixels' (28x28 numbers) or 'image' "
                         "(base64 of an image file)", "the body is not valid JSON ({error}); send a JSON object",
                         service.settings.max_batch)
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
        return mode, include_input, _pixel_batch(pixels, service.settings.max_batch), None
    texts = image if isinstance(image, list) else [image]
    if not texts:
        raise ApiError(422, "'image' is an empty list; send at least one base64 image")
    _check_count(len(texts), service)
    uploads = [(inputs.decode_base64(text, position if isinstance(image, list) else -1),
                f"image[{position}]" if isinstance(image, list) else "image") for position, text in enumerate(texts)]
    return mode, include_input, None, uploads


async def _from_json(request: Request, service: Service, mode: str, include_input: bool):
    body = await request.body()
    mode, include_input, batch, uploads = await off_loop(len(body) > LARGE_BODY_BYTES, _json_request, body, service,
                                                         mode, include_input)
    if batch is not None:
        return await _pixels(service, batch, include_input)
    return await _pictures(service, uploads, mode, include_input, request)


def _multipart_complete(body: bytes, content_type: str) -> bool:
    """Does `body` hold its closing delimiter ("--BOUNDARY--")? The multipart parser takes a body cut off
    mid-part for a form without that part (a 422 "no files" for a client's truncated upload)."""
    from python_multipart.multipart import parse_options_header

    boundary = parse_options_header(content_type)[1].get(b"boundary")
    return not boundary or b"--" + boundary + b"--" in body  # no boundary at all: request.form() names that


async def _from_form(request: Request, service: Service, mode: str, include_input: bool):
    settings = service.settings
    if not _multipart_complete(await request.body(), request.headers.get("content-type", "")):  # form() reuses it
        raise ApiError(400, "the multipart body is truncated or malformed (no closing boundary line); send the whole "
                            "multipart/form-data body")
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
    return await _pictures(service, uploads, mode, include_input, request)


PREDICT_OPENAPI = {
    "parameters": [
        {"name": "mode", "in": "query", "required": False,
         "schema": {"type": "string", "enum": list(reading.MODES), "default": DEFAULT_MODE},
         "description": "pictures: one digit, a whole number (digits read left to right), or auto (a number "
                        "when several digits are found)"},
        {"name": "include_input", "in": "query", "required": False, "schema": {"type": "boolean", "default": False},
         "description": "also return the 28x28 the model saw (0..255, ink bright)"}],
    "requestBody": {"required": True, "content": {
        "application/json": {"schema": schemas.inline_schema(schemas.PredictRequest)},
        "multipart/form-data": {"schema": {"type": "object", "properties": {
            "files": {"type": "array", "items": {"type": "string", "format": "binary"}}}}},
        "image/png": {"schema": {"type": "string", "format": "binary"}},
        "image/jpeg": {"schema": {"type": "string", "format": "binary"}}}},
}


@router.post("/predict", name="predict", response_model=schemas.PredictResponse, openapi_extra=PREDICT_OPENAPI,
             summary="Read digits: image files, base64 images or 28x28 pixels",
             responses={status: {"model": schemas.ErrorDetail} for status in (400, 408, 413, 415, 422, 503, 504)})
async def predict_route(request: Request):
    service = service_of(request)
    mode, include_input = DEFAULT_MODE, False
    if request.scope["query_string"]:  # parsing an empty query string still costs microseconds
        query = request.query_params
        mode = _mode(query.get("mode", DEFAULT_MODE))
        include_input = _flag(query.get("include_input", "false"), "include_input")
    media = media_type(request)
    try:
        if is_json(media):
            results = await _from_json(request, service, mode, include_input)
        elif media == "multipart/form-data":
            results = await _from_form(request, service, mode, include_input)
        elif media.startswith("image/") or media == "application/octet-stream":
            body = await request.body()
            if not body:
                raise ApiError(400, "the request body is empty; send the image file's bytes")
            results = await _pictures(service, [(body, "upload")], mode, include_input, request)
        else:
            raise ApiError(415, f"Content-Type {media or '(none)'!r} is not supported; send application/json, "
                                "multipart/form-data (image files) or an image/* body")
    except Busy as error:
        raise ApiError(503, f"{error}", {"Retry-After": "5"}) from None
    except ClientGone:  # nobody to answer; /metrics counts it as 499 (nginx's "client closed request")
        return Response(status_code=499)
    except (asyncio.TimeoutError, TimeoutError):
        raise ApiError(504, f"prediction took longer than {service.settings.timeout_seconds:g} s; retry, send "
                            "fewer images, or raise DIGITS_TIMEOUT_SECONDS") from None
    return await json_answer({"model": service.name, "version": service.version, "predictions": results}, len(results))
