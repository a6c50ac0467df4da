"""Shared set-up: loopback configs, the CLI binary, subprocess helpers."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from pathlib import Path
from typing import List, Optional

import pytest

from tibet_iot import TransportConfig

REPO = Path(__file__).resolve().parents[3]


def lo(**kw) -> TransportConfig:
    """A loopback config: 127.0.0.1, a free port, no multicast discovery."""
    kw.setdefault("bind_host", "127.0.0.1")
    kw.setdefault("bind_port", 0)
    kw.setdefault("discovery", False)
    return TransportConfig(**kw)


def cli_binary() -> Optional[Path]:
    """The `tibet-iot` binary: $TIBET_IOT_BIN, else the cargo target dir's."""
    env = os.environ.get("TIBET_IOT_BIN")
    if env:
        return Path(env)
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    for profile in ("debug", "release"):
        p = target / profile / "tibet-iot"
        if p.exists():
            return p
    found = shutil.which("tibet-iot")
    return Path(found) if found else None


@pytest.fixture(autouse=True)
def state_home(tmp_path, monkeypatch) -> Path:
    """Each test's `tibet-iot` commands keep their state (node keys, replay
    horizons, locks) under a directory of their own."""
    home = tmp_path / "state"
    monkeypatch.setenv("XDG_STATE_HOME", str(home))
    monkeypatch.delenv("STATE_DIRECTORY", raising=False)
    return home


@pytest.fixture
def cli() -> Path:
    path = cli_binary()
    if path is None or not path.exists():
        if os.environ.get("TIBET_REQUIRE_INTEROP") == "1":
            pytest.fail("the tibet-iot binary is missing (cargo build -p tibet-iot-cli, or set TIBET_IOT_BIN)")
        pytest.skip("tibet-iot binary not built")
    return path


async def run(*args: str, timeout: float = 30.0, env: Optional[dict] = None) -> tuple[int, str, str]:
    """Runs a command to its end; returns (exit code, stdout, stderr)."""
    proc = await asyncio.create_subprocess_exec(
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    return proc.returncode, out.decode(), err.decode()


async def run_python(code: str, timeout: float = 30.0) -> tuple[int, str, str]:
    """Runs `code` in a fresh interpreter (this one's venv)."""
    return await run(sys.executable, "-c", code, timeout=timeout)


class Listener:
    """A `tibet-iot listen` process on loopback; `port` once it listens."""

    def __init__(self, proc: asyncio.subprocess.Process, port: int) -> None:
        self.proc = proc
        self.port = port
        self.lines: List[str] = []

    async def stop(self) -> str:
        self.proc.terminate()
        out, _ = await asyncio.wait_for(self.proc.communicate(), 10)
        return out.decode()


async def start_cli_listener(cli: Path, did: str, *flags: str) -> Listener:
    proc = await asyncio.create_subprocess_exec(
        str(cli), "listen", "--did", did, "--bind", "127.0.0.1", "--port", "0", "--no-discovery", *flags,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode()
    # "listening on 127.0.0.1:PORT as DID"
    assert line.startswith("listening on "), line
    port = int(line.split()[2].rsplit(":", 1)[1])
    return Listener(proc, port)


async def exchange(packet, addr, timeout: float = 5.0):
    """Sends `packet` from a plain UDP socket to `addr` and returns the
    decoded answer (`asyncio.TimeoutError` if none comes)."""
    import socket

    from tibet_iot import PacketCodec

    codec = PacketCodec()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.bind(("127.0.0.1", 0))
        sock.setblocking(False)
        loop = asyncio.get_running_loop()
        await loop.sock_sendto(sock, codec.encode_packet(packet), tuple(addr))
        data = await asyncio.wait_for(loop.sock_recv(sock, 65536), timeout)
    finally:
        sock.close()
    return codec.decode(data)
