"""The behaviours every tracker must show, written once and run against each (psij-style).

A test module provides a ``target`` fixture (a ``Target``); these tests and fixtures do the rest.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import pydrmaa2 as d2

from .targets import Target


# -- fixtures -------------------------------------------------------------------------------------
@pytest.fixture
def home(tmp_path: Path) -> Path:
    h = tmp_path / "home"
    h.mkdir()
    return h


@pytest.fixture
def sm(home: Path, target: Target) -> Iterator[d2.SessionManager]:
    from ..agent import AgentClient

    manager = d2.SessionManager(home=home)
    yield manager
    manager._notifier_stop.set()
    AgentClient.for_home(home).close()


@pytest.fixture
def js(sm: d2.SessionManager, target: Target) -> Iterator[d2.JobSession]:
    session = sm.create_job_session("conformance", contact=target.contact)
    yield session
    # Leave nothing running in the engine: end and reap whatever the test left behind.
    if session._closed:
        session = sm.open_job_session("conformance")
    jobs = session.get_jobs()
    for j in jobs:
        try:
            if not j.state.is_terminal:
                j.terminate()
        except d2.Drmaa2Error:
            pass
    try:
        if jobs:
            session.wait_all_terminated(jobs, timeout=target.slow)
    except d2.Drmaa2Error:
        pass
    for j in jobs:
        try:
            j.reap()
        except d2.Drmaa2Error:
            pass
    session.close()


def _wait_state(job: d2.Job, state: d2.JobState, timeout: float) -> None:
    """Wait for a non-terminal state change (suspend/resume take effect asynchronously)."""
    deadline = time.monotonic() + timeout
    while job.state is not state:
        if time.monotonic() > deadline:
            raise AssertionError(f"{job} is {job.state}, not {state} after {timeout} s")
        time.sleep(0.05)


# -- lifecycle -------------------------------------------------------------------------------------
def test_job_that_exits_zero_is_done(js: d2.JobSession, target: Target) -> None:
    job = js.run_job(target.template("/bin/true"))
    info = job.wait_terminated(target.slow)
    assert info.state is d2.JobState.DONE
    assert info.exit_status == 0
    assert job.state is d2.JobState.DONE
    assert info.id == job.id


def test_job_exit_code_is_reported_and_job_failed(js: d2.JobSession, target: Target) -> None:
    job = js.run_job(target.sh("exit 3"))
    info = job.wait_terminated(target.slow)
    assert info.state is d2.JobState.FAILED
    assert info.exit_status == 3


def test_output_and_error_paths_receive_the_streams(
        js: d2.JobSession, target: Target, tmp_path: Path) -> None:
    out, err = tmp_path / "out.txt", tmp_path / "err.txt"
    job = js.run_job(target.sh("echo to-out; echo to-err >&2; exit 1",
                               output_path=str(out), error_path=str(err)))
    job.wait_terminated(target.slow)
    assert out.read_text() == "to-out\n"
    assert err.read_text() == "to-err\n"


def test_join_files_puts_stderr_into_the_output_file(
        js: d2.JobSession, target: Target, tmp_path: Path) -> None:
    out = tmp_path / "joined.txt"
    job = js.run_job(target.sh("echo a; echo b >&2", output_path=str(out), join_files=True))
    job.wait_terminated(target.slow)
    assert sorted(out.read_text().split()) == ["a", "b"]


def test_environment_job_id_and_working_directory_reach_the_job(
        js: d2.JobSession, target: Target, tmp_path: Path) -> None:
    out = tmp_path / "env.txt"
    job = js.run_job(target.sh('echo "$GREETING $JOB_ID"; pwd', output_path=str(out),
                               job_environment={"GREETING": "hello world"},
                               working_directory="/tmp"))
    job.wait_terminated(target.slow)
    lines = out.read_text().splitlines()
    assert lines[0].startswith("hello world ")
    assert lines[0].split()[-1]  # JOB_ID is set (the engine's or pydrmaa2's id)
    assert lines[1] == "/tmp"


def test_arguments_are_passed_as_a_vector_not_a_shell_line(
        js: d2.JobSession, target: Target, tmp_path: Path) -> None:
    out = tmp_path / "args.txt"
    job = js.run_job(target.template("/bin/sh", "-c", 'for a in "$@"; do echo "[$a]"; done', "sh",
                                     "two words", "$HOME", "a;b", output_path=str(out)))
    job.wait_terminated(target.slow)
    assert out.read_text().splitlines() == ["[two words]", "[$HOME]", "[a;b]"]


def test_job_info_has_times_machine_and_owner(js: d2.JobSession, target: Target) -> None:
    job = js.run_job(target.sh("sleep 0.2"))
    info = job.wait_terminated(target.slow)
    assert info.submission_time is not None and info.submission_time.tzinfo is not None
    assert info.dispatch_time is not None and info.finish_time is not None
    assert info.finish_time >= info.dispatch_time
    assert info.allocated_machines
    assert info.job_owner


# -- control ---------------------------------------------------------------------------------------
def test_suspend_and_resume_a_running_job(js: d2.JobSession, target: Target) -> None:
    job = js.run_job(target.template("/bin/sleep", "30"))
    job.wait_started(target.slow)
    job.suspend()
    _wait_state(job, d2.JobState.SUSPENDED, target.slow)
    job.resume()
    _wait_state(job, d2.JobState.RUNNING, target.slow)
    job.terminate()
    assert job.wait_terminated(target.slow).state is d2.JobState.FAILED


def test_terminate_ends_a_running_job_failed(js: d2.JobSession, target: Target) -> None:
    job = js.run_job(target.template("/bin/sleep", "60"))
    job.wait_started(target.slow)
    t0 = time.monotonic()
    job.terminate()
    info = job.wait_terminated(target.slow)
    assert info.state is d2.JobState.FAILED
    assert time.monotonic() - t0 < 30


def test_submit_as_hold_waits_for_release(js: d2.JobSession, target: Target, tmp_path: Path) -> None:
    out = tmp_path / "held.txt"
    job = js.run_job(target.sh("echo ran", output_path=str(out), submit_as_hold=True))
    assert job.state is d2.JobState.QUEUED_HELD
    with pytest.raises(d2.TimeoutError):
        job.wait_started(0.5)
    job.release()
    assert job.wait_terminated(target.slow).state is d2.JobState.DONE
    assert out.read_text() == "ran\n"


def test_terminating_a_held_job_ends_it_without_running(
        js: d2.JobSession, target: Target, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    job = js.run_job(target.sh("echo ran", output_path=str(marker), submit_as_hold=True))
    job.terminate()
    assert job.wait_terminated(target.slow).state is d2.JobState.FAILED
    assert not marker.exists() or marker.read_text() == ""


def test_controlling_a_finished_job_is_an_invalid_state(js: d2.JobSession, target: Target) -> None:
    job = js.run_job(target.template("/bin/true"))
    job.wait_terminated(target.slow)
    for op in (job.suspend, job.resume, job.terminate, job.hold):
        with pytest.raises(d2.InvalidStateError, match=job.id):
            op()


# -- output ----------------------------------------------------------------------------------------
def test_output_is_kept_without_a_path_and_read_by_the_api(js: d2.JobSession, target: Target) -> None:
    job = js.run_job(target.sh("echo one; echo oops >&2; printf 'two\\nthree'"))
    job.wait_terminated(target.slow)
    assert list(job.output()) == ["one\n", "two\n", "three"]
    assert list(job.error()) == ["oops\n"]
    assert list(job.output(tail=2)) == ["two\n", "three"]
    assert list(job.output(tail=0)) == []


def test_output_is_followed_as_the_job_writes_it(js: d2.JobSession, target: Target) -> None:
    job = js.run_job(target.sh("echo first; sleep 3; echo second"))
    t0, seen = time.monotonic(), []
    for line in job.output(follow=True):
        seen.append((line, time.monotonic() - t0))
    assert [line for line, _ in seen] == ["first\n", "second\n"]
    assert seen[1][1] - seen[0][1] > 1.5, seen  # the first line came before the job ended
    assert job.state.is_terminal


def test_output_of_a_named_file_and_a_joined_stderr(js: d2.JobSession, target: Target,
                                                    tmp_path: Path) -> None:
    out = tmp_path / "named.txt"
    job = js.run_job(target.sh("echo to-file; echo also >&2", output_path=str(out),
                               join_files=True))
    job.wait_terminated(target.slow)
    assert sorted(job.output()) == ["also\n", "to-file\n"]
    assert sorted(out.read_text().splitlines()) == ["also", "to-file"]
    with pytest.raises(d2.InvalidArgumentError, match="join_files"):
        job.error()


def test_output_of_a_relative_path_is_read_where_the_job_wrote_it(
        js: d2.JobSession, target: Target, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A relative output_path is the submitter's directory's, for the job and for
    ``Job.output()`` read from anywhere later (an engine that keeps output: its own)."""
    monkeypatch.chdir(tmp_path)
    job = js.run_job(target.sh("echo relative", output_path="rel.out"))
    job.wait_terminated(target.slow)
    monkeypatch.chdir("/")
    assert list(job.output()) == ["relative\n"]
    if not js._tracker.keeps_output:
        assert (tmp_path / "rel.out").read_text() == "relative\n"


