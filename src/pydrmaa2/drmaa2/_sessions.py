"""uge-drmaa2's sessions, jobs, arrays, reservations and notifications, as handles on pydrmaa2's.

Every operation is one call into the pydrmaa2 session of the module's SessionManager; errors leave
through ``boundary``. As in uge-drmaa2, a session object that is garbage-collected is closed and,
unless ``destroy_on_exit=False``, destroyed; jobs and reservations outlive their session object.
"""

from __future__ import annotations

import contextlib
import dataclasses
import getpass
import logging
import uuid
import weakref
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, TypeVar

from .. import errors as core_errors
from .. import info as core_info
from .. import jobs as core_jobs
from .. import states as core_states
from ..session import SessionManager
from ._constants import UNSET_NUM, Capability, Event, JobState, Time
from ._exceptions import InvalidArgument, InvalidSession, UnsupportedOperation, boundary
from ._objects import (
    Drmaa2Object,
    JobInfo,
    JobTemplate,
    MachineInfo,
    QueueInfo,
    ReservationInfo,
    ReservationTemplate,
    Singleton,
    _Dict,
    _Enum,
    _Id,
    _List,
    _String,
    check_auth,
)
from ._runtime import default_contact, default_job_category, manager

__all__ = ["JobSession", "ReservationSession", "MonitoringSession", "Job", "JobArray",
           "Reservation", "Notification", "LibraryManager"]

log = logging.getLogger("pydrmaa2.drmaa2")
T = TypeVar("T")


def _seconds(timeout: Any) -> float | None:
    """uge-drmaa2's timeout in seconds (INFINITE_TIME waits forever, ZERO_TIME looks once)."""
    if timeout is None:
        return None
    try:
        seconds = float(timeout)
    except (TypeError, ValueError):
        raise InvalidArgument(f"timeout {timeout!r} is not a number of seconds") from None
    if seconds == Time.INFINITE_TIME:
        return None
    if seconds < 0:
        raise InvalidArgument(
            f"timeout {timeout!r}: give seconds, Time.ZERO_TIME or Time.INFINITE_TIME")
    return seconds


def _plain_name(name: str) -> str:
    """A session name without the ``user@`` prefix of uge-drmaa2's listings (the caller's only)."""
    user, at, rest = str(name).partition("@")
    return rest if at and user == getpass.getuser() else str(name)


def _core_template(template: Any) -> Any:
    """A pydrmaa2 JobTemplate from a dict or JobTemplate; ``PYDRMAA2_JOB_CATEGORY`` fills in an
    unset job category (the image, on container trackers)."""
    jt = JobTemplate.create_from_dict(template)._to_core()
    if jt.job_category is None:
        jt.job_category = default_job_category()
    return jt


# -- sessions --------------------------------------------------------------------------------------
@dataclasses.dataclass
class _Handle:
    """A session object's pydrmaa2 session, and how to re-open and destroy it: all that its
    finalizer needs, so never the object itself."""

    manager: SessionManager
    kind: str  # 'job', 'reservation' or 'monitoring': which SessionManager methods apply
    name: str
    contact: str
    core: Any = None
    destroyed: bool = False

    def open(self) -> None:
        if self.core is None:
            sm = self.manager
            self.core = (sm.open_monitoring_session(self.contact) if self.kind == "monitoring"
                         else getattr(sm, f"open_{self.kind}_session")(self.name))

    def close(self) -> None:
        core, self.core = self.core, None
        if core is not None:
            core.close()

    def destroy(self) -> None:
        getattr(self.manager, f"destroy_{self.kind}_session")(self.name)
        self.destroyed = True


def _on_collect(handle: _Handle, destroy: bool) -> None:
    """Close the session of a collected object and, as uge-drmaa2 does by default, destroy it."""
    with contextlib.suppress(core_errors.Drmaa2Error):
        handle.close()
    if destroy and not handle.destroyed:
        try:
            handle.destroy()
        except core_errors.InvalidArgumentError as e:  # already destroyed (by name, elsewhere)
            log.debug("%s session %r: %s", handle.kind, handle.name, e)
        except core_errors.Drmaa2Error as e:
            log.warning("could not destroy %s session %r: %s", handle.kind, handle.name, e)


