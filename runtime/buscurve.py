"""CurveZMQ on the internal bus over tcp:// (issue 15): who may talk to state and the miner
from another host.

The bus is ipc:// by default (socket files in the data dir: the file system decides who
reaches them). An endpoint the node config sets to tcp:// is reachable over a network, so
it is always a CurveZMQ server (encrypted, and the client proves its key) with a ZAP
allow-list (RFC 27, runtime/zap.py): the node's own key and the gateway keys in `bus.allow`
may connect; any other key is refused during the handshake, before a frame of it reaches a
service, and so is a plaintext client (its greeting names another mechanism). Each refusal
is logged once. The one exception is asked for by name: `bus.plaintext_loopback: true`
serves tcp:// endpoints on a loopback address without Curve (one host, e.g. a container).

Keys: a node's bus key pair is one file, `DATA/bus/curve.secret` (mode 0600, the z85
secret; the public key follows from it), made the first time a process of the node needs it
(or by `ccoin node keys`, which prints the public half). A gateway on another host has its
own data dir, hence its own pair: its operator adds that public key to the chain host's
`bus.allow`, and the chain host's public key to the gateway's `bus.server_key`. Bus clients
connect with their node's pair and the server key (`bus.server_key`, by default the node's
own: every service on the chain host shares its data dir).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

import zmq
import zmq.asyncio
from zmq.utils import z85
from zmq.utils.monitor import parse_monitor_message

from runtime import zap
from runtime.config import ConfigError, NodeConfig

log = logging.getLogger("ccoin.bus.curve")

KEY_FILE = Path("bus") / "curve.secret"
LOCAL, CURVE, PLAIN = "local", "curve", "plain"  # what an endpoint gets (`mode`)
LOG_MEMORY = 1024  # refusals remembered so each is logged once (then forgotten, bounded)
# handshakes a Curve server sees fail before ZAP is asked: a plaintext client (mechanism
# mismatch), or a client that holds the wrong server key (its HELLO does not decrypt)
_FAILED = zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL


def key_file(base_path: Path) -> Path:
    return base_path / KEY_FILE


def load_keys(base_path: Path, create: bool = True) -> tuple[bytes, bytes]:
    """The node's bus key pair (public, secret), raw 32 bytes each; made on first use.

    Several services of a node start at once and may all find the file missing: each writes
    a pair aside and links it into place, which only the first one manages (a link never
    replaces a file), and every one then reads the same file."""
    path = key_file(base_path)
    if create and not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        _, secret = zmq.curve_keypair()
        aside = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}")
        fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(secret + b"\n")
                f.flush()
                os.fsync(f.fileno())
            try:
                os.link(aside, path)
            except FileExistsError:
                pass  # another service of this node made it first: use that one
        finally:
            aside.unlink(missing_ok=True)
    try:
        text = path.read_bytes().strip()
    except FileNotFoundError:
        raise ConfigError(f"no bus key {path}: run `ccoin node keys` to make it") from None
    except OSError as exc:
        raise ConfigError(f"cannot read the bus key {path}: {exc.strerror}") from None
    try:
        secret = z85.decode(text)
        public = z85.decode(zmq.curve_public(text))
    except (ValueError, KeyError, TypeError, zmq.ZMQError):
        secret = public = b""
    if len(secret) != 32 or len(public) != 32:
        raise ConfigError(f"{path} does not hold a CurveZMQ secret key (40 z85 characters)")
    return public, secret


def mode(endpoint: str, plaintext_loopback: bool) -> str:
    """What a bus endpoint gets: LOCAL (ipc://, inproc://: not on a network), PLAIN (tcp://
    on a loopback address while `bus.plaintext_loopback` asks for it) or CURVE."""
    if not endpoint.startswith("tcp://"):
        return LOCAL
    if plaintext_loopback:
        host = (urlsplit(endpoint).hostname or "").strip("[]")
        try:
            if host == "localhost" or ipaddress.ip_address(host).is_loopback:
                return PLAIN
        except ValueError:
            pass
    return CURVE


@dataclass(frozen=True, slots=True)
class BusCurve:
    """One node's bus security: its key pair, the key of the host that serves its bus
    endpoints, the client keys that host admits (its own included), and whether tcp:// on
    loopback may go without Curve."""

    public: bytes
    secret: bytes
    server_key: bytes
    allow: frozenset[bytes]
    plaintext_loopback: bool = False

    def mode(self, endpoint: str) -> str:
        return mode(endpoint, self.plaintext_loopback)


def attachment(endpoint: str, plaintext_loopback: bool) -> str:
    """How a client reaches a bus endpoint, for status lines: "" for a local one, else the
    endpoint and whether it is CurveZMQ."""
    how = mode(endpoint, plaintext_loopback)
    if how == LOCAL:
        return ""
    return f"{endpoint} ({'CurveZMQ' if how == CURVE else 'plaintext, loopback'})"


def uses_tcp(config: NodeConfig) -> bool:
    return any(e.startswith("tcp://") for e in config.endpoint_overrides.values())


def for_config(config: NodeConfig) -> BusCurve | None:
    """The node's bus security; None when every endpoint is local (no key is needed, none
    is made)."""
    if not uses_tcp(config):
        return None
    public, secret = load_keys(config.base_path)
    return BusCurve(public, secret, config.bus_server_key or public,
                    frozenset((public, *config.bus_allow)), config.bus_plaintext_loopback)


def _refuse(endpoint: str) -> ConfigError:
    return ConfigError(f"refusing the bus endpoint {endpoint}: tcp:// is CurveZMQ only and "
                       "no bus keys were given (set bus.plaintext_loopback for plaintext on "
                       "127.0.0.1)")


def check_client(endpoint: str, curve: BusCurve | None) -> None:
    """Refuse (at start, in one line) a client of a tcp:// endpoint without keys."""
    if curve is None and mode(endpoint, False) != LOCAL:
        raise _refuse(endpoint)


