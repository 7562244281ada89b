"""The DRMAA 1.0 calls in Python terms, over pydrmaa2's public API: one Library per process
(a DRMAA 1.0 library has one session at a time), raising Drmaa1Error with the call's code.

drmaa_init(contact) opens the pydrmaa2 job session ``drmaa1-<contact>`` of the default store
(created the first time), so job ids stay valid across drmaa_exit and drmaa_init, and from one
program to the next. A job is forgotten (reaped) once drmaa_wait has returned it, or by
drmaa_synchronize with dispose. DRMAA_JOB_IDS_SESSION_ALL and _ANY mean the jobs this process
submitted since drmaa_init, as the standard says.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import signal
import threading
import time
from collections.abc import Sequence

from .. import (
    Drmaa2Error,
    InvalidArgumentError,
    InvalidStateError,
    Job,
    JobInfo,
    JobSession,
    JobState,
    SessionManager,
    TimeoutError,
    __version__,
)
from ..trackers import available_schemes, tracker_class
from ._constants import (
    CONTROL_ERRORS,
    ERRORS,
    IMPLEMENTATION,
    JOB_IDS_SESSION_ALL,
    JOB_IDS_SESSION_ANY,
    MANDATORY,
    STAT_ABORTED,
    STAT_CORE,
    STATES,
    TIMEOUT_WAIT_FOREVER,
    VECTOR,
    Control,
    Errno,
)
from ._template import ATTRIBUTE_OF, Drmaa1Error, Template, job_template, optional_attributes

DEFAULT_CONTACT = "process"
SESSION_PREFIX = "drmaa1-"


def translate(e: Drmaa2Error, default: Errno = Errno.INTERNAL_ERROR,
              invalid: Errno | None = None) -> Drmaa1Error:
    """A pydrmaa2 error as the DRMAA 1.0 error of the call (``invalid``: the code of an
    InvalidArgumentError there), naming the DRMAA 1.0 attribute a template field's refusal is
    about."""
    code = next((c for cls, c in ERRORS.items() if isinstance(e, cls)), default)
    if invalid is not None and isinstance(e, InvalidArgumentError):
        code = invalid
    message = str(e)
    if "JobTemplate" in message:
        named = [a for f, a in ATTRIBUTE_OF.items() if re.search(rf"\b{f}\b", message)]
        if named:
            message += f" (DRMAA attribute {named[0]})"
    return Drmaa1Error(code, message)


def signal_number(name: str | None) -> int:
    """The number of a signal as pydrmaa2 names it (SIGKILL, SIGRTMIN+3, SIG70); 0 for none."""
    if not name:
        return 0
    with contextlib.suppress(KeyError):
        return int(signal.Signals[name])
    for base, sign in (("SIGRTMIN", 1), ("SIGRTMAX", -1)):
        if name.startswith(base):
            rest = name[len(base):]
            return int(getattr(signal, base)) + sign * abs(int(rest or 0))
    with contextlib.suppress(ValueError):
        return int(name.removeprefix("SIG"))
    return 0


def stat_of(info: JobInfo) -> int:
    """drmaa_wait's stat of an ended job (the encoding is in drmaa.h)."""
    signo = signal_number(info.terminating_signal)
    if info.state is JobState.FAILED and info.exit_status is None and not signo:
        return STAT_ABORTED
    return ((info.exit_status or 0) & 0xFF) << 8 | (signo & 0x7F)


def signal_name(stat: int) -> str:
    """drmaa_wtermsig's name of the signal in ``stat``."""
    signo = stat & 0x7F
    try:
        return signal.Signals(signo).name
    except ValueError:
        rtmin, rtmax = int(signal.SIGRTMIN), int(signal.SIGRTMAX)
        if rtmin < signo < rtmax:
            return f"SIGRTMIN+{signo - rtmin}"
        return f"SIG{signo}"


def exited(stat: int) -> bool:
    return not stat & STAT_ABORTED and not stat & 0x7F


def signaled(stat: int) -> bool:
    return not stat & STAT_ABORTED and bool(stat & 0x7F)


def aborted(stat: int) -> bool:
    return bool(stat & STAT_ABORTED)


def core_dumped(stat: int) -> bool:
    return signaled(stat) and bool(stat & STAT_CORE)


def exit_status(stat: int) -> int:
    return (stat >> 8) & 0xFF


