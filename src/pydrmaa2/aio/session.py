"""Async sessions: the sync sessions' names and semantics, awaited on one event loop.

Blocking calls (submission, control, engine queries) run on a small pool of the manager's
threads; waits and event streams are the session's watcher's, which uses no thread per waiter.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar, cast

from .._book import TERMINAL
from ..errors import InvalidArgumentError, InvalidSessionError
from ..info import JobInfo, MachineInfo, Notification, QueueInfo, ReservationInfo, Version
from ..jobs import Job, JobArray, check_timeout
from ..session import (
    DEFAULT_CONTACT,
    JobSession,
    MonitoringSession,
    ReservationSession,
    SessionManager,
)
from ..states import Capability
from ..templates import JobTemplate, ReservationTemplate, describe
from ._events import EventStream
from ._threads import Threads
from ._watch import Watcher
from .jobs import AsyncJob, AsyncJobArray, AsyncReservation

if TYPE_CHECKING:
    from typing_extensions import Self  # typing's from Python 3.11

__all__ = ["AsyncSessionManager", "AsyncJobSession", "AsyncMonitoringSession",
           "AsyncReservationSession"]

log = logging.getLogger("pydrmaa2")

T = TypeVar("T")

#: Threads for blocking calls (submissions, controls, engine queries), per manager: one, and a
#: second while calls wait behind a slow one (see _threads.SLOW_CALL).
CALL_THREADS = 2
#: Threads that read job states for the watchers of all of a manager's sessions: one, so
#: looks never compete with each other for the store.
LOOK_THREADS = 1


def _check_jobs(jobs: Any) -> list[AsyncJob | Job]:
    """``jobs`` (AsyncJob or Job objects, not empty) as a list; else InvalidArgumentError."""
    if isinstance(jobs, (AsyncJobArray, JobArray)):
        raise InvalidArgumentError(f"jobs: {jobs!r} is a JobArray; pass its .jobs")
    if isinstance(jobs, (AsyncJob, Job, str, bytes, Mapping)) or not isinstance(jobs, Iterable):
        raise InvalidArgumentError(f"jobs must be a list of Job objects, got {describe(jobs)}")
    jobs = list(jobs)
    if not jobs:
        raise InvalidArgumentError("nothing to wait for: the list of jobs is empty")
    for i, job in enumerate(jobs):
        if not isinstance(job, (AsyncJob, Job)):
            raise InvalidArgumentError(f"jobs[{i}] is not a Job: {describe(job)}")
    return cast("list[AsyncJob | Job]", jobs)


class _AsyncSession:
    """What every async session shares: its sync session, blocking calls, ``async with``."""

    _sync: JobSession | MonitoringSession | ReservationSession

    def __init__(self, manager: AsyncSessionManager) -> None:
        self._manager = manager
        self._closed = False

    @property
    def contact(self) -> str:
        """The contact string the session was created with."""
        return self._sync.contact

    def _check_open(self) -> None:
        if self._closed:
            raise InvalidSessionError(f"session {self._sync._name!r} is closed")

    async def _blocking(self, fn: Callable[..., T], *args: Any) -> T:
        self._check_open()
        return await self._manager._blocking(fn, *args)

    async def close(self) -> None:
        """Close the session; its jobs stay in the store."""
        self._check_open()
        self._closed = True
        self._manager._sessions.discard(self)
        await self._manager._blocking(self._sync.close)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        if not self._closed:
            await self.close()


class AsyncJobSession(_AsyncSession):
    """A named, persistent set of jobs on one tracker (``pydrmaa2.JobSession``, awaited).

    It belongs to the event loop it was opened on: its waits and event streams are served there.
    """

    _sync: JobSession

    def __init__(self, manager: AsyncSessionManager, session: JobSession) -> None:
        super().__init__(manager)
        self._sync = session
        self._watcher = Watcher(session, manager._looks, manager._blocking)

    def __repr__(self) -> str:
        return f"<AsyncJobSession {self.session_name!r} on {self.contact!r}>"

    @property
    def session_name(self) -> str:
        """The session's name."""
        return self._sync.session_name

    @property
    def sync(self) -> JobSession:
        """The same session as a blocking ``pydrmaa2.JobSession`` (for code on another thread)."""
        return self._sync

    @property
    def job_categories(self) -> Coroutine[Any, Any, list[str]]:
        """``await session.job_categories``: what ``JobTemplate.job_category`` may name."""
        return self._blocking(lambda: self._sync.job_categories)

    def supports(self, capability: Capability) -> bool:
        """Whether this session's tracker offers ``capability``."""
        return self._sync.supports(capability)

    # -- submission and queries -------------------------------------------------------------------
    async def run_job(self, template: JobTemplate) -> AsyncJob:
        """Submit one job (see ``JobSession.run_job``)."""
        job = await self._blocking(self._sync.run_job, template)
        self._watcher.added([job.id])
        return AsyncJob(self, job.id)

    async def run_bulk_jobs(self, template: JobTemplate, begin: int, end: int, step: int = 1,
                            max_parallel: int | None = None) -> AsyncJobArray:
        """Submit tasks ``begin..end`` by ``step``, at most ``max_parallel`` at once."""
        array = await self._blocking(self._sync.run_bulk_jobs, template, begin, end, step,
                                     max_parallel)
        self._watcher.added(j.id for j in array.jobs)
        return AsyncJobArray(self, array)

    async def get_jobs(self, filter: JobInfo | None = None) -> list[AsyncJob]:  # noqa: A002
        """The session's jobs; with ``filter``, those whose JobInfo matches."""
        jobs = await self._blocking(self._sync.get_jobs, filter)
        return [AsyncJob(self, j.id) for j in jobs]

    async def get_job_array(self, array_id: str) -> AsyncJobArray:
        """The job array with this id (from any program that used this session)."""
        return AsyncJobArray(self, await self._blocking(self._sync.get_job_array, array_id))

    async def _ended_info(self, job_id: str) -> JobInfo:
        """The JobInfo of a job seen ended: kept in its row, so read on the loop (no engine
        call, no thread); from a thread if the row says otherwise (reaped meanwhile...)."""
        self._check_open()
        row = self._sync._store.job_state(job_id)
        if row is not None and row[0] == TERMINAL:
            return self._sync._job_info(job_id)
        return await self._blocking(self._sync._job_info, job_id)

    # -- waiting ----------------------------------------------------------------------------------
    async def _wait(self, jobs: Sequence[AsyncJob | Job], started: bool, any_: bool,
                    timeout: float | None) -> AsyncJob | Job | None:
        self._check_open()
        jobs, timeout = _check_jobs(jobs), check_timeout(timeout)
        first = await self._watcher.wait([j.id for j in jobs], started, any_, timeout)
        return None if first is None else next(j for j in jobs if j.id == first)

    async def wait_any_started(self, jobs: Sequence[AsyncJob], timeout: float | None = None) -> AsyncJob:
        """The first of ``jobs`` to have started; TimeoutError when ``timeout`` passes."""
        return await self._wait(jobs, True, True, timeout)  # type: ignore[return-value]

    async def wait_any_terminated(self, jobs: Sequence[AsyncJob],
                                  timeout: float | None = None) -> AsyncJob:
        """The first of ``jobs`` to have ended; TimeoutError when ``timeout`` passes."""
        return await self._wait(jobs, False, True, timeout)  # type: ignore[return-value]

    async def wait_all_started(self, jobs: Sequence[AsyncJob], timeout: float | None = None) -> None:
        """Until every job has started; TimeoutError when ``timeout`` passes."""
        await self._wait(jobs, True, False, timeout)

    async def wait_all_terminated(self, jobs: Sequence[AsyncJob],
                                  timeout: float | None = None) -> None:
        """Until every job has ended; TimeoutError when ``timeout`` passes."""
        await self._wait(jobs, False, False, timeout)

    # -- notifications ----------------------------------------------------------------------------
    def events(self) -> EventStream:
        """``async for n in session.events()``: a Notification each time a job of the session
        is seen in a new state, from this call on (jobs submitted later included); the jobs not
        ended now are reported first in their present state."""
        self._check_open()
        # The jobs ended before this call are not news; which they are is read now, on the
        # loop (one store read), so a job that ends right after is.
        return EventStream(self._watcher, self.session_name, None,
                           frozenset(self._sync._ended()))

    def _stream(self, job_ids: list[str]) -> EventStream:
        self._check_open()
        return EventStream(self._watcher, self.session_name, job_ids)

    async def close(self) -> None:
        """Close the session: waits still running raise InvalidSessionError, event streams
        end; its jobs stay in the store."""
        self._check_open()
        await self._watcher.close()
        await super().close()