def secure_client(sock: zmq.Socket[Any], endpoint: str, curve: BusCurve | None) -> None:
    """Make `sock` (not yet connected) a Curve client of the bus server at `endpoint` when
    that endpoint is Curve; refuse a tcp:// endpoint without keys."""
    check_client(endpoint, curve)
    if curve is not None and curve.mode(endpoint) == CURVE:
        sock.setsockopt(zmq.CURVE_SERVERKEY, curve.server_key)
        sock.setsockopt(zmq.CURVE_PUBLICKEY, curve.public)
        sock.setsockopt(zmq.CURVE_SECRETKEY, curve.secret)


class Guard:
    """The bus servers of one process's context: makes each tcp:// one a Curve server, runs
    the context's ZAP handler (admits `BusCurve.allow`), and watches each server for
    handshakes that fail before ZAP is asked. Every refusal is logged once (by its cause and
    the client's address or key): a refused client retries every few hundred milliseconds,
    and the log must not fill with it."""

    def __init__(self, ctx: zmq.asyncio.Context, curve: BusCurve | None) -> None:
        self.ctx = ctx
        self.curve = curve
        self.keeper: zap.Gatekeeper | None = None
        self.watches: list[asyncio.Task[None]] = []
        self.monitors: list[tuple[zmq.Socket[Any], zmq.asyncio.Socket]] = []
        self._logged: set[tuple[str, str]] = set()
        self.refused = 0  # connections refused (ZAP and failed handshakes)

    def serve(self, sock: zmq.Socket[Any], endpoint: str) -> None:
        """Before `sock` binds `endpoint`: secure it as the endpoint requires."""
        curve = self.curve
        how = mode(endpoint, curve.plaintext_loopback if curve else False)
        if how == LOCAL:
            return
        if curve is None:
            raise _refuse(endpoint)
        if how == PLAIN:
            self._once("plaintext", endpoint, logging.WARNING,
                       f"serving {endpoint} without CurveZMQ (bus.plaintext_loopback)")
            return
        if self.keeper is None:
            self.keeper = zap.Gatekeeper(self.ctx, self._admit, _user_id, name="bus-zap")
            self.keeper.start()
        sock.setsockopt(zmq.ZAP_DOMAIN, zap.BUS_DOMAIN)
        sock.setsockopt(zmq.CURVE_SERVER, 1)
        sock.setsockopt(zmq.CURVE_PUBLICKEY, curve.public)
        sock.setsockopt(zmq.CURVE_SECRETKEY, curve.secret)
        # made by the socket's context, an asyncio one: awaited by `_watch`
        monitor = cast(zmq.asyncio.Socket, sock.get_monitor_socket(_FAILED))
        self.monitors.append((sock, monitor))
        self.watches.append(asyncio.get_running_loop().create_task(
            self._watch(monitor, endpoint), name="bus-handshakes"))

    def _admit(self, req: zap.ZapRequest) -> str | None:
        assert self.curve is not None  # a keeper runs only with keys
        key = req.curve_key
        if req.domain == zap.BUS_DOMAIN and key in self.curve.allow:
            return None
        self.refused += 1
        shown = key.hex() if key else req.mechanism.decode("ascii", "replace")
        self._once("key", f"{req.address} {shown}", logging.WARNING,
                   f"refused a bus client from {req.address}: its key {shown} is not in "
                   "bus.allow (its host prints it with `ccoin node keys`)")
        return "not in bus.allow"

    async def _watch(self, monitor: zmq.asyncio.Socket, endpoint: str) -> None:
        try:
            while True:
                event = parse_monitor_message(await monitor.recv_multipart())
                self.refused += 1
                self._once("handshake", endpoint, logging.WARNING,
                           f"refused a connection to {endpoint}: {_failure(event['value'])} "
                           "(a bus client needs this host's key as bus.server_key, and its "
                           "own key in bus.allow here)")
        except (asyncio.CancelledError, zmq.ZMQError):
            pass

    def _once(self, cause: str, who: str, level: int, text: str) -> None:
        if (cause, who) in self._logged:
            return
        if len(self._logged) >= LOG_MEMORY:
            self._logged.clear()
        self._logged.add((cause, who))
        log.log(level, "%s", text)

    def close(self) -> None:
        """Stop watching and answering. Every socket is closed here, not by the tasks as
        they end: a service's `ctx.term()` right after this would otherwise wait for ever
        on a monitor socket still open."""
        for task in self.watches:
            task.cancel()
        for sock, monitor in self.monitors:
            if not sock.closed:
                sock.disable_monitor()
            monitor.close(0)
        self.monitors.clear()
        if self.keeper is not None:
            self.keeper.stop()
            self.keeper = None


def _user_id(req: zap.ZapRequest) -> str:
    return z85.encode(req.curve_key).decode("ascii") if req.curve_key else ""


def _failure(value: int) -> str:
    """What a failed handshake's monitor value says, in words."""
    if value == zmq.PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH:
        return "a plaintext client (it does not speak CurveZMQ)"
    if value == zmq.PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC:
        return "a client that holds another server key (its hello does not decrypt)"
    return f"its handshake failed (a plaintext client, or a wrong server key; code {value})"
