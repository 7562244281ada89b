"""EventStream: the DRMAA2 notifications of a session's jobs (or of some jobs), as an async
iterator that is subscribed from the moment it is created.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Collection
from types import TracebackType
from typing import TYPE_CHECKING

from ..info import Notification
from ..states import Event, JobState

if TYPE_CHECKING:
    from ._watch import Watcher

__all__ = ["EventStream"]


class EventStream:
    """``async for n in stream``: a ``Notification`` (NEW_STATE) each time a job is seen in a
    new state, in order for each job, from the moment the stream was created.

    The first notification of a job is the state it was in at that moment (or the first one it
    is seen in), the last one its end (DONE or FAILED); a state the job left before anyone
    could look may be skipped, never reordered. A stream over a whole session also reports jobs
    submitted later and never the jobs that had ended before it was created; it runs until
    ``aclose()`` or the session closes. A stream over given jobs (``job.events()``,
    ``array.events()``) ends once all of them have ended (or were reaped).
    """

    def __init__(self, watcher: Watcher, session_name: str, job_ids: Collection[str] | None,
                 ended_before: frozenset[str] = frozenset()) -> None:
        self._watcher = watcher
        self._session_name = session_name
        #: None: every job of the session; else the jobs not ended yet.
        self._left: set[str] | None = None if job_ids is None else set(job_ids)
        self._scope = None if job_ids is None else frozenset(job_ids)
        self._ended_before = ended_before
        self._over: set[str] = set()  # whole session: jobs ended (or reaped) since
        self._seen: dict[str, JobState] = {}
        self._queue: collections.deque[Notification] = collections.deque()
        self._ready: asyncio.Future[None] | None = None
        self._done = False
        watcher.subscribe(self)
        if self._left is not None and not self._left:
            self._finish()

    def __repr__(self) -> str:
        what = "every job" if self._scope is None else f"{len(self._scope)} job(s)"
        return f"<EventStream of {what} of session {self._session_name!r}>"

    # -- what the watcher asks and tells -------------------------------------------------------
    @property
    def whole_session(self) -> bool:
        """Whether the stream follows every job of its session (not a job or an array)."""
        return self._scope is None

    def wants(self, job_id: str) -> bool:
        """Whether a change of this job is news here."""
        if self._done:
            return False
        if self._scope is None:
            return job_id not in self._ended_before and job_id not in self._over
        return job_id in self._left  # type: ignore[operator]

    def watched(self) -> Collection[str]:
        """The jobs to look at again on a resync (those seen, not ended)."""
        if self._scope is None:
            return list(self._seen)
        return self._left  # type: ignore[return-value]

    def offer(self, job_id: str, state: JobState) -> None:
        """The job was just seen in ``state``."""
        if not self.wants(job_id) or self._seen.get(job_id) is state:
            return
        self._seen[job_id] = state
        self._push(Notification(Event.NEW_STATE, job_id, self._session_name, state))
        if state.is_terminal:
            self._gone(job_id)

    def gone(self, job_id: str) -> None:
        """The job has no row in the session: reaped, or (announced by the agent before its
        submitter wrote the row) not there yet, which a stream over the session waits for."""
        if self.wants(job_id) and (self._scope is not None or job_id in self._seen):
            self._gone(job_id)

    def _gone(self, job_id: str) -> None:
        if self._left is not None:
            self._left.discard(job_id)
            if not self._left:
                self._finish()
        else:
            self._seen.pop(job_id, None)
            self._over.add(job_id)

    def _push(self, n: Notification) -> None:
        self._queue.append(n)
        self._wake()

    def _wake(self) -> None:
        if self._ready is not None and not self._ready.done():
            self._ready.set_result(None)

    def _finish(self) -> None:
        """No more notifications (all jobs ended, or the session closed)."""
        if not self._done:
            self._done = True
            self._watcher.unsubscribe(self)
            self._wake()

    # -- the async iterator -----------------------------------------------------------------------
    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> Notification:
        while not self._queue:
            if self._done:
                raise StopAsyncIteration
            self._ready = asyncio.get_running_loop().create_future()
            try:
                await self._ready
            finally:
                self._ready = None
        return self._queue.popleft()

    async def aclose(self) -> None:
        """Stop listening; notifications not read yet are dropped."""
        self._queue.clear()
        self._finish()

    async def __aenter__(self) -> EventStream:
        return self

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()
