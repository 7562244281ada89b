"""The persistent store: SQLite in WAL mode, one connection per thread, safe across processes.

It knows sessions, jobs, arrays and reservations as rows; it never talks to a tracker.
"""

from __future__ import annotations

import atexit
import contextlib
import enum
import json
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from .database import Database
from .errors import InvalidArgumentError, InvalidSessionError

SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    name     TEXT PRIMARY KEY,
    kind     TEXT NOT NULL,            -- 'job' or 'reservation'
    contact  TEXT NOT NULL,
    created  REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS arrays (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    session      TEXT NOT NULL REFERENCES sessions(name) ON DELETE CASCADE,
    template     TEXT NOT NULL,
    begin_index  INTEGER NOT NULL,
    end_index    INTEGER NOT NULL,
    step         INTEGER NOT NULL,
    max_parallel INTEGER,
    created      REAL NOT NULL,
    cwd          TEXT,                 -- its submitter's directory (tasks are started later)
    context      TEXT                  -- what its tracker keeps of its submitter (JSON)
);
CREATE TABLE IF NOT EXISTS jobs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    session     TEXT NOT NULL REFERENCES sessions(name) ON DELETE CASCADE,
    array_id    INTEGER REFERENCES arrays(id) ON DELETE CASCADE,
    task_index  INTEGER,
    template    TEXT,                  -- NULL for array tasks: the array's template applies
    tracker_id  TEXT,
    phase       TEXT NOT NULL,         -- held | pending | starting | submitted | terminal
    state       TEXT NOT NULL,
    sub_state   TEXT,
    info        TEXT,                  -- JSON JobInfo once terminal
    submitted   REAL NOT NULL,
    claimer     TEXT,                  -- 'pid:start time' of whoever moved it to 'starting'
    end_note    TEXT,                  -- why the generic layer ended it (its deadline_time)
    cwd         TEXT,                  -- its submitter's directory (a start left for later)
    context     TEXT                   -- what its tracker keeps of its submitter (JSON)
);
CREATE INDEX IF NOT EXISTS jobs_by_session ON jobs(session, id);
CREATE INDEX IF NOT EXISTS jobs_by_array ON jobs(array_id, phase);
-- The jobs not ended, by session: what opening a session looks at, whatever has ended before.
CREATE INDEX IF NOT EXISTS jobs_live ON jobs(session, phase) WHERE phase != 'terminal';
CREATE TABLE IF NOT EXISTS id_claims (  -- ids handed out for a submission not yet recorded
    id       INTEGER PRIMARY KEY,
    session  TEXT,
    claimer  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS timers (     -- start_time and deadline_time kept by the agent
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    session   TEXT NOT NULL REFERENCES sessions(name) ON DELETE CASCADE,
    job_id    INTEGER REFERENCES jobs(id) ON DELETE CASCADE,
    array_id  INTEGER REFERENCES arrays(id) ON DELETE CASCADE,
    kind      TEXT NOT NULL,           -- 'start' | 'deadline'
    at        REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS reservations (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    session     TEXT NOT NULL REFERENCES sessions(name) ON DELETE CASCADE,
    tracker_id  TEXT NOT NULL,
    template    TEXT NOT NULL,
    created     REAL NOT NULL
);
"""

class Phase(str, enum.Enum):
    """Where a job is in pydrmaa2's own life cycle (``jobs.phase``), beside its DRMAA2 state."""

    HELD = "held"              # held in the store (emulated hold): submitted on release
    PENDING = "pending"        # an array task waiting for a free slot
    SCHEDULED = "scheduled"    # waiting in the store for its start_time
    STARTING = "starting"      # claimed by a process that is submitting it
    SUBMITTED = "submitted"    # in the engine, under tracker_id
    TERMINAL = "terminal"      # ended; its state and JobInfo are kept in the row

    def __str__(self) -> str:
        return self.value


#: A session's job ids in order, as one string (SQLite 3.44 takes the order inside the
#: aggregate; before, it follows the subquery's order).
JOB_IDS = ("SELECT group_concat(id, ',' ORDER BY id) FROM jobs WHERE session=?"
           if sqlite3.sqlite_version_info >= (3, 44) else
           "SELECT group_concat(id, ',') FROM (SELECT id FROM jobs WHERE session=? ORDER BY id)")

JOB_SELECT = (
    "SELECT jobs.id, jobs.session, jobs.array_id, jobs.task_index, "
    "COALESCE(jobs.template, arrays.template), jobs.tracker_id, jobs.phase, jobs.state, "
    "jobs.sub_state, jobs.info, jobs.submitted, jobs.end_note, COALESCE(jobs.cwd, arrays.cwd) "
    "FROM jobs LEFT JOIN arrays ON arrays.id = jobs.array_id")


@dataclass
class JobRow:
    """One row of ``jobs``; ``template`` is already the array's template for array tasks."""

    id: str
    session: str
    array_id: str | None
    task_index: int | None
    template: str | None
    tracker_id: str | None
    phase: Phase
    state: str
    sub_state: str | None
    info: str | None
    submitted: float
    end_note: str | None = None
    cwd: str | None = None  # the submitter's directory, for a start left for later

    @classmethod
    def from_tuple(cls, t: Sequence[Any]) -> JobRow:
        return cls(str(t[0]), t[1], None if t[2] is None else str(t[2]), t[3], t[4],
                   t[5], Phase(t[6]), t[7], t[8], t[9], t[10], t[11], t[12])


@dataclass(frozen=True)
class ArrayRow:
    """One row of ``arrays``: a job array whose tasks the store holds."""

    id: str
    template: str
    begin: int
    end: int
    step: int
    max_parallel: int | None


@dataclass(frozen=True)
class Timer:
    """A start_time or deadline_time the agent keeps for a job or a whole array."""

    id: int
    session: str
    job_id: str | None
    array_id: str | None
    kind: str       # 'start' | 'deadline'
    at: float       # seconds since the epoch


#: Stores holding reserved job ids, given back at exit.
_RESERVING: weakref.WeakSet[Store] = weakref.WeakSet()


@atexit.register
def _give_back_all() -> None:
    for store in list(_RESERVING):
        with contextlib.suppress(Exception):
            store.give_back_reserved()


_CLAIMER: tuple[int, str] | None = None


def claimer() -> str:
    """This process as a claimer of jobs: 'pid:start time' (a reused pid is another claimer)."""
    global _CLAIMER
    pid = os.getpid()
    if _CLAIMER is None or _CLAIMER[0] != pid:
        _CLAIMER = (pid, f"{pid}:{psutil.Process(pid).create_time():.2f}")
    return _CLAIMER[1]


def claimer_alive(who: str | None) -> bool:
    """Whether the process that made a claim still runs (a claim with no claimer: no)."""
    if not who:
        return False
    pid, _, started = who.partition(":")
    try:
        return f"{psutil.Process(int(pid)).create_time():.2f}" == started
    except (psutil.Error, ValueError):
        return False


def default_home() -> Path:
    """``$PYDRMAA2_HOME``, else ``$XDG_DATA_HOME/pydrmaa2`` (``~/.local/share/pydrmaa2``)."""
    if os.environ.get("PYDRMAA2_HOME"):
        return Path(os.environ["PYDRMAA2_HOME"]).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME") or os.path.expanduser("~/.local/share")
    return Path(xdg) / "pydrmaa2"


class Store:
    """Sessions, jobs, arrays and reservations in one SQLite file (its SQL stays here)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.db = Database(self.path, SCHEMA)
        # A store written before these columns existed gets them (checked again under the
        # write lock: another process may be adding them too).
        wanted = {"jobs": {"claimer", "end_note", "cwd", "context"}, "arrays": {"cwd", "context"}}
        if any(columns - {r[1] for r in self.db.query(f"PRAGMA table_info({table})")}
               for table, columns in wanted.items()):
            with self.db.transaction() as db:
                for table, columns in wanted.items():
                    have = {r[1] for r in db.execute(f"PRAGMA table_info({table})")}
                    for column in sorted(columns - have):
                        db.execute(f"ALTER TABLE {table} ADD COLUMN {column} TEXT")
        self._lock = threading.Lock()
        self._reserved: dict[str | None, list[str]] = {}  # per session
        self._reserved_pid = os.getpid()

    # -- sessions ----------------------------------------------------------------------------------
    def create_session(self, name: str, kind: str, contact: str) -> None:
        with self.db.transaction() as db:
            try:
                db.execute("INSERT INTO sessions(name, kind, contact, created) VALUES (?,?,?,?)",
                           (name, kind, contact, time.time()))
            except sqlite3.IntegrityError:
                raise InvalidArgumentError(f"a session named {name!r} already exists") from None

    def session(self, name: str, kind: str) -> tuple[str, float] | None:
        """(contact, created) of the session, or None."""
        rows = self.db.query("SELECT contact, created FROM sessions WHERE name=? AND kind=?",
                          (name, kind))
        return rows[0] if rows else None

    def session_names(self, kind: str) -> list[str]:
        return [r[0] for r in self.db.query("SELECT name FROM sessions WHERE kind=? ORDER BY created",
                                         (kind,))]

    def destroy_session(self, name: str, kind: str) -> bool:
        with self.db.transaction() as db:
            db.execute("DELETE FROM id_claims WHERE session=?", (name,))
            return db.execute("DELETE FROM sessions WHERE name=? AND kind=?", (name, kind)).rowcount > 0

    # -- arrays ------------------------------------------------------------------------------------
    def add_array(self, session: str, template: str, begin: int, end: int, step: int,
                  max_parallel: int | None, tasks: Sequence[tuple[int, str, str]],
                  timers: Sequence[tuple[str, float]] = (),
                  cwd: str | None = None, context: str | None = None) -> tuple[str, list[str]]:
        """Insert an array and its tasks (index, phase, state), with the (kind, at) timers of
        the whole array and its submitter's directory and context; return the array id and
        task ids. Tasks inserted 'starting' are claimed by this process (as ``claim_pending``
        claims them), so that no other claimer counts them free in between."""
        now = time.time()
        with self.db.transaction() as db:
            cur = db.execute(
                "INSERT INTO arrays(session, template, begin_index, end_index, step, max_parallel, "
                "created, cwd, context) VALUES (?,?,?,?,?,?,?,?,?)",
                (session, template, begin, end, step, max_parallel, now, cwd, context))
            array_id = cur.lastrowid
            me = claimer()  # tasks inserted 'starting' are claimed by this process
            db.executemany(
                "INSERT INTO jobs(session, array_id, task_index, phase, state, submitted, claimer) "
                "VALUES (?,?,?,?,?,?,?)",
                [(session, array_id, index, phase, state, now, me if phase == "starting" else None)
                 for index, phase, state in tasks])
            ids = [str(r[0]) for r in db.execute(
                "SELECT id FROM jobs WHERE array_id=? ORDER BY id", (array_id,))]
            self._add_timers(db, session, None, str(array_id), timers)
        return str(array_id), ids

    def array(self, session: str, array_id: str) -> ArrayRow | None:
        rows = self.db.query("SELECT id, template, begin_index, end_index, step, max_parallel "
                             "FROM arrays WHERE session=? AND id=?", (session, array_id))
        return ArrayRow(str(rows[0][0]), *rows[0][1:]) if rows else None

    def delete_array(self, array_id: str) -> None:
        """Forget an array and its tasks."""
        with self.db.transaction() as db:
            db.execute("DELETE FROM arrays WHERE id=?", (array_id,))

    def last_job_id(self) -> int:
        """The highest job id ever handed out (reserved ones included); 0 in a new store."""
        rows = self.db.query("SELECT seq FROM sqlite_sequence WHERE name='jobs'")
        return rows[0][0] if rows else 0

    def array_first_id(self, array_id: str) -> str | None:
        """The first job id of an array (its tasks' kept output is named after it)."""
        rows = self.db.query("SELECT MIN(id) FROM jobs WHERE array_id=?", (array_id,))
        return None if not rows or rows[0][0] is None else str(rows[0][0])

    def array_job_ids(self, array_id: str) -> list[str]:
        return [str(r[0]) for r in self.db.query(
            "SELECT id FROM jobs WHERE array_id=? ORDER BY id", (array_id,))]

    def arrays_with_pending(self, session: str | None = None) -> list[tuple[str, str]]:
        """(session, array id) of arrays that still have tasks waiting for a slot (or being
        started: their claimer may have died)."""
        sql = ("SELECT DISTINCT session, array_id FROM jobs WHERE phase != 'terminal' AND "
               "phase IN ('pending','starting') AND array_id IS NOT NULL")
        params: tuple[str, ...] = ()
        if session is not None:
            sql += " AND session=?"
            params = (session,)
        return [(r[0], str(r[1])) for r in self.db.query(sql, params)]

    def array_rows(self, array_id: str, phases: Sequence[str]) -> list[JobRow]:
        """The tasks of an array in these phases (by the array's index: no scan of the rest)."""
        return [JobRow.from_tuple(r) for r in self.db.query(
            f"{JOB_SELECT} WHERE jobs.array_id=? AND jobs.phase IN ({','.join('?' * len(phases))}) "
            "ORDER BY jobs.id", (array_id, *phases))]

    def still_active(self, job_ids: Sequence[str]) -> dict[str, tuple[Phase, str | None]]:
        """(phase, tracker id) of those of these jobs still 'starting' or 'submitted' (not
        ended as recorded, reaped, nor put back to wait), 500 a query."""
        out: dict[str, tuple[Phase, str | None]] = {}
        for i in range(0, len(job_ids), 500):
            chunk = list(job_ids[i:i + 500])
            out.update((str(r[0]), (Phase(r[1]), r[2])) for r in self.db.query(
                f"SELECT id, phase, tracker_id FROM jobs WHERE id IN ({','.join('?' * len(chunk))}) "
                "AND phase IN ('starting','submitted')", chunk))
        return out

    def array_waiting(self, array_id: str) -> bool:
        """Whether a task of the array still waits for a slot, or to be settled (let go
        'starting' when the engine did not answer its submission: ``unclaim_starting``)."""
        return bool(self.db.query("SELECT EXISTS(SELECT 1 FROM jobs WHERE array_id=? AND "
                               "(phase='pending' OR (phase='starting' AND claimer IS NULL)))",
                               (array_id,))[0][0])

    def claim_pending(self, array_id: str, max_parallel: int | None,
                      chunk: int | None = None) -> list[JobRow]:
        """Atomically move as many pending tasks to 'starting' as the array's free slots allow
        (at most ``chunk``)."""
        with self.db.transaction() as db:
            limit = chunk or -1
            if max_parallel:
                active = db.execute(
                    "SELECT COUNT(*) FROM jobs WHERE array_id=? AND phase IN ('starting','submitted')",
                    (array_id,)).fetchone()[0]
                limit = max(0, max_parallel - active)
                if chunk:
                    limit = min(limit, chunk)
                if limit == 0:
                    return []
            rows = db.execute(
                f"{JOB_SELECT} WHERE jobs.array_id=? AND jobs.phase='pending' "
                "ORDER BY jobs.id LIMIT ?", (array_id, limit)).fetchall()
            db.executemany("UPDATE jobs SET phase='starting', claimer=? WHERE id=?",
                           [(claimer(), r[0]) for r in rows])
        return [JobRow.from_tuple(r) for r in rows]

    def claim_held(self, job_id: str) -> bool:
        """Atomically move a held job to 'starting' for this process to submit it."""
        with self.db.transaction() as db:
            return db.execute("UPDATE jobs SET phase='starting', state='queued', sub_state=NULL, "
                              "claimer=? WHERE id=? AND phase='held'",
                              (claimer(), job_id)).rowcount > 0

    def claim_scheduled(self, job_id: str) -> bool:
        """Atomically move a job waiting for its start_time to 'starting' for this process."""
        with self.db.transaction() as db:
            return db.execute("UPDATE jobs SET phase='starting', sub_state=NULL, claimer=? "
                              "WHERE id=? AND phase='scheduled'", (claimer(), job_id)).rowcount > 0

    def unschedule_array(self, array_id: str) -> int:
        """The tasks of an array that waited for its start_time now wait for a slot."""
        with self.db.transaction() as db:
            return db.execute("UPDATE jobs SET phase='pending', sub_state=NULL "
                              "WHERE array_id=? AND phase='scheduled'", (array_id,)).rowcount

    def stale_starting(self, session: str, array_id: str | None = None) -> list[JobRow]:
        """Jobs in 'starting' whose claimer has died (it will never record them) or let them go
        (``unclaim_starting``), claimed now by this process: one recoverer settles each (a
        second one, looking at once, finds them claimed; it finds them again if this process
        dies, or lets them go, first)."""
        sql = "SELECT id, claimer FROM jobs WHERE session=? AND phase != 'terminal' AND phase='starting'"
        params: tuple[str, ...] = (session,)
        if array_id is not None:
            sql, params = sql + " AND array_id=?", (session, array_id)
        alive: dict[str | None, bool] = {}

        def stale(who: str | None) -> bool:
            if who not in alive:
                alive[who] = claimer_alive(who)
            return not alive[who]

        if not any(stale(who) for _, who in self.db.query(sql, params)):
            return []  # (the common case: read only)
        with self.db.transaction() as db:
            me = claimer()
            taken = [str(job_id) for job_id, who in db.execute(sql, params).fetchall()
                     if stale(who) and db.execute(
                         "UPDATE jobs SET claimer=? WHERE id=? AND phase='starting' AND "
                         "claimer IS ?", (me, job_id, who)).rowcount]
        return self.job_rows(session, taken) if taken else []

    # -- jobs --------------------------------------------------------------------------------------
    def add_job(self, session: str, template: str, phase: str, state: str,
                timers: Sequence[tuple[str, float]] = (), cwd: str | None = None,
                context: str | None = None) -> str:
        """Insert a job the engine does not have yet, with its (kind, at) timers and its
        submitter's directory and context."""
        with self.db.transaction() as db:
            cur = db.execute("INSERT INTO jobs(session, template, phase, state, submitted, cwd, "
                             "context) VALUES (?,?,?,?,?,?,?)",
                             (session, template, phase, state, time.time(), cwd, context))
            self._add_timers(db, session, str(cur.lastrowid), None, timers)
            return str(cur.lastrowid)

    def reserve_job_id(self, session: str | None = None) -> str:
        """A job id nobody else will get, for a job of ``session`` whose row is written once it
        is submitted (``add_submitted_job``): from this process's reserve, else in a
        transaction of its own. Until its row is written the id is claimed by this process (a
        claimer that dies leaves the claim for ``dead_claims``). An id whose submission failed
        is not used again (the engine may have seen it)."""
        with self._reserve_lock():
            if self._reserved.get(session):
                return self._reserved[session].pop()
        with self.db.transaction() as db:
            return self._next_job_id(db, session)

    def reserve_job_ids(self, count: int, session: str | None = None) -> list[str]:
        """``count`` consecutive job ids nobody else will get (a native array's tasks)."""
        with self.db.transaction() as db:
            first = int(self._next_job_id(db, session))
            if count > 1:
                db.execute("UPDATE sqlite_sequence SET seq=seq+? WHERE name='jobs'", (count - 1,))
                db.executemany("INSERT OR REPLACE INTO id_claims(id, session, claimer) "
                               "VALUES (?,?,?)",
                               [(first + k, session, claimer()) for k in range(1, count)])
        return [str(first + k) for k in range(count)]

    def release_claims(self, job_ids: Sequence[str]) -> None:
        """Forget the claims on ids whose submission is settled (recorded, failed, withdrawn)."""
        with self.db.transaction() as db:
            db.executemany("DELETE FROM id_claims WHERE id=?", [(int(j),) for j in job_ids])

    def dead_claims(self, session: str) -> list[str]:
        """Ids of ``session`` handed out to a process that died before it recorded their
        submission: the engine may hold a job no row claims."""
        return [str(r[0]) for r in self.db.query(
            "SELECT id, claimer FROM id_claims WHERE session=? ORDER BY id", (session,))
            if not claimer_alive(r[1])]

    def add_submitted_array(self, session: str, template: str,
                            shape: tuple[int, int, int, int | None],
                            tasks: Sequence[tuple[str, int, str]], state: str,
                            submitted: float, cwd: str | None = None) -> str:
        """Write an array the engine has already, with its tasks (reserved id, index, tracker
        id) and its submitter's directory, in one transaction; return the array's id."""
        begin, end, step, max_parallel = shape
        with self.db.transaction() as db:
            try:
                array_id = db.execute(
                    "INSERT INTO arrays(session, template, begin_index, end_index, step, "
                    "max_parallel, created) VALUES (?,?,?,?,?,?,?)",
                    (session, template, begin, end, step, max_parallel, submitted)).lastrowid
                db.executemany(
                    "INSERT INTO jobs(id, session, array_id, task_index, tracker_id, phase, state, "
                    "submitted, cwd) VALUES (?,?,?,?,?,'submitted',?,?,?)",
                    [(int(job_id), session, array_id, index, tid, state, submitted, cwd)
                     for job_id, index, tid in tasks])
                db.executemany("DELETE FROM id_claims WHERE id=?",
                               [(int(job_id),) for job_id, _, _ in tasks])
            except sqlite3.IntegrityError as e:  # the session's row is gone (foreign key)
                raise InvalidSessionError(
                    f"job session {session!r} was destroyed while an array was submitted") from e
        return str(array_id)

    def give_back_reserved(self) -> None:
        """Return this process's reserved ids to the sequence where nobody has taken a later
        one (called at exit), so that one program after another gets consecutive job ids."""
        if self._reserved_pid != os.getpid():  # a forked child: the reserve is its parent's
            return
        with self._reserve_lock():
            ids = [j for reserve in self._reserved.values() for j in reserve]
            self._reserved = {}
        if ids:
            with self.db.transaction() as db:
                for job_id in sorted(ids, key=int, reverse=True):
                    db.execute("UPDATE sqlite_sequence SET seq=seq-1 WHERE name='jobs' AND seq=?",
                               (int(job_id),))
                    db.execute("DELETE FROM id_claims WHERE id=?", (int(job_id),))

    def add_submitted_job(self, session: str, job_id: str, template: str, state: str,
                          tracker_id: str, submitted: float,
                          timers: Sequence[tuple[str, float]] = (),
                          cwd: str | None = None) -> None:
        """Write the row of a job that is in its engine already, under its reserved id, with
        its submitter's directory (where its relative paths are); the same transaction reserves
        the next id of this process for the session, so a submission costs one transaction."""
        with self.db.transaction() as db:
            try:
                db.execute("INSERT INTO jobs(id, session, template, phase, state, tracker_id, "
                           "submitted, cwd) VALUES (?,?,?,'submitted',?,?,?,?)",
                           (int(job_id), session, template, state, tracker_id, submitted, cwd))
            except sqlite3.IntegrityError as e:  # the session's row is gone (foreign key)
                raise InvalidSessionError(
                    f"job session {session!r} was destroyed while job {job_id} was submitted"
                ) from e
            db.execute("DELETE FROM id_claims WHERE id=?", (int(job_id),))
            self._add_timers(db, session, job_id, None, timers)
            following = self._next_job_id(db, session)
        with self._reserve_lock():
            self._reserved.setdefault(session, []).append(following)
        _RESERVING.add(self)

    def _reserve_lock(self) -> threading.Lock:
        """The lock of this process's reserve: a forked child starts with a fresh lock and an
        empty reserve (its parent's ids are its parent's, and a lock held by another thread
        at the fork would never be released in the child)."""
        if self._reserved_pid != os.getpid():
            self._lock, self._reserved, self._reserved_pid = threading.Lock(), {}, os.getpid()
        return self._lock

    @staticmethod
    def _next_job_id(db: sqlite3.Connection, session: str | None) -> str:
        """Take the next id of ``jobs``' AUTOINCREMENT sequence (never handed out again),
        claimed by this process for a submission to ``session``."""
        if db.execute("UPDATE sqlite_sequence SET seq=seq+1 WHERE name='jobs'").rowcount == 0:
            db.execute("INSERT INTO sqlite_sequence(name, seq) "
                       "SELECT 'jobs', COALESCE(MAX(id), 0) + 1 FROM jobs")
        job_id = db.execute("SELECT seq FROM sqlite_sequence WHERE name='jobs'").fetchone()[0]
        db.execute("INSERT OR REPLACE INTO id_claims(id, session, claimer) VALUES (?,?,?)",
                   (job_id, session, claimer()))
        return str(job_id)

    def job(self, job_id: str) -> JobRow | None:
        rows = self.db.query(f"{JOB_SELECT} WHERE jobs.id=?", (job_id,))
        return JobRow.from_tuple(rows[0]) if rows else None

    def job_state(self, job_id: str) -> tuple[str, str, str | None, str | None] | None:
        """(phase, state, sub_state, tracker_id): the cheap read behind ``job.state``."""
        rows = self.db.query("SELECT phase, state, sub_state, tracker_id FROM jobs WHERE id=?", (job_id,))
        return rows[0] if rows else None

    def job_session(self, job_id: str) -> str | None:
        """The name of the session a job belongs to (None: no such job)."""
        rows = self.db.query("SELECT session FROM jobs WHERE id=?", (job_id,))
        return rows[0][0] if rows else None

    def context_of(self, row: JobRow) -> str | None:
        """What the tracker kept of the job's submitter for a start left for later (JSON of
        ``JobTracker.submitter_context``: the process tracker's environment and umask), the
        array's for a task; read only to start the job (rows do not carry it: an environment
        on each of a large array's rows would cost memory for nothing)."""
        if row.array_id is not None:
            rows = self.db.query("SELECT context FROM arrays WHERE id=?", (int(row.array_id),))
        else:
            rows = self.db.query("SELECT context FROM jobs WHERE id=?", (int(row.id),))
        return rows[0][0] if rows else None

    def job_ids(self, session: str) -> list[str]:
        # One string from sqlite, split: a million ids in a fifth of the time that a row (a
        # tuple) per id takes.
        ((joined,),) = self.db.query(JOB_IDS, (session,))
        return joined.split(",") if joined else []

    def ended_job_ids(self, session: str) -> set[str]:
        """The ids of the session's jobs whose end is recorded."""
        return {str(r[0]) for r in self.db.query(
            "SELECT id FROM jobs WHERE session=? AND phase='terminal'", (session,))}

    def job_rows(self, session: str, ids: Sequence[str] | None = None) -> list[JobRow]:
        sql = f"{JOB_SELECT} WHERE jobs.session=?"
        params: list[Any] = [session]
        if ids is not None:
            sql += f" AND jobs.id IN ({','.join('?' * len(ids))})"
            params += list(ids)
        return [JobRow.from_tuple(r) for r in self.db.query(sql + " ORDER BY jobs.id", params)]

    def set_phase(self, job_id: str, phase: str, state: str, *, expect: Sequence[str] | None = None,
                  tracker_id: str | None = None, sub_state: str | None = None,
                  info: str | None = None) -> bool:
        """Move a job to a new phase; with ``expect``, only from one of those phases (atomic)."""
        sql = "UPDATE jobs SET phase=?, state=?, sub_state=?"
        params: list[Any] = [phase, state, sub_state]
        if tracker_id is not None:
            sql += ", tracker_id=?"
            params.append(tracker_id)
        if info is not None:
            sql += ", info=?"
            params.append(info)
        sql += " WHERE id=?"
        params.append(job_id)
        if expect:
            sql += f" AND phase IN ({','.join('?' * len(expect))})"
            params += list(expect)
        with self.db.transaction() as db:
            return db.execute(sql, params).rowcount > 0

    def unclaim_starting(self, job_ids: Sequence[str]) -> None:
        """Let go the claim on jobs still 'starting' whose submission cannot be settled now
        (the engine did not answer): ``stale_starting`` hands them to whoever recovers next."""
        with self.db.transaction() as db:
            db.executemany("UPDATE jobs SET claimer=NULL WHERE id=? AND phase='starting'",
                           [(j,) for j in job_ids])

    def set_submitted(self, jobs: Sequence[tuple[str, str]]) -> None:
        """Record (id, tracker id) of jobs the engine accepted, in one transaction."""
        with self.db.transaction() as db:
            db.executemany("UPDATE jobs SET phase='submitted', state='queued', tracker_id=? "
                           "WHERE id=?", [(tid, job_id) for job_id, tid in jobs])

    def set_terminal(self, jobs: Sequence[tuple[str, str, str, str]]) -> None:
        """Record (id, state, sub_state, info JSON) of jobs seen ended, in one transaction."""
        with self.db.transaction() as db:
            db.executemany("UPDATE jobs SET phase='terminal', state=?, sub_state=?, info=? "
                           "WHERE id=? AND phase='submitted'",
                           [(st, sub, info, job_id) for job_id, st, sub, info in jobs])

    # -- timers (start_time and deadline_time the engine cannot keep) ------------------------------
    @staticmethod
    def _add_timers(db: sqlite3.Connection, session: str, job_id: str | None,
                    array_id: str | None, timers: Sequence[tuple[str, float]]) -> None:
        db.executemany("INSERT INTO timers(session, job_id, array_id, kind, at) VALUES (?,?,?,?,?)",
                       [(session, job_id, array_id, kind, at) for kind, at in timers])

    def timers(self) -> list[Timer]:
        """Every timer still to fire, soonest first."""
        return [Timer(r[0], r[1], None if r[2] is None else str(r[2]),
                      None if r[3] is None else str(r[3]), r[4], r[5])
                for r in self.db.query("SELECT id, session, job_id, array_id, kind, at FROM timers "
                                    "ORDER BY at, id")]

    def start_timer_of(self, job_id: str, array_id: str | None) -> float | None:
        """When a job (or its array) is to start, if that is still kept by a timer."""
        rows = self.db.query("SELECT MAX(at) FROM timers WHERE kind='start' AND "
                          "(job_id=? OR (array_id IS NOT NULL AND array_id=?))",
                          (job_id, array_id))
        return rows[0][0] if rows else None

    def drop_timer(self, timer_id: int) -> None:
        with self.db.transaction() as db:
            db.execute("DELETE FROM timers WHERE id=?", (timer_id,))

    def set_end_note(self, job_id: str, note: str | None) -> bool:
        """Say why the generic layer is ending a job (None: it is not after all); only while
        the job's end is not recorded. Its recorded end then carries the note."""
        with self.db.transaction() as db:
            return db.execute("UPDATE jobs SET end_note=? WHERE id=? AND phase!='terminal'",
                              (note, job_id)).rowcount > 0

    def end_notes(self, job_ids: Sequence[str]) -> dict[str, str]:
        """The end notes of those of these jobs that have one."""
        out: dict[str, str] = {}
        for i in range(0, len(job_ids), 500):
            chunk = list(job_ids[i:i + 500])
            out.update((str(r[0]), r[1]) for r in self.db.query(
                f"SELECT id, end_note FROM jobs WHERE id IN ({','.join('?' * len(chunk))}) "
                "AND end_note IS NOT NULL", chunk))
        return out

    def delete_job(self, job_id: str) -> None:
        with self.db.transaction() as db:
            db.execute("DELETE FROM jobs WHERE id=?", (job_id,))

    # -- reservations ------------------------------------------------------------------------------
    def add_reservation(self, session: str, tracker_id: str, template: str) -> str:
        with self.db.transaction() as db:
            return str(db.execute(
                "INSERT INTO reservations(session, tracker_id, template, created) VALUES (?,?,?,?)",
                (session, tracker_id, template, time.time())).lastrowid)

    def reservations(self, session: str) -> list[tuple[str, str, str]]:
        return [(str(r[0]), r[1], r[2]) for r in self.db.query(
            "SELECT id, tracker_id, template FROM reservations WHERE session=? ORDER BY id",
            (session,))]

    def delete_reservation(self, reservation_id: str) -> None:
        with self.db.transaction() as db:
            db.execute("DELETE FROM reservations WHERE id=?", (reservation_id,))


#: One encoder for every dumps: json.dumps with separators builds a new one each call (a third
#: of the time of encoding a JobInfo).
_COMPACT = json.JSONEncoder(separators=(",", ":"))


def dumps(data: Any) -> str:
    """``data`` as compact JSON, as the store keeps templates and infos."""
    return _COMPACT.encode(data)
