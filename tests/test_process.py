"""What only the process tracker does: process groups, rusage, staging, the agent, monitoring."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

import pydrmaa2 as d2
from pydrmaa2.agent import AgentClient
from pydrmaa2.trackers.process import FORK_SERVERS

from .conftest import sh


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
    from pydrmaa2.agent import socket_path

    deep = tmp_path / ("x" * 120)
    assert len(os.fsencode(socket_path(deep))) < 108
    assert socket_path(Path("/tmp/h")) == Path("/tmp/h/agent.sock")


def test_the_first_submission_hands_the_agent_a_socket_it_bound(sm, js):
    """No agent runs: run_job binds the agent's socket itself, queues the job on it and
    returns; the agent it starts (not its child, in a session of its own) serves that socket."""
    from pydrmaa2.agent import socket_path

    job = js.run_job(d2.JobTemplate(remote_command="/bin/sh", args=["-c", "exit 4"]))
    path = socket_path(sm.home)
    assert stat_mode(path) == 0o600
    assert job.wait_terminated(30).exit_status == 4
    agent = psutil.Process(AgentClient.for_home(sm.home).request("ping")["pid"])
    assert any(a.startswith("--listen-fd=") for a in agent.cmdline())
    assert agent.ppid() != os.getpid() and os.getsid(agent.pid) != os.getsid(0)


def test_a_dead_agents_socket_file_is_replaced_by_the_next_submission(sm, js):
    """An agent killed without unlinking its socket leaves a file nobody listens on: the next
    submission binds a new one there."""
    import socket as socketlib

    from pydrmaa2.agent import socket_path

    path = socket_path(sm.home)
    path.parent.mkdir(parents=True, exist_ok=True)
    dead = socketlib.socket(socketlib.AF_UNIX)
    dead.bind(str(path))
    dead.close()  # bound, never listening: connecting is refused
    job = js.run_job(d2.JobTemplate(remote_command="/bin/true"))
    assert job.wait_terminated(30).state is d2.JobState.DONE


def test_tasks_and_jobs_the_agent_starts_get_their_submitters_environment_and_umask(
        sm, js, tmp_path, monkeypatch):
    """The agent (started before, in another environment) starts a throttled array's later
    tasks and a job at its start_time: each as its submitter would have."""
    import datetime as dt

    js.run_job(d2.JobTemplate(remote_command="/bin/true")).wait_terminated(30)  # agent is up
    monkeypatch.setenv("PYDRMAA2_TEST_MARK", "submitter")
    old = os.umask(0o002)
    try:
        line = f'echo "$PYDRMAA2_TEST_MARK $(umask)" > {tmp_path}/out.$JOB_ID'
        arr = js.run_bulk_jobs(sh(line), 1, 12, max_parallel=2)
        later = js.run_job(sh(line, start_time=dt.datetime.now(dt.timezone.utc)
                                 + dt.timedelta(seconds=1)))
    finally:
        os.umask(old)
    js.wait_all_terminated([*arr.jobs, later], 60)
    seen = {p.name: p.read_text().split() for p in tmp_path.glob("out.*")}
    assert len(seen) == 13
    assert all(v == ["submitter", "0002"] for v in seen.values()), seen


def test_each_job_gets_the_environment_as_it_is_at_its_run_job(js, tmp_path, monkeypatch):
    """The submitter's environment is decoded once and kept while os.environ stays the same
    (trackers.common.environ): a variable set, changed or unset between two run_job calls is
    seen by the job after, as the one before saw it."""
    line = f'echo "${{PYDRMAA2_TEST_MARK-unset}}" > {tmp_path}/out.$JOB_ID'
    jobs = [js.run_job(sh(line))]
    monkeypatch.setenv("PYDRMAA2_TEST_MARK", "one")
    jobs.append(js.run_job(sh(line)))
    monkeypatch.setenv("PYDRMAA2_TEST_MARK", "two")
    jobs.append(js.run_job(sh(line)))
    jobs.append(js.run_job(sh(line)))
    monkeypatch.delenv("PYDRMAA2_TEST_MARK")
    jobs.append(js.run_job(sh(line)))
    js.wait_all_terminated(jobs, 30)
    seen = [(tmp_path / f"out.{j.id}").read_text().strip() for j in jobs]
    assert seen == ["unset", "one", "two", "two", "unset"]


def test_an_agent_leaving_removes_its_own_socket_file_only(tmp_path, monkeypatch):
    """An agent whose socket file was replaced meanwhile (removed under it, and another bound
    there) leaves that file alone when it exits."""
    import socket as socketlib

    from pydrmaa2.agent import socket_path

    monkeypatch.setenv("PYDRMAA2_AGENT_IDLE", "1")
    home = tmp_path / "home"
    client = AgentClient(home)
    agent = psutil.Process(client.request("ping")["pid"])
    path = socket_path(home)
    path.unlink()
    other = socketlib.socket(socketlib.AF_UNIX)
    other.bind(str(path))
    other.listen(1)
    try:
        client.close()
        agent.wait(30)  # idle: it exits
        assert path.exists()
    finally:
        other.close()


def stat_mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


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


# -- resource limits, priority, memory: what the job's process gets ------------------------------
def _limits(path: Path) -> dict[str, tuple[str, str]]:
    """/proc/self/limits as the job saw it: name -> (soft, hard)."""
    out = {}
    for line in path.read_text().splitlines()[1:]:
        name, soft, hard = line[:26].strip(), *line[26:].split()[:2]
        out[name] = (soft, hard)
    return out


def _phys_kib() -> int:
    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 1024


def _first_id_is_free(js) -> None:
    """No job id was taken by what was refused: the session's first job gets id 1."""
    assert js.get_jobs() == []
    assert js.run_job(d2.JobTemplate(remote_command="/bin/true")).id == "1"


