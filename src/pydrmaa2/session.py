"""Sessions: all generic DRMAA2 policy, once, above the trackers.

Persistence (the store), job arrays with max_parallel for trackers without native arrays,
hold/release emulation, event-driven waiting, filters and notifications live here.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from . import _codec
from ._book import (
    HELD,
    NOT_STARTED,
    PENDING,
    RESYNC_INTERVAL,
    SCHEDULED,
    STARTING,
    SUBMITTED,
    TERMINAL,
    TIMED_FIELDS,
    JobBook,
    MultiFeed,
    capabilities,
    kept_name,
    open_tracker,
)
from ._logs import FOLLOW_POLL, log_lines, read_lines
from ._store import JobRow, Store, default_home, dumps
from .agent import AgentClient
from .errors import (
    Drmaa2Error,
    DrmCommunicationError,
    InvalidArgumentError,
    InvalidSessionError,
    InvalidStateError,
    TimeoutError,
    TryLaterError,
    UnsupportedOperationError,
)
from .info import (
    JobInfo,
    MachineInfo,
    Notification,
    QueueInfo,
    ReservationInfo,
    Version,
    check_filter,
    matches,
)
from .jobs import Job, JobArray, Reservation, check_array, check_jobs, check_timeout
from .states import Capability, Event, JobState
from .templates import (
    PARAMETRIC_INDEX,
    JobTemplate,
    ReservationTemplate,
    check_list,
    check_path,
    check_text,
    for_task,
)
from .trackers import Action, ChangeFeed, Contact, JobTracker, tracker_class
from .trackers.base import deadline_after, remaining

if TYPE_CHECKING:
    from typing_extensions import Self  # typing's from Python 3.11

__all__ = ["SessionManager", "JobSession", "MonitoringSession", "ReservationSession",
           "INFINITE_TIME", "ZERO_TIME"]

log = logging.getLogger("pydrmaa2")

#: A wait's timeout that waits for ever (DRMAA2's INFINITE_TIME).
INFINITE_TIME: float | None = None
#: A wait's timeout that looks once and does not wait (DRMAA2's ZERO_TIME).
ZERO_TIME: float = 0.0

DRMS_NAME = "pydrmaa2"
VERSION = Version("0", "1")
DEFAULT_CONTACT = "process"

#: A job in STARTING is between two store writes around one engine call: look again this often,
#: for at most this long (the submitter publishes no event for it).
STARTING_POLL = 0.01
#: A wait whose look at its jobs took longer than this lets changes gather for COALESCE_FACTOR
#: looks' time (at most COALESCE_MAX s) before looking again; a wait on a few jobs never does.
COALESCE_OVER, COALESCE_FACTOR, COALESCE_MAX = 0.002, 4.0, 0.5
#: A wait for all of many jobs looks at this many of those left at a time (the first look at
#: all of them): it needs every one to end, so it follows the first ones and moves on (a waiter
#: on a 10,000-task array read 5,000 rows a look on average).
WAIT_WINDOW = 256
#: While more jobs are left than one look takes, a wake lets changes gather this long (s) at
#: least: the look would otherwise follow every agent turn that ended one of them.
MANY_GATHER = 0.005
#: run_bulk_jobs starts at most this many tasks itself; the agent starts the rest, so a large
#: array's submission costs its rows, not its starts.
SUBMIT_CHUNK = 256
STARTING_TIMEOUT = 60.0
#: A wait that loses its engine (or the agent) tries again after this long, doubling up to
#: OUTAGE_BACKOFF_MAX, until the engine answers or the wait's deadline passes.
OUTAGE_BACKOFF_FIRST, OUTAGE_BACKOFF_MAX = 0.1, 2.0


_tracker = open_tracker


@dataclasses.dataclass(frozen=True)
class _Outcome:
    """What a control operation on one job came to."""

    changed: bool = False          # the store changed the job (waiters are told)
    engine_id: str | None = None   # the engine must apply the operation to this job
    drive: str | None = None       # an array whose waiting tasks may start now


def _check_times(template: JobTemplate) -> None:
    """Refuse a deadline_time that has passed or does not come after the start_time."""
    if template.deadline_time is None:
        return
    deadline = template.deadline_time.timestamp()
    if deadline <= time.time():
        raise InvalidArgumentError(f"JobTemplate.deadline_time {template.deadline_time!r} has passed")
    if template.start_time is not None and deadline <= template.start_time.timestamp():
        raise InvalidArgumentError(
            f"JobTemplate.deadline_time {template.deadline_time!r} is not after start_time "
            f"{template.start_time!r}")


def _submitter_dir() -> str | None:
    """This program's directory, where a job's relative paths are (None if it was deleted)."""
    try:
        return os.getcwd()
    except OSError:
        return None


class _Session:
    """What every session shares: a name, a tracker, open/closed, context management."""

    def __init__(self, manager: SessionManager, name: str | None, contact: str,
                 tracker: JobTracker) -> None:
        self._manager = manager
        self._name = name
        self._contact = contact
        self._tracker = tracker
        self._closed = False

    @property
    def contact(self) -> str:
        """The contact string the session was created with."""
        return self._contact

    def _check_open(self) -> None:
        if self._closed:
            raise InvalidSessionError(f"session {self._name!r} is closed")

    def close(self) -> None:
        """Close the session; its jobs stay in the store (``open_*_session`` finds them again)."""
        self._check_open()
        self._closed = True
        self._tracker.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None,
                 tb: TracebackType | None) -> None:
        if not self._closed:
            self.close()


class JobSession(_Session):
    """A named, persistent set of jobs on one tracker."""

    def __init__(self, manager: SessionManager, name: str, contact: str,
                 tracker: JobTracker) -> None:
        super().__init__(manager, name, contact, tracker)
        self._store = manager._store
        self._agent = AgentClient.for_home(manager.home)
        self._book = JobBook(self._store, tracker, self._agent, name)
        self._ended_before: set[str] | None = None  # see _listen_from
        # Jobs whose submitter died mid-submission are adopted or put back to wait; arrays
        # left with waiting tasks by a program that exited go on now (and in the agent).
        self._book.reconcile()
        for _, array_id in self._store.arrays_with_pending(name):
            self._agent.request("drive", session=name, array=array_id)

    @property
    def session_name(self) -> str:
        """The session's name."""
        return self._name  # type: ignore[return-value]

    @property
    def job_categories(self) -> list[str]:
        """What ``JobTemplate.job_category`` may name on this tracker."""
        self._check_open()
        return self._tracker.job_categories()

    def supports(self, capability: Capability) -> bool:
        """Whether this session's tracker offers ``capability`` (by its engine or, like
        JT_DEADLINE, by pydrmaa2 itself for every tracker)."""
        return capability in capabilities(self._tracker)

    # -- submission --------------------------------------------------------------------------------
    def _validate(self, template: JobTemplate) -> JobTemplate:
        """The template to submit (a normalized copy where the caller's needs converting)."""
        self._check_open()
        if not isinstance(template, JobTemplate):
            raise InvalidArgumentError(f"expected a JobTemplate, got {type(template).__name__}")
        template = template.validate()
        self._tracker.validate(self._book.engine_template(template))
        _check_times(template)
        return template

    def _timers_of(self, template: JobTemplate) -> list[tuple[str, float]]:
        """The (kind, at) timers the agent keeps for the TIMED_FIELDS the engine cannot: a
        start_time still ahead, a deadline_time."""
        now = time.time()
        timers = []
        kept = [f for f in TIMED_FIELDS if getattr(template, f) is not None
                and f not in self._tracker.supported_fields]
        start = template.start_time.timestamp() if "start_time" in kept else None  # type: ignore[union-attr]
        if start is not None and start > now:
            timers.append(("start", start))
        if "deadline_time" in kept:
            timers.append(("deadline", template.deadline_time.timestamp()))  # type: ignore[union-attr]
        return timers

    def run_job(self, template: JobTemplate) -> Job:
        """Submit one job; it starts at once unless ``template.submit_as_hold`` or a
        ``start_time`` ahead (kept by the engine, else waiting in the store until then)."""
        template = self._validate(template)
        encoded = dumps(_codec.encode(template))
        timers = self._timers_of(template)
        later = any(kind == "start" for kind, _ in timers)
        if (template.submit_as_hold and not self._tracker.native_hold) or later:
            phase, state = ((HELD, JobState.QUEUED_HELD) if template.submit_as_hold
                            else (SCHEDULED, JobState.QUEUED))
            job_id = self._store.add_job(self.session_name, encoded, phase, state.value, timers,
                                         cwd=_submitter_dir(), context=self._context())
            if timers:
                self._agent.request("timers")
            return Job(self, job_id)
        # One transaction per job: the row is written once the engine has the job, under an id
        # reserved beforehand (the tracker gives it to the job as JOB_ID).
        job_id = self._store.reserve_job_id(self.session_name)
        submitted = time.time()
        try:
            tid = self._tracker.submit(
                job_id, for_task(self._book.engine_template(template, output=job_id), None),
                None, hold=template.submit_as_hold)
        except BaseException:
            self._settle_claims([job_id])  # the id is burnt: the engine may have seen it
            raise
        try:
            self._store.add_submitted_job(self.session_name, job_id, encoded,
                                          JobState.QUEUED.value, tid, submitted, timers,
                                          cwd=_submitter_dir())
        except BaseException:
            self._book.withdraw(tid)
            self._settle_claims([job_id])
            raise
        if timers:
            self._agent.request("timers")
        return Job(self, job_id)

    def _context(self) -> str | None:
        """What the tracker keeps of this program for a start left for later, as stored."""
        context = self._tracker.submitter_context()
        return None if context is None else dumps(context)

    def _settle_claims(self, job_ids: Sequence[str]) -> None:
        """Drop the claims on ids whose submission failed; a claim that cannot be dropped
        (the store refuses writes) is settled by the next reconciliation."""
        with contextlib.suppress(Drmaa2Error):
            self._store.release_claims(job_ids)

    def run_bulk_jobs(self, template: JobTemplate, begin: int, end: int, step: int = 1,
                      max_parallel: int | None = None) -> JobArray:
        """Submit tasks ``begin..end`` (inclusive) by ``step``; at most ``max_parallel`` run at once.
        An array holds at most ``trackers.base.MAX_ARRAY_SIZE`` tasks (fewer on some trackers)."""
        template = self._validate(template)
        check_array(begin, end, step, max_parallel, self._tracker.max_array_tasks)
        limit = max_parallel or None
        indices = list(range(begin, end + 1, step))
        encoded = dumps(_codec.encode(template))
        if self._tracker.native_arrays:
            # As run_job: the rows are written once, when the engine has the array, under a
            # block of ids reserved before (consecutive: the engine may map indices to them).
            ids = self._store.reserve_job_ids(len(indices), self.session_name)
            submitted = time.time()
            try:
                tids = self._tracker.submit_array(
                    ids, self._book.keep_output(template, kept_name(ids[0], ids[0],
                                                                    PARAMETRIC_INDEX)),
                    indices, limit, hold=template.submit_as_hold)
            except BaseException:
                self._settle_claims(ids)
                raise
            try:
                array_id = self._store.add_submitted_array(
                    self.session_name, encoded, (begin, end, step, limit),
                    list(zip(ids, indices, tids, strict=True)), JobState.QUEUED.value, submitted,
                    cwd=_submitter_dir())
            except BaseException:
                try:  # nothing may run that no session knows
                    self._tracker.control_many(tids, Action.TERMINATE)
                except Exception:  # noqa: BLE001 - the store's error is the one to raise
                    log.warning("could not take back array tasks %s..", tids[0], exc_info=True)
                self._settle_claims(ids)
                raise
            return JobArray(self, array_id, ids)
        # Without native arrays the tasks wait in the store, held or for a slot, whatever the
        # engine can do for single jobs.
        held = template.submit_as_hold
        timers = self._timers_of(template)
        later = any(kind == "start" for kind, _ in timers)
        phase, state = ((HELD, JobState.QUEUED_HELD) if held else
                        (SCHEDULED, JobState.QUEUED) if later else (PENDING, JobState.QUEUED))
        # The first tasks are claimed as they are inserted (then started here: a template that
        # cannot run raises): an agent that takes the array up meanwhile (one started by the
        # timers request, say) counts them running, never free.
        first = min(limit or SUBMIT_CHUNK, SUBMIT_CHUNK) if phase == PENDING else 0
        array_id, ids = self._store.add_array(
            self.session_name, encoded, begin, end, step, limit,
            [(i, STARTING if n < first else phase, state.value) for n, i in enumerate(indices)],
            timers, cwd=_submitter_dir(), context=self._context())
        if timers:
            self._agent.request("timers")
        unsettled = False
        try:
            if first:
                try:
                    self._book.start_claimed(self._store.job_rows(self.session_name, ids[:first]),
                                             template, first_fails=True,
                                             unsure_on=DrmCommunicationError)
                except DrmCommunicationError:
                    # The engine took the first task and did not answer for a later one (it
                    # went away, or lost the answer): those wait, let go, for the agent's
                    # driver to settle once it answers. Else the engine is away: raised.
                    if self._store.job_rows(self.session_name, ids[:1])[0].tracker_id is None:
                        raise
                    unsettled = True
        except BaseException:
            # Nothing may run that no session knows: tasks already submitted are withdrawn
            # before the array's rows go.
            tids = [r.tracker_id for r in self._store.job_rows(self.session_name, ids)
                    if r.tracker_id]
            for tid in tids:
                self._book.withdraw(tid)
            self._store.delete_array(array_id)
            raise
        if phase == PENDING and (len(indices) > first or unsettled):
            self._agent.request("drive", session=self.session_name, array=array_id)
        return JobArray(self, array_id, ids)

    # -- state -------------------------------------------------------------------------------------
    def _row(self, job_id: str) -> JobRow:
        row = self._store.job(job_id)
        if row is None or row.session != self.session_name:
            raise InvalidArgumentError(
                f"job {job_id!r} is not in session {self.session_name!r} (reaped or never existed)")
        return row

    def _template_of(self, job_id: str) -> JobTemplate:
        return _codec.decode(JobTemplate, json.loads(self._row(job_id).template or "{}"))

    def _array_template(self, array_id: str) -> JobTemplate:
        arr = self._store.array(self.session_name, array_id)
        if arr is None:
            raise InvalidArgumentError(f"no job array {array_id!r} in session {self.session_name!r}")
        return _codec.decode(JobTemplate, json.loads(arr.template))

    def _states_of(self, rows: Sequence[JobRow]) -> dict[str, tuple[JobState, str]]:
        return self._book.states_of(rows)

    def _job_state(self, job_id: str) -> tuple[JobState, str]:
        self._check_open()
        row = self._store.job_state(job_id)
        if row is None:
            self._row(job_id)  # raises the right error
        phase, state, sub, _ = row  # type: ignore[misc]
        if phase in (TERMINAL, HELD):
            return JobState(state), sub or ""
        return self._states_of([self._row(job_id)])[job_id]

    def _tracker_info(self, row: JobRow) -> JobInfo:
        return self._book.tracker_info(row)

    def _complete_info(self, row: JobRow, info: JobInfo) -> JobInfo:
        return self._book.complete_info(row, info)

    def _job_info(self, job_id: str) -> JobInfo:
        self._check_open()
        row = self._row(job_id)
        if row.phase == TERMINAL and row.info:
            return _codec.decode(JobInfo, json.loads(row.info))
        state, sub = self._states_of([row])[job_id]
        if row.phase == SUBMITTED:
            row = self._row(job_id)
            if row.phase == TERMINAL and row.info:
                return _codec.decode(JobInfo, json.loads(row.info))
            info = self._tracker_info(row)
        else:
            info = self._complete_info(row, JobInfo())
        info.state, info.sub_state = state, sub
        return info

    def get_jobs(self, filter: JobInfo | None = None) -> list[Job]:  # noqa: A002 - DRMAA2's name
        """The session's jobs; with ``filter``, those whose JobInfo matches (DRMAA2 rules)."""
        self._check_open()
        filter = check_filter(filter)
        if filter is None:
            # map() over the class: a third faster than a comprehension for a million jobs.
            return list(map(Job, itertools.repeat(self), self._store.job_ids(self.session_name)))
        rows = self._store.job_rows(self.session_name)
        states = self._states_of(rows)
        out = []
        only_state = {f.name for f in dataclasses.fields(JobInfo)
                      if getattr(filter, f.name) not in (None, [], {})} <= {"state", "sub_state"}
        for r in rows:
            st, sub = states[r.id]
            info = JobInfo(state=st, sub_state=sub) if only_state else self._job_info(r.id)
            if matches(info, filter):
                out.append(Job(self, r.id))
        return out

    def get_job_array(self, array_id: str) -> JobArray:
        """The job array with this id (from any program that used this session)."""
        self._check_open()
        check_text("array_id", str(array_id))
        if self._store.array(self.session_name, str(array_id)) is None:
            raise InvalidArgumentError(
                f"no job array {array_id!r} in session {self.session_name!r}")
        return JobArray(self, str(array_id), self._store.array_job_ids(str(array_id)))

    # -- control -----------------------------------------------------------------------------------
    def _control(self, job_ids: Sequence[str], op: str, array: bool = False) -> None:
        """Apply one control operation to jobs (an array's tasks: ``array``, where tasks it does
        not apply to are skipped unless it applies to none). The states come from one engine
        call, and the jobs the engine must act on go to it in one ``control_many``."""
        self._check_open()
        action = Action(op)
        errors: list[str] = []
        changed: list[str] = []
        drive: set[str] = set()
        engine: list[str] = []
        rows = [self._row(job_id) for job_id in job_ids]
        states = self._states_of(rows)
        for row in rows:
            try:
                outcome = self._control_one(row.id, states[row.id][0], action)
            except InvalidStateError as e:
                if not array:
                    raise
                errors.append(str(e))
                continue
            if outcome.engine_id is not None:
                engine.append(outcome.engine_id)
            if outcome.changed:
                changed.append(row.id)
            if outcome.drive is not None:
                drive.add(outcome.drive)
        if engine:
            refused = self._tracker.control_many(engine, action)
            if refused and not array:
                raise next(iter(refused.values()))
            errors += [str(e) for e in refused.values()]
        if changed:
            self._agent.notify(f"job:{j}" for j in changed)
        for array_id in drive:
            self._agent.request("drive", session=self.session_name, array=array_id)
        if array and errors and not changed and len(errors) == len(job_ids):
            raise InvalidStateError(f"{op} applies to no task of the array: {errors[0]}")

    def _control_one(self, job_id: str, state: JobState, action: Action) -> _Outcome:
        """One control operation on one job: refused (InvalidStateError) unless its state
        allows it; applied in the store to a job that has not started; else handed to the
        engine (the outcome's engine_id)."""
        row = self._row(job_id)  # again: the look at the states may have ended it
        if row.phase == STARTING:  # being submitted (often by the agent): act on what starts
            row = self._wait_submitted(row.id)
            state = self._states_of([row])[row.id][0]
        if row.phase == TERMINAL or state.is_terminal:
            raise InvalidStateError(
                f"job {row.id} has already ended ({state.name}); it cannot be {action.value}d")
        if row.phase in NOT_STARTED:
            outcome = self._control_unstarted(row, action)
            if outcome is not None:
                return outcome
            return self._control_one(job_id, self._states_of([self._row(job_id)])[job_id][0],
                                     action)  # it left its phase meanwhile: look again
        if action in (Action.HOLD, Action.RELEASE) and not self._tracker.native_hold:
            raise InvalidStateError(
                f"job {row.id} is {state.name}: only a job that has not started can be "
                f"{'held' if action is Action.HOLD else 'released'}")
        if action is Action.SUSPEND and state is not JobState.RUNNING:
            raise InvalidStateError(f"job {row.id} is {state.name}; only a RUNNING job can be suspended")
        if action is Action.RESUME and state is not JobState.SUSPENDED:
            raise InvalidStateError(f"job {row.id} is {state.name}; only a SUSPENDED job can be resumed")
        return _Outcome(engine_id=row.tracker_id)

    def _control_unstarted(self, row: JobRow, action: Action) -> _Outcome | None:
        """A control operation on a job the store holds (held, waiting for a slot or for its
        start_time); None when the job left that phase meanwhile."""
        where = ("held" if row.phase == HELD
                 else "waiting for its start_time" if row.phase == SCHEDULED
                 else f"waiting for a free slot of array {row.array_id}")
        if action is Action.TERMINATE:
            if self._book.fail_unstarted(row, "terminated before it started",
                                         expect=(PENDING, HELD, SCHEDULED),
                                         sub_state="terminated before start"):
                return _Outcome(changed=True)
            return None
        if action is Action.HOLD:
            if row.phase == HELD:
                return _Outcome()
            if self._store.set_phase(row.id, HELD, JobState.QUEUED_HELD.value,
                                     expect=(PENDING, SCHEDULED)):
                return _Outcome(changed=True)
            return None
        if action is Action.RELEASE:
            if row.phase != HELD:
                raise InvalidStateError(f"job {row.id} is not held; it is {where}")
            return self._release(row)
        raise InvalidStateError(
            f"job {row.id} has not started ({where}); only a running job can be "
            f"{action.value}d")

    def _wait_submitted(self, job_id: str) -> JobRow:
        """The row of a job once whoever is submitting it (often the agent) has finished."""
        deadline = deadline_after(STARTING_TIMEOUT)
        row = self._row(job_id)
        while row.phase == STARTING:
            if remaining(deadline) == 0:
                raise TryLaterError(f"job {job_id} is still being submitted; try again")
            time.sleep(STARTING_POLL)
            row = self._row(job_id)
        return row

    def _release(self, row: JobRow) -> _Outcome | None:
        """Release a job held in the store: back to waiting for its start_time or for a slot
        of its array, else submitted now. None when it was no longer held."""
        start = self._store.start_timer_of(row.id, row.array_id)
        if start is not None and start > time.time():  # released before its start_time
            ok = self._store.set_phase(row.id, SCHEDULED, JobState.QUEUED.value, expect=(HELD,))
            return _Outcome(changed=True) if ok else None
        if row.array_id is not None:
            arr = self._store.array(self.session_name, row.array_id)
            if arr is not None and arr.max_parallel:
                ok = self._store.set_phase(row.id, PENDING, JobState.QUEUED.value, expect=(HELD,))
                return _Outcome(changed=True, drive=row.array_id) if ok else None
        if not self._store.claim_held(row.id):
            return None
        self._book.start_claimed([self._row(row.id)], back=HELD)  # refused: held again
        return _Outcome(changed=True)

    def _output(self, job_id: str, stderr: bool, follow: bool, tail: int | None,
                stop: Callable[[], bool] | None = None) -> Iterator[str]:
        """The lines of a job's stdout or stderr (``Job.output``, ``Job.error``); a follow
        ends when the job has, or once ``stop()`` is true (its reader left: drmaa2 serve)."""
        self._check_open()
        if not isinstance(follow, bool):
            raise InvalidArgumentError(f"follow {follow!r} is not True or False")
        if tail is not None and (isinstance(tail, bool) or not isinstance(tail, int) or tail < 0):
            raise InvalidArgumentError(f"tail {tail!r} is not a number of lines (0 or more)")
        row = self._row(job_id)
        remote = self._tracker.keeps_output
        if remote and stderr:
            self._book.check_stderr_apart(row)
        path = None if remote else self._book.output_file(row, stderr)
        kept = remote or (path is not None and self._book.is_kept_output(row, path))

        def ended() -> bool:
            if stop is not None and stop():
                return True
            now = self._store.job(job_id)
            return now is None or self._states_of([now])[job_id][0].is_terminal

        def lines() -> Iterator[str]:
            # The engine's own log while the job runs where the engine keeps one (containers:
            # the file is written when the job ends); the file otherwise, and once it has ended.
            now: JobRow | None = row
            while follow and now is not None and now.phase in NOT_STARTED and not ended():
                time.sleep(FOLLOW_POLL)
                now = self._store.job(job_id)
            if remote:  # the engine keeps it, ended or not
                if now is not None and now.tracker_id:
                    yield from log_lines(self._tracker.engine_log(now.tracker_id, stderr, follow,
                                                                  tail) or iter(()))
                return
            if kept and now is not None and now.tracker_id and not ended():
                chunks = self._tracker.engine_log(now.tracker_id, stderr, follow, tail)
                if chunks is not None:
                    yield from log_lines(chunks)
                    while follow and not ended():  # the log closes as the engine records the end
                        time.sleep(FOLLOW_POLL)
                    return
            assert path is not None
            yield from read_lines(path, follow=follow, tail=tail, ended=ended)

        return lines()

    def _reap(self, job_ids: Sequence[str]) -> None:
        self._check_open()
        rows = [self._row(j) for j in job_ids]
        states = self._states_of(rows)
        running = [j for j in job_ids if not states[j][0].is_terminal]
        if running:
            raise InvalidStateError(
                f"job {running[0]} is {states[running[0]][0].name}; only ended jobs can be reaped")
        self._book.forget_output(rows)
        for r in rows:
            if r.tracker_id:
                with contextlib.suppress(Drmaa2Error):
                    self._tracker.delete(r.tracker_id)
            self._store.delete_job(r.id)

    # -- waiting -----------------------------------------------------------------------------------
    def _wait(self, jobs: Sequence[Job], started: bool, any_: bool,
              timeout: float | None) -> Job | None:
        self._check_open()
        jobs, timeout = check_jobs(jobs), check_timeout(timeout)
        deadline = deadline_after(timeout)
        ids = [j.id for j in jobs]

        def reached(st: JobState) -> bool:
            return st.is_started if started else st.is_terminal

        feed: ChangeFeed | None = None
        phases: dict[str, tuple[bool, str | None]] = {}
        outage: DrmCommunicationError | None = None
        backoff = 0.0
        # A job that has reached the state waited for stays there (terminal for ever; started
        # includes suspended): each turn reads only the others, so a turn costs what is left.
        left = list(dict.fromkeys(ids))
        window = len(left)  # the first look is at every job: one not in the session is refused
        turn = 0.0  # how long the last look took
        try:
            while True:
                started_turn = time.perf_counter()
                look = left[:window]
                rows = self._store.job_rows(self.session_name, look)
                if len(rows) != len(look):
                    missing = sorted(set(look) - {r.id for r in rows})
                    raise InvalidArgumentError(
                        f"job {missing[0]!r} is not in session {self.session_name!r}")
                try:
                    # An engine's feed names engine jobs, so it follows their submission (the
                    # agent's is re-aimed in place; an engine's is replaced).
                    # Jobs that ended and left the wait need no new subscription.
                    now_phases = {r.id: (r.phase == SUBMITTED, r.tracker_id) for r in rows}
                    if feed is None or any(phases.get(j) != p for j, p in now_phases.items()):
                        old, feed = feed, None
                        feed, phases = self._book.feed(rows, reuse=old), now_phases
                        if feed is not old:
                            # A new subscription: look again, so that no change slips between
                            # the look and the wait. A feed re-aimed in place fires itself once
                            # its keys apply (or already covered these jobs).
                            continue
                    states = self._states_of(rows)
                    outage, backoff = None, 0.0
                    if any_:
                        done = [j for j in jobs if j.id in states and reached(states[j.id][0])]
                        if done:
                            return done[0]
                    else:
                        waiting = [j for j in look if not reached(states[j][0])]
                        left = waiting + left[len(look):]
                        window = WAIT_WINDOW
                        if not left:
                            return None
                        if not waiting:
                            continue  # those looked at have all arrived: on to the next ones
                    time_left = remaining(deadline)
                    if time_left == 0:
                        raise self._timeout(ids, any_, started, timeout, None)
                    turn = time.perf_counter() - started_turn
                    many = len(left) > WAIT_WINDOW
                    if feed.wait(RESYNC_INTERVAL if time_left is None
                                 else min(time_left, RESYNC_INTERVAL)) and (
                                     turn > COALESCE_OVER or many):
                        # A look at many jobs costs: let changes gather for a few looks' time,
                        # so the waiter uses a fraction of a CPU however many jobs end; and
                        # while more jobs are left than one look takes, at least MANY_GATHER.
                        rest = remaining(deadline)
                        time.sleep(min(max(COALESCE_FACTOR * turn, MANY_GATHER if many else 0),
                                       COALESCE_MAX, COALESCE_MAX if rest is None else rest))
                except DrmCommunicationError as e:
                    # The engine (or the agent) went away: inside a wait with time left, ride
                    # the outage out. Drop the feed, back off, subscribe again and re-read the
                    # states once it answers; only the deadline or a job state ends the wait.
                    if feed is not None:
                        feed.close()
                        feed = None
                    if outage is None:
                        log.warning("waiting through an outage: %s", e)
                    outage = e
                    time_left = remaining(deadline)
                    if time_left == 0:
                        raise self._timeout(ids, any_, started, timeout, e) from e
                    backoff = min(OUTAGE_BACKOFF_MAX, backoff * 2 or OUTAGE_BACKOFF_FIRST)
                    time.sleep(backoff if time_left is None else min(backoff, time_left))
        finally:
            if feed is not None:
                feed.close()

    @staticmethod
    def _timeout(ids: Sequence[str], any_: bool, started: bool, timeout: float | None,
                 outage: DrmCommunicationError | None) -> TimeoutError:
        what = "started" if started else "ended"
        why = f"; the engine could not be reached: {outage}" if outage is not None else ""
        return TimeoutError(
            f"{'no' if any_ else 'not every'} job of {list(ids[:5])}"
            f"{'...' if len(ids) > 5 else ''} {what} within {timeout} s{why}")

    def wait_any_started(self, jobs: Sequence[Job], timeout: float | None = None) -> Job:
        """The first of ``jobs`` to have started; TimeoutError when ``timeout`` passes."""
        return self._wait(jobs, True, True, timeout)  # type: ignore[return-value]

    def wait_any_terminated(self, jobs: Sequence[Job], timeout: float | None = None) -> Job:
        """The first of ``jobs`` to have ended; TimeoutError when ``timeout`` passes."""
        return self._wait(jobs, False, True, timeout)  # type: ignore[return-value]

    def wait_all_started(self, jobs: Sequence[Job], timeout: float | None = None) -> None:
        """Block until every job has started; TimeoutError when ``timeout`` passes."""
        self._wait(jobs, True, False, timeout)

    def wait_all_terminated(self, jobs: Sequence[Job], timeout: float | None = None) -> None:
        """Block until every job has ended; TimeoutError when ``timeout`` passes."""
        self._wait(jobs, False, False, timeout)

    # -- notifications -----------------------------------------------------------------------------
    def _ended(self) -> set[str]:
        return self._store.ended_job_ids(self.session_name)

    def _listen_from(self) -> None:
        """From now on, a job's end is news to notification callbacks (the jobs ended before
        are not)."""
        if self._ended_before is None:
            self._ended_before = self._ended()

    def _watch_changes(self, stop: threading.Event,
                       emit: Callable[[Notification], None]) -> None:
        """Deliver NEW_STATE notifications for this session's jobs until ``stop`` is set."""
        seen: dict[str, JobState] = {}
        # Jobs that had ended before anyone listened are not news; a job that ends after (even
        # before this thread first looks, a waiter recording its end first) is.
        ended_before = self._ended_before if self._ended_before is not None else self._ended()
        while not stop.is_set() and not self._closed:
            rows = [r for r in self._store.job_rows(self.session_name) if r.phase != TERMINAL
                    or (r.id not in ended_before and seen.get(r.id) != JobState(r.state))]
            # New jobs are not in ``rows`` yet: where the agent announces the engine's changes,
            # watch every key; otherwise they are picked up at the next turn of this loop.
            feed = self._book.feed(rows, everything=True) if rows else self._agent.watch(["*"])
            try:
                for job_id, (st, _) in self._states_of(rows).items():
                    if seen.get(job_id) != st:
                        seen[job_id] = st
                        emit(Notification(Event.NEW_STATE, job_id, self.session_name, st))
                feed.wait(MultiFeed.SLICE * 4)
            finally:
                feed.close()