class _SessionObject(Drmaa2Object):
    """What every uge-drmaa2 session shares: a name, open/close, close when collected."""

    _frozen = True
    name = _String(core=None)

    def _start(self, handle: _Handle, destroy_on_exit: bool) -> None:
        self._handle = handle
        self._values["name"] = handle.name
        self._read_only = True
        self._finalizer = weakref.finalize(self, _on_collect, handle, destroy_on_exit)

    def _session(self) -> Any:
        if self._handle.core is None:
            raise InvalidSession(f"session {self._handle.name!r} is closed; open() it first")
        return self._handle.core

    @boundary
    def open(self) -> None:
        """Open the session again after ``close()``; nothing when it is open."""
        self._handle.open()

    @boundary
    def close(self) -> None:
        """Close the session (its jobs stay; they can still be used); nothing when closed."""
        self._handle.close()


class _NamedSession(_SessionObject):
    """Job and reservation sessions: create-or-open by name, destroy, destroy on exit."""

    _kind: ClassVar[str]
    contact = _String(core=None)

    def __init__(self, name: str | None = None, contact: str | None = None,
                 destroy_on_exit: bool = True, check_for_existing_session: bool = True,
                 session_dict: dict[str, Any] = {},  # noqa: B006 - uge-drmaa2's default
                 auth: Any = None) -> None:
        super().__init__()
        check_auth(auth)
        name = name or session_dict.get("name")
        if not name:
            name, check_for_existing_session = uuid.uuid4().hex, False
        name = _plain_name(name)
        contact = contact or session_dict.get("contact") or default_contact()
        sm = manager()
        handle = _Handle(sm, self._kind, name, contact)
        with boundary:
            if check_for_existing_session and name in self._names(sm):
                handle.open()
            elif "@" in name:
                raise InvalidArgument("session name with @ is not allowed")
            else:
                handle.core = getattr(sm, f"create_{self._kind}_session")(name, contact)
        self._start(handle, destroy_on_exit)
        self._values["contact"] = handle.core.contact

    @classmethod
    def _names(cls, sm: SessionManager) -> list[str]:
        return list(getattr(sm, f"{cls._kind}_session_names"))

    @classmethod
    @boundary
    def list_session_names(cls) -> list[str]:
        """Names of every session of this kind in the store (plain names, see the module doc)."""
        return cls._names(manager())

    @classmethod
    @boundary
    def destroy_by_name(cls, name: str, auth: Any = None) -> None:
        """Destroy the session ``name`` (or ``user@name``)."""
        check_auth(auth)
        getattr(manager(), f"destroy_{cls._kind}_session")(_plain_name(name))

    @boundary
    def destroy(self, auth: Any = None) -> None:
        """Destroy the session in the store; running jobs go on (terminate them first)."""
        check_auth(auth)
        self._handle.destroy()


