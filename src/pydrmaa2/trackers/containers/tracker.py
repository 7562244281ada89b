"""The container-engine contract: ``ContainerTracker`` holds the policy of a tracker whose jobs
are containers of one engine, written once; an engine's tracker subclasses it with its STATES
table and a few hooks that talk to the engine (the Docker and Podman trackers do)."""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
from abc import abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from ...errors import Drmaa2Error, DrmCommunicationError, InvalidArgumentError, InvalidStateError
from ...info import JobInfo
from ...states import Capability, JobState
from ..base import Action, Contact, JobTracker
from .jobinfo import job_info
from .records import ContainerRecords, ContainerRow
from .staging import LocalFiles, StageOutError

__all__ = ["ContainerTracker"]


class ContainerTracker(JobTracker):
    """A tracker whose jobs are containers of one engine: the policy, for every engine.

    Kept here: a row per container in the tracker's SQLite file (``records``: held, terminated
    by pydrmaa2, the job's local files); the job's end, recorded exactly once by whoever looks
    first (``finalize``), which is also when the output files are written and the stage-out
    files copied, before an ``rm`` job's container is removed; hold as a created container that
    is started only when released; job control; JobInfo from the engine's inspect record.

    An engine's tracker declares ``STATES`` and ``NOT_STARTED`` (its status words) and names
    itself in ``engine_name`` and ``address``; it implements the hooks ``inspect_container``,
    ``start_container``, ``control_container``, ``remove_container``, ``write_outputs``,
    ``stream_log``, ``copy_out`` and ``announce_change`` (abstract), ``status_word`` and ``ended_record``
    (optional), and the JobTracker methods left open (``check``, ``validate``, ``submit``,
    ``states``, ``watch``, ``find_job``, ``list_jobs``, ``job_categories``, ``monitor_jobs``,
    ``machines``, ``queues``), with these services: ``records`` (its rows), ``finalize``,
    ``recorded_states``, ``container_infos`` and the state mapping through its tables
    (``job_state``, ``record_state``, ``has_ended``, ``not_started``, ``container_info``). An
    inspect record is a dict in Docker's inspect layout (``State.Status``, ``ExitCode``,
    ``OOMKilled``, ``StartedAt``, ``FinishedAt``; ``Config``; ``Id``, ``Name``, ``Created``),
    which Podman's shares.

    Hooks raise Drmaa2Errors only (each engine translates its own errors at one boundary):
    DrmCommunicationError when the engine cannot be reached (nothing is recorded, a later look
    tries again), InvalidStateError for a container not in a state for the call,
    InvalidArgumentError for a container the engine does not have.
    """

    #: working_directory is a path inside the container.
    host_working_directory = False
    #: JobTemplate fields every container engine takes (see ``spec.container_spec``).
    supported_fields = frozenset({
        "remote_command", "args", "submit_as_hold", "rerunnable", "job_environment",
        "working_directory", "job_category", "job_name", "input_path", "output_path",
        "error_path", "join_files", "candidate_machines", "min_phys_memory", "stage_in_files",
        "stage_out_files", "resource_limits", "extensions",
    })
    #: Arrays run by pydrmaa2, callbacks from the engine's events, stage-in and stage-out.
    capabilities = frozenset({Capability.JOB_ARRAYS, Capability.BULK_JOBS_MAXPARALLEL,
                              Capability.CALLBACK, Capability.JT_STAGING})
    #: A held job is a created container the engine keeps until it is released.
    native_hold = True
    #: A container's create and start are blocking calls to the engine: an array's tasks are
    #: started several at once (the client is thread-safe).
    submit_concurrency = 8
    #: The engine's status words -> DRMAA2 states. ``None``: the container has ended, DONE for
    #: exit code 0, else FAILED (always FAILED when the OOM killer struck). A word the table
    #: lacks is UNDETERMINED.
    STATES: ClassVar[Mapping[str, JobState | None]] = {}
    #: The status words of a container created and not started yet: it can be held, and is
    #: QUEUED_HELD while pydrmaa2 holds it.
    NOT_STARTED: ClassVar[frozenset[str]] = frozenset()
    #: Errors of a start that mean the job cannot run at all (it has failed, not stayed queued).
    unrunnable: ClassVar[tuple[type[Drmaa2Error], ...]] = (InvalidArgumentError,)
    #: How messages name the engine ("the Docker engine"), followed by " at ADDRESS".
    engine_name: ClassVar[str] = "the container engine"
    #: The engine's address, as messages give it.
    address: str

    def __init__(self, contact: Contact, home: Path) -> None:
        super().__init__(contact, home)
        self.records = ContainerRecords(Path(home) / f"{self.scheme}.sqlite")

    # -- the engine's hooks ------------------------------------------------------------------------
    @abstractmethod
    def inspect_container(self, cid: str) -> dict[str, Any] | None:
        """The container's inspect record, None when the engine no longer has it."""

    @abstractmethod
    def start_container(self, cid: str, input_path: str | None) -> None:
        """Start a created container, feeding the file ``input_path`` to its stdin. A container
        that cannot run (its command, user or devices missing) raises one of ``unrunnable``."""

    @abstractmethod
    def control_container(self, cid: str, action: Action) -> None:
        """Ask the engine to SUSPEND (freeze), RESUME (thaw) or TERMINATE (SIGKILL) the
        container, through the engine's CONTROL table; InvalidStateError when the container is
        not in a state for it."""

    @abstractmethod
    def write_outputs(self, cid: str, files: LocalFiles) -> str | None:
        """Copy the container's log into its output files; a problem is returned as the job's
        annotation (the job has ended; its files are what failed)."""

    @abstractmethod
    def stream_log(self, cid: str, stdout: bool, stderr: bool, follow: bool,
                   tail: int | None) -> Iterator[bytes]:
        """The container's log so far (one stream, or both merged; its last ``tail`` lines),
        in chunks; with ``follow`` until the container stops."""

    def engine_log(self, tracker_id: str, stderr: bool, follow: bool,
                   tail: int | None) -> Iterator[bytes] | None:
        """A container's output is the engine's log until the job ends (then the files)."""
        return self.stream_log(tracker_id, not stderr, stderr, follow, tail)

    @abstractmethod
    def copy_out(self, cid: str, path: str, destination: str) -> None:
        """Copy ``path`` of an ended container to ``destination`` on this host through the
        engine's archive API (so a remote engine works too), unpacked by ``extract_archive``.
        A path the engine does not have is a Drmaa2Error, a host-side problem StageOutError."""

    @abstractmethod
    def remove_container(self, cid: str, force: bool = False) -> None:
        """Remove the container (``force``: even a running one); one the engine no longer has
        is fine."""

    @abstractmethod
    def announce_change(self, cid: str) -> None:
        """Make the engine announce a change it does not see itself (a hold, an end recorded
        by pydrmaa2), so that waiters on its event stream look again; never raises."""

    def status_word(self, record: Mapping[str, Any], terminated: bool) -> str:
        """The engine's word for the container's status (a key of STATES; the job's sub_state).
        ``terminated``: pydrmaa2 killed it. By default the record's ``State.Status``."""
        return (record.get("State") or {}).get("Status") or ""

    def ended_record(self, cid: str) -> Mapping[str, Any] | None:
        """An inspect record of the container's end that the engine's events already gave
        (spares an inspect); by default None."""
        return None

    # -- states, through the engine's tables ----------------------------------------------------------
    def job_state(self, status: str, exit_code: int | None = None, oom_killed: bool = False,
                  held: bool = False) -> JobState:
        """A status word as a DRMAA2 state (see STATES and NOT_STARTED)."""
        if status not in self.STATES:
            return JobState.UNDETERMINED
        state = self.STATES[status]
        if state is None:
            return JobState.DONE if exit_code == 0 and not oom_killed else JobState.FAILED
        if held and status in self.NOT_STARTED:
            return JobState.QUEUED_HELD
        return state

    def record_state(self, record: Mapping[str, Any], held: bool = False,
                     terminated: bool = False) -> tuple[JobState, str]:
        """The DRMAA2 state and the status word (sub_state) of an inspect record."""
        st = record.get("State") or {}
        status = self.status_word(record, terminated)
        return self.job_state(status, st.get("ExitCode"), bool(st.get("OOMKilled")), held), status

    def has_ended(self, record: Mapping[str, Any], terminated: bool = False) -> bool:
        """Whether the record is of a container that has ended for good."""
        return self.STATES.get(self.status_word(record, terminated), JobState.UNDETERMINED) is None

    def not_started(self, record: Mapping[str, Any]) -> bool:
        """Whether the record is of a container created and not yet started (holdable)."""
        return self.status_word(record, False) in self.NOT_STARTED

    def container_info(self, record: Mapping[str, Any], row: ContainerRow | None) -> JobInfo:
        """The JobInfo of an inspect record and the tracker's row (whose end, once recorded,
        is the job's state)."""
        held = row is not None and row.held
        terminated = row is not None and row.terminated
        state, status = self.record_state(record, held, terminated)
        if row is not None and row.state is not None:
            state, status = row.state, row.sub_state or status
        return job_info(record, state, status, self.has_ended(record, terminated),
                        terminated=terminated, annotation=row.annotation if row else None)

    def adoptable(self, found: Sequence[tuple[str, str]]) -> str | None:
        """``find_job``'s answer among the containers labelled with one job id ((id, status
        word) each): one never started that no record names is what an interrupted submission
        left (its submitter could not remove it, the engine being away): removed now, as it
        would have been, so that the job is submitted again rather than adopted unstartable."""
        rows = self.records.rows([cid for cid, _ in found])
        for cid, status in found:
            if cid in rows or status not in self.NOT_STARTED:
                return cid
            self.remove_container(cid, force=True)
        return None

    # -- the end, recorded once --------------------------------------------------------------------
    def finalize_many(self, cids: Sequence[str]) -> dict[str, tuple[JobState, str] | None]:
        """``finalize`` of several ended containers, as many at once as ``submit_concurrency``
        (each is engine calls: inspect, log, stage-out, remove)."""
        workers = min(self.submit_concurrency, len(cids))
        if workers <= 1:
            return {cid: self.finalize(cid) for cid in cids}
        with concurrent.futures.ThreadPoolExecutor(workers) as pool:
            return dict(zip(cids, pool.map(self.finalize, cids), strict=True))

    def finalize(self, cid: str, record: Mapping[str, Any] | None = None,
                 state: JobState | None = None, annotation: str | None = None,
                 ) -> tuple[JobState, str] | None:
        """Record how a container ended, write its output files and copy its stage-out files
        out, once (whoever looks first), before the container may be removed (rm extension).

        ``state``/``annotation`` end a container that never started (nothing to stage out).
        Returns the final state, or None when the container turns out not to have ended (it
        restarts). A stage-out that fails makes the job FAILED with the reason in its
        annotation, as on the process tracker (DRMAA2: a staging failure is a job failure).
        """
        never_ran = state is not None
        removable = False
        # The engine is asked how it ended before the records are locked (others that end
        # containers meanwhile, a pool's threads among them, are not kept waiting for it).
        row = self.records.row(cid)
        if row is not None and row.state is not None:
            return row.state, row.sub_state or ""
        record = self.ended_record(cid) or record
        if record is None or (state is None and not self.has_ended(
                record, row is not None and row.terminated)):
            record = self.inspect_container(cid)
        with self.records.transaction() as db:
            row = self.records.row_in(db, cid)
            if row is not None and row.state is not None:
                return row.state, row.sub_state or ""
            terminated = row is not None and row.terminated
            if record is None or (state is None and not self.has_ended(record, terminated)):
                record = self.inspect_container(cid)
            if record is None:
                return None
            if state is None:
                if not self.has_ended(record, terminated):
                    return None
                state, sub = self.record_state(record, terminated=terminated)
            else:
                sub = self.status_word(record, terminated)
            if row is not None:
                notes = [annotation or self.write_outputs(cid, row.files)]
                if not never_ran and row.files.stage_out:
                    failure = self._stage_out(cid, row.files.stage_out)
                    if failure is not None:
                        state = JobState.FAILED
                        notes.append(failure)
                annotation = "; ".join(n for n in notes if n) or None
            self.records.record_end(db, cid, state, sub, annotation, record)
            removable = row is not None and row.remove
        if removable:  # the rm extension; the job's end stays recorded
            with contextlib.suppress(Drmaa2Error):
                self.remove_container(cid, force=True)
        return state, sub

    def _stage_out(self, cid: str, pairs: Sequence[tuple[str, str]]) -> str | None:
        """Copy each (host path, container path) out of the ended container, all of them even
        after a failure; the failures in words (None: all copied). An engine gone away raises
        DrmCommunicationError: nothing is recorded, a later look copies again."""
        failures = []
        for host, inside in pairs:
            try:
                self.copy_out(cid, inside, host)
            except DrmCommunicationError:
                raise
            except (Drmaa2Error, StageOutError) as e:
                failures.append(f"stage-out of {inside!r} to {host!r} failed: {e}")
        return "; ".join(failures) or None

    # -- the JobTracker methods written once ---------------------------------------------------------
    def state(self, tracker_id: str) -> tuple[JobState, str]:
        return self.states([tracker_id])[tracker_id]

    def recorded_states(self, tracker_ids: Sequence[str]
                        ) -> tuple[dict[str, ContainerRow], dict[str, tuple[JobState, str]], list[str]]:
        """For ``states``: the rows of these containers, the states of those whose end is
        recorded, and the others (still to ask the engine about), each container once."""
        ids = list(dict.fromkeys(tracker_ids))
        rows = self.records.rows(ids)
        out: dict[str, tuple[JobState, str]] = {}
        live = []
        for cid in ids:
            row = rows.get(cid)
            if row is not None and row.state is not None:
                out[cid] = (row.state, row.sub_state or "")
            else:
                live.append(cid)
        return rows, out, live

    def info(self, tracker_id: str) -> JobInfo:
        row = self.records.row(tracker_id)
        if row is None or row.state is None:
            record = self.inspect_container(tracker_id)
            if record is not None and not self.has_ended(record, row is not None and row.terminated):
                return self.container_info(record, row)
            self.finalize(tracker_id, record)
            row = self.records.row(tracker_id)
            if row is None or row.state is None or row.inspect is None:
                return JobInfo(
                    state=JobState.FAILED, sub_state="removed",
                    annotation=f"container {tracker_id[:12]} was removed from {self.engine_name} "
                               f"at {self.address} before pydrmaa2 saw it end",
                    extensions={"container_id": tracker_id})
        assert row.inspect is not None  # record_end writes it with the state
        return self.container_info(json.loads(row.inspect), row)

    def delete(self, tracker_id: str) -> None:
        row = self.records.row(tracker_id)
        if row is None or row.state is None:
            record = self.inspect_container(tracker_id)
            if record is not None and self.has_ended(record, row is not None and row.terminated):
                self.finalize(tracker_id, record)
            elif record is not None:
                raise InvalidStateError(
                    f"container {tracker_id[:12]} is {self.status_word(record, False)}; only an "
                    "ended job can be reaped")
        self.remove_container(tracker_id)
        self.records.forget(tracker_id)

    def container_infos(self, cids: Sequence[str]) -> list[JobInfo]:
        """For ``monitor_jobs``: the JobInfo of each of these containers the engine still has,
        its id the container's; an ended job's from its recorded end."""
        rows = self.records.rows(cids)
        out = []
        for cid in cids:
            row = rows.get(cid)
            if row is not None and row.inspect is not None:
                info = self.container_info(json.loads(row.inspect), row)
            else:
                record = self.inspect_container(cid)
                if record is None:
                    continue  # removed meanwhile
                info = self.container_info(record, row)
            info.id = cid
            out.append(info)
        return out

    def control(self, tracker_id: str, action: Action) -> None:
        # SUSPEND and RESUME are the engine's call alone; these keep pydrmaa2's records too.
        kept = {Action.TERMINATE: self._terminate, Action.HOLD: self._hold,
                Action.RELEASE: self._release}.get(action)
        if kept is None:
            self.control_container(tracker_id, action)
        else:
            kept(tracker_id)

    def _terminate(self, cid: str) -> None:
        self.records.set_terminated(cid, True)
        try:
            self.control_container(cid, Action.TERMINATE)
            return
        except DrmCommunicationError:
            self.records.set_terminated(cid, False)  # not killed: the engine is away
            raise
        except InvalidStateError:
            record = self.inspect_container(cid)
            if record is None:
                raise
        if self.has_ended(record):  # it ended on its own before the kill
            self.records.set_terminated(cid, False)
        elif self.not_started(record):
            self.finalize(cid, record, JobState.FAILED, "terminated before it started")
            self.announce_change(cid)
        else:
            raise InvalidStateError(
                f"container {cid[:12]} is {self.status_word(record, False)}; {self.engine_name} "
                f"at {self.address} cannot kill it now")

    def _hold(self, cid: str) -> None:
        """Hold a container that has not started: it stays created until released."""
        record = self.inspect_container(cid)
        if record is None or not self.not_started(record):
            status = "gone" if record is None else self.status_word(record, False)
            raise InvalidStateError(
                f"container {cid[:12]} is {status}: {self.engine_name} can hold a container "
                "only before it starts")
        self.records.set_held(cid, True)
        self.announce_change(cid)

    def _release(self, cid: str) -> None:
        row = self.records.row(cid)
        if row is None or not row.held:
            raise InvalidStateError(f"container {cid[:12]} is not held by pydrmaa2")
        self.records.set_held(cid, False)
        try:
            self.start_container(cid, row.files.input_path)
        except self.unrunnable as e:
            # The job cannot run (its command, user or GPUs are missing): it has failed.
            self.finalize(cid, None, JobState.FAILED, str(e))
            self.announce_change(cid)
            raise
