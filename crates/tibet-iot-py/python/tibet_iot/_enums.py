"""The protocol's enums; every value equals the tibet-ping reference's."""

from __future__ import annotations

from enum import Enum


class PingType(Enum):
    """What a ping is for."""

    DISCOVER = "discover"
    INTENT = "intent"
    HEARTBEAT = "heartbeat"
    RELAY = "relay"


class Priority(Enum):
    """Urgency of a ping."""

    URGENT = 3
    NORMAL = 2
    LAZY = 1


class RoutingMode(Enum):
    """How a ping travels."""

    DIRECT = "direct"
    MESH = "mesh"
    BROADCAST = "broadcast"


class PingDecision(Enum):
    """The airlock's decision on a ping."""

    ACCEPT = "accept"
    PENDING = "pending"
    REJECT = "reject"


class AirlockZone(Enum):
    """The three trust zones."""

    GROEN = "GROEN"
    GEEL = "GEEL"
    ROOD = "ROOD"
