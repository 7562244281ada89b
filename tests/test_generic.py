"""The generic layer against a fake tracker: native holds and arrays, batching, caching.

Unit tests may use fakes; the conformance suite never does.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Sequence
from types import SimpleNamespace

import pytest

import pydrmaa2 as d2
from pydrmaa2 import trackers
from pydrmaa2.agent import AgentClient
from pydrmaa2.trackers.base import Action, JobTracker


class FakeTracker(JobTracker):
    """Jobs as dict entries whose state the test sets by hand."""

    scheme = "fake"
    supported_fields = frozenset({"remote_command", "args", "submit_as_hold", "output_path"})
    capabilities = frozenset({d2.Capability.JOB_ARRAYS})
    native_hold = True
    native_arrays = True
    jobs: dict[str, d2.JobState] = {}
    calls: list[tuple] = []
    fail_next = False

    def submit(self, job_id, template, task_index, hold=False):
        self.calls.append(("submit", job_id, hold, template.output_path))
        if FakeTracker.fail_next:
            FakeTracker.fail_next = False
            raise d2.InvalidArgumentError("engine refused it")
        self.jobs[f"t{job_id}"] = d2.JobState.QUEUED_HELD if hold else d2.JobState.RUNNING
        return f"t{job_id}"

    def submit_array(self, job_ids: Sequence[str], template, indices, max_parallel, hold=False):
        self.calls.append(("submit_array", list(job_ids), list(indices), max_parallel, hold))
        for j in job_ids:
            self.jobs[f"t{j}"] = d2.JobState.QUEUED
        return [f"t{j}" for j in job_ids]

    def state(self, tracker_id):
        return self.jobs[tracker_id], "fake"

    def states(self, tracker_ids):
        self.calls.append(("states", len(tracker_ids)))
        return {t: (self.jobs[t], "fake") for t in tracker_ids}

    def info(self, tracker_id):
        self.calls.append(("info", tracker_id))
        return d2.JobInfo(state=self.jobs[tracker_id], exit_status=0)

    def control(self, tracker_id, action):
        self.calls.append(("control", tracker_id, action))
        if action is Action.RELEASE:
            self.jobs[tracker_id] = d2.JobState.RUNNING
        elif action is Action.TERMINATE:
            self.jobs[tracker_id] = d2.JobState.FAILED

    def delete(self, tracker_id):
        self.calls.append(("delete", tracker_id))
        del self.jobs[tracker_id]


@pytest.fixture
def js(tmp_path, monkeypatch):
    monkeypatch.setitem(trackers.BUILTIN, "fake", ("tests.test_generic:FakeTracker", None))
    FakeTracker.jobs, FakeTracker.calls = {}, []
    sm = d2.SessionManager(home=tmp_path)
    with sm.create_job_session("g", contact="fake") as session:
        yield session
    AgentClient.for_home(tmp_path).close()


def test_native_hold_is_passed_to_the_engine_and_release_goes_there_too(js):
    job = js.run_job(d2.JobTemplate(remote_command="x", submit_as_hold=True))
    # No output_path: the output is kept in the store's directory (read by job.output()).
    (call,) = [c for c in FakeTracker.calls if c[0] == "submit"]
    assert call[:3] == ("submit", job.id, True) and call[3].endswith(f"/output/{job.id}.out")
    assert job.state is d2.JobState.QUEUED_HELD
    job.release()
    assert ("control", f"t{job.id}", Action.RELEASE) in FakeTracker.calls
    assert job.state is d2.JobState.RUNNING


def test_native_arrays_get_one_submission_with_every_index(js):
    arr = js.run_bulk_jobs(d2.JobTemplate(remote_command="x"), 3, 9, 3, 2)
    (call,) = [c for c in FakeTracker.calls if c[0] == "submit_array"]
    assert call == ("submit_array", [j.id for j in arr.jobs], [3, 6, 9], 2, False)
    assert [j.state for j in arr.jobs] == [d2.JobState.QUEUED] * 3


def test_a_refused_submission_leaves_no_job(js):
    FakeTracker.fail_next = True
    with pytest.raises(d2.InvalidArgumentError, match="refused"):
        js.run_job(d2.JobTemplate(remote_command="x"))
    assert js.get_jobs() == []


def test_a_refused_submission_burns_its_id(js):
    """The engine may have seen the id (a lost reply): no later job gets it."""
    FakeTracker.fail_next = True
    with pytest.raises(d2.InvalidArgumentError):
        js.run_job(d2.JobTemplate(remote_command="x"))
    refused = FakeTracker.calls[-1][1]
    assert int(js.run_job(d2.JobTemplate(remote_command="x")).id) > int(refused)


def test_a_job_the_store_cannot_record_is_taken_back_from_the_engine(js, tmp_path):
    """The session is destroyed while the engine takes the job: nothing runs that no one knows."""
    real = FakeTracker.submit

    def submit_then_destroy(self, job_id, template, task_index, hold=False):
        tid = real(self, job_id, template, task_index, hold)
        d2.SessionManager(home=tmp_path).destroy_job_session("g")
        return tid

    FakeTracker.submit = submit_then_destroy
    try:
        with pytest.raises(d2.InvalidSessionError, match="'g' was destroyed"):
            js.run_job(d2.JobTemplate(remote_command="x"))
    finally:
        FakeTracker.submit = real
    tid = next(c[1] for c in FakeTracker.calls if c[0] == "submit")
    assert ("control", f"t{tid}", Action.TERMINATE) in FakeTracker.calls
    assert ("delete", f"t{tid}") in FakeTracker.calls and FakeTracker.jobs == {}


def test_placeholders_are_expanded_before_the_tracker_sees_a_job(js):
    js.run_job(d2.JobTemplate(remote_command="x", output_path="/o/$DRMAA2_INDEX$"))
    assert FakeTracker.calls[-1][3] == "/o/1"


def test_unsupported_fields_are_refused_by_name(js):
    with pytest.raises(d2.UnsupportedAttributeError, match="queue_name"):
        js.run_job(d2.JobTemplate(remote_command="x", queue_name="q"))


def test_states_of_many_jobs_are_asked_in_one_call(js):
    jobs = [js.run_job(d2.JobTemplate(remote_command="x")) for _ in range(20)]
    FakeTracker.calls.clear()
    assert len(js.get_jobs(d2.JobInfo(state=d2.JobState.RUNNING))) == 20
    assert [c for c in FakeTracker.calls if c[0] == "states"] == [("states", 20)]
    assert jobs


def test_a_terminal_state_and_info_are_cached_and_reap_deletes_in_the_engine(js):
    job = js.run_job(d2.JobTemplate(remote_command="x"))
    FakeTracker.jobs[f"t{job.id}"] = d2.JobState.DONE
    assert job.state is d2.JobState.DONE
    FakeTracker.calls.clear()
    assert job.info.exit_status == 0 and job.state is d2.JobState.DONE
    assert FakeTracker.calls == []  # answered from the store
    job.reap()
    assert ("delete", f"t{job.id}") in FakeTracker.calls


def test_suspend_of_a_job_that_is_not_running_is_refused(js):
    job = js.run_job(d2.JobTemplate(remote_command="x", submit_as_hold=True))
    with pytest.raises(d2.InvalidStateError, match="QUEUED_HELD"):
        job.suspend()
    with pytest.raises(d2.InvalidStateError, match="only a SUSPENDED job"):
        job.resume()


def test_an_array_control_asks_the_states_once_and_hands_the_engine_every_task_at_once(js):
    arr = js.run_bulk_jobs(d2.JobTemplate(remote_command="x"), 1, 6)
    for j in arr.jobs:
        FakeTracker.jobs[f"t{j.id}"] = d2.JobState.RUNNING
    FakeTracker.jobs[f"t{arr.jobs[0].id}"] = d2.JobState.DONE  # ended: skipped
    many: list[tuple] = []
    real = FakeTracker.control_many

    def control_many(self, tracker_ids, action):
        many.append((list(tracker_ids), action))
        return real(self, tracker_ids, action)

    FakeTracker.control_many = control_many
    try:
        FakeTracker.calls.clear()
        arr.suspend()
    finally:
        FakeTracker.control_many = real
    assert [c for c in FakeTracker.calls if c[0] == "states"] == [("states", 6)]
    assert many == [([f"t{j.id}" for j in arr.jobs[1:]], Action.SUSPEND)]


def test_a_native_array_the_store_cannot_record_is_terminated_in_the_engine(js, tmp_path):
    real = FakeTracker.submit_array

    def submit_then_destroy(self, job_ids, template, indices, max_parallel, hold=False):
        tids = real(self, job_ids, template, indices, max_parallel, hold)
        d2.SessionManager(home=tmp_path).destroy_job_session("g")
        return tids

    FakeTracker.submit_array = submit_then_destroy
    try:
        with pytest.raises(d2.InvalidSessionError, match="'g' was destroyed"):
            js.run_bulk_jobs(d2.JobTemplate(remote_command="x"), 1, 3)
    finally:
        FakeTracker.submit_array = real
    assert sorted(c[1] for c in FakeTracker.calls if c[0] == "control") == sorted(FakeTracker.jobs)
    assert set(FakeTracker.jobs.values()) == {d2.JobState.FAILED}


def test_a_job_that_ended_before_the_notifier_saw_it_is_still_notified(js, tmp_path):
    sm = d2.SessionManager(home=tmp_path)
    session = sm.open_job_session("g")
    seen: list[d2.Notification] = []
    sm.register_event_notification(seen.append)

    def wait_for(job: d2.Job, state: d2.JobState) -> None:
        deadline = time.monotonic() + 10
        while not any(n.job_id == job.id and n.state is state for n in seen):
            assert time.monotonic() < deadline, f"no {state.name} notification for job {job.id}"
            time.sleep(0.02)

    first = session.run_job(d2.JobTemplate(remote_command="x"))
    wait_for(first, d2.JobState.RUNNING)  # the notifier is listening
    quick = session.run_job(d2.JobTemplate(remote_command="x"))
    FakeTracker.jobs[f"t{quick.id}"] = d2.JobState.DONE
    assert quick.state is d2.JobState.DONE  # recorded terminal in the store at once
    wait_for(quick, d2.JobState.DONE)
    sm._notifier_stop.set()
    session.close()


class FakeSingles(FakeTracker):
    """The fake without native arrays: a throttled array's tasks wait in the store."""

    scheme = "fakesingles"
    native_arrays = False


