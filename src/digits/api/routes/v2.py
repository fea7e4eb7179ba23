"""The Open Inference Protocol (KServe V2, as served by Triton and MLServer), JSON and binary.

Health (`/v2/health/live|ready`), server and model metadata, model readiness, Triton's model
config and repository index, and inference at `/v2/models/{name}[/versions/1]/infer`.
Inputs: one tensor `images`, FP32/FP64/FP16 (0..1, or 0..255 if any value is above 1) or
UINT8 (0..255), shape [N, 28, 28] or [N, 28, 28, 1], as JSON `data` or as Triton's binary
tensor data extension (a JSON header of `Inference-Header-Content-Length` bytes followed by
raw little-endian tensors, `parameters.binary_data_size` per input). Output: `probabilities`,
FP32 [N, classes], as JSON or binary (`binary_data_output`, or per output `binary_data`);
Triton's classification extension (`parameters.classification: k`) gives the top k as BYTES
"probability:index:label"; a picture that is not a digit (its digit score below the model's
not-a-digit threshold, `Predictor.predict_scores`) answers "probability:-1:not_a_digit" first. Probabilities are calibrated. Request bodies may be gzip or deflate encoded, as tritonclient
sends them. Each output is named at most once (a request that repeats one is refused: the answer
is bounded by max_batch x classes values, however the request is written); a large body is parsed and
a large answer serialised on a worker thread (deps.off_loop). Errors are `{"error": "..."}`.
`tritonclient.http` works with its defaults.
The same protocol over gRPC (grpc_service.py) shares the checks and answers defined here:
`check_tensor`, `tensor_values`, `to_batch`, `check_output`, `check_outputs`, `classification`, `bytes_tensor`.
"""

from __future__ import annotations

import math
import struct
import zlib

import numpy as np
import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from ... import __version__, calibration
from .. import inputs, schemas
from ..deps import (LARGE_ANSWER_ROWS, LARGE_BODY_BYTES, ApiError, LeanRoute, off_loop, parse_json, predict,
                    require_media, served_model, service_of)
from ..service import Service

TAGS = ["Open Inference Protocol (KServe V2)"]
router = APIRouter(prefix="/v2", tags=TAGS)
inference = APIRouter(prefix="/v2", tags=TAGS, route_class=LeanRoute)  # the hot route: see deps.LeanRoute
INPUT, OUTPUT = "images", "probabilities"
DTYPES = {"FP32": np.float32, "FP64": np.float64, "FP16": np.float16, "UINT8": np.uint8}
CONTENT_TYPES = {"", "application/json", "application/octet-stream"}
CONTENT_HINT = ("application/json (or Triton's binary extension as application/octet-stream with "
                "Inference-Header-Content-Length)")
ERRORS = {status: {"model": schemas.ProtocolError} for status in (400, 404, 408, 413, 415, 503, 504)}


INFER_OPENAPI = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": schemas.inline_schema(schemas.V2InferRequest)},
    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}}


@inference.post("/models/{name}/infer", name="infer", summary="Inference", response_model=schemas.V2InferResponse,
                responses=ERRORS, openapi_extra=INFER_OPENAPI)
@inference.post("/models/{name}/versions/{version}/infer", name="infer_version", summary="Inference (one version)",
                response_model=schemas.V2InferResponse, responses=ERRORS, openapi_extra=INFER_OPENAPI)
async def infer(request: Request, name: str, version: str | None = None) -> Response:
    return await _infer(request, served_model(request, name, version))


@router.get("/health/live", summary="Liveness", responses=ERRORS)
async def live():
    return Response(status_code=200)


@router.get("/health/ready", summary="Readiness: 200 once the model is loaded and warmed", responses=ERRORS)
async def ready(request: Request):
    service_of(request)
    return Response(status_code=200)


@router.get("", response_model=schemas.V2ServerMetadata, summary="Server metadata")
async def server_metadata():
    return {"name": "digits", "version": __version__,
            "extensions": ["binary_tensor_data", "classification", "model_configuration", "model_repository"]}


def model_metadata(service: Service) -> dict:
    return {"name": service.name, "versions": [service.version], "platform": f"digits_{service.predictor.backend}",
            "inputs": [{"name": INPUT, "datatype": "FP32", "shape": [-1, 28, 28]}],
            "outputs": [{"name": OUTPUT, "datatype": "FP32", "shape": [-1, service.predictor.num_classes]}]}