def test_array_tasks_have_their_own_output_and_reaping_deletes_it(
        js: d2.JobSession, target: Target) -> None:
    arr = js.run_bulk_jobs(target.sh("echo task $TASK_ID"), 1, 3, 1, 2)
    js.wait_all_terminated(arr.jobs, target.slow)
    assert [list(t.output()) for t in arr.jobs] == [[f"task {i}\n"] for i in (1, 2, 3)]
    if js._tracker.keeps_output:  # the engine keeps it (remote: the server), and reaps it
        arr.reap()
        return
    kept = Path(js._book.output_dir())
    before = len(list(kept.iterdir()))
    arr.reap()
    assert len(list(kept.iterdir())) == before - 6  # a .out and a .err per task


# -- arrays ----------------------------------------------------------------------------------------
def test_array_tasks_see_their_index_and_write_their_own_files(
        js: d2.JobSession, target: Target, tmp_path: Path) -> None:
    arr = js.run_bulk_jobs(
        target.sh('echo "$TASK_ID"', output_path=str(tmp_path / "task.$DRMAA2_INDEX$")),
        begin=2, end=8, step=3)
    assert len(arr.jobs) == 3
    js.wait_all_terminated(arr.jobs, target.slow * 2)
    for i in (2, 5, 8):
        assert (tmp_path / f"task.{i}").read_text() == f"{i}\n"
    assert js.get_job_array(arr.id).jobs == arr.jobs


