"""What every route shares: the served model's lookup, content types, JSON bodies, and errors.

    service_of(request)              the Service, or 503 while the model loads
    served_model(request, name, ...) the Service if `name` (and version) is the served model, else the
                                     protocol's own 404 (Open Inference Protocol or TF Serving wording);
                                     check_model(service, name, ...) the same check for gRPC (grpc_service.py)
    media_type / require_media       the request's content type, and 415 for one a route does not take
    parse_json(body, ..., max_batch) an orjson parse with one 400 for empty or malformed bodies, and a 413,
                                     before parsing, for a body with more values than a batch can hold
    off_loop(large, function, ...)   parsing and checking a large body (LARGE_BODY_BYTES), or serialising a
                                     large answer (LARGE_ANSWER_ROWS), on a worker thread, LARGE_AT_ONCE at
                                     a time: the event loop keeps serving other clients meanwhile
    predict(service, images)         the batched model call, 504 after the request timeout
    ApiError, install_errors(app)    the error-to-status mapping: `{"error": ...}` under /v1 and /v2 (as
                                     TF Serving and the Open Inference Protocol answer), FastAPI's
                                     `{"detail": ...}` elsewhere; a client that hangs up before its body
                                     is sent is one log line and a 499 in /metrics (nginx's "client
                                     closed request"); anything unexpected is logged and a 500 that
                                     leaks no internals
    LeanRoute                        the route class of the hot inference endpoints (below)

Handlers raise `ApiError(status, message)`; a message names the problem and the fix in one line.
`LeanRoute` calls its endpoint as `endpoint(request, **path_params)` and the endpoint returns
a `Response` itself, so FastAPI's per-request dependency solving and response-model validation
are skipped: on a 28x28 prediction that machinery cost about 25 us of the roughly 100 us a
request takes (measured in-process). The OpenAPI document still comes from the signature,
`openapi_extra` and `response_model`.
"""

from __future__ import annotations

import asyncio
import logging
import weakref

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

log = logging.getLogger("digits.api")
CLIENT_CLOSED = 499  # the status counted in /metrics for a request whose client hung up (never sent)
LARGE_BODY_BYTES = 256 * 1024  # larger bodies are parsed and checked on a worker thread (6 x 16 MB parsed on the
                               # loop delayed every other client by half a second; a thread hop costs ~50 us)
LARGE_ANSWER_ROWS = 64  # answers for more images than this are serialised on a worker thread
VALUES_PER_IMAGE = 28 * 28  # numbers in one image; a JSON body may hold max_batch times this, plus FEW_VALUES
FEW_VALUES = 4096  # room for the request's other fields (V2 parameters and outputs, base64 strings, ...)
LARGE_AT_ONCE = 1  # such jobs at once per worker process; the rest wait their turn: parsing holds the GIL (more
                   # threads add no speed) and a 16 MB JSON body takes ~15x its size while parsed (memory)
_large_slots: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # event loop -> its semaphore


class ApiError(Exception):
    def __init__(self, status: int, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers


def uses_error_key(path: str) -> bool:
    """TF Serving (/v1/...) and the Open Inference Protocol (/v2...) answer errors as {"error": ...}."""
    return path.startswith("/v1/") or path == "/v2" or path.startswith("/v2/")


def error_body(path: str, message) -> bytes:
    if uses_error_key(path):
        return orjson.dumps({"error": message if isinstance(message, str) else orjson.dumps(message).decode()})
    return orjson.dumps({"detail": message})


def error_response(path: str, status: int, message, headers: dict | None = None) -> Response:
    return Response(error_body(path, message), status, headers=headers, media_type="application/json")


def install_errors(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, error: ApiError):
        return error_response(request.url.path, error.status, error.message, error.headers)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException):
        return error_response(request.url.path, error.status_code, error.detail, getattr(error, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, error: RequestValidationError):
        problems = [f"{'.'.join(str(part) for part in problem['loc'])}: {problem['msg']}" for problem in error.errors()]
        if uses_error_key(request.url.path):
            return error_response(request.url.path, 400, "; ".join(problems))
        return error_response(request.url.path, 422, [{"loc": problem["loc"], "msg": problem["msg"],
                                                       "type": problem["type"]} for problem in error.errors()])

    @app.exception_handler(ClientDisconnect)
    async def client_disconnected(request: Request, error: ClientDisconnect):
        # the client's doing, not a bug: one line, no traceback; the answer goes nowhere but /metrics counts it
        log.warning("%s %s: the client disconnected before sending the whole request body (counted as %d)",
                    request.method, request.url.path, CLIENT_CLOSED)
        return Response(status_code=CLIENT_CLOSED)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception):
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return error_response(request.url.path, 500, "internal server error; see the server log")


