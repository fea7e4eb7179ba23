"""`LeanRoute`: a FastAPI route for the hot inference endpoints, documented like any other; and
`model_routes`: a protocol's route for the served model plus its pinned-version twin.

The endpoint is called as `endpoint(request, **path_params)` and returns a `Response` itself,
so FastAPI's per-request dependency solving and response-model validation are skipped: on a
28x28 prediction that machinery cost about 25 us of the roughly 100 us a request takes
(measured in-process). The OpenAPI document still comes from the signature, `openapi_extra`
and `response_model`, as FastAPI's custom route classes allow (`route_class_override`).
"""

from __future__ import annotations

import inspect

from fastapi import APIRouter, Request
from fastapi.routing import APIRoute


class LeanRoute(APIRoute):
    def get_route_handler(self):
        endpoint = self.endpoint

        async def handler(request):
            return await endpoint(request, **request.path_params)

        return handler


def model_routes(router: APIRouter, method: str, path: str, model, answer, summary: str, *, name: str,
                 pinned_summary: str | None = None, lean: bool = False, **options) -> None:
    """`method path` (a path holding "{name}") and its twin pinned to one version ("{name}" becomes
    "{name}/versions/{version}"), as KServe V2 and TF Serving both define their model routes. Both
    answer with `answer(request, service)` (sync or async), `service` being `model(request, name[,
    version])`, the protocol's own lookup with its own 404s. `lean`: served by LeanRoute."""

    async def latest(request: Request, name: str):
        return await _answer(answer, request, model(request, name))

    async def pinned(request: Request, name: str, version: str):
        return await _answer(answer, request, model(request, name, version))

    twin = path.replace("{name}", "{name}/versions/{version}", 1)
    for route_path, endpoint, route_name, route_summary in (
            (path, latest, name, summary),
            (twin, pinned, f"{name}_version", pinned_summary or f"{summary} (one version)")):
        router.add_api_route(route_path, endpoint, methods=[method], name=route_name, summary=route_summary,
                             route_class_override=LeanRoute if lean else None, **options)


async def _answer(answer, request: Request, service):
    result = answer(request, service)
    return await result if inspect.isawaitable(result) else result
