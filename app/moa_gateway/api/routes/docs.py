"""GET /docs (Swagger UI) and /redoc: the API's interactive reference, with their scripts and styles served
by the gateway itself (fastapi-offline's pinned copies of swagger-ui-dist and redoc), so they render with
no network. FastAPI's own pages load them from a CDN: blank behind a firewall or offline. Like
/openapi.json, these paths need the gateway key when keys are configured."""

from __future__ import annotations

from collections.abc import Callable
from importlib.util import find_spec
from pathlib import Path
from typing import Any, Final

import orjson
from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import FileResponse, HTMLResponse

from moa_gateway.core.failures import Failure, FailureKind

router = APIRouter()

DOCS: Final = "/docs"
ASSETS: Final = "/docs/assets"
_TYPES: Final = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "redoc.standalone.js": "text/javascript",
    "favicon.png": "image/png",
}
# No request leaves for another host: no validator badge (Swagger UI would ask validator.swagger.io),
# and the pages may load nothing from elsewhere (ReDoc's "API docs by Redocly" logo is on a CDN).
_SWAGGER_PARAMETERS: Final = {"validatorUrl": None}
_CSP: Final = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; base-uri 'none'; "
    "frame-ancestors 'none'"
)


def _self_contained(page: HTMLResponse) -> HTMLResponse:
    page.headers["content-security-policy"] = _CSP
    return page


def _asset_dir() -> Path:
    """The package's static folder, found without importing the package (its code is not used)."""
    spec = find_spec("fastapi_offline")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("fastapi-offline is not installed: it ships the /docs assets")
    return Path(spec.submodule_search_locations[0]) / "static"


_ASSET_DIR: Final = _asset_dir()


def _hoisted(document: dict[str, Any]) -> dict[str, Any]:
    """`document` with each request body's `$defs` (routes that parse their own body give its pydantic
    schema whole) moved to `components.schemas`, where its `#/$defs/X` references can point: from the
    document's root they point nowhere, and ReDoc stops at the first (Swagger UI shows them broken)."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            content = operation.get("requestBody", {}).get("content", {})
            for media in content.values():
                defs = media.get("schema", {}).get("$defs", {})
                if any(name in schemas and schemas[name] != schema for name, schema in defs.items()):
                    continue  # two different models of one name: left as they were
                schemas.update(media["schema"].pop("$defs", {}))
    text = orjson.dumps(document).replace(b'"#/$defs/', b'"#/components/schemas/')
    hoisted: dict[str, Any] = orjson.loads(text)
    return hoisted


def use_component_schemas(app: FastAPI) -> None:
    """Serve /openapi.json with every schema under `components` (see `_hoisted`), built once."""
    generate: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _hoisted(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


@router.get(DOCS, include_in_schema=False)
async def swagger_ui(request: Request) -> HTMLResponse:
    """The Swagger UI page."""
    root = request.scope.get("root_path", "")
    page = get_swagger_ui_html(
        openapi_url=f"{root}{request.app.openapi_url}",
        title=f"{request.app.title} - Swagger UI",
        swagger_js_url=f"{root}{ASSETS}/swagger-ui-bundle.js",
        swagger_css_url=f"{root}{ASSETS}/swagger-ui.css",
        swagger_favicon_url=f"{root}{ASSETS}/favicon.png",
        oauth2_redirect_url=f"{root}{DOCS}/oauth2-redirect",
        swagger_ui_parameters=_SWAGGER_PARAMETERS,
    )
    return _self_contained(page)


@router.get(f"{DOCS}/oauth2-redirect", include_in_schema=False)
async def swagger_ui_redirect() -> HTMLResponse:
    return get_swagger_ui_oauth2_redirect_html()


@router.get("/redoc", include_in_schema=False)
async def redoc(request: Request) -> HTMLResponse:
    """The ReDoc page (no Google Fonts: the system's)."""
    root = request.scope.get("root_path", "")
    page = get_redoc_html(
        openapi_url=f"{root}{request.app.openapi_url}",
        title=f"{request.app.title} - ReDoc",
        redoc_js_url=f"{root}{ASSETS}/redoc.standalone.js",
        redoc_favicon_url=f"{root}{ASSETS}/favicon.png",
        with_google_fonts=False,
    )
    return _self_contained(page)


@router.get(ASSETS + "/{name}", include_in_schema=False)
async def asset(name: str) -> FileResponse:
    """One of the pages' files, by name from a fixed list (no path is taken from the request)."""
    media_type = _TYPES.get(name)
    if media_type is None:
        raise Failure(FailureKind.NOT_FOUND, f"No such docs asset: {name[:100]!r}")
    # FileResponse reads in a worker thread, with ETag and Last-Modified for the browser's cache.
    return FileResponse(_ASSET_DIR / name, media_type=media_type, headers={"cache-control": "max-age=86400"})