def test_array_respects_max_parallel(js: d2.JobSession, target: Target) -> None:
    arr = js.run_bulk_jobs(target.sh("sleep 0.4"), begin=1, end=6, max_parallel=2)
    js.wait_all_terminated(arr.jobs, target.slow * 4)
    infos = [j.info for j in arr.jobs]
    spans = [(i.dispatch_time, i.finish_time) for i in infos
             if i.dispatch_time is not None and i.finish_time is not None]
    assert len(spans) == len(infos), infos
    most = max(sum(1 for s2, e2 in spans if s2 <= s < e2) for s, _ in spans)
    assert most <= 2, spans
    assert all(j.state is d2.JobState.DONE for j in arr.jobs)


def test_a_queued_task_cannot_be_suspended_and_terminating_it_frees_the_array(
        js: d2.JobSession, target: Target, tmp_path: Path) -> None:
    arr = js.run_bulk_jobs(target.sh("sleep 0.5"), begin=1, end=3, max_parallel=1)
    first, second, third = arr.jobs
    assert second.state is d2.JobState.QUEUED
    with pytest.raises(d2.InvalidStateError):
        second.suspend()
    second.terminate()
    js.wait_all_terminated(arr.jobs, target.slow * 3)
    assert second.info.state is d2.JobState.FAILED
    assert second.info.dispatch_time is None  # it never ran
    assert third.state is d2.JobState.DONE