class AsyncMonitoringSession(_AsyncSession):
    """A read-only view of everything an engine runs (``pydrmaa2.MonitoringSession``)."""

    _sync: MonitoringSession

    def __init__(self, manager: AsyncSessionManager, session: MonitoringSession) -> None:
        super().__init__(manager)
        self._sync = session

    async def get_all_jobs(self, filter: JobInfo | None = None) -> list[JobInfo]:  # noqa: A002
        """Every job of the engine (as JobInfo) that matches ``filter``."""
        return await self._blocking(self._sync.get_all_jobs, filter)

    async def get_all_machines(self, names: Iterable[str] | None = None) -> list[MachineInfo]:
        """The engine's machines, or just those named."""
        return await self._blocking(self._sync.get_all_machines, names)

    async def get_all_queues(self, names: Iterable[str] | None = None) -> list[QueueInfo]:
        """The engine's queues, or just those named."""
        return await self._blocking(self._sync.get_all_queues, names)

    async def get_all_reservations(self) -> list[ReservationInfo]:
        """Every reservation of the engine."""
        return await self._blocking(self._sync.get_all_reservations)


class AsyncReservationSession(_AsyncSession):
    """A named, persistent set of advance reservations (``pydrmaa2.ReservationSession``)."""

    _sync: ReservationSession

    def __init__(self, manager: AsyncSessionManager, session: ReservationSession) -> None:
        super().__init__(manager)
        self._sync = session

    @property
    def session_name(self) -> str:
        """The session's name."""
        return self._sync.session_name

    async def request_reservation(self, template: ReservationTemplate) -> AsyncReservation:
        """Ask the engine for a reservation; raises if it cannot be granted."""
        return AsyncReservation(self, await self._blocking(self._sync.request_reservation,
                                                           template))

    async def get_reservation(self, reservation_id: str) -> AsyncReservation:
        """The reservation with this id."""
        return AsyncReservation(self, await self._blocking(self._sync.get_reservation,
                                                           reservation_id))

    async def get_reservations(self) -> list[AsyncReservation]:
        """Every reservation of the session."""
        return [AsyncReservation(self, r)
                for r in await self._blocking(self._sync.get_reservations)]


