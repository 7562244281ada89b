"""The change feeds of an async session: the agent's announcements read by the event loop with
asyncio streams, and an engine's blocking ChangeFeed read by one thread for all of a session's
waits. Both only say "look again"; the watcher decides at which jobs.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import os
import threading
from collections.abc import Awaitable, Callable, Collection
from typing import Any

from .._book import MultiFeed
from ..agent import AgentClient, AgentImpostorError, peer_creds
from ..errors import DrmCommunicationError
from ..session import OUTAGE_BACKOFF_FIRST, OUTAGE_BACKOFF_MAX
from ..trackers import ChangeFeed, JobTracker, PollFeed

log = logging.getLogger("pydrmaa2")

#: What an agent connection watches while nothing waits: a key the agent never announces.
IDLE_KEYS = ["aio:idle"]
#: The longest line the agent may send: one message names every job that changed in one turn
#: of its loop (10,000 jobs ending together make ~150 kB).
LINE_LIMIT = 64 * 1024 * 1024


def _backoff(last: float) -> float:
    return min(OUTAGE_BACKOFF_MAX, last * 2 or OUTAGE_BACKOFF_FIRST)


class AgentStream:
    """One connection to the agent, read by the event loop, watching every key while the
    session has waits or listeners (``watch_all``) and none otherwise.

    ``on_change(keys)`` gets the keys of each message; ``on_change(None)`` follows a reconnection
    (changes may have been missed meanwhile); ``on_outage(error)`` reports a lost agent, which is
    reconnected (and restarted) with backoff until ``close``.
    """

    def __init__(self, client: AgentClient, on_change: Callable[[list[str] | None], None],
                 on_outage: Callable[[DrmCommunicationError], None],
                 blocking: Callable[..., Awaitable[Any]]) -> None:
        self._client = client
        self._on_change = on_change
        self._on_outage = on_outage
        self._blocking = blocking
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._pump: asyncio.Task[None] | None = None
        self._all = False  # what the agent was asked for last: every key, or none
        self._acks: collections.deque[asyncio.Future[None]] = collections.deque()
        self._closed = False

    async def open(self) -> None:
        """Connect (starting the agent if none runs), watching nothing yet."""
        await self._connect()
        self._pump = asyncio.get_running_loop().create_task(self._read())

    async def watch_all(self, on: bool) -> None:
        """Watch every key (``on``) or none; returns once the agent has the request, so no
        change after it is missed. While the agent is being reconnected it returns at once:
        the reconnection watches as asked and reports ``on_change(None)``."""
        if on != self._all:
            self._all = on
            if self._writer is None:
                return
            ack = asyncio.get_running_loop().create_future()
            self._acks.append(ack)
            self._writer.write(self._watch_line())
        elif self._acks and self._writer is not None:
            ack = self._acks[-1]  # the same request is on its way
        else:
            return
        # Shared by every caller waiting for it: one cancelled caller must not cancel it.
        await asyncio.shield(ack)

    def _watch_line(self) -> bytes:
        keys = ["*"] if self._all else IDLE_KEYS
        return json.dumps({"op": "watch", "keys": keys}).encode() + b"\n"

    async def _connect(self) -> None:
        path = os.fspath(self._client.path)
        try:
            reader, writer = await asyncio.open_unix_connection(path, limit=LINE_LIMIT)
        except OSError:
            # No agent answers: start one (a file lock and a spawn, so on a worker thread).
            (await self._blocking(self._client.connect)).close()
            try:
                reader, writer = await asyncio.open_unix_connection(path, limit=LINE_LIMIT)
            except OSError as e:
                raise DrmCommunicationError(f"cannot reach the pydrmaa2 agent at {path}: {e}") from e
        try:
            uid = peer_creds(writer.get_extra_info("socket"))[1]
            if uid != os.getuid():
                raise AgentImpostorError(
                    f"the process listening at {path} runs as uid {uid}, not as this user "
                    f"(uid {os.getuid()}): refusing to talk to it")
            writer.write(self._watch_line())
            await writer.drain()
            reply = json.loads(await reader.readline() or b"null")
            if reply != {}:
                raise DrmCommunicationError(f"the pydrmaa2 agent at {path} refused to watch: {reply!r}")
        except (OSError, ValueError) as e:
            writer.close()
            raise DrmCommunicationError(f"cannot watch jobs through the agent at {path}: {e}") from e
        except BaseException:
            writer.close()
            raise
        self._reader, self._writer = reader, writer

    async def _read(self) -> None:
        while not self._closed:
            try:
                assert self._reader is not None
                line = await self._reader.readline()
                if not line:
                    raise ConnectionResetError("the agent closed the connection")
                msg = json.loads(line)
                if msg == {}:  # the agent has a watch request, in the order they were sent
                    if self._acks:
                        _resolve(self._acks.popleft())
                    continue
                keys = msg.get("changed") if isinstance(msg, dict) else None
                if isinstance(keys, list) and keys:
                    self._on_change([k for k in keys if isinstance(k, str)])
            except (OSError, ValueError) as e:
                if self._closed:
                    return
                self._on_outage(DrmCommunicationError(
                    f"lost the pydrmaa2 agent at {self._client.path}: {e}"))
                await self._reconnect()

    async def _reconnect(self) -> None:
        self._drop()
        wait = 0.0
        while not self._closed:
            wait = _backoff(wait)
            await asyncio.sleep(wait)
            try:
                await self._connect()
            except DrmCommunicationError as e:
                self._on_outage(e)
                continue
            log.info("the pydrmaa2 agent at %s answers again", self._client.path)
            while self._acks:  # the new connection watches as last asked
                _resolve(self._acks.popleft())
            self._on_change(None)
            return

    def _drop(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None
        while self._acks:  # the reconnection will watch as last asked; nobody waits for it
            _resolve(self._acks.popleft())

    async def close(self) -> None:
        self._closed = True
        if self._pump is not None:
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump
        self._drop()


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class FeedReader:
    """One thread that reads a tracker's blocking ChangeFeed over the engine ids a watcher
    wants, re-aimed when that set changes: one thread per session, however many waits.

    Calls back on the event loop: ``on_fire()`` when a watched job may have changed,
    ``on_aimed(version, poll)`` once the feed covers the set of ``aim``'s call number
    ``version`` (``poll``: the tracker has no events, only a PollFeed of that interval, which
    the loop keeps as a timer rather than a thread), ``on_outage(error)`` when the feed broke
    (it is opened again with backoff).
    """

    def __init__(self, tracker: JobTracker, loop: asyncio.AbstractEventLoop,
                 on_fire: Callable[[], None], on_aimed: Callable[[int, float | None], None],
                 on_outage: Callable[[DrmCommunicationError], None]) -> None:
        self._tracker = tracker
        self._loop = loop
        self._on_fire, self._on_aimed, self._on_outage = on_fire, on_aimed, on_outage
        self._lock = threading.Lock()
        self._want: frozenset[str] = frozenset()
        self._version = 0
        self._kick = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def aim(self, tracker_ids: Collection[str]) -> int:
        """Watch these engine ids from now on; returns the version ``on_aimed`` will confirm."""
        with self._lock:
            self._want = frozenset(tracker_ids)
            self._version += 1
            version = self._version
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, daemon=True,
                                            name=f"pydrmaa2-aio-{self._tracker.scheme}-feed")
            self._thread.start()
        self._kick.set()
        return version

    def _call(self, fn: Callable[..., None], *args: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
            self._loop.call_soon_threadsafe(fn, *args)

    def _run(self) -> None:
        feed: ChangeFeed | None = None
        aimed: frozenset[str] = frozenset()
        done, wait, broken = 0, 0.0, False
        try:
            while not self._stop.is_set():
                with self._lock:
                    want, version = self._want, self._version
                try:
                    if version != done:
                        poll = None
                        if want != aimed or broken:
                            if feed is not None:
                                feed.close()
                                feed = None
                            aimed = frozenset()
                            if want:
                                feed = self._tracker.watch(sorted(want))
                                if isinstance(feed, PollFeed):
                                    poll = feed.interval
                                    feed.close()
                                    feed = None
                            aimed = want
                        done, wait = version, 0.0
                        self._call(self._on_aimed, version, poll)
                        if broken:  # what changed while the feed was down is looked at now
                            broken = False
                            self._call(self._on_fire)
                    if feed is None:
                        self._kick.wait()
                        self._kick.clear()
                    # A new aim is noticed within a slice; meanwhile the old feed still fires.
                    elif feed.wait(MultiFeed.SLICE):
                        self._call(self._on_fire)
                except Exception as e:  # noqa: BLE001 - any broken feed: report, open it again
                    if feed is not None:
                        with contextlib.suppress(Exception):
                            feed.close()
                        feed = None
                    done, broken = -1, True  # subscribe again, then look again
                    self._call(self._on_outage, e if isinstance(e, DrmCommunicationError)
                               else DrmCommunicationError(f"a change feed broke: {e!r}"))
                    wait = _backoff(wait)
                    self._stop.wait(wait)
        finally:
            if feed is not None:
                with contextlib.suppress(Exception):
                    feed.close()

    def close(self) -> None:
        """Stop the thread (it ends within a slice of its feed); does not wait for it."""
        self._stop.set()
        self._kick.set()

    def join(self) -> None:
        if self._thread is not None:
            self._thread.join()