def test_array_hold_and_release(js: d2.JobSession, target: Target) -> None:
    arr = js.run_bulk_jobs(target.template("/bin/true", submit_as_hold=True), 1, 3, 1, 2)
    assert {j.state for j in arr.jobs} == {d2.JobState.QUEUED_HELD}
    arr.release()
    js.wait_all_terminated(arr.jobs, target.slow * 2)
    assert {j.state for j in arr.jobs} == {d2.JobState.DONE}


# -- waiting and timeouts --------------------------------------------------------------------------
def test_zero_timeout_looks_once_and_raises(js: d2.JobSession, target: Target) -> None:
    job = js.run_job(target.template("/bin/sleep", "30"))
    with pytest.raises(d2.TimeoutError):
        job.wait_terminated(d2.ZERO_TIME)
    t0 = time.monotonic()
    with pytest.raises(TimeoutError):  # also the builtin
        js.wait_all_terminated([job], 0.3)
    assert 0.25 <= time.monotonic() - t0 < 5


def test_wait_any_returns_the_first_job_to_end(js: d2.JobSession, target: Target) -> None:
    slow = js.run_job(target.template("/bin/sleep", "30"))
    fast = js.run_job(target.template("/bin/true"))
    assert js.wait_any_terminated([slow, fast], target.slow) == fast
    assert js.wait_any_started([slow, fast], target.slow) in (slow, fast)


def test_wait_on_an_empty_list_is_an_invalid_argument(js: d2.JobSession, target: Target) -> None:
    with pytest.raises(d2.InvalidArgumentError):
        js.wait_any_terminated([])


# -- reap, filters, sessions -----------------------------------------------------------------------
def test_reap_forgets_an_ended_job_and_refuses_a_running_one(js: d2.JobSession, target: Target) -> None:
    running = js.run_job(target.template("/bin/sleep", "30"))
    with pytest.raises(d2.InvalidStateError):
        running.reap()
    done = js.run_job(target.template("/bin/true"))
    done.wait_terminated(target.slow)
    done.reap()
    assert done not in js.get_jobs()
    with pytest.raises(d2.InvalidArgumentError):
        done.state  # noqa: B018


def test_get_jobs_filters_by_state(js: d2.JobSession, target: Target) -> None:
    running = js.run_job(target.template("/bin/sleep", "30"))
    done = js.run_job(target.template("/bin/true"))
    done.wait_terminated(target.slow)
    running.wait_started(target.slow)
    assert js.get_jobs(d2.JobInfo(state=d2.JobState.DONE)) == [done]
    assert js.get_jobs(d2.JobInfo(state=d2.JobState.RUNNING)) == [running]
    assert set(js.get_jobs()) == {running, done}


def test_closing_a_closed_session_is_an_invalid_session(sm: d2.SessionManager, target: Target) -> None:
    session = sm.create_job_session("twice", contact=target.contact)
    session.close()
    with pytest.raises(d2.InvalidSessionError):
        session.close()
    with pytest.raises(d2.InvalidSessionError):
        session.run_job(target.template("/bin/true"))


def test_session_names_are_unique_and_must_exist(sm: d2.SessionManager, target: Target) -> None:
    sm.create_job_session("one", contact=target.contact).close()
    with pytest.raises(d2.InvalidArgumentError, match="one"):
        sm.create_job_session("one", contact=target.contact)
    with pytest.raises(d2.InvalidArgumentError, match="nope"):
        sm.open_job_session("nope")
    assert "one" in sm.job_session_names
    sm.destroy_job_session("one")
    assert "one" not in sm.job_session_names


def test_supports_answers_for_the_tracker(sm: d2.SessionManager, js: d2.JobSession,
                                          target: Target) -> None:
    tracker = js._tracker  # opened: a tracker may learn its capabilities from its engine
    assert sm.supports(d2.Capability.JOB_ARRAYS, contact=target.contact)
    assert sm.supports(d2.Capability.ADVANCE_RESERVATION, contact=target.contact) == (
        d2.Capability.ADVANCE_RESERVATION in tracker.capabilities)
    assert sm.supports(d2.Capability.JT_DEADLINE, contact=target.contact)  # every tracker