@router.get("/models/{name}", name="metadata", summary="Model metadata", response_model=schemas.V2ModelMetadata,
            responses=ERRORS)
@router.get("/models/{name}/versions/{version}", name="metadata_version", summary="Model metadata (one version)",
            response_model=schemas.V2ModelMetadata, responses=ERRORS)
async def metadata(request: Request, name: str, version: str | None = None):
    return model_metadata(served_model(request, name, version))


@router.get("/models/{name}/ready", name="model_ready", summary="Model readiness", responses=ERRORS)
@router.get("/models/{name}/versions/{version}/ready", name="model_ready_version",
            summary="Model readiness (one version)", responses=ERRORS)
async def model_ready(request: Request, name: str, version: str | None = None):
    served_model(request, name, version)
    return Response(status_code=200)


@router.get("/models/{name}/config", responses=ERRORS, summary="Model configuration (Triton extension)")
async def config(request: Request, name: str):
    service = served_model(request, name)
    return {"name": service.name, "platform": f"digits_{service.predictor.backend}",
            "max_batch_size": service.settings.max_batch,
            "input": [{"name": INPUT, "data_type": "TYPE_FP32", "dims": [28, 28]}],
            "output": [{"name": OUTPUT, "data_type": "TYPE_FP32", "dims": [service.predictor.num_classes],
                        "label_filename": ""}]}


@router.post("/repository/index", responses=ERRORS, summary="Model repository index (Triton extension)")
async def repository_index(request: Request):
    service = service_of(request)
    return [{"name": service.name, "version": service.version, "state": "READY"}]


def _decompress(body: bytes, encoding: str, limit: int) -> bytes:
    if encoding in ("", "identity"):
        return body
    if encoding not in ("gzip", "deflate"):
        raise ApiError(415, f"Content-Encoding '{encoding}' is not supported; send gzip, deflate or no encoding")
    inflater = zlib.decompressobj(wbits=31 if encoding == "gzip" else 15)
    try:
        data = inflater.decompress(body, limit + 1)  # never inflate more than the body limit (zip bombs)
    except zlib.error as error:
        raise ApiError(400, f"the {encoding} body is corrupt ({error}); compress it again") from None
    if len(data) > limit or inflater.unconsumed_tail:
        raise ApiError(413, f"the body inflates to more than {limit} bytes; send less data")
    return data


def _object(value, what: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"{what} must be an object, e.g. {{\"binary_data_output\": true}}")
    return value


def check_tensor(name, datatype, shape, max_batch: int | None = None) -> np.dtype:
    """The checks every input tensor passes, over HTTP (JSON or binary) and gRPC (grpc_service.py): its
    name, datatype and shape (at most `max_batch` images: checked before any data is converted); the
    datatype's little-endian numpy dtype."""
    if name != INPUT:
        raise ValueError(f"unknown input '{name}'; this model has one input, '{INPUT}'")
    if datatype not in DTYPES:
        raise ValueError(f"input datatype {datatype!r} is not supported; use {', '.join(DTYPES)}")
    if not isinstance(shape, list) or not all(isinstance(size, int) and not isinstance(size, bool) and size >= 0
                                              for size in shape):
        raise ValueError(f"input shape {shape!r} must be a list of non-negative integers, e.g. [1, 28, 28]")
    if len(shape) not in (3, 4):
        raise ValueError(f"input shape {shape} must be [N, 28, 28] or [N, 28, 28, 1]")
    if max_batch is not None and shape[0] > max_batch:
        raise inputs.BatchTooLarge(f"input '{INPUT}' holds {shape[0]:,} images, more than the limit of {max_batch}; "
                                   "split the batch (or raise DIGITS_MAX_BATCH)")
    return np.dtype(DTYPES[datatype]).newbyteorder("<")


