"""start_time and deadline_time for trackers whose engine cannot keep them, kept by the agent.

A job whose start_time is ahead waits in the store (phase 'scheduled', visible as QUEUED); a job
with a deadline_time is terminated then and ends FAILED saying so. The times are rows of the
store's ``timers`` table, so an agent that starts later (after a crash, or the previous one
exiting) takes them up; the agent stays up while any is left, so a job starts at its time even if
no program of its user is running. Runs in the agent, below the sessions (``JobBook``).
"""

from __future__ import annotations

import datetime as dt
import heapq
import logging
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._book import JobBook, open_tracker
from ._store import Store, Timer
from .errors import Drmaa2Error
from .trackers import JobTracker

if TYPE_CHECKING:
    from .agent import Agent, AgentClient

log = logging.getLogger("pydrmaa2")

#: A timer whose work failed (the engine away) is tried again after this long, doubling to MAX.
RETRY, RETRY_MAX = 1.0, 30.0


class Timers:
    """The store's timers, fired on one thread of the agent at their time."""

    def __init__(self, home: Path, client: AgentClient) -> None:
        self.home = Path(home)
        self.client = client
        self.store: Store | None = None  # opened at the first use, then kept (per-thread links)
        self.cond = threading.Condition()
        self.heap: list[tuple[float, int, Timer]] = []
        self.known: set[int] = set()
        self.retries: dict[int, float] = {}
        self.stopped = False
        self.thread = threading.Thread(target=self._run, name="timers", daemon=True)
        self.thread.start()

    def reload(self) -> None:
        """Take up the timers the store has that this agent does not (new submissions)."""
        timers = self._store().timers()
        with self.cond:
            for t in timers:
                if t.id not in self.known:
                    self.known.add(t.id)
                    heapq.heappush(self.heap, (t.at, t.id, t))
            self.cond.notify()

    def pending(self) -> bool:
        """Whether a timer is still to fire (the agent stays up for it)."""
        with self.cond:
            return bool(self.heap)

    def close(self) -> None:
        with self.cond:
            self.stopped = True
            self.cond.notify()

    def _run(self) -> None:
        while True:
            with self.cond:
                while not self.stopped and (not self.heap or self.heap[0][0] > time.time()):
                    self.cond.wait(None if not self.heap else
                                   min(self.heap[0][0] - time.time(), 60.0))
                if self.stopped:
                    return
                _, _, timer = heapq.heappop(self.heap)
            try:
                self._fire(timer)
            except Exception as e:  # noqa: BLE001 - one timer's failure must not stop the others
                delay = min(self.retries.get(timer.id, RETRY / 2) * 2, RETRY_MAX)
                self.retries[timer.id] = delay
                log.warning("%s timer of %s in session %s: %s; again in %.0f s", timer.kind,
                            f"job {timer.job_id}" if timer.job_id else f"array {timer.array_id}",
                            timer.session, e, delay,
                            exc_info=not isinstance(e, Drmaa2Error))
                with self.cond:
                    heapq.heappush(self.heap, (time.time() + delay, timer.id, timer))
                continue
            self.retries.pop(timer.id, None)
            with self.cond:
                self.known.discard(timer.id)

    def _store(self) -> Store:
        if self.store is None:
            self.store = Store(self.home / "store.sqlite")
        return self.store

    def _fire(self, timer: Timer) -> None:
        store = self._store()
        session = store.session(timer.session, "job")
        if session is None:  # destroyed: its timers went with it
            return
        tracker: JobTracker = open_tracker(session[0], self.home)
        try:
            book = JobBook(store, tracker, self.client, timer.session)
            if timer.kind == "start":
                book.start_due(timer.job_id, timer.array_id)
            else:
                ids = ([timer.job_id] if timer.job_id is not None
                       else store.array_job_ids(timer.array_id))  # type: ignore[arg-type]
                book.expire(ids, dt.datetime.fromtimestamp(timer.at).astimezone())
        finally:
            tracker.close()
        store.drop_timer(timer.id)


class TimerService:
    """The store's timers in the agent: the 'timers' request (take up new ones), and the agent
    kept up while any is left."""

    def __init__(self, agent: Agent) -> None:
        from .agent import AgentClient

        self.timers = Timers(agent.home, AgentClient.for_home(agent.home))
        agent.handlers["timers"] = self._op_timers
        agent.busy_checks.append(self.timers.pending)
        try:
            self.timers.reload()
        except Drmaa2Error as e:  # a store it cannot read: serve the jobs it can
            log.error("cannot take up start and deadline times: %s", e)

    def _op_timers(self, msg: dict[str, Any]) -> dict[str, Any]:
        self.timers.reload()
        return {}

    def close(self) -> None:
        self.timers.close()
