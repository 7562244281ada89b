"""One look at Slurm per poll interval for every program of a store: the last look, shared.

Each program of a user used to ask squeue (and sacct) for the jobs it read or waited on, so ten
programs waiting cost ten times the scheduler's RPCs. Here the last look at *all* of the store's
live Slurm jobs is kept in ``slurm.sqlite``: a read finds it there while it is fresher than
FRESH seconds; otherwise the one program that takes the poll lock (an ``flock``, so a program that
dies releases it) asks squeue and sacct about every live job of the store at once, writes what
they said, and the programs that waited on the lock read that. A job the store submitted is in
the table from its submission, so reading the states of many jobs one by one costs one look.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ...database import Database
from ...states import JobState

SCHEMA = """
CREATE TABLE IF NOT EXISTS seen (
    cluster  TEXT NOT NULL,
    tid      TEXT NOT NULL,
    state    TEXT,
    sub      TEXT,
    queue    TEXT,
    acct     TEXT,
    note     TEXT,
    dirty    INTEGER NOT NULL DEFAULT 1,  -- not looked at since submitted or acted on
    final    INTEGER NOT NULL DEFAULT 0,
    ended    REAL,
    PRIMARY KEY (cluster, tid)
);
CREATE INDEX IF NOT EXISTS seen_live ON seen(cluster, final);
CREATE TABLE IF NOT EXISTS looks (
    cluster   TEXT PRIMARY KEY,
    looked_at REAL NOT NULL           -- when the last look at every live job began
);
"""

#: A look younger than this answers a read (the scheduler is asked at most once per FRESH).
FRESH = 0.5
#: Ended jobs' rows are kept this long after their end was seen (their JobInfo; reaping drops
#: them sooner).
KEEP_FINAL = 7 * 24 * 3600.0


@dataclass
class Look:
    """What one look at a job found: its state, and squeue's and sacct's records."""

    state: JobState
    sub: str
    queue: dict[str, str] | None
    acct: dict[str, str] | None
    note: str | None


#: The tracker's look at jobs by their tracker ids: states, and each job's records.
Looker = Callable[[Sequence[str]], Mapping[str, Look]]


class SharedLook:
    """The store's last look at its Slurm jobs on one cluster, and the lock of whoever looks."""

    def __init__(self, home: Path, cluster: str | None) -> None:
        self.cluster = cluster or ""
        self.db = Database(Path(home) / "slurm.sqlite", SCHEMA)
        self.lock_path = Path(home) / "slurm.poll.lock"
        #: How young a look answers a read (FRESH; 0: every read looks).
        self.fresh = FRESH

    # -- the table ---------------------------------------------------------------------------------
    def add(self, tids: Sequence[str]) -> None:
        """Jobs just submitted: live until a look sees them ended."""
        with self.db.transaction() as db:
            db.executemany("INSERT OR IGNORE INTO seen(cluster, tid) VALUES (?, ?)",
                           [(self.cluster, t) for t in tids])

    def stale(self, tids: Sequence[str]) -> None:
        """Jobs just acted on (hold, release, terminate...): the next read looks again."""
        with self.db.transaction() as db:
            db.executemany("UPDATE seen SET dirty=1 WHERE cluster=? AND tid=? AND final=0",
                           [(self.cluster, t) for t in tids])

    def forget(self, tids: Sequence[str]) -> None:
        """Jobs reaped: no longer the store's."""
        with self.db.transaction() as db:
            db.executemany("DELETE FROM seen WHERE cluster=? AND tid=?",
                           [(self.cluster, t) for t in tids])

    def looked_at(self) -> float:
        """When the last look at every live job began (0: never)."""
        rows = self.db.query("SELECT looked_at FROM looks WHERE cluster=?", (self.cluster,))
        return float(rows[0][0]) if rows else 0.0

    def read(self, tids: Sequence[str] | None) -> dict[str, tuple[Look, bool]]:
        """The last look at these jobs (None: at every live job) with whether it is out of date
        (the job was acted on since); jobs never looked at are missing."""
        out: dict[str, tuple[Look, bool]] = {}
        sql = ("SELECT tid, state, sub, queue, acct, note, dirty FROM seen WHERE cluster=? "
               "AND state IS NOT NULL")
        if tids is None:
            chunks: list[list[str]] = [[]]
            sql += " AND final=0"
        else:
            chunks = [list(tids[i:i + 500]) for i in range(0, len(tids), 500)]
        for chunk in chunks:
            where = f" AND tid IN ({','.join('?' * len(chunk))})" if tids is not None else ""
            for tid, state, sub, queue, acct, note, dirty in self.db.query(
                    sql + where, (self.cluster, *chunk)):
                out[tid] = (Look(JobState(state), sub or "",
                                 json.loads(queue) if queue else None,
                                 json.loads(acct) if acct else None, note), bool(dirty))
        return out

    def _live(self) -> list[str]:
        return [r[0] for r in self.db.query(
            "SELECT tid FROM seen WHERE cluster=? AND final=0", (self.cluster,))]

    def _write(self, looks: Mapping[str, Look], before: Mapping[str, tuple[Look, bool]],
               began: float) -> None:
        """Record a look at every live job: the rows that changed, and when it began."""
        now = time.time()
        changed = [(tid, lk) for tid, lk in looks.items()
                   if tid not in before or before[tid][1] or before[tid][0] != lk]
        with self.db.transaction() as db:
            db.executemany(
                "INSERT INTO seen(cluster, tid, state, sub, queue, acct, note, dirty, final, ended) "
                "VALUES (?,?,?,?,?,?,?,0,?,?) ON CONFLICT(cluster, tid) DO UPDATE SET "
                "state=excluded.state, sub=excluded.sub, queue=excluded.queue, "
                "acct=excluded.acct, note=excluded.note, dirty=0, final=excluded.final, "
                "ended=excluded.ended",
                [(self.cluster, tid, lk.state.value, lk.sub,
                  json.dumps(lk.queue) if lk.queue is not None else None,
                  json.dumps(lk.acct) if lk.acct is not None else None, lk.note,
                  int(lk.state.is_terminal), now if lk.state.is_terminal else None)
                 for tid, lk in changed])
            db.execute("INSERT INTO looks(cluster, looked_at) VALUES (?, ?) ON CONFLICT(cluster) "
                       "DO UPDATE SET looked_at=excluded.looked_at", (self.cluster, began))
            db.execute("DELETE FROM seen WHERE cluster=? AND final=1 AND ended < ?",
                       (self.cluster, now - KEEP_FINAL))

    @contextlib.contextmanager
    def _poll_lock(self) -> Iterator[None]:
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock

    # -- reading -----------------------------------------------------------------------------------
    def looks(self, tids: Sequence[str], look: Looker) -> tuple[dict[str, Look], float]:
        """The looks at these jobs and when they began: the last one where it is fresh (or the
        job has ended), else a new look at every live job of the store, by whoever gets the
        lock first."""
        def usable(found: Mapping[str, tuple[Look, bool]], at: float) -> bool:
            fresh = time.time() - at < self.fresh
            return all(t in found and (found[t][0].state.is_terminal or (fresh and not found[t][1]))
                       for t in tids)

        found, at = self.read(tids), self.looked_at()
        if not usable(found, at):
            with self._poll_lock():
                found, at = self.read(tids), self.looked_at()
                if not usable(found, at):  # nobody looked while we waited for the lock
                    began = time.time()
                    todo = list(dict.fromkeys([*self._live(), *tids]))
                    looks = look(todo)
                    self._write(looks, self.read(todo), began)
                    found, at = self.read(tids), began
        return {t: found[t][0] for t in tids if t in found}, at
