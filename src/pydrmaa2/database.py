"""SQLite in WAL mode with one connection per thread (and per process after fork).

Every SQLite error becomes a named Drmaa2Error that carries the real cause (``__cause__``) and
the file's path; a failed transaction leaves no partial rows.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from .errors import Drmaa2Error, OutOfResourceError, SessionManagementError, TryLaterError

# SQLite's primary result codes (the low byte of sqlite_errorcode).
_BUSY, _LOCKED, _FULL = 5, 6, 13
#: How long a transaction waits for the store's lock (SQLite's busy timeout, and first the
#: other threads of its process), in seconds.
LOCK_WAIT = 60.0

# The threads of one process take turns at writing a file through a lock of their own: SQLite
# makes a writer that finds the file locked sleep in steps of up to 100 ms, so threads writing
# in turn (a tracker's pool ending four containers) lost most of their time asleep. Other
# processes still wait in SQLite. Forgotten in a child after fork (its threads are gone).
_WRITERS: dict[str, threading.Lock] = {}
_WRITERS_GUARD = threading.Lock()


def _writer_lock(key: str) -> threading.Lock:
    lock = _WRITERS.get(key)
    if lock is None:
        with _WRITERS_GUARD:
            lock = _WRITERS.setdefault(key, threading.Lock())
    return lock


os.register_at_fork(after_in_child=_WRITERS.clear)


def _primary_code(e: sqlite3.Error) -> int | None:
    code = getattr(e, "sqlite_errorcode", None)  # Python >= 3.11
    if code is not None:
        return int(code) & 0xFF
    text = str(e).lower()
    if "disk is full" in text:
        return _FULL
    if "locked" in text or "busy" in text:
        return _BUSY
    return None


def store_error(e: sqlite3.Error, path: Path, doing: str) -> Drmaa2Error:
    """The Drmaa2Error for SQLite error ``e`` on the file at ``path`` while ``doing`` something:
    OutOfResourceError for a full disk, TryLaterError for a lock held too long, else
    SessionManagementError. The message names the file and SQLite's own words."""
    code = _primary_code(e)
    words = f"{doing} {path} failed: {e}"
    if code == _FULL:
        err: Drmaa2Error = OutOfResourceError(f"{words} (free some space on its filesystem)")
    elif code in (_BUSY, _LOCKED):
        err = TryLaterError(f"{words} (another program holds the store's lock; try again)")
    else:
        err = SessionManagementError(words)
    err.__cause__ = e
    return err


def private_dir(path: Path) -> None:
    """Create ``path`` (and its parents) so that only its owner can enter it: mode 0700
    whatever the umask; an existing directory of ours is narrowed to 0700, unless it is a
    sticky one, shared by design (root's /tmp, given as a store's home): the files in it are
    0600 all the same."""
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = path.stat()
        if st.st_uid == os.getuid() and st.st_mode & 0o077 and not st.st_mode & stat.S_ISVTX:
            path.chmod(0o700)
    except OSError as e:
        raise SessionManagementError(f"cannot create the directory {path}: {e}") from e


def private_file(path: Path) -> None:
    """Make sure ``path`` exists with mode 0600 (it holds templates, environments, logs).
    An existing file is never opened here: closing any descriptor of a database file drops
    the POSIX locks SQLite holds on it in this process."""
    try:
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600))
        except FileExistsError:
            st = os.stat(path)
            if st.st_mode & 0o077 and st.st_uid == os.getuid():
                os.chmod(path, 0o600)
    except OSError as e:
        raise SessionManagementError(f"cannot create {path}: {e}") from e


class Database:
    """A SQLite file shared by threads and processes; writes go through ``transaction``.
    The file is 0600 in a 0700 directory (SQLite gives its -wal and -shm files the same mode)."""

    def __init__(self, path: Path, schema: str) -> None:
        self.path = Path(path)
        private_dir(self.path.parent)
        private_file(self.path)
        self._key = os.path.realpath(self.path)
        self._local = threading.local()
        # executescript commits on its own; CREATE ... IF NOT EXISTS makes it safe to race.
        try:
            self._conn().executescript(schema)
        except sqlite3.Error as e:
            raise store_error(e, self.path, "opening the database") from e

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None or self._local.pid != os.getpid():
            try:
                conn = sqlite3.connect(self.path, timeout=LOCK_WAIT, isolation_level=None,
                                       check_same_thread=False)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.execute("PRAGMA foreign_keys=ON")
                conn.execute("PRAGMA busy_timeout=60000")
            except sqlite3.Error as e:
                raise store_error(e, self.path, "opening the database") from e
            self._local.conn = conn
            self._local.pid = os.getpid()
            self._local.depth = 0
        return conn

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction (BEGIN IMMEDIATE), re-entrant within a thread. An SQLite error in
        it (the body's or the commit's) rolls it back whole and is raised as a Drmaa2Error."""
        conn = self._conn()
        if self._local.depth:
            self._local.depth += 1
            try:
                yield conn
            finally:
                self._local.depth -= 1
            return
        writer = _writer_lock(self._key)
        held = writer.acquire(timeout=LOCK_WAIT)  # else SQLite's own wait decides
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as e:
            if held:
                writer.release()
            raise store_error(e, self.path, "writing to") from e
        self._local.depth = 1
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException as e:
            # SQLite may have rolled back by itself already (a full disk): then there is
            # nothing to roll back, and that is no error of its own.
            if conn.in_transaction:
                with suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            if isinstance(e, sqlite3.Error):
                raise store_error(e, self.path, "writing to") from e
            raise
        finally:
            self._local.depth = 0
            if held:
                writer.release()

    def query(self, sql: str, params: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        """A read outside any explicit transaction."""
        try:
            return self._conn().execute(sql, tuple(params)).fetchall()
        except sqlite3.Error as e:
            raise store_error(e, self.path, "reading") from e

    def close(self) -> None:
        """Close this thread's connection."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