class JobSession(_NamedSession):
    """A job session: ``JobSession('name')`` opens it when it exists, else creates it on the
    tracker of ``contact`` (default ``$PYDRMAA2_CONTACT``, else process)."""

    _kind = "job"

    @boundary
    def run_job(self, template: JobTemplate | dict[str, Any], auth: Any = None) -> Job:
        """Submit one job described by a JobTemplate or a dict of its properties."""
        check_auth(auth)
        jt = _core_template(template)
        return Job._of(self._session().run_job(jt), self._handle.manager, jt.job_name)

    @boundary
    def run_bulk_jobs(self, template: JobTemplate | dict[str, Any], begin_index: int,
                      end_index: int, step: int, max_parallel: int, auth: Any = None) -> JobArray:
        """Submit tasks begin_index..end_index by step, at most max_parallel at once (-1: no limit)."""
        check_auth(auth)
        jt = _core_template(template)
        limit = None if max_parallel in (None, UNSET_NUM) else max_parallel
        array = self._session().run_bulk_jobs(jt, begin_index, end_index, step, limit)
        return JobArray._of(array, self._handle.manager, jt.job_name)

    def _wait(self, how: str, job_list: Sequence[Job], timeout: Any) -> Any:
        """pydrmaa2's wait ``how`` (same name as uge-drmaa2's) on the jobs of ``job_list``."""
        jobs = [_core_of(j) for j in job_list]
        seconds = _seconds(timeout)
        with boundary:
            return getattr(self._session(), how)(jobs, seconds)

    def wait_any_started(self, job_list: Sequence[Job], timeout: Any = Time.INFINITE_TIME) -> Job:
        """The first job of ``job_list`` to start; TimeoutError after ``timeout`` seconds."""
        done = self._wait("wait_any_started", job_list, timeout)
        return next(j for j in job_list if j.id == done.id)

    def wait_any_terminated(self, job_list: Sequence[Job],
                            timeout: Any = Time.INFINITE_TIME) -> Job:
        """The first job of ``job_list`` to end; TimeoutError after ``timeout`` seconds."""
        done = self._wait("wait_any_terminated", job_list, timeout)
        return next(j for j in job_list if j.id == done.id)

    def wait_all_started(self, job_list: Sequence[Job],
                         timeout: Any = Time.INFINITE_TIME) -> list[Job]:
        """Wait until every job has started; returns them."""
        self._wait("wait_all_started", job_list, timeout)
        return list(job_list)

    def wait_all_terminated(self, job_list: Sequence[Job],
                            timeout: Any = Time.INFINITE_TIME) -> list[Job]:
        """Wait until every job has ended; returns them."""
        self._wait("wait_all_terminated", job_list, timeout)
        return list(job_list)

    @boundary
    def get_job_array(self, id: str) -> JobArray:  # noqa: A002 - uge-drmaa2's name
        """The job array with this id."""
        return JobArray._of(self._session().get_job_array(str(id)), self._handle.manager)

    @boundary
    def get_job_categories(self) -> list[str]:
        """What ``job_category`` may name on this tracker (images on container trackers)."""
        return list(self._session().job_categories)

    @boundary
    def get_jobs(self, filter: JobInfo | dict[str, Any] | None) -> list[Job]:  # noqa: A002
        """The session's jobs matching ``filter`` (a JobInfo or dict; None: all)."""
        flt = None if filter is None else JobInfo.create_from_dict(filter)._to_core()
        return [Job._of(j, self._handle.manager) for j in self._session().get_jobs(filter=flt)]


class ReservationSession(_NamedSession):
    """A reservation session, on trackers that can reserve (UnsupportedOperation elsewhere)."""

    _kind = "reservation"

    @boundary
    def request_reservation(self, template: ReservationTemplate | dict[str, Any],
                            auth: Any = None) -> Reservation:
        """Reserve what a ReservationTemplate (or dict) describes."""
        check_auth(auth)
        rt = ReservationTemplate.create_from_dict(template)._to_core()
        return Reservation._of(self._session().request_reservation(rt), self._handle.manager)

    @boundary
    def get_reservation(self, id: str) -> Reservation:  # noqa: A002 - uge-drmaa2's name
        """The reservation with this id."""
        return Reservation._of(self._session().get_reservation(str(id)), self._handle.manager)

    @boundary
    def get_reservations(self) -> list[Reservation]:
        """Every reservation of the session."""
        return [Reservation._of(r, self._handle.manager) for r in self._session().get_reservations()]


class MonitoringSession(_SessionObject):
    """A read-only view of the engine of ``$PYDRMAA2_CONTACT`` (default process)."""

    def __init__(self, name: str | None = None,
                 session_dict: dict[str, Any] = {}) -> None:  # noqa: B006 - uge-drmaa2's default
        super().__init__()
        name = name or session_dict.get("name") or uuid.uuid4().hex
        handle = _Handle(manager(), "monitoring", name, default_contact())
        with boundary:
            handle.open()
        self._start(handle, False)

    @boundary
    def get_all_machines(self, filter: list[str] | None) -> list[MachineInfo]:  # noqa: A002
        """The engine's machines, or those named in ``filter``."""
        return [MachineInfo._from_core(m) for m in self._session().get_all_machines(filter)]

    @boundary
    def get_all_queues(self, filter: list[str] | None) -> list[QueueInfo]:  # noqa: A002
        """The engine's queues, or those named in ``filter``."""
        return [QueueInfo._from_core(q) for q in self._session().get_all_queues(filter)]

    @boundary
    def get_all_reservations(self, filter: ReservationInfo | dict[str, Any] | None  # noqa: A002
                             ) -> list[Reservation]:
        """The engine's reservations whose info has every property set in ``filter``."""
        want = {} if filter is None else ReservationInfo.create_from_dict(filter).to_dict()
        found = [ReservationInfo._from_core(i) for i in self._session().get_all_reservations()]
        return [Reservation._listed(i) for i in found
                if all(i.to_dict().get(k) == v for k, v in want.items() if v not in ([], {}))]

    @boundary
    def get_all_jobs(self, filter: JobInfo | dict[str, Any] | None) -> list[Job]:  # noqa: A002
        """Every job of the engine matching ``filter``, as read-only Jobs (see the module doc)."""
        flt = None if filter is None else JobInfo.create_from_dict(filter)._to_core()
        return [Job._listed(i) for i in self._session().get_all_jobs(flt)]