#: A value for every JobTemplate field a tracker may refuse (the table in the README says which).
_SAMPLES: dict[str, Any] = {
    "rerunnable": True, "job_category": "unknown-category", "email": ["a@example.org"],
    "email_on_started": True, "email_on_terminated": True, "reservation_id": "r1",
    "queue_name": "q1", "min_slots": 1, "max_slots": 1, "priority": 0, "min_phys_memory": 1024,
    "machine_os": d2.OS.LINUX, "machine_arch": d2.CPU.X64, "stage_in_files": {"/tmp": "/mnt"},
    "stage_out_files": {"/tmp/a": "/tmp/b"}, "resource_limits": {"cpu_time": "60"},
    "accounting_id": "a1",
}


def test_fields_the_tracker_does_not_declare_are_refused_before_any_id(
        js: d2.JobSession, target: Target) -> None:
    """The field table is the trackers' declarations: a field a tracker does not declare is
    refused by name (UnsupportedAttributeError) before any id is taken, never ignored."""
    from .._fields import honoured

    refused = [n for n in sorted(_SAMPLES) if not honoured(js._tracker, n)]
    before = _next_id(js)
    for name in refused:
        with pytest.raises(d2.UnsupportedAttributeError, match=name):
            js.run_job(dataclasses.replace(target.template("/bin/true"), **{name: _SAMPLES[name]}))
    assert _next_id(js) == before and js.get_jobs() == []


# -- bad input -------------------------------------------------------------------------------------
def test_empty_template_is_refused_and_nothing_is_created(js: d2.JobSession, target: Target) -> None:
    with pytest.raises(d2.InvalidArgumentError):
        js.run_job(d2.JobTemplate(job_category=target.job_category))
    assert js.get_jobs() == []


def test_missing_executable_is_refused_and_nothing_is_created(js: d2.JobSession, target: Target) -> None:
    with pytest.raises(d2.InvalidArgumentError, match="no-such-program"):
        js.run_job(target.template("/bin/no-such-program"))
    assert js.get_jobs() == []


def test_bad_array_ranges_are_refused(js: d2.JobSession, target: Target) -> None:
    t = target.template("/bin/true")
    with pytest.raises(d2.InvalidArgumentError, match="5"):
        js.run_bulk_jobs(t, begin=5, end=1)
    with pytest.raises(d2.InvalidArgumentError, match="0"):
        js.run_bulk_jobs(t, begin=1, end=3, step=0)
    assert js.get_jobs() == []


def test_unwritable_output_path_is_refused_and_nothing_is_created(js: d2.JobSession, target: Target) -> None:
    with pytest.raises(d2.InvalidArgumentError, match="/no/such/dir/out"):
        js.run_job(target.template("/bin/true", output_path="/no/such/dir/out"))
    assert js.get_jobs() == []


def _next_id(js: d2.JobSession) -> int:
    return js._store.last_job_id()


@pytest.mark.parametrize("field", [
    {"args": ["a\0b"]}, {"job_environment": {"K": "v\0"}}, {"remote_command": 5},
    {"candidate_machines": "localhost"}, {"stage_in_files": {"/tmp/a": 5}},
])
def test_bad_fields_are_named_errors_before_any_id_or_engine_object(
        js: d2.JobSession, target: Target, field: dict[str, object]) -> None:
    """NUL bytes, wrong types, a string where DRMAA2 has a list: InvalidArgumentError naming the
    field, before an id is taken or the engine sees anything."""
    before = (_next_id(js), sorted(js._tracker.list_jobs()))
    t = target.template("/bin/true")
    for k, v in field.items():
        setattr(t, k, v)
    with pytest.raises(d2.InvalidArgumentError, match=next(iter(field))):
        js.run_job(t)
    with pytest.raises(d2.InvalidArgumentError, match="max_parallel"):
        js.run_bulk_jobs(target.template("/bin/true"), 1, 2, max_parallel=0)
    assert (_next_id(js), sorted(js._tracker.list_jobs())) == before
    assert js.get_jobs() == []


