"""Runs the engine's coroutines from asyncio.

Each event loop gets one native ``Bridge``: the engine's runtime queues
finished tasks there and writes a byte to a socket the loop watches; the
loop then resolves the futures on its own thread. Runtime threads never
take the GIL.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Any, Callable, Dict

from . import _native


class _LoopBridge:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.native = _native.Bridge()
        self.futures: Dict[int, asyncio.Future[Any]] = {}
        self.loop = loop
        loop.add_reader(self.native.fileno(), self._drain)

    def _drain(self) -> None:
        for task_id, ok, value in self.native.drain():
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


def call(method: Callable[..., int], *args: Any) -> "asyncio.Future[Any]":
    """Starts ``method(bridge, *args)`` on the engine; a future of its result."""
    loop = asyncio.get_running_loop()
    bridge = _bridges.get(loop)
    if bridge is None:
        bridge = _bridges[loop] = _LoopBridge(loop)
    task_id = method(bridge.native, *args)
    fut = loop.create_future()
    bridge.futures[task_id] = fut
    fut.add_done_callback(lambda f: bridge._done(task_id, f))
    return fut
