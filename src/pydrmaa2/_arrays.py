"""Job arrays the engine cannot run itself: tasks wait in the store and start as slots free up.

``drive`` keeps starting an array's waiting tasks (``JobBook.start_claimed``) until none is
left; ``ArrayService`` runs the drivers in the agent (one thread per array), plugged
in as a handler as the process tracker's service is. Below the sessions: it works on a JobBook.
"""

from __future__ import annotations

import concurrent.futures
import json
import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from . import _codec
from ._book import (
    PENDING,
    RESYNC_INTERVAL,
    STARTING,
    SUBMITTED,
    JobBook,
    fail_unstarted,
    open_tracker,
)
from ._store import Store
from .errors import Drmaa2Error, DrmCommunicationError
from .templates import JobTemplate
from .trackers import ChangeFeed, JobTracker

if TYPE_CHECKING:
    from .agent import Agent

log = logging.getLogger("pydrmaa2")

#: Tasks a driver claims and starts per store transaction.
DRIVE_CHUNK = 256


def drive(book: JobBook, array_id: str) -> None:
    """Start the array's waiting tasks as slots free up, until none waits."""
    arr = book.store.array(book.session, array_id)
    if arr is None:
        return
    template = _codec.decode(JobTemplate, json.loads(arr.template))
    limit = arr.max_parallel
    feed: ChangeFeed | None = None  # kept while the running tasks stay the same, else re-aimed
    aimed: list[tuple[str, str | None]] | None = None
    recover_at = 0.0  # when to look for tasks a dead claimer left 'starting' (at once)
    # A throttled array on an engine whose submission is a slow call (a container's create and
    # start) submits each task on its own in a pool and goes on looking: a slot that frees
    # while others are being submitted is filled at once, not after them.
    workers = book.tracker.submit_concurrency if limit else 1
    pool = (concurrent.futures.ThreadPoolExecutor(workers, f"array-{array_id}-submit")
            if workers > 1 else None)
    submitting: set[concurrent.futures.Future[None]] = set()
    try:
        while True:
            began = time.monotonic()
            if began >= recover_at:
                book.recover_starting(array_id)
                recover_at = began + RESYNC_INTERVAL
            claimed = book.store.claim_pending(array_id, limit, DRIVE_CHUNK)
            if pool is None:
                book.start_claimed(claimed, template)
            else:
                submitting |= {pool.submit(book.start_claimed, [row], template)
                               for row in claimed}
                submitting = _harvest(submitting)
            if not book.store.array_waiting(array_id):
                concurrent.futures.wait(submitting)
                _harvest(submitting)
                return
            if not limit:
                continue  # no slots to wait for: the next chunk at once
            # Only the running tasks matter (at most max_parallel): the cost of a turn does not
            # grow with the array.
            active = book.store.array_rows(array_id, (STARTING, SUBMITTED))
            try:
                now = [(r.id, r.tracker_id) for r in active]
                if feed is None or now != aimed:
                    old, feed = feed, None
                    feed, aimed = book.feed(active, reuse=old, wake=False), now
                states = book.states_of(active)
                # A slot is filled as soon as it frees. Letting ends gather first (sleeping
                # twice a turn's time while fewer than half the slots were free) cost a
                # 10,000-task /bin/true array with max_parallel=64 a fifth of its speed once
                # two fork servers started its tasks (1,014-1,071 tasks/s against 1,305-1,385).
                free = any(s[0].is_terminal for s in states.values())
                if not free and not feed.wait(RESYNC_INTERVAL):
                    recover_at = 0.0  # a quiet while: a claimer may have died meanwhile
            except DrmCommunicationError as e:  # the engine is away: look again shortly
                log.warning("driving array %s: %s", array_id, e)
                if feed is not None:
                    feed.close()
                    feed = None
                time.sleep(1.0)
    finally:
        if feed is not None:
            feed.close()
        if pool is not None:
            pool.shutdown(wait=True)


def _harvest(submitting: set[concurrent.futures.Future[None]]
             ) -> set[concurrent.futures.Future[None]]:
    """The submissions still running; one that failed raises its error here, as start_claimed
    raises it when called in the driver's thread."""
    left = set()
    for future in submitting:
        if future.done():
            future.result()
        else:
            left.add(future)
    return left


class ArrayService:
    """The agent's array drivers: the 'drive' request, and arrays left waiting by an earlier
    agent taken up again at start."""

    def __init__(self, agent: Agent) -> None:
        from .agent import AgentClient

        self.agent = agent
        self.client = AgentClient.for_home(agent.home)
        self.drivers: dict[tuple[str, str], threading.Thread] = {}
        self.lock = threading.Lock()
        agent.handlers["drive"] = self._op_drive
        agent.busy_checks.append(self.busy)
        try:
            for session, array_id in Store(agent.home / "store.sqlite").arrays_with_pending():
                self.drive(session, array_id)
        except Drmaa2Error as e:  # a store it cannot read: serve the jobs it can
            log.error("cannot resume throttled arrays: %s", e)

    def _op_drive(self, msg: dict[str, Any]) -> dict[str, Any]:
        self.drive(msg["session"], str(msg["array"]))
        return {}

    def busy(self) -> bool:
        with self.lock:
            return bool(self.drivers)

    def drive(self, session: str, array_id: str) -> None:
        """Keep starting the pending tasks of an array, in a thread, until none is left."""
        key = (session, array_id)
        with self.lock:
            t = self.drivers.get(key)
            if t is not None and t.is_alive():
                return
            t = threading.Thread(target=self._run, args=key, daemon=True,
                                 name=f"array-{session}-{array_id}")
            self.drivers[key] = t
            t.start()

    def _run(self, session: str, array_id: str) -> None:
        try:
            store = Store(self.agent.home / "store.sqlite")
            row = store.session(session, "job")
            if row is None:
                return
            tracker = self._tracker(store, session, row[0], array_id)
            if tracker is None:
                return
            try:
                drive(JobBook(store, tracker, self.client, session), array_id)
            finally:
                tracker.close()
        except Exception:
            log.exception("driving array %s of session %s failed", array_id, session)
        finally:
            with self.lock:
                self.drivers.pop((session, array_id), None)
            self.agent.touch()

    def _tracker(self, store: Store, session: str, contact: str,
                 array_id: str) -> JobTracker | None:
        """The session's tracker, waiting out an engine that does not answer yet; a tracker the
        agent cannot load (a third-party package it cannot import) ends the array's waiting
        tasks FAILED saying why, rather than leaving them waiting for ever (None)."""
        delay = 1.0
        while True:
            try:
                return open_tracker(contact, self.agent.home)
            except DrmCommunicationError as e:
                log.warning("array %s of session %s waits for its engine: %s", array_id,
                            session, e)
                time.sleep(delay)
                delay = min(delay * 2, 30.0)
            except Exception as e:  # noqa: BLE001 - any failure to load it ends the tasks
                why = (f"not started: the pydrmaa2 agent cannot load the tracker of contact "
                       f"{contact!r}: {e}")
                log.error("array %s of session %s: %s", array_id, session, why)
                for row in store.array_rows(array_id, (PENDING,)):
                    fail_unstarted(store, row, why, expect=(PENDING,))
                self.client.notify(f"job:{r}" for r in store.array_job_ids(array_id))
                return None

    def close(self) -> None:
        """Drivers are daemon threads: they end with the agent (their arrays are taken up by
        the next one)."""