# -- jobs, arrays, reservations --------------------------------------------------------------------
class _Remote(Drmaa2Object):
    """A handle on a pydrmaa2 job, array or reservation. It outlives its session object: when
    that was closed or collected, the handle re-opens the session by name."""

    _frozen = True
    id = _Id(core=None)
    session_name = _String(core=None)

    def _bind(self, target: Any, sm: SessionManager | None, **values: Any) -> None:
        self._target, self._manager = target, sm
        self._values.update(id=str(values.pop("id")), **values)
        self._read_only = True

    def _home(self) -> tuple[SessionManager, str]:
        """The SessionManager and session name of a handle that acts: only a listed one (no
        target, never asked) has neither."""
        sm, name = self._manager, self.session_name
        assert sm is not None and name is not None
        return sm, name

    def _reopen(self) -> Any:
        raise NotImplementedError

    def _call(self, op: Callable[[Any], T]) -> T:
        if self._target is None:
            raise UnsupportedOperation(
                f"{type(self).__name__} {self.id} was listed by a monitoring session; use its "
                "own session to act on it")
        with boundary:
            try:
                return op(self._target)
            except core_errors.InvalidSessionError as e:
                try:
                    self._target = self._reopen()
                except core_errors.InvalidArgumentError:
                    raise InvalidSession(
                        f"{type(self).__name__} {self.id}: its session {self.session_name!r} is "
                        "closed and no longer exists (destroyed)") from e
                return op(self._target)


def _core_of(job: Any) -> core_jobs.Job:
    if not isinstance(job, Job):
        raise InvalidArgument(f"{job!r} is not a Job")
    core: core_jobs.Job = job._call(lambda j: j)
    return core


class _Controlled(_Remote):
    """What a job and a job array share: the DRMAA2 control operations and their template."""

    def _control(self, op: str, auth: Any) -> None:
        check_auth(auth)
        self._call(lambda target: getattr(target, op)())

    def suspend(self, auth: Any = None) -> None:
        """Suspend the running job (every running task of an array)."""
        self._control("suspend", auth)

    def resume(self, auth: Any = None) -> None:
        """Resume the suspended job (every suspended task)."""
        self._control("resume", auth)

    def hold(self, auth: Any = None) -> None:
        """Hold the job that has not started (every such task)."""
        self._control("hold", auth)

    def release(self, auth: Any = None) -> None:
        """Release the held job (every held task)."""
        self._control("release", auth)

    def terminate(self, auth: Any = None) -> None:
        """End the job (every task that has not ended); it ends FAILED."""
        self._control("terminate", auth)

    def reap(self) -> None:
        """Forget the ended job (every task: all must have ended)."""
        self._call(lambda t: t.reap())

    def get_template(self) -> JobTemplate:
        """The template the job (every task) was submitted with."""
        return JobTemplate._from_core(self._call(lambda t: t.template))