def tensor_values(values, datatype: str, shape: list[int], what: str) -> np.ndarray:
    """An input tensor sent as numbers (JSON `data`, or gRPC's typed `contents`), checked against its
    datatype and shape: the right count, and whole numbers in 0..255 for UINT8."""
    count = math.prod(shape)
    if isinstance(values, list) and len(values) > count:  # before converting them all
        raise ValueError(f"{what} holds {len(values)} values but shape {shape} needs {count}")
    array = inputs.as_array(values, what)
    if array.size != count:
        raise ValueError(f"{what} holds {array.size} values but shape {shape} needs {count}")
    if array.dtype.kind == "f" and datatype == "UINT8":
        raise ValueError("UINT8 data holds fractional values; send integers 0..255 or use FP32")
    array = array.reshape(shape)
    if datatype == "UINT8":
        if array.size and (array.min() < 0 or array.max() > 255):
            raise ValueError("UINT8 data holds values outside 0..255")
        array = array.astype(np.uint8)
    return array


def to_batch(array: np.ndarray, max_batch: int) -> np.ndarray:
    """The checked tensor as the model's (N, 28, 28) float32 0..1; BatchTooLarge over `max_batch` images."""
    return inputs.to_batch(array, f"input '{INPUT}'", max_batch, single_ok=False)


def _input_tensor(header: dict, binary: bytes, max_batch: int) -> np.ndarray:
    declared = header.get("inputs")  # not `inputs`: that name is the module that checks the data
    if not isinstance(declared, list) or len(declared) != 1 or not isinstance(declared[0], dict):
        raise ValueError(f"'inputs' must be a list of exactly one tensor, '{INPUT}'")
    tensor = declared[0]
    datatype, shape = tensor.get("datatype"), tensor.get("shape")
    dtype = check_tensor(tensor.get("name"), datatype, shape, max_batch)
    count = math.prod(shape)
    parameters = _object(tensor.get("parameters"), "input 'parameters'")
    size = parameters.get("binary_data_size")
    if size is not None:
        if not isinstance(size, int) or isinstance(size, bool) or size != count * dtype.itemsize:
            raise ValueError(f"binary_data_size {size!r} does not match shape {shape} of {datatype} "
                             f"({count * dtype.itemsize} bytes)")
        if len(binary) != size:
            raise ValueError(f"the body holds {len(binary)} bytes of binary tensor data after the JSON header, "
                             f"but binary_data_size says {size}; check Inference-Header-Content-Length")
        array = np.frombuffer(binary, dtype=dtype).reshape(shape)
    else:
        if binary:
            raise ValueError("binary data follows the JSON header but no input declares binary_data_size")
        if "data" not in tensor:
            raise ValueError(f"input '{INPUT}' has neither 'data' nor parameters.binary_data_size")
        array = tensor_values(tensor["data"], datatype, shape, f"input '{INPUT}' data")
    return to_batch(array, max_batch)


def check_output(name, classification) -> int:
    """The checks every requested output passes (HTTP and gRPC): its name; the classification count (0: the
    probabilities themselves)."""
    if name != OUTPUT:
        raise ValueError(f"unknown output '{name}'; this model has one output, '{OUTPUT}'")
    if not isinstance(classification, int) or isinstance(classification, bool) or classification < 0:
        raise ValueError(f"classification must be a non-negative integer, got {classification!r}")
    return classification


def check_outputs(names: list) -> None:
    """Each requested output named once (HTTP and gRPC): every repeat would repeat the whole answer (100,000
    repeats of one 6.7 MB request made a 3 GB answer), so the answer stays within one tensor per output."""
    for name in set(names):
        if names.count(name) > 1:
            raise ValueError(f"output {name!r} is requested {names.count(name)} times; request each output once")


def _requested_outputs(header: dict) -> list[tuple[bool, int]]:
    """[(binary, classification count)] for the one output; the default follows binary_data_output."""
    parameters = _object(header.get("parameters"), "request 'parameters'")
    binary_default = parameters.get("binary_data_output", False)
    outputs = header.get("outputs")
    if outputs is None:
        return [(bool(binary_default), 0)]
    if not isinstance(outputs, list) or not all(isinstance(output, dict) for output in outputs):
        raise ValueError("'outputs' must be a list of {\"name\": ...} objects")
    for output in outputs:
        check_output(output.get("name"), 0)  # unknown names first: they say what this model has
    check_outputs([output.get("name") for output in outputs])
    requested = []
    for output in outputs:
        name = output.get("name")
        options = _object(output.get("parameters"), "output 'parameters'") if name == OUTPUT else {}
        classes = check_output(name, options.get("classification", 0))
        requested.append((bool(options.get("binary_data", binary_default)), classes))
    return requested


NOT_A_DIGIT = "not_a_digit"  # the label of a refused row's first classification entry


