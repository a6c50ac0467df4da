"""Runs the engine's coroutines from asyncio.

Each event loop gets one native ``Bridge``: the engine's runtime queues
finished tasks there and writes a byte to a socket the loop watches; the
loop then resolves the futures on its own thread. Runtime threads never
take the GIL.

Requests (``send_ping``, ``send_heartbeat``) of a running node go through
a request socket of the node's for this loop instead: the loop watches it,
reads the answers itself (the engine handles them as its driver does) and
resolves the futures at once, so an answer wakes the loop's thread and no
other. Timeouts still arrive through the bridge.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Any, Callable, Dict, List, Optional, Tuple

from . import _native


class _LoopBridge:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.native = _native.Bridge()
        self.futures: Dict[int, asyncio.Future[Any]] = {}
        self.loop = loop
        loop.add_reader(self.native.fileno(), self._drain)

    def _drain(self) -> None:
        self._resolve(self.native.drain())

    def _resolve(self, finished: "List[Tuple[int, bool, Any]]") -> None:
        for task_id, ok, value in finished:
            fut = self.futures.pop(task_id, None)
            if fut is None or fut.done():
                continue
            if ok:
                fut.set_result(value)
            else:
                fut.set_exception(value)

    def _done(self, task_id: int, fut: asyncio.Future[Any]) -> None:
        if fut.cancelled():
            self.futures.pop(task_id, None)
            self.native.cancel(task_id)


_bridges: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopBridge]" = weakref.WeakKeyDictionary()


def _bridge(loop: asyncio.AbstractEventLoop) -> _LoopBridge:
    bridge = _bridges.get(loop)
    if bridge is None:
        bridge = _bridges[loop] = _LoopBridge(loop)
    return bridge


def call(method: Callable[..., int], *args: Any) -> "asyncio.Future[Any]":
    """Starts ``method(bridge, *args)`` on the engine; a future of its result."""
    loop = asyncio.get_running_loop()
    bridge = _bridge(loop)
    task_id = method(bridge.native, *args)
    fut = loop.create_future()
    bridge.futures[task_id] = fut
    fut.add_done_callback(lambda f: bridge._done(task_id, f))
    return fut


# How long a lone request waits for its answer without sleeping (µs), and
# how many requests go without spinning after two answers in a row took
# longer. About twice a loopback round trip on a small machine: a LAN
# answer that comes later costs this much CPU at most, twice, then nothing.
SPIN_US = 100
SPIN_BACKOFF = 256


class RequestSockets:
    """A node's request sockets, one per event loop that sent requests."""

    def __init__(self, node: "_native.Node") -> None:
        self._node = node
        self._by_loop: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _native.RequestSocket]" = (
            weakref.WeakKeyDictionary()
        )
        # The loop of the last request and its bridge and socket: a program
        # runs one loop, so most requests skip both dictionaries. The loop
        # is held weakly, as in the dictionaries.
        self._last: "Optional[Tuple[weakref.ref[asyncio.AbstractEventLoop], _LoopBridge, _native.RequestSocket]]" = None
        # Spinning for the answer of a lone request (see ``call``).
        self._spin_us = SPIN_US
        self._misses = 0

    def _open(self, loop: asyncio.AbstractEventLoop, bridge: _LoopBridge) -> "_native.RequestSocket":
        sock = self._node.request_socket()
        poll, native, resolve = sock.poll, bridge.native, bridge._resolve

        def readable() -> None:
            resolve(poll(native))

        loop.add_reader(sock.fileno(), readable)
        self._by_loop[loop] = sock
        return sock

    def _for(self, loop: asyncio.AbstractEventLoop) -> "Tuple[_LoopBridge, _native.RequestSocket]":
        last = self._last
        if last is not None and last[0]() is loop:
            return last[1], last[2]
        bridge = _bridge(loop)
        sock = self._by_loop.get(loop)
        if sock is None:
            sock = self._open(loop, bridge)
        self._last = (weakref.ref(loop), bridge, sock)
        return bridge, sock

    async def call(self, method: str, *args: Any) -> Any:
        """Sends ``RequestSocket.<method>(bridge, *args)`` from this loop's
        request socket and waits for the answer. Cancelling the wait forgets
        the request at once."""
        bridge, sock = self._for(asyncio.get_running_loop())
        task_id = getattr(sock, method)(bridge.native, *args)
        fut = bridge.loop.create_future()
        futures = bridge.futures
        futures[task_id] = fut
        if len(futures) == 1 and self._spin_us:
            # A lone request (a sequential caller): wait briefly without
            # sleeping, so that a fast answer is not delayed by waking the
            # loop's thread from idle. While answers take longer than the
            # budget, stop spinning for a while (SPIN_BACKOFF requests).
            bridge._resolve(sock.spin(bridge.native, self._spin_us))
            if fut.done():
                self._misses = 0
                return fut.result()
            self._misses += 1
            if self._misses >= 2:
                self._spin_us, self._misses = 0, -SPIN_BACKOFF
        elif not self._spin_us:
            self._misses += 1
            if self._misses >= 0:
                self._spin_us, self._misses = SPIN_US, 0
        try:
            return await fut
        except asyncio.CancelledError:
            futures.pop(task_id, None)
            sock.cancel(task_id)
            raise

    def close(self) -> None:
        """Closes the sockets of this loop and of closed loops (a running
        loop of another thread keeps its own until it ends)."""
        try:
            current: Optional[asyncio.AbstractEventLoop] = asyncio.get_running_loop()
        except RuntimeError:
            current = None
        for loop, sock in list(self._by_loop.items()):
            if loop is current:
                loop.remove_reader(sock.fileno())
            elif not loop.is_closed():
                continue
            sock.close()
            del self._by_loop[loop]
            self._last = None