class Job(_Controlled):
    """A job: id, session_name, job_name and the DRMAA2 job operations."""

    job_name = _String(core=None)

    def __init__(self, job: core_jobs.Job) -> None:
        super().__init__()
        if not isinstance(job, core_jobs.Job):
            raise InvalidArgument(f"Invalid argument: {job!r} (expected a pydrmaa2 Job)")
        with boundary:
            self._bind(job, manager(), id=job.id, session_name=job.session_name,
                       job_name=job.template.job_name)
        self._snapshot: core_info.JobInfo | None = None

    @classmethod
    def _of(cls, job: core_jobs.Job, sm: SessionManager, job_name: str | None = None) -> Job:
        obj = cls._blank()
        obj._bind(job, sm, id=job.id, session_name=job.session_name,
                  job_name=job_name if job_name is not None else job.template.job_name)
        obj._snapshot = None
        return obj

    @classmethod
    def _listed(cls, info: core_info.JobInfo) -> Job:
        """A job a monitoring session found: its info as it was then, no operations."""
        obj = cls._blank()
        obj._bind(None, None, id=info.id, job_name=info.job_name)
        obj._snapshot = info
        return obj

    def _reopen(self) -> core_jobs.Job:
        sm, name = self._home()
        return core_jobs.Job(sm.open_job_session(name), self.id)

    def terminate_forced(self, auth: Any = None) -> None:
        """End the job; pydrmaa2's terminate already cannot be ignored (SIGKILL, container kill)."""
        self.terminate(auth)

    def terminate_all(self, auth: Any = None) -> None:
        """End the job and, for an array task, every task of its array."""
        check_auth(auth)
        self._call(self._terminate_array_of)

    def terminate_forced_all(self, auth: Any = None) -> None:
        """As ``terminate_all`` (see ``terminate_forced``)."""
        self.terminate_all(auth)

    def _terminate_array_of(self, job: core_jobs.Job) -> None:
        array_id = job.info.extensions.get("array_id")
        if not array_id:
            job.terminate()
            return
        sm, name = self._home()
        with sm.open_job_session(name) as s:
            s.get_job_array(array_id).terminate()

    def get_state(self) -> tuple[JobState, str | None]:
        """``(JobState member, sub-state string or None)``, fresh from the tracker."""
        if self._snapshot is not None:  # listed: no target
            state, sub = self._snapshot.state, self._snapshot.sub_state
        else:
            state, sub = self._call(lambda j: j.get_state())
        return (JobState[state.name] if state else JobState.UNDETERMINED), (sub or None)

    def get_info(self) -> JobInfo:
        """Everything known about the job now (JobInfo)."""
        info = self._snapshot if self._target is None else self._call(lambda j: j.info)
        return JobInfo._from_core(info)

    def wait_started(self, timeout: Any = Time.INFINITE_TIME) -> None:
        """Block until the job runs or has ended; TimeoutError after ``timeout`` seconds."""
        seconds = _seconds(timeout)
        self._call(lambda j: j.wait_started(seconds))

    def wait_terminated(self, timeout: Any = Time.INFINITE_TIME) -> None:
        """Block until the job has ended; TimeoutError after ``timeout`` seconds."""
        seconds = _seconds(timeout)
        self._call(lambda j: j.wait_terminated(seconds))


class JobArray(_Controlled):
    """The tasks of one ``run_bulk_jobs``: id, session_name, job_list, and array-wide operations."""

    job_list = _List(core=None)

    def __init__(self, struct: core_jobs.JobArray | None = None) -> None:
        super().__init__()
        if not isinstance(struct, core_jobs.JobArray):
            raise InvalidArgument(f"Invalid argument: {struct!r} (expected a pydrmaa2 JobArray)")
        with boundary:
            self._fill(struct, manager(), None)

    @classmethod
    def _of(cls, array: core_jobs.JobArray, sm: SessionManager,
            job_name: str | None = None) -> JobArray:
        obj = cls._blank()
        obj._fill(array, sm, job_name)
        return obj

    def _fill(self, array: core_jobs.JobArray, sm: SessionManager, job_name: str | None) -> None:
        name = job_name if job_name is not None else array.template.job_name
        self._bind(array, sm, id=array.id, session_name=array.session_name,
                   job_list=[Job._of(j, sm, name) for j in array.jobs])

    def _reopen(self) -> core_jobs.JobArray:
        sm, name = self._home()
        return sm.open_job_session(name).get_job_array(self.id)

    def terminate_all(self, auth: Any = None) -> None:
        """As ``terminate``: an array's tasks are all of it."""
        self.terminate(auth)



