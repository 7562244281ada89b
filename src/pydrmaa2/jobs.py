"""Jobs, job arrays and reservations: thin handles whose policy lives in their session.

Also the checks of what the session methods take about them: job lists, timeouts, array ranges.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, cast

from .errors import InvalidArgumentError
from .info import JobInfo, ReservationInfo
from .states import JobState
from .templates import JobTemplate, ReservationTemplate, describe
from .trackers.base import MAX_ARRAY_SIZE, MAX_TASK_INDEX

if TYPE_CHECKING:
    from .session import JobSession, ReservationSession

__all__ = ["Job", "JobArray", "Reservation"]


class Job:
    """A job of a job session; every property asks the store or the tracker afresh."""

    __slots__ = ("id", "_session")

    def __init__(self, session: JobSession, job_id: str) -> None:
        self.id = job_id
        self._session = session

    def __repr__(self) -> str:
        return f"<Job {self.id} of session {self.session_name!r}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Job) and (other.id, other.session_name) == (self.id, self.session_name)

    def __hash__(self) -> int:
        return hash((self.id, self.session_name))

    @property
    def session_name(self) -> str:
        """The name of the job session the job belongs to."""
        return self._session.session_name

    @property
    def session(self) -> JobSession:
        """The job session the job belongs to (to wait for it with others of the session)."""
        return self._session

    @property
    def template(self) -> JobTemplate:
        """The template the job was submitted with (placeholders not expanded)."""
        return self._session._template_of(self.id)

    @property
    def state(self) -> JobState:
        """The job's current state."""
        return self._session._job_state(self.id)[0]

    def get_state(self) -> tuple[JobState, str]:
        """The job's state and the engine's own word for it."""
        return self._session._job_state(self.id)

    @property
    def info(self) -> JobInfo:
        """Everything known about the job now."""
        return self._session._job_info(self.id)

    def suspend(self) -> None:
        """Stop a running job (its whole process group / container) until ``resume``."""
        self._session._control([self.id], "suspend")

    def resume(self) -> None:
        """Continue a suspended job."""
        self._session._control([self.id], "resume")

    def hold(self) -> None:
        """Keep a queued job from starting until ``release``."""
        self._session._control([self.id], "hold")

    def release(self) -> None:
        """Let a held job start."""
        self._session._control([self.id], "release")

    def terminate(self) -> None:
        """End the job (it ends FAILED); a job that has not started never will."""
        self._session._control([self.id], "terminate")

    def reap(self) -> None:
        """Forget a finished job, in the store and in the engine."""
        self._session._reap([self.id])

    def output(self, follow: bool = False, tail: int | None = None) -> Iterator[str]:
        """The job's stdout, line by line: from its output_path, or, when its template names
        none, from the copy pydrmaa2 keeps until the job is reaped. ``follow``: go on as it is
        written until the job has ended (as ``tail -f``); ``tail``: only the last lines."""
        return self._session._output(self.id, False, follow, tail)

    def error(self, follow: bool = False, tail: int | None = None) -> Iterator[str]:
        """The job's stderr, as ``output`` (InvalidArgumentError when join_files sends it into
        the output)."""
        return self._session._output(self.id, True, follow, tail)

    def wait_started(self, timeout: float | None = None) -> JobInfo:
        """Block until the job runs (or has ended); raise TimeoutError when ``timeout`` passes."""
        self._session.wait_all_started([self], timeout)
        return self.info

    def wait_terminated(self, timeout: float | None = None) -> JobInfo:
        """Block until the job has ended; raise TimeoutError when ``timeout`` passes."""
        self._session.wait_all_terminated([self], timeout)
        return self.info


class JobArray:
    """The tasks of one ``run_bulk_jobs`` call, controlled together."""

    def __init__(self, session: JobSession, array_id: str, job_ids: list[str]) -> None:
        self.id = array_id
        self._session = session
        self._job_ids = job_ids

    def __repr__(self) -> str:
        return f"<JobArray {self.id} of {len(self._job_ids)} tasks in {self.session_name!r}>"

    @property
    def session_name(self) -> str:
        """The name of the job session the array belongs to."""
        return self._session.session_name

    @property
    def jobs(self) -> list[Job]:
        """One Job per task, in index order."""
        return [Job(self._session, j) for j in self._job_ids]

    @property
    def template(self) -> JobTemplate:
        """The template shared by every task."""
        return self._session._array_template(self.id)

    def suspend(self) -> None:
        """Suspend every running task."""
        self._session._control(self._job_ids, "suspend", array=True)

    def resume(self) -> None:
        """Resume every suspended task."""
        self._session._control(self._job_ids, "resume", array=True)

    def hold(self) -> None:
        """Hold every task that has not started."""
        self._session._control(self._job_ids, "hold", array=True)

    def release(self) -> None:
        """Release every held task."""
        self._session._control(self._job_ids, "release", array=True)

    def terminate(self) -> None:
        """End every task that has not ended."""
        self._session._control(self._job_ids, "terminate", array=True)

    def reap(self) -> None:
        """Forget every task (all must have ended)."""
        self._session._reap(self._job_ids)