class MonitoringSession(_Session):
    """A read-only view of everything an engine runs, whoever submitted it."""

    def get_all_jobs(self, filter: JobInfo | None = None) -> list[JobInfo]:  # noqa: A002
        """Every job of the engine (as JobInfo) that matches ``filter``.

        A job of a job session of this store on the same engine is listed under its pydrmaa2
        id (as ``job.id``); every job has the engine's own id in ``extensions["native_id"]``.
        Filtered by the id of such a job, the answer is that job alone (its JobInfo as its
        session sees it, ended or not), never an engine job whose own id is the same string."""
        self._check_open()
        filter = check_filter(filter)
        store = self._manager._store
        ours = self._our_jobs(store)
        infos = self._tracker.monitor_jobs()
        mine: set[int] = set()  # the listed jobs that are jobs of this store (by id())
        for info in infos:
            native = info.extensions.setdefault("native_id", info.id or "")
            if native in ours:
                info.id = ours[native][0]
                mine.add(id(info))
        if filter is not None and filter.id is not None:
            row = store.job(filter.id)
            if row is not None and self._same_engine(store, row.session):
                found = ([i for i in infos if id(i) in mine and i.id == row.id]
                         or [self._stored_info(row.session, row.id)])
                return [i for i in found if matches(i, filter)]
            return [i for i in infos if id(i) not in mine and matches(i, filter)]
        return [i for i in infos if matches(i, filter)]

    def _same_engine(self, store: Store, session: str) -> bool:
        """Whether a job session of the store runs on this session's engine (a contact without
        an address is the engine's default one)."""
        row = store.session(session, "job")
        if row is None:
            return False
        mine, theirs = Contact.parse(self._contact), Contact.parse(row[0])
        if mine.scheme != theirs.scheme:
            return False
        return (mine.address == theirs.address or "://" not in mine.raw
                or "://" not in theirs.raw)

    def _our_jobs(self, store: Store) -> dict[str, tuple[str, str]]:
        """Engine id -> (pydrmaa2 id, session) of the live jobs of this store on this engine."""
        live = [(r.tracker_id, r) for name in store.session_names("job")
                if self._same_engine(store, name)
                for r in store.job_rows(name) if r.phase == SUBMITTED and r.tracker_id]
        rows = [(tid, r) for tid, r in live if tid is not None]
        natives = self._tracker.native_ids([tid for tid, _ in rows])
        return {natives.get(tid, tid): (r.id, r.session) for tid, r in rows}

    def _stored_info(self, session: str, job_id: str) -> JobInfo:
        """A job's JobInfo as its job session sees it."""
        js = self._manager.open_job_session(session)
        try:
            return js._job_info(job_id)
        finally:
            js.close()

    def get_all_machines(self, names: Iterable[str] | None = None) -> list[MachineInfo]:
        """The engine's machines, or just those named."""
        self._check_open()
        wanted = None if names is None else set(check_list(check_text)("names", names))
        return [m for m in self._tracker.machines() if wanted is None or m.name in wanted]

    def get_all_queues(self, names: Iterable[str] | None = None) -> list[QueueInfo]:
        """The engine's queues, or just those named."""
        self._check_open()
        wanted = None if names is None else set(check_list(check_text)("names", names))
        return [q for q in self._tracker.queues() if wanted is None or q.name in wanted]

    def get_all_reservations(self) -> list[ReservationInfo]:
        """Every reservation of the engine."""
        self._check_open()
        return self._tracker.reservations()