def test_an_array_whose_tracker_the_agent_cannot_load_fails_its_waiting_tasks(tmp_path, monkeypatch):
    """The agent drives throttled arrays; a tracker it cannot import (here: one this test
    registered in its own process only) ends the waiting tasks FAILED saying why, never
    leaves them waiting for ever."""
    monkeypatch.setitem(trackers.BUILTIN, "fakesingles", ("tests.test_generic:FakeSingles", None))
    FakeTracker.jobs, FakeTracker.calls = {}, []
    sm = d2.SessionManager(home=tmp_path)
    try:
        with sm.create_job_session("s", contact="fakesingles") as js:
            arr = js.run_bulk_jobs(d2.JobTemplate(remote_command="x"), 1, 5, max_parallel=2)
            started, waiting = arr.jobs[:2], arr.jobs[2:]
            js.wait_all_terminated(waiting, 30)
            for job in waiting:
                assert job.state is d2.JobState.FAILED
                assert "cannot load the tracker of contact 'fakesingles'" in job.info.annotation
            assert all(j.state is d2.JobState.RUNNING for j in started)
    finally:
        AgentClient.for_home(tmp_path).close()


class FakeSlowStarts(FakeSingles):
    """Submissions made several at once (as a container engine's); the task of index 3 is
    submitted only once the test lets it go."""

    scheme = "fakeslowstarts"
    submit_concurrency = 4
    go = threading.Event()

    def submit(self, job_id, template, task_index, hold=False):
        if task_index == 3:
            assert FakeSlowStarts.go.wait(30)
        return super().submit(job_id, template, task_index, hold)


