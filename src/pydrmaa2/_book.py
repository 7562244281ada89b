"""A session's jobs as the store and the tracker know them together, below the sessions.

``JobBook`` holds what both the sessions and the agent need: the states of jobs (terminal ones
cached in the store with their JobInfo), change feeds, starting claimed array tasks, recovering
tasks whose claimer died, and driving a throttled array. It imports no session code, so the
agent can drive arrays without the session layer.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import datetime as dt
import functools
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from . import _codec
from ._store import JobRow, Phase, Store, dumps
from .agent import AgentClient, AgentFeed
from .database import private_dir
from .errors import (
    Drmaa2Error,
    DrmCommunicationError,
    InternalError,
    InvalidArgumentError,
    InvalidStateError,
    UnsupportedOperationError,
)
from .info import JobInfo
from .states import Capability, JobState
from .templates import JobTemplate, anchored, for_task
from .trackers import Action, ChangeFeed, Contact, JobTracker, tracker_class
from .trackers.base import KEPT_OUTPUT_DIR, deadline_after, remaining

log = logging.getLogger("pydrmaa2")

# The phases of a job row (see Phase), by their short names.
HELD, PENDING, SCHEDULED = Phase.HELD, Phase.PENDING, Phase.SCHEDULED
STARTING, SUBMITTED, TERMINAL = Phase.STARTING, Phase.SUBMITTED, Phase.TERMINAL
NOT_STARTED = (HELD, PENDING, STARTING, SCHEDULED)
_WAITING = {PENDING: "waiting for a free slot of its array", STARTING: "starting",
            SCHEDULED: "waiting for its start_time"}
#: Template fields the generic layer keeps (with the agent's timers) for a tracker whose engine
#: has no equivalent: start_time (the job waits in the store) and deadline_time (terminated).
TIMED_FIELDS = ("start_time", "deadline_time")
#: Capabilities the generic layer gives every tracker whatever its engine offers.
GENERIC_CAPABILITIES = frozenset({Capability.JT_DEADLINE})


def capabilities(tracker: JobTracker | type[JobTracker]) -> frozenset[Capability]:
    """What ``supports()`` answers for a tracker (class, or an opened one where the engine
    declares them): its own capabilities and the generic ones."""
    return tracker.capabilities | GENERIC_CAPABILITIES
#: A waiter looks again at least this often even without an event: some engines' event streams
#: can miss an event that happens right after subscribing (Podman 4.3), so a missed event costs
#: at most this long instead of a hang.
RESYNC_INTERVAL = 5.0
#: A job the store could not record is terminated, then deleted once it has ended (this long).
WITHDRAW_TIMEOUT = 10.0
#: JobInfo.submission_machine of every job of a session: the host whose store holds it, where
#: it was submitted, whichever engine ran it (Slurm's own field is where it was allocated).
SUBMISSION_MACHINE = socket.gethostname()
#: How long a deadline waits for a job being submitted by someone else to be recorded.
STARTING_PATIENCE = 60.0
#: Where a job's stdout and stderr are kept when its template names no file for them.
OUTPUT_DIR = KEPT_OUTPUT_DIR


@functools.lru_cache(maxsize=256)
def _job_name(template: str | None) -> str | None:
    """The job_name of a stored template (an array's tasks share theirs: read once)."""
    name = json.loads(template or "{}").get("job_name")
    return name if isinstance(name, str) else None


#: Arrays whose submitter context a JobBook keeps read, at most.
KEPT_CONTEXTS = 16


def kept_name(job_id: str, array_first: str | None, index: int | str | None) -> str:
    """The base name of a job's kept output: its id, or for an array's task, the array's first
    job id and the task's index (known before the engine numbers the tasks)."""
    return job_id if array_first is None else f"{array_first}.{index}"


def open_tracker(contact: str, home: Path) -> JobTracker:
    """The tracker of ``contact``, checked to answer."""
    c = Contact.parse(contact)
    tracker = tracker_class(c.scheme)(c, home)
    tracker.check()
    return tracker


class MultiFeed(ChangeFeed):
    """Several change feeds as one: a thread per extra feed sets a shared event."""

    #: How often a helper thread looks whether the wait is over (it wakes at once on a change).
    SLICE = 0.25

    def __init__(self, feeds: list[ChangeFeed]) -> None:
        self.feeds = feeds
        self.event = threading.Event()
        self.stop = threading.Event()
        self.broken: Exception | None = None
        self.threads = [threading.Thread(target=self._pump, args=(f,), daemon=True) for f in feeds]
        for t in self.threads:
            t.start()

    def _pump(self, feed: ChangeFeed) -> None:
        while not self.stop.is_set():
            try:
                if feed.wait(self.SLICE):
                    self.event.set()
            except Exception as e:  # noqa: BLE001 - a broken feed: the waiter hears of it
                if not self.stop.is_set():
                    self.broken = e
                self.event.set()
                return

    def wait(self, timeout: float | None) -> bool:
        fired = self.event.wait(timeout)
        self.event.clear()
        if self.broken is not None:  # one feed is gone: the waiter subscribes again
            raise (self.broken if isinstance(self.broken, DrmCommunicationError)
                   else DrmCommunicationError(f"a change feed broke: {self.broken!r}"))
        return fired

    def close(self) -> None:
        # The pumps are not waited for: one whose feed's close does not wake its wait (a
        # shared subscription's) ends within a SLICE by itself, and an array's driver that
        # re-aims often (as tasks are submitted) was kept waiting that long each time.
        self.stop.set()
        for f in self.feeds:
            f.close()


def fail_unstarted(store: Store, row: JobRow, annotation: str, job_name: str | None = None,
                   expect: Sequence[str] | None = None, sub_state: str = "not started") -> bool:
    """End a job that never reached its engine FAILED, with ``annotation`` saying why (no
    tracker needed: also for jobs whose tracker cannot be loaded); with ``expect``, only from
    one of those phases (False: it had left them)."""
    info = JobInfo(id=row.id, state=JobState.FAILED, sub_state=sub_state, annotation=annotation,
                   job_name=job_name)
    return store.set_phase(row.id, TERMINAL, JobState.FAILED.value, sub_state=sub_state,
                           expect=expect,
                           info=dumps(_codec.encode(JobBook.complete_info(row, info))))


class JobBook:
    """The jobs of one session: store rows, the tracker's states, and the agent's events."""

    def __init__(self, store: Store, tracker: JobTracker, agent: AgentClient, session: str) -> None:
        self.store = store
        self.tracker = tracker
        self.agent = agent
        self.session = session
        self._firsts: dict[str, str | None] = {}  # array id -> its first job id (never changes)
        self._output_dir: str | None = None
        #: array id -> what the tracker kept of its submitter (never changes)
        self._contexts: dict[str, dict[str, Any] | None] = {}

    # -- states ------------------------------------------------------------------------------------
    def states_of(self, rows: Sequence[JobRow]) -> dict[str, tuple[JobState, str]]:
        """Current states; asks the tracker once for all jobs it owns, and caches every terminal
        state with its JobInfo (in one transaction), so they outlive the engine's record."""
        out: dict[str, tuple[JobState, str]] = {}
        live = []
        for r in rows:
            if r.phase == SUBMITTED and r.tracker_id is not None:
                live.append(r)
            elif r.phase in _WAITING:
                out[r.id] = (JobState.QUEUED, _WAITING[r.phase])
            else:
                out[r.id] = (JobState(r.state), r.sub_state or "")
        if live:
            states = self.tracker.states([r.tracker_id or "" for r in live])
            ended = []
            over = [r for r in live if states[r.tracker_id or ""][0].is_terminal]
            # A job ended by its deadline_time (see expire) ends FAILED saying so.
            notes = self.store.end_notes([r.id for r in over]) if over else {}
            infos = self.tracker_infos(over)
            for r in live:
                st, sub = states[r.tracker_id or ""]
                if r.id in notes:
                    st, sub = JobState.FAILED, "deadline"
                out[r.id] = (st, sub)
                if st.is_terminal:
                    info = infos[r.id]
                    info.state, info.sub_state = st, sub
                    if r.id in notes:
                        info.annotation = notes[r.id]
                    ended.append((r.id, st.value, sub, dumps(_codec.encode(info))))
            if ended:
                self.store.set_terminal(ended)
        return out

    def tracker_info(self, row: JobRow) -> JobInfo:
        """The engine's JobInfo of a submitted job, completed from its row; the engine's own
        id is in ``extensions["native_id"]`` on every tracker (the tracker id unless the tracker
        names a better one, as the process tracker does with the pid)."""
        if not row.tracker_id:
            return self.complete_info(row, JobInfo())
        return self.complete_info(row, self._native(row.tracker_id,
                                                    self.tracker.info(row.tracker_id)))

    @staticmethod
    def _native(tracker_id: str, info: JobInfo) -> JobInfo:
        info.extensions.setdefault("native_id", tracker_id)
        return info

    def tracker_infos(self, rows: Sequence[JobRow]) -> dict[str, JobInfo]:
        """``tracker_info`` of many submitted jobs, asked of the tracker at once; by job id."""
        if not rows:
            return {}
        infos = self.tracker.infos([r.tracker_id for r in rows if r.tracker_id])
        out: dict[str, JobInfo] = {}
        for r in rows:
            info = JobInfo()
            if r.tracker_id:  # (a copy where two rows name one engine job: each is completed)
                got = infos.pop(r.tracker_id, None)
                info = got if got is not None else self.tracker.info(r.tracker_id)
                self._native(r.tracker_id, info)
            out[r.id] = self.complete_info(r, info)
        return out

    @staticmethod
    def complete_info(row: JobRow, info: JobInfo) -> JobInfo:
        """Fill what the store knows and the engine may not: id, name, submission, task."""
        info.id = row.id
        info.submission_machine = SUBMISSION_MACHINE
        info.job_name = info.job_name or _job_name(row.template)
        if info.submission_time is None:
            info.submission_time = dt.datetime.fromtimestamp(row.submitted, dt.timezone.utc)
        if row.task_index is not None:
            info.extensions.setdefault("task_id", str(row.task_index))
            info.extensions.setdefault("array_id", row.array_id or "")
        return info

    def feed(self, rows: Sequence[JobRow], reuse: ChangeFeed | None = None,
             everything: bool = False, wake: bool = True) -> ChangeFeed:
        """One feed for changes of these jobs: the generic transitions the agent announces
        (``job:`` keys) and the engine's own. Where the agent announces the engine's changes
        too (the tracker's ``agent_keys``), both come on one connection and ``reuse`` (a feed
        this returned before) is re-aimed in place rather than replaced; ``everything``: there,
        every key (jobs submitted later too). ``reuse`` is closed when it is not reused.
        ``wake``: a re-aimed feed fires once its new keys apply (a caller that looked before
        they did looks again); without it a change in between is seen at the next event or
        resync (the array driver, which looks again at every task's end anyway)."""
        keys = [f"job:{r.id}" for r in rows]
        tids = [r.tracker_id for r in rows if r.tracker_id]
        engine_keys = self.tracker.agent_keys(tids)
        if engine_keys is not None:
            want = ["*"] if everything else list(dict.fromkeys(keys + engine_keys))
            if isinstance(reuse, AgentFeed):
                # Already watched (the agent's keys of a job do not change as it is submitted;
                # jobs that left the wait may stay watched): nothing to re-aim.
                if "*" in reuse.keys or reuse.keys.issuperset(want):
                    return reuse
                # The agent's answer wakes the waiter once the new keys are in force, so a
                # change between its look and the re-aim is looked at again.
                reuse.rewatch(want, wake=wake)
                return reuse
            if reuse is not None:
                reuse.close()
            return self.agent.watch(want)
        if reuse is not None:
            reuse.close()
        feeds: list[ChangeFeed] = []
        if any(r.phase in NOT_STARTED for r in rows):
            feeds.append(self.agent.watch(keys))
        if tids:
            feeds.append(self.tracker.watch(tids))
        if len(feeds) == 1:
            return feeds[0]
        return MultiFeed(feeds)

    # -- starting claimed tasks ------------------------------------------------------------------
    def engine_template(self, template: JobTemplate, cwd: str | None = None,
                        output: str | None = None) -> JobTemplate:
        """The template as the engine gets it: without the TIMED_FIELDS this layer keeps,
        anchored in its submitter's directory ``cwd`` when another program starts it, and with
        ``output``, its unnamed output files kept under that name (``keep_output``)."""
        kept: dict[str, Any] = {f: None for f in TIMED_FIELDS
                if getattr(template, f) is not None and f not in self.tracker.supported_fields}
        if kept:
            template = dataclasses.replace(template, **kept)
        if cwd is not None:
            template = anchored(template, cwd, self.tracker.host_working_directory)
        if output is not None:
            template = self.keep_output(template, output)
        return template

    def output_dir(self) -> str:
        """The directory of kept output (made for its owner only on first use; looked at once
        per start_claimed)."""
        if self._output_dir is None:
            d = Path(self.tracker.home) / OUTPUT_DIR
            if not d.is_dir():
                private_dir(d)
            self._output_dir = os.fspath(d)
        return self._output_dir

    def keep_output(self, template: JobTemplate, name: str) -> JobTemplate:
        """A template that names no file for stdout (or stderr, not joined) gets one in the
        store's directory, ``name``.out / ``name``.err, as docker and Slurm keep a job's output
        for their logs commands; a named file keeps its DRMAA2 meaning. Only for trackers that
        take output paths."""
        if "output_path" not in self.tracker.supported_fields or self.tracker.keeps_output:
            return template
        changes: dict[str, Any] = {}
        if template.output_path is None:
            changes["output_path"] = os.path.join(self.output_dir(), f"{name}.out")
        if template.error_path is None and not template.join_files:
            changes["error_path"] = os.path.join(self.output_dir(), f"{name}.err")
        return dataclasses.replace(template, **changes) if changes else template

    def check_stderr_apart(self, row: JobRow, template: JobTemplate | None = None) -> None:
        """Refuse (InvalidArgumentError) reading the stderr of a job whose stderr goes into its
        output (join_files)."""
        template = template or _codec.decode(JobTemplate, json.loads(row.template or "{}"))
        if template.join_files:
            raise InvalidArgumentError(
                f"job {row.id}: its stderr goes into its output (join_files=True); read that")

    def output_file(self, row: JobRow, stderr: bool = False) -> Path:
        """The host file a job's stdout (or stderr) goes to: its template's (placeholders
        expanded, relative to its working directory), or the one kept for it. A stderr joined
        into the output is InvalidArgumentError."""
        template = _codec.decode(JobTemplate, json.loads(row.template or "{}"))
        if stderr:
            self.check_stderr_apart(row, template)
        first = self.store.array_first_id(row.array_id) if row.array_id is not None else None
        t = for_task(self.engine_template(template, row.cwd,
                                          kept_name(row.id, first, row.task_index)),
                     row.task_index)
        path = t.error_path if stderr else t.output_path
        if path is None:
            raise UnsupportedOperationError(
                f"job {row.id}: the {self.tracker.scheme!r} tracker takes no output files, so "
                "pydrmaa2 keeps no output for it")
        return Path(t.working_directory or row.cwd or "/", path)

    def is_kept_output(self, row: JobRow, path: Path) -> bool:
        """Whether ``path`` is output kept by pydrmaa2 (not a file the template named)."""
        return path.parent == Path(self.tracker.home) / OUTPUT_DIR

    def forget_output(self, rows: Sequence[JobRow]) -> None:
        """Delete the kept output of jobs being reaped (best effort)."""
        d = Path(self.tracker.home) / OUTPUT_DIR
        if self.tracker.keeps_output or not d.is_dir():
            return
        firsts: dict[str, str | None] = {}
        for r in rows:
            if r.array_id is not None and r.array_id not in firsts:
                firsts[r.array_id] = self.store.array_first_id(r.array_id)
            name = kept_name(r.id, firsts.get(r.array_id) if r.array_id else None, r.task_index)
            for ext in (".out", ".err"):
                with contextlib.suppress(OSError):
                    (d / (name + ext)).unlink()

    def start_claimed(self, rows: Sequence[JobRow], template: JobTemplate | None = None, *,
                      back: Phase | None = None,
                      back_on: type[Drmaa2Error] = Drmaa2Error,
                      first_fails: bool = False, note: str = "not started",
                      unsure_on: type[Drmaa2Error] | None = None,
                      ) -> list[tuple[str, str]]:
        """Submit jobs claimed from the store (phase 'starting'), each with ``template`` (one
        array's) or its own, anchored in its submitter's directory; what the engine took is
        recorded in one transaction whatever came after, and the agent announces them all.

        A job the engine refuses with a ``back_on`` error goes back to phase ``back`` and the
        error is raised (its caller tries again, or tells its user); any other refusal ends it
        FAILED with annotation "``note``: <error>", except that the first raises with
        ``first_fails`` (the template cannot run at all; nothing is let go then, the caller
        withdraws the rest). With ``unsure_on`` (the engine did not answer: it may have the job
        or not), such a job and those not tried after it stay 'starting' unclaimed and the
        error is raised: ``recover_starting`` adopts each where
        the engine has it, else puts it back to wait, once the engine answers. Returns (job
        id, tracker id) of each job the engine took."""
        self._output_dir = None  # looked at again once per call (it may have been removed)
        anchored: dict[str | None, JobTemplate] = {}  # per submitter's directory (one per array)
        firsts = self._firsts  # the first job id of each array (kept output)
        prepared: list[tuple[JobRow, JobTemplate, JobTemplate]] = []
        for row in rows:
            own = template or _codec.decode(JobTemplate, json.loads(row.template or "{}"))
            if template is None or row.cwd not in anchored:
                anchored[row.cwd] = self.engine_template(own, row.cwd)
            if row.array_id is not None and row.array_id not in firsts:
                firsts[row.array_id] = self.store.array_first_id(row.array_id)
            name = kept_name(row.id, firsts.get(row.array_id) if row.array_id else None,
                             row.task_index)
            prepared.append((row, own, for_task(self.keep_output(anchored[row.cwd], name),
                                                row.task_index)))

        of_array = self._contexts

        def context_of(row: JobRow) -> dict[str, Any] | None:
            """What the tracker kept of the job's submitter (read once per array: an array's
            never changes)."""
            if row.array_id is not None and row.array_id in of_array:
                return of_array[row.array_id]
            kept = self.store.context_of(row)
            context = json.loads(kept) if kept else None
            if row.array_id is not None:
                if len(of_array) >= KEPT_CONTEXTS:  # the oldest array's goes
                    del of_array[next(iter(of_array))]
                of_array[row.array_id] = context
            return context

        contexts = {row.id: context_of(row) for row, _, _ in prepared}

        def submit(item: tuple[JobRow, JobTemplate, JobTemplate]
                   ) -> tuple[str | None, BaseException | None]:
            row, _, engine_template = item
            context = contexts[row.id]
            try:
                if context is not None:  # as its submitter (maybe another program) would have
                    return self.tracker.submit_in_context(
                        row.id, engine_template, row.task_index, context), None
                return self.tracker.submit(row.id, engine_template, row.task_index), None
            except BaseException as e:  # noqa: BLE001 - handed to the loop below
                return None, e

        # An engine whose submission is a blocking call gets several at once (as many as it
        # says help); else all in one submit_many, which stops at the first refused (its
        # error raises, or ends that job, and the rest go in another).
        workers = min(self.tracker.submit_concurrency, len(prepared))
        pool = concurrent.futures.ThreadPoolExecutor(workers) if workers > 1 else None
        results = (pool.map(submit, prepared) if pool is not None
                   else self._submit_many(prepared, contexts))
        submitted: list[tuple[str, str]] = []
        error: BaseException | None = None
        unsure = first_failed = False
        try:
            for n, ((row, own, _), (tid, e)) in enumerate(zip(prepared, results, strict=True)):
                if e is None:
                    assert tid is not None
                    submitted.append((row.id, tid))
                    continue
                if not isinstance(e, Drmaa2Error):
                    error = error or e
                elif first_fails and n == 0:  # the template cannot run, or the engine is away
                    first_failed, error = True, e
                elif unsure_on is not None and isinstance(e, unsure_on):
                    unsure, error = True, error or e
                elif back is not None and isinstance(e, back_on):
                    self.store.set_phase(row.id, back, JobState.QUEUED_HELD.value
                                         if back == HELD else JobState.QUEUED.value,
                                         expect=(STARTING,))
                    error = error or e
                else:
                    self.fail_unstarted(row, f"{note}: {e}", own.job_name)
                if error is not None and pool is None:
                    break
        finally:
            if pool is not None:
                pool.shutdown(wait=True)
            if submitted:  # what the engine took is recorded, whatever came after
                self.store.set_submitted(submitted)
            if unsure and not first_failed:  # (failed ones have ended: not 'starting')
                taken = {job_id for job_id, _ in submitted}
                self.store.unclaim_starting([r.id for r in rows if r.id not in taken])
            if rows:
                self.agent.notify(f"job:{r.id}" for r in rows)
        if error is not None:
            raise error
        return submitted

    def _submit_many(self, prepared: Sequence[tuple[JobRow, JobTemplate, JobTemplate]],
                     contexts: dict[str, dict[str, Any] | None]
                     ) -> Iterator[tuple[str | None, BaseException | None]]:
        """(tracker id, None) or (None, error) of each job, through the tracker's submit_many:
        after a refused job, the next ones go in a new call when asked for."""
        done = 0
        while done < len(prepared):
            results = self.tracker.submit_many(
                [(row.id, engine_template, row.task_index, contexts[row.id])
                 for row, _, engine_template in prepared[done:]])
            if not results:
                raise InternalError(f"the {self.tracker.scheme!r} tracker's submit_many "
                                    "answered nothing")
            for result in results:
                done += 1
                yield (None, result) if isinstance(result, BaseException) else (result, None)

    def fail_unstarted(self, row: JobRow, annotation: str, job_name: str | None = None,
                       expect: Sequence[str] | None = None,
                       sub_state: str = "not started") -> bool:
        """End a job that never ran FAILED, with ``annotation`` saying why; with ``expect``,
        only from one of those phases (False: it had left them)."""
        return fail_unstarted(self.store, row, annotation, job_name, expect, sub_state)

    def recover_starting(self, array_id: str | None = None) -> None:
        """Jobs left 'starting' by a claimer that died between claiming and recording them, or
        let go after the engine did not answer their submission: adopted where the engine has
        the job (found by its pydrmaa2 job id), put back to wait where it never got it, FAILED
        with an annotation where the engine cannot tell. An engine that does not answer now
        raises DrmCommunicationError, the jobs not settled let go again for a later look."""
        rows = self.store.stale_starting(self.session, array_id)
        settled: set[str] = set()
        try:
            self._recover(rows, settled)
        except BaseException:
            # Only those not settled: one put back to wait may be 'starting' again already,
            # claimed by a driver that is submitting it.
            self.store.unclaim_starting([r.id for r in rows if r.id not in settled])
            raise
        finally:
            if rows:
                self.agent.notify(f"job:{r.id}" for r in rows)
            # Tasks put back to wait get a driver (the array's may have ended meanwhile,
            # finding none waiting while this recoverer held them); with ``array_id`` the
            # caller is that array's driver.
            for waiting in sorted({r.array_id for r in rows if r.id in settled
                                   and r.array_id is not None and r.array_id != array_id}):
                with contextlib.suppress(Drmaa2Error):
                    self.agent.request("drive", session=self.session, array=waiting)

    def _recover(self, rows: Sequence[JobRow], settled: set[str]) -> None:
        """Settle each row (see recover_starting), adding its id to ``settled``."""
        for row in rows:
            back = (PENDING if row.array_id is not None
                    else SCHEDULED if self.store.start_timer_of(row.id, None) is not None
                    else HELD)
            try:
                tid = self.tracker.find_job(row.id)
            except UnsupportedOperationError:
                self.fail_unstarted(
                    row, "its submission was interrupted (the submitting program ended, or the "
                    "engine did not answer) and the "
                    f"{self.tracker.scheme!r} tracker cannot tell whether the engine got it",
                    expect=(STARTING,))
                settled.add(row.id)
                continue
            except DrmCommunicationError:
                raise  # the engine is away: settled at a later look
            except Drmaa2Error as e:  # the engine answers and cannot settle it: it says why
                self.fail_unstarted(
                    row, "its submission was interrupted (the submitting program ended, or the "
                    f"engine did not answer) and looking it up in the engine failed: {e}",
                    expect=(STARTING,))
                settled.add(row.id)
                continue
            if tid is not None:
                self.store.set_phase(row.id, SUBMITTED, JobState.QUEUED.value, tracker_id=tid,
                                     expect=(STARTING,))
            else:
                self.store.set_phase(row.id, back, JobState.QUEUED_HELD.value if back == HELD
                                     else JobState.QUEUED.value, expect=(STARTING,))
            settled.add(row.id)
            log.info("job %s of session %s: its submission was left unsettled (its claimer died, or "
                     "the engine did not answer); %s", row.id, self.session,
                     f"adopted as {tid}" if tid else f"back to {back}")

    def withdraw(self, tracker_id: str) -> None:
        """Take back a job no row may claim (the store could not record it, or its submitter
        died first): nothing may run that no session knows. Best effort: logged on failure."""
        try:
            self.tracker.control(tracker_id, Action.TERMINATE)
        except InvalidStateError:
            pass  # it has ended already
        except Exception:  # noqa: BLE001 - the caller's error is the one that matters
            log.warning("could not take back job %s from the engine", tracker_id, exc_info=True)
            return
        try:
            deadline = deadline_after(WITHDRAW_TIMEOUT)
            while not self.tracker.state(tracker_id)[0].is_terminal and remaining(deadline):
                time.sleep(0.01)
            self.tracker.delete(tracker_id)
        except Exception:  # noqa: BLE001
            log.warning("could not delete withdrawn job %s", tracker_id, exc_info=True)

    def withdraw_orphans(self) -> None:
        """Engine jobs whose submitter died after the engine took them and before their row
        was written (their ids still claimed by a dead process): found by their pydrmaa2 job id
        and withdrawn."""
        settled = []
        for job_id in self.store.dead_claims(self.session):
            try:
                tid = self.tracker.find_job(job_id)
            except UnsupportedOperationError:
                tid = None
            except DrmCommunicationError as e:  # look again at the next reconciliation
                log.warning("cannot reconcile job id %s now: %s", job_id, e)
                continue
            if tid is not None:
                log.warning("job %s of session %s reached the engine (%s) but its submitter "
                            "died before recording it: withdrawn", job_id, self.session, tid)
                self.withdraw(tid)
            settled.append(job_id)
        if settled:
            self.store.release_claims(settled)

    def reconcile(self) -> None:
        """What dead claimers left: tasks in 'starting' and engine jobs with no row."""
        self.recover_starting()
        self.withdraw_orphans()

    # -- start_time and deadline_time kept by the agent ------------------------------------------
    def start_due(self, job_id: str | None, array_id: str | None) -> None:
        """A job's (or an array's) start_time has come: submit it, or let the array's tasks
        take slots. A job held meanwhile stays held (its release starts it). An engine that
        cannot take it just now (DrmCommunicationError) leaves it waiting: the caller retries."""
        if array_id is not None:
            if self.store.unschedule_array(array_id):
                self.agent.request("drive", session=self.session, array=array_id)
            return
        assert job_id is not None
        self.recover_starting()
        if not self.store.claim_scheduled(job_id):
            return  # held, terminated or started meanwhile
        row = self.store.job(job_id)
        if row is None:
            return
        self.start_claimed([row], back=SCHEDULED, back_on=DrmCommunicationError,
                           note="not started at its start_time")

    def expire(self, job_ids: Sequence[str], deadline: dt.datetime) -> None:
        """The deadline_time of these jobs has come: those not ended are terminated and end
        FAILED with an annotation saying so (those that never started: FAILED unstarted).
        DrmCommunicationError when the engine cannot be told: the caller tries again."""
        when = deadline.isoformat(timespec="seconds")
        note = f"terminated at its deadline_time {when}"
        engine: dict[str, str] = {}
        self.recover_starting()
        for job_id in job_ids:
            row = self.store.job(job_id)
            patience = deadline_after(STARTING_PATIENCE)
            while row is not None and row.phase != TERMINAL:
                if row.phase == SUBMITTED:
                    if self.store.set_end_note(row.id, note):
                        engine[row.tracker_id or ""] = row.id
                    break
                if row.phase != STARTING:
                    if self.fail_unstarted(row, f"its deadline_time {when} passed before it "
                                           "started", expect=(HELD, PENDING, SCHEDULED),
                                           sub_state="deadline"):
                        break
                elif not remaining(patience):
                    log.warning("job %s is still being started at its deadline_time", job_id)
                    break
                else:
                    time.sleep(0.01)  # whoever is submitting it records it in a moment
                row = self.store.job(job_id)
        if engine:
            refused = self.tracker.control_many(list(engine), Action.TERMINATE)
            for tid, err in refused.items():
                if isinstance(err, InvalidStateError):  # it had ended by itself: no note
                    self.store.set_end_note(engine[tid], None)
                else:
                    raise err
        self.agent.notify(f"job:{j}" for j in job_ids)
