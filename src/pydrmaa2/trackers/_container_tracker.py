"""What the Docker and Podman trackers keep about their containers, written once for both.

Each tracker keeps a private SQLite file (``docker.sqlite``, ``podman.sqlite`` in the pydrmaa2
home) with a row per container: pydrmaa2's own job state the engine cannot hold (held,
terminated by us, remove once ended, the local files of the job) and, once the container has
ended, how it ended, recorded exactly once by whoever looks first (``_finalize``), which is also
when the output files are written from the container's log and the stage-out files copied out
of the container. The engines differ only in the hooks at the bottom of ``ContainerTracker``.
"""

from __future__ import annotations

import json
import re
from abc import abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._sqlite import Database
from ..errors import Drmaa2Error, DrmCommunicationError, InvalidArgumentError, InvalidStateError
from ..info import JobInfo
from ..states import Capability, JobState
from ._container import LocalFiles, StageOutError
from .base import Action, Contact, JobTracker

SCHEMA = """
CREATE TABLE IF NOT EXISTS containers (
    cid         TEXT PRIMARY KEY,
    job_id      TEXT,
    held        INTEGER NOT NULL DEFAULT 0,
    terminated  INTEGER NOT NULL DEFAULT 0,
    remove      INTEGER NOT NULL DEFAULT 0,
    input_path  TEXT,
    output_path TEXT,
    error_path  TEXT,
    join_files  INTEGER NOT NULL DEFAULT 0,
    state       TEXT,   -- set once the job is over, with sub_state, annotation and inspect
    sub_state   TEXT,
    annotation  TEXT,
    inspect     TEXT,
    starter     TEXT,   -- host:pid of the program starting it in the background (Docker)
    stage_out   TEXT    -- JSON [[host path, container path], ...]: copied out at the end
);
"""
#: Columns added to SCHEMA after its first release: a file made before gets them when opened.
ADDED_COLUMNS: dict[str, str] = {"starter": "TEXT", "stage_out": "TEXT"}
#: Job control, the same in seeds 000 (Docker) and 004 (Podman): pause/unpause are the cgroup
#: freezer, which a job cannot catch or see (not rootless on cgroup v1). HOLD and RELEASE
#: (unsupported in the seeds) act on a container that has not started: it stays created until
#: released.
CONTROL: dict[Action, str] = {
    Action.SUSPEND: "pause",
    Action.RESUME: "unpause",
    Action.TERMINATE: "kill",          # SIGKILL
    Action.HOLD: "keep created",
    Action.RELEASE: "start",
}

#: Words of an engine's error answer (HTTP 5xx) saying that the engine, or what it stands on
#: (dockerd's containerd), cannot act just now rather than that the request is wrong: such an
#: answer is a DrmCommunicationError, as a refused connection is. Dockerd says e.g. 'connection
#: error: desc = "transport: Error while dialing dial unix /run/containerd/containerd.sock:
#: connect: connection refused": unavailable' while containerd is down.
OUTAGE = re.compile(r"connection refused|connection reset|broken pipe|connection error|"
                    r"error while dialing|transport is closing|did not receive an exit event|"
                    r"containerd\.sock", re.IGNORECASE)


def outage(status: int | None, explanation: str) -> bool:
    """Whether an engine's error answer means that it cannot act just now (see OUTAGE)."""
    code = status or 0
    return code in (502, 503, 504) or (code >= 500 and OUTAGE.search(explanation) is not None)


_COLUMNS = ("cid, held, terminated, remove, input_path, output_path, error_path, join_files, "
            "state, sub_state, annotation, inspect, starter, stage_out")
#: Rows read per query (SQLite's limit on bound parameters is far above).
_CHUNK = 500


