"""The drmaa2 command in a real terminal (a pseudo-terminal driven by pexpect), as a person uses
it: Ctrl-C while it waits, the progress of ``wait``, ``jobs --watch``'s live table, and <TAB>
in bash and zsh with the completion script loaded. On the process tracker, in a store of the
test's own."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pydrmaa2.agent import AgentClient

pexpect = pytest.importorskip("pexpect")

BIN = Path(sys.executable).parent
DRMAA2 = str(BIN / "drmaa2")


@pytest.fixture
def env(home) -> dict[str, str]:
    e = dict(os.environ, PYDRMAA2_HOME=str(home), PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}",
             TERM="xterm-256color", COLUMNS="140", LINES="30")
    e.pop("PYDRMAA2_SESSION", None)
    e.pop("NO_COLOR", None)
    return e


@pytest.fixture
def drmaa2(env):
    """drmaa2 through pipes (to set up and to check), returning the completed process."""

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
        r = subprocess.run([DRMAA2, *args], capture_output=True, text=True, env=env, timeout=60)
        if check and r.returncode != 0:
            raise AssertionError(f"drmaa2 {args} -> {r.returncode}\n{r.stdout}\n{r.stderr}")
        return r

    return run


@pytest.fixture
def terminal(env):
    """Start a program in a terminal of 30 lines of 140 columns; each is closed afterwards."""
    children = []

    def spawn(program: str, *args: str) -> pexpect.spawn:
        child = pexpect.spawn(program, list(args), env=env, dimensions=(30, 140),
                              encoding="utf-8", timeout=30)
        children.append(child)
        return child

    yield spawn
    for child in children:
        child.close(force=True)


def ended(child: pexpect.spawn) -> int:
    """Wait for the program to end; its exit status."""
    child.expect(pexpect.EOF, timeout=30)
    child.close()
    assert child.signalstatus is None, f"killed by signal {child.signalstatus}"
    return child.exitstatus


def agent_pid(home: Path) -> int:
    """The pid of the store's agent (running: a job was submitted)."""
    client = AgentClient.for_home(home)
    try:
        return int(client.request("ping")["pid"])
    finally:
        client.close()


# -- Ctrl-C ----------------------------------------------------------------------------------------
def test_first_ctrl_c_terminates_the_job_and_exits_with_its_status(terminal, drmaa2):
    run = terminal(DRMAA2, "run", "--wait", "--", "/bin/sleep", "60")
    run.expect("job 1")
    run.expect("running")  # the live status of the one job
    run.sendintr()
    run.expect_exact("drmaa2: Ctrl-C: terminating job 1 (Ctrl-C again to stop waiting")
    run.expect("FAILED")  # the table of how it ended
    assert ended(run) == 128 + signal.SIGKILL  # the process tracker terminates with SIGKILL
    info = json.loads(drmaa2("info", "1", "--json").stdout)
    assert info["state"] == "failed" and info["terminating_signal"] == "SIGKILL"


def test_ctrl_c_reaches_a_wait_blocked_on_the_agent(terminal, drmaa2, home):
    """The agent stopped (SIGSTOP): the wait blocks on its socket, and so does the terminate
    the first Ctrl-C asks for; Ctrl-C still gets through, and once the agent answers again
    the job ends and drmaa2 exits with its status."""
    job = json.loads(drmaa2("run", "--json", "--", "/bin/sleep", "60").stdout)["job"]
    agent = agent_pid(home)
    wait = terminal(DRMAA2, "wait", job)
    wait.expect("running")
    os.kill(agent, signal.SIGSTOP)
    try:
        time.sleep(1.5)  # the wait's next slice asks the agent, which does not answer
        wait.sendintr()
        wait.expect_exact(f"terminating job {job}")
        time.sleep(1)
        assert wait.isalive()  # the terminate waits for the agent
    finally:
        os.kill(agent, signal.SIGCONT)
    assert ended(wait) == 137
    assert json.loads(drmaa2("info", job, "--json").stdout)["state"] == "failed"


def test_second_ctrl_c_stops_waiting_and_says_how_to_wait_again(terminal, drmaa2, home):
    """The engine slow to terminate (its agent stopped): the second Ctrl-C stops waiting at
    once, exits 130 and leaves the job to the engine, still running."""
    job = json.loads(drmaa2("run", "--json", "--", "/bin/sleep", "60").stdout)["job"]
    agent = agent_pid(home)
    wait = terminal(DRMAA2, "wait", job)
    wait.expect("running")
    os.kill(agent, signal.SIGSTOP)
    try:
        time.sleep(1)
        wait.sendintr()
        wait.expect_exact(f"terminating job {job}")
        time.sleep(0.5)
        wait.sendintr()
        wait.expect_exact("drmaa2: stopped waiting;")
        wait.expect_exact(f"Wait for it again with: drmaa2 wait {job}")
        assert ended(wait) == 130
        assert json.loads(drmaa2("info", job, "--json").stdout)["state"] == "running"
    finally:
        os.kill(agent, signal.SIGCONT)
    # The job ends as the first Ctrl-C asked, and `drmaa2 wait` picks it up again.
    r = drmaa2("wait", job, "--timeout", "30", check=False)
    assert r.returncode == 137 and "SIGKILL" in r.stdout