def _submitted() -> set[str]:
    """The job ids the fake was asked to submit."""
    return {c[1] for c in FakeTracker.calls if c[0] == "submit"}


def _until(check, what: str) -> None:
    deadline = time.monotonic() + 20
    while not check():
        assert time.monotonic() < deadline, f"{what}: {FakeTracker.calls}"
        time.sleep(0.02)


@contextlib.contextmanager
def _throttled_array(tmp_path, tracker_class, tasks: int, limit: int, before_join=None):
    """An array of ``tasks`` waiting tasks, max_parallel ``limit``, in a store of a session
    on the fake ``tracker_class``, with a driver thread not yet started (the agent runs before
    the array exists: it never drives it). At the end every fake job ends, so that the driver
    can, and it is joined."""
    from pydrmaa2 import _arrays
    from pydrmaa2._book import JobBook
    from pydrmaa2._store import Store
    from pydrmaa2.trackers.base import Contact

    FakeTracker.jobs, FakeTracker.calls = {}, []
    client = AgentClient.for_home(tmp_path)
    client.request("ping")
    store = Store(tmp_path / "store.sqlite")
    store.create_session("s", "job", tracker_class.scheme)
    array_id, ids = store.add_array("s", '{"remote_command": "x"}', 1, tasks, 1, limit,
                                    [(i, "pending", "queued") for i in range(1, tasks + 1)])
    tracker = tracker_class(Contact.parse(tracker_class.scheme), tmp_path)
    book = JobBook(store, tracker, client, "s")
    driver = threading.Thread(target=_arrays.drive, args=(book, array_id))
    try:
        yield SimpleNamespace(store=store, ids=ids, book=book, tracker=tracker, driver=driver,
                              array_id=array_id)
    finally:
        if before_join is not None:
            before_join()
        for tid in list(FakeTracker.jobs):  # whatever happened, the driver can end
            FakeTracker.jobs[tid] = d2.JobState.DONE
        if driver.ident is not None:
            driver.join(30)
        client.close()