class ReservationSession(_Session):
    """A named, persistent set of advance reservations (on trackers that can reserve)."""

    def __init__(self, manager: SessionManager, name: str, contact: str,
                 tracker: JobTracker) -> None:
        super().__init__(manager, name, contact, tracker)
        self._store = manager._store

    @property
    def session_name(self) -> str:
        """The session's name."""
        return self._name  # type: ignore[return-value]

    def request_reservation(self, template: ReservationTemplate) -> Reservation:
        """Ask the engine for a reservation; raises if it cannot be granted."""
        self._check_open()
        if not isinstance(template, ReservationTemplate):
            raise InvalidArgumentError(
                f"expected a ReservationTemplate, got {type(template).__name__}")
        template = template.validate()
        info = self._tracker.reserve(template)
        rid = self._store.add_reservation(self.session_name, info.reservation_id,
                                          dumps(_codec.encode(template)))
        return Reservation(self, rid, info.reservation_id, template)

    def _load(self, row: tuple[str, str, str]) -> Reservation:
        return Reservation(self, row[0], row[1],
                           _codec.decode(ReservationTemplate, json.loads(row[2])))

    def get_reservation(self, reservation_id: str) -> Reservation:
        """The reservation with this id."""
        self._check_open()
        for row in self._store.reservations(self.session_name):
            if row[0] == str(reservation_id):
                return self._load(row)
        raise InvalidArgumentError(
            f"no reservation {reservation_id!r} in session {self.session_name!r}")

    def get_reservations(self) -> list[Reservation]:
        """Every reservation of the session."""
        self._check_open()
        return [self._load(r) for r in self._store.reservations(self.session_name)]

    def _info(self, r: Reservation) -> ReservationInfo:
        self._check_open()
        info = self._tracker.reservation_info(r.tracker_id)
        return info

    def _terminate(self, r: Reservation) -> None:
        self._check_open()
        self._tracker.cancel_reservation(r.tracker_id)
        self._store.delete_reservation(r.id)


