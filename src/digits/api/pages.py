"""The drawing page: GET / and its static files (HTML, CSS, JS in the package; no CDN, works offline)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

STATIC = Path(__file__).resolve().parent / "static"
router = APIRouter(tags=["page"])


@router.get("/", response_class=HTMLResponse, summary="Drawing page: draw or photograph a digit")
async def page():
    return HTMLResponse((STATIC / "index.html").read_text(encoding="utf-8"),
                        headers={"Cache-Control": "no-cache"})
