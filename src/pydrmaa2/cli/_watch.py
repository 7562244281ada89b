"""``drmaa2 jobs --watch``: a session's jobs and arrays, refreshed until Ctrl-C.

On a terminal (and without ``--json``) a live table: counts per state, then a row per job and
one per job array (its tasks' counts per state), with the time each waited in the queue and has
run. Elsewhere (a pipe, a file, ``--json``) a line per job each time its state changes, as
``kubectl get --watch`` does: text columns, or a JobInfo as one line of JSON.

Each refresh reads every job's state in one look; a job's JobInfo is read again only when its
state changed (its submission and dispatch times do not change, an ended job's nothing).
"""

from __future__ import annotations

import datetime as dt
import json
import select
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from rich.console import Console, Group
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from .. import _codec
from ..errors import InvalidArgumentError
from ..info import JobInfo
from ..jobs import Job
from ..session import JobSession
from ..states import JobState
from ._status import job_status, jobs_status
from ._wait import STATE_STYLE, state_counts

__all__ = ["SessionView", "watch"]


@dataclass
class _Job:
    """What the view knows of one job: its state now and its JobInfo when that was read."""

    id: str
    array_id: str | None
    state: JobState
    sub_state: str
    info: JobInfo


@dataclass
class _Row:
    """A line of the table: a job, or a job array's tasks."""

    jobs: list[_Job] = field(default_factory=list)
    array_id: str | None = None


def _clock(seconds: float | None) -> str:
    """``1:02:03`` / ``2:03``; empty for None."""
    if seconds is None:
        return ""
    s = max(0, int(seconds))
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02}:{s:02}" if h else f"{m}:{s:02}"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _span(start: dt.datetime | None, end: dt.datetime | None, now: dt.datetime) -> float | None:
    """Seconds from ``start`` to ``end`` (now while it has not come); None without a start."""
    if start is None:
        return None
    return ((end or now) - start).total_seconds()


class SessionView:
    """The jobs of one session, looked at again on each ``refresh``."""

    def __init__(self, js: JobSession, only: JobState | None = None) -> None:
        self.js = js
        self.only = only
        self.jobs: dict[str, _Job] = {}

    def refresh(self) -> list[_Job]:
        """Look at every job's state; return the jobs that are new or changed state, by id."""
        js = self.js
        rows = js._store.job_rows(js.session_name)
        states = js._book.states_of(rows)
        changed = []
        seen = {}
        for r in rows:
            st, sub = states[r.id]
            old = self.jobs.get(r.id)
            if (old is None or old.state is not st or old.sub_state != sub
                    or (st.is_started and not st.is_terminal and old.info.dispatch_time is None)):
                try:
                    info = Job(js, r.id).info
                except InvalidArgumentError:  # reaped meanwhile
                    continue
                old = _Job(r.id, r.array_id, st, sub, info)
                changed.append(old)
            seen[r.id] = old
        self.jobs = seen
        return [j for j in changed if self.only is None or j.state is self.only]

    def rows(self) -> list[_Row]:
        """A row per job and one per array (at its first task), in id order."""
        out: list[_Row] = []
        arrays: dict[str, _Row] = {}
        for j in sorted(self.jobs.values(), key=lambda j: (len(j.id), j.id)):
            if self.only is not None and j.state is not self.only:
                continue
            if j.array_id is None:
                out.append(_Row([j]))
            elif j.array_id in arrays:
                arrays[j.array_id].jobs.append(j)
            else:
                arrays[j.array_id] = _Row([j], j.array_id)
                out.append(arrays[j.array_id])
        return out

    def render(self, height: int, interval: float) -> Group:
        """The header (counts per state) and the latest rows that fit in ``height`` lines."""
        now = dt.datetime.now(dt.timezone.utc)
        rows = self.rows()
        n_arrays = sum(1 for r in rows if r.array_id is not None)
        shown = [j.state for r in rows for j in r.jobs]
        head = Text.from_markup(
            f"[bold]session {escape(self.js.session_name)}[/] ({escape(self.js.contact)}) · "
            f"{_plural(len(shown), 'job')}" + (f" {self.only.value}" if self.only else "")
            + (f" in {_plural(n_arrays, 'array')}" if n_arrays else "")
            + (f" · {state_counts(shown)}" if shown else "")
            + f"\n[dim]{now.astimezone().strftime('%H:%M:%S')} · every {interval:g} s · "
            "Ctrl-C to stop[/]")
        table = Table("id", "name", "state", "exit", "queued", "elapsed", box=None, pad_edge=False)
        fit = max(1, height - 5)
        hidden = max(0, len(rows) - fit)
        for row in rows[hidden:]:
            table.add_row(*self._cells(row, now))
        parts: list[Text | Table] = [head]
        if hidden:
            parts.append(Text(f"... {hidden} earlier rows (drmaa2 jobs lists them all)", style="dim"))
        parts.append(table)
        return Group(*parts)

    @staticmethod
    def _cells(row: _Row, now: dt.datetime) -> list[str]:
        """id, name, state, exit, queued, elapsed of a job or of an array's tasks."""
        infos = [j.info for j in row.jobs]
        first = infos[0]
        submitted = min((i.submission_time for i in infos if i.submission_time), default=None)
        dispatched = min((i.dispatch_time for i in infos if i.dispatch_time), default=None)
        ended = all(j.state.is_terminal for j in row.jobs)
        finished = (max((i.finish_time for i in infos if i.finish_time), default=None)
                    if ended else None)
        if dispatched is None and ended:  # never ran: it waited until it ended
            queued = _span(submitted, finished or first.finish_time, now)
            elapsed = None
        else:
            queued = _span(submitted, dispatched, now)
            elapsed = _span(dispatched, finished if ended else None, now)
        if row.array_id is None:
            j = row.jobs[0]
            state = f"[{STATE_STYLE[j.state]}]{j.state.value}[/]" + (
                f" ({escape(j.sub_state)})" if j.sub_state and j.sub_state != j.state.value else "")
            code = str(job_status(j.info)) if ended else ""
            return [j.id, escape(first.job_name or ""), state, code, _clock(queued), _clock(elapsed)]
        ids = f"{row.jobs[0].id}..{row.jobs[-1].id}" if len(row.jobs) > 1 else row.jobs[0].id
        code = str(jobs_status(infos)) if ended else ""
        return [ids, f"array {row.array_id}" + (f": {escape(first.job_name)}" if first.job_name else ""),
                state_counts([j.state for j in row.jobs]), code, _clock(queued), _clock(elapsed)]


