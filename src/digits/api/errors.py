"""Errors as each protocol expects them: `{"error": "..."}` under /v1 (TF Serving) and /v2 (Open
Inference Protocol), FastAPI's `{"detail": "..."}` everywhere else.

Handlers raise `ApiError(status, message)`; a message names the problem and the fix in one
line. Bad input is always a 4xx; anything unexpected is logged and answered with a 500 that
leaks no internals.
"""

from __future__ import annotations

import logging

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException

log = logging.getLogger("digits.api")


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


def install(app: FastAPI) -> None:
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

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception):
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return error_response(request.url.path, 500, "internal server error; see the server log")