def _seconds(td: dt.timedelta) -> str:
    return f"{td.total_seconds():.3f}"


def rusage(info: JobInfo) -> list[str]:
    """The DRMAA 1.0 resource usage of an ended job: ``name=value`` entries."""
    out: dict[str, str] = {}
    if info.wallclock_time is not None:
        out["wallclock"] = _seconds(info.wallclock_time)
    if info.cpu_time is not None:
        out["cpu"] = _seconds(info.cpu_time)
    ext = info.extensions
    if "max_rss" in ext:
        out["mem"] = ext["max_rss"]  # KiB, the job's peak resident set
    if "user_time_ms" in ext:
        out["ru_utime"] = f"{int(ext['user_time_ms']) / 1000:.3f}"
    if "system_time_ms" in ext:
        out["ru_stime"] = f"{int(ext['system_time_ms']) / 1000:.3f}"
    if "max_rss" in ext:
        out["ru_maxrss"] = ext["max_rss"]
    for key, when in (("submission_time", info.submission_time),
                      ("start_time", info.dispatch_time), ("end_time", info.finish_time)):
        if when is not None:
            out[key] = f"{when.timestamp():.3f}"
    if info.exit_status is not None:
        out["exit_status"] = str(info.exit_status)
    if info.terminating_signal:
        out["signal"] = info.terminating_signal
    if info.allocated_machines:
        out["hosts"] = ",".join(info.allocated_machines)
    if info.slots is not None:
        out["slots"] = str(info.slots)
    return [f"{k}={v}" for k, v in out.items()]