def test_first_ctrl_c_on_an_array_terminates_every_task(terminal, drmaa2):
    run = terminal(DRMAA2, "run", "--array", "1:4", "--max-parallel", "2", "--wait", "--",
                   "/bin/sleep", "60")
    run.expect("2 running")
    run.sendintr()
    run.expect_exact("terminating 4 jobs (1 2 3 4)")  # the running and the waiting
    assert ended(run) == 137  # task 1's
    r = drmaa2("wait", "1", "2", "3", "4", "--json", check=False)
    infos = json.loads(r.stdout)
    assert r.returncode == 137
    assert [i.get("terminating_signal") for i in infos] == ["SIGKILL", "SIGKILL", None, None]
    assert {i["state"] for i in infos} == {"failed"}  # tasks 3 and 4 never started


# -- progress and --watch --------------------------------------------------------------------------
def test_wait_shows_how_many_jobs_ended_and_counts_per_state(terminal, drmaa2):
    arr = json.loads(drmaa2("run", "--json", "--array", "1:4", "--max-parallel", "2", "--",
                            "/bin/sh", "-c", "sleep 1; exit $((TASK_ID == 3))").stdout)
    wait = terminal(DRMAA2, "wait", *arr["jobs"])
    wait.expect("ended")
    wait.expect("2 queued")
    wait.expect("2 running")
    wait.expect("4/4")
    wait.expect("3 done")
    wait.expect("1 failed")
    assert ended(wait) == 1  # task 3's exit status


def test_jobs_watch_redraws_its_table_until_ctrl_c(terminal, drmaa2):
    drmaa2("run", "--name", "napper", "--", "/bin/sleep", "2")
    drmaa2("run", "--array", "1:3", "--name", "trio", "--", "/bin/true")
    watch = terminal(DRMAA2, "jobs", "--watch", "--interval", "0.3")
    watch.expect("session default")
    watch.expect("array 1: trio")
    watch.expect("napper")
    watch.expect("running")
    watch.expect("done")  # a later look: the job has ended
    watch.expect("3 done")  # every job, the array's tasks too
    watch.sendintr()
    assert ended(watch) == 0


def test_no_live_output_with_json_in_a_terminal(terminal):
    run = terminal(DRMAA2, "run", "--wait", "--json", "--", "/bin/sh", "-c", "sleep 1; exit 3")
    assert ended(run) == 3
    text = run.before.replace("\r\n", "\n")
    assert "\x1b" not in text and json.loads(text)[0]["exit_status"] == 3


# -- completion at the keyboard --------------------------------------------------------------------
def _store(drmaa2) -> None:
    drmaa2("run", "--name", "greet", "--", "/bin/true")
    drmaa2("run", "--session", "nightly", "--", "/bin/true")


def test_tab_in_bash_completes_commands_sessions_and_jobs(terminal, drmaa2, env):
    _store(drmaa2)
    env["PS1"] = "PROMPT$ "
    sh = terminal("bash", "--norc", "--noprofile", "-i")
    sh.expect_exact("PROMPT$ ")
    sh.sendline('eval "$(drmaa2 completion bash)"')
    sh.expect_exact("PROMPT$ ")
    sh.send("drmaa2 sess\t")
    sh.expect_exact("drmaa2 sessions ")  # completed in the line
    sh.send("destroy \t\t")
    sh.expect("default\\s+nightly")  # the two sessions listed
    sh.send("\x15")  # ^U: a new line
    sh.send("drmaa2 run --session=ni\t")
    sh.expect_exact("--session=nightly ")
    sh.send("\x15drmaa2 info \t\t")
    sh.expect("1\\s+2")
    sh.send("\x15exit\r")
    sh.expect(pexpect.EOF)


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh is not installed")
def test_tab_in_zsh_completes_with_descriptions(terminal, drmaa2, env):
    _store(drmaa2)
    env["PS1"] = "PROMPT%% "
    sh = terminal("zsh", "-f", "-i")
    sh.expect_exact("PROMPT% ")
    sh.sendline('autoload -U compinit && compinit -u && eval "$(drmaa2 completion zsh)"')
    sh.expect_exact("PROMPT% ")
    sh.send("drmaa2 sess\t")
    sh.expect_exact("sessions")
    sh.send("\x15drmaa2 wait \t")
    sh.expect_exact("greet (session default)")  # a job with its name and session
    sh.send("\x15drmaa2 run --contact doc\t")
    sh.expect("doc\x07?ker")  # zsh writes what it adds to the word (after a bell)
    sh.send("\x15drmaa2 jobs --")
    sh.send("\t")
    sh.expect_exact("--watch")
    sh.send("\x15exit\r")
    sh.expect(pexpect.EOF)


# -- output ----------------------------------------------------------------------------------------
def test_run_wait_shows_the_jobs_output_as_it_is_written(terminal):
    run = terminal(DRMAA2, "run", "--wait", "--", "/bin/sh", "-c",
                   "echo first-line; sleep 3; echo second-line; exit 5")
    t0 = time.monotonic()
    run.expect_exact("first-line")
    assert time.monotonic() - t0 < 2.5  # before the job has ended
    run.expect_exact("second-line")
    run.expect("FAILED")
    assert ended(run) == 5