def test_resource_limits_are_the_jobs_rlimits(js, tmp_path):
    out = tmp_path / "limits"
    job = js.run_job(d2.JobTemplate(
        remote_command="/bin/cat", args=["/proc/self/limits"], output_path=str(out),
        resource_limits={"OPEN_FILES": "100:200", "cpu_time": "30", "core_file_size": "0",
                         "FILE_SIZE": "1m", "stack_size": "4M", "data_size": "unlimited",
                         "virtual_memory": "2g:unlimited"}))
    assert job.wait_terminated(10).state is d2.JobState.DONE
    limits = _limits(out)
    assert limits["Max open files"] == ("100", "200")
    assert limits["Max cpu time"] == ("30", "30")
    assert limits["Max core file size"] == ("0", "0")
    assert limits["Max file size"] == (str(1 << 20), str(1 << 20))
    assert limits["Max stack size"] == (str(4 << 20), str(4 << 20))
    assert limits["Max data size"] == ("unlimited", "unlimited")
    assert limits["Max address space"] == (str(2 << 30), "unlimited")
    shell = js.run_job(sh("ulimit -n; ulimit -Hn", output_path=str(tmp_path / "ulimit"),
                          resource_limits={"nofile": "64"}))
    assert shell.wait_terminated(10).state is d2.JobState.DONE
    assert (tmp_path / "ulimit").read_text().split() == ["64", "64"]


def test_a_cpu_time_limit_stops_a_spinning_job(js):
    job = js.run_job(sh("while :; do :; done", resource_limits={"cpu_time": "1"}))
    info = job.wait_terminated(30)
    assert info.state is d2.JobState.FAILED
    assert info.terminating_signal in ("SIGXCPU", "SIGKILL")


@pytest.mark.parametrize(("limits", "error", "named"), [
    ({"bogus": "1"}, d2.UnsupportedAttributeError, "'bogus'"),
    ({"memory": "1g"}, d2.UnsupportedAttributeError, "'memory'"),
    ({"open_files": "many"}, d2.InvalidArgumentError, "'many'"),
    ({"OPEN_FILES": "10:5"}, d2.InvalidArgumentError, "'10:5'"),
    ({"stack_size": "12q"}, d2.InvalidArgumentError, "'12q'"),
    ({"cpu_time": "1.5"}, d2.InvalidArgumentError, "'1.5'"),
    ({"wallclock_time": "soon"}, d2.InvalidArgumentError, "'soon'"),
    ({"wallclock_time": "0"}, d2.InvalidArgumentError, "wallclock_time"),
    ({"nofile": "10", "OPEN_FILES": "20"}, d2.InvalidArgumentError, "twice"),
    ({"open_files": str(2**40)}, d2.InvalidArgumentError, "fs.nr_open"),
    ({"data_size": "99999999t"}, d2.InvalidArgumentError, "too large"),
])
def test_bad_resource_limits_are_refused_before_any_job_id(js, limits, error, named):
    with pytest.raises(error, match="resource_limits") as refused:
        js.run_job(d2.JobTemplate(remote_command="/bin/true", resource_limits=limits))
    assert named in str(refused.value)
    _first_id_is_free(js)