def test_the_engine_finds_a_job_by_its_pydrmaa2_id(js: d2.JobSession, target: Target) -> None:
    """find_job: how a submission cut short by a crash is reconciled (every tracker)."""
    job = js.run_job(target.template("/bin/sleep", "30"))
    job.wait_started(target.slow)
    row = js._store.job(job.id)
    assert row is not None
    tid = row.tracker_id
    assert js._tracker.find_job(job.id) == tid
    assert js._tracker.find_job(str(10**9)) is None
    job.terminate()


def test_the_engines_own_id_is_the_native_id_extension(js: d2.JobSession, target: Target) -> None:
    """One key on every tracker for the engine's own id (the pid, the container, the Slurm job)."""
    job = js.run_job(target.template("/bin/true"))
    job.wait_terminated(target.slow)
    native = job.info.extensions.get("native_id")
    assert native, job.info.extensions
    if target.name == "process":
        assert native == job.info.extensions["pid"]
    else:
        row = js._store.job(job.id)
        assert row is not None and native == row.tracker_id


def test_a_wait_with_a_bad_timeout_or_non_jobs_is_refused(js: d2.JobSession, target: Target) -> None:
    job = js.run_job(target.template("/bin/true"))
    with pytest.raises(d2.InvalidArgumentError, match="timeout"):
        job.wait_terminated(timeout="5")  # type: ignore[arg-type]
    with pytest.raises(d2.InvalidArgumentError):
        js.wait_all_started([1])  # type: ignore[list-item]
    job.wait_terminated(target.slow)


# -- persistence and notifications -----------------------------------------------------------------
SUBMITTER = textwrap.dedent("""
    import sys, pydrmaa2 as d2
    sm = d2.SessionManager(home=sys.argv[1])
    js = sm.open_job_session("conformance")
    cat = sys.argv[3] or None
    job = js.run_job(d2.JobTemplate(remote_command="/bin/sh", job_category=cat,
        args=["-c", "sleep 1; echo survived; exit 7"], output_path=sys.argv[2]))
    print(job.id, flush=True)
    sys.stdin.read()  # block until killed
""")


def test_a_job_survives_the_kill_of_its_submitter(
        js: d2.JobSession, target: Target, home: Path, tmp_path: Path) -> None:
    out = tmp_path / "survivor.txt"
    proc = subprocess.Popen(
        [sys.executable, "-c", SUBMITTER, str(home), str(out), target.job_category or ""],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=dict(os.environ))
    assert proc.stdout is not None  # stdout=PIPE
    job_id = proc.stdout.readline().strip()
    assert job_id, "the submitter printed no job id"
    proc.kill()  # SIGKILL: no clean-up runs in the submitter
    proc.wait()
    again = d2.SessionManager(home=home).open_job_session("conformance")
    (job,) = [j for j in again.get_jobs() if j.id == job_id]
    info = job.wait_terminated(target.slow)
    assert info.exit_status == 7
    assert info.state is d2.JobState.FAILED
    assert out.read_text() == "survived\n"
    again.close()


def test_throttled_array_finishes_after_its_submitter_exits(
        js: d2.JobSession, target: Target, home: Path) -> None:
    code = textwrap.dedent("""
        import sys, pydrmaa2 as d2
        js = d2.SessionManager(home=sys.argv[1]).open_job_session("conformance")
        arr = js.run_bulk_jobs(d2.JobTemplate(remote_command="/bin/sleep", args=["0.3"],
                               job_category=sys.argv[2] or None), 1, 5, 1, 1)
        print(arr.id)
    """)
    r = subprocess.run([sys.executable, "-c", code, str(home), target.job_category or ""],
                       capture_output=True, text=True, check=True)
    arr = js.get_job_array(r.stdout.strip())
    js.wait_all_terminated(arr.jobs, target.slow * 5)
    # (a task that did not end DONE says why: its state, exit status, annotation and times)
    assert [j.state for j in arr.jobs] == [d2.JobState.DONE] * 5, [
        (j.id, j.info.state, j.info.sub_state, j.info.exit_status, j.info.annotation,
         j.info.dispatch_time, j.info.finish_time) for j in arr.jobs]


