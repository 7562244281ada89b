"""A few threads of the session manager's own for blocking calls, awaited on the event loop.

Unlike ``run_in_executor``, a thread hands the loop the outcomes of the calls it ran back to
back in one wake-up, a call whose awaiting task was cancelled before it began never runs, and a
further thread starts only when the calls running are slow (an engine taking its time), not
for a queue of quick ones, which one thread runs faster than two contending for the store.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from ..errors import InvalidSessionError

T = TypeVar("T")

#: A thread hands over the outcomes of at most this many calls at once (so a long queue still
#: completes progressively).
BATCH = 64
#: Another thread starts (up to the size) when calls wait behind one that has run this long.
SLOW_CALL = 0.02

_Outcome = tuple[asyncio.Future[Any], bool, Any]  # (future, raised, result or exception)


class Threads:
    """Up to ``size`` threads running blocking calls in the order they were asked for."""

    def __init__(self, size: int, name: str) -> None:
        self._size = size
        self._name = name
        self._queue: collections.deque[tuple[asyncio.AbstractEventLoop, asyncio.Future[Any],
                                             Callable[..., Any], tuple[Any, ...]]] = \
            collections.deque()
        self._cond = threading.Condition()
        self._threads: list[threading.Thread] = []
        self._idle = 0
        self._running: dict[int, float] = {}  # thread ident -> when its current call began
        self._grow: asyncio.TimerHandle | None = None
        self._closed = False

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` on one of the threads."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        with self._cond:
            if self._closed:
                raise InvalidSessionError(f"the {self._name} threads are shut down")
            self._queue.append((loop, future, fn, args))
            if not self._threads:
                self._start()
            elif self._idle:
                self._cond.notify()
            elif len(self._threads) < self._size and self._grow is None:
                self._grow = loop.call_later(SLOW_CALL, self._grow_if_slow)
        return await future

    def _start(self) -> None:
        t = threading.Thread(target=self._work, daemon=True,
                             name=f"{self._name}-{len(self._threads)}")
        self._threads.append(t)
        t.start()

    def _grow_if_slow(self) -> None:
        with self._cond:
            self._grow = None
            if not self._queue or self._idle or self._closed or len(self._threads) >= self._size:
                return
            now = time.monotonic()
            if all(now - began >= SLOW_CALL for began in self._running.values()):
                self._start()
            else:  # the calls are quick: look again later, if they keep waiting
                self._grow = self._queue[0][0].call_later(SLOW_CALL, self._grow_if_slow)

    def _work(self) -> None:
        me = threading.get_ident()
        done: dict[asyncio.AbstractEventLoop, list[_Outcome]] = {}
        while True:
            with self._cond:
                self._running.pop(me, None)
                if not self._queue:
                    self._hand_over(done)
                    if self._closed:
                        return
                    self._idle += 1
                    self._cond.wait()
                    self._idle -= 1
                    continue
                loop, future, fn, args = self._queue.popleft()
                self._running[me] = time.monotonic()
            if future.cancelled():  # its caller gave up before it began
                continue
            try:
                outcome: _Outcome = (future, False, fn(*args))
            except BaseException as e:  # noqa: BLE001 - handed to the caller
                outcome = (future, True, e)
            batch = done.setdefault(loop, [])
            batch.append(outcome)
            if len(batch) >= BATCH:
                self._hand_over(done)

    @staticmethod
    def _hand_over(done: dict[asyncio.AbstractEventLoop, list[_Outcome]]) -> None:
        for loop, outcomes in done.items():
            with contextlib.suppress(RuntimeError):  # that loop is closed: nobody awaits
                loop.call_soon_threadsafe(_settle, outcomes)
        done.clear()

    def shutdown(self) -> None:
        """Let the threads end once the calls asked for have run (does not wait for them)."""
        with self._cond:
            self._closed = True
            if self._grow is not None:
                self._grow.cancel()
            self._cond.notify_all()


def _settle(outcomes: list[_Outcome]) -> None:
    for future, raised, value in outcomes:
        if future.cancelled():
            continue
        if raised:
            future.set_exception(value)
        else:
            future.set_result(value)