class Reservation:
    """An advance reservation of a reservation session."""

    def __init__(self, session: ReservationSession, reservation_id: str, tracker_id: str,
                 template: ReservationTemplate) -> None:
        self.id = reservation_id
        self._session = session
        self.tracker_id = tracker_id
        self.template = template

    def __repr__(self) -> str:
        return f"<Reservation {self.id} ({self.tracker_id}) of {self.session_name!r}>"

    @property
    def session_name(self) -> str:
        """The name of the reservation session."""
        return self._session.session_name

    @property
    def info(self) -> ReservationInfo:
        """What the engine says about the reservation now."""
        return self._session._info(self)

    def terminate(self) -> None:
        """Cancel the reservation."""
        self._session._terminate(self)


def check_jobs(jobs: Any) -> list[Job]:
    """``jobs`` (any iterable of Job objects, not empty) as a list; else InvalidArgumentError."""
    if isinstance(jobs, JobArray):
        raise InvalidArgumentError(f"jobs: {jobs!r} is a JobArray; pass its .jobs")
    if isinstance(jobs, (Job, str, bytes, Mapping)) or not isinstance(jobs, Iterable):
        raise InvalidArgumentError(f"jobs must be a list of Job objects, got {describe(jobs)}")
    jobs = list(jobs)  # checked below: every item a Job
    if not jobs:
        raise InvalidArgumentError("nothing to wait for: the list of jobs is empty")
    for i, job in enumerate(jobs):
        if not isinstance(job, Job):
            raise InvalidArgumentError(f"jobs[{i}] is not a Job: {describe(job)}")
    return cast("list[Job]", jobs)


def check_timeout(timeout: Any) -> float | None:
    """``timeout`` as seconds: None waits forever (so does infinity, or a number too large for a
    float), else a non-negative number; anything else is InvalidArgumentError."""
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, numbers.Real):
        raise InvalidArgumentError(
            f"timeout must be a number of seconds or None, got {describe(timeout)}")
    if timeout != timeout:
        raise InvalidArgumentError(f"timeout {timeout!r} is not a number of seconds")
    if timeout < 0:
        raise InvalidArgumentError(f"timeout {timeout!r} is negative")
    try:
        seconds = float(timeout)
    except OverflowError:
        return None
    return None if math.isinf(seconds) else seconds


def check_array(begin: Any, end: Any, step: Any, max_parallel: Any,
                most: int = MAX_ARRAY_SIZE) -> int:
    """Check ``run_bulk_jobs``'s range and ``max_parallel`` (a positive int or None); return the
    number of tasks, which may not exceed ``most`` (nor MAX_ARRAY_SIZE)."""
    for name, value in (("begin", begin), ("end", end), ("step", step)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidArgumentError(f"run_bulk_jobs: {name} must be an int, got {describe(value)}")
    if begin < 1:
        raise InvalidArgumentError(f"run_bulk_jobs: begin {begin} must be at least 1")
    if begin > end:
        raise InvalidArgumentError(f"run_bulk_jobs: begin {begin} is larger than end {end}")
    if end > MAX_TASK_INDEX:
        raise InvalidArgumentError(
            f"run_bulk_jobs: end {end} is larger than the largest task index {MAX_TASK_INDEX}")
    if step < 1:
        raise InvalidArgumentError(f"run_bulk_jobs: step {step} must be positive")
    count = (end - begin) // step + 1
    most = min(most, MAX_ARRAY_SIZE)
    if count > most:
        raise InvalidArgumentError(
            f"run_bulk_jobs: {begin}..{end} by {step} makes {count} tasks; at most {most} fit "
            "in one job array here (submit it in several)")
    if max_parallel is not None and (isinstance(max_parallel, bool)
                                     or not isinstance(max_parallel, int)):
        raise InvalidArgumentError(
            f"run_bulk_jobs: max_parallel must be a positive int or None, got {describe(max_parallel)}")
    if max_parallel is not None and not 1 <= max_parallel <= MAX_TASK_INDEX:
        raise InvalidArgumentError(
            f"run_bulk_jobs: max_parallel {max_parallel} must be between 1 and {MAX_TASK_INDEX} "
            "(None: no limit)")
    return int(count)