class SessionManager:
    """Entry point: creates, opens and destroys sessions in the store at ``home``."""

    def __init__(self, home: str | Path | None = None) -> None:
        self.home = Path(check_path("home", home)) if home is not None else default_home()
        self._store = Store(self.home / "store.sqlite")
        self._callbacks: list[Callable[[Notification], None]] = []
        self._sessions: list[JobSession] = []
        self._lock = threading.Lock()
        self._notifier_stop = threading.Event()

    drms_name = DRMS_NAME
    drmaa_name = "pydrmaa2"

    @property
    def drms_version(self) -> Version:
        """The version of pydrmaa2 (its own DRM system across trackers)."""
        return VERSION

    @property
    def drmaa_version(self) -> Version:
        """The DRMAA version implemented: 2.0."""
        return Version("2", "0")

    def supports(self, capability: Capability, contact: str = DEFAULT_CONTACT) -> bool:
        """Whether the tracker of ``contact`` (default: process) offers ``capability``."""
        if not isinstance(capability, Capability):
            raise InvalidArgumentError(f"{capability!r} is not a Capability")
        c = Contact.parse(contact)
        cls = tracker_class(c.scheme)
        cls.check_contact(c)
        if not cls.declared_by_engine:
            return capability in capabilities(cls)
        tracker = cls(c, self.home)  # it learns what its engine offers when it opens
        try:
            return capability in capabilities(tracker)
        finally:
            tracker.close()

    def close(self) -> None:
        """Stop the threads this manager runs for event notifications; its sessions stay
        usable (and so does the store: nothing is lost). Idempotent."""
        self._notifier_stop.set()

    def __enter__(self) -> SessionManager:
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # -- job sessions ------------------------------------------------------------------------------
    def job_session_of(self, job_id: str) -> str:
        """The name of the job session holding the job with this id (ids are unique in a
        store); InvalidArgumentError when none does."""
        check_text("job_id", job_id)
        name = self._store.job_session(job_id)
        if name is None:
            raise InvalidArgumentError(f"there is no job {job_id!r} in the store {self._store.path}")
        return name

    def find_job(self, job_id: str) -> Job:
        """The job with this id, in a newly opened session of the job session holding it."""
        return Job(self.open_job_session(self.job_session_of(job_id)), job_id)

    @property
    def job_session_contacts(self) -> dict[str, str]:
        """Each job session's name and the contact it was created with, oldest first."""
        return {n: row[0] for n in self._store.session_names("job")
                if (row := self._store.session(n, "job")) is not None}

    def _check_name(self, name: str) -> None:
        check_text("session name", name)
        if not name.strip():
            raise InvalidArgumentError(f"session name {name!r} is empty")

    @staticmethod
    def _contact(contact: str | None) -> str:
        """``contact``, or the default one when it is None or empty."""
        if contact is not None and not isinstance(contact, str):
            Contact.parse(contact)  # raises, naming the value
        return contact or DEFAULT_CONTACT

    def create_job_session(self, name: str, contact: str | None = None) -> JobSession:
        """Create a persistent job session on the tracker of ``contact`` (default: process)."""
        self._check_name(name)
        contact = self._contact(contact)
        if self._store.session(name, "job") is not None:
            raise InvalidArgumentError(f"a job session named {name!r} already exists")
        tracker = _tracker(contact, self.home)
        self._store.create_session(name, "job", contact)
        return self._track(JobSession(self, name, contact, tracker))

    def open_job_session(self, name: str) -> JobSession:
        """Open an existing job session, from any program, after any restart."""
        self._check_name(name)
        row = self._store.session(name, "job")
        if row is None:
            raise InvalidArgumentError(f"there is no job session named {name!r}")
        return self._track(JobSession(self, name, row[0], _tracker(row[0], self.home)))

    def _track(self, js: JobSession) -> JobSession:
        with self._lock:
            self._sessions.append(js)
            if self._callbacks:
                js._listen_from()
        return js

    def destroy_job_session(self, name: str) -> None:
        """Forget a job session and its jobs; ended jobs are reaped in the engine too, jobs still
        running are left running (terminate them first to stop them)."""
        self._check_name(name)
        row = self._store.session(name, "job")
        if row is None:
            raise InvalidArgumentError(f"there is no job session named {name!r}")
        with JobSession(self, name, row[0], _tracker(row[0], self.home)) as js:
            rows = self._store.job_rows(name)
            states = js._states_of(rows)
            js._book.forget_output([r for r in rows if states[r.id][0].is_terminal])
            for r in rows:
                if r.tracker_id and states[r.id][0].is_terminal:
                    with contextlib.suppress(Drmaa2Error):
                        js._tracker.delete(r.tracker_id)
        self._store.destroy_session(name, "job")

    @property
    def job_session_names(self) -> list[str]:
        """Names of every job session in the store."""
        return self._store.session_names("job")

    # -- reservation sessions ----------------------------------------------------------------------
    def create_reservation_session(self, name: str, contact: str | None = None) -> ReservationSession:
        """Create a reservation session on a tracker that can reserve (e.g. slurm)."""
        self._check_name(name)
        contact = self._contact(contact)
        tracker = _tracker(contact, self.home)
        if Capability.ADVANCE_RESERVATION not in tracker.capabilities:
            tracker.close()
            raise UnsupportedOperationError(
                f"the {Contact.parse(contact).scheme!r} tracker cannot make advance reservations")
        self._store.create_session(name, "reservation", contact)
        return ReservationSession(self, name, contact, tracker)

    def open_reservation_session(self, name: str) -> ReservationSession:
        """Open an existing reservation session."""
        self._check_name(name)
        row = self._store.session(name, "reservation")
        if row is None:
            raise InvalidArgumentError(f"there is no reservation session named {name!r}")
        return ReservationSession(self, name, row[0], _tracker(row[0], self.home))

    def destroy_reservation_session(self, name: str) -> None:
        """Forget a reservation session (its reservations stay in the engine)."""
        self._check_name(name)
        if not self._store.destroy_session(name, "reservation"):
            raise InvalidArgumentError(f"there is no reservation session named {name!r}")

    @property
    def reservation_session_names(self) -> list[str]:
        """Names of every reservation session in the store."""
        return self._store.session_names("reservation")

    # -- monitoring --------------------------------------------------------------------------------
    def open_monitoring_session(self, contact: str | None = None) -> MonitoringSession:
        """A read-only view of everything the engine of ``contact`` runs."""
        contact = self._contact(contact)
        return MonitoringSession(self, None, contact, _tracker(contact, self.home))

    # -- notifications -----------------------------------------------------------------------------
    def register_event_notification(self, callback: Callable[[Notification], Any]) -> None:
        """Call ``callback(Notification)`` whenever a job of a session opened here changes state."""
        if not callable(callback):
            raise InvalidArgumentError(f"callback {callback!r} is not callable")
        with self._lock:
            self._callbacks.append(callback)
            if len(self._callbacks) == 1:
                for js in self._sessions:
                    js._listen_from()
                threading.Thread(target=self._notify_loop, daemon=True,
                                 name="pydrmaa2-notify").start()

    def _emit(self, n: Notification) -> None:
        for cb in list(self._callbacks):
            try:
                cb(n)
            except Exception:
                log.exception("notification callback %r failed", cb)

    def _notify_loop(self) -> None:
        watchers: dict[int, threading.Thread] = {}
        while not self._notifier_stop.is_set():
            with self._lock:
                self._sessions = sessions = [s for s in self._sessions if not s._closed]
            for s in sessions:
                if id(s) not in watchers or not watchers[id(s)].is_alive():
                    t = threading.Thread(target=s._watch_changes,
                                         args=(self._notifier_stop, self._emit), daemon=True)
                    watchers[id(s)] = t
                    t.start()
            self._notifier_stop.wait(MultiFeed.SLICE * 4)