def test_a_throttled_drivers_slot_is_filled_while_another_task_is_still_being_submitted(
        tmp_path):
    """On an engine whose submission is a slow call, the array's driver submits each task on
    its own and goes on looking: a slot that frees while another task's submission hangs gets
    its next task at once."""
    FakeSlowStarts.go.clear()
    with _throttled_array(tmp_path, FakeSlowStarts, 5, 2,
                          before_join=FakeSlowStarts.go.set) as a:
        ids, store = a.ids, a.store
        a.driver.start()
        _until(lambda: _submitted() == {ids[0], ids[1]}, "the first two tasks")
        FakeTracker.jobs[f"t{ids[0]}"] = d2.JobState.DONE  # task 3's submission now hangs
        _until(lambda: store.job_rows("s", [ids[2]])[0].phase == "starting", "task 3 claimed")
        FakeTracker.jobs[f"t{ids[1]}"] = d2.JobState.DONE
        _until(lambda: ids[3] in _submitted(), "task 4 while task 3 is being submitted")
        assert ids[2] not in _submitted()
        FakeSlowStarts.go.set()
        _until(lambda: ids[2] in _submitted(), "task 3 once let go")
        FakeTracker.jobs[f"t{ids[2]}"] = d2.JobState.DONE
        _until(lambda: ids[4] in _submitted(), "task 5 in the slot of task 3")
        a.driver.join(30)
        assert not a.driver.is_alive()
    assert _submitted() == set(ids)


