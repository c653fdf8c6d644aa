"""Who may call an admin route (`services.api.admin`): loopback without forwarding headers,
a loopback `Host` and a same-site `Origin`, or the node's bearer token."""

from __future__ import annotations

import pytest
from starlette.requests import HTTPConnection

from common.errors import Forbidden
from services.api.admin import check_admin, is_loopback_ip, is_loopback_name


def conn(peer: str | None = "127.0.0.1", host: str = "127.0.0.1:8000",
         **headers: str) -> HTTPConnection:
    raw = [(b"host", host.encode())] + [(k.replace("_", "-").lower().encode(), v.encode())
                                        for k, v in headers.items()]
    return HTTPConnection({"type": "http", "headers": raw,
                           "client": (peer, 5555) if peer else None})


def test_loopback_detection() -> None:
    ip: str | None
    name: str | None
    for ip in ("127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"):
        assert is_loopback_ip(ip)
    for ip in ("10.0.0.1", "0.0.0.0", "::", "testclient", "", None, "localhost"):
        assert not is_loopback_ip(ip)
    for name in ("localhost", "LOCALHOST", "127.0.0.1", "[::1]", "app.localhost"):
        assert is_loopback_name(name)
    for name in ("evil.com", "127.0.0.1.evil.com", "localhost.evil.com", "", None):
        assert not is_loopback_name(name)


def test_admin_rule() -> None:
    check_admin(conn(), "")
    check_admin(conn(host="localhost:8000"), "")
    check_admin(conn("::1", host="[::1]:8000"), "")
    check_admin(conn(origin="http://127.0.0.1:8000"), "")
    check_admin(conn(origin="https://dash.example"), "", ("https://dash.example",))
    refused = [
        conn("10.1.2.3"), conn(None), conn("testclient"),
        conn(x_forwarded_for="127.0.0.1"), conn(forwarded="for=127.0.0.1"),
        conn(x_real_ip="127.0.0.1"),
        conn(host="evil.com:8000"),  # DNS rebinding
        conn(host=""), conn(host="[::1"),
        conn(origin="https://evil.com"), conn(origin="null"),  # cross-site page
    ]
    for c in refused:
        with pytest.raises(Forbidden):
            check_admin(c, "")


def test_admin_token() -> None:
    token = "s3cret-token"
    check_admin(conn("10.1.2.3", authorization=f"Bearer {token}"), token)
    check_admin(conn("127.0.0.1", x_forwarded_for="8.8.8.8",
                     authorization=f"bearer {token}"), token)
    check_admin(conn(), token)  # loopback alone still suffices (DESIGN §6)
    for c in (conn("10.1.2.3"), conn("10.1.2.3", authorization="Bearer wrong"),
              conn("10.1.2.3", authorization=token),
              conn(authorization="Bearer wrong")):  # a wrong token is refused even locally
        with pytest.raises(Forbidden):
            check_admin(c, token)
    # with no token configured, a presented one means nothing
    with pytest.raises(Forbidden):
        check_admin(conn("10.1.2.3", authorization="Bearer "), "")
