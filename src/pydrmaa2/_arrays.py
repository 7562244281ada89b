"""Job arrays the engine cannot run itself: tasks wait in the store and start as slots free up.

``drive`` keeps starting an array's waiting tasks (``JobBook.start_claimed``) until none is
left; ``ArrayService`` runs the drivers in the agent (one thread per array), plugged
in as a handler as the process tracker's service is. Below the sessions: it works on a JobBook.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
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
from ._store import JobRow, Store
from .errors import Drmaa2Error, DrmCommunicationError
from .templates import JobTemplate
from .trackers import ChangeFeed, JobTracker

if TYPE_CHECKING:
    from .agent import Agent

log = logging.getLogger("pydrmaa2")

#: Tasks a driver claims and starts per store transaction.
DRIVE_CHUNK = 256
#: Seconds a driver waits before it asks again an engine that did not answer.
ENGINE_AWAY_PAUSE = 1.0


def drive(book: JobBook, array_id: str) -> None:
    """Start the array's waiting tasks as slots free up, until none waits."""
    arr = book.store.array(book.session, array_id)
    if arr is None:
        return
    template = _codec.decode(JobTemplate, json.loads(arr.template))
    if arr.max_parallel:
        _Throttled(book, array_id, template, arr.max_parallel).run()
        return
    recover_at = 0.0  # when to look for tasks a dead claimer left 'starting' (at once)
    while True:  # no slots to wait for: chunk after chunk
        began = time.monotonic()
        try:
            if began >= recover_at:
                book.recover_starting(array_id)
                recover_at = began + RESYNC_INTERVAL
            claimed = book.store.claim_pending(array_id, None, DRIVE_CHUNK)
            book.start_claimed(claimed, template, unsure_on=DrmCommunicationError)
        except DrmCommunicationError as e:  # the engine is away: its tasks wait for it
            log.warning("driving array %s: %s", array_id, e)
            recover_at = 0.0
            time.sleep(ENGINE_AWAY_PAUSE)
            continue
        if not book.store.array_waiting(array_id):
            return
        if not claimed:  # only tasks let go wait (another recoverer's): settle them shortly
            recover_at = 0.0
            time.sleep(0.1)


