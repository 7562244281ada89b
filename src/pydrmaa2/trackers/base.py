"""The contract between pydrmaa2's generic layer and one job engine (a "tracker").

A tracker maps templates to engine objects and reports their states; everything else
(sessions, persistence, arrays without native support, hold emulation, waiting, filters,
notifications) lives once above it. This module imports nothing from the layers above.
"""

from __future__ import annotations

import enum
import signal
import threading
import time
import urllib.parse
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from ..errors import (
    Drmaa2Error,
    InvalidArgumentError,
    InvalidStateError,
    UnsupportedAttributeError,
    UnsupportedOperationError,
)
from ..info import JobInfo, MachineInfo, QueueInfo, ReservationInfo
from ..states import Capability, JobState
from ..templates import JobTemplate, ReservationTemplate, describe

__all__ = ["Action", "ChangeFeed", "Contact", "JobTracker", "PollFeed", "signal_name",
           "MAX_ARRAY_SIZE", "MAX_TASK_INDEX"]

#: Where a job's stdout and stderr are kept when its template names no file for them: this
#: directory of the store's (for its owner only, made by the session layer), until the job is
#: reaped. A tracker need not check that it can create files there.
KEPT_OUTPUT_DIR = "output"
#: The most tasks one job array (``run_bulk_jobs``) may have, whatever the tracker: its rows are
#: written in one transaction. A tracker may allow fewer (``JobTracker.max_array_tasks``).
MAX_ARRAY_SIZE = 1_000_000
#: The largest task index (and max_parallel): a signed 64-bit integer, as the store keeps it.
MAX_TASK_INDEX = 2**63 - 1

#: The contact options of the built-in trackers that check them in their own ``__init__`` and do
#: not declare ``contact_options`` yet; a tracker that declares them is not looked up here.
class Action(enum.Enum):
    """Job control operations, as the generic layer hands them to a tracker."""

    SUSPEND = "suspend"
    RESUME = "resume"
    HOLD = "hold"
    RELEASE = "release"
    TERMINATE = "terminate"


@dataclass(frozen=True)
class Contact:
    """A parsed contact string: ``SCHEME``, ``SCHEME:///socket``, ``SCHEME://host:port``, ``?k=v``."""

    raw: str
    scheme: str
    path: str | None = None
    host: str | None = None
    port: int | None = None
    options: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, raw: str) -> Contact:
        """Parse ``raw``; a bare word is a scheme with the engine's default endpoint. A contact
        that is not ``SCHEME[://ADDRESS][?key=value&...]`` is an InvalidArgumentError."""
        if not isinstance(raw, str):
            raise InvalidArgumentError(
                f"contact must be a string such as 'process' or 'docker', got {describe(raw)}")
        if not raw.strip():
            raise InvalidArgumentError(f"contact {raw!r} is empty; use e.g. 'process' or 'docker'")
        raw = raw.strip()
        if "\0" in raw:
            raise InvalidArgumentError(f"contact {raw!r} holds a NUL byte")
        if not raw.isascii():
            try:
                raw.encode()
            except UnicodeEncodeError as e:
                raise InvalidArgumentError(f"contact {raw!r} is not valid Unicode: {e.reason}") from None
        if "://" not in raw:
            scheme, _, query = raw.partition("?")
            if not scheme.isidentifier():
                raise InvalidArgumentError(f"contact {raw!r} is not SCHEME[://ADDRESS][?k=v]")
            return cls(raw, scheme.lower(), options=_options(raw, query))
        try:
            u = urllib.parse.urlsplit(raw)
            host, port = u.hostname, u.port
        except ValueError as e:
            raise InvalidArgumentError(
                f"contact {raw!r} is not SCHEME://ADDRESS[?k=v] (bad address: {e})") from None
        if not u.scheme:
            raise InvalidArgumentError(f"contact {raw!r} has no scheme")
        if u.fragment:
            raise InvalidArgumentError(f"contact {raw!r}: '#{u.fragment}' means nothing in a contact")
        return cls(raw, u.scheme.lower(), path=u.path or None, host=host, port=port,
                   options=_options(raw, u.query))

    @property
    def address(self) -> str:
        """The engine address in words, for error messages."""
        if self.host:
            return f"{self.host}:{self.port}" if self.port else self.host
        return self.path or self.raw