def classification(probabilities: np.ndarray, count: int, names: list[str], reject_below: float | None,
                   scores: np.ndarray) -> list[str]:
    """Triton's "probability:index:label" strings, top `count` per row; a row whose digit score (`scores`,
    Predictor.predict_scores) is below the not-a-digit threshold answers "probability:-1:not_a_digit" first (the
    top probability), then its top count-1."""
    count = min(count, probabilities.shape[1])
    order = np.argsort(-probabilities, axis=1)[:, :count]
    values = []
    for row in range(len(order)):
        entries = [f"{probabilities[row, index]:f}:{index}:{names[index]}" for index in order[row]]
        if calibration.refused(scores[row], reject_below):
            entries = [f"{probabilities[row, order[row, 0]]:f}:-1:{NOT_A_DIGIT}", *entries[:count - 1]]
        values += entries
    return values


def bytes_tensor(values: list[str]) -> bytes:
    """A BYTES tensor's raw form (Triton's binary data and gRPC raw contents): each value's 4-byte
    little-endian length, then its UTF-8 bytes."""
    return b"".join(struct.pack("<I", len(encoded)) + encoded for encoded in (value.encode() for value in values))


def _decode(body: bytes, encoding: str, header_length: str | None, settings) -> tuple[dict, np.ndarray, list]:
    """A request body -> (its JSON header, the model's (N, 28, 28) batch, the requested outputs), or an ApiError:
    CPU work only, on a worker thread for a large or compressed body (`_infer`)."""
    body = _decompress(body, encoding, settings.max_body_bytes)
    if header_length is not None:
        if not header_length.isdigit() or int(header_length) > len(body):
            raise ApiError(400, f"Inference-Header-Content-Length {header_length!r} is not a length within the "
                                f"{len(body)}-byte body")
        body, binary = body[:int(header_length)], body[int(header_length):]
    else:
        binary = b""
    header = parse_json(body, "the request body is empty; send a JSON inference request",
                        "the inference request is not valid JSON ({error})", settings.max_batch)
    if not isinstance(header, dict):
        raise ApiError(400, "the inference request must be a JSON object with 'inputs'")
    with inputs.answered_as(400):
        return header, _input_tensor(header, binary, settings.max_batch), _requested_outputs(header)


def _answer(service: Service, header: dict, outputs: list, probabilities: np.ndarray, scores: np.ndarray) -> Response:
    """The inference response: JSON, or JSON then raw tensors (Triton's binary extension)."""
    response = {"model_name": service.name, "model_version": service.version}
    if isinstance(header.get("id"), str):
        response["id"] = header["id"]
    described, chunks = [], []
    for binary_output, classes in outputs:
        if classes:
            values = classification(probabilities, classes, service.class_names, service.reject_below, scores)
            shape, datatype = [len(probabilities), min(classes, probabilities.shape[1])], "BYTES"
            raw = bytes_tensor(values) if binary_output else None
        else:
            values, shape, datatype = probabilities, list(probabilities.shape), "FP32"
            raw = probabilities.astype("<f4").tobytes() if binary_output else None
        output = {"name": OUTPUT, "datatype": datatype, "shape": shape}
        if raw is not None:
            output["parameters"] = {"binary_data_size": len(raw)}
            chunks.append(raw)
        else:
            output["data"] = values.ravel() if isinstance(values, np.ndarray) else values
        described.append(output)
    response["outputs"] = described
    json_part = orjson.dumps(response, option=orjson.OPT_SERIALIZE_NUMPY)
    if not chunks:
        return Response(json_part, media_type="application/json")
    return Response(json_part + b"".join(chunks), media_type="application/octet-stream",
                    headers={"Inference-Header-Content-Length": str(len(json_part))})


async def _infer(request: Request, service: Service) -> Response:
    require_media(request, CONTENT_TYPES, CONTENT_HINT)
    body = await request.body()
    encoding = request.headers.get("content-encoding", "").strip().lower()
    header, images, outputs = await off_loop(len(body) > LARGE_BODY_BYTES or encoding not in ("", "identity"),
                                             _decode, body, encoding,
                                             request.headers.get("inference-header-content-length"), service.settings)
    probabilities, scores = await predict(service, images, "inference")
    return await off_loop(len(probabilities) > LARGE_ANSWER_ROWS, _answer, service, header, outputs, probabilities,
                          scores)
