"""The API's documentation page (`/docs`, Swagger UI) served entirely by the node.

FastAPI's default `/docs` loads Swagger UI's script and style from a CDN, so on a machine
without internet (where nodes often run) the page stays blank. Here its assets come from the
`fastapi-offline` package (Swagger UI 5's release files, shipped on PyPI; the older
`swagger-ui-bundle` package holds Swagger UI 4, which cannot read OpenAPI 3.1), under
`/docs/assets/`, read once per process and answered with an ETag. Only the three files the
page loads are served, by name. ReDoc (`/redoc`) is not served: it shows the same document.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from importlib import resources

from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from starlette.responses import HTMLResponse, Response

from common.errors import NotFound

ASSETS_PACKAGE = "fastapi_offline"
DOCS_PATH = "/docs"
ASSETS_PATH = "/docs/assets"
# what the page loads, and its content type
ASSET_TYPES = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon.png": "image/png",
}


@dataclass(frozen=True, slots=True)
class DocsAsset:
    body: bytes
    content_type: str
    etag: str


@cache
def docs_asset(name: str) -> DocsAsset | None:
    """One of Swagger UI's files, by name (read once per process); None for any other."""
    content_type = ASSET_TYPES.get(name)
    if content_type is None:
        return None
    body = resources.files(ASSETS_PACKAGE).joinpath("static", name).read_bytes()
    return DocsAsset(body, content_type, '"' + hashlib.sha256(body).hexdigest()[:32] + '"')


router = APIRouter()


@router.get(DOCS_PATH, include_in_schema=False)
async def docs(request: Request) -> HTMLResponse:
    app = request.app
    return get_swagger_ui_html(
        openapi_url=app.openapi_url, title=f"{app.title} · docs",
        swagger_js_url=f"{ASSETS_PATH}/swagger-ui-bundle.js",
        swagger_css_url=f"{ASSETS_PATH}/swagger-ui.css",
        swagger_favicon_url=f"{ASSETS_PATH}/favicon.png")


@router.get(ASSETS_PATH + "/{name}", include_in_schema=False)
async def docs_assets(request: Request, name: str) -> Response:
    asset = docs_asset(name)
    if asset is None:
        raise NotFound(f"no documentation asset {name[:80]!r}")
    # the file changes only with the package: revalidate, but a match costs no body
    headers = {"ETag": asset.etag, "Cache-Control": "no-cache"}
    if asset.etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return Response(asset.body, media_type=asset.content_type, headers=headers)


def install(app: FastAPI) -> None:
    """Serve `/docs` from the node (the app is built with `docs_url=None, redoc_url=None`)."""
    app.include_router(router)
