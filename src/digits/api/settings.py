"""Service settings: typed defaults, read from `DIGITS_*` environment variables.

Every field can be set as `DIGITS_<FIELD>` (e.g. `DIGITS_PORT=9000`, `DIGITS_MAX_BATCH=64`);
`digits serve` flags override the environment and pass their values on to every worker
through the same variables. A bad value is a `ValueError` naming the variable and the fix.
"""

from __future__ import annotations

from pydantic import Field, ValidationError, model_validator
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
    timeout_seconds: float = Field(30.0, gt=0)  # whole request after its header: body (408), answer (504)
    header_timeout_seconds: float = Field(10.0, gt=0)  # a complete request header within this of connecting
    max_connections: int = Field(1000, ge=1)  # open connections per worker (the oldest idle one makes room)
    shutdown_grace_seconds: float | None = Field(None, gt=0)  # SIGTERM: answer accepted requests within this
    max_request_pixels: int = Field(100_000_000, ge=1)  # decoded pixels of pictures in one request; more get 413
    max_pending_pixels: int = Field(400_000_000, ge=1)  # pixels of pictures being read at once; later ones queue
    predict_threads: int = Field(1, ge=1, le=64)  # threads running model batches (requests are batched)
    model_threads: int = Field(1, ge=1, le=64)  # threads inside one model call (the other cores serve requests)
    image_threads: int = Field(2, ge=1, le=64)  # threads decoding and preparing uploaded images
    opentelemetry: bool = False  # FastAPI's OpenTelemetry hooks (spans, metrics) for a configured OTel SDK
    access_log: bool = False  # uvicorn's per-request log lines (Prometheus /metrics counts requests either way)
    log_level: str = "info"  # uvicorn log level

    @model_validator(mode="after")
    def _grace_and_budgets(self):
        if self.shutdown_grace_seconds is None:  # default: the request timeout and 5 s to spare
            self.shutdown_grace_seconds = self.timeout_seconds + 5
        if self.shutdown_grace_seconds < self.timeout_seconds + 1:
            raise ValueError(f"shutdown_grace_seconds={self.shutdown_grace_seconds:g} is shorter than "
                             f"timeout_seconds + 1 s ({self.timeout_seconds + 1:g}): requests accepted before a "
                             "SIGTERM would be dropped; raise it or leave it unset")
        if self.max_request_pixels > self.max_pending_pixels:
            raise ValueError(f"max_request_pixels={self.max_request_pixels} is more than max_pending_pixels="
                             f"{self.max_pending_pixels}: such a request could never start; lower or raise one")
        return self


def load_settings(**overrides) -> Settings:
    """Settings from the environment with `overrides` (None values ignored) on top."""
    given = {key: value for key, value in overrides.items() if value is not None}
    try:
        return Settings(**given)
    except ValidationError as error:
        first = error.errors()[0]
        if not first["loc"]:  # a rule between two settings (_grace_and_budgets): "field=value is ...; fix"
            field, _, rest = first["msg"].removeprefix("Value error, ").partition("=")
            raise ValueError(f"{_source(field, given)}={rest}") from None
        field = str(first["loc"][0])
        raise ValueError(f"{_source(field, given)}={first.get('input')!r} is invalid ({first['msg'].lower()}); "
                         f"fix or unset it") from None


def _source(field: str, given: dict) -> str:
    """Where a setting came from, as the user wrote it: --flag-name or DIGITS_FIELD_NAME."""
    return "--" + field.replace("_", "-") if field in given else f"DIGITS_{field.upper()}"
