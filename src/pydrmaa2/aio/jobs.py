"""Async jobs, job arrays and reservations: handles over the sync ones, whose blocking calls
run on their session manager's threads and whose waits are their session's watcher's.

What the sync API reads as a property from the store or the engine is awaited here:
``await job.state``, ``await job.info``, ``await job.template``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Coroutine, Iterator
from typing import TYPE_CHECKING, Any

from ..info import JobInfo, ReservationInfo
from ..jobs import Job, JobArray, Reservation
from ..states import JobState
from ..templates import JobTemplate, ReservationTemplate
from ._events import EventStream

if TYPE_CHECKING:
    from .session import AsyncJobSession, AsyncReservationSession

__all__ = ["AsyncJob", "AsyncJobArray", "AsyncReservation"]


class AsyncJob:
    """A job of an async job session (``pydrmaa2.Job``'s names, awaited)."""

    __slots__ = ("id", "_session", "_job")

    def __init__(self, session: AsyncJobSession, job_id: str) -> None:
        self.id = job_id
        self._session = session
        self._job = Job(session._sync, job_id)

    def __repr__(self) -> str:
        return f"<AsyncJob {self.id} of session {self.session_name!r}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AsyncJob) and \
            (other.id, other.session_name) == (self.id, self.session_name)

    def __hash__(self) -> int:
        return hash((self.id, self.session_name))

    @property
    def session_name(self) -> str:
        """The name of the job session the job belongs to."""
        return self._session.session_name

    @property
    def session(self) -> AsyncJobSession:
        """The async job session the job belongs to."""
        return self._session

    @property
    def sync(self) -> Job:
        """The same job as a blocking ``pydrmaa2.Job`` (for code on another thread)."""
        return self._job

    @property
    def template(self) -> Coroutine[Any, Any, JobTemplate]:
        """``await job.template``: the template the job was submitted with."""
        return self._session._blocking(lambda: self._job.template)

    @property
    def state(self) -> Coroutine[Any, Any, JobState]:
        """``await job.state``: the job's current state."""
        return self._session._blocking(lambda: self._job.state)

    async def get_state(self) -> tuple[JobState, str]:
        """The job's state and the engine's own word for it."""
        return await self._session._blocking(self._job.get_state)

    @property
    def info(self) -> Coroutine[Any, Any, JobInfo]:
        """``await job.info``: everything known about the job now."""
        return self._session._blocking(lambda: self._job.info)

    async def suspend(self) -> None:
        """Stop a running job until ``resume``."""
        await self._session._blocking(self._job.suspend)

    async def resume(self) -> None:
        """Continue a suspended job."""
        await self._session._blocking(self._job.resume)

    async def hold(self) -> None:
        """Keep a queued job from starting until ``release``."""
        await self._session._blocking(self._job.hold)

    async def release(self) -> None:
        """Let a held job start."""
        await self._session._blocking(self._job.release)

    async def terminate(self) -> None:
        """End the job (it ends FAILED); a job that has not started never will."""
        await self._session._blocking(self._job.terminate)

    async def reap(self) -> None:
        """Forget a finished job, in the store and in the engine."""
        await self._session._blocking(self._job.reap)

    async def wait_started(self, timeout: float | None = None) -> JobInfo:
        """Until the job runs (or has ended); TimeoutError when ``timeout`` passes."""
        await self._session.wait_all_started([self], timeout)
        return await self.info

    async def wait_terminated(self, timeout: float | None = None) -> JobInfo:
        """Until the job has ended; TimeoutError when ``timeout`` passes."""
        await self._session.wait_all_terminated([self], timeout)
        return await self._session._ended_info(self.id)

    async def output(self, follow: bool = False, tail: int | None = None) -> AsyncIterator[str]:
        """``async for line in job.output()``: the job's stdout as ``pydrmaa2.Job.output``
        gives it, each read on the session manager's threads."""
        lines = await self._session._blocking(self._job.output, follow, tail)
        async for line in _lines(self._session, lines):
            yield line

    async def error(self, follow: bool = False, tail: int | None = None) -> AsyncIterator[str]:
        """``async for line in job.error()``: the job's stderr, as ``output``."""
        lines = await self._session._blocking(self._job.error, follow, tail)
        async for line in _lines(self._session, lines):
            yield line

    def events(self) -> EventStream:
        """``async for n in job.events()``: the job's state changes from now on, beginning
        with its state now; the stream ends with the job."""
        return self._session._stream([self.id])


async def _lines(session: AsyncJobSession, lines: Iterator[str]) -> AsyncIterator[str]:
    """A blocking iterator of lines, each next line read on the session's threads."""
    while True:
        line = await session._blocking(next, lines, None)
        if line is None:
            return
        yield line


class AsyncJobArray:
    """The tasks of one ``run_bulk_jobs`` call, controlled together (``pydrmaa2.JobArray``)."""

    def __init__(self, session: AsyncJobSession, array: JobArray) -> None:
        self.id = array.id
        self._session = session
        self._array = array
        self._jobs = [AsyncJob(session, j.id) for j in array.jobs]

    def __repr__(self) -> str:
        return f"<AsyncJobArray {self.id} of {len(self._jobs)} tasks in {self.session_name!r}>"

    @property
    def session_name(self) -> str:
        """The name of the job session the array belongs to."""
        return self._session.session_name

    @property
    def jobs(self) -> list[AsyncJob]:
        """One AsyncJob per task, in index order."""
        return list(self._jobs)

    @property
    def sync(self) -> JobArray:
        """The same array as a blocking ``pydrmaa2.JobArray``."""
        return self._array

    @property
    def template(self) -> Coroutine[Any, Any, JobTemplate]:
        """``await array.template``: the template shared by every task."""
        return self._session._blocking(lambda: self._array.template)

    async def suspend(self) -> None:
        """Suspend every running task."""
        await self._session._blocking(self._array.suspend)

    async def resume(self) -> None:
        """Resume every suspended task."""
        await self._session._blocking(self._array.resume)

    async def hold(self) -> None:
        """Hold every task that has not started."""
        await self._session._blocking(self._array.hold)

    async def release(self) -> None:
        """Release every held task."""
        await self._session._blocking(self._array.release)

    async def terminate(self) -> None:
        """End every task that has not ended."""
        await self._session._blocking(self._array.terminate)

    async def reap(self) -> None:
        """Forget every task (all must have ended)."""
        await self._session._blocking(self._array.reap)

    def events(self) -> EventStream:
        """``async for n in array.events()``: the state changes of every task from now on;
        the stream ends when the last task has ended."""
        return self._session._stream([j.id for j in self._jobs])


class AsyncReservation:
    """An advance reservation of an async reservation session (``pydrmaa2.Reservation``)."""

    def __init__(self, session: AsyncReservationSession, reservation: Reservation) -> None:
        self.id = reservation.id
        self.tracker_id = reservation.tracker_id
        self.template: ReservationTemplate = reservation.template
        self._session = session
        self._reservation = reservation

    def __repr__(self) -> str:
        return f"<AsyncReservation {self.id} ({self.tracker_id}) of {self.session_name!r}>"

    @property
    def session_name(self) -> str:
        """The name of the reservation session."""
        return self._reservation.session_name

    @property
    def info(self) -> Coroutine[Any, Any, ReservationInfo]:
        """``await reservation.info``: what the engine says about it now."""
        return self._session._blocking(lambda: self._reservation.info)

    async def terminate(self) -> None:
        """Cancel the reservation."""
        await self._session._blocking(self._reservation.terminate)
