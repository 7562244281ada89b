"""Faults against the real Slurm cluster: a wait rides through a slurmctld restart, and a
submitter killed (SIGKILL) while its array runs, or between sbatch and writing the jobs' rows,
loses no task: every task ends with its true exit status.

The restart stops the slurmctld that runs, by the pid recorded in a pid file (engines.sh's, or
Slurm's own SlurmctldPidFile) and checked in the process table, then starts it again as
scripts/engines.sh does (``engines.sh slurm`` starts what is not running)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

import pydrmaa2 as d2
from pydrmaa2.agent import AgentClient
from pydrmaa2.trackers import slurm
from pydrmaa2.trackers.base import Contact
from pydrmaa2.trackers.slurm import parsers
from tests.conftest import end_and_reap, require

pytestmark = pytest.mark.faults

ROOT = Path(__file__).resolve().parent.parent
ENGINES = ROOT / "scripts" / "engines.sh"
#: Where scripts/engines.sh records the pids of the daemons it starts.
RUN_DIR = Path("/run/pydrmaa2")


@pytest.fixture(scope="module")
def target():
    """The Slurm target; skipped (failed in CI) without a cluster."""
    return require("slurm")


def _controller_up() -> bool:
    """Whether slurmctld answers."""
    r = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=60)
    return " is UP" in r.stdout


def _slurmctld_pid() -> int:
    """The pid of the running slurmctld: from the pid file engines.sh records, else from
    Slurm's SlurmctldPidFile, and only if the process table shows slurmctld under that pid."""
    files = [RUN_DIR / "slurmctld.pid"]
    config = parsers.parse_config(subprocess.run(["scontrol", "show", "config"],
                                                 capture_output=True, text=True,
                                                 check=True).stdout)
    if config.get("SlurmctldPidFile", "").startswith("/"):
        files.append(Path(config["SlurmctldPidFile"]))
    for f in files:
        try:
            pid = int(f.read_text().split()[0])
            comm = Path(f"/proc/{pid}/comm").read_text().strip()
        except (OSError, ValueError, IndexError):
            continue
        if comm == "slurmctld":
            return pid
    pytest.skip(f"no pid file ({', '.join(map(str, files))}) names the running slurmctld")


def _restart_slurmctld() -> None:
    """Stop slurmctld (SIGTERM to its pid: it saves its state and exits), check that it no
    longer answers, then start it again with ``engines.sh slurm``."""
    if os.geteuid() != 0:
        pytest.skip("restarting slurmctld through scripts/engines.sh needs root")
    pid = _slurmctld_pid()
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 60
    while Path(f"/proc/{pid}").exists():
        assert time.monotonic() < deadline, f"slurmctld {pid} did not stop within 60 s"
        time.sleep(0.1)
    assert not _controller_up()
    r = subprocess.run(["bash", str(ENGINES), "--no-verify", "slurm"], capture_output=True,
                       text=True, timeout=900)
    assert r.returncode == 0, r.stdout + r.stderr
    assert _controller_up()


def test_a_wait_rides_through_a_slurmctld_restart(js):
    job = js.run_job(d2.JobTemplate(remote_command="/bin/sleep", args=["6"]))
    job.wait_started(60)
    result: dict[str, object] = {}

    def wait() -> None:
        try:
            result["info"] = job.wait_terminated(120)
        except BaseException as e:  # noqa: BLE001 - the test reports it
            result["error"] = e

    waiter = threading.Thread(target=wait)
    waiter.start()
    time.sleep(1.5)
    try:
        assert waiter.is_alive()
        _restart_slurmctld()
        # (else the restart lost slurmctld's state, e.g. a changed StateSaveLocation)
        assert js._tracker.find_job(job.id) == js._row(job.id).tracker_id, \
            "slurmctld came back without the job"
    finally:
        waiter.join(150)
    assert not waiter.is_alive(), "the wait did not return"
    assert "error" not in result, result["error"]
    info = result["info"]
    assert isinstance(info, d2.JobInfo)
    assert info.state is d2.JobState.DONE and info.exit_status == 0
    assert job.state is d2.JobState.DONE
    # Slurm answers afterwards: a new job runs through it
    again = js.run_job(d2.JobTemplate(remote_command="/bin/true"))
    assert again.wait_terminated(60).state is d2.JobState.DONE


