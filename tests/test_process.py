"""What only the process tracker does: process groups, rusage, staging, the agent, monitoring."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

import pydrmaa2 as d2
from pydrmaa2._agent import AgentClient


@pytest.fixture
def sm(tmp_path):
    home = tmp_path / "home"
    manager = d2.SessionManager(home=home)
    yield manager
    AgentClient.for_home(home).close()


@pytest.fixture
def js(sm):
    with sm.create_job_session("p") as session:
        yield session
        for j in session.get_jobs():
            if not j.state.is_terminal:
                with contextlib.suppress(d2.InvalidStateError):  # it may end meanwhile
                    j.terminate()


def sh(script: str, **kw) -> d2.JobTemplate:
    return d2.JobTemplate(remote_command="/bin/sh", args=["-c", script], **kw)


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_terminate_kills_grandchildren(js, tmp_path):
    pidfile = tmp_path / "grandchild.pid"
    job = js.run_job(sh(f"sleep 60 & echo $! > {pidfile}; wait"))
    job.wait_started(5)
    deadline = time.monotonic() + 5
    while not pidfile.exists() or not pidfile.read_text().strip():
        assert time.monotonic() < deadline
        time.sleep(0.02)
    grandchild = int(pidfile.read_text())
    job.terminate()
    info = job.wait_terminated(5)
    assert info.terminating_signal == "SIGKILL"
    assert info.exit_status == 128 + signal.SIGKILL
    deadline = time.monotonic() + 5
    while _alive(grandchild):
        assert time.monotonic() < deadline, "the grandchild survived terminate()"
        time.sleep(0.02)


def test_suspend_stops_a_job_that_ignores_sigtstp(js, tmp_path):
    counter = tmp_path / "count"
    job = js.run_job(sh(f"trap '' TSTP; i=0; while true; do i=$((i+1)); echo $i > {counter}; "
                        "sleep 0.05; done"))
    job.wait_started(5)
    time.sleep(0.3)
    job.suspend()
    assert job.state is d2.JobState.SUSPENDED
    pid = int(job.info.extensions["pid"])
    deadline = time.monotonic() + 2  # SIGSTOP takes effect when the kernel next schedules it
    while psutil.Process(pid).status() != psutil.STATUS_STOPPED:
        assert time.monotonic() < deadline, "the job's process is not stopped"
        time.sleep(0.01)
    time.sleep(0.2)
    before = counter.read_text()
    time.sleep(0.4)
    assert counter.read_text() == before, "the job kept running while suspended"
    job.resume()
    assert job.state is d2.JobState.RUNNING
    time.sleep(0.4)
    assert counter.read_text() != before
    job.terminate()


def test_finished_job_has_rusage_extensions(js):
    job = js.run_job(sh("i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done"))
    info = job.wait_terminated(30)
    for key in ("max_rss", "swaps", "in_blocks", "out_blocks", "user_time_ms", "system_time_ms"):
        assert key in info.extensions, key
    assert int(info.extensions["max_rss"]) > 0
    assert info.cpu_time is not None and info.cpu_time.total_seconds() > 0
    assert info.wallclock_time is not None
    assert info.job_owner and info.submission_machine and info.allocated_machines


def test_input_path_is_the_jobs_stdin(js, tmp_path):
    src, out = tmp_path / "in.txt", tmp_path / "out.txt"
    src.write_text("line one\nline two\n")
    job = js.run_job(d2.JobTemplate(remote_command="/bin/cat", input_path=str(src),
                                    output_path=str(out)))
    job.wait_terminated(5)
    assert out.read_text() == "line one\nline two\n"


def test_unreadable_input_path_is_refused(js, tmp_path):
    with pytest.raises(d2.InvalidArgumentError, match="missing.txt"):
        js.run_job(d2.JobTemplate(remote_command="/bin/cat", input_path=str(tmp_path / "missing.txt")))
    assert js.get_jobs() == []


def test_stage_in_and_stage_out_copy_files(js, tmp_path):
    (tmp_path / "input.dat").write_text("payload")
    work = tmp_path / "work"
    work.mkdir()
    job = js.run_job(sh("tr a-z A-Z < staged.dat > result.dat", working_directory=str(work),
                        stage_in_files={str(tmp_path / "input.dat"): "staged.dat"},
                        stage_out_files={str(tmp_path / "result.out"): "result.dat"}))
    assert job.wait_terminated(5).state is d2.JobState.DONE
    assert (tmp_path / "result.out").read_text() == "PAYLOAD"


def test_failed_stage_in_is_a_failed_job_with_an_annotation(js, tmp_path):
    job = js.run_job(sh("true", stage_in_files={str(tmp_path / "nope"): str(tmp_path / "x")}))
    info = job.wait_terminated(5)
    assert info.state is d2.JobState.FAILED
    assert "stage-in" in info.annotation and "nope" in info.annotation


def test_unsupported_fields_are_refused_by_name(js):
    with pytest.raises(d2.UnsupportedAttributeError, match="queue_name"):
        js.run_job(d2.JobTemplate(remote_command="/bin/true", queue_name="q"))
    with pytest.raises(d2.UnsupportedAttributeError, match="elsewhere"):
        js.run_job(d2.JobTemplate(remote_command="/bin/true", candidate_machines=["elsewhere"]))
    with pytest.raises(d2.UnsupportedAttributeError, match="gpus"):
        js.run_job(d2.JobTemplate(remote_command="/bin/true", extensions={"gpus": "1"}))
    assert js.get_jobs() == []


def test_command_found_in_path_and_missing_one_named(js):
    job = js.run_job(d2.JobTemplate(remote_command="true"))
    assert job.wait_terminated(5).state is d2.JobState.DONE
    with pytest.raises(d2.InvalidArgumentError, match="not-a-command"):
        js.run_job(d2.JobTemplate(remote_command="not-a-command"))


def test_jobs_survive_the_agent_being_killed(sm, js, tmp_path):
    job = js.run_job(d2.JobTemplate(remote_command="/bin/sleep", args=["0.5"]))
    job.wait_started(5)
    agent_pid = AgentClient.for_home(sm.home).request("ping")["pid"]
    os.kill(agent_pid, signal.SIGKILL)
    AgentClient.for_home(sm.home).close()
    # A new agent adopts the orphan: it sees it end but cannot know how.
    info = job.wait_terminated(10)
    assert info.state is d2.JobState.FAILED
    assert "exit status is unknown" in info.annotation


def test_threads_share_a_session(js):
    import concurrent.futures as cf

    jt = d2.JobTemplate(remote_command="/bin/true")
    with cf.ThreadPoolExecutor(8) as pool:
        jobs = list(pool.map(lambda _: js.run_job(jt), range(80)))
    assert len({j.id for j in jobs}) == 80
    js.wait_all_terminated(jobs, 30)
    assert {j.state for j in jobs} == {d2.JobState.DONE}


def test_processes_share_a_session(sm, js):
    code = textwrap.dedent("""
        import sys, pydrmaa2 as d2
        js = d2.SessionManager(home=sys.argv[1]).open_job_session("p")
        jobs = [js.run_job(d2.JobTemplate(remote_command="/bin/true")) for _ in range(30)]
        js.wait_all_terminated(jobs, 30)
        print(" ".join(j.id for j in jobs))
    """)
    procs = [subprocess.Popen([sys.executable, "-c", code, str(sm.home)], stdout=subprocess.PIPE,
                              text=True) for _ in range(4)]
    ids = [p.communicate(timeout=60)[0].split() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    flat = [i for chunk in ids for i in chunk]
    assert len(flat) == len(set(flat)) == 120
    assert len(js.get_jobs(d2.JobInfo(state=d2.JobState.DONE))) == 120


def test_monitoring_session_lists_os_processes(sm):
    with sm.open_monitoring_session("process") as ms:
        jobs = ms.get_all_jobs()
        me = [j for j in jobs if j.id == str(os.getpid())]
        assert me and me[0].state is d2.JobState.RUNNING
        ext = me[0].extensions
        for key in ("process_name", "command_line", "cpu_usage", "cpu_affinity",
                    "memory_usage_rss", "memory_usage_vms"):
            assert key in ext
        (machine,) = ms.get_all_machines()
        assert machine.machine_os is d2.OS.LINUX
        assert machine.sockets * machine.cores_per_socket * machine.threads_per_core == os.cpu_count()
        assert ms.get_all_machines(names=["no-such-host"]) == []


def test_reservations_are_unsupported_on_processes(sm):
    with pytest.raises(d2.UnsupportedOperationError, match="process"):
        sm.create_reservation_session("r", contact="process")
    assert sm.reservation_session_names == []


def test_array_placeholder_in_working_directory(js, tmp_path):
    for i in (1, 2):
        (tmp_path / f"d{i}").mkdir()
    arr = js.run_bulk_jobs(
        sh("echo $TASK_ID > here", working_directory=str(tmp_path / "d$DRMAA2_INDEX$")), 1, 2)
    js.wait_all_terminated(arr.jobs, 10)
    assert (tmp_path / "d1" / "here").read_text() == "1\n"
    assert (tmp_path / "d2" / "here").read_text() == "2\n"


def test_agent_socket_path_is_short_even_for_deep_homes(tmp_path):
    from pydrmaa2._agent import socket_path

    deep = tmp_path / ("x" * 120)
    assert len(os.fsencode(socket_path(deep))) < 108
    assert socket_path(Path("/tmp/h")) == Path("/tmp/h/agent.sock")


def test_submission_time_is_fixed_once_at_submission(sm):
    """Read while the job runs and after it ended, submission_time is the same instant: the
    one the store recorded when the job was submitted."""
    js = sm.create_job_session("subtime")
    before = time.time()
    job = js.run_job(d2.JobTemplate(remote_command="/bin/sleep", args=["0.5"]))
    job.wait_started(10)
    running = job.info.submission_time
    job.wait_terminated(10)
    ended = job.info.submission_time
    assert running == ended
    assert running.timestamp() == pytest.approx(js._store.job(job.id).submitted, abs=1e-5)
    assert before <= running.timestamp() <= time.time()
