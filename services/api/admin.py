"""Who may call an admin route (DESIGN §6: loopback, or the node's bearer token).

The peer address is the real socket peer: the gateway runs uvicorn with
`proxy_headers=False`, since uvicorn otherwise rewrites the client address from
`X-Forwarded-For` when the connection comes from 127.0.0.1 (DESIGN §10), so any local
reverse proxy would make every remote client look local. A loopback request is still
refused when it carries a forwarding header (it came through a proxy, from somewhere
else), when its `Host` is not a loopback name (DNS rebinding: a web page whose name was
re-pointed at 127.0.0.1), or when a browser says it comes from another site's page
(`Origin`; cross-site request forgery against a node on the user's own machine).
A request with the right `Authorization: Bearer <token>` is admin from anywhere.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.requests import HTTPConnection

from common.errors import Forbidden

FORWARDING_HEADERS = ("x-forwarded-for", "forwarded", "x-real-ip", "x-forwarded-host",
                      "x-client-ip", "true-client-ip", "cf-connecting-ip")
_LOOPBACK_NAMES = ("localhost",)


def is_loopback_ip(host: str | None) -> bool:
    if not host:
        return False
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def is_loopback_name(hostname: str | None) -> bool:
    """`Host`/`Origin` host part naming this machine: localhost or a loopback IP."""
    if not hostname:
        return False
    name = hostname.lower().rstrip(".")
    return (name in _LOOPBACK_NAMES or name.endswith(".localhost")
            or is_loopback_ip(name.strip("[]")))


def _hostname(url: str) -> str | None:
    try:
        return urlsplit(url).hostname
    except ValueError:  # e.g. an unclosed IPv6 bracket
        return None


NO_TOKEN = ("this node has no admin token: set api.admin_token in its config file "
            "(node.json) and restart it to admit a bearer token")


def check_admin(conn: HTTPConnection, token: str, cors_origins: Iterable[str] = ()) -> None:
    """Raise `Forbidden` unless the request may use admin routes. Each refusal says what
    would be admitted instead, and, when the node has no token, how to give it one."""
    headers = conn.headers
    auth = headers.get("authorization")
    if auth is not None and token:
        scheme, _, presented = auth.partition(" ")
        if scheme.lower() != "bearer":
            raise Forbidden("the Authorization header must be `Bearer <api.admin_token>`")
        if hmac.compare_digest(presented.strip().encode(), token.encode()):
            return
        raise Forbidden("the bearer token does not match this node's api.admin_token")
    try:
        _check_loopback(headers, conn.client.host if conn.client else None, cors_origins)
    except Forbidden as exc:
        if token:
            raise
        if auth is not None:  # a token was sent to a node that has none to compare it with
            raise Forbidden(f"a bearer token was sent, but {NO_TOKEN}; until then admin "
                            "routes answer only this machine's own requests to "
                            "localhost") from None
        raise Forbidden(f"{exc.message} ({NO_TOKEN})") from None


def _check_loopback(headers: Headers, peer: str | None, cors_origins: Iterable[str]) -> None:
    """Raise `Forbidden` unless the request comes from this machine, to this node, directly."""
    if not is_loopback_ip(peer):
        raise Forbidden("admin routes answer loopback clients or a bearer token only")
    for name in FORWARDING_HEADERS:
        if name in headers:
            raise Forbidden(f"admin request came through a proxy ({name} header); "
                            "use the bearer token")
    host = headers.get("host", "")
    if not is_loopback_name(_hostname("//" + host)):
        raise Forbidden("admin requests from loopback must address the node as localhost "
                        f"or a loopback IP (this one named {host[:80]!r}), or use the bearer "
                        "token")
    origin = headers.get("origin")
    if origin is not None and origin not in cors_origins \
            and not is_loopback_name(_hostname(origin) if "://" in origin else None):
        raise Forbidden(f"admin request from a page of another site ({origin[:80]})")
