"""IoTNode: the reference's asyncio node, on the Rust engine."""

from __future__ import annotations

import asyncio
from typing import Any, AsyncIterator, Awaitable, Callable, Dict, List, Optional, Tuple, Union

from . import _native
from ._bridge import RequestSockets, call
from ._enums import PingType, Priority, RoutingMode
from ._errors import ConfigError
from ._types import AirlockRule, PendingPing, Peers, TransportConfig, Vouch

HEARTBEAT_INTERVAL = 30.0
DISCOVERY_INTERVAL = 60.0
PEER_TIMEOUT = 120.0
REQUEST_TIMEOUT = 10.0

Addr = Union[Tuple[str, int], str]


class IoTNode:
    """An IoT node: UDP transport, airlock, peers, discovery and mesh relay.

    The engine runs in Rust on a runtime of its own; this object only
    forwards calls. Nothing here runs per received packet unless
    :meth:`events` or :meth:`on_event` is used.
    """

    def __init__(
        self,
        device_did: str,
        transport: Any = None,
        config: Optional[TransportConfig] = None,
        heartbeat_interval: float = HEARTBEAT_INTERVAL,
        discovery_interval: float = DISCOVERY_INTERVAL,
        peer_timeout: float = PEER_TIMEOUT,
        *,
        seed: Optional[int] = None,
    ) -> None:
        if transport is not None:
            raise ConfigError(
                "transport: this package brings its own UDP transport; configure it with config=TransportConfig(...)"
            )
        self._config = config or TransportConfig()
        self._native = _native.Node(
            device_did,
            self._config,
            heartbeat_interval,
            discovery_interval,
            peer_timeout,
            seed,
        )
        self._callbacks: List[asyncio.Task[None]] = []
        self._requests = RequestSockets(self._native)

    # --- properties (the reference's) ---

    @property
    def device_did(self) -> str:
        return self._native.device_did

    @property
    def running(self) -> bool:
        return self._native.running

    @property
    def peers(self) -> Peers:
        """The live peers now (a snapshot)."""
        return Peers(self._native.peers())

    @property
    def config(self) -> TransportConfig:
        return self._config

    # --- ours ---

    @property
    def local_addr(self) -> Optional[Tuple[str, int]]:
        """The bound ``(host, port)``, while running."""
        return self._native.local_addr

    @property
    def metrics_addr(self) -> Optional[Tuple[str, int]]:
        """The bound ``(host, port)`` of the metrics page
        (``TransportConfig.metrics_addr``), while running."""
        return self._native.metrics_addr

    @property
    def public_key(self) -> Optional[str]:
        """The base64 public key this node signs with (``key_file``)."""
        return self._native.public_key

    def pins(self) -> Dict[str, str]:
        """DIDs pinned to public keys (configured and learnt on first use)."""
        return self._native.pins()

    # --- lifecycle ---

    async def start(self) -> Tuple[str, int]:
        """Binds the sockets and starts the engine; returns the bound address."""
        return await call(self._native.start)

    async def stop(self) -> None:
        """Stops; outstanding ``send_ping`` calls return ``None``."""
        for task in self._callbacks:
            task.cancel()
        if self._callbacks:
            await asyncio.gather(*self._callbacks, return_exceptions=True)
        self._callbacks = []
        await call(self._native.stop)
        self._requests.close()

    async def __aenter__(self) -> "IoTNode":
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # --- sending ---

    async def send_ping(
        self,
        target: str,
        addr: Addr,
        intent: str,
        purpose: str,
        ping_type: PingType = PingType.INTENT,
        priority: Priority = Priority.NORMAL,
        routing_mode: RoutingMode = RoutingMode.DIRECT,
        payload: Optional[Dict[str, Any]] = None,
        timeout: Optional[float] = REQUEST_TIMEOUT,
        *,
        pod_id: Optional[str] = None,
        station_id: Optional[str] = None,
        max_hops: Optional[int] = None,
    ):
        """Sends a ping and waits for the answer: a ``PingResponse``, or
        ``None`` when none came within ``timeout`` seconds (a ROOD drop
        looks exactly like this)."""
        args = (target, addr, intent, purpose, ping_type, priority, routing_mode,
                payload, timeout, pod_id, station_id, max_hops)
        if not self._native.running:
            return await call(self._native.send_ping, *args)
        # The loop reads the answer itself (see _bridge.py).
        return await self._requests.call("send_ping", *args)

    async def send_heartbeat(
        self,
        target: str = "broadcast",
        addr: Optional[Addr] = None,
        status: Optional[Dict[str, Any]] = None,
    ):
        """Sends a heartbeat to ``target`` at ``addr`` and returns its answer
        (or ``None``). Without ``addr``, heartbeats go to every live peer
        (the engine also does this every ``heartbeat_interval``)."""
        if addr is None:
            answers = [
                call(self._native.send_heartbeat, p.did, p.addr, status)
                for p in self.peers
                if target in ("broadcast", p.did)
            ]
            await asyncio.gather(*answers, return_exceptions=True)
            return None
        if not self._native.running:
            return await call(self._native.send_heartbeat, target, addr, status)
        return await self._requests.call("send_heartbeat", target, addr, status)

    # --- trust and policy ---

    def set_trust(self, did: str, trust: float) -> None:
        """Sets the trust of ``did`` (0..1)."""
        self._native.set_trust(did, trust)

    def trust_of(self, did: str) -> float:
        """The trust of ``did`` as the airlock would compute it now."""
        return self._native.trust_of(did)

    def vouch(
        self,
        vouched_dids: List[str],
        vouch_factor: float = 0.7,
        my_trust: float = 0.9,
        pod_id: Optional[str] = None,
        reason: str = "",
    ) -> Vouch:
        """Vouches for devices: they inherit ``my_trust * vouch_factor``."""
        return self._native.vouch(vouched_dids, vouch_factor, my_trust, pod_id, reason)

    def add_rule(self, rule: AirlockRule) -> None:
        """Adds an airlock rule."""
        self._native.add_rule(rule)

    def add_peer(self, did: str, addr: Addr) -> None:
        """Records a peer by hand (it then gets heartbeats and relayed traffic)."""
        self._native.add_peer(did, addr)

    # --- review queue ---

    def pending(self) -> List[PendingPing]:
        """Pings waiting for review (GEEL), oldest first."""
        return self._native.pending()

    def approve(self, packet_id: str, raise_trust_to: Optional[float] = None) -> Optional[PendingPing]:
        """Approves a pending ping; ``raise_trust_to`` also sets its sender's trust."""
        return self._native.approve(packet_id, raise_trust_to)

    def reject(self, packet_id: str) -> Optional[PendingPing]:
        """Rejects a pending ping."""
        return self._native.reject(packet_id)

    # --- receiving ---

    def events(self) -> AsyncIterator["_native.NodeEvent"]:
        """The node's events from now on: ``async for ev in node.events()``.

        ``ev.kind`` is ``"ping"`` for each ping decided by this node (with
        ``source_did``, ``intent``, ``decision``, ``zone``, ``trust``,
        ``addr``), and ``peer_joined``, ``relayed``, ... for the rest. The
        engine builds events only while someone listens.
        """
        # Subscribed now, not at the first iteration: nothing in between is missed.
        return _iterate(self._native.subscribe())

    def on_event(
        self,
        callback: Callable[[Any], Union[None, Awaitable[None]]],
        kinds: Optional[List[str]] = None,
    ) -> asyncio.Task[None]:
        """Calls ``callback(ev)`` (a function or coroutine function) on the
        running loop for every event (of ``kinds``, if given) until
        :meth:`stop`. An exception in the callback is logged and the stream
        goes on."""
        stream = self.events()

        async def pump() -> None:
            import logging

            log = logging.getLogger("tibet_iot")
            async for ev in stream:
                if kinds is not None and ev.kind not in kinds:
                    continue
                try:
                    r = callback(ev)
                    if asyncio.iscoroutine(r):
                        await r
                except Exception:  # noqa: BLE001 - a callback must not end the stream
                    log.exception("event callback failed")

        task = asyncio.get_running_loop().create_task(pump())
        self._callbacks.append(task)
        return task

    # --- stats ---

    def stats(self) -> Dict[str, Any]:
        """Counters: the reference's keys (``device_did``, ``running``,
        ``peers``, ``relay``, ``pending_requests``) and the engine's own."""
        s = self._native.stats()
        s["device_did"] = self.device_did
        s["running"] = self.running
        return s

    async def flush_audit(self) -> None:
        """Waits until every provenance token so far is on disk."""
        await call(self._native.flush_audit)

    def __repr__(self) -> str:
        return f"IoTNode({self.device_did!r}, running={self.running})"


async def _iterate(stream: "_native.EventStream") -> AsyncIterator["_native.NodeEvent"]:
    while True:
        ev = await call(stream.next)
        if ev is None:
            return
        yield ev
