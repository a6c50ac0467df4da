"""Operations from Python: ``TransportConfig(metrics_addr=..., mqtt_url=...)``
serves the node's metrics over HTTP and joins it to an MQTT fleet, through
the Rust ``tibet-iot-ops`` library."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import urllib.request
from pathlib import Path
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


def test_mqtt_tls_files_are_checked_before_start(tmp_path):
    missing = tmp_path / "no-such-ca.pem"
    with pytest.raises(ConfigError, match=f"cannot read MQTT CA file {missing}"):
        IoTNode("jis:a:b", config=lo(mqtt_url="mqtts://broker.lan", mqtt_ca_file=str(missing)))
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    cert = tmp_path / "client.pem"
    cert.write_text("-----BEGIN CERTIFICATE-----\n")
    key = tmp_path / "client.key"
    key.write_text("-----BEGIN PRIVATE KEY-----\n")
    key.chmod(0o644)
    with pytest.raises(ConfigError, match="readable by group or others"):
        IoTNode("jis:a:b", config=lo(mqtt_url="mqtts://broker.lan", mqtt_ca_file=str(ca),
                                     mqtt_cert_file=str(cert), mqtt_key_file=str(key)))
    key.chmod(0o600)
    with pytest.raises(ConfigError, match="go together"):
        IoTNode("jis:a:b", config=lo(mqtt_url="mqtts://broker.lan", mqtt_ca_file=str(ca), mqtt_cert_file=str(cert)))
    with pytest.raises(ConfigError, match="client certificate needs TLS"):
        IoTNode("jis:a:b", config=lo(mqtt_url="mqtt://broker.lan", mqtt_cert_file=str(cert), mqtt_key_file=str(key)))
    # All there: a node with TLS to its broker (and a client certificate).
    IoTNode("jis:a:b", config=lo(mqtt_url="mqtts://broker.lan", mqtt_ca_file=str(ca),
                                 mqtt_cert_file=str(cert), mqtt_key_file=str(key)))
    # A CA file alone turns TLS on for mqtt://.
    IoTNode("jis:a:b", config=lo(mqtt_url="mqtt://broker.lan", mqtt_ca_file=str(ca)))


MOSQUITTO = next((p for p in ("/usr/sbin/mosquitto", "/usr/bin/mosquitto") if Path(p).exists()), None)


def make_certs(d: Path) -> None:
    """A CA, a broker certificate for 127.0.0.1 and a client certificate."""

    def ssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)

    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    ssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "1", "-subj", "/CN=test-ca")
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    for name in ("broker", "client"):
        ssl("req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}")
        ssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", f"{name}.pem", "-days", "1", "-extfile", "san.ext")
    (d / "client.key").chmod(0o600)


async def wait_for_series(node: IoTNode, series: str, at_least: float) -> str:
    deadline = asyncio.get_running_loop().time() + 15
    while True:
        page = await asyncio.to_thread(scrape, node.metrics_addr)
        value = sample(page, series)
        if value is not None and value >= at_least:
            return page
        assert asyncio.get_running_loop().time() < deadline, page
        await asyncio.sleep(0.05)


@pytest.mark.skipif(MOSQUITTO is None or shutil.which("openssl") is None, reason="needs mosquitto and openssl")
async def test_a_node_joins_a_tls_broker_that_wants_its_client_certificate(tmp_path):
    make_certs(tmp_path)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(
        f"user root\nlistener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
        f"cafile {tmp_path}/ca.pem\ncertfile {tmp_path}/broker.pem\nkeyfile {tmp_path}/broker.key\n"
        "require_certificate true\n"
    )
    broker = subprocess.Popen([MOSQUITTO, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = asyncio.get_running_loop().time() + 10
        while True:  # listening before the nodes start, so no failure is counted first
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert broker.poll() is None, "mosquitto exited"
                assert asyncio.get_running_loop().time() < deadline, "mosquitto does not listen"
                await asyncio.sleep(0.05)
        tls = dict(mqtt_url=f"mqtts://127.0.0.1:{port}", mqtt_ca_file=str(tmp_path / "ca.pem"),
                   metrics_addr="127.0.0.1:0")
        # With its client certificate: connected and subscribed.
        hub = IoTNode("jis:site-a:hub", config=lo(
            mqtt_cert_file=str(tmp_path / "client.pem"), mqtt_key_file=str(tmp_path / "client.key"), **tls))
        async with hub:
            page = await wait_for_series(hub, "tibet_mqtt_subscribed_total", 1)
            assert sample(page, "tibet_mqtt_broker_down_total") == 0.0, page
        # Without one the broker refuses the handshake: counted, retried.
        lock = IoTNode("jis:site-a:lock", config=lo(**tls))
        async with lock:
            page = await wait_for_series(lock, "tibet_mqtt_broker_down_total", 1)
            assert sample(page, "tibet_mqtt_subscribed_total") == 0.0, page
    finally:
        broker.terminate()
        broker.wait(timeout=10)
