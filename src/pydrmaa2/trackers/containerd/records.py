"""What the tracker keeps that containerd forgets: a row a container in ``containerd.sqlite``
(held, terminated, times, how its task ended, its stage-out), the exit status kept once the task
is deleted."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ...database import Database

__all__ = ["SCHEMA", "ADDED_COLUMNS", "COLUMNS", "Row", "open_records"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS containers (
    cid         TEXT PRIMARY KEY,
    held        INTEGER NOT NULL DEFAULT 0,
    terminated  INTEGER NOT NULL DEFAULT 0,
    submitted   REAL NOT NULL,
    started     REAL,
    finished    REAL,     -- set once the job is over, its files staged out: it is terminal
    exit_status INTEGER,
    sub_state   TEXT,
    annotation  TEXT,
    exited      REAL,     -- when the task exited, kept before the task is deleted
    cpu_time    REAL,     -- seconds, the task's cgroup's CPU time when it exited
    stage_out   TEXT      -- JSON [[host path, container path], ...]
);
"""
#: Columns a store written before them gets when it is opened.
ADDED_COLUMNS = {"exited": "REAL", "cpu_time": "REAL", "stage_out": "TEXT"}
#: The columns a Row holds, in its order.
COLUMNS = ("cid, held, terminated, submitted, started, finished, exit_status, sub_state, "
           "annotation, exited, cpu_time")


@dataclass
class Row:
    """One container's row (see SCHEMA)."""

    cid: str
    held: bool
    terminated: bool
    submitted: float
    started: float | None
    finished: float | None
    exit_status: int | None
    sub_state: str | None
    annotation: str | None
    exited: float | None
    cpu_time: float | None


def open_records(path: Path) -> Database:
    """The tracker's SQLite file; one written before ADDED_COLUMNS gets them."""
    db = Database(path, SCHEMA)
    for column, kind in ADDED_COLUMNS.items():
        if not any(r[1] == column for r in db.query("PRAGMA table_info(containers)")):
            with db.transaction() as conn:  # re-checked under the write lock: another may have
                if not any(r[1] == column for r in conn.execute("PRAGMA table_info(containers)")):
                    conn.execute(f"ALTER TABLE containers ADD COLUMN {column} {kind}")
    return db
