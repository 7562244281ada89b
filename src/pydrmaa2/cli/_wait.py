"""Waiting for jobs from the command line: ``drmaa2 run --wait`` and ``drmaa2 wait``.

The waiter waits in slices of at most ``TICK`` seconds, so the main thread wakes up often: to
draw the progress (counts per state), to stream the jobs' output (a tick is where that goes),
and so Ctrl-C is seen even where a wait of the library blocks in C or on a socket (Python's
KeyboardInterrupt interrupts those; the slices bound what would not be).

Ctrl-C: the first terminates the jobs still running and keeps waiting for them to end (drmaa2
then exits with their status); the second stops waiting at once, leaves them to the engine and
says how to wait for them again (``drmaa2 wait ID...``).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.progress import Progress as Bar

from ..agent import AgentClient
from ..errors import Drmaa2Error, DrmCommunicationError, InvalidArgumentError, InvalidStateError
from ..errors import TimeoutError as Drmaa2TimeoutError
from ..info import JobInfo
from ..jobs import Job, check_timeout
from ..session import JobSession
from ..states import JobState
from ..trackers.base import deadline_after, remaining

__all__ = ["TICK", "JobWaiter", "Progress", "wait_jobs", "look_states", "state_counts"]

#: Seconds between wake-ups of a waiting ``drmaa2`` (progress, Ctrl-C, output to stream).
TICK = 0.5
#: Job ids per store query (below SQLite's limit of bound parameters).
LOOK_CHUNK = 5000
#: How each state is coloured in counts per state.
STATE_STYLE = {JobState.QUEUED: "yellow", JobState.QUEUED_HELD: "yellow", JobState.REQUEUED: "yellow",
               JobState.REQUEUED_HELD: "yellow", JobState.RUNNING: "cyan",
               JobState.SUSPENDED: "magenta", JobState.DONE: "green", JobState.FAILED: "red",
               JobState.UNDETERMINED: "dim"}


def look_states(js: JobSession, ids: Sequence[str]) -> dict[str, tuple[JobState, str]]:
    """The state and sub-state of these jobs of ``js``, in one look per chunk (the engine is
    asked once for all the jobs it runs); InvalidArgumentError naming a job that is not there."""
    ids = list(dict.fromkeys(ids))
    rows = [r for i in range(0, len(ids), LOOK_CHUNK)
            for r in js._store.job_rows(js.session_name, ids[i:i + LOOK_CHUNK])]
    if len(rows) != len(ids):
        missing = sorted(set(ids) - {r.id for r in rows})
        raise InvalidArgumentError(
            f"job {missing[0]!r} is no longer in session {js.session_name!r} (reaped?)")
    return js._book.states_of(rows)


def state_counts(states: Sequence[JobState], markup: bool = True) -> str:
    """Counts per state in DRMAA2's order, e.g. ``2 running · 5 done · 1 failed``."""
    parts = []
    for st in JobState:
        n = sum(1 for s in states if s is st)
        if n:
            text = f"{n} {st.value}"
            parts.append(f"[{STATE_STYLE[st]}]{text}[/]" if markup else text)
    return " · ".join(parts)


class JobWaiter:
    """Waits for jobs of any sessions until each has ended, waking every ``tick`` seconds."""

    def __init__(self, jobs: Sequence[Job], home: Path, tick: float = TICK) -> None:
        self.jobs = list(jobs)
        self.home = home
        self.tick = tick
        self.states: dict[str, JobState] = {}
        #: The engine could not be reached at the last look (the wait rides it out).
        self.outage: DrmCommunicationError | None = None
        self._unique = list(dict.fromkeys(self.jobs))

    @property
    def left(self) -> list[Job]:
        """The jobs not seen ended yet, in the order given."""
        return [j for j in self._unique if not self.states.get(j.id, JobState.UNDETERMINED).is_terminal]

    @property
    def counts(self) -> str:
        """Counts per state of the jobs (each once), with rich markup; one job's state."""
        states = [self.states.get(j.id, JobState.UNDETERMINED) for j in self._unique]
        if len(states) == 1:
            return f"[{STATE_STYLE[states[0]]}]{states[0].value}[/]"
        return state_counts(states)

    @property
    def ended(self) -> int:
        """How many of the jobs (each once) have ended."""
        return len(self._unique) - len(self.left)

    @property
    def total(self) -> int:
        """How many distinct jobs are waited for."""
        return len(self._unique)

    def look(self) -> None:
        """Read the states of the jobs not ended yet, one look per session."""
        by_session: dict[str, list[Job]] = {}
        for j in self.left:
            by_session.setdefault(j.session_name, []).append(j)
        try:
            for group in by_session.values():
                for job_id, (st, _) in look_states(group[0].session, [j.id for j in group]).items():
                    self.states[job_id] = st
            self.outage = None
        except DrmCommunicationError as e:  # as the library's waits do: wait through it
            self.outage = e

    def wait(self, deadline: float | None, timeout: float | None,
             on_tick: Callable[[JobWaiter], None]) -> None:
        """Block until every job has ended, calling ``on_tick`` after each look (at least every
        ``tick`` seconds); TimeoutError once ``deadline`` passes (``timeout`` is its length)."""
        self.look()
        on_tick(self)
        while True:
            left = self.left
            if not left:
                return
            time_left = remaining(deadline)
            if time_left == 0:
                ids = [j.id for j in left]
                raise Drmaa2TimeoutError(
                    f"not every job of {ids[:5]}{'...' if len(ids) > 5 else ''} ended within "
                    f"{timeout} s")
            group = [j for j in left if j.session_name == left[0].session_name]
            try:
                group[0].session.wait_all_terminated(
                    group, self.tick if time_left is None else min(self.tick, time_left))
            except Drmaa2TimeoutError:
                pass
            self.look()
            on_tick(self)

    def terminate(self) -> None:
        """Terminate every job not ended yet (one that ends meanwhile is no error)."""
        for j in self.left:
            try:
                j.terminate()
            except InvalidStateError:
                pass

    def infos(self) -> list[JobInfo]:
        """Everything known about each job, in the order given."""
        return [j.info for j in self.jobs]

    def forget_connections(self) -> None:
        """Drop this process's connection to the agent: a request that Ctrl-C interrupted may
        still have its answer on the way, which the next request must not read as its own."""
        AgentClient.for_home(self.home).close()


