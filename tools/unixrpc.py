"""XML-RPC over a unix socket, with HTTP basic auth: how `ccoin node ...` talks to a
node's supervisord (tools/supervisor.py `Control`), and where the user name and password
of that socket are kept (the `[unix_http_server]` section of the node's supervisord.conf,
a file only its user may read)."""

from __future__ import annotations

import base64
import configparser
import http.client
import secrets
import socket
import xmlrpc.client
from pathlib import Path
from typing import Any


def new_credentials() -> tuple[str, str]:
    """A user name and a fresh random password for supervisord's control socket."""
    return "ccoin", secrets.token_hex(16)


def read_credentials(conf: Path) -> tuple[str, str] | None:
    """The control socket's user name and password from a supervisord.conf (None when it
    has none, or is gone)."""
    parser = configparser.RawConfigParser(strict=False)
    try:
        parser.read_string(conf.read_text())
        section = parser["unix_http_server"]
        return section["username"], section["password"]
    except (OSError, KeyError, configparser.Error):
        return None


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


class UnixTransport(xmlrpc.client.Transport):
    """An xmlrpc transport to the unix socket `path`, sending `credentials` (if any) as
    basic auth, with a timeout so a wedged server cannot hang the caller."""

    def __init__(self, path: str, timeout: float,
                 credentials: tuple[str, str] | None = None) -> None:
        super().__init__()
        self.path = path
        self.timeout = timeout
        if credentials is not None:
            token = base64.b64encode(":".join(credentials).encode()).decode()
            self._extra_headers = [("Authorization", f"Basic {token}")]

    def make_connection(self, host: Any) -> http.client.HTTPConnection:
        return _UnixConnection(self.path, self.timeout)
