"""GET /playground: one self-contained page (no build step, nothing fetched from elsewhere) that runs a
prompt and shows every layer live; GET / points to it."""

from __future__ import annotations

from functools import cache
from importlib.resources import files

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

router = APIRouter()

# The page may talk to this gateway only: no other origin, no external script, style or font.
_CSP = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; "
    "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_HEADERS = {"content-security-policy": _CSP, "cache-control": "no-cache", "x-content-type-options": "nosniff"}
_INDEX = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>moa-gateway</title></head>
<body style="font:15px system-ui,sans-serif;margin:2em"><h1>moa-gateway</h1>
<p>An OpenAI-compatible gateway that runs Mixture-of-Agents pipelines.</p><ul>
<li><a href="/playground">Playground</a>: run a prompt and watch every layer</li>
<li><a href="/docs">API docs</a> (<code>POST /v1/chat/completions</code>, <code>GET /v1/models</code>)</li>
<li><a href="/metrics">Metrics</a> (Prometheus)</li></ul></body></html>
"""


@cache
def _page() -> bytes:
    return files("moa_gateway.api").joinpath("static/playground.html").read_bytes()


@router.get("/playground", include_in_schema=False)
async def playground() -> HTMLResponse:
    """The playground page."""
    return HTMLResponse(_page(), headers=_HEADERS)


@router.get("/", include_in_schema=False)
async def index() -> HTMLResponse:
    """What this server is, with a link to the playground."""
    return HTMLResponse(_INDEX, headers=_HEADERS)