class FakeKeepsEnded(FakeSingles):
    """The fake declaring that it keeps ended jobs' records until they are deleted; a job it
    has no record of is one still being started, as the process tracker says."""

    scheme = "fakekeepsended"
    keeps_ended = True

    def states(self, tracker_ids):
        self.calls.append(("states", len(tracker_ids)))
        return {t: (self.jobs.get(t, d2.JobState.QUEUED), "fake") for t in tracker_ids}


@pytest.mark.parametrize("tracker_class", [FakeSingles, FakeKeepsEnded])
def test_a_throttled_driver_records_an_end_only_where_the_tracker_would_not_keep_it(
        tmp_path, tracker_class, monkeypatch):
    """The driver frees a slot at a task's end either way; it records the end in the store at
    once only where the engine's record may go (a tracker that keeps ended jobs' records, as
    the process tracker, leaves that to whoever reads the task, as for any job)."""
    from pydrmaa2 import _arrays

    monkeypatch.setattr(_arrays, "RESYNC_INTERVAL", 60.0)  # (a resync records every end)
    with _throttled_array(tmp_path, tracker_class, 4, 2) as a:
        ids, store = a.ids, a.store
        a.driver.start()
        _until(lambda: _submitted() == {ids[0], ids[1]}, "the first two tasks")
        FakeTracker.jobs[f"t{ids[0]}"] = d2.JobState.DONE
        _until(lambda: ids[2] in _submitted(), "task 3 in the slot of task 1")
        assert _submitted() == {ids[0], ids[1], ids[2]}  # task 2 still holds its slot
        assert store.job_rows("s", [ids[0]])[0].phase == (
            "submitted" if tracker_class.keeps_ended else "terminal")
        for tid in list(FakeTracker.jobs):
            FakeTracker.jobs[tid] = d2.JobState.DONE
        _until(lambda: ids[3] in _submitted(), "task 4")
        a.driver.join(30)
        assert not a.driver.is_alive()
    # Whoever reads the tasks records them.
    states = a.book.states_of(store.job_rows("s", ids))
    assert {s for s, _ in states.values()} == {d2.JobState.DONE}
    assert {r.phase for r in store.job_rows("s", ids)} == {"terminal"}
    assert json.loads(store.job_rows("s", [ids[0]])[0].info)["exit_status"] == 0


class FakeQuickStarts(FakeSingles):
    """Submissions made several at once that end at once, on an engine whose own events never
    come: the driver hears of a task only through pydrmaa2's announcement of its submission."""

    scheme = "fakequickstarts"
    submit_concurrency = 2

    def submit(self, job_id, template, task_index, hold=False):
        tid = super().submit(job_id, template, task_index, hold)
        self.jobs[tid] = d2.JobState.DONE
        return tid

    def watch(self, tracker_ids):
        return trackers.base.PollFeed(60.0)


def test_a_throttled_driver_takes_in_submissions_done_before_it_watched_them(
        tmp_path, monkeypatch):
    """A submission in the pool that is done (and announced) before the driver's feed watches
    its task is taken in after the feed is aimed, not left to the next resync (5 s a turn)."""
    from pydrmaa2 import _arrays

    aim = _arrays._Throttled.aim

    def slow_aim(self):  # every submission of the turn is done before the feed is aimed
        time.sleep(0.3)
        return aim(self)

    monkeypatch.setattr(_arrays._Throttled, "aim", slow_aim)
    with _throttled_array(tmp_path, FakeQuickStarts, 6, 2) as a:
        began = time.monotonic()
        _arrays.drive(a.book, a.array_id)
        assert time.monotonic() - began < 4.0
    assert _submitted() == set(a.ids)


