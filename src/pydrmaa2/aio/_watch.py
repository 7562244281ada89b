"""The watcher of an async job session: every wait and event stream of the session on one event
loop, woken by one agent connection (and one reader thread per engine feed), looking at the
states of only the jobs that changed, one look at a time on one worker thread.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Awaitable, Callable, Collection, Iterable, Sequence
from typing import Any

from .._book import RESYNC_INTERVAL, SUBMITTED
from ..errors import DrmCommunicationError, InvalidArgumentError, InvalidSessionError
from ..errors import TimeoutError as Drmaa2TimeoutError
from ..session import OUTAGE_BACKOFF_FIRST, OUTAGE_BACKOFF_MAX, JobSession
from ..states import JobState
from ._events import EventStream
from ._feeds import AgentStream, FeedReader
from ._threads import Threads

log = logging.getLogger("pydrmaa2")

#: Job ids per store query (below SQLite's limit of bound parameters).
LOOK_CHUNK = 5000
#: The agent connection watches nothing once no wait nor stream has been left for this long
#: (so an idle session is not woken by every job of the store; waits in turn keep it watching).
IDLE_AFTER = 1.0
#: At most this many ids of other sessions' jobs are remembered as not this session's.
FOREIGN_KEPT = 100_000
#: A stream over a whole session on an engine whose new jobs nobody announces (the agent
#: announces those of the process tracker) lists the session's jobs this often to find them.
RELIST_INTERVAL = 1.0

if issubclass(Drmaa2TimeoutError, asyncio.TimeoutError):  # Python >= 3.11: one TimeoutError
    AsyncTimeoutError: type[Drmaa2TimeoutError] = Drmaa2TimeoutError
else:
    class AsyncTimeoutError(Drmaa2TimeoutError, asyncio.TimeoutError):  # type: ignore[no-redef]
        """pydrmaa2's TimeoutError that ``except asyncio.TimeoutError`` catches too."""

# A look's answer per job: its state, sub_state and engine id (None unless the engine has it).
Seen = tuple[JobState, str, "str | None"]


class _Wait:
    """One awaiting ``wait_*`` call: its jobs, what it waits for and its future."""

    __slots__ = ("ids", "order", "left", "started", "any", "timeout", "future", "since",
                 "unlooked", "expired", "timer")

    def __init__(self, ids: Sequence[str], started: bool, any_: bool, timeout: float | None,
                 future: asyncio.Future[str | None], since: int) -> None:
        self.ids = list(dict.fromkeys(ids))
        self.order = {j: i for i, j in enumerate(self.ids)}
        self.left = set(self.ids)
        self.started, self.any, self.timeout = started, any_, timeout
        self.future = future
        self.since = since  # looks numbered above this one began after the wait did
        self.unlooked = set(self.ids)  # as the sync waits, a wait looks at least once
        self.expired = False
        self.timer: asyncio.TimerHandle | None = None

    def reached(self, state: JobState) -> bool:
        return state.is_started if self.started else state.is_terminal


