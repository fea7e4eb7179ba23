"""Health, model info and Prometheus metrics: GET /health/live, /health/ready, /info, /metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from .. import schemas
from ..deps import service_of

router = APIRouter(tags=["health"])


@router.get("/health/live", response_model=schemas.Health, summary="Liveness: the process answers")
async def live(request: Request):
    service = getattr(request.app.state, "service", None)
    return {"status": "ok" if service is not None and service.ready else "loading"}


@router.get("/health/ready", response_model=schemas.Health, summary="Readiness: 200 once the model is warmed",
            responses={503: {"model": schemas.ErrorDetail}})
async def ready(request: Request):
    service_of(request)
    return {"status": "ok"}


@router.get("/info", response_model=schemas.ModelInfo, summary="The served model and the service's limits",
            responses={503: {"model": schemas.ErrorDetail}})
async def info(request: Request):
    service = service_of(request)
    metrics = service.predictor.info.metrics
    accuracy = metrics.get("test_accuracy")
    return {"name": service.name, "version": service.version, "backend": service.predictor.backend,
            "class_names": service.class_names, "source": service.predictor.info.run_dir.name,
            "test_accuracy": float(accuracy) if isinstance(accuracy, (int, float)) else None,
            "uncertain_below": service.settings.uncertain_below, "max_batch": service.settings.max_batch,
            "max_body_bytes": service.settings.max_body_bytes}


@router.get("/metrics", summary="Prometheus metrics", response_class=Response,
            responses={200: {"content": {"text/plain": {}}}})
async def metrics(request: Request):
    body, content_type = request.app.state.metrics.render()
    return Response(body, media_type=content_type)