class Library:
    """The state of libdrmaa in one process: the active session, the jobs it submitted and
    the jobs a waiter is returning. Every call may come from any thread."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._manager: SessionManager | None = None
        self._session: JobSession | None = None
        self._contact: str | None = None
        self._scheme = ""
        # The jobs submitted since drmaa_init and not reaped (an ordered set), and those a
        # drmaa_wait is returning (so each is returned once, whatever the threads).
        self._submitted: dict[str, None] = {}
        self._claimed: set[str] = set()

    # -- session -----------------------------------------------------------------------------------
    def init(self, contact: str | None) -> None:
        with self._lock:
            if self._session is not None:
                raise Drmaa1Error(Errno.ALREADY_ACTIVE_SESSION,
                                  f"a DRMAA session ({self._contact}) is already active")
            contact = contact or os.environ.get("PYDRMAA2_CONTACT") or DEFAULT_CONTACT
            scheme = contact.split(":", 1)[0]
            if scheme not in available_schemes():
                raise Drmaa1Error(Errno.INVALID_CONTACT_STRING,
                                  f"contact {contact!r}: no pydrmaa2 tracker {scheme!r}; "
                                  f"known: {', '.join(available_schemes())}")
            name = SESSION_PREFIX + contact
            try:
                manager = SessionManager()
                try:
                    session = manager.open_job_session(name)
                except InvalidArgumentError:
                    try:
                        session = manager.create_job_session(name, contact)
                    except InvalidArgumentError:
                        if name not in manager.job_session_names:
                            raise
                        session = manager.open_job_session(name)  # another program made it
            except InvalidArgumentError as e:
                raise Drmaa1Error(Errno.INVALID_CONTACT_STRING, str(e)) from e
            except Drmaa2Error as e:
                raise translate(e, Errno.DRMS_INIT_FAILED, Errno.DRMS_INIT_FAILED) from e
            self._manager, self._session, self._contact, self._scheme = (
                manager, session, contact, scheme)
            self._submitted.clear()

    def exit(self) -> None:
        with self._lock:
            session, manager = self._require(), self._manager
            assert manager is not None  # init sets it with the session
            self._session = self._manager = self._contact = None
            self._scheme = ""
            self._submitted.clear()
        try:
            session.close()
            manager.close()
        except Drmaa2Error as e:
            raise translate(e, Errno.DRMS_EXIT_ERROR) from e

    def _require(self) -> JobSession:
        session = self._session
        if session is None:
            raise Drmaa1Error(Errno.NO_ACTIVE_SESSION, "no active DRMAA session: call drmaa_init")
        return session

    def contact(self) -> str:
        """The session's contact; before drmaa_init, every tracker's."""
        return self._contact or ",".join(available_schemes())

    def drm_system(self) -> str:
        if self._contact is None:
            return f"pydrmaa2 {__version__} ({', '.join(available_schemes())})"
        return f"pydrmaa2 {__version__} on {self._scheme} ({self._contact})"

    @staticmethod
    def implementation() -> str:
        return f"{IMPLEMENTATION} {__version__}"

    def attribute_names(self) -> list[str]:
        self._require()
        fields = tracker_class(self._scheme).supported_fields
        return list(MANDATORY) + optional_attributes(fields)

    def vector_attribute_names(self) -> list[str]:
        self._require()
        return list(VECTOR)

    # -- submission --------------------------------------------------------------------------------
    def run_job(self, template: Template) -> str:
        session = self._require()
        jt = job_template(template, self._scheme)
        try:
            job = session.run_job(jt)
        except Drmaa2Error as e:
            raise translate(e, invalid=Errno.INVALID_ATTRIBUTE_VALUE) from e
        with self._lock:
            self._submitted[job.id] = None
        return job.id

    def run_bulk_jobs(self, template: Template, start: int, end: int, incr: int) -> list[str]:
        session = self._require()
        if start < 1 or end < start or incr < 1:
            raise Drmaa1Error(Errno.INVALID_ARGUMENT,
                              f"bulk job {start}..{end} by {incr}: need 1 <= start <= end, incr >= 1")
        jt = job_template(template, self._scheme, bulk=True)
        try:
            array = session.run_bulk_jobs(jt, start, end, incr)
        except InvalidArgumentError as e:
            # A range the tracker cannot take is the call's argument; a field, the template's.
            code = (Errno.INVALID_ARGUMENT if "run_bulk_jobs" in str(e)
                    else Errno.INVALID_ATTRIBUTE_VALUE)
            raise Drmaa1Error(code, str(e)) from e
        except Drmaa2Error as e:
            raise translate(e, invalid=Errno.INVALID_ATTRIBUTE_VALUE) from e
        ids = [job.id for job in array.jobs]
        with self._lock:
            self._submitted.update(dict.fromkeys(ids))
        return ids

    # -- jobs --------------------------------------------------------------------------------------
    def _job(self, session: JobSession, job_id: str) -> Job:
        return Job(session, job_id)

    def _session_jobs(self, session: JobSession) -> list[Job]:
        with self._lock:
            return [Job(session, j) for j in self._submitted]

    def job_ps(self, job_id: str) -> int:
        session = self._require()
        if job_id in self._claimed:
            raise Drmaa1Error(Errno.INVALID_JOB, f"job {job_id!r} has been reaped by drmaa_wait")
        try:
            state = self._job(session, job_id).state
        except InvalidArgumentError as e:
            raise Drmaa1Error(Errno.INVALID_JOB, str(e)) from e
        except Drmaa2Error as e:
            raise translate(e) from e
        return int(STATES[state])

    def control(self, job_id: str, action: int) -> None:
        session = self._require()
        try:
            act = Control(action)
        except ValueError:
            raise Drmaa1Error(Errno.INVALID_ARGUMENT, f"control action {action} is not 0..4") from None
        if job_id == JOB_IDS_SESSION_ALL:
            for job in self._session_jobs(session):
                with contextlib.suppress(InvalidStateError, InvalidArgumentError, Drmaa1Error):
                    self._control(job, act)
            return
        self._control(self._job(session, job_id), act)

    @staticmethod
    def _control(job: Job, act: Control) -> None:
        try:
            getattr(job, act.name.lower())()
        except InvalidStateError as e:
            if act is Control.TERMINATE:
                return  # it has ended already: nothing to terminate
            raise Drmaa1Error(CONTROL_ERRORS[act], str(e)) from e
        except InvalidArgumentError as e:
            raise Drmaa1Error(Errno.INVALID_JOB, str(e)) from e
        except Drmaa2Error as e:
            raise translate(e) from e

    @staticmethod
    def _timeout(timeout: int) -> float | None:
        if timeout == TIMEOUT_WAIT_FOREVER:
            return None
        if timeout < 0:
            raise Drmaa1Error(Errno.INVALID_ARGUMENT,
                              f"timeout {timeout}: seconds, or -1 to wait for ever")
        return float(timeout)

    def synchronize(self, job_ids: Sequence[str], timeout: int, dispose: bool) -> None:
        session = self._require()
        seconds = self._timeout(timeout)
        ids: dict[str, None] = {}
        for job_id in job_ids:
            if job_id == JOB_IDS_SESSION_ALL:
                with self._lock:
                    ids.update(self._submitted)
            else:
                ids[job_id] = None
        jobs = [Job(session, j) for j in ids]
        while jobs:
            try:
                session.wait_all_terminated(jobs, seconds)
                break
            except TimeoutError as e:
                raise Drmaa1Error(Errno.EXIT_TIMEOUT, str(e)) from e
            except InvalidArgumentError:
                # A job the session no longer has was reaped: it has ended, as far as this
                # session can tell (Grid Engine's libdrmaa, which drmaa-python's own tests
                # run against, answers the same).
                jobs = [j for j in jobs if self._exists(j)]
            except Drmaa2Error as e:
                raise translate(e) from e
        if dispose:
            for job in jobs:
                self._reap(job)

    @staticmethod
    def _exists(job: Job) -> bool:
        try:
            job.state  # noqa: B018 - raises for a job the session does not have
        except InvalidArgumentError:
            return False
        return True

    def _reap(self, job: Job) -> None:
        """Forget an ended job (drmaa_wait returned it, or synchronize disposed of it)."""
        with contextlib.suppress(InvalidArgumentError):  # someone else reaped it
            job.reap()
        with self._lock:
            self._submitted.pop(job.id, None)

    def wait(self, job_id: str, timeout: int) -> tuple[str, int, list[str]]:
        """drmaa_wait: the job's id, stat and resource usage, once; the job is reaped."""
        session = self._require()
        seconds = self._timeout(timeout)
        if job_id == JOB_IDS_SESSION_ANY:
            job, info = self._wait_any(session, seconds), None
        else:
            job, info = self._wait_one(session, job_id, seconds)
        try:
            if info is None:
                info = job.info
            return job.id, stat_of(info), rusage(info)
        except Drmaa2Error as e:
            raise translate(e) from e
        finally:
            self._reap(job)
            with self._lock:
                self._claimed.discard(job.id)

    def _claim(self, job_id: str) -> bool:
        with self._lock:
            if job_id in self._claimed:
                return False
            self._claimed.add(job_id)
            return True

    def _wait_one(self, session: JobSession, job_id: str,
                  seconds: float | None) -> tuple[Job, JobInfo]:
        """The job once it has ended, and its JobInfo; claimed for this waiter."""
        job = self._job(session, job_id)
        try:
            if job_id in self._claimed:
                raise InvalidArgumentError(f"job {job_id!r} is being reaped by another drmaa_wait")
            info = job.info  # one look: an ended job costs no wait
            if info.state is None or not info.state.is_terminal:
                info = job.wait_terminated(seconds)
        except TimeoutError as e:
            raise Drmaa1Error(Errno.EXIT_TIMEOUT, str(e)) from e
        except InvalidArgumentError as e:
            raise Drmaa1Error(Errno.INVALID_JOB, str(e)) from e
        except Drmaa2Error as e:
            raise translate(e) from e
        if not self._claim(job_id):
            raise Drmaa1Error(Errno.INVALID_JOB, f"job {job_id!r} was reaped by another drmaa_wait")
        return job, info

    def _wait_any(self, session: JobSession, seconds: float | None) -> Job:
        deadline = None if seconds is None else time.monotonic() + seconds
        while True:
            with self._lock:
                jobs = [Job(session, j) for j in self._submitted if j not in self._claimed]
            if not jobs:
                raise Drmaa1Error(Errno.INVALID_JOB,
                                  "no job of this DRMAA session is left to wait for")
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                job = session.wait_any_terminated(jobs, left)
            except TimeoutError as e:
                raise Drmaa1Error(Errno.EXIT_TIMEOUT, str(e)) from e
            except InvalidArgumentError:
                self._forget_missing(session)  # reaped by another program: look again
                continue
            except Drmaa2Error as e:
                raise translate(e) from e
            if self._claim(job.id):
                return job

    def _forget_missing(self, session: JobSession) -> None:
        with self._lock:
            ids = list(self._submitted)
        for job_id in ids:
            if not self._exists(Job(session, job_id)):
                with self._lock:
                    self._submitted.pop(job_id, None)