class AsyncSessionManager:
    """Entry point of the async API (``pydrmaa2.SessionManager``'s names, awaited): creates,
    opens and destroys sessions in the store at ``home``, shared with the sync API and every
    other program of the user.

    Its sessions' blocking calls run on its few threads (``CALL_THREADS`` + ``LOOK_THREADS``),
    so ``close()`` (or leaving ``async with``) closes the sessions it opened too.
    """

    def __init__(self, home: str | Path | None = None) -> None:
        self._sync = SessionManager(home)
        self._calls = Threads(CALL_THREADS, "pydrmaa2-aio-call")
        self._looks = Threads(LOOK_THREADS, "pydrmaa2-aio-look")
        self._sessions: set[_AsyncSession] = set()
        self._callbacks: list[Callable[[Notification], Any]] = []
        self._listeners: dict[AsyncJobSession, asyncio.Task[None]] = {}
        self._closed = False

    drms_name = SessionManager.drms_name
    drmaa_name = SessionManager.drmaa_name

    def __repr__(self) -> str:
        return f"<AsyncSessionManager of {self.home}>"

    @property
    def home(self) -> Path:
        """The directory of the store (and of the agent's socket)."""
        return self._sync.home

    @property
    def sync(self) -> SessionManager:
        """The same store as a blocking ``pydrmaa2.SessionManager``."""
        return self._sync

    @property
    def drms_version(self) -> Version:
        """The version of pydrmaa2."""
        return self._sync.drms_version

    @property
    def drmaa_version(self) -> Version:
        """The DRMAA version implemented: 2.0."""
        return self._sync.drmaa_version

    def supports(self, capability: Capability, contact: str = DEFAULT_CONTACT) -> bool:
        """Whether the tracker of ``contact`` (default: process) offers ``capability``."""
        return self._sync.supports(capability, contact)

    async def _blocking(self, fn: Callable[..., T], *args: Any) -> T:
        if self._closed:
            raise InvalidSessionError(f"the session manager of {self.home} is closed")
        return await self._calls.run(fn, *args)

    # -- job sessions -----------------------------------------------------------------------------
    @property
    def job_session_names(self) -> list[str]:
        """Names of every job session in the store (one store read)."""
        return self._sync.job_session_names

    @property
    def job_session_contacts(self) -> dict[str, str]:
        """Each job session's name and the contact it was created with, oldest first."""
        return self._sync.job_session_contacts

    def job_session_of(self, job_id: str) -> str:
        """The name of the job session holding the job with this id."""
        return self._sync.job_session_of(job_id)

    async def find_job(self, job_id: str) -> AsyncJob:
        """The job with this id, in a newly opened session of the job session holding it."""
        return AsyncJob(await self.open_job_session(self.job_session_of(job_id)), job_id)

    async def create_job_session(self, name: str, contact: str | None = None) -> AsyncJobSession:
        """Create a persistent job session on the tracker of ``contact`` (default: process)."""
        return await self._job_session(
            await self._blocking(self._sync.create_job_session, name, contact))

    async def open_job_session(self, name: str) -> AsyncJobSession:
        """Open an existing job session, from any program, after any restart."""
        return await self._job_session(await self._blocking(self._sync.open_job_session, name))

    async def _job_session(self, session: JobSession) -> AsyncJobSession:
        js = AsyncJobSession(self, session)
        try:
            await js._watcher.start()
        except BaseException:
            await self._blocking(session.close)
            raise
        self._sessions.add(js)
        if self._callbacks:
            self._listen(js)
        return js

    async def destroy_job_session(self, name: str) -> None:
        """Forget a job session and its jobs (see ``SessionManager.destroy_job_session``)."""
        await self._blocking(self._sync.destroy_job_session, name)

    # -- reservation sessions ---------------------------------------------------------------------
    @property
    def reservation_session_names(self) -> list[str]:
        """Names of every reservation session in the store."""
        return self._sync.reservation_session_names

    async def create_reservation_session(self, name: str,
                                         contact: str | None = None) -> AsyncReservationSession:
        """Create a reservation session on a tracker that can reserve (e.g. slurm)."""
        return self._track(AsyncReservationSession(
            self, await self._blocking(self._sync.create_reservation_session, name, contact)))

    async def open_reservation_session(self, name: str) -> AsyncReservationSession:
        """Open an existing reservation session."""
        return self._track(AsyncReservationSession(
            self, await self._blocking(self._sync.open_reservation_session, name)))

    async def destroy_reservation_session(self, name: str) -> None:
        """Forget a reservation session (its reservations stay in the engine)."""
        await self._blocking(self._sync.destroy_reservation_session, name)

    # -- monitoring -------------------------------------------------------------------------------
    async def open_monitoring_session(self, contact: str | None = None) -> AsyncMonitoringSession:
        """A read-only view of everything the engine of ``contact`` runs."""
        return self._track(AsyncMonitoringSession(
            self, await self._blocking(self._sync.open_monitoring_session, contact)))

    def _track(self, session: T) -> T:
        self._sessions.add(session)  # type: ignore[arg-type]
        return session

    # -- notifications ----------------------------------------------------------------------------
    def register_event_notification(self, callback: Callable[[Notification], Any]) -> None:
        """Call ``callback(Notification)`` on this event loop whenever a job of a job session
        opened here changes state (a coroutine function is awaited)."""
        if not callable(callback):
            raise InvalidArgumentError(f"callback {callback!r} is not callable")
        self._callbacks.append(callback)
        if len(self._callbacks) == 1:
            for js in list(self._sessions):
                if isinstance(js, AsyncJobSession):
                    self._listen(js)

    def _listen(self, js: AsyncJobSession) -> None:
        self._listeners[js] = asyncio.get_running_loop().create_task(self._notify(js.events()))

    async def _notify(self, stream: EventStream) -> None:
        async for n in stream:
            for cb in list(self._callbacks):
                try:
                    result = cb(n)
                    if inspect.isawaitable(result):
                        await result
                except Exception:
                    log.exception("notification callback %r failed", cb)

    # -- closing ----------------------------------------------------------------------------------
    async def close(self) -> None:
        """Close every session opened here and stop this manager's threads. Idempotent."""
        if self._closed:
            return
        for session in list(self._sessions):
            with contextlib.suppress(InvalidSessionError):
                await session.close()
        for task in self._listeners.values():
            task.cancel()
        self._closed = True
        self._sync.close()
        # The threads end once their last call returns; the loop is not blocked meanwhile.
        self._calls.shutdown()
        self._looks.shutdown()

    async def __aenter__(self) -> AsyncSessionManager:
        return self

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()