def service_of(request: Request):
    """The loaded Service; 503 with Retry-After while the model is loading."""
    service = getattr(request.app.state, "service", None)
    if service is None or not service.ready:
        raise ApiError(503, "the model is still loading; retry in a few seconds (poll /health/ready)",
                       {"Retry-After": "2"})
    return service


NOT_FOUND = {  # protocol -> (unknown model, unknown version) messages, in that protocol's own words
    "v2": (lambda name, version, served: f"unknown model '{name}'; this server serves '{served.name}' "
                                         f"(GET /v2/models/{served.name})",
           lambda name, version, served: f"unknown version '{version}' of model '{name}'; the served version is "
                                         f"'{served.version}'"),
    "tfserving": (lambda name, version, served: f"Servable not found for request: Latest({name}); this server "
                                                f"serves '{served.name}'",
                  lambda name, version, served: f"Servable not found for request: Specific({name}, {version}); the "
                                                f"served version is {served.version}"),
    "grpc": (lambda name, version, served: f"unknown model '{name}'; this server serves '{served.name}'",
             lambda name, version, served: f"unknown version '{version}' of model '{name}'; the served version is "
                                           f"'{served.version}'"),
}


def served_model(request: Request, name: str, version: str | None = None, protocol: str = "v2"):
    """The Service when `name` (and `version`, if given) is what this server serves; else a 404."""
    return check_model(service_of(request), name, version, protocol)


def check_model(service, name: str, version: str | None = None, protocol: str = "v2"):
    """`service` when `name` (and `version`, if given) is its model; else a 404 in `protocol`'s words."""
    unknown_model, unknown_version = NOT_FOUND[protocol]
    if name != service.name:
        raise ApiError(404, unknown_model(name, version, service))
    if version not in (None, "", service.version):
        raise ApiError(404, unknown_version(name, version, service))
    return service


def media_type(request: Request) -> str:
    """The request's Content-Type without parameters, lower case ('' when absent)."""
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def is_json(media: str) -> bool:
    return media == "application/json" or media.endswith("+json")


def require_media(request: Request, allowed: set[str], hint: str) -> str:
    """415 unless the content type is one of `allowed` (any `+json` type counts as JSON when JSON is allowed)."""
    media = media_type(request)
    if media not in allowed and not ("application/json" in allowed and is_json(media)):
        raise ApiError(415, f"Content-Type '{media}' is not supported; send {hint}")
    return media


async def predict(service, images, what: str = "prediction"):
    """`service.predict(images)` through the batcher; 504 when it takes longer than the request timeout."""
    try:
        return await service.predict(images)
    except (asyncio.TimeoutError, TimeoutError):
        raise ApiError(504, f"{what} took longer than {service.settings.timeout_seconds:g} s; retry or send "
                            "fewer images") from None


def parse_json(body: bytes, empty: str, invalid: str, max_batch: int):
    """`body` parsed by orjson; 400 with `empty` for no body, `invalid` (with an {error} slot) for bad JSON.

    A body holding more values than `max_batch` images of raw pixels need gets 413 before it is parsed: a
    parse is one call that holds the GIL throughout (8 million numbers in 16 MB took 0.2 s, and every
    other client of the worker waited), while counting its commas takes ~4 ms. Each value but the last of
    a list or an object is followed by a comma, so commas bound the values (strings count too: a base64
    image has none, a data URL one)."""
    if not body:
        raise ApiError(400, empty)
    limit = max_batch * VALUES_PER_IMAGE + FEW_VALUES
    if body.count(b",") > limit:
        raise ApiError(413, f"the JSON body holds more than {limit:,} values, more than a batch of {max_batch} "
                            "images needs; split the batch, send pictures as files or binary tensors, or raise "
                            "DIGITS_MAX_BATCH")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise ApiError(400, invalid.format(error=error)) from None


async def off_loop(large: bool, function, *args):
    """`function(*args)`: on a worker thread when `large` (a big body to parse and check, a big answer to
    serialise: CPU work that would stall every other client on the event loop), at most LARGE_AT_ONCE at a
    time; inline otherwise."""
    if not large:
        return function(*args)
    loop = asyncio.get_running_loop()
    slots = _large_slots.get(loop)
    if slots is None:
        slots = _large_slots[loop] = asyncio.Semaphore(LARGE_AT_ONCE)
    async with slots:
        return await run_in_threadpool(function, *args)


def dump_json(value) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY)


async def json_answer(value, rows: int, headers: dict | None = None) -> Response:
    """`value` as a JSON response; serialised on a worker thread when it answers more than LARGE_ANSWER_ROWS
    images."""
    return Response(await off_loop(rows > LARGE_ANSWER_ROWS, dump_json, value), media_type="application/json",
                    headers=headers)


class LeanRoute(APIRoute):
    def get_route_handler(self):
        endpoint = self.endpoint

        async def handler(request):
            return await endpoint(request, **request.path_params)

        return handler