def test_notifications_report_new_states(sm: d2.SessionManager, js: d2.JobSession, target: Target) -> None:
    seen: list[d2.Notification] = []
    done = threading.Event()

    def callback(n: d2.Notification) -> None:
        seen.append(n)
        if n.state.is_terminal:
            done.set()

    sm.register_event_notification(callback)
    job = js.run_job(target.sh("sleep 0.3"))
    assert done.wait(target.slow + 5), seen
    states = [n.state for n in seen if n.job_id == job.id]
    assert states[-1] is d2.JobState.DONE
    assert all(n.event is d2.Event.NEW_STATE and n.session_name == "conformance" for n in seen)


def test_a_job_that_ends_at_once_is_still_notified(
        sm: d2.SessionManager, js: d2.JobSession, target: Target) -> None:
    """The end of a job that a waiter records before the notifier first looks at its session
    (opened after the callback was registered) is news too."""
    ended = threading.Event()
    job_ids: list[str] = []

    def callback(n: d2.Notification) -> None:
        if n.job_id in job_ids and n.state.is_terminal:
            ended.set()

    sm.register_event_notification(callback)
    with sm.create_job_session("conformance-late", contact=target.contact) as session:
        job = session.run_job(target.template("/bin/true"))
        job_ids.append(job.id)
        job.wait_terminated(target.slow)
        assert ended.wait(target.slow), "no notification of the job's end"
        job.reap()


def test_monitoring_finds_a_session_job_by_its_id(
        sm: d2.SessionManager, js: d2.JobSession, target: Target) -> None:
    """get_all_jobs(JobInfo(id=job.id)) is that job (uge-drmaa2's own suite checks this), and
    the engine's id of every listed job is in extensions['native_id']."""
    job = js.run_job(target.template("/bin/sleep", "30"))
    job.wait_started(target.slow)
    with sm.open_monitoring_session(contact=target.contact) as ms:
        found = ms.get_all_jobs(d2.JobInfo(id=job.id))
        assert [i.id for i in found] == [job.id]
        assert found[0].extensions["native_id"] == job.info.extensions["native_id"]
        listed = ms.get_all_jobs()
        assert job.id in [i.id for i in listed]
        assert all(i.extensions.get("native_id") for i in listed)
    job.terminate()
    job.wait_terminated(target.slow)
    with sm.open_monitoring_session(contact=target.contact) as ms:  # ended: as its session sees it
        assert [i.state for i in ms.get_all_jobs(d2.JobInfo(id=job.id))] == [d2.JobState.FAILED]


def test_submission_machine_is_the_submitting_host(js: d2.JobSession, target: Target) -> None:
    job = js.run_job(target.template("/bin/true"))
    assert job.wait_terminated(target.slow).submission_machine == socket.gethostname()


# -- start_time and deadline_time (native on Slurm, kept by the agent elsewhere) ---------------------
def test_a_job_waits_queued_for_its_start_time(js: d2.JobSession, target: Target) -> None:
    start = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=4)
    job = js.run_job(target.template("/bin/true", start_time=start))
    assert job.state is d2.JobState.QUEUED
    time.sleep(1)
    assert job.state is d2.JobState.QUEUED
    info = job.wait_terminated(target.slow + 4)
    assert info.state is d2.JobState.DONE
    assert info.dispatch_time is not None
    assert info.dispatch_time >= start - dt.timedelta(seconds=1)  # Slurm counts whole seconds


def test_a_job_is_terminated_failed_at_its_deadline_time(js: d2.JobSession, target: Target) -> None:
    deadline = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=4)
    job = js.run_job(target.template("/bin/sleep", "120", deadline_time=deadline))
    job.wait_started(target.slow)
    info = job.wait_terminated(target.slow + 10)
    assert info.state is d2.JobState.FAILED
    assert "deadline" in f"{info.sub_state} {info.annotation}".lower(), info
    assert info.finish_time is None or info.finish_time >= deadline - dt.timedelta(seconds=1)


def test_a_deadline_time_already_passed_is_refused_before_any_id(js: d2.JobSession, target: Target) -> None:
    before = _next_id(js)
    past = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=1)
    with pytest.raises(d2.InvalidArgumentError, match="deadline_time"):
        js.run_job(target.template("/bin/true", deadline_time=past))
    assert _next_id(js) == before and js.get_jobs() == []


