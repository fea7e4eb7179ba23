"""The TensorFlow Serving REST API: model status, metadata (the signature) and :predict.

`POST /v1/models/{name}[/versions/1]:predict` takes the row format (`instances`: a list of
28x28 images, or of `{"images": 28x28}`) and answers `{"predictions": [[p0..p9], ...]}`, or
the columnar format (`inputs`: [N, 28, 28], or `{"images": ...}`) and answers
`{"outputs": [[...], ...]}`, as TF Serving does for a single-output signature. Pixels follow
the one convention of inputs.py. Errors are TF Serving's `{"error": "..."}`.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from .. import inputs, schemas
from ..deps import LARGE_BODY_BYTES, ApiError, LeanRoute, json_answer, off_loop, parse_json, require_media, served_model
from ..deps import predict as predict_batch
from ..service import Service

TAGS = ["TensorFlow Serving REST API"]
router = APIRouter(prefix="/v1/models", tags=TAGS)
inference = APIRouter(prefix="/v1/models", tags=TAGS, route_class=LeanRoute)  # the hot route: see deps.LeanRoute
INPUT, OUTPUT, SIGNATURE = "images", "probabilities", "serving_default"
ERRORS = {status: {"model": schemas.ProtocolError} for status in (400, 404, 408, 413, 415, 503, 504)}


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


# :predict is on its own router, included first: FastAPI tries routes in order (and "/{name}" would also
# match "cnn:predict").
@inference.post("/{name}:predict", name="predict", summary="Predict (row or columnar format)",
                response_model=schemas.TFPredictResponse, responses=ERRORS, openapi_extra=PREDICT_OPENAPI)
@inference.post("/{name}/versions/{version}:predict", name="predict_version", summary="Predict (one version)",
                response_model=schemas.TFPredictResponse, responses=ERRORS, openapi_extra=PREDICT_OPENAPI)
async def predict(request: Request, name: str, version: str | None = None) -> Response:
    return await _predict(request, served_model(request, name, version, "tfserving"))


@router.get("/{name}", name="status", summary="Model status", responses=ERRORS)
@router.get("/{name}/versions/{version}", name="status_version", summary="Model status (one version)",
            responses=ERRORS)
async def status(request: Request, name: str, version: str | None = None):
    return _status(served_model(request, name, version, "tfserving"))


@router.get("/{name}/metadata", name="metadata", summary="Model metadata: the serving signature", responses=ERRORS)
@router.get("/{name}/versions/{version}/metadata", name="metadata_version", summary="Model metadata (one version)",
            responses=ERRORS)
async def metadata(request: Request, name: str, version: str | None = None):
    return _metadata(served_model(request, name, version, "tfserving"))


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
    return inputs.to_batch(inputs.as_array(value, what, max_batch), what, max_batch, single_ok=False), rows


def _decode(body: bytes, max_batch: int):
    """A :predict body -> (images, row format?), or an ApiError: on a worker thread for a large body."""
    payload = parse_json(body, "the request body is empty; send JSON with 'instances' or 'inputs'",
                         "JSON Parse error: {error}", max_batch)
    with inputs.answered_as(400):
        return _images(payload, max_batch)


async def _predict(request: Request, service: Service) -> Response:
    require_media(request, {"", "application/json"}, "application/json")
    body = await request.body()
    images, rows = await off_loop(len(body) > LARGE_BODY_BYTES, _decode, body, service.settings.max_batch)
    probabilities, _ = await predict_batch(service, images)
    return await json_answer({"predictions" if rows else "outputs": probabilities}, len(probabilities))


@router.post("/{target}", responses=ERRORS, include_in_schema=False)
async def other_verbs(request: Request, target: str):
    name, _, verb = target.rpartition(":")
    served_model(request, name or target, protocol="tfserving")
    raise ApiError(400, f"':{verb}' is not served; this model supports ':predict' only" if verb else
                        "POST to /v1/models/{name}:predict")
