"""Type stubs of the native module (Rust, PyO3)."""

from typing import Any, Dict, List, Optional, Tuple, Union

from ._enums import PingDecision, PingType, Priority, RoutingMode
from ._types import AirlockRule, Beacon, BeaconResponse, PeerRecord, PendingPing, TransportConfig, Vouch

Addr = Union[Tuple[str, int], str]

class PingPacket:
    """A ping: who sends it, to whom, what it wants and why."""

    packet_id: str
    source_did: str
    target_did: str
    ping_type: PingType
    priority: Priority
    routing_mode: RoutingMode
    intent: str
    purpose: str
    payload: Dict[str, Any]
    pod_id: Optional[str]
    station_id: Optional[str]
    hop_count: int
    max_hops: int
    nonce: str
    timestamp: str
    tibet_token_id: Optional[str]
    vouched_by: Optional[str]
    vouch_signature: Optional[str]
    signature: str
    def __init__(
        self,
        packet_id: str,
        source_did: str,
        target_did: str,
        ping_type: Union[PingType, str],
        priority: Union[Priority, int],
        routing_mode: Union[RoutingMode, str],
        intent: str,
        purpose: str,
        payload: Optional[Dict[str, Any]] = None,
        pod_id: Optional[str] = None,
        station_id: Optional[str] = None,
        hop_count: int = 0,
        max_hops: int = 5,
        nonce: Optional[str] = None,
        timestamp: Optional[str] = None,
        tibet_token_id: Optional[str] = None,
        vouched_by: Optional[str] = None,
        vouch_signature: Optional[str] = None,
        signature: str = "",
    ) -> None: ...
    def to_dict(self) -> Dict[str, Any]: ...
    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "PingPacket": ...
    def to_tibet_erin(self) -> Dict[str, Any]: ...
    def to_tibet_eromheen(self) -> Dict[str, Any]: ...

class PingResponse:
    """An answer to a ping."""

    response_id: str
    in_response_to: str
    responder_did: str
    decision: PingDecision
    payload: Dict[str, Any]
    capabilities: List[str]
    trust_score: float
    fira_breakdown: Dict[str, Any]
    tibet_token_id: Optional[str]
    timestamp: str
    rtt_ms: Optional[float]
    airlock_zone: str
    applied_rule: Optional[str]
    signature: str
    def __init__(
        self,
        response_id: str,
        in_response_to: str,
        responder_did: str,
        decision: Union[PingDecision, str],
        payload: Optional[Dict[str, Any]] = None,
        capabilities: List[str] = ...,
        trust_score: float = 0.0,
        fira_breakdown: Optional[Dict[str, Any]] = None,
        tibet_token_id: Optional[str] = None,
        timestamp: Optional[str] = None,
        rtt_ms: Optional[float] = None,
        airlock_zone: Optional[str] = None,
        applied_rule: Optional[str] = None,
    ) -> None: ...
    def to_dict(self) -> Dict[str, Any]: ...
    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "PingResponse": ...

class NodeEvent:
    """One event of a node; attributes that do not apply are None."""

    kind: str
    addr: Optional[Tuple[str, int]]
    packet_id: Optional[str]
    source_did: Optional[str]
    intent: Optional[str]
    ping_type: Optional[PingType]
    decision: Optional[PingDecision]
    zone: Optional[str]
    trust: Optional[float]
    replay: bool
    response: Optional[PingResponse]
    target_did: Optional[str]
    reason: Optional[str]
    def to_dict(self) -> Dict[str, Any]: ...

class PingNode:
    """The reference's synchronous protocol node, on the Rust core."""

    device_did: str
    def __init__(
        self,
        device_did: str,
        nonce_window: float = 30.0,
        trust_groen: float = 0.7,
        trust_rood: float = 0.3,
        *,
        key_file: Optional[str] = None,
    ) -> None: ...
    def ping(
        self,
        target: str,
        intent: str,
        purpose: str = "",
        ping_type: Optional[PingType] = None,
        priority: Optional[Priority] = None,
        routing_mode: Optional[RoutingMode] = None,
        payload: Optional[Dict[str, Any]] = None,
        pod_id: Optional[str] = None,
        station_id: Optional[str] = None,
    ) -> PingPacket: ...
    def heartbeat(
        self, target: str = "broadcast", status: Optional[Dict[str, Any]] = None, pod_id: Optional[str] = None
    ) -> PingPacket: ...
    def discover(self, capabilities: Optional[List[str]] = None, pod_id: Optional[str] = None) -> PingPacket: ...
    def receive(self, packet: PingPacket) -> PingResponse: ...
    def set_trust(self, did: str, trust: float) -> None: ...
    def trust_of(self, did: str) -> float: ...
    def vouch(
        self,
        vouched_dids: List[str],
        vouch_factor: float = 0.7,
        my_trust: float = 0.9,
        pod_id: Optional[str] = None,
        reason: str = "",
    ) -> Vouch: ...
    def add_rule(self, rule: AirlockRule) -> None: ...
    def pending(self) -> List[PendingPing]: ...
    def approve(self, packet_id: str, raise_trust_to: Optional[float] = None) -> Optional[PendingPing]: ...
    def reject(self, packet_id: str) -> Optional[PendingPing]: ...
    def broadcast_beacon(
        self, capabilities: Optional[List[str]] = None, requested_pod: Optional[str] = None, device_type: str = "generic"
    ) -> Beacon: ...
    def handle_beacon(self, beacon: Union[Beacon, Dict[str, Any]]) -> BeaconResponse: ...
    def stats(self) -> Dict[str, Any]: ...

