"""The fault suite of the process tracker, the agent and the store: real processes killed by pid,
real signals, a real full filesystem, a real corrupted file. No fakes.

Each test asserts the promise: every accepted job ends with its true exit status, or FAILED with
an annotation naming why; no wait hangs past its timeout; the agent survives what one job, one
client or one failed write does.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import psutil
import pytest

import pydrmaa2 as d2
from pydrmaa2._store import Store
from pydrmaa2.agent import AgentClient
from pydrmaa2.trackers.base import signal_name

from .conftest import require, sh

pytestmark = pytest.mark.faults

#: Signals whose default action does not end a process: ignored, or stopping it.
NOT_FATAL = {signal.SIGCHLD, signal.SIGCONT, signal.SIGURG, signal.SIGWINCH,
             signal.SIGSTOP, signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU}


def agent_pid(home: Path) -> int:
    return AgentClient.for_home(home).request("ping")["pid"]



def test_every_signal_1_to_64_gets_its_name_and_the_agent_lives_on(sm, tmp_path):
    """Each of signals 1-64 delivered to its own job; a job beside them keeps its exit status."""
    js = sm.create_job_session("signals")
    bystander = js.run_job(sh("sleep 4; exit 7"))
    jobs = {n: js.run_job(d2.JobTemplate(remote_command="/bin/sleep", args=["60"]))
            for n in range(1, 65)}
    js.wait_all_started(list(jobs.values()), 30)
    before = agent_pid(sm.home)
    for n, job in jobs.items():
        os.killpg(int(job.info.extensions["pid"]), n)
    fatal = {n: j for n, j in jobs.items() if n not in NOT_FATAL}
    js.wait_all_terminated(list(fatal.values()), 30)
    for n, job in fatal.items():
        info = job.info
        assert job.state is d2.JobState.FAILED, n
        assert (info.exit_status, info.terminating_signal) == (128 + n, signal_name(n)), n
    # The others are still there to be controlled: stopped ones too.
    rest = [j for n, j in jobs.items() if n in NOT_FATAL]
    for j in rest:
        j.terminate()
    js.wait_all_terminated(rest, 30)
    assert {j.info.terminating_signal for j in rest} == {"SIGKILL"}
    bystander.wait_terminated(30)
    assert bystander.info.exit_status == 7 and bystander.info.annotation is None
    assert agent_pid(sm.home) == before
    assert signal_name(35) == "SIGRTMIN+1" and signal_name(64) == "SIGRTMAX"


def test_a_spawn_the_agent_cannot_perform_ends_the_job_failed_with_the_cause(sm, tmp_path):
    """Requests the agent cannot carry out (a NUL byte, a None stage-in path, a missing
    executable) each end their job FAILED with an annotation; none is dropped."""
    js = sm.create_job_session("bad-spawns")
    tracker = js._tracker
    client = AgentClient.for_home(sm.home)
    base = {"env": dict(os.environ), "cwd": str(tmp_path), "stdin": None, "stdout": None,
            "stderr": None, "join": False, "stage_out": {}, "job_name": None}
    bad = {
        "nul-arg": {"executable": "/bin/echo", "argv": ["/bin/echo", "a\0b"], "stage_in": {}},
        "nul-env": {"executable": "/bin/true", "argv": ["/bin/true"], "stage_in": {},
                    "env": {"A": "x\0y"}},
        "none-stage-in": {"executable": "/bin/true", "argv": ["/bin/true"],
                          "stage_in": {str(tmp_path / "x"): None}},
        "no-such-program": {"executable": "/no/such", "argv": ["/no/such"], "stage_in": {}},
    }
    for tid, fields in bad.items():
        client.send("proc.spawn", tid=tid, **{**base, **fields})
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(
            not tracker.state(t)[0].is_terminal for t in bad):
        time.sleep(0.05)
    for tid in bad:
        info = tracker.info(tid)
        assert info.state is d2.JobState.FAILED, tid
        assert info.annotation, tid
        assert ("cannot start the job" in info.annotation
                or "stage-in" in info.annotation), (tid, info.annotation)
    ok = js.run_job(sh("exit 0"))
    ok.wait_terminated(10)
    assert ok.state is d2.JobState.DONE


def test_killing_the_agent_mid_throttled_array_loses_no_task_and_runs_none_twice(sm, tmp_path):
    """kill -9 of the agent while it drives a throttled array: the next agent resumes it; each
    task ends with its true exit status, or FAILED saying the agent ended (it ran then)."""
    js = sm.create_job_session("agent-killed")
    marker = tmp_path / "ran"
    arr = js.run_bulk_jobs(sh(f'echo "$TASK_ID" >> {marker}; sleep 0.4; exit $((TASK_ID % 4))'),
                           1, 12, max_parallel=3)
    time.sleep(1.0)
    os.kill(agent_pid(sm.home), signal.SIGKILL)
    t0 = time.monotonic()
    js.wait_all_terminated(arr.jobs, 90)
    assert time.monotonic() - t0 < 90
    runs = marker.read_text().split()
    for job in arr.jobs:
        task = int(job.info.extensions["task_id"])
        info = job.info
        assert runs.count(str(task)) <= 1, f"task {task} ran {runs.count(str(task))} times"
        if info.annotation and "agent" in info.annotation:
            assert job.state is d2.JobState.FAILED
            continue
        assert runs.count(str(task)) == 1, task
        assert info.exit_status == task % 4, (task, info)
        assert job.state is (d2.JobState.DONE if task % 4 == 0 else d2.JobState.FAILED)
    # Most tasks ran under the new agent with their true status.
    assert sum(1 for j in arr.jobs if j.info.annotation is None) >= 8


def _python(code: str, home: Path) -> subprocess.Popen:
    env = {**os.environ, "PYDRMAA2_HOME": str(home)}
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], env=env,
                            stdout=subprocess.PIPE, text=True)


def test_killing_the_submitter_mid_array_loses_no_task(sm, tmp_path):
    """kill -9 of the program that submitted a throttled array: every task still runs once and
    ends with its true exit status; another program waits for them."""
    sm.create_job_session("submitter-killed").close()
    marker = tmp_path / "ran"
    p = _python(f"""
        import time, pydrmaa2 as d2
        js = d2.SessionManager().open_job_session("submitter-killed")
        t = d2.JobTemplate(remote_command="/bin/sh",
                           args=["-c", 'echo "$TASK_ID" >> {marker}; sleep 0.2; exit $((TASK_ID % 3))'])
        arr = js.run_bulk_jobs(t, 1, 10, max_parallel=2)
        print(arr.id, flush=True)
        time.sleep(60)
    """, sm.home)
    array_id = p.stdout.readline().strip()
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    js = sm.open_job_session("submitter-killed")
    arr = js.get_job_array(array_id)
    js.wait_all_terminated(arr.jobs, 60)
    runs = marker.read_text().split()
    assert sorted(runs, key=int) == [str(i) for i in range(1, 11)]
    for job in arr.jobs:
        task = int(job.info.extensions["task_id"])
        assert job.info.exit_status == task % 3


def test_tasks_left_starting_by_a_dead_claimer_are_recovered(sm, tmp_path):
    """A program claims tasks of a throttled array (they go to 'starting') and dies before it
    submits them: the array does not stall; each task runs exactly once."""
    js = sm.create_job_session("claimer-died")
    marker = tmp_path / "ran"
    # The array is written held, so nobody starts it; a second program claims two tasks and dies.
    arr = js.run_bulk_jobs(sh(f'echo "$TASK_ID" >> {marker}; exit 0', submit_as_hold=True),
                           1, 6, max_parallel=2)
    store = Store(sm.home / "store.sqlite")
    with store.db.transaction() as db:
        db.execute("UPDATE jobs SET phase='pending', state='queued' WHERE array_id=?", (arr.id,))
    p = _python(f"""
        from pydrmaa2._store import Store
        s = Store(__import__("pathlib").Path({str(sm.home / "store.sqlite")!r}))
        print(len(s.claim_pending({arr.id!r}, 2)), flush=True)
    """, sm.home)
    assert p.stdout.readline().strip() == "2"
    p.wait()
    starting = store.db.query("SELECT COUNT(*) FROM jobs WHERE array_id=? AND phase='starting'",
                           (arr.id,))[0][0]
    assert starting == 2  # the claimer died: without recovery the array is stuck at its limit
    js2 = sm.open_job_session("claimer-died")  # recovers, and has the agent drive the array
    js2.wait_all_terminated(js2.get_job_array(arr.id).jobs, 60)
    assert sorted(marker.read_text().split(), key=int) == [str(i) for i in range(1, 7)]
    assert {j.state for j in js2.get_job_array(arr.id).jobs} == {d2.JobState.DONE}


@pytest.fixture
def small_fs(tmp_path):
    """A 6 MB tmpfs, unmounted afterwards (root only, as CI is)."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m,mode=0700", "tmpfs", str(mnt)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.fail(f"cannot mount a tmpfs for the full-disk test: {r.stderr.strip()}")
    try:
        yield mnt
    finally:
        home = mnt / "home"
        if (home / "agent.sock").exists():
            try:
                os.kill(agent_pid(home), signal.SIGKILL)
            except (d2.Drmaa2Error, OSError):
                pass
            AgentClient.for_home(home).close()
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def _fill(path: Path) -> None:
    """Write to ``path`` until its filesystem has no room left."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError:
        pass
    finally:
        os.close(fd)


def test_a_store_on_a_full_filesystem_gives_named_errors_and_loses_no_exit_status(small_fs):
    """The filesystem fills while a job runs: submissions fail with OutOfResourceError naming
    the store; the agent keeps the job's end and writes it once there is room again."""
    home = small_fs / "home"
    sm = d2.SessionManager(home=home)
    js = sm.create_job_session("full")
    job = js.run_job(sh("sleep 1.5; exit 5"))
    job.wait_started(10)
    before = agent_pid(home)
    filler = small_fs / "filler"
    _fill(filler)
    with pytest.raises(d2.OutOfResourceError) as e:
        for _ in range(50):  # the WAL may have room for a few rows still
            js.run_job(sh("exit 0"))
    assert str(home) in str(e.value) and "full" in str(e.value)
    time.sleep(2.5)  # the job ends meanwhile; its record cannot be written
    assert agent_pid(home) == before
    filler.unlink()
    job.wait_terminated(30)
    assert job.state is d2.JobState.FAILED and job.info.exit_status == 5
    assert agent_pid(home) == before
    sm._notifier_stop.set()


