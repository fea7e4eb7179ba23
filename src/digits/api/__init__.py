"""The HTTP service: FastAPI app, routes per protocol, schemas, settings and the drawing page.

`create_app()` (app.py) builds the app; `digits serve` runs it under uvicorn (`app.serve`).
Routes: `/predict` (files, base64 images, pixels; digits or numbers), `/v2/...` (Open
Inference Protocol, as Triton and KServe serve it), `/v1/models/...` (TensorFlow Serving
REST), `/health/*`, `/info`, `/metrics` (Prometheus), `/docs` (OpenAPI) and `/` (a page to
draw or photograph a digit). Needs the `api` extra: pip install 'digits[api]'.
"""


def __getattr__(name):  # `from digits.api import create_app` without importing FastAPI for `digits --help`
    if name == "create_app":
        from .app import create_app

        return create_app
    raise AttributeError(name)