class PacketCodec:
    """TP frames to and from packets and responses."""

    use_msgpack: bool
    def __init__(self, use_msgpack: bool = False) -> None: ...
    def encode_packet(self, packet: PingPacket) -> bytes: ...
    def encode_response(self, response: PingResponse) -> bytes: ...
    def decode(self, data: bytes) -> Union[PingPacket, PingResponse]: ...

class Bridge:
    def __init__(self) -> None: ...
    def fileno(self) -> int: ...
    def drain(self) -> List[Tuple[int, bool, Any]]: ...
    def cancel(self, task_id: int) -> None: ...
    def __len__(self) -> int: ...

class RequestSocket:
    """A node's request socket for one event loop (see ``_bridge.py``)."""

    local_addr: Tuple[str, int]
    def fileno(self) -> int: ...
    def send_ping(self, bridge: Bridge, target: str, addr: Addr, intent: str, purpose: str, ping_type: Any,
                  priority: Any, routing_mode: Any, payload: Optional[Dict[str, Any]] = None,
                  timeout: Optional[float] = None, pod_id: Optional[str] = None, station_id: Optional[str] = None,
                  max_hops: Optional[int] = None) -> int: ...
    def send_heartbeat(self, bridge: Bridge, target: str, addr: Addr, status: Optional[Dict[str, Any]] = None) -> int: ...
    def poll(self, bridge: Bridge) -> List[Tuple[int, bool, Any]]: ...
    def spin(self, bridge: Bridge, budget_us: int) -> List[Tuple[int, bool, Any]]: ...
    def cancel(self, task_id: int) -> None: ...
    def close(self) -> None: ...

class EventStream:
    missed: int
    def next(self, bridge: Bridge) -> int: ...

class Node:
    device_did: str
    running: bool
    local_addr: Optional[Tuple[str, int]]
    metrics_addr: Optional[Tuple[str, int]]
    public_key: Optional[str]
    def __init__(
        self,
        device_did: str,
        config: Optional[TransportConfig] = None,
        heartbeat_interval: float = 30.0,
        discovery_interval: float = 60.0,
        peer_timeout: float = 120.0,
        seed: Optional[int] = None,
    ) -> None: ...
    def start(self, bridge: Bridge) -> int: ...
    def stop(self, bridge: Bridge) -> int: ...
    def send_ping(self, bridge: Bridge, target: str, addr: Addr, intent: str, purpose: str, ping_type: Any,
                  priority: Any, routing_mode: Any, payload: Optional[Dict[str, Any]] = None,
                  timeout: Optional[float] = None, pod_id: Optional[str] = None, station_id: Optional[str] = None,
                  max_hops: Optional[int] = None) -> int: ...
    def send_heartbeat(self, bridge: Bridge, target: str, addr: Addr, status: Optional[Dict[str, Any]] = None) -> int: ...
    def request_socket(self) -> RequestSocket: ...
    def set_trust(self, did: str, trust: float) -> None: ...
    def trust_of(self, did: str) -> float: ...
    def vouch(self, vouched_dids: List[str], vouch_factor: float = 0.7, my_trust: float = 0.9,
              pod_id: Optional[str] = None, reason: str = "") -> Vouch: ...
    def add_rule(self, rule: AirlockRule) -> None: ...
    def pending(self) -> List[PendingPing]: ...
    def approve(self, packet_id: str, raise_trust_to: Optional[float] = None) -> Optional[PendingPing]: ...
    def reject(self, packet_id: str) -> Optional[PendingPing]: ...
    def add_peer(self, did: str, addr: Addr) -> None: ...
    def peers(self) -> List[PeerRecord]: ...
    def stats(self) -> Dict[str, Any]: ...
    def pins(self) -> Dict[str, str]: ...
    def subscribe(self) -> EventStream: ...
    def flush_audit(self, bridge: Bridge) -> int: ...

def generate_key(path: str) -> str:
    """Writes a new Ed25519 key file (PKCS#8 PEM, mode 0600); returns its public key (base64)."""

def public_key(path: str) -> str:
    """The public key (base64) of a key file."""

def validate_did(did: str) -> None:
    """Raises InvalidDidError unless ``did`` is a JIS DID."""
