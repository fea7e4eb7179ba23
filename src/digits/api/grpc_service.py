"""The Open Inference Protocol over gRPC (`inference.GRPCInferenceService`), beside HTTP in one process.

`digits serve --grpc-port 8001` (Triton's gRPC port; off by default) starts a `grpc.aio` server on
uvicorn's event loop once the model is warm (app.py's lifespan) and stops it on shutdown. It uses the
HTTP app's own `Service`: the same model, batcher, limits (max_batch, max_body_bytes, timeout),
not-a-digit threshold, class names, model name and version, and the same tensor checks as the HTTP
/v2 routes (routes/v2.py: `check_tensor`, `tensor_values`, `to_batch`, `check_output`, `check_outputs`
(each output named once), `classification`). RPCs: ServerLive, ServerReady, ModelReady (false for a model not served),
ServerMetadata, ModelMetadata and ModelInfer. ModelInfer takes one input, `images`, FP32, FP64, FP16
or UINT8, [N, 28, 28] or [N, 28, 28, 1], as `raw_input_contents` (little-endian bytes: what
tritonclient.grpc sends) or as typed `contents` (fp32_contents, fp64_contents, uint_contents; FP16
only raw), and answers `probabilities`, FP32 [N, classes], in `raw_output_contents`; an output
requested with the int64 parameter `classification: k` answers Triton's BYTES "probability:index:label"
entries instead (a not-a-digit row first says "probability:-1:not_a_digit", as over HTTP).

Errors are gRPC status codes with a one-line message, never a crash: a malformed request
INVALID_ARGUMENT, an unknown model or version NOT_FOUND, more than max_batch images (or a message over
max_body_bytes, refused by grpc itself) RESOURCE_EXHAUSTED, a prediction over the timeout
DEADLINE_EXCEEDED, a server that is stopping UNAVAILABLE (while the model loads the port is not open
yet, which clients also see as UNAVAILABLE); anything unexpected is logged and INTERNAL. Calls are
counted in /metrics (digits_grpc_requests by method and code). Several uvicorn workers each bind the
port with SO_REUSEPORT (the kernel spreads connections over them); with one worker SO_REUSEPORT is off,
so a port already taken fails at start instead of being shared. The stubs are generated and shipped
(protos/__init__.py says how to regenerate them).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import time

import grpc
import numpy as np

from .. import __version__
from . import inputs
from .deps import ApiError, check_model, predict
from .protos import open_inference_grpc_pb2 as pb2
from .protos import open_inference_grpc_pb2_grpc as pb2_grpc
from .routes import v2
from .service import Service
from .settings import Settings

log = logging.getLogger("digits.api")
Code = grpc.StatusCode
STATUS = {400: Code.INVALID_ARGUMENT, 404: Code.NOT_FOUND, 408: Code.DEADLINE_EXCEEDED, 413: Code.RESOURCE_EXHAUSTED,
          415: Code.INVALID_ARGUMENT, 503: Code.UNAVAILABLE, 504: Code.DEADLINE_EXCEEDED}  # our HTTP status -> gRPC
CONTENTS = {"FP32": ("fp32_contents", np.float32), "FP64": ("fp64_contents", np.float64),
            "UINT8": ("uint_contents", np.int64)}  # datatype -> typed contents field (int64: 300 stays 300, refused)
EXTENSIONS = ["classification"]
GRACE_SECONDS = 5.0  # calls in flight get this long to finish at shutdown


def _rpc(handler):
    """Run one RPC: ApiErrors become their gRPC code, anything unexpected INTERNAL (logged); count it."""

    @functools.wraps(handler)
    async def call(self, request, context):
        started, code, message = time.perf_counter(), Code.OK, ""
        try:
            return await handler(self, request, context)
        except asyncio.CancelledError:  # the client went away or its deadline passed
            code = Code.CANCELLED
            raise
        except ApiError as error:
            code, message = STATUS.get(error.status, Code.INTERNAL), error.message
        except Exception:  # noqa: BLE001  (a bug: logged, and the server keeps serving)
            log.exception("unexpected error in gRPC %s", handler.__name__)
            code, message = Code.INTERNAL, "internal server error; see the server log"
        finally:
            if self.metrics is not None:
                self.metrics.observe_grpc(handler.__name__, code.name, time.perf_counter() - started)
        await context.abort(code, message)

    return call


class Servicer(pb2_grpc.GRPCInferenceServiceServicer):
    """`inference.GRPCInferenceService` over one loaded Service."""

    def __init__(self, service: Service, metrics=None):
        self.service, self.metrics = service, metrics

    def _served(self, name: str, version: str) -> Service:
        if not self.service.ready:
            raise ApiError(503, "the server is stopping; retry in a few seconds")
        return check_model(self.service, name, version or None, "grpc")

    @_rpc
    async def ServerLive(self, request, context):
        return pb2.ServerLiveResponse(live=True)

    @_rpc
    async def ServerReady(self, request, context):
        return pb2.ServerReadyResponse(ready=self.service.ready)

    @_rpc
    async def ModelReady(self, request, context):
        service = self.service
        return pb2.ModelReadyResponse(ready=service.ready and request.name == service.name
                                      and request.version in ("", service.version))

    @_rpc
    async def ServerMetadata(self, request, context):
        return pb2.ServerMetadataResponse(name="digits", version=__version__, extensions=EXTENSIONS)

    @_rpc
    async def ModelMetadata(self, request, context):
        metadata = v2.model_metadata(self._served(request.name, request.version))
        tensor = pb2.ModelMetadataResponse.TensorMetadata
        return pb2.ModelMetadataResponse(
            name=metadata["name"], versions=metadata["versions"], platform=metadata["platform"],
            inputs=[tensor(**described) for described in metadata["inputs"]],
            outputs=[tensor(**described) for described in metadata["outputs"]])

    @_rpc
    async def ModelInfer(self, request, context):
        service = self._served(request.model_name, request.model_version)
        with inputs.answered_as(400):  # too many images 413 -> RESOURCE_EXHAUSTED, the rest INVALID_ARGUMENT
            images = _input_tensor(request, service.settings.max_batch)
            outputs = [v2.check_output(output.name, _parameter(output.parameters, "classification", 0))
                       for output in request.outputs] or [0]
            v2.check_outputs([output.name for output in request.outputs])  # a repeat would repeat the answer
        probabilities, scores = await predict(service, images, "inference")
        response = pb2.ModelInferResponse(model_name=service.name, model_version=service.version, id=request.id)
        for classes in outputs:
            if classes:
                values = v2.classification(probabilities, classes, service.class_names, service.reject_below, scores)
                response.outputs.add(name=v2.OUTPUT, datatype="BYTES",
                                     shape=[len(probabilities), min(classes, probabilities.shape[1])])
                response.raw_output_contents.append(v2.bytes_tensor(values))
            else:
                response.outputs.add(name=v2.OUTPUT, datatype="FP32", shape=list(probabilities.shape))
                response.raw_output_contents.append(probabilities.astype("<f4").tobytes())
        return response


def _parameter(parameters, key: str, default):
    """An InferParameter's value (bool, int, str or float, whichever it holds), or `default` if absent."""
    if key not in parameters:
        return default
    kind = parameters[key].WhichOneof("parameter_choice")
    return default if kind is None else getattr(parameters[key], kind)