def test_a_throttled_driver_frees_the_slot_of_a_task_reaped_before_it_looked(tmp_path, monkeypatch):
    """A task that ended and was reaped (its row and the engine's record gone) before the
    driver saw it end frees its slot at the driver's next look, not at the next resync: the
    tracker no longer knows the job (the process tracker then says it is being started)."""
    from pydrmaa2 import _arrays

    monkeypatch.setattr(_arrays, "RESYNC_INTERVAL", 60.0)
    with _throttled_array(tmp_path, FakeKeepsEnded, 3, 2) as a:
        ids, store = a.ids, a.store
        a.driver.start()
        _until(lambda: _submitted() == {ids[0], ids[1]}, "the first two tasks")
        # Reaped as a session reaps: its end recorded, the engine's record and the row deleted.
        FakeTracker.jobs[f"t{ids[0]}"] = d2.JobState.DONE
        a.book.states_of(store.job_rows("s", [ids[0]]))
        a.tracker.delete(f"t{ids[0]}")
        store.delete_job(ids[0])
        _until(lambda: ids[2] in _submitted(), "task 3 in the slot of the reaped task 1")
    assert not a.driver.is_alive()


def test_an_array_asked_to_be_driven_while_its_driver_ends_is_driven_again(tmp_path, monkeypatch):
    """A 'drive' request that comes while the array's driver runs (it may have looked for
    waiting tasks for the last time already: a task released just then) starts the driver
    again once it ends, rather than leaving the task waiting until the agent restarts."""
    from types import SimpleNamespace

    from pydrmaa2 import _arrays
    from pydrmaa2._store import Store

    monkeypatch.setitem(trackers.BUILTIN, "fakesingles", ("tests.test_generic:FakeSingles", None))
    Store(tmp_path / "store.sqlite").create_session("s", "job", "fakesingles")
    first_may_end = threading.Event()
    calls: list[str] = []

    def fake_drive(book, array_id):
        calls.append(array_id)
        if len(calls) == 1:
            assert first_may_end.wait(20)

    monkeypatch.setattr(_arrays, "drive", fake_drive)
    agent = SimpleNamespace(home=tmp_path, handlers={}, busy_checks=[], touch=lambda: None)
    service = _arrays.ArrayService(agent)
    service.drive("s", "7")
    deadline = time.monotonic() + 20
    while not calls:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    service.drive("s", "7")  # while the first driver runs
    first_may_end.set()
    while len(calls) < 2 or service.busy():
        assert time.monotonic() < deadline, calls
        time.sleep(0.01)
    assert calls == ["7", "7"]


class FakeAway(FakeSingles):
    """An engine that does not answer the first submission of the task of index 2: with
    ``took_it`` it had taken the job all the same (its answer was lost). It finds jobs by
    their pydrmaa2 id, as every built-in tracker does."""

    scheme = "fakeaway"
    took_it = False
    fail_index = 2
    missed: set[int] = set()

    def submit(self, job_id, template, task_index, hold=False):
        if task_index == FakeAway.fail_index and task_index not in FakeAway.missed:
            FakeAway.missed.add(task_index)
            self.calls.append(("submit", job_id, hold, template.output_path))
            if FakeAway.took_it:
                self.jobs[f"t{job_id}"] = d2.JobState.RUNNING
            raise d2.DrmCommunicationError("cannot reach the fake engine at fake://")
        return super().submit(job_id, template, task_index, hold)

    def find_job(self, job_id):
        return f"t{job_id}" if f"t{job_id}" in self.jobs else None


class FakeAwayInPool(FakeAway):
    scheme = "fakeawayinpool"
    submit_concurrency = 2


@pytest.mark.parametrize("took_it", [False, True], ids=["lost", "taken"])
@pytest.mark.parametrize(("tracker_class", "limit"), [
    (FakeAway, 2), (FakeAwayInPool, 2), (FakeAway, None)])