def _options(raw: str, query: str) -> dict[str, str]:
    """A contact's ``key=value&...`` options: each key once, with a value."""
    try:
        pairs = urllib.parse.parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError as e:
        raise InvalidArgumentError(
            f"contact {raw!r}: options must be ?key=value&key=value ({e})") from None
    options: dict[str, str] = {}
    for key, value in pairs:
        if not key or not value:
            raise InvalidArgumentError(
                f"contact {raw!r}: option {key!r}={value!r} needs a name and a value")
        if "\0" in key + value:
            raise InvalidArgumentError(f"contact {raw!r}: option {key!r} holds a NUL byte")
        if key in options:
            raise InvalidArgumentError(f"contact {raw!r}: option {key!r} is given twice")
        options[key] = value
    return options


class ChangeFeed(ABC):
    """Tells a waiter that some watched job may have changed state (it then looks again)."""

    @abstractmethod
    def wait(self, timeout: float | None) -> bool:
        """Block until a change may have happened (True) or ``timeout`` seconds passed (False)."""

    def close(self) -> None:
        """Release what the feed holds (sockets, streams, threads)."""


class PollFeed(ChangeFeed):
    """For engines with no event API: report a possible change every ``interval`` seconds."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._closed = threading.Event()

    def wait(self, timeout: float | None) -> bool:
        step = self.interval if timeout is None else min(self.interval, max(timeout, 0.0))
        self._closed.wait(step)
        return timeout is None or step < timeout

    def close(self) -> None:
        self._closed.set()


class JobTracker(ABC):
    """One engine. Tracker ids are the engine's own (PID key, container id, Slurm job id)."""

    scheme: ClassVar[str]
    #: Template fields this tracker honours; setting any other field is UnsupportedAttributeError.
    supported_fields: ClassVar[frozenset[str]] = frozenset()
    capabilities: ClassVar[frozenset[Capability]] = frozenset()
    #: The engine can hold a job itself (else the generic layer keeps held jobs in the store).
    native_hold: ClassVar[bool] = False
    #: The engine runs arrays itself, max_parallel included (``submit_array``).
    native_arrays: ClassVar[bool] = False
    #: JobTemplate.working_directory is a directory of this host (a container's is inside it):
    #: a job started for its submitter by another program gets the submitter's directory.
    host_working_directory: ClassVar[bool] = True
    #: The contact options (``?key=value``) this tracker reads; a contact with any other is
    #: refused before anything is created.
    contact_options: ClassVar[frozenset[str]] = frozenset()
    #: The most tasks one job array may have here: MAX_ARRAY_SIZE, or fewer where the engine
    #: has a lower limit of its own.
    max_array_tasks: ClassVar[int] = MAX_ARRAY_SIZE
    #: How many ``submit`` calls are worth having in flight at once when pydrmaa2 starts an
    #: array's tasks (an engine whose submission is a blocking network call gains from several;
    #: ``submit`` must then be safe to call from several threads).
    submit_concurrency: ClassVar[int] = 1
    #: The engine keeps an ended job's record (its state and JobInfo) until pydrmaa2 deletes it
    #: (``delete``, at reap): a throttled array's driver then only counts its tasks' ends and
    #: leaves recording them in the store to whoever reads them, as for any other job (the
    #: process tracker: the agent's own records). Else the driver records each end it sees.
    keeps_ended: ClassVar[bool] = False
    #: The engine keeps every job's output itself, and ``engine_log`` reads it at any time
    #: (running or ended, a named file or not): pydrmaa2 names no file for it and reads the
    #: output only through ``engine_log`` (the remote tracker: the server keeps it).
    keeps_output: ClassVar[bool] = False
    #: ``supported_fields`` and ``capabilities`` are the engine's, learnt when the tracker is
    #: opened (the remote tracker: its server's tracker's); ``supports()`` opens it to answer.
    declared_by_engine: ClassVar[bool] = False

    def __init__(self, contact: Contact, home: Path) -> None:
        self.check_contact(contact)
        self.contact = contact
        self.home = home

    @classmethod
    def check_contact(cls, contact: Contact) -> None:
        """Refuse (InvalidArgumentError) a contact with an option this tracker does not know."""
        scheme = getattr(cls, "scheme", contact.scheme)
        known = cls.contact_options
        unknown = sorted(set(contact.options) - known)
        if unknown:
            raise InvalidArgumentError(
                f"contact {contact.raw!r}: the {scheme!r} tracker knows no option "
                f"{', '.join(map(repr, unknown))}; "
                + (f"it knows {', '.join(sorted(known))}" if known else "it takes none"))

    # -- set-up ---------------------------------------------------------------------------
    def check(self) -> None:
        """Make sure the engine answers; raise DrmCommunicationError naming its address."""

    def validate(self, template: JobTemplate) -> None:
        """Refuse a template this tracker cannot run, before anything is created."""
        extra = [f for f in template.set_fields() if f not in self.supported_fields]
        if extra:
            raise UnsupportedAttributeError(
                f"JobTemplate field(s) {', '.join(extra)} not supported by the "
                f"{self.scheme!r} tracker")

    # -- jobs ------------------------------------------------------------------------------
    @abstractmethod
    def submit(self, job_id: str, template: JobTemplate, task_index: int | None,
               hold: bool = False) -> str:
        """Start (or, with ``hold`` and native_hold, create held) one job; return its tracker id.

        ``template`` has its placeholders expanded; ``job_id`` is pydrmaa2's id (for JOB_ID).
        On failure nothing may remain in the engine. A single job's row is written once this
        returns (a task of an array driven by pydrmaa2 has its row before), so a tracker must
        not look it up here; the same holds for ``submit_array``.
        """

    def submitter_context(self) -> dict[str, Any] | None:
        """What a job takes from the program that submits it beyond its template (the process
        tracker: that program's environment and umask), kept with a job or array whose start
        is left for later, by another program (the agent's array driver and timers, a
        release); None: nothing."""
        return None

    def submit_in_context(self, job_id: str, template: JobTemplate, task_index: int | None,
                          context: dict[str, Any]) -> str:
        """``submit`` as the program whose ``submitter_context`` this is would have made it."""
        return self.submit(job_id, template, task_index)

    def submit_many(self, jobs: Sequence[tuple[str, JobTemplate, int | None,
                                               dict[str, Any] | None]]
                    ) -> list[str | BaseException]:
        """Submit (job id, template, task index, submitter context or None) one after another
        as ``submit_in_context`` (or ``submit``) would, stopping at the first refused: the
        tracker id of each submitted, then that job's error, if any (the jobs after it were
        not submitted). Trackers that can send many jobs at once override this."""
        out: list[str | BaseException] = []
        for job_id, template, task_index, context in jobs:
            try:
                out.append(self.submit(job_id, template, task_index) if context is None else
                           self.submit_in_context(job_id, template, task_index, context))
            except BaseException as e:  # noqa: BLE001 - the caller's to handle, in order
                out.append(e)
                break
        return out

    def submit_array(self, job_ids: Sequence[str], template: JobTemplate,
                     indices: Sequence[int], max_parallel: int | None,
                     hold: bool = False) -> list[str]:
        """Submit a whole array natively (only where ``native_arrays``); one id per task."""
        raise UnsupportedOperationError(f"the {self.scheme!r} tracker has no native arrays")

    def find_job(self, job_id: str) -> str | None:
        """The tracker id of the engine's job that carries pydrmaa2 job id ``job_id`` (a label,
        a comment, the agent's record), or None when the engine has none: how a submission
        interrupted between the engine call and the store write (its submitter died, or the
        engine did not answer) is reconciled. The job found is adopted as submitted: what a
        failed submission left that can never run (a container created and never started) is
        removed, not returned. Trackers whose engine objects carry no job id raise
        UnsupportedOperationError."""
        raise UnsupportedOperationError(
            f"the {self.scheme!r} tracker cannot look a job up by its pydrmaa2 id")

    @abstractmethod
    def state(self, tracker_id: str) -> tuple[JobState, str]:
        """The job's state and the engine's own word for it (sub_state)."""

    def states(self, tracker_ids: Sequence[str]) -> dict[str, tuple[JobState, str]]:
        """States of many jobs at once; engines that can answer in one call override this."""
        return {t: self.state(t) for t in tracker_ids}

    @abstractmethod
    def info(self, tracker_id: str) -> JobInfo:
        """What the engine knows about the job (the generic layer fills id and job_name)."""

    def infos(self, tracker_ids: Sequence[str]) -> dict[str, JobInfo]:
        """``info`` of many jobs at once (the ends one look found); engines that can answer in
        one call override this."""
        return {t: self.info(t) for t in tracker_ids}

    @abstractmethod
    def control(self, tracker_id: str, action: Action) -> None:
        """Suspend, resume, terminate (and hold/release where native_hold)."""

    def control_many(self, tracker_ids: Sequence[str], action: Action) -> dict[str, Drmaa2Error]:
        """Apply one action to many jobs (an array's tasks); return the jobs it does not apply
        to, with the reason. Other errors (the engine unreachable) raise. Engines that take many
        jobs in one call override this."""
        refused: dict[str, Drmaa2Error] = {}
        for tracker_id in tracker_ids:
            try:
                self.control(tracker_id, action)
            except InvalidStateError as e:
                refused[tracker_id] = e
        return refused

    def watch(self, tracker_ids: Sequence[str]) -> ChangeFeed:
        """A feed that fires when one of these jobs may have changed; polling is the fallback."""
        return PollFeed(0.5)

    def engine_log(self, tracker_id: str, stderr: bool, follow: bool,
                   tail: int | None) -> Iterator[bytes] | None:
        """The job's stdout (or stderr) as the engine itself keeps it while the job runs (a
        container's log), in chunks, to the job's end with ``follow``, its last ``tail`` lines
        only; None (the default) where the job writes its output file itself, which
        ``Job.output`` then reads."""
        return None

    def agent_keys(self, tracker_ids: Sequence[str]) -> list[str] | None:
        """The pydrmaa2 agent's event keys that announce changes of these jobs, for a tracker
        whose events come from the agent itself (its ``watch()`` is then the agent's feed for
        these keys, and the sessions hear of them and of their own changes on one connection);
        None, the default: the engine has events (or polling) of its own."""
        return None

    def native_ids(self, tracker_ids: Sequence[str]) -> dict[str, str]:
        """The engine's own id (as ``monitor_jobs`` names it) of each of these jobs, where it
        is not the tracker id itself (the process tracker: the pid)."""
        return {}

    @abstractmethod
    def delete(self, tracker_id: str) -> None:
        """Forget a finished job in the engine (docker rm, ...)."""

    def list_jobs(self) -> list[str]:
        """Tracker ids of the jobs this engine knows."""
        return []

    def job_categories(self) -> list[str]:
        """What ``job_category`` may name (images for container engines)."""
        return []

    # -- monitoring ---------------------------------------------------------------------------
    def monitor_jobs(self) -> list[JobInfo]:
        """Every job of the engine, whoever submitted it."""
        raise UnsupportedOperationError(f"the {self.scheme!r} tracker cannot list all jobs")

    def machines(self) -> list[MachineInfo]:
        """The machines the engine runs jobs on."""
        raise UnsupportedOperationError(f"the {self.scheme!r} tracker cannot list machines")

    def queues(self) -> list[QueueInfo]:
        """The queues of the engine."""
        return []

    # -- reservations (only where Capability.ADVANCE_RESERVATION) -----------------------------
    def reserve(self, template: ReservationTemplate) -> ReservationInfo:
        """Create an advance reservation."""
        raise UnsupportedOperationError(f"the {self.scheme!r} tracker cannot reserve")

    def reservation_info(self, reservation_id: str) -> ReservationInfo:
        """What the engine says about one reservation."""
        raise UnsupportedOperationError(f"the {self.scheme!r} tracker cannot reserve")

    def reservations(self) -> list[ReservationInfo]:
        """Every reservation of the engine."""
        raise UnsupportedOperationError(f"the {self.scheme!r} tracker cannot reserve")

    def cancel_reservation(self, reservation_id: str) -> None:
        """Delete a reservation."""
        raise UnsupportedOperationError(f"the {self.scheme!r} tracker cannot reserve")

    def close(self) -> None:
        """Release connections to the engine."""


def signal_name(signum: int) -> str:
    """The name of signal ``signum`` as ``kill -l`` spells it: SIGTERM, SIGRTMIN+3, SIGRTMAX-2;
    a number no signal has is ``SIG<n>``. Every wait status gets a name, real-time ones too."""
    rtmin, rtmax = int(signal.SIGRTMIN), int(signal.SIGRTMAX)
    if rtmin <= signum <= rtmax:
        if signum == rtmin:
            return "SIGRTMIN"
        if signum == rtmax:
            return "SIGRTMAX"
        half = (rtmax - rtmin) // 2
        return (f"SIGRTMIN+{signum - rtmin}" if signum - rtmin <= half
                else f"SIGRTMAX-{rtmax - signum}")
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"SIG{signum}"


def deadline_after(timeout: float | None) -> float | None:
    """The monotonic time at which ``timeout`` seconds from now have passed (None: never)."""
    return None if timeout is None else time.monotonic() + max(0.0, timeout)


def remaining(deadline: float | None) -> float | None:
    """Seconds left until ``deadline`` (None: forever), never negative."""
    return None if deadline is None else max(0.0, deadline - time.monotonic())