def test_a_corrupted_store_file_is_a_named_error(tmp_path):
    """A store file that is not SQLite: SessionManagementError naming the file, with the cause."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "store.sqlite").write_bytes(b"this is not a database" * 100)
    with pytest.raises(d2.SessionManagementError) as e:
        d2.SessionManager(home=home).job_session_names  # noqa: B018 - the read is the test
    assert str(home / "store.sqlite") in str(e.value)
    assert e.value.__cause__ is not None


def test_a_wait_rides_out_an_agent_killed_and_restarted(sm):
    """kill -9 of the agent during a wait with time left: the wait neither raises nor hangs."""
    js = sm.create_job_session("wait-through")
    job = js.run_job(sh("sleep 2; exit 0"))
    job.wait_started(10)
    err: list[BaseException] = []

    def waiter() -> None:
        try:
            job.wait_terminated(30)
        except BaseException as e:  # noqa: BLE001 - reported below
            err.append(e)

    t = threading.Thread(target=waiter)
    t.start()
    time.sleep(0.5)
    os.kill(agent_pid(sm.home), signal.SIGKILL)
    t.join(35)
    assert not t.is_alive() and not err
    assert job.state.is_terminal
    assert job.state is d2.JobState.FAILED and "agent" in job.info.annotation


@pytest.mark.parametrize("name", ["process", "docker", "podman", "containerd", "slurm"])
def test_a_job_the_engine_took_just_before_its_submitter_died_is_withdrawn(sm, name):
    """The submitter is killed between the engine's accepting a job and the job's row being
    written: the next open of the session finds the job by its pydrmaa2 id (the agent's record,
    the container's labels, the batch script's key) and withdraws it, so nothing runs that no
    session knows."""
    target = require(name)
    sm.create_job_session("died-before-row", target.contact).close()
    p = _python(f"""
        import os, pydrmaa2 as d2
        from pydrmaa2._store import Store
        js = d2.SessionManager().open_job_session("died-before-row")
        def die(self, session, job_id, *rest, **kw):  # the fault: death right after the engine call
            print(job_id, flush=True)
            os.kill(os.getpid(), 9)
        Store.add_submitted_job = die
        js.run_job(d2.JobTemplate(remote_command="/bin/sleep", args=["300"],
                                  job_category={target.job_category!r}))
    """, sm.home)
    job_id = p.stdout.readline().strip()
    p.wait()
    assert p.returncode == -signal.SIGKILL and job_id
    store = Store(sm.home / "store.sqlite")
    assert store.job(job_id) is None
    js = sm.open_job_session("died-before-row")
    tid = js._tracker.find_job(job_id)
    if name == "slurm":  # sacct keeps the cancelled job's record
        assert tid is not None and js._tracker.state(tid)[0].is_terminal
    else:
        assert tid is None  # terminated and deleted in the engine
    assert store.db.query("SELECT COUNT(*) FROM id_claims")[0][0] == 0
    if name == "process":
        leftover = [q for q in psutil.process_iter(["cmdline"])
                    if q.info["cmdline"] == ["/bin/sleep", "300"]
                    and q.environ().get("JOB_ID") == job_id]
        assert not leftover
    js.close()