class _Throttled:
    """The driver of an array with max_parallel: it keeps the tasks holding a slot (claimed,
    submitted and not seen ended) in hand; a look reads only their phases from the store and the
    submitted ones' states from the tracker, and every RESYNC_INTERVAL the driver reads the
    array's running rows whole again (taking up what a dead claimer left): a turn costs what
    the running tasks cost, not what the array does.

    Ends are only counted where the tracker keeps ended jobs' records (``keeps_ended``): whoever
    reads a task records it, as for any job. Recording each end here cost a 10,000-task
    /bin/true array with max_parallel=64 (process tracker) 120 us a task of the agent's CPU,
    and the waiting program reads each end anyway."""

    def __init__(self, book: JobBook, array_id: str, template: JobTemplate, limit: int) -> None:
        self.book, self.array_id, self.template, self.limit = book, array_id, template, limit
        self.record = not book.tracker.keeps_ended
        #: job id -> its row, for every task holding a slot
        self.running: dict[str, JobRow] = {}
        self.feed: ChangeFeed | None = None  # aimed at the running tasks (re-aimed as they change)
        self.aimed: list[tuple[str, str | None]] | None = None
        #: The last look found a task submitted by another program (its tracker id now known).
        self.followed = False
        # On an engine whose submission is a slow call (a container's create and start), each
        # task is submitted on its own in a pool and the driver goes on looking: a slot that
        # frees while others are being submitted is filled at once, not after them.
        workers = book.tracker.submit_concurrency
        self.pool = (concurrent.futures.ThreadPoolExecutor(workers, f"array-{array_id}-submit")
                     if workers > 1 else None)
        self.submitting: dict[concurrent.futures.Future[list[tuple[str, str]]],
                              list[JobRow]] = {}

    def run(self) -> None:
        resync_at = 0.0
        try:
            while True:
                try:
                    if time.monotonic() >= resync_at:
                        self.resync()
                        resync_at = time.monotonic() + RESYNC_INTERVAL
                    self.harvest()
                    claimed = []
                    if len(self.running) < self.limit:
                        claimed = self.book.store.claim_pending(
                            self.array_id, None, min(self.limit - len(self.running), DRIVE_CHUNK))
                        self.start(claimed)
                    if not self.book.store.array_waiting(self.array_id):
                        self.harvest(wait=True)
                        return
                    if claimed and len(self.running) < self.limit:
                        continue  # refused ones freed their slots: the next at once
                    # Submissions done before the feed is aimed at their tasks would announce
                    # themselves unheard: they are taken in after it, and the feed aimed again at
                    # the engine's jobs they became.
                    feed = self.aim()
                    while self.harvest():
                        feed = self.aim()
                    # After aiming: an end before it is seen here, one after it wakes the wait.
                    # A slot is filled as soon as it frees: letting ends gather (up to 3 ms
                    # while fewer than 16 of 64 slots were free) ran a 10,000-task array at
                    # 1,392-1,510 tasks/s against 1,418-1,618 (five pairs).
                    freed = self.look()
                    while self.followed:
                        # The look followed a task into the engine (its row now names the
                        # engine's job): watch that too, and look again after.
                        feed = self.aim()
                        freed += self.look()
                    if len(self.running) >= self.limit:
                        if not feed.wait(RESYNC_INTERVAL):
                            resync_at = 0.0  # a quiet while: a claimer may have died meanwhile
                    elif not claimed and not freed:
                        # Free slots and none of the waiting tasks claimed: another program
                        # took them meanwhile (releasing a held task, say). Look again soon.
                        feed.wait(0.1)
                except DrmCommunicationError as e:  # the engine is away: look again shortly
                    # A task whose submission it did not answer was left unclaimed (start_claimed's
                    # unsure_on): the resync first adopts it or puts it back to wait.
                    log.warning("driving array %s: %s", self.array_id, e)
                    self.close_feed()
                    resync_at = 0.0
                    time.sleep(ENGINE_AWAY_PAUSE)
        finally:
            self.close_feed()
            if self.pool is not None:
                self.pool.shutdown(wait=True)

    def resync(self) -> None:
        """The running tasks as the store has them, after taking up what a dead claimer left
        'starting'; the ended ones among them are recorded (each once: then it leaves those
        phases), whoever else reads them."""
        self.book.recover_starting(self.array_id)
        active = self.book.store.array_rows(self.array_id, (STARTING, SUBMITTED))
        states = self.book.states_of(active)
        mine = self.in_flight()
        self.running = {r.id: r for r in active
                        if r.id in mine or not states[r.id][0].is_terminal}

    def start(self, claimed: list[JobRow]) -> None:
        """Submit claimed tasks; they hold their slots from now."""
        for row in claimed:
            self.running[row.id] = row
        if self.pool is None:
            self.started(claimed, self.book.start_claimed(claimed, self.template,
                                                          unsure_on=DrmCommunicationError))
            return
        for row in claimed:
            self.submitting[self.pool.submit(self.book.start_claimed, [row], self.template,
                                             unsure_on=DrmCommunicationError)] = [row]

    def started(self, rows: list[JobRow], submitted: list[tuple[str, str]]) -> None:
        """Claimed tasks as their submission left them: submitted, or no longer holding a slot
        (refused: ended FAILED)."""
        tids = dict(submitted)
        for row in rows:
            tid = tids.get(row.id)
            if tid is None:
                self.running.pop(row.id, None)
            elif row.id in self.running:
                self.running[row.id] = dataclasses.replace(row, phase=SUBMITTED, tracker_id=tid)

    def in_flight(self) -> set[str]:
        """The ids of the tasks being submitted in the pool."""
        return {row.id for rows in self.submitting.values() for row in rows}

    def harvest(self, wait: bool = False) -> int:
        """Take in the submissions done in the pool (``wait``: all of them); how many. One that
        failed raises its error here, as start_claimed raises it in the driver's thread."""
        if wait:
            concurrent.futures.wait(self.submitting)
        done = [f for f in self.submitting if f.done()]
        for future in done:
            rows = self.submitting.pop(future)
            self.started(rows, future.result())
        return len(done)

    def look(self) -> int:
        """Let go the slots of the tasks that ended (recording them unless the tracker keeps
        them); how many. A task the engine does not show started is looked up in the store:
        one reaped meanwhile (the process tracker then no longer knows it and says it is being
        started) lets its slot go, and one another program was submitting is followed into
        the engine through its row."""
        inflight = self.in_flight()
        subs = [r for r in self.running.values() if r.phase == SUBMITTED and r.tracker_id]
        if self.record:
            states = self.book.states_of(subs) if subs else {}
        else:
            by_tid = self.book.tracker.states([r.tracker_id or "" for r in subs]) if subs else {}
            states = {r.id: by_tid[r.tracker_id or ""] for r in subs}
        freed = 0
        unsure = []
        self.followed = False
        for job_id in list(self.running):
            state = states.get(job_id)
            if state is not None and state[0].is_terminal:
                del self.running[job_id]
                freed += 1
            elif job_id not in inflight and (state is None or not state[0].is_started):
                unsure.append(job_id)
        if unsure:
            rows = self.book.store.still_active(unsure)
            for job_id in unsure:
                row, now = self.running[job_id], rows.get(job_id)
                if now is None:
                    del self.running[job_id]
                    freed += 1
                elif now != (row.phase, row.tracker_id):
                    self.running[job_id] = dataclasses.replace(row, phase=now[0],
                                                               tracker_id=now[1])
                    self.followed = self.followed or now[1] != row.tracker_id
        return freed

    def aim(self) -> ChangeFeed:
        """The feed, aimed at the running tasks."""
        rows = list(self.running.values())
        now = [(r.id, r.tracker_id) for r in rows]
        if self.feed is None or now != self.aimed:
            self.feed = self.book.feed(rows, reuse=self.feed, wake=False)
            self.aimed = now
        return self.feed

    def close_feed(self) -> None:
        if self.feed is not None:
            self.feed.close()
            self.feed = None


class ArrayService:
    """The agent's array drivers: the 'drive' request, and arrays left waiting by an earlier
    agent taken up again at start."""

    def __init__(self, agent: Agent) -> None:
        from .agent import AgentClient

        self.agent = agent
        self.client = AgentClient.for_home(agent.home)
        self.drivers: dict[tuple[str, str], threading.Thread] = {}
        #: Arrays asked to be driven while their driver ran: it may have looked for waiting
        #: tasks for the last time already, so it is started again once it ends.
        self.again: set[tuple[str, str]] = set()
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
                self.again.add(key)
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
                again = (session, array_id) in self.again
                self.again.discard((session, array_id))
            if again:
                self.drive(session, array_id)
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
