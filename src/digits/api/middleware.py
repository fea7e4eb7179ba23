"""One pure-ASGI middleware for every request: body size limit (413), body read timeout (408),
and Prometheus timing by route template.

A declared `Content-Length` over the limit is refused before any body is read; a chunked
body is counted as it arrives. Pure ASGI (not `BaseHTTPMiddleware`) because it sits on the
hot path of every request.
"""

from __future__ import annotations

import asyncio
import time

from .errors import ApiError, error_body
from .metrics import Metrics


class BodyTooLarge(ApiError):
    def __init__(self, limit: int):
        super().__init__(413, f"request body is larger than the limit of {limit} bytes; send fewer or smaller "
                              "images, or raise DIGITS_MAX_BODY_BYTES")


class BodyTimeout(ApiError):
    def __init__(self, seconds: float):
        super().__init__(408, f"no request body data arrived for {seconds:g} s; send the whole body promptly")


def _route(scope) -> str:
    route = scope.get("route")
    return getattr(route, "path", None) or "unmatched"


async def _read_with_timeout(receive, seconds: float):
    try:
        if hasattr(asyncio, "timeout"):  # Python 3.11+: no extra task per read
            async with asyncio.timeout(seconds):
                return await receive()
        return await asyncio.wait_for(receive(), seconds)
    except asyncio.TimeoutError:
        raise BodyTimeout(seconds) from None


class Guard:
    def __init__(self, app, max_body_bytes: int, timeout_seconds: float, metrics: Metrics):
        self.app, self.limit, self.timeout, self.metrics = app, max_body_bytes, timeout_seconds, metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        status = [500]
        declared = None
        for name, value in scope["headers"]:
            if name == b"content-length":
                declared = value
                break
        try:
            if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
                await self._refuse(scope, send, BodyTooLarge(self.limit) if declared.isdigit() else
                                   ApiError(400, "Content-Length is not a number; send a valid header"))
                status[0] = 413 if declared.isdigit() else 400
                return
            received = [0, False]  # bytes so far, body complete

            async def guarded_receive():
                if received[1]:
                    return await receive()
                message = await _read_with_timeout(receive, self.timeout)
                if message["type"] == "http.request":
                    received[0] += len(message.get("body", b""))
                    if received[0] > self.limit:
                        raise BodyTooLarge(self.limit)
                    received[1] = not message.get("more_body", False)
                return message

            async def watched_send(message):
                if message["type"] == "http.response.start":
                    status[0] = message["status"]
                await send(message)

            await self.app(scope, guarded_receive, watched_send)
        finally:
            self.metrics.observe_request(scope["method"], _route(scope), status[0], time.perf_counter() - started)

    @staticmethod
    async def _refuse(scope, send, error: ApiError) -> None:
        body = error_body(scope["path"], error.message)
        await send({"type": "http.response.start", "status": error.status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})
