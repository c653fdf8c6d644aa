"""The web dashboard (sosocoin's node page, DESIGN §6 `GET /`), served by the API gateway.

The page is static: `static/index.html` and plain ES modules and CSS beside it, shipped as
package data and read through `importlib.resources`, so an installed node serves it with no
build step and no network (nodes often run offline; the page makes no external request, and
its Content-Security-Policy forbids any). Everything it shows comes from the public REST
routes; `GET /api/v1/dashboard/whoami` tells it whether to draw the admin panels (wallet,
operate), using the very rule of `services.api.admin`. That answer is only a hint for the
page: every admin route still checks the caller itself.

Assets are read once per process and answered from memory with an ETag, revalidated on every
load (`no-cache`), so an upgraded node never serves a stale script next to a new page.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from starlette.responses import Response

from common.errors import CcoinError, NotFound
from services.api.admin import check_admin

STATIC_PACKAGE = "services.api"
STATIC_DIR = "static"
INDEX = "index.html"

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
_ASSET_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*\.(?:html|js|css|svg)")

# Only this origin's scripts, styles and API; no inline script, no frames, no form posts
# (forms are sent by script as JSON). `data:` images: the empty favicon.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    content_type: str
    etag: str


@cache
def assets() -> dict[str, Asset]:
    """Every servable file of the static folder, by name (read once per process)."""
    folder = resources.files(STATIC_PACKAGE).joinpath(STATIC_DIR)
    found: dict[str, Asset] = {}
    for entry in folder.iterdir():
        name = entry.name
        if not entry.is_file() or not _ASSET_NAME.fullmatch(name):
            continue
        body = entry.read_bytes()
        suffix = name[name.rindex("."):]
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        found[name] = Asset(body, CONTENT_TYPES[suffix], etag)
    return found


def _serve(request: Request, name: str) -> Response:
    asset = assets().get(name) if _ASSET_NAME.fullmatch(name) else None
    if asset is None:
        raise NotFound(f"no dashboard asset {name[:80]!r}")
    headers = {"ETag": asset.etag, "Cache-Control": "no-cache", **SECURITY_HEADERS}
    if asset.etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return Response(asset.body, media_type=asset.content_type, headers=headers)


class WhoamiOut(BaseModel):
    admin: bool = Field(description="whether this caller may use the admin routes")
    reason: str | None = Field(default=None, description="why not, when admin is false")


router = APIRouter()


@router.get("/", include_in_schema=False)
async def index(request: Request) -> Response:
    return _serve(request, INDEX)


@router.get("/static/{name}", include_in_schema=False)
async def static(request: Request, name: str) -> Response:
    return _serve(request, name)


@router.get("/api/v1/dashboard/whoami", response_model=WhoamiOut, tags=["dashboard"])
async def whoami(request: Request) -> WhoamiOut:
    """Whether the caller passes the admin rule (loopback, or the node's bearer token), so
    the dashboard knows whether to show its wallet and operate panels."""
    config = request.app.state.gateway.config
    try:
        check_admin(request, config.admin_token, config.cors_origins)
    except CcoinError as exc:
        return WhoamiOut(admin=False, reason=exc.message)
    return WhoamiOut(admin=True)