class Reservation(_Remote):
    """An advance reservation: id, session_name, its template and info, terminate."""

    def __init__(self, reservation: core_jobs.Reservation) -> None:
        super().__init__()
        if not isinstance(reservation, core_jobs.Reservation):
            raise InvalidArgument(
                f"Invalid argument: {reservation!r} (expected a pydrmaa2 Reservation)")
        self._bind(reservation, manager(), id=reservation.id,
                   session_name=reservation.session_name)
        self._snapshot: ReservationInfo | None = None

    @classmethod
    def _of(cls, reservation: core_jobs.Reservation, sm: SessionManager) -> Reservation:
        obj = cls._blank()
        obj._bind(reservation, sm, id=reservation.id, session_name=reservation.session_name)
        obj._snapshot = None
        return obj

    @classmethod
    def _listed(cls, info: ReservationInfo) -> Reservation:
        """A reservation a monitoring session found: its info as it was then, no operations."""
        obj = cls._blank()
        obj._bind(None, None, id=info.reservation_id)
        obj._snapshot = info
        return obj

    def _reopen(self) -> core_jobs.Reservation:
        sm, name = self._home()
        return sm.open_reservation_session(name).get_reservation(self.id)

    def terminate(self, auth: Any = None) -> None:
        """Cancel the reservation."""
        check_auth(auth)
        self._call(lambda r: r.terminate())

    def get_template(self) -> ReservationTemplate:
        """The template the reservation was requested with."""
        return ReservationTemplate._from_core(self._call(lambda r: r.template))

    def get_info(self) -> ReservationInfo:
        """What the engine says about the reservation now."""
        if self._snapshot is not None:  # listed: no target
            return self._snapshot
        return ReservationInfo._from_core(self._call(lambda r: r.info))


# -- notifications ---------------------------------------------------------------------------------
class Notification(Drmaa2Object):
    """One event (a job reached a new state); ``register_event_notification(callback)`` delivers them."""

    _core_type = core_info.Notification
    _frozen = True
    event = _Enum(Event, core_states.Event)
    job_id = _String()
    job_state = _Enum(JobState, core_states.JobState, core="state")
    session_name = _String()
    implementation_specific = _Dict(core=None)

    #: The one registered callback (DRMAA2 has one per process); None: unregistered.
    _callback: ClassVar[Callable[[core_info.Notification], None] | None] = None
    #: The SessionManagers that already deliver to ``_dispatch``.
    _dispatching: ClassVar[weakref.WeakSet[SessionManager]] = weakref.WeakSet()

    def __init__(self, notification: dict[str, Any]) -> None:
        super().__init__()
        self._init_from(notification)

    @classmethod
    def event_callback(cls, callback: Callable[[Notification], Any]
                       ) -> Callable[[core_info.Notification], None]:
        """Wrap ``callback`` so that it receives Notifications made from pydrmaa2's."""
        def wrapper(notification: core_info.Notification) -> None:
            callback(cls._from_core(notification))

        return wrapper

    @classmethod
    @boundary
    def register_event_notification(cls, callback: Callable[[Notification], Any]) -> None:
        """Call ``callback(Notification)`` on every state change of a job of the sessions opened
        here; it replaces the callback registered before. UnsupportedOperation without CALLBACK."""
        if not callable(callback):
            raise InvalidArgument(f"callback {callback!r} is not callable")
        sm = manager()
        if not sm.supports(core_states.Capability.CALLBACK, default_contact()):
            raise UnsupportedOperation(
                f"the {default_contact()!r} tracker does not deliver event notifications")
        if sm not in cls._dispatching:
            sm.register_event_notification(cls._dispatch)
            cls._dispatching.add(sm)
        cls._callback = cls.event_callback(callback)

    @classmethod
    def unregister_event_notification(cls) -> None:
        """Stop delivering notifications to the registered callback."""
        cls._callback = None

    @classmethod
    def _dispatch(cls, notification: core_info.Notification) -> None:
        callback = cls._callback
        if callback is not None:
            callback(notification)


# -- the library -----------------------------------------------------------------------------------
class LibraryManager(Singleton):
    """Stands for libdrmaa2: pydrmaa2's names, and capabilities of the default tracker."""

    def get_drmaa2_library(self) -> SessionManager:
        """What plays libdrmaa2's part here: the module's pydrmaa2 SessionManager."""
        return manager()

    @classmethod
    def get_drms_name(cls) -> str:
        """The DRM system's name: pydrmaa2."""
        return SessionManager.drms_name

    @classmethod
    def get_drmaa_name(cls) -> str:
        """The DRMAA implementation's name: pydrmaa2."""
        return SessionManager.drmaa_name

    @classmethod
    @boundary
    def drmaa_supports(cls, capability: Capability | int) -> bool:
        """Whether the tracker of ``$PYDRMAA2_CONTACT`` (default process) offers ``capability``."""
        try:
            cap = Capability(int(capability))
        except (TypeError, ValueError):
            raise InvalidArgument(f"{capability!r} is not a Capability") from None
        if cap is Capability.UNSET_CAPABILITY:
            return False
        return manager().supports(core_states.Capability[cap.name], default_contact())
