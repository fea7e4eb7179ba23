"""The TensorFlow Serving REST API: model status, metadata (the signature) and :predict.

`POST /v1/models/{name}[/versions/1]:predict` takes the row format (`instances`: a list of
28x28 images, or of `{"images": 28x28}`) and answers `{"predictions": [[p0..p9], ...]}`, or
the columnar format (`inputs`: [N, 28, 28], or `{"images": ...}`) and answers
`{"outputs": [[...], ...]}`, as TF Serving does for a single-output signature. Pixels follow
the one convention of tensors.py. Errors are TF Serving's `{"error": "..."}`.
"""

from __future__ import annotations

import asyncio

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from . import schemas, tensors
from .errors import ApiError
from .lean import model_routes
from .predict import service_of
from .service import Service

router = APIRouter(prefix="/v1/models", tags=["TensorFlow Serving REST API"])
INPUT, OUTPUT, SIGNATURE = "images", "probabilities", "serving_default"
ERRORS = {status: {"model": schemas.ProtocolError} for status in (400, 404, 408, 413, 415, 503, 504)}


def _model(request: Request, name: str, version: str | None = None) -> Service:
    service = service_of(request)
    if name != service.name:
        raise ApiError(404, f"Servable not found for request: Latest({name}); this server serves "
                            f"'{service.name}'")
    if version not in (None, service.version):
        raise ApiError(404, f"Servable not found for request: Specific({name}, {version}); the served "
                            f"version is {service.version}")
    return service


def _status(service: Service) -> dict:
    return {"model_version_status": [{"version": service.version, "state": "AVAILABLE",
                                      "status": {"error_code": "OK", "error_message": ""}}]}


def _tensor_info(name: str, sizes: list[int]) -> dict:
    return {"dtype": "DT_FLOAT", "name": f"serving_default_{name}:0",
            "tensor_shape": {"dim": [{"size": str(size), "name": ""} for size in sizes], "unknown_rank": False}}


def _metadata(service: Service) -> dict:
    signature = {"inputs": {INPUT: _tensor_info(INPUT, [-1, 28, 28])},
                 "outputs": {OUTPUT: _tensor_info(OUTPUT, [-1, service.predictor.num_classes])},
                 "method_name": "tensorflow/serving/predict"}
    return {"model_spec": {"name": service.name, "signature_name": "", "version": service.version},
            "metadata": {"signature_def": {"signature_def": {SIGNATURE: signature}}}}


PREDICT_OPENAPI = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": schemas.inline_schema(schemas.TFPredictRequest)}}}}


# :predict first: FastAPI tries routes in order (and "/{name}" would also match "cnn:predict").
model_routes(router, "POST", "/{name}:predict", _model, lambda request, service: _predict(request, service),
             "Predict (row or columnar format)", name="predict", pinned_summary="Predict (one version)", lean=True,
             response_model=schemas.TFPredictResponse, responses=ERRORS, openapi_extra=PREDICT_OPENAPI)
model_routes(router, "GET", "/{name}", _model, lambda request, service: _status(service), "Model status",
             name="status", responses=ERRORS)
model_routes(router, "GET", "/{name}/metadata", _model, lambda request, service: _metadata(service),
             "Model metadata: the serving signature", name="metadata", pinned_summary="Model metadata (one version)",
             responses=ERRORS)


def _images(payload, max_batch: int):
    """(images, row format?) from a :predict body."""
    if not isinstance(payload, dict):
        raise ValueError("the request must be a JSON object with 'instances' or 'inputs'")
    unknown = set(payload) - {"signature_name", "instances", "inputs"}
    if unknown:
        raise ValueError(f"unknown field(s) {', '.join(sorted(unknown))}; send 'instances' or 'inputs'")
    if payload.get("signature_name") not in (None, "", SIGNATURE):
        raise ValueError(f"serving signature name: '{payload['signature_name']}' not found in signature def; "
                         f"use '{SIGNATURE}'")
    if ("instances" in payload) == ("inputs" in payload):
        raise ValueError("send exactly one of 'instances' (row format) and 'inputs' (columnar format)")
    rows = "instances" in payload
    value = payload["instances"] if rows else payload["inputs"]
    if rows:
        if not isinstance(value, list) or not value:
            raise ValueError("'instances' must be a non-empty list of 28x28 images")
        if all(isinstance(item, dict) for item in value):
            if any(set(item) != {INPUT} for item in value):
                raise ValueError(f"each instance object must have exactly one key, '{INPUT}'")
            value = [item[INPUT] for item in value]
    elif isinstance(value, dict):
        if set(value) != {INPUT}:
            raise ValueError(f"'inputs' must name exactly one input, '{INPUT}'")
        value = value[INPUT]
    what = "'instances'" if rows else "'inputs'"
    return tensors.to_batch(tensors.as_array(value, what), what, max_batch, single_ok=False), rows


async def _predict(request: Request, service: Service) -> Response:
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media not in ("", "application/json") and not media.endswith("+json"):
        raise ApiError(415, f"Content-Type '{media}' is not supported; send application/json")
    body = await request.body()
    if not body:
        raise ApiError(400, "the request body is empty; send JSON with 'instances' or 'inputs'")
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise ApiError(400, f"JSON Parse error: {error}") from None
    try:
        images, rows = _images(payload, service.settings.max_batch)
    except tensors.BatchTooLarge as error:
        raise ApiError(413, str(error)) from None
    except ValueError as error:
        raise ApiError(400, str(error)) from None
    try:
        probabilities = await service.predict(images)
    except (asyncio.TimeoutError, TimeoutError):
        raise ApiError(504, f"prediction took longer than {service.settings.timeout_seconds:g} s") from None
    return Response(orjson.dumps({"predictions" if rows else "outputs": probabilities},
                                 option=orjson.OPT_SERIALIZE_NUMPY), media_type="application/json")


@router.post("/{target}", responses=ERRORS, include_in_schema=False)
async def other_verbs(request: Request, target: str):
    name, _, verb = target.rpartition(":")
    _model(request, name or target)
    raise ApiError(400, f"':{verb}' is not served; this model supports ':predict' only" if verb else
                        "POST to /v1/models/{name}:predict")
