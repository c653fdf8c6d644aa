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


def refusal(c: HTTPConnection, token: str) -> str:
    with pytest.raises(Forbidden) as info:
        check_admin(c, token)
    return info.value.message


def test_each_refusal_says_what_would_be_admitted() -> None:
    """A token sent to a node without one is told so, with the key that sets it, not the
    loopback rule it did not try to pass; a node without a token says so in every refusal
    (a token is the only way in from elsewhere); with one, its refusals name it."""
    sent = refusal(conn("10.1.2.3", authorization="Bearer abc"), "")
    assert sent.startswith("a bearer token was sent, but this node has no admin token")
    assert "api.admin_token" in sent and "loopback IP" not in sent
    # the dashboard's visitor by another name, with a token, on such a node
    sent = refusal(conn(host="ccoin-visitor.test:8000", authorization="Bearer abc"), "")
    assert "has no admin token" in sent and "must address the node" not in sent
    for c in (conn("10.1.2.3"), conn(x_forwarded_for="10.0.0.1"), conn(host="evil.com:8000"),
              conn(origin="https://evil.com")):
        assert "has no admin token: set api.admin_token" in refusal(c, "")
    assert "'evil.com:8000'" in refusal(conn(host="evil.com:8000"), "")
    assert refusal(conn("10.1.2.3", authorization="Bearer wrong"), "tok") == \
        "the bearer token does not match this node's api.admin_token"
    assert "Bearer <api.admin_token>" in refusal(conn("10.1.2.3", authorization="tok"), "tok")
    assert "has no admin token" not in refusal(conn("10.1.2.3"), "tok")
    # loopback with a stray header still passes on a node without a token
    check_admin(conn(authorization="Bearer whatever"), "")