# -- one meaning on every tracker ----------------------------------------------------------------
def test_stage_out_files_bring_what_the_job_wrote_to_the_host(
        js: d2.JobSession, target: Target, tmp_path: Path) -> None:
    """stage_out_files {host path: path the job wrote}: a file and a directory are on the host
    once the job is seen ended; a path the job did not write fails the job, named in its
    annotation. A tracker that does not declare the field refuses it by name."""
    inside, dest = tmp_path / "job", tmp_path / "staged"
    template = target.sh(
        f"mkdir -p {inside}/dir && echo result > {inside}/result.txt && "
        f"echo deep > {inside}/dir/deep.txt && ln -s deep.txt {inside}/dir/link",
        stage_out_files={str(dest / "result.txt"): f"{inside}/result.txt",
                         str(dest / "dir"): f"{inside}/dir"})
    if "stage_out_files" not in js._tracker.supported_fields:
        with pytest.raises(d2.UnsupportedAttributeError, match="stage_out_files"):
            js.run_job(template)
        return
    info = js.run_job(template).wait_terminated(target.slow)
    assert info.state is d2.JobState.DONE, info.annotation
    assert (dest / "result.txt").read_text() == "result\n"
    assert (dest / "dir" / "deep.txt").read_text() == "deep\n"
    assert os.readlink(dest / "dir" / "link") == "deep.txt"  # links stay links (docker cp)
    missing = js.run_job(target.sh(
        "true", stage_out_files={str(dest / "none.txt"): f"{inside}/never-written.txt"}))
    info = missing.wait_terminated(target.slow)
    assert info.state is d2.JobState.FAILED
    assert "never-written.txt" in (info.annotation or "")
    assert not (dest / "none.txt").exists()


def test_relative_paths_mean_the_submitters_directory_for_tasks_started_later(
        js: d2.JobSession, target: Target, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Tasks the agent starts (a throttled array) and a held job released from another
    directory see the submitter's directory, not the agent's or the releaser's."""
    monkeypatch.chdir(tmp_path)
    arr = js.run_bulk_jobs(target.sh('echo "$TASK_ID"', output_path="out.$DRMAA2_INDEX$"), 1, 3,
                           max_parallel=1)
    held = js.run_job(target.sh("echo held", output_path="held.txt", submit_as_hold=True))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    held.release()
    js.wait_all_terminated([*arr.jobs, held], target.slow * 3)
    if js._tracker.keeps_output:
        # Paths are the engine's (remote: relative to the server's directory): the files are
        # there, and read through the engine.
        assert [list(j.output()) for j in arr.jobs] == [["1\n"], ["2\n"], ["3\n"]]
        assert list(held.output()) == ["held\n"]
        return
    # (a task that did not write its file says why: its state and annotation)
    assert all((tmp_path / f"out.{i}").exists() for i in (1, 2, 3)), \
        [(j.id, j.state, j.info.exit_status, j.info.annotation) for j in arr.jobs]
    assert [(tmp_path / f"out.{i}").read_text().strip() for i in (1, 2, 3)] == ["1", "2", "3"]
    assert (tmp_path / "held.txt").read_text() == "held\n"


def test_a_cpu_time_limit_reaches_the_job(js: d2.JobSession, target: Target, tmp_path: Path) -> None:
    """resource_limits['cpu_time'] (seconds) is the job's RLIMIT_CPU on every tracker."""
    out = tmp_path / "limit"
    job = js.run_job(target.sh("ulimit -t", output_path=str(out),
                               resource_limits={"cpu_time": "77"}))
    assert job.wait_terminated(target.slow).state is d2.JobState.DONE
    assert out.read_text().strip() == "77"


def test_monitoring_session_lists_machines(sm: d2.SessionManager, target: Target) -> None:
    with sm.open_monitoring_session(contact=target.contact) as ms:
        machines = ms.get_all_machines()
        assert machines and machines[0].name
        assert machines[0].phys_memory and machines[0].phys_memory > 0


__all__ = [name for name in dir() if name.startswith("test_")] + ["home", "sm", "js"]