@dataclass
class ContainerRow:
    """What a tracker keeps about one of its containers."""

    cid: str
    held: bool
    terminated: bool
    remove: bool
    files: LocalFiles
    state: JobState | None
    sub_state: str | None
    annotation: str | None
    inspect: str | None
    starter: str | None

    @classmethod
    def of(cls, r: tuple) -> ContainerRow:
        stage_out = tuple((host, inside) for host, inside in json.loads(r[13] or "[]"))
        return cls(r[0], bool(r[1]), bool(r[2]), bool(r[3]),
                   LocalFiles(r[4], r[5], r[6], bool(r[7]), stage_out),
                   JobState(r[8]) if r[8] else None, r[9], r[10], r[11], r[12])


def open_records(path: Path) -> Database:
    """The tracker's SQLite file; one written before a column of ADDED_COLUMNS gets it."""
    db = Database(path, SCHEMA)

    def missing(rows: Sequence[tuple]) -> list[str]:
        have = {r[1] for r in rows}
        return [c for c in ADDED_COLUMNS if c not in have]

    if missing(db.query("PRAGMA table_info(containers)")):
        with db.transaction() as conn:  # re-checked under the write lock: another may have
            for column in missing(conn.execute("PRAGMA table_info(containers)").fetchall()):
                conn.execute(f"ALTER TABLE containers ADD COLUMN {column} {ADDED_COLUMNS[column]}")
    return db