class Progress:
    """What a wait shows on a terminal (stderr): a spinner for one job, a bar for several, with
    counts per state; nothing when ``live`` is false. ``say`` prints a line above it."""

    def __init__(self, waiter: JobWaiter, live: bool) -> None:
        self.live = live
        self._bar: Bar | None = None
        self._task: TaskID | None = None
        if not live:
            return
        console = Console(stderr=True)
        if waiter.total == 1:
            job = waiter.jobs[0]
            self._bar = Bar(
                SpinnerColumn(), TextColumn(f"job {job.id}"), TextColumn("{task.fields[states]}"),
                TimeElapsedColumn(), console=console, transient=True)
        else:
            self._bar = Bar(
                TextColumn("[bold]waiting"), BarColumn(), MofNCompleteColumn(), TextColumn("ended"),
                TextColumn("{task.fields[states]}"), TimeElapsedColumn(), console=console,
                transient=False)
        self._task = self._bar.add_task("jobs", total=waiter.total, states="")

    def __enter__(self) -> Progress:
        if self._bar is not None:
            self._bar.start()
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._bar is not None:
            self._bar.stop()

    def update(self, waiter: JobWaiter) -> None:
        """Show how many jobs have ended and how many are in each state."""
        if self._bar is None or self._task is None:
            return
        states = waiter.counts
        if waiter.outage is not None:
            states += " [red](engine unreachable, still waiting)[/]"
        self._bar.update(self._task, completed=waiter.ended, states=states)

    def say(self, text: str) -> None:
        """A line on stderr (above the progress, which stays)."""
        if self._bar is not None:
            self._bar.console.print(text, markup=False, highlight=False)
        else:
            print(text, file=sys.stderr, flush=True)


def stream_output(job: Job) -> list[threading.Thread]:
    """Copy the job's stdout to ours and its stderr to ours as it writes them (the streams its
    template names no file for; a joined stderr comes with the output), each on a thread that
    ends when the job has ended and all is copied."""
    template = job.template
    wanted = []
    if template.output_path is None:
        wanted.append((False, "stdout"))
    if template.error_path is None and not template.join_files:
        wanted.append((True, "stderr"))

    def copy(stderr: bool, name: str) -> None:
        try:
            for line in (job.error if stderr else job.output)(follow=True):
                # sys's stream at each write: a live progress display routes it above itself.
                out: TextIO = getattr(sys, name)
                out.write(line)
                out.flush()
        except Drmaa2Error as e:  # the wait goes on: only the copy is lost
            print(f"drmaa2: cannot show the job's {'stderr' if stderr else 'output'}: {e}",
                  file=sys.stderr, flush=True)

    threads = [threading.Thread(target=copy, args=w, daemon=True,
                                name=f"drmaa2-{'stderr' if w[0] else 'stdout'}") for w in wanted]
    for t in threads:
        t.start()
    return threads


def _some(jobs: Sequence[Job]) -> str:
    """``job 12`` or ``3 jobs (12 13 14)``, for messages."""
    if len(jobs) == 1:
        return f"job {jobs[0].id}"
    ids = " ".join(j.id for j in jobs[:10])
    return f"{len(jobs)} jobs ({ids}{' ...' if len(jobs) > 10 else ''})"


def wait_jobs(waiter: JobWaiter, timeout: float | None, progress: Progress,
              terminate: Callable[[], None] | None = None) -> bool:
    """Wait for the waiter's jobs, showing ``progress``; the first Ctrl-C terminates them (with
    ``terminate``, else each job) and waits on, the second stops waiting: False then (the jobs
    are left to the engine and stderr says how to wait for them again)."""
    try:
        timeout = check_timeout(timeout)
    except InvalidArgumentError as e:
        raise InvalidArgumentError(f"--timeout: {e}") from None
    deadline = deadline_after(timeout)
    try:
        try:
            waiter.wait(deadline, timeout, progress.update)
        except KeyboardInterrupt:
            waiter.forget_connections()
            left = waiter.left
            progress.say(f"drmaa2: Ctrl-C: terminating {_some(left)} (Ctrl-C again to stop "
                         f"waiting and leave {'it' if len(left) == 1 else 'them'} to the engine)")
            (terminate or waiter.terminate)()
            waiter.wait(deadline, timeout, progress.update)
    except KeyboardInterrupt:
        waiter.forget_connections()
        left = waiter.left or waiter._unique
        progress.say(f"drmaa2: stopped waiting; {_some(left)} may still be running. Wait for "
                     f"{'it' if len(left) == 1 else 'them'} again with: "
                     f"drmaa2 wait {' '.join(j.id for j in left)}")
        return False
    return True
