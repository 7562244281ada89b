"""What a container engine's tracker keeps about its containers: a private SQLite file
(``docker.sqlite``, ``podman.sqlite`` in the pydrmaa2 home) with a row per container, holding
pydrmaa2's own state of the job that the engine cannot hold, and how it ended once recorded."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...database import Database
from ...states import JobState
from .staging import LocalFiles

__all__ = ["ADDED_COLUMNS", "COLUMNS", "SCHEMA", "ContainerRecords", "ContainerRow",
           "open_records"]

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
#: The columns of a ContainerRow, in its order.
COLUMNS = ("cid, held, terminated, remove, input_path, output_path, error_path, join_files, "
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
    def of(cls, r: tuple[Any, ...]) -> ContainerRow:
        """The row of a query's result (its columns as COLUMNS lists them)."""
        stage_out = tuple((host, inside) for host, inside in json.loads(r[13] or "[]"))
        return cls(r[0], bool(r[1]), bool(r[2]), bool(r[3]),
                   LocalFiles(r[4], r[5], r[6], bool(r[7]), stage_out),
                   JobState(r[8]) if r[8] else None, r[9], r[10], r[11], r[12])


def open_records(path: Path) -> Database:
    """The tracker's SQLite file; one written before a column of ADDED_COLUMNS gets it."""
    db = Database(path, SCHEMA)

    def missing(rows: Sequence[tuple[Any, ...]]) -> list[str]:
        have = {r[1] for r in rows}
        return [c for c in ADDED_COLUMNS if c not in have]

    if missing(db.query("PRAGMA table_info(containers)")):
        with db.transaction() as conn:  # re-checked under the write lock: another may have
            for column in missing(conn.execute("PRAGMA table_info(containers)").fetchall()):
                conn.execute(f"ALTER TABLE containers ADD COLUMN {column} {ADDED_COLUMNS[column]}")
    return db


class ContainerRecords:
    """A tracker's rows, in its SQLite file ``path``."""

    def __init__(self, path: Path) -> None:
        self.db = open_records(path)

    def rows(self, cids: Sequence[str]) -> dict[str, ContainerRow]:
        """The rows of these containers (those the file has)."""
        out: dict[str, ContainerRow] = {}
        for i in range(0, len(cids), _CHUNK):
            chunk = list(cids[i:i + _CHUNK])
            for r in self.db.query(f"SELECT {COLUMNS} FROM containers WHERE cid IN "
                                   f"({','.join('?' * len(chunk))})", chunk):
                out[r[0]] = ContainerRow.of(r)
        return out

    def row(self, cid: str) -> ContainerRow | None:
        """The container's row, None when the file has none."""
        return self.rows([cid]).get(cid)

    def add(self, cid: str, job_id: str, hold: bool, remove: bool, files: LocalFiles,
            starter: str | None = None) -> None:
        """The row of a container just created for a job."""
        with self.db.transaction() as db:
            db.execute(
                "INSERT INTO containers(cid, job_id, held, remove, input_path, output_path, "
                "error_path, join_files, starter, stage_out) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (cid, job_id, int(hold), int(remove), files.input_path, files.output_path,
                 files.error_path, int(files.join_files), starter,
                 json.dumps(files.stage_out) if files.stage_out else None))

    def forget(self, cid: str) -> None:
        """Drop the container's row (its job is reaped, or its submission failed)."""
        with self.db.transaction() as db:
            db.execute("DELETE FROM containers WHERE cid=?", (cid,))

    def set_held(self, cid: str, held: bool) -> None:
        """Whether pydrmaa2 holds the (created, unstarted) container."""
        with self.db.transaction() as db:
            db.execute("UPDATE containers SET held=? WHERE cid=?", (int(held), cid))

    def set_terminated(self, cid: str, terminated: bool) -> None:
        """Whether pydrmaa2 killed the container (its exit of 128+N is then signal N)."""
        with self.db.transaction() as db:
            db.execute("UPDATE containers SET terminated=? WHERE cid=?", (int(terminated), cid))

    def clear_starter(self, cid: str) -> None:
        """The container's background start is done (see ``starter``)."""
        with self.db.transaction() as db:
            db.execute("UPDATE containers SET starter=NULL WHERE cid=?", (cid,))

    def claim_start(self, cid: str, starter: str, claimant: str) -> bool:
        """Make ``claimant`` the starter of a container still left to ``starter``; whether it
        is (another program may have claimed it first)."""
        with self.db.transaction() as db:
            return db.execute("UPDATE containers SET starter=? WHERE cid=? AND starter=?",
                              (claimant, cid, starter)).rowcount > 0

    # -- the end, recorded once: read and written in one ``transaction`` ------------------------
    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction (the file's write lock, re-entrant within a thread)."""
        with self.db.transaction() as db:
            yield db

    @staticmethod
    def row_in(db: sqlite3.Connection, cid: str) -> ContainerRow | None:
        """The container's row, read in the transaction ``db``."""
        rows = db.execute(f"SELECT {COLUMNS} FROM containers WHERE cid=?", (cid,)).fetchall()
        return ContainerRow.of(rows[0]) if rows else None

    @staticmethod
    def record_end(db: sqlite3.Connection, cid: str, state: JobState, sub_state: str,
                   annotation: str | None, record: Mapping[str, Any]) -> None:
        """How the container ended, with its last inspect record, in the transaction ``db``;
        a container without a row gets one (so that it is recorded once)."""
        db.execute(
            "INSERT INTO containers(cid, state, sub_state, annotation, inspect) "
            "VALUES (?,?,?,?,?) ON CONFLICT(cid) DO UPDATE SET state=excluded.state, "
            "sub_state=excluded.sub_state, annotation=excluded.annotation, "
            "inspect=excluded.inspect, held=0",
            (cid, state.value, sub_state, annotation, json.dumps(record)))
