"""The drawing page (GET / and its static files) and the API docs (/docs, /redoc), all offline.

The page's HTML, CSS and JS ship in the package. Swagger UI and ReDoc come from the
fastapi-offline package's copies rather than FastAPI's default CDN, so /docs works without
internet too (FastAPI's CDN pages are the fallback if that package is missing).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).resolve().parents[1] / "static"
OFFLINE_DOCS = importlib.util.find_spec("fastapi_offline") is not None
router = APIRouter(tags=["page"])


@router.get("/", response_class=HTMLResponse, summary="Drawing page: draw or photograph a digit")
async def page():
    return HTMLResponse((STATIC / "index.html").read_text(encoding="utf-8"),
                        headers={"Cache-Control": "no-cache"})


def install_docs(app: FastAPI) -> None:
    """Serve /docs and /redoc from local files (FastAPI's CDN pages stay if fastapi-offline is missing)."""
    if not OFFLINE_DOCS:
        return
    import fastapi_offline

    assets = Path(fastapi_offline.__file__).resolve().parent / "static"
    app.mount("/docs-static", StaticFiles(directory=assets), name="docs-static")

    @app.get("/docs", include_in_schema=False)
    async def swagger(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(openapi_url=root + app.openapi_url, title=f"{app.title} - Swagger UI",
                                   oauth2_redirect_url=root + app.swagger_ui_oauth2_redirect_url,
                                   swagger_js_url=f"{root}/docs-static/swagger-ui-bundle.js",
                                   swagger_css_url=f"{root}/docs-static/swagger-ui.css",
                                   swagger_favicon_url=f"{root}/docs-static/favicon.png")

    @app.get(app.swagger_ui_oauth2_redirect_url, include_in_schema=False)
    async def swagger_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_redoc_html(openapi_url=root + app.openapi_url, title=f"{app.title} - ReDoc",
                              redoc_js_url=f"{root}/docs-static/redoc.standalone.js", with_google_fonts=False,
                              redoc_favicon_url=f"{root}/docs-static/favicon.png")