def test_a_wallclock_time_limit_kills_the_job_and_its_children(js, tmp_path):
    pidfile = tmp_path / "child.pid"
    t0 = time.monotonic()
    job = js.run_job(sh(f"sleep 60 & echo $! > {pidfile}; wait",
                        resource_limits={"wallclock_time": "1"}))
    info = job.wait_terminated(15)
    assert 0.9 < time.monotonic() - t0 < 10
    assert info.state is d2.JobState.FAILED
    assert info.terminating_signal == "SIGKILL"
    assert "wallclock_time limit of 1 s" in info.annotation
    deadline = time.monotonic() + 5
    while _alive(int(pidfile.read_text())):
        assert time.monotonic() < deadline, "the job's child survived its wallclock limit"
        time.sleep(0.02)
    quick = js.run_job(sh("exit 0", resource_limits={"WALLCLOCK_TIME": "0:01:00"}))
    assert quick.wait_terminated(10).state is d2.JobState.DONE


def test_a_new_agent_keeps_the_wallclock_limit_of_a_job_it_adopts(sm, js):
    job = js.run_job(d2.JobTemplate(remote_command="/bin/sleep", args=["60"],
                                    resource_limits={"wallclock_time": "2"}))
    job.wait_started(5)
    pid = int(job.info.extensions["pid"])
    os.kill(AgentClient.for_home(sm.home).request("ping")["pid"], signal.SIGKILL)
    AgentClient.for_home(sm.home).close()
    info = job.wait_terminated(15)  # the next agent adopts it, and kills it at its time
    assert info.state is d2.JobState.FAILED
    assert "wallclock_time limit of 2 s" in info.annotation
    assert not _alive(pid)


def test_priority_is_the_jobs_nice_value(js, tmp_path):
    """DRMAA2's priority is higher for more important jobs: nice = -priority, within -20..19."""
    for priority, nice in ((-7, 7), (-1000, 19), (0, 0)):
        out = tmp_path / f"nice{priority}"
        job = js.run_job(d2.JobTemplate(remote_command="/bin/cat", args=["/proc/self/stat"],
                                        output_path=str(out), priority=priority))
        assert job.wait_terminated(10).state is d2.JobState.DONE
        assert int(out.read_text().rsplit(")", 1)[1].split()[16]) == nice, priority
    job = js.run_job(d2.JobTemplate(remote_command="nice", output_path=str(tmp_path / "n"),
                                    priority=-3))
    job.wait_terminated(10)
    assert (tmp_path / "n").read_text().strip() == "3"