class Watcher:
    """All waits and event streams of one job session; see the module docstring."""

    def __init__(self, session: JobSession, looks: Threads,
                 blocking: Callable[..., Awaitable[Any]]) -> None:
        self.session = session
        self.name = session.session_name
        self.tracker = session._tracker
        self._store = session._store
        self._book = session._book
        self._looks = looks
        self._blocking = blocking
        self.loop: asyncio.AbstractEventLoop | None = None
        self.waits: dict[str, set[_Wait]] = {}
        self.streams: weakref.WeakSet[EventStream] = weakref.WeakSet()
        self.outage: DrmCommunicationError | None = None
        self._dirty: set[str] = set()
        self._relist = False
        self._looker: asyncio.Task[None] | None = None
        self._seq = 0  # looks begun
        self._look: asyncio.Future[Any] | None = None
        self._resync: asyncio.TimerHandle | None = None
        self._foreign: set[str] = set()  # jobs of other sessions announced by the agent
        self._closed = False
        self._agent = AgentStream(session._agent, self._on_keys, self._on_outage, blocking)
        # Engine feeds (trackers that do not run on the agent): the engine ids watched, by job.
        self._feed: FeedReader | None = None
        # The agent announces the engine's changes too (the process tracker): no engine feed.
        self._agent_announces = self.tracker.agent_keys([]) is not None
        self._tids: dict[str, str] = {}
        self._aimed: frozenset[str] = frozenset()
        self._covering: dict[int, set[str]] = {}
        self._poll_interval: float | None = None
        self._poll: asyncio.TimerHandle | None = None
        self._idle: asyncio.TimerHandle | None = None

    async def start(self) -> None:
        """Connect to the agent (it is asked for changes once something waits or listens)."""
        self.loop = asyncio.get_running_loop()
        await self._agent.open()
        if not self._agent_announces:
            self._feed = FeedReader(self.tracker, self.loop, self._on_fire, self._on_aimed,
                                    self._on_outage)

    # -- waits ------------------------------------------------------------------------------------
    async def wait(self, ids: Sequence[str], started: bool, any_: bool,
                   timeout: float | None) -> str | None:
        """Until one (``any_``) or all of these jobs have started or ended: the first such job
        for ``any_``. AsyncTimeoutError once ``timeout`` seconds have passed (after one look at
        least); cancelling the caller ends this wait only."""
        self._check_open()
        if asyncio.get_running_loop() is not self.loop:
            raise InvalidSessionError(
                f"session {self.name!r} belongs to another event loop (the one that opened it)")
        w = _Wait(ids, started, any_, timeout, self.loop.create_future(), self._seq)
        for job_id in w.ids:
            self.waits.setdefault(job_id, set()).add(w)
        if timeout is not None:
            w.timer = self.loop.call_later(timeout, self._expire, w)
        try:
            self._mark(w.ids)
            return await w.future
        finally:
            if w.timer is not None:
                w.timer.cancel()
            for job_id in w.ids:
                waits = self.waits.get(job_id)
                if waits is not None:
                    waits.discard(w)
                    if not waits:
                        del self.waits[job_id]
            self._maybe_idle()

    def _expire(self, w: _Wait) -> None:
        w.timer = None
        if w.future.done():
            return
        if w.unlooked and self.outage is None:
            w.expired = True  # raised once every job was looked at
        else:
            w.future.set_exception(self._timeout(w))

    def _timeout(self, w: _Wait) -> Drmaa2TimeoutError:
        message = str(JobSession._timeout(w.ids, w.any, w.started, w.timeout, self.outage))
        return AsyncTimeoutError(message)

    # -- event streams ----------------------------------------------------------------------------
    def subscribe(self, stream: EventStream) -> None:
        self._check_open()
        self.streams.add(stream)
        if stream.whole_session:
            self._relist = True
            self._kick()
        else:
            self._mark(stream.watched())

    def unsubscribe(self, stream: EventStream) -> None:
        self.streams.discard(stream)
        self._maybe_idle()

    def _maybe_idle(self) -> None:
        if not self._closed and self._idle is None and not (self.waits or self.streams):
            assert self.loop is not None
            self._idle = self.loop.call_later(IDLE_AFTER, self._go_idle)

    def _go_idle(self) -> None:
        self._idle = None
        if self.waits or self.streams or self._closed or \
                (self._looker is not None and not self._looker.done()):
            return
        assert self.loop is not None
        self.loop.create_task(self._agent.watch_all(False))

    def _session_streams(self) -> bool:
        return any(s.whole_session for s in self.streams)

    # -- what to look at --------------------------------------------------------------------------
    def _wanted(self, job_id: str) -> bool:
        return job_id in self.waits or any(s.wants(job_id) for s in self.streams)

    def added(self, job_ids: Iterable[str]) -> None:
        """Jobs this program just submitted: news for the streams over the whole session."""
        if self._session_streams():
            self._mark(job_ids)

    def _mark(self, job_ids: Iterable[str]) -> None:
        if self._closed:
            return
        self._dirty.update(job_ids)
        self._kick()

    def _mark_all(self) -> None:
        ids = set(self.waits)
        for s in list(self.streams):
            ids.update(s.watched())
        self._relist = self._relist or self._session_streams()
        self._mark(ids)

    def _kick(self) -> None:
        if not self._closed and (self._looker is None or self._looker.done()):
            assert self.loop is not None
            self._looker = self.loop.create_task(self._looking())

    def _on_keys(self, keys: list[str] | None) -> None:
        """A message of the agent: the jobs it names may have changed (None: any may have)."""
        if keys is None:
            self._mark_all()
            return
        ids = set()
        for key in keys:
            kind, _, job_id = key.partition(":")
            if kind == "job" and job_id not in self._foreign and self._wanted(job_id):
                ids.add(job_id)
        if ids:
            self._mark(ids)

    def _on_fire(self) -> None:
        self._mark(self._tids)

    def _on_aimed(self, version: int, poll: float | None) -> None:
        # Subscribed, now look again: what changed before the feed covered them is seen too.
        done = [v for v in self._covering if v <= version]
        self._mark(j for v in done for j in self._covering.pop(v))
        self._poll_interval = poll
        self._schedule_poll()

    def _schedule_poll(self) -> None:
        """An engine with no events: look at its watched jobs every interval of its PollFeed."""
        if self._poll is None and self._poll_interval and self._tids and not self._closed:
            assert self.loop is not None
            self._poll = self.loop.call_later(self._poll_interval, self._on_poll)

    def _on_poll(self) -> None:
        self._poll = None
        self._on_fire()
        self._schedule_poll()

    def _on_outage(self, error: DrmCommunicationError) -> None:
        if self.outage is None:
            log.warning("waiting through an outage: %s", error)
        self.outage = error

    # -- looking ----------------------------------------------------------------------------------
    async def _looking(self) -> None:
        assert self.loop is not None
        backoff = 0.0
        while (self._dirty or self._relist) and not self._closed:
            # Subscribed first, then look: a change after the look is announced.
            await self._agent.watch_all(True)
            ids = {j for j in self._dirty if self._wanted(j)}
            relist, self._dirty, self._relist = self._relist, set(), False
            if not ids and not relist:
                continue
            self._seq += 1
            seq = self._seq
            self._look = asyncio.ensure_future(
                self._looks.run(self._read, ids, relist, self._session_streams()))
            try:
                found, foreign = await self._look
            except DrmCommunicationError as e:
                # The engine went away: ride it out; only a deadline or a job state ends a wait.
                self._on_outage(e)
                self._dirty |= ids
                self._relist = self._relist or relist
                backoff = min(OUTAGE_BACKOFF_MAX, backoff * 2 or OUTAGE_BACKOFF_FIRST)
                await asyncio.sleep(backoff)
                continue
            except Exception as e:  # noqa: BLE001 - the waits on these jobs hear of it
                self._fail(ids, e)
                continue
            finally:
                self._look = None
            backoff, self.outage = 0.0, None
            if len(self._foreign) > FOREIGN_KEPT:
                self._foreign.clear()  # a cache: other sessions' ids are looked up again
            self._foreign |= foreign
            self._deliver(ids | found.keys() if relist else ids, found, seq)
        self._schedule_resync()
        self._maybe_idle()

    def _read(self, ids: set[str], relist: bool, foreign: bool) -> tuple[dict[str, Seen], set[str]]:
        """On the look thread: the rows and states of these jobs (all of the session's with
        ``relist``); with ``foreign``, which of the ids missing belong to another session."""
        if relist:
            rows = self._store.job_rows(self.name)
        else:
            order = sorted(ids)
            rows = [r for i in range(0, len(order), LOOK_CHUNK)
                    for r in self._store.job_rows(self.name, order[i:i + LOOK_CHUNK])]
        states = self._book.states_of(rows)
        found = {r.id: (*states[r.id], r.tracker_id if r.phase == SUBMITTED else None)
                 for r in rows}
        others = set()
        if foreign:
            for job_id in ids - found.keys():
                session = self._store.job_session(job_id)
                if session is not None and session != self.name:
                    others.add(job_id)
        return found, others

    def _deliver(self, looked: set[str], found: dict[str, Seen], seq: int) -> None:
        touched: set[_Wait] = set()
        for job_id in looked:
            touched.update(self.waits.get(job_id, ()))
        for w in touched:
            if w.future.done():
                continue
            mine = looked & w.left
            if seq > w.since:  # a look begun before the wait counts for what it found only
                w.unlooked -= mine
            gone = sorted(mine - found.keys())
            if gone:
                w.future.set_exception(InvalidArgumentError(
                    f"job {gone[0]!r} is not in session {self.name!r}"))
                continue
            hits = [j for j in mine if w.reached(found[j][0])]
            if w.any and hits:
                w.future.set_result(min(hits, key=w.order.__getitem__))
            elif not w.any:
                w.left.difference_update(hits)
                if not w.left:
                    w.future.set_result(None)
            if not w.future.done() and w.expired and not w.unlooked:
                w.future.set_exception(self._timeout(w))
        streams = list(self.streams)
        if streams:
            for job_id in sorted(found, key=_numeric):
                for s in streams:
                    s.offer(job_id, found[job_id][0])
            for job_id in looked - found.keys():
                for s in streams:
                    s.gone(job_id)
        if self._feed is not None:
            self._cover(found)

    def _cover(self, found: dict[str, Seen]) -> None:
        """Aim the engine feed at the engine ids of the jobs watched and not ended."""
        for job_id, (state, _, tid) in found.items():
            if tid is not None and not state.is_terminal and self._wanted(job_id):
                self._tids[job_id] = tid
            else:
                self._tids.pop(job_id, None)
        for job_id in [j for j in self._tids if not self._wanted(j)]:
            del self._tids[job_id]
        want = frozenset(self._tids.values())
        if want != self._aimed:
            new = {j for j, t in self._tids.items() if t not in self._aimed}
            self._aimed = want
            version = self._feed.aim(want)  # type: ignore[union-attr]
            if new:
                self._covering[version] = new

    def _fail(self, ids: Collection[str], error: Exception) -> None:
        log.warning("a look at jobs of session %s failed: %r", self.name, error)
        for job_id in ids:
            for w in list(self.waits.get(job_id, ())):
                if not w.future.done():
                    w.future.set_exception(error)

    def _schedule_resync(self) -> None:
        """A backstop look at every job watched, as the sync waits have (RESYNC_INTERVAL)."""
        if self._closed or self._resync is not None or not (self.waits or self.streams):
            return
        assert self.loop is not None
        relist = self._session_streams() and not self._agent_announces
        self._resync = self.loop.call_later(RELIST_INTERVAL if relist else RESYNC_INTERVAL,
                                            self._on_resync)

    def _on_resync(self) -> None:
        self._resync = None
        self._mark_all()

    # -- closing ----------------------------------------------------------------------------------
    def _check_open(self) -> None:
        if self._closed:
            raise InvalidSessionError(f"session {self.name!r} is closed")

    async def close(self) -> None:
        """End every wait (InvalidSessionError) and stream, the agent connection and the feed."""
        self._closed = True
        for timer in (self._resync, self._poll, self._idle):
            if timer is not None:
                timer.cancel()
        for waits in list(self.waits.values()):
            for w in waits:
                if not w.future.done():
                    w.future.set_exception(InvalidSessionError(
                        f"session {self.name!r} was closed during the wait"))
        for s in list(self.streams):
            s._finish()
        if self._look is not None:  # a look in progress uses the tracker: let it end
            await asyncio.wait([self._look])
        if self._looker is not None:
            self._looker.cancel()
        await self._agent.close()
        if self._feed is not None:
            self._feed.close()
            await self._blocking(self._feed.join)


def _numeric(job_id: str) -> tuple[int, str]:
    return (int(job_id), "") if job_id.isdigit() else (-1, job_id)