def _input_tensor(request, max_batch: int) -> np.ndarray:
    """The request's one input as the model's (N, 28, 28) float32 0..1; ValueError naming what is wrong."""
    if len(request.inputs) != 1:
        raise ValueError(f"'inputs' holds {len(request.inputs)} tensors; send exactly one, '{v2.INPUT}'")
    tensor = request.inputs[0]
    shape = list(tensor.shape)
    dtype = v2.check_tensor(tensor.name, tensor.datatype, shape, max_batch)
    if request.raw_input_contents:
        if len(request.raw_input_contents) != 1:
            raise ValueError(f"raw_input_contents holds {len(request.raw_input_contents)} tensors; send one, "
                             f"for the one input '{v2.INPUT}'")
        if tensor.HasField("contents"):
            raise ValueError(f"input '{v2.INPUT}' has both raw_input_contents and contents; send one of them")
        raw, needed = request.raw_input_contents[0], math.prod(shape) * dtype.itemsize
        if len(raw) != needed:
            raise ValueError(f"raw_input_contents[0] holds {len(raw)} bytes but shape {shape} of {tensor.datatype} "
                             f"needs {needed}")
        return v2.to_batch(np.frombuffer(raw, dtype).reshape(shape), max_batch)
    if tensor.datatype not in CONTENTS:
        raise ValueError(f"{tensor.datatype} tensors go in raw_input_contents (the protocol has no typed contents "
                         "field for them)")
    field, numbers = CONTENTS[tensor.datatype]
    values = np.array(getattr(tensor.contents, field), dtype=numbers)
    return v2.to_batch(v2.tensor_values(values, tensor.datatype, shape, f"input '{v2.INPUT}' {field}"), max_batch)


def address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def start(service: Service, settings: Settings, metrics=None) -> grpc.aio.Server:
    """A started gRPC server for `service` on settings.host:settings.grpc_port (on the running event loop);
    OSError if the port cannot be bound."""
    server = grpc.aio.server(options=[
        ("grpc.max_receive_message_length", settings.max_body_bytes),  # larger: RESOURCE_EXHAUSTED
        ("grpc.max_send_message_length", settings.max_body_bytes),
        ("grpc.so_reuseport", 1 if settings.workers > 1 else 0),  # workers share the port; one worker owns it
    ])
    pb2_grpc.add_GRPCInferenceServiceServicer_to_server(Servicer(service, metrics), server)
    where = address(settings.host, settings.grpc_port)
    try:
        server.add_insecure_port(where)
    except RuntimeError:
        raise OSError(f"cannot serve gRPC on {where}: the port is taken or the address is not this machine's; "
                      "choose another --grpc-port (DIGITS_GRPC_PORT)") from None
    await server.start()
    return server


async def stop(server: grpc.aio.Server) -> None:
    """Stop taking calls; those in flight get GRACE_SECONDS to finish."""
    await server.stop(GRACE_SECONDS)
