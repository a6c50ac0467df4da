"""The three Python snippets of the tibet-iot 0.1.1 README, run unchanged
apart from addresses: Quick Start, Mesh Relay, Recording Provenance."""

from __future__ import annotations

import asyncio
import json
import textwrap

from conftest import exchange, lo, run_python

from tibet_iot import IoTNode, PingDecision, PingNode, PingResponse, RoutingMode

QUICK_START = textwrap.dedent(
    """
    import asyncio
    from tibet_iot import IoTNode, TransportConfig

    async def main():
        node = IoTNode("jis:home:hub", config=TransportConfig(bind_port=7150))
        node.set_trust("jis:home:sensor", 0.9)
        await node.start()

        # Send a real ping over UDP
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
)


async def test_quick_start_against_a_listener():
    # The sensor the snippet pings: trusts the hub, so the hub gets GROEN.
    async with IoTNode("jis:home:sensor", config=lo()) as sensor:
        sensor.set_trust("jis:home:hub", 0.9)
        host, port = sensor.local_addr
        code = (
            QUICK_START.replace("bind_port=7150", "bind_port=0")
            .replace('("192.168.1.42", 7150)', f'("{host}", {port})')
        )
        rc, out, err = await run_python(code)
    assert rc == 0, err
    assert out.strip() == "PingDecision.ACCEPT — zone: GROEN", (out, err)


async def test_quick_start_prints_nothing_when_the_sensor_does_not_trust_the_hub():
    async with IoTNode("jis:home:sensor", config=lo()) as sensor:
        host, port = sensor.local_addr
        code = (
            QUICK_START.replace("bind_port=7150", "bind_port=0")
            .replace('("192.168.1.42", 7150)', f'("{host}", {port})')
            .replace("intent=", "timeout=0.5, intent=")
        )
        rc, out, err = await run_python(code)
    assert rc == 0, err
    assert out == ""  # ROOD: a silent drop, send_ping returned None


async def three_nodes():
    """A relay between the sensor and a device the sensor cannot see."""
    relay = IoTNode("jis:home:relay", config=lo())
    device = IoTNode("jis:remote:device", config=lo())
    await relay.start()
    await device.start()
    relay.add_peer("jis:remote:device", device.local_addr)
    # A relay forwards only for senders it would not drop itself.
    relay.set_trust("jis:home:sensor", 0.5)
    device.set_trust("jis:home:sensor", 0.9)
    return relay, device


async def test_mesh_relay_example_packet_reaches_the_target_through_a_relay():
    relay, device = await three_nodes()
    events = device.events()
    try:
        # --- the README's snippet, unchanged ---
        sensor = PingNode("jis:home:sensor")
        packet = sensor.ping(
            target="jis:remote:device",
            intent="data.sync",
            routing_mode=RoutingMode.MESH,
        )
        # --- sent to the relay, the only node the sensor knows ---
        response = await exchange(packet, relay.local_addr)
        assert isinstance(response, PingResponse)
        assert response.in_response_to == packet.packet_id
        assert response.responder_did == "jis:remote:device"
        assert response.decision == PingDecision.ACCEPT
        # The device decided it, one hop away.
        ev = await asyncio.wait_for(events.__anext__(), 5)
        assert (ev.kind, ev.source_did, ev.intent) == ("ping", "jis:home:sensor", "data.sync")
        assert relay.stats()["relay"]["relayed"] >= 1
    finally:
        await relay.stop()
        await device.stop()


async def test_mesh_send_ping_through_a_relay():
    relay, device = await three_nodes()
    try:
        async with IoTNode("jis:home:sensor", config=lo()) as sensor:
            response = await sensor.send_ping(
                target="jis:remote:device",
                addr=relay.local_addr,
                intent="data.sync",
                purpose="Sync through the mesh",
                routing_mode=RoutingMode.MESH,
                timeout=5,
            )
        assert response is not None
        assert response.responder_did == "jis:remote:device"
        assert response.airlock_zone == "GROEN"
    finally:
        await relay.stop()
        await device.stop()


async def test_recording_provenance_with_tibet_core(tmp_path):
    from tibet_core import Token

    async with IoTNode("jis:home:sensor", config=lo()) as sensor_node:
        sensor_node.set_trust("jis:home:hub", 0.9)
        hub = PingNode("jis:home:hub")
        packet = hub.ping(target="jis:home:sensor", intent="temperature.read", purpose="Check room temperature")
        response = await exchange(packet, sensor_node.local_addr)
    assert response.in_response_to == packet.packet_id
    assert response is not None

    # --- the README's snippet, unchanged ---
    from tibet_core import Provider, NetworkBridge

    tibet = Provider(actor="jis:home:hub")
    bridge = NetworkBridge(tibet)

    # Every network event becomes a verifiable token
    bridge.record_ping(packet, response)
    bridge.record_discovery("jis:new:sensor", ("192.168.1.50", 7150), "accepted")
    bridge.record_heartbeat("jis:sensor:temp1", addr=("192.168.1.50", 7150))
    bridge.record_trust_change("jis:sensor:temp1", 0.5, 0.9, "Vouched by admin")

    # Full audit chain of all network activity
    lines = []
    for token in tibet.find(action="discovery"):
        lines.append(f"{token.timestamp}: {token.erachter}")
    # --- end of snippet ---

    assert len(lines) == 1 and "Discovered jis:new:sensor" in lines[0]
    (ping_token,) = tibet.find(action="ping.intent")
    assert isinstance(ping_token, Token)
    assert ping_token.erin["intent"] == "temperature.read"
    assert ping_token.eraan == ["jis:home:hub", "jis:home:sensor"]
    assert ping_token.eromheen["decision"] == "accept"
    assert ping_token.eromheen["trust_score"] == 0.9
    assert ping_token.eromheen["routing_mode"] == "direct"
    assert ping_token.verify()
    json.dumps(ping_token.to_dict())