def test_a_driver_whose_engine_does_not_answer_a_submission_settles_it_once_it_answers(
        tmp_path, monkeypatch, tracker_class, limit, took_it):
    """A task whose submission the engine did not answer is not FAILED: it is let go, and the
    driver's next look (the engine answering again) adopts it where the engine has it, else
    submits it again. Every task runs once, none ends FAILED."""
    from pydrmaa2 import _arrays

    monkeypatch.setattr(_arrays, "ENGINE_AWAY_PAUSE", 0.05)
    monkeypatch.setattr(FakeAway, "took_it", took_it)
    FakeAway.missed = set()
    with _throttled_array(tmp_path, tracker_class, 4, limit or 4) as a:
        if limit is None:  # the unthrottled driver
            with a.store.db.transaction() as db:
                db.execute("UPDATE arrays SET max_parallel=NULL WHERE id=?", (a.array_id,))
        a.driver.start()

        def all_in() -> bool:  # each task ends as soon as it is in the engine
            for tid in list(FakeTracker.jobs):
                FakeTracker.jobs[tid] = d2.JobState.DONE
            return {f"t{i}" for i in a.ids} <= set(FakeTracker.jobs)

        _until(all_in, "every task in the engine")
        a.driver.join(30)
        assert not a.driver.is_alive()
    second = a.ids[1]
    asked = [c[1] for c in FakeTracker.calls if c[0] == "submit"]
    assert asked.count(second) == (1 if took_it else 2)
    assert sorted(set(asked)) == sorted(a.ids)
    rows = a.store.job_rows("s", a.ids)
    assert all(r.phase in ("submitted", "terminal") for r in rows), rows
    states = a.book.states_of(rows)
    assert {s for s, _ in states.values()} == {d2.JobState.DONE}, states


@pytest.mark.parametrize("took_it", [False, True], ids=["lost", "taken"])
def test_an_array_task_its_submitter_could_not_settle_is_left_to_the_driver(
        tmp_path, monkeypatch, took_it):
    """The submitting program starts an array's first tasks itself; one whose submission the
    engine did not answer (after it took the first) does not fail the call: it is let go for
    the agent's driver, which settles it once the engine answers (here run in this process:
    the agent cannot load a tracker registered by a test)."""
    from pydrmaa2 import _arrays

    monkeypatch.setitem(trackers.BUILTIN, "fakeawayinpool",
                        ("tests.test_generic:FakeAwayInPool", None))
    monkeypatch.setattr(FakeAway, "took_it", took_it)
    FakeAway.missed = set()
    FakeTracker.jobs, FakeTracker.calls = {}, []
    sm = d2.SessionManager(home=tmp_path)
    try:
        with sm.create_job_session("s", contact="fakeawayinpool") as js:
            asked_to_drive = []
            request = js._agent.request

            def no_drive(op, **kw):  # (the agent cannot load the fake: it is driven here)
                if op == "drive":
                    asked_to_drive.append(kw["array"])
                    return {}
                return request(op, **kw)

            # The agent runs before the array exists (it takes up arrays with waiting tasks
            # when it starts, and cannot load the fake).
            js._agent.request("ping")
            monkeypatch.setattr(js._agent, "request", no_drive)
            arr = js.run_bulk_jobs(d2.JobTemplate(remote_command="x"), 1, 4)
            second = arr.jobs[1]
            assert js._row(second.id).phase == "starting"
            assert asked_to_drive == [arr.id]
            _arrays.drive(js._book, arr.id)
            asked = [c[1] for c in FakeTracker.calls if c[0] == "submit"]
            assert asked.count(second.id) == (1 if took_it else 2)
            assert [j.state for j in arr.jobs] == [d2.JobState.RUNNING] * 4
    finally:
        AgentClient.for_home(tmp_path).close()


