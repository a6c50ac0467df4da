"""tibet_iot: TIBET IoT transport (intent pings over UDP, trust-gated
airlock, LAN discovery, mesh relay, signed identity) on the Rust engine of
tibet-iot, with the API of the Python reference (tibet-ping 0.3.5).

Quick start::

    import asyncio
    from tibet_iot import IoTNode, TransportConfig

    async def main():
        node = IoTNode("jis:home:hub", config=TransportConfig(bind_port=7150))
        node.set_trust("jis:home:sensor", 0.9)
        await node.start()
        response = await node.send_ping(
            target="jis:home:sensor",
            addr=("192.168.1.42", 7150),
            intent="temperature.read",
            purpose="Check room temperature",
        )
        if response:
            print(f"{response.decision} — zone: {response.airlock_zone}")
        await node.stop()

    asyncio.run(main())
"""

from ._enums import AirlockZone, PingDecision, PingType, Priority, RoutingMode
from ._errors import (
    BindError,
    CodecError,
    ConfigError,
    InternalError,
    InvalidDidError,
    KeyFileError,
    NotRunningError,
    SendError,
    TibetIotError,
    VouchError,
)
from ._native import (
    NodeEvent,
    PacketCodec,
    PingNode,
    PingPacket,
    PingResponse,
    generate_key,
    public_key,
    validate_did,
)
from ._node import IoTNode
from ._types import (
    DEFAULT_PORT,
    DISCOVERY_PORT,
    MULTICAST_GROUP,
    MULTICAST_TTL,
    AirlockRule,
    Beacon,
    BeaconResponse,
    PeerRecord,
    Peers,
    PendingPing,
    TransportConfig,
    Vouch,
)

__all__ = [
    "IoTNode",
    "TransportConfig",
    "PingNode",
    "PingPacket",
    "PingResponse",
    "PacketCodec",
    "NodeEvent",
    "PingType",
    "Priority",
    "RoutingMode",
    "PingDecision",
    "AirlockZone",
    "AirlockRule",
    "PendingPing",
    "Vouch",
    "Beacon",
    "BeaconResponse",
    "PeerRecord",
    "Peers",
    "DEFAULT_PORT",
    "DISCOVERY_PORT",
    "MULTICAST_GROUP",
    "MULTICAST_TTL",
    "generate_key",
    "public_key",
    "validate_did",
    "TibetIotError",
    "InvalidDidError",
    "ConfigError",
    "BindError",
    "KeyFileError",
    "NotRunningError",
    "SendError",
    "CodecError",
    "VouchError",
    "InternalError",
]