class ContainerTracker(JobTracker):
    """The record keeping of a container engine's tracker; subclasses talk to the engine."""

    supported_fields = frozenset({
        "remote_command", "args", "submit_as_hold", "rerunnable", "job_environment",
        "working_directory", "job_category", "job_name", "input_path", "output_path",
        "error_path", "join_files", "candidate_machines", "min_phys_memory", "stage_in_files",
        "stage_out_files", "resource_limits", "extensions",
    })
    capabilities = frozenset({Capability.JOB_ARRAYS, Capability.BULK_JOBS_MAXPARALLEL,
                              Capability.CALLBACK, Capability.JT_STAGING})
    native_hold = True
    #: Errors of a start that mean the job cannot run at all (it has failed, not stayed queued).
    unrunnable: tuple[type[Drmaa2Error], ...] = (InvalidArgumentError,)
    #: How messages name the engine ("the Docker engine"), followed by " at ADDRESS".
    engine_name = "the container engine"
    address: str

    def __init__(self, contact: Contact, home: Path) -> None:
        super().__init__(contact, home)
        self.db = open_records(Path(home) / f"{self.scheme}.sqlite")

    # -- the rows ----------------------------------------------------------------------------------
    def _rows(self, cids: Sequence[str]) -> dict[str, ContainerRow]:
        out: dict[str, ContainerRow] = {}
        for i in range(0, len(cids), _CHUNK):
            chunk = list(cids[i:i + _CHUNK])
            for r in self.db.query(f"SELECT {_COLUMNS} FROM containers WHERE cid IN "
                                   f"({','.join('?' * len(chunk))})", chunk):
                out[r[0]] = ContainerRow.of(r)
        return out

    def _row(self, cid: str) -> ContainerRow | None:
        return self._rows([cid]).get(cid)

    def _set(self, cid: str, column: str, value: int) -> None:
        with self.db.transaction() as db:
            db.execute(f"UPDATE containers SET {column}=? WHERE cid=?", (value, cid))

    def _record(self, cid: str, job_id: str, hold: bool, remove: bool, files: LocalFiles,
                starter: str | None = None) -> None:
        """The row of a container just created for a job."""
        with self.db.transaction() as db:
            db.execute(
                "INSERT INTO containers(cid, job_id, held, remove, input_path, output_path, "
                "error_path, join_files, starter, stage_out) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (cid, job_id, int(hold), int(remove), files.input_path, files.output_path,
                 files.error_path, int(files.join_files), starter,
                 json.dumps(files.stage_out) if files.stage_out else None))

    def _forget(self, cid: str) -> None:
        with self.db.transaction() as db:
            db.execute("DELETE FROM containers WHERE cid=?", (cid,))

    # -- the end, recorded once --------------------------------------------------------------------
    def _finalize(self, cid: str, data: Mapping[str, Any] | None = None,
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
        with self.db.transaction() as db:
            rows = db.execute(f"SELECT {_COLUMNS} FROM containers WHERE cid=?", (cid,)).fetchall()
            row = ContainerRow.of(rows[0]) if rows else None
            if row is not None and row.state is not None:
                return row.state, row.sub_state or ""
            terminated = row is not None and row.terminated
            data = self._ended_record(cid) or data
            if data is None or (state is None and not self._has_ended(data, terminated)):
                data = self._inspect(cid)
            if data is None:
                return None
            if state is None:
                if not self._has_ended(data, terminated):
                    return None
                state, sub = self._end_state(data, terminated)
            else:
                sub = self._status_word(data, terminated)
            if row is not None:
                notes = [annotation or self._write_outputs(cid, row.files)]
                if not never_ran and row.files.stage_out:
                    failure = self._stage_out(cid, row.files.stage_out)
                    if failure is not None:
                        state = JobState.FAILED
                        notes.append(failure)
                annotation = "; ".join(n for n in notes if n) or None
            db.execute(
                "INSERT INTO containers(cid, state, sub_state, annotation, inspect) "
                "VALUES (?,?,?,?,?) ON CONFLICT(cid) DO UPDATE SET state=excluded.state, "
                "sub_state=excluded.sub_state, annotation=excluded.annotation, "
                "inspect=excluded.inspect, held=0",
                (cid, state.value, sub, annotation, json.dumps(data)))
            removable = row is not None and row.remove
        if removable:
            self._remove_ended(cid)
        return state, sub

    def _stage_out(self, cid: str, pairs: Sequence[tuple[str, str]]) -> str | None:
        """Copy each (host path, container path) out of the ended container, all of them even
        after a failure; the failures in words (None: all copied). An engine gone away raises
        DrmCommunicationError: nothing is recorded, a later look copies again."""
        failures = []
        for host, inside in pairs:
            try:
                self._copy_out(cid, inside, host)
            except DrmCommunicationError:
                raise
            except (Drmaa2Error, StageOutError) as e:
                failures.append(f"stage-out of {inside!r} to {host!r} failed: {e}")
        return "; ".join(failures) or None

    def state(self, tracker_id: str) -> tuple[JobState, str]:
        return self.states([tracker_id])[tracker_id]

    def _recorded_states(self, tracker_ids: Sequence[str]
                         ) -> tuple[dict[str, ContainerRow], dict[str, tuple[JobState, str]], list[str]]:
        """The rows of these containers, the states of those whose end is recorded, and the
        others (still to ask the engine about), each container once."""
        ids = list(dict.fromkeys(tracker_ids))
        rows = self._rows(ids)
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
        row = self._row(tracker_id)
        if row is None or row.state is None:
            data = self._inspect(tracker_id)
            if data is not None and not self._has_ended(data, row is not None and row.terminated):
                return self._info(data, row)
            self._finalize(tracker_id, data)
            row = self._row(tracker_id)
            if row is None or row.state is None or row.inspect is None:
                return JobInfo(
                    state=JobState.FAILED, sub_state="removed",
                    annotation=f"container {tracker_id[:12]} was removed from {self.engine_name} "
                               f"at {self.address} before pydrmaa2 saw it end",
                    extensions={"container_id": tracker_id})
        return self._info(json.loads(row.inspect), row)

    # -- control -----------------------------------------------------------------------------------
    def control(self, tracker_id: str, action: Action) -> None:
        cid = tracker_id
        if action is Action.SUSPEND:
            self._pause(cid)
        elif action is Action.RESUME:
            self._unpause(cid)
        elif action is Action.TERMINATE:
            self._terminate(cid)
        elif action is Action.HOLD:
            self._hold(cid)
        elif action is Action.RELEASE:
            self._release(cid)

    def _terminate(self, cid: str) -> None:
        self._set(cid, "terminated", 1)
        try:
            self._kill(cid)
            return
        except DrmCommunicationError:
            self._set(cid, "terminated", 0)  # not killed: the engine is away
            raise
        except InvalidStateError:
            data = self._inspect(cid)
            if data is None:
                raise
        if self._has_ended(data, False):  # it ended on its own before the kill
            self._set(cid, "terminated", 0)
        elif self._not_started(data):
            self._finalize(cid, data, JobState.FAILED, "terminated before it started")
            self._nudge(cid)
        else:
            raise InvalidStateError(
                f"container {cid[:12]} is {self._status_word(data, False)}; {self.engine_name} "
                f"at {self.address} cannot kill it now")

    def _hold(self, cid: str) -> None:
        data = self._inspect(cid)
        if data is None or not self._not_started(data):
            status = "gone" if data is None else self._status_word(data, False)
            raise InvalidStateError(
                f"container {cid[:12]} is {status}: {self.engine_name} can hold a container "
                "only before it starts")
        self._set(cid, "held", 1)
        self._nudge(cid)

    def _release(self, cid: str) -> None:
        row = self._row(cid)
        if row is None or not row.held:
            raise InvalidStateError(f"container {cid[:12]} is not held by pydrmaa2")
        self._set(cid, "held", 0)
        try:
            self._start(cid, row.files.input_path)
        except self.unrunnable as e:
            # The job cannot run (its command, user or GPUs are missing): it has failed.
            self._finalize(cid, None, JobState.FAILED, str(e))
            self._nudge(cid)
            raise

    # -- the engine's hooks ------------------------------------------------------------------------
    @abstractmethod
    def _inspect(self, cid: str) -> dict[str, Any] | None:
        """The container's inspect record, None when the engine no longer has it."""

    @abstractmethod
    def _has_ended(self, data: Mapping[str, Any], terminated: bool) -> bool:
        """Whether the record is of a container that has ended for good (``terminated``: by us)."""

    @abstractmethod
    def _end_state(self, data: Mapping[str, Any], terminated: bool) -> tuple[JobState, str]:
        """The DRMAA2 state and sub_state of an ended container's record."""

    @abstractmethod
    def _status_word(self, data: Mapping[str, Any], terminated: bool) -> str:
        """The engine's word for the container's status (the sub_state)."""

    @abstractmethod
    def _write_outputs(self, cid: str, files: LocalFiles) -> str | None:
        """Copy the container's log into its output files; a problem is returned as the job's
        annotation (the job has ended; its files are what failed). An engine that goes away
        meanwhile raises DrmCommunicationError: nothing is recorded, a later look tries again."""

    @abstractmethod
    def _copy_out(self, cid: str, path: str, destination: str) -> None:
        """Copy ``path`` of an ended container to ``destination`` on this host through the
        engine's archive API (so a remote engine works too), unpacked by
        ``_container.extract_archive``. A path the engine does not have is a Drmaa2Error, a
        host-side problem StageOutError; an engine that goes away raises
        DrmCommunicationError."""

    @abstractmethod
    def _remove_ended(self, cid: str) -> None:
        """Remove an ended container whose job asked for it (the rm extension); never raises."""

    @abstractmethod
    def _info(self, data: Mapping[str, Any], row: ContainerRow | None) -> JobInfo:
        """The JobInfo of an inspect record and the tracker's row."""

    @abstractmethod
    def _not_started(self, data: Mapping[str, Any]) -> bool:
        """Whether the record is of a container created and not yet started (holdable)."""

    @abstractmethod
    def _start(self, cid: str, input_path: str | None) -> None:
        """Start a created container, feeding ``input_path`` to its stdin."""

    @abstractmethod
    def _pause(self, cid: str) -> None:
        """Freeze the container (SUSPEND)."""

    @abstractmethod
    def _unpause(self, cid: str) -> None:
        """Thaw the container (RESUME)."""

    @abstractmethod
    def _kill(self, cid: str) -> None:
        """SIGKILL the container; InvalidStateError when it is not running."""

    @abstractmethod
    def _nudge(self, cid: str) -> None:
        """Make the engine announce a change it does not see itself (hold, an end recorded
        by us), so that waiters on its event stream look again."""

    def _ended_record(self, cid: str) -> Mapping[str, Any] | None:
        """An inspect record of the container's end that the engine's events already gave."""
        return None