def _line(j: _Job) -> str:
    """One job as a line of text: id, state, sub-state, exit status, name."""
    code = str(job_status(j.info)) if j.state.is_terminal else "-"
    return f"{j.id:<10} {j.state.value:<13} {code:>4}  {j.info.job_name or '-'}  {j.sub_state or '-'}"


def watch(js: JobSession, interval: float, only: JobState | None, as_json: bool) -> int:
    """Show the session's jobs until Ctrl-C: live on a terminal, else a line per change."""
    if not interval > 0:
        raise InvalidArgumentError(f"--interval {interval!r} must be a positive number of seconds")
    view = SessionView(js, only)
    live = sys.stdout.isatty() and not as_json
    try:
        if live:
            _watch_live(view, interval)
        else:
            _watch_lines(view, interval, as_json)
    except KeyboardInterrupt:
        pass
    return 0


def _watch_live(view: SessionView, interval: float) -> None:
    from rich.live import Live

    console = Console()
    view.refresh()
    with Live(view.render(console.height, interval), console=console, auto_refresh=False,
              transient=False) as live:
        while True:
            time.sleep(interval)
            view.refresh()
            live.update(view.render(console.height, interval), refresh=True)


def _reader_gone() -> bool:
    """Whether stdout is a pipe whose reader has gone (``| head`` that got its lines): a watch
    that has nothing new to write would not learn it from a write."""
    try:
        p = select.poll()
        p.register(sys.stdout.fileno(), 0)
        return any(ev & (select.POLLERR | select.POLLHUP) for _, ev in p.poll(0))
    except (OSError, ValueError, AttributeError):
        return False


def _watch_lines(view: SessionView, interval: float, as_json: bool) -> None:
    if not as_json:
        print(f"{'id':<10} {'state':<13} {'exit':>4}  name  sub_state", flush=True)
    while not _reader_gone():
        changed: Sequence[_Job] = view.refresh()
        for j in changed:
            if as_json:
                print(json.dumps(_codec.encode(j.info), separators=(",", ":")))
            else:
                print(_line(j))
        sys.stdout.flush()
        time.sleep(interval)