#: The submitter: submits an array (task i exits with i % 3), prints its id, waits for it.
SUBMITTER = textwrap.dedent("""
    import sys
    import pydrmaa2 as d2
    sm = d2.SessionManager(home=sys.argv[1])
    js = sm.create_job_session("killed", contact=sys.argv[2])
    jt = d2.JobTemplate(remote_command="/bin/sh", args=["-c", "sleep 1; exit $((TASK_ID % 3))"])
    arr = js.run_bulk_jobs(jt, 1, 6, max_parallel=2)
    print(arr.id, flush=True)
    js.wait_all_terminated(arr.jobs)
""")


@pytest.mark.parametrize("contact", ["slurm", "slurm?max_array_size=4"])
def test_a_submitter_killed_while_its_array_runs_loses_no_task(target, tmp_path, contact):
    """A native array (one sbatch), and one split in two chained sbatch (max_parallel holds
    across them): the submitter is SIGKILLed once run_bulk_jobs returned; another program
    opens the session and sees all six tasks end, each with its exit status."""
    home = tmp_path / "home"
    proc = subprocess.Popen([sys.executable, "-c", SUBMITTER, str(home), contact],
                            stdout=subprocess.PIPE, text=True, cwd=ROOT)
    array_id = proc.stdout.readline().strip()  # type: ignore[union-attr]
    proc.kill()
    proc.wait(30)
    proc.stdout.close()  # type: ignore[union-attr]
    assert array_id, "the submitter printed no array id"
    sm = d2.SessionManager(home=home)
    js = sm.open_job_session("killed")
    try:
        arr = js.get_job_array(array_id)
        assert len(arr.jobs) == 6
        assert any(not j.state.is_terminal for j in arr.jobs)  # killed mid-array
        js.wait_all_terminated(arr.jobs, 120)
        for job in arr.jobs:
            info = job.info
            index = int(info.extensions["task_id"])
            assert info.exit_status == index % 3, (index, info)
            assert info.state is (d2.JobState.DONE if index % 3 == 0 else d2.JobState.FAILED)
    finally:
        end_and_reap(js)
        js.close()
        sm._notifier_stop.set()
        AgentClient.for_home(home).close()


#: The submitter killed by itself right after sbatch accepted its job(s), before their rows are
#: written: it prints the pydrmaa2 ids and Slurm ids first.
CRASHER = textwrap.dedent("""
    import json, os, signal, sys
    import pydrmaa2 as d2
    sm = d2.SessionManager(home=sys.argv[1])
    js = sm.create_job_session("crashed", contact="slurm")
    tracker = js._tracker
    jt = d2.JobTemplate(remote_command="/bin/sh", args=["-c", "exit $((${TASK_ID:-2} % 3))"])

    def die(ids, tids):
        print(json.dumps([list(ids), list(tids)]), flush=True)
        os.kill(os.getpid(), signal.SIGKILL)

    if sys.argv[2] == "array":
        real = tracker.submit_array
        tracker.submit_array = lambda ids, *a, **kw: die(ids, real(ids, *a, **kw))
        js.run_bulk_jobs(jt, 1, 5, max_parallel=2)
    else:
        real = tracker.submit
        tracker.submit = lambda job_id, *a, **kw: die([job_id], [real(job_id, *a, **kw)])
        js.run_job(jt)
""")


@pytest.mark.parametrize("what", ["job", "array"])
def test_jobs_whose_submitter_died_before_recording_them_are_found_by_their_ids(
        target, tmp_path, what):
    """The window exactly-once must close: sbatch has the job, the store not. Each pydrmaa2 id
    the submitter reserved finds its Slurm job (find_job), which ends with its exit status."""
    home = tmp_path / "home"
    r = subprocess.run([sys.executable, "-c", CRASHER, str(home), what], capture_output=True,
                       text=True, cwd=ROOT, timeout=120)
    assert r.returncode == -signal.SIGKILL, r.stderr
    ids, tids = json.loads(r.stdout)
    tracker = slurm.SlurmTracker(Contact.parse("slurm"), home)
    try:
        assert [tracker.find_job(i) for i in ids] == tids
        assert len(tids) == (5 if what == "array" else 1)
        deadline = time.monotonic() + 120
        while not all(st.is_terminal for st, _ in tracker.states(tids).values()):
            assert time.monotonic() < deadline, tracker.states(tids)
            time.sleep(0.5)
        expected = [i % 3 for i in range(1, 6)] if what == "array" else [2]
        assert [tracker.info(t).exit_status for t in tids] == expected
    finally:
        subprocess.run(["scancel", *{t.split("_")[0] for t in tids}], check=False)
        tracker.close()
        AgentClient.for_home(home).close()
