"""What a p2p node is configured with: where it listens and dials, its limits and its clocks.

`P2PSettings.from_config` reads a node.json (`runtime.config.NodeConfig`) into the values the
protocol documents (docs/protocol.md §13). Tests build settings directly, to put the node on
`inproc://` endpoints and to shorten the timers (a handshake timeout of 10 s, a sync reply
timeout of 15 s) that would otherwise make them wait.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from common.genesis import Genesis
from runtime import buscurve
from runtime.buscurve import BusCurve
from runtime.config import NodeConfig

DEFAULT_MAX_PEERS = 25
MAX_OUTBOUND = 8  # links the node dials by itself (bootnodes, discovery, PEX)
MAX_MANUAL = 8  # links an operator asked for (`AddPeer`), on top of those


@dataclass(frozen=True, slots=True)
class Timing:
    """Every clock of the p2p protocol, in seconds (the defaults are the protocol's)."""

    handshake: float = 10.0  # a link not ready by then is closed (`BYE handshake`)
    ping_interval: float = 5.0
    peer_timeout: float = 30.0  # nothing received for this long: `BYE timeout`
    tick: float = 0.5  # how often the maintenance runs
    stable_link: float = 60.0  # an outbound link up this long resets its address's back-off
    pex_interval: float = 60.0  # while short of outbound links, one GPX this often
    sync_reply: float = 15.0  # a GBL unanswered this long: the next peer gets its turn
    ip_log_interval: float = 60.0  # at most one line this often about banned IP addresses
    head_check: float = 5.0  # the tip is re-read from state this often, whatever the events


@dataclass(frozen=True, slots=True)
class P2PSettings:
    """`listen` is the endpoint the ROUTER binds (`tcp://host:port`, or `inproc://name` in
    tests). For a tcp one the node advertises `tcp://<host>:<bound port>`, the host being
    `advertise_host` (else the bound one), a wildcard replaced by this machine's routable
    address; it advertises nothing for any other. With `outbound_only` it binds nothing and
    advertises nothing: it only dials out (a node behind NAT; Bitcoin Core's -listen=0).
    `state`, `events` and `control` are its bus endpoints, `bus_curve` the node's bus keys
    when one of them is tcp:// (runtime/buscurve.py).

    Peer slots (docs/protocol.md §13.10): `max_peers` is split into `max_outbound` links
    the node dials by itself and `max_inbound` for peers that dial it, so inbound peers can
    never take the outbound slots; the operator's own links (`AddPeer`) have `MAX_MANUAL`
    slots of their own. At most `max_inbound_per_ip` inbound links come from one IP address
    and `max_inbound_per_subnet` from one /24 (/64) (0: no limit); loopback peers, every
    local node among them, are exempt unless `limit_loopback`. `assume_valid`: the block
    whose ancestors sync imports without their signatures checked (b"": none;
    services/p2p/assumevalid.py)."""

    listen: str
    state: str
    events: str
    control: str
    max_peers: int = DEFAULT_MAX_PEERS
    ban_seconds: float = 600.0
    bootnodes: tuple[str, ...] = ()
    discovery: str = ""
    advertise_host: str = ""
    max_inbound_per_ip: int = 4
    max_inbound_per_subnet: int = 8
    limit_loopback: bool = False
    outbound_only: bool = False
    timing: Timing = field(default_factory=Timing)
    bus_curve: BusCurve | None = None
    assume_valid: bytes = b""

    @property
    def max_outbound(self) -> int:
        """Half the slots (rounded up), at most `MAX_OUTBOUND`: 8 of 25."""
        return min(MAX_OUTBOUND, (self.max_peers + 1) // 2)

    @property
    def max_inbound(self) -> int:
        return self.max_peers - self.max_outbound

    @classmethod
    def from_config(cls, config: NodeConfig, genesis: Genesis) -> P2PSettings:
        host = config.p2p_host
        bind_host = f"[{host}]" if ":" in host else host
        return cls(
            listen=f"tcp://{bind_host}:{config.p2p_port}",
            state=config.endpoint("state"), events=config.endpoint("events"),
            control=config.endpoint("p2p"),
            max_peers=config.p2p_max_peers or genesis.max_peers or DEFAULT_MAX_PEERS,
            ban_seconds=config.p2p_ban_seconds, bootnodes=config.bootnodes,
            discovery=config.discovery, advertise_host=host,
            max_inbound_per_ip=config.p2p_max_inbound_per_ip,
            max_inbound_per_subnet=config.p2p_max_inbound_per_subnet,
            limit_loopback=config.p2p_limit_loopback,
            outbound_only=config.p2p_outbound_only,
            bus_curve=buscurve.for_config(config),
            assume_valid=config.assume_valid)