def test_an_array_whose_first_task_the_engine_does_not_answer_is_refused(tmp_path, monkeypatch):
    """The engine not answering the first task's submission: the engine is away, and the call
    raises DrmCommunicationError; no array remains."""
    monkeypatch.setitem(trackers.BUILTIN, "fakeawayinpool",
                        ("tests.test_generic:FakeAwayInPool", None))
    monkeypatch.setattr(FakeAway, "fail_index", 1)
    FakeAway.missed = set()
    FakeTracker.jobs, FakeTracker.calls = {}, []
    sm = d2.SessionManager(home=tmp_path)
    try:
        with sm.create_job_session("s", contact="fakeawayinpool") as js:
            with pytest.raises(d2.DrmCommunicationError, match="fake://"):
                js.run_bulk_jobs(d2.JobTemplate(remote_command="x"), 1, 4)
            assert js.get_jobs() == []
    finally:
        AgentClient.for_home(tmp_path).close()


def _let_go_book(tmp_path, tasks: int):
    """A store with an array of ``tasks`` tasks let go while 'starting' (their engine did not
    answer), and a book on the fake whose agent client only records its requests."""
    from pydrmaa2._book import JobBook
    from pydrmaa2._store import Store
    from pydrmaa2.trackers.base import Contact

    FakeTracker.jobs, FakeTracker.calls = {}, []
    store = Store(tmp_path / "store.sqlite")
    store.create_session("s", "job", "fakeaway")
    array_id, ids = store.add_array("s", '{"remote_command": "x"}', 1, tasks, 1, tasks,
                                    [(i, "starting", "queued") for i in range(1, tasks + 1)])
    store.unclaim_starting(ids)
    asked: list[tuple] = []
    client = SimpleNamespace(notify=lambda keys: list(keys),
                             request=lambda op, **kw: asked.append((op, kw)))
    book = JobBook(store, FakeAway(Contact.parse("fakeaway"), tmp_path), client, "s")
    return store, book, array_id, ids, asked


def test_a_recoverer_the_engine_stops_answering_lets_go_only_what_it_did_not_settle(
        tmp_path, monkeypatch):
    """The engine stops answering while a recoverer settles let-go tasks: those it had put
    back to wait are not let go again (a driver may be submitting one already: let go, it
    would be settled, and submitted, a second time); the others are, for a later look. The
    array's driver is asked for the tasks put back."""
    store, book, array_id, ids, asked = _let_go_book(tmp_path, 2)
    first, second = ids

    def find_job(job_id):
        if job_id == second:  # meanwhile a driver claimed the first, put back to wait
            assert [r.id for r in store.claim_pending(array_id, None)] == [first]
            raise d2.DrmCommunicationError("cannot reach the fake engine at fake://")
        return None

    monkeypatch.setattr(book.tracker, "find_job", find_job)
    with pytest.raises(d2.DrmCommunicationError):
        book.recover_starting()  # (as a session's open, or the agent's timers, do)
    claimers = dict(store.db.query("SELECT id, claimer FROM jobs WHERE id IN (?, ?)",
                                   (int(first), int(second))))
    assert claimers[int(first)] is not None  # still the driver's
    assert claimers[int(second)] is None  # let go again
    assert asked == [("drive", {"session": "s", "array": array_id})]


def test_a_let_go_task_the_engine_cannot_look_up_ends_failed_saying_why(tmp_path, monkeypatch):
    """An engine that answers but cannot settle a let-go task (its look-up or the removal of
    what the submission left fails) ends it FAILED with the engine's words, rather than
    ending the array's driver."""
    store, book, array_id, ids, _ = _let_go_book(tmp_path, 1)

    def find_job(job_id):
        raise d2.InvalidArgumentError("removing container abc: conflict")

    monkeypatch.setattr(book.tracker, "find_job", find_job)
    book.recover_starting(array_id)
    (row,) = store.job_rows("s", ids)
    assert (row.phase, row.state) == ("terminal", "failed")
    assert "removing container abc: conflict" in json.loads(row.info)["annotation"]
