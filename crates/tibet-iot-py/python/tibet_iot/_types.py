"""Plain records and the transport configuration (dataclasses, as in the
reference)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from ._enums import AirlockZone, PingDecision

DEFAULT_PORT = 7150
DISCOVERY_PORT = 7151
MULTICAST_GROUP = "224.0.71.50"
MULTICAST_TTL = 2


@dataclass
class TransportConfig:
    """Where and how a node listens.

    The first four fields are the reference's; the rest are this package's
    additions, all optional keyword arguments.
    """

    bind_host: str = "0.0.0.0"
    bind_port: int = DEFAULT_PORT
    use_msgpack: bool = False
    broadcast: bool = True
    # --- ours ---
    #: Run LAN discovery (multicast listener and beacons).
    discovery: bool = True
    discovery_port: int = DISCOVERY_PORT
    multicast_group: str = MULTICAST_GROUP
    #: Interface address for multicast ("0.0.0.0": the kernel's choice).
    multicast_interface: str = "0.0.0.0"
    #: Default wait of ``send_ping`` when no ``timeout`` is given (seconds).
    request_timeout: float = 10.0
    #: This node's hop limit for mesh relay.
    max_hops: int = 10
    #: Capabilities and device type announced in beacons.
    capabilities: List[str] = field(default_factory=list)
    device_type: str = "generic"
    #: Learned mesh routes (False: flood as the reference does).
    routing: bool = True
    #: Ed25519 private key (PKCS#8 PEM, mode 0600): sign everything sent.
    key_file: Optional[str] = None
    #: DIDs pinned to public keys (base64, as ``tibet-iot pubkey`` prints).
    pins: Dict[str, str] = field(default_factory=dict)
    #: "off", "prefer" (pinned DIDs must sign) or "require" (needs key_file).
    identity_mode: str = "prefer"
    #: Provenance tokens (tibet-core JSONL) of every decision, appended here.
    audit_file: Optional[str] = None
    #: Join a fleet through this MQTT broker while running:
    #: ``mqtt://[USER:PASSWORD@]HOST[:PORT][?client_id=ID]`` (docs/FLEETS.md).
    mqtt_url: Optional[str] = None
    #: The CA certificate (PEM) that signed the broker's certificate: MQTT
    #: over TLS (needed with ``mqtts://``; turns TLS on for ``mqtt://``).
    mqtt_ca_file: Optional[str] = None
    #: A client certificate chain (PEM) for brokers that authenticate
    #: clients by certificate, with its private key (PEM, mode 0600).
    mqtt_cert_file: Optional[str] = None
    mqtt_key_file: Optional[str] = None
    #: Serve the Prometheus page at ``http://ADDR:PORT/metrics`` while
    #: running (``"127.0.0.1:0"``: a free port, see ``IoTNode.metrics_addr``).
    metrics_addr: Optional[str] = None


@dataclass
class AirlockRule:
    """Pattern rule deciding a ping's zone before trust thresholds.

    ``pattern`` keys: ``source_did`` and ``intent`` (globs: ``*``, ``pre*``,
    ``*suf``, ``*mid*``), ``pod_id``, ``ping_type``, ``min_trust``.
    """

    rule_id: str
    name: str
    pattern: Dict[str, Any]
    decision: PingDecision
    zone: AirlockZone
    priority: int = 50


@dataclass
class PendingPing:
    """A ping waiting for human review (GEEL)."""

    packet: Any
    sender_trust: float
    reason: str
    rule: Optional[str] = None
    queued_at: str = ""


@dataclass
class Vouch:
    """A vouch: the vouched DIDs inherit ``voucher_trust * vouch_factor``."""

    vouch_id: str
    voucher_did: str
    voucher_trust: float
    vouched_dids: List[str]
    vouch_factor: float = 0.7
    pod_id: Optional[str] = None
    reason: str = ""
    created_at: str = ""
    expires_at: Optional[str] = None
    tibet_token_id: Optional[str] = None
    signature: str = ""

    @property
    def computed_trust(self) -> float:
        """Trust the vouched devices inherit."""
        return self.voucher_trust * self.vouch_factor

    def to_dict(self) -> dict:
        d = dict(self.__dict__)
        d["computed_trust"] = self.computed_trust
        return d


@dataclass
class Beacon:
    """A bootstrap beacon (public information only)."""

    beacon_id: str
    source_did: str
    capabilities: List[str] = field(default_factory=list)
    requested_pod: Optional[str] = None
    device_type: str = "generic"
    public_key_hash: str = ""
    timestamp: str = ""

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class BeaconResponse:
    """A hub's answer to a beacon."""

    response_id: str
    in_response_to: str
    hub_did: str
    decision: str
    vouch_id: Optional[str] = None
    assigned_pod: Optional[str] = None
    message: str = ""
    timestamp: str = ""


@dataclass
class PeerRecord:
    """A live peer."""

    did: str
    addr: Tuple[str, int]
    packet_count: int = 0
    proven: bool = False


class Peers:
    """The live peers, read when asked (``node.peers``)."""

    def __init__(self, records: List[PeerRecord]) -> None:
        self._records = records

    def alive_peers(self) -> List[PeerRecord]:
        return list(self._records)

    def get_address(self, did: str) -> Optional[Tuple[str, int]]:
        for r in self._records:
            if r.did == did:
                return r.addr
        return None

    def get_peer(self, did: str) -> Optional[PeerRecord]:
        for r in self._records:
            if r.did == did:
                return r
        return None

    def __len__(self) -> int:
        return len(self._records)

    def __iter__(self):
        return iter(self._records)

    def __contains__(self, did: object) -> bool:
        return any(r.did == did for r in self._records)

    def __repr__(self) -> str:
        return f"Peers({self._records!r})"
