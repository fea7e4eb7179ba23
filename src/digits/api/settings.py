"""Service settings: typed defaults, read from `DIGITS_*` environment variables.

Every field can be set as `DIGITS_<FIELD>` (e.g. `DIGITS_PORT=9000`, `DIGITS_MAX_BATCH=64`);
`digits serve` flags override the environment and pass their values on to every worker
through the same variables. A bad value is a `ValueError` naming the variable and the fix.
"""

from __future__ import annotations

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DIGITS_", extra="ignore")

    run: str | None = None  # run directory or exported model file (None: the latest run under runs_dir)
    runs_dir: str | None = None  # where to look for the latest run (None: ./runs)
    model_name: str | None = None  # name in /v1 and /v2 URLs (None: the run config's model name, e.g. "cnn")
    backend: str | None = None  # keras, onnx or litert (None: the fastest installed, measured at load)
    host: str = "127.0.0.1"  # interface to listen on
    port: int = Field(8000, ge=0, le=65535)  # TCP port
    grpc_port: int | None = Field(None, ge=1, le=65535)  # gRPC Open Inference Protocol port (None: off; Triton: 8001)
    workers: int = Field(1, ge=1, le=64)  # uvicorn worker processes, each with its own copy of the model
    max_body_bytes: int = Field(16 * 2**20, ge=1024)  # larger request bodies get 413
    max_batch: int = Field(256, ge=1)  # most images in one request; more get 413
    uncertain_below: float = Field(0.5, ge=0.0, le=1.0)  # confidence below this marks an answer uncertain
    reject_below: float | None = Field(None, ge=0.0, le=1.0)  # not-a-digit threshold (None: the model's stored one)
    timeout_seconds: float = Field(30.0, gt=0)  # per body read (408) and per prediction (504)
    predict_threads: int = Field(1, ge=1, le=64)  # threads running model batches (requests are batched)
    model_threads: int = Field(1, ge=1, le=64)  # threads inside one model call (the other cores serve requests)
    image_threads: int = Field(2, ge=1, le=64)  # threads decoding and preparing uploaded images
    opentelemetry: bool = False  # FastAPI's OpenTelemetry hooks (spans, metrics) for a configured OTel SDK
    access_log: bool = False  # uvicorn's per-request log lines (Prometheus /metrics counts requests either way)
    log_level: str = "info"  # uvicorn log level


def load_settings(**overrides) -> Settings:
    """Settings from the environment with `overrides` (None values ignored) on top."""
    given = {key: value for key, value in overrides.items() if value is not None}
    try:
        return Settings(**given)
    except ValidationError as error:
        first = error.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else "?"
        source = "--" + field.replace("_", "-") if field in given else f"DIGITS_{field.upper()}"
        raise ValueError(f"{source}={first.get('input')!r} is invalid ({first['msg'].lower()}); "
                         f"fix or unset it") from None
