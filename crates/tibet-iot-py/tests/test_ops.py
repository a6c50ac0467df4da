"""Operations from Python: ``TransportConfig(metrics_addr=..., mqtt_url=...)``
serves the node's metrics over HTTP and joins it to an MQTT fleet, through
the Rust ``tibet-iot-ops`` library."""

from __future__ import annotations

import asyncio
import socket
import urllib.request
from typing import Optional

import pytest
from conftest import lo

from tibet_iot import ConfigError, IoTNode


def scrape(addr) -> str:
    host, port = addr
    with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=10) as r:
        assert r.status == 200
        return r.read().decode()


def sample(page: str, series: str) -> Optional[float]:
    for line in page.splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    return None


async def test_metrics_are_served_over_http_while_the_node_runs():
    hub = IoTNode("jis:home:hub", config=lo(metrics_addr="127.0.0.1:0"))
    phone = IoTNode("jis:home:phone", config=lo())
    assert hub.metrics_addr is None, "not before start"
    async with hub, phone:
        hub.set_trust("jis:home:phone", 0.9)
        addr = hub.metrics_addr
        assert addr is not None and addr[0] == "127.0.0.1" and addr[1] > 0
        for _ in range(2):
            r = await phone.send_ping("jis:home:hub", hub.local_addr, "light.on", "evening")
            assert r is not None
        page = await asyncio.to_thread(scrape, addr)
        assert sample(page, 'tibet_pings_total{zone="GROEN",decision="accept"}') == 2.0, page
        assert sample(page, "tibet_ping_processing_seconds_count") == 2.0, page
        assert "tibet_mqtt_" not in page, "no fleet, no MQTT series"
    assert hub.metrics_addr is None
    # Stopped: the port is let go.
    with pytest.raises(OSError):
        socket.create_connection(addr, timeout=2).close()


async def test_a_node_in_a_fleet_counts_its_broker_on_the_page():
    # A broker port nobody listens on: the bridge retries in the
    # background and counts each failure; the node runs all the same.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        broker_port = s.getsockname()[1]
    hub = IoTNode(
        "jis:site-a:hub",
        config=lo(metrics_addr="127.0.0.1:0", mqtt_url=f"mqtt://127.0.0.1:{broker_port}"),
    )
    async with hub:
        deadline = asyncio.get_running_loop().time() + 10
        while True:
            page = await asyncio.to_thread(scrape, hub.metrics_addr)
            down = sample(page, "tibet_mqtt_broker_down_total")
            if down is not None and down >= 1:
                break
            assert asyncio.get_running_loop().time() < deadline, page
            await asyncio.sleep(0.05)
        assert sample(page, "tibet_mqtt_published_total") == 0.0, page


def test_bad_operations_settings_are_config_errors():
    with pytest.raises(ConfigError, match="bad MQTT URL"):
        IoTNode("jis:a:b", config=lo(mqtt_url="tcp://broker.lan"))
    with pytest.raises(ConfigError, match="needs the CA certificate"):
        IoTNode("jis:a:b", config=lo(mqtt_url="mqtts://broker.lan"))
    with pytest.raises(ConfigError, match="metrics_addr"):
        IoTNode("jis:a:b", config=lo(metrics_addr="nope"))