def _unprivileged(sm, template: str) -> str:
    """What run_job(template) raises in a process without CAP_SYS_NICE and CAP_SYS_RESOURCE
    (as root: through setpriv), as 'ErrorName message'."""
    code = textwrap.dedent(f"""
        import pydrmaa2 as d2
        js = d2.SessionManager(home={str(sm.home)!r}).open_job_session("p")
        try:
            js.run_job(d2.{template})
        except d2.Drmaa2Error as e:
            print(type(e).__name__, e)
    """)
    prefix: list[str] = []
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("setpriv is needed to run without CAP_SYS_NICE as root")
        prefix = ["setpriv", "--inh-caps=-sys_nice,-sys_resource",
                  "--bounding-set=-sys_nice,-sys_resource"]
    r = subprocess.run([*prefix, sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def test_raising_priority_without_privilege_is_refused_before_any_job_id(sm, js):
    """priority 5 is nice -5: only a privileged user may; others are told, not ignored."""
    refused = _unprivileged(sm, 'JobTemplate(remote_command="/bin/true", priority=5)')
    assert refused.startswith("DeniedByDrmsError JobTemplate.priority 5"), refused
    assert "CAP_SYS_NICE" in refused
    _first_id_is_free(js)


def test_raising_a_hard_limit_without_privilege_is_refused_before_any_job_id(sm, js):
    import resource

    hard = resource.getrlimit(resource.RLIMIT_CPU)[1]
    if hard == resource.RLIM_INFINITY:
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        limits = {"open_files": f"10:{hard + 1}"}
    else:
        limits = {"cpu_time": "unlimited"}
    refused = _unprivileged(sm, f'JobTemplate(remote_command="/bin/true", resource_limits={limits!r})')
    assert refused.startswith("DeniedByDrmsError JobTemplate.resource_limits"), refused
    assert "CAP_SYS_RESOURCE" in refused
    _first_id_is_free(js)


def test_min_phys_memory_beyond_the_machine_is_refused_before_any_job_id(js):
    with pytest.raises(d2.InvalidArgumentError, match=rf"min_phys_memory {_phys_kib() + 1} KiB"):
        js.run_job(d2.JobTemplate(remote_command="/bin/true", min_phys_memory=_phys_kib() + 1))
    _first_id_is_free(js)
    job = js.run_job(d2.JobTemplate(remote_command="/bin/true", min_phys_memory=1024))
    assert job.wait_terminated(10).state is d2.JobState.DONE


# -- the fork server: a job's max_rss is its own ---------------------------------------------------
def _fork_servers(home: Path) -> list[psutil.Process]:
    agent = psutil.Process(AgentClient.for_home(home).request("ping")["pid"])

    def spawners(procs: list[psutil.Process]) -> list[psutil.Process]:
        out = []
        for p in procs:  # (jobs among them may end meanwhile)
            with contextlib.suppress(psutil.Error, OSError):
                if "spawn-" in p.exe() and p.status() != psutil.STATUS_ZOMBIE:
                    out.append(p)
        return out

    # A job the server has created and that has not exec'd yet is a copy of the server: it is
    # a server only if it still is one a moment later.
    deadline = time.monotonic() + 10
    while True:
        servers = spawners(agent.children())
        time.sleep(0.05)
        servers = spawners(servers)
        if len(servers) == FORK_SERVERS or time.monotonic() > deadline:
            break
    assert len(servers) == FORK_SERVERS, f"not {FORK_SERVERS} fork servers (is a C compiler " \
                                         f"installed?): {(home / 'agent.log').read_text()[-2000:]}"
    return servers


def _fork_server(home: Path) -> psutil.Process:
    return _fork_servers(home)[0]


def test_true_has_a_max_rss_of_its_own(sm, js):
    """Not the agent's ~26 MB: the job is started by a small fork server (max_rss in KiB)."""
    _fork_server(sm.home)
    job = js.run_job(d2.JobTemplate(remote_command="/bin/true"))
    assert int(job.wait_terminated(10).extensions["max_rss"]) < 5 * 1024


def test_a_large_environment_leaves_no_max_rss_to_the_next_job(js):
    big = {f"BIG{i}": "x" * 100_000 for i in range(12)}
    job = js.run_job(d2.JobTemplate(remote_command="/bin/true", job_environment=big))
    assert job.wait_terminated(10).state is d2.JobState.DONE
    job = js.run_job(d2.JobTemplate(remote_command="/bin/true"))
    assert int(job.wait_terminated(10).extensions["max_rss"]) < 5 * 1024


def test_jobs_are_children_of_the_agent_in_sessions_of_their_own(sm, js, tmp_path):
    job = js.run_job(d2.JobTemplate(remote_command="/bin/sleep", args=["30"]))
    job.wait_started(5)
    pid = int(job.info.extensions["pid"])
    agent = AgentClient.for_home(sm.home).request("ping")["pid"]
    assert psutil.Process(pid).ppid() == agent
    assert os.getsid(pid) == pid and os.getpgid(pid) == pid
    assert psutil.Process(pid).environ()["JOB_ID"] == job.id
    job.terminate()


def test_a_spawn_failure_ends_the_job_failed_with_its_cause(sm, js, tmp_path):
    (tmp_path / "file").write_text("")
    client = AgentClient.for_home(sm.home)
    base = {"env": {"PATH": "/bin"}, "cwd": str(tmp_path), "stdin": None, "stdout": None,
            "stderr": None, "join": False, "stage_in": {}, "stage_out": {}, "job_name": None,
            "executable": "/bin/true", "argv": ["/bin/true"]}
    causes = {
        "no-program": ({"executable": "/no/such", "argv": ["/no/such"]},
                       "'/no/such': No such file or directory"),
        "not-executable": ({"executable": str(tmp_path / "file"), "argv": ["f"]},
                           "'f': Permission denied"),
        "no-cwd": ({"cwd": str(tmp_path / "gone")}, "'/bin/true': No such file or directory"),
        "file-cwd": ({"cwd": str(tmp_path / "file")}, "'/bin/true': Not a directory"),
        "nul-arg": ({"argv": ["/bin/true", "a\0b"]}, "ValueError: embedded null byte"),
        "rlimit": ({"rlimits": {"nofile": [10, 2**62]}},
                   "JobTemplate.resource_limits cannot be applied: Operation not permitted"),
    }
    for tid, (fields, _) in causes.items():
        client.send("proc.spawn", tid=tid, **{**base, **fields})
    tracker = js._tracker
    deadline = time.monotonic() + 10
    while any(not tracker.state(t)[0].is_terminal for t in causes):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    for tid, (_, cause) in causes.items():
        info = tracker.info(tid)
        assert (info.state, info.sub_state) == (d2.JobState.FAILED, "not started"), tid
        assert info.annotation.startswith("cannot start the job: cannot start "
                                          "JobTemplate.remote_command "), tid
        assert info.annotation.endswith(cause), (tid, info.annotation)
    assert js.run_job(sh("exit 0")).wait_terminated(10).state is d2.JobState.DONE
    # Each job that failed after its process existed was reaped: no zombie is left.
    agent = psutil.Process(client.request("ping")["pid"])
    assert not [p for p in agent.children() if p.status() == psutil.STATUS_ZOMBIE]


@pytest.mark.parametrize("fork_server", [True, False])
def test_a_job_whose_file_cannot_be_opened_ends_failed_naming_field_and_path(
        tmp_path, monkeypatch, fork_server):
    """With the fork server the job's own process opens its files (before exec), else the
    agent does: a file that cannot be opened ends the job FAILED naming the field and the
    path alike, and the files are the job's stdin, stdout and stderr (created 0600)."""
    if not fork_server:
        monkeypatch.setenv("CC", "/bin/false")
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    sm = d2.SessionManager(home=tmp_path / "home")
    js = sm.create_job_session("open")
    (tmp_path / "in").write_text("hello\n")
    (tmp_path / "adir").mkdir()
    client = AgentClient.for_home(sm.home)
    base = {"env": {"PATH": "/bin"}, "cwd": str(tmp_path), "stdin": None, "stdout": None,
            "stderr": None, "join": False, "stage_in": {}, "stage_out": {}, "job_name": None,
            "executable": "/bin/sh", "argv": ["/bin/sh", "-c", "cat; echo err >&2"],
            "umask": 0o002}
    gone = str(tmp_path / "gone" / "out")
    causes = {
        "no-input": ({"stdin": str(tmp_path / "missing")}, "input_path",
                     f"{str(tmp_path / 'missing')!r} cannot be opened: No such file or directory"),
        "no-output-dir": ({"stdout": gone}, "output_path",
                          f"{gone!r} cannot be opened: No such file or directory"),
        "error-is-dir": ({"stderr": str(tmp_path / "adir")}, "error_path",
                         f"{str(tmp_path / 'adir')!r} cannot be opened: Is a directory"),
        "joined-no-dir": ({"stdout": gone, "join": True}, "output_path",
                          f"{gone!r} cannot be opened: No such file or directory"),
    }
    for tid, (fields, _, _) in causes.items():
        client.send("proc.spawn", tid=tid, **{**base, **fields})
    ok = {"stdin": str(tmp_path / "in"), "stdout": str(tmp_path / "o"),
          "stderr": str(tmp_path / "e")}
    client.send("proc.spawn", tid="ok", **{**base, **ok})
    client.send("proc.spawn", tid="joined", **{**base, **ok, "stdout": str(tmp_path / "j"),
                                              "join": True})
    tracker = js._tracker
    tids = [*causes, "ok", "joined"]
    deadline = time.monotonic() + 10
    while any(not tracker.state(t)[0].is_terminal for t in tids):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    for tid, (_, field, cause) in causes.items():
        info = tracker.info(tid)
        assert (info.state, info.sub_state) == (d2.JobState.FAILED, "not started"), tid
        assert info.annotation == f"cannot start the job: JobTemplate.{field} {cause}", tid
    assert tracker.info("ok").state is d2.JobState.DONE
    assert (tmp_path / "o").read_text() == "hello\n"
    assert (tmp_path / "e").read_text() == "err\n"
    assert (tmp_path / "j").read_text() == "hello\nerr\n"
    assert stat_mode(tmp_path / "o") == 0o600
    agent = psutil.Process(client.request("ping")["pid"])
    assert not [p for p in agent.children() if p.status() == psutil.STATUS_ZOMBIE]
    assert ("not by the fork server" in (sm.home / "agent.log").read_text()) is not fork_server
    client.close()


def test_a_killed_fork_server_is_replaced(sm, js):
    js.run_job(d2.JobTemplate(remote_command="/bin/true")).wait_terminated(10)
    old = _fork_server(sm.home)
    old.kill()
    deadline = time.monotonic() + 5
    while _alive(old.pid):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    jobs = [js.run_job(d2.JobTemplate(remote_command="/bin/true")) for _ in range(4)]
    js.wait_all_terminated(jobs, 10)
    for job in jobs:
        info = job.info
        assert info.state is d2.JobState.DONE
        assert int(info.extensions["max_rss"]) < 5 * 1024
    assert old.pid not in {p.pid for p in _fork_servers(sm.home)}


def test_a_fork_server_killed_amid_an_array_starts_no_task_twice_and_loses_none(sm, js, tmp_path):
    """Tasks go to every fork server; one killed while tasks are on their way: the tasks it
    had not answered for are adopted (if created) or started again, the other server's are
    not taken for them, and each task runs exactly once."""
    ran = tmp_path / "ran"
    ran.mkdir()
    jt = d2.JobTemplate(remote_command="/bin/sh", args=["-c", f'echo x >> "{ran}/$TASK_ID"'])
    n = 300
    arr = js.run_bulk_jobs(jt, 1, n)
    deadline = time.monotonic() + 30
    while len(list(ran.iterdir())) < 20:
        assert time.monotonic() < deadline
        time.sleep(0.005)
    old = _fork_server(sm.home)
    old.kill()
    js.wait_all_terminated(arr.jobs, 60)
    assert [j.state for j in arr.jobs] == [d2.JobState.DONE] * n, \
        [(j.id, j.info.annotation) for j in arr.jobs if j.state is not d2.JobState.DONE]
    assert sorted(int(p.name) for p in ran.iterdir()) == list(range(1, n + 1))
    twice = sorted(int(p.name) for p in ran.iterdir() if p.read_text() != "x\n")
    assert not twice, (twice, (sm.home / "agent.log").read_text()[-3000:])  # none ran twice
    infos = [j.info for j in arr.jobs]
    assert len({i.extensions["pid"] for i in infos}) == n  # no two tasks took one process
    assert old.pid not in {p.pid for p in _fork_servers(sm.home)}


def test_without_a_c_compiler_the_agent_starts_jobs_itself(tmp_path, monkeypatch):
    """No fork server: jobs still run with their limits; the log says so once."""
    monkeypatch.setenv("CC", "/bin/false")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    home = tmp_path / "home"
    js = d2.SessionManager(home=home).create_job_session("no-cc")
    try:
        out = tmp_path / "limits"
        jobs = [js.run_job(d2.JobTemplate(remote_command="/bin/cat", args=["/proc/self/limits"],
                                          output_path=str(out), priority=-2,
                                          resource_limits={"open_files": "77"})),
                js.run_job(d2.JobTemplate(remote_command="/bin/true"))]
        js.wait_all_terminated(jobs, 10)
        assert [j.state for j in jobs] == [d2.JobState.DONE] * 2
        assert _limits(out)["Max open files"] == ("77", "77")
        log = (home / "agent.log").read_text()
        assert log.count("not by the fork server") == 1, log
    finally:
        AgentClient.for_home(home).close()


@pytest.mark.parametrize("max_parallel", [None, 2])
def test_an_array_task_refused_at_its_start_ends_failed_and_the_others_run(
        js, tmp_path, max_parallel):
    """Tasks are sent to the agent many at once (submit_many): a task whose output file cannot
    be created ends FAILED naming the field and the path; those around it run, each with its
    own JOB_ID, TASK_ID and the template's environment."""
    for i in (1, 2, 4, 6):
        (tmp_path / f"d{i}").mkdir()
    arr = js.run_bulk_jobs(
        sh('echo "$JOB_ID $TASK_ID $MARK"', job_environment={"MARK": "m"},
           output_path=str(tmp_path / "d$DRMAA2_INDEX$" / "out")), 1, 6,
        max_parallel=max_parallel)
    js.wait_all_terminated(arr.jobs, 60)
    for index, job in enumerate(arr.jobs, 1):
        info = job.info
        if index in (3, 5):
            assert (info.state, info.sub_state) == (d2.JobState.FAILED, "not started")
            assert "output_path" in info.annotation and f"d{index}/out" in info.annotation
        else:
            assert info.state is d2.JobState.DONE, info
            out = (tmp_path / f"d{index}" / "out").read_text().split()
            assert out == [job.id, str(index), "m"]


def test_infos_answers_as_info_does_for_each_job(js):
    jobs = [js.run_job(sh(f"exit {n}")) for n in range(3)]
    js.wait_all_terminated(jobs, 30)
    tracker = js._tracker
    tids = [j.id for j in jobs] + ["no-such-job"]
    assert tracker.infos(tids) == {t: tracker.info(t) for t in tids}
    assert [tracker.infos(tids)[j.id].exit_status for j in jobs] == [0, 1, 2]


def test_submit_many_by_default_stops_at_the_first_refused_job():
    """The generic submit_many submits one job after another; the jobs after a refused one are
    not submitted (its caller sends them again, or not)."""
    from pydrmaa2.trackers.base import JobTracker

    class Fake:
        def __init__(self):
            self.sent = []

        def submit(self, job_id, template, task_index, hold=False):
            if job_id == "bad":
                raise d2.InvalidArgumentError("JobTemplate.output_path 'x' cannot be created")
            self.sent.append((job_id, None))
            return f"t{job_id}"

        def submit_in_context(self, job_id, template, task_index, context):
            self.sent.append((job_id, context))
            return f"t{job_id}"

    fake = Fake()
    jt = d2.JobTemplate(remote_command="/bin/true")
    out = JobTracker.submit_many(fake, [("1", jt, 1, None), ("2", jt, 2, {"c": 1}),
                                        ("bad", jt, 3, None), ("4", jt, 4, None)])
    assert out[:2] == ["t1", "t2"]
    assert isinstance(out[2], d2.InvalidArgumentError) and len(out) == 3
    assert fake.sent == [("1", None), ("2", {"c": 1})]


def test_a_malformed_job_of_a_spawn_many_request_ends_failed_and_the_others_run(sm, js, tmp_path):
    client = AgentClient.for_home(sm.home)
    job = {"cwd": str(tmp_path), "stdin": None, "stdout": None, "stderr": None, "join": False,
           "stage_in": {}, "stage_out": {}, "job_name": None, "executable": "/bin/sh",
           "argv": ["/bin/sh", "-c", "exit $N"], "env": 0, "env_del": []}
    pid = client.request("ping")["pid"]
    gone = str(tmp_path / "gone" / "out")
    client.send("proc.spawn_many", envs=[{"PATH": "/bin"}], jobs=[
        {**job, "tid": "m-first", "env_set": {"N": "3"}},
        {**job, "tid": "m-bad", "env": 7, "env_set": {}},
        {**job, "env_set": {}},  # no id at all
        {**job, "tid": "m-first", "env": 7, "env_set": {}},  # malformed, and m-first's id
        {**job, "tid": "m-no-dir", "stdout": gone, "env_set": {}},
        {**job, "tid": "m-last", "env_set": {"N": "0"}},
    ])
    tracker = js._tracker
    tids = ["m-first", "m-bad", "m-no-dir", "m-last"]
    deadline = time.monotonic() + 10
    while any(not tracker.state(t)[0].is_terminal for t in tids):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert tracker.info("m-first").exit_status == 3
    assert tracker.info("m-last").state is d2.JobState.DONE
    bad = tracker.info("m-bad")
    assert (bad.state, bad.sub_state) == (d2.JobState.FAILED, "not started")
    assert bad.annotation == "cannot start the job: a malformed request (IndexError)"
    no_dir = tracker.info("m-no-dir")
    assert no_dir.annotation == (f"cannot start the job: JobTemplate.output_path {gone!r} cannot "
                                 "be opened: No such file or directory")
    assert client.request("ping")["pid"] == pid  # the same agent


@pytest.mark.parametrize("fork_server", [True, False])
def test_jobs_ignore_no_signal_that_the_agents_starter_ignored(tmp_path, fork_server):
    """A program run under nohup (SIGHUP ignored) starts the agent: its jobs still have every
    signal as a newly started program has it."""
    env = dict(os.environ)
    if not fork_server:
        env.update(CC="/bin/false", XDG_CACHE_HOME=str(tmp_path / "cache"))
    code = ("import sys, pydrmaa2 as d2\n"
            "js = d2.SessionManager(home=sys.argv[1]).create_job_session('s')\n"
            "jt = d2.JobTemplate(remote_command='/bin/grep', args=['SigIgn', '/proc/self/status'],"
            " output_path=sys.argv[2])\n"
            "print(js.run_job(jt).wait_terminated(30).exit_status)\n")
    home, out = tmp_path / "home", tmp_path / "out"
    try:
        run = subprocess.run(
            [sys.executable, "-c", code, str(home), str(out)], env=env, capture_output=True,
            text=True, timeout=60,
            preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN))
        assert run.stdout.split() == ["0"], run.stderr
        assert out.read_text().split() == ["SigIgn:", "0" * 16]
    finally:
        AgentClient.for_home(home).close()


def test_a_wait_for_all_follows_its_jobs_a_window_at_a_time(sm, js, monkeypatch):
    """wait_all_terminated looks at WAIT_WINDOW of the jobs left at a time: it still returns
    only once every job has ended, whichever ends first, refuses a job of another session
    wherever it is in the list, and with no time left answers for all of them."""
    from pydrmaa2 import session as session_module

    monkeypatch.setattr(session_module, "WAIT_WINDOW", 3)
    # The first and the last end last; those between end at once.
    jobs = [js.run_job(sh("sleep 1.2" if n in (0, 9) else "exit 0")) for n in range(10)]
    with pytest.raises(d2.TimeoutError):
        js.wait_all_terminated(jobs, 0)
    with sm.create_job_session("other") as other:  # another session's job, last in the list
        stranger = other.run_job(sh("exit 0"))
        with pytest.raises(d2.InvalidArgumentError, match=repr(stranger.id)):
            js.wait_all_terminated([*jobs, stranger], 0)
        other.wait_all_terminated([stranger], 30)
    assert js.wait_all_terminated(jobs, 30) is None
    assert all(j.state is d2.JobState.DONE for j in jobs)
    assert js.wait_all_terminated(jobs, 0) is None


def test_a_task_whose_output_path_cannot_be_opened_ends_failed_beside_others_in_its_directory(
        js, tmp_path):
    """Of many tasks writing into one directory the first file is checked at submission; the
    others are opened by their own processes: one that cannot be (a directory there) ends
    FAILED naming the field and the path, and the others run."""
    (tmp_path / "out.2").mkdir()
    arr = js.run_bulk_jobs(sh("echo $TASK_ID", output_path=str(tmp_path / "out.$DRMAA2_INDEX$")),
                           1, 3)
    js.wait_all_terminated(arr.jobs, 30)
    states = [j.info for j in arr.jobs]
    assert [i.state for i in states] == [d2.JobState.DONE, d2.JobState.FAILED, d2.JobState.DONE]
    assert "output_path" in states[1].annotation
    assert str(tmp_path / "out.2") in states[1].annotation
    assert (tmp_path / "out.3").read_text() == "3\n"


def test_a_batch_environment_is_encoded_once_as_each_job_would_have_it():
    """proc.spawn_many encodes each submitter's environment once; a job's is that with its
    own variables set and its removed ones gone, as job_env makes it; one that exec would
    refuse is left to exec_args, which names the cause."""
    from pydrmaa2.trackers import _forkserver
    from pydrmaa2.trackers.process import _entries, job_env

    envs = [{"A": "1", "TASK_ID": "9", "B": "x"}]
    for env_set, env_del in [({"JOB_ID": "5", "TASK_ID": "3"}, []), ({"JOB_ID": "5"}, ["TASK_ID"]),
                             ({"A": "2", "TASK_ID": "1"}, ["TASK_ID"])]:
        assert sorted(_entries({}, envs, 0, env_set, env_del)) == sorted(
            _forkserver.env_entries(job_env(envs[0], env_set, env_del)).values())
    assert _entries({}, [{"A=B": "1"}], 0, {}, []) is None
    assert _entries({}, envs, 0, {"X": "a\0b"}, []) is None
    with pytest.raises(ValueError, match="illegal environment variable name"):
        _forkserver.exec_args("/bin/true", ["true"], {"A=B": "1"}, "/")


def test_a_full_fork_server_does_not_keep_the_others_idle():
    """While a turn sends many jobs, the agent reads no answers and its counts of the jobs each
    server has in hand go stale. With the one picked full, the answers of every server are
    taken (another has room: no wait); only with each really full does it wait, for whichever
    answers first. (Fakes: the servers are sockets, each byte one answer.)"""
    import collections
    import socket
    import threading
    import types

    from pydrmaa2.trackers.process import MAX_IN_FLIGHT, ProcessService

    pairs = [socket.socketpair() for _ in range(3)]

    def collect(server, wait=False):
        server.fs.sock.settimeout(2 if wait else 0)  # (a wait on a silent one fails the test)
        with contextlib.suppress(BlockingIOError):
            for _ in server.fs.sock.recv(MAX_IN_FLIGHT):
                server.in_flight.popleft()

    def full(sock):
        fs = types.SimpleNamespace(sock=sock, fileno=sock.fileno)
        return types.SimpleNamespace(fs=fs, in_flight=collections.deque(range(MAX_IN_FLIGHT)))

    try:
        agent = types.SimpleNamespace(servers=[full(ours) for ours, _ in pairs])
        agent._collect = lambda server, wait=False: collect(server, wait)
        pairs[1][1].send(b"x" * 10)  # the second server has answered ten: room at once
        ProcessService._make_room(agent)
        assert [len(s.in_flight) for s in agent.servers] == [MAX_IN_FLIGHT, MAX_IN_FLIGHT - 10,
                                                             MAX_IN_FLIGHT]
        agent.servers[1].in_flight.extend(range(10))  # all full again, none has answered
        timer = threading.Timer(0.2, lambda: pairs[2][1].send(b"x"))
        timer.start()
        t = time.monotonic()
        ProcessService._make_room(agent)  # waits for the third, not for the first
        assert time.monotonic() - t >= 0.15
        assert [len(s.in_flight) for s in agent.servers] == [MAX_IN_FLIGHT, MAX_IN_FLIGHT,
                                                             MAX_IN_FLIGHT - 1]
        timer.join()
    finally:
        for a, b in pairs:
            a.close()
            b.close()
