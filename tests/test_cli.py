"""The drmaa2 command, run as a user would (a subprocess through pipes, JSON for checking):
exit statuses, ``jobs --watch`` without a terminal, completion scripts driven in bash (and zsh
and fish where installed). tests/test_cli_tty.py drives it in a terminal."""

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

import pydrmaa2 as d2
from pydrmaa2.agent import AgentClient

from .conftest import end_and_reap

BIN = Path(sys.executable).parent


@pytest.fixture
def env(home):
    """The environment of a drmaa2 run by a user: the store at ``home``, the venv on PATH."""
    e = dict(os.environ, PYDRMAA2_HOME=str(home), PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}")
    e.pop("PYDRMAA2_SESSION", None)
    return e


@pytest.fixture
def drmaa2(env):
    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
        r = subprocess.run([sys.executable, "-m", "pydrmaa2.cli", *args], capture_output=True,
                           text=True, env=env, timeout=60)
        if check and r.returncode != 0:
            raise AssertionError(f"drmaa2 {args} -> {r.returncode}\n{r.stdout}\n{r.stderr}")
        return r

    return run


def test_run_wait_and_info(drmaa2, tmp_path):
    out = tmp_path / "o.txt"
    r = drmaa2("run", "--wait", "--json", "--output", str(out), "--env", "X=42", "--",
               "/bin/sh", "-c", "echo $X")
    (info,) = json.loads(r.stdout)
    assert info["state"] == "done" and info["exit_status"] == 0
    assert out.read_text() == "42\n"
    r = drmaa2("info", info["id"], "--json")
    assert json.loads(r.stdout)["id"] == info["id"]


def test_a_failed_job_makes_wait_exit_with_its_status(drmaa2):
    r = drmaa2("run", "--wait", "--", "/bin/false", check=False)
    assert r.returncode == 1
    job = json.loads(drmaa2("run", "--json", "--", "/bin/sh", "-c", "exit 4").stdout)["job"]
    r = drmaa2("wait", job, "--json", check=False)
    assert r.returncode == 4 and json.loads(r.stdout)[0]["exit_status"] == 4


def test_array_with_max_parallel_and_jobs_listing(drmaa2):
    r = drmaa2("run", "--json", "--array", "1:4", "--max-parallel", "2", "--", "/bin/true")
    arr = json.loads(r.stdout)
    assert len(arr["jobs"]) == 4
    drmaa2("wait", *arr["jobs"])
    listed = json.loads(drmaa2("jobs", "--state", "done", "--json").stdout)
    assert sorted(i["id"] for i in listed) == sorted(arr["jobs"])


def test_hold_release_terminate_reap(drmaa2):
    job = json.loads(drmaa2("run", "--hold", "--json", "--", "/bin/sleep", "30").stdout)["job"]
    assert json.loads(drmaa2("info", job, "--json").stdout)["state"] == "queued_held"
    drmaa2("release", job)
    drmaa2("terminate", job)
    r = drmaa2("wait", job, "--timeout", "10", "--json", check=False)
    assert json.loads(r.stdout)[0]["state"] == "failed"
    drmaa2("reap", job)
    r = drmaa2("info", job, check=False)
    assert r.returncode == 2 and "InvalidArgumentError" in r.stderr and job in r.stderr


def test_wait_timeout_is_an_error(drmaa2):
    job = json.loads(drmaa2("run", "--json", "--", "/bin/sleep", "30").stdout)["job"]
    r = drmaa2("wait", job, "--timeout", "0.2", check=False)
    assert r.returncode == 2 and "TimeoutError" in r.stderr
    r = drmaa2("wait", job, "--timeout", "-1", check=False)
    assert r.returncode == 2 and "--timeout: timeout -1.0 is negative" in r.stderr
    drmaa2("terminate", job)


def test_sessions_and_monitor(drmaa2):
    drmaa2("sessions", "create", "s1")
    names = [s["name"] for s in json.loads(drmaa2("sessions", "list", "--json").stdout)]
    assert names == ["s1"]
    r = drmaa2("sessions", "create", "s1", check=False)
    assert r.returncode == 2 and "s1" in r.stderr
    drmaa2("sessions", "destroy", "s1")
    machines = json.loads(drmaa2("monitor", "machines", "--json").stdout)
    assert machines[0]["phys_memory"] > 0


def test_bad_usage_is_explained(drmaa2):
    r = drmaa2("run", "--array", "5:1", "--", "/bin/true", check=False)
    assert r.returncode == 2 and "5" in r.stderr
    r = drmaa2("run", "--", "/no/such/binary", check=False)
    assert r.returncode == 2 and "/no/such/binary" in r.stderr


def test_one_command_after_another_gets_consecutive_job_ids(drmaa2):
    ids = [json.loads(drmaa2("run", "--json", "--", "/bin/true").stdout)["job"] for _ in range(3)]
    assert [int(i) for i in ids] == [int(ids[0]), int(ids[0]) + 1, int(ids[0]) + 2]


def test_a_failed_run_creates_no_session_and_contact_alone_uses_its_own_default(drmaa2):
    """`drmaa2 run --contact docker -- true` without an image fails and leaves nothing behind;
    plain `drmaa2 run` then still uses the process tracker; --contact C alone means session
    'default:C', never a change to 'default'."""

    def sessions() -> dict[str, str]:
        listed = json.loads(drmaa2("sessions", "list", "--json").stdout)
        return {s["name"]: s["contact"] for s in listed}

    r = drmaa2("run", "--contact", "docker", "--", "true", check=False)
    assert r.returncode == 2 and "job_category" in r.stderr
    assert sessions() == {}
    drmaa2("run", "--wait", "--", "/bin/true")
    assert sessions() == {"default": "process"}
    r = drmaa2("run", "--contact", "process?bogus=1", "--", "/bin/true", check=False)
    assert r.returncode == 2 and "bogus" in r.stderr
    assert sessions() == {"default": "process"}


# -- exit statuses ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("command", "status"), [
    ("exit 7", 7), ("exit 0", 0), ("kill -9 $$", 137), ("kill -TERM $$", 143), ("exit 255", 255),
])
def test_run_wait_exits_with_the_jobs_status(drmaa2, command, status):
    """`drmaa2 run --wait` exits as the job did, a signal N as 128+N (as docker run, srun and
    the shell say it); stdout stays the table (or JSON) of how the job ended."""
    r = drmaa2("run", "--wait", "--json", "--", "/bin/sh", "-c", command, check=False)
    (info,) = json.loads(r.stdout)
    assert r.returncode == status, r.stderr
    assert info["state"] == ("done" if status == 0 else "failed")
    if status > 128 and command.startswith("kill"):
        assert info["terminating_signal"] == signal.Signals(status - 128).name
    r = drmaa2("wait", info["id"], check=False)
    assert r.returncode == status and info["id"] in r.stdout


def test_a_job_that_never_ran_gives_125_and_a_refused_command_2(drmaa2):
    job = json.loads(drmaa2("run", "--hold", "--json", "--", "/bin/true").stdout)["job"]
    drmaa2("terminate", job)
    r = drmaa2("wait", job, "--json", check=False)
    (info,) = json.loads(r.stdout)
    assert r.returncode == 125 and info["state"] == "failed" and info.get("exit_status") is None
    r = drmaa2("run", "--wait", "--", "/no/such/command", check=False)
    assert r.returncode == 2 and r.stdout == "" and r.stderr.startswith("drmaa2: ")


def test_an_array_exits_with_its_first_failed_task_in_task_order(drmaa2):
    """Task 2 fails (3) after task 4 has failed (4): the status is task 2's, whatever ended
    first; and the same through `wait` with the ids in that order, or reversed."""
    script = 'case $TASK_ID in 2) sleep 1; exit 3;; 4) exit 4;; esac'
    r = drmaa2("run", "--array", "1:5", "--wait", "--json", "--", "/bin/sh", "-c", script,
               check=False)
    infos = json.loads(r.stdout)
    assert r.returncode == 3
    assert [i["exit_status"] for i in infos] == [0, 3, 0, 4, 0]
    ids = [i["id"] for i in infos]
    assert drmaa2("wait", *ids, check=False).returncode == 3
    assert drmaa2("wait", *reversed(ids), check=False).returncode == 4
    assert drmaa2("wait", ids[0], ids[2], ids[4]).returncode == 0


# -- jobs --watch through a pipe -------------------------------------------------------------------
def test_jobs_watch_without_a_terminal_prints_a_line_per_change(drmaa2, env):
    """Through a pipe (or with --json) --watch redraws nothing: one JSON line per job each time
    its state changes, until Ctrl-C (exit 0); it ends by itself when its reader has gone."""
    drmaa2("sessions", "create", "default")
    watch = subprocess.Popen([sys.executable, "-m", "pydrmaa2.cli", "jobs", "--watch", "--json",
                              "--interval", "0.2"], stdout=subprocess.PIPE, text=True, env=env)
    try:
        time.sleep(1)  # it is watching
        job = json.loads(drmaa2("run", "--json", "--", "/bin/sh", "-c", "sleep 1").stdout)["job"]
        seen = []
        while "done" not in seen:
            line = json.loads(watch.stdout.readline())
            assert line["id"] == job
            seen.append(line["state"])
        assert "running" in seen and seen.count("done") == 1
        watch.send_signal(signal.SIGINT)
        assert watch.wait(10) == 0
    finally:
        watch.kill()
        watch.wait()
    # Its reader gone (`| head -1`), a watch with nothing new to say ends too.
    r = subprocess.run(f"{BIN}/drmaa2 jobs --watch --interval 0.2 | head -1", shell=True,
                       capture_output=True, text=True, env=env, timeout=30)
    assert r.stdout.split() == ["id", "state", "exit", "name", "sub_state"]


def test_watch_options_are_checked(drmaa2):
    r = drmaa2("jobs", "--interval", "2", check=False)
    assert r.returncode == 2 and "--interval" in r.stderr and "--watch" in r.stderr
    drmaa2("sessions", "create", "default")
    r = drmaa2("jobs", "--watch", "--interval", "0", check=False)
    assert r.returncode == 2 and "--interval 0" in r.stderr
    r = drmaa2("jobs", "--state", "sleeping", check=False)
    assert r.returncode == 2 and "'sleeping' is not a job state" in r.stderr


# -- completion ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def store_env(tmp_path_factory):
    """The environment of a store (made once for the completion tests) with sessions 'default'
    (jobs 1 'greet' and 2 '/bin/echo hi'), 'default:docker' and 'nightly' (its job 3)."""
    home = tmp_path_factory.mktemp("completion") / "home"
    e = dict(os.environ, PYDRMAA2_HOME=str(home), PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}")
    e.pop("PYDRMAA2_SESSION", None)
    for args in (["run", "--name", "greet", "--", "/bin/true"], ["run", "--", "/bin/echo", "hi"],
                 ["sessions", "create", "default:docker", "--contact", "process"],
                 ["run", "--session", "nightly", "--", "/bin/true"]):
        subprocess.run([sys.executable, "-m", "pydrmaa2.cli", *args], env=e, check=True,
                       capture_output=True, timeout=60)
    yield e
    with d2.SessionManager(home=home) as sm:
        for name in sm.job_session_names:
            with sm.open_job_session(name) as js:
                end_and_reap(js)
    AgentClient.for_home(home).close()


def _complete(env: dict[str, str], *args: str) -> str:
    r = subprocess.run([sys.executable, "-m", "pydrmaa2.cli", "__complete", *args], env=env,
                       capture_output=True, text=True, timeout=60, check=True)
    return r.stdout


def test_the_hidden_complete_command_lists_sessions_jobs_and_contacts(store_env):
    def values(*args: str) -> list[str]:
        return [line.split("\t")[0] for line in _complete(store_env, *args).splitlines()]

    assert values("sessions") == ["default", "default:docker", "nightly"]
    assert values("sessions", "--prefix", "default:") == ["default:docker"]
    assert values("jobs") == ["1", "2", "3"]
    assert values("jobs", "--session", "nightly") == ["3"]
    assert values("contacts") >= ["containerd", "docker", "podman", "process", "slurm"]
    lines = _complete(store_env, "jobs").splitlines()
    assert lines[0] == "1\tgreet (session default)" and lines[1] == "2\t/bin/echo hi (session default)"


def test_completion_never_creates_a_store(drmaa2, home):
    assert drmaa2("__complete", "sessions").stdout == ""
    assert drmaa2("__complete", "jobs").stdout == ""
    assert not home.exists()


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_each_completion_script_is_printed_and_valid(drmaa2, tmp_path, shell):
    text = drmaa2("completion", shell).stdout
    assert "drmaa2 completion " + shell in text and "__complete" in text
    for word in ("run", "jobs", "wait", "sessions", "--watch", "--contact", "--max-parallel"):
        assert word in text
    if shutil.which(shell) is None:
        pytest.skip(f"{shell} is not installed: its script is printed but not checked")
    path = tmp_path / f"drmaa2.{shell}"
    path.write_text(text)
    r = subprocess.run([shell, "-n", str(path)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


@pytest.fixture(scope="module")
def bash_script(store_env) -> str:
    return subprocess.run([sys.executable, "-m", "pydrmaa2.cli", "completion", "bash"], env=store_env,
                          capture_output=True, text=True, check=True).stdout


BASH_CASES = [
    ("drmaa2 ", ["run", "jobs", "info", "wait", "suspend", "resume", "hold", "release",
                 "terminate", "reap", "sessions", "monitor", "libdrmaa", "completion", "logs",
                 "serve"]),
    ("drmaa2 se", ["serve", "sessions"]),
    ("drmaa2 -", ["-h", "--help"]),
    ("drmaa2 jobs --", ["--help", "--session", "--state", "--watch", "--interval", "--json"]),
    ("drmaa2 jobs --state r", ["running", "requeued", "requeued_held"]),
    ("drmaa2 jobs --session ", ["default", "default:docker", "nightly"]),
    ("drmaa2 jobs --session=n", ["nightly"]),
    # ':' breaks words in bash: the candidate is what follows the last ':' typed.
    ("drmaa2 run --session default:", ["docker"]),
    ("drmaa2 run --contact d", ["docker"]),
    ("drmaa2 run --wait --contact p", ["podman", "process"]),
    ("drmaa2 wait ", ["1", "2", "3"]),
    ("drmaa2 wait 1 ", ["1", "2", "3"]),
    ("drmaa2 terminate --", ["--help"]),
    ("drmaa2 info ", ["1", "2", "3"]),
    ("drmaa2 logs ", ["1", "2", "3"]),
    ("drmaa2 info 1 ", []),
    ("drmaa2 sessions ", ["list", "create", "destroy"]),
    ("drmaa2 sessions destroy ", ["default", "default:docker", "nightly"]),
    ("drmaa2 sessions create ", []),
    ("drmaa2 sessions --contact docker destroy n", ["nightly"]),
    ("drmaa2 monitor ", ["jobs", "machines", "queues"]),
    ("drmaa2 completion ", ["bash", "zsh", "fish"]),
    ("drmaa2 run --name x --", ["--help", "--session", "--contact", "--category", "--name",
                                "--output", "--error", "--input", "--join", "--env", "--workdir",
                                "--array", "--max-parallel", "--hold", "--wait", "--json"]),
    ("drmaa2 run --session nightly -- ech", ["echo"]),  # the job's command: any command
    ("drmaa2 run --wait ech", ["echo"]),
    ("drmaa2 run -- /bin/echo -", []),  # the job's own arguments: no option of drmaa2
]


@pytest.mark.parametrize(("line", "expected"), BASH_CASES, ids=[c[0] for c in BASH_CASES])
def test_bash_completion_proposes(store_env, bash_script, line, expected):
    """The bash function, called as bash calls it on <TAB> (COMP_LINE, COMP_POINT, COMP_WORDS
    split at COMP_WORDBREAKS), proposes these candidates."""
    driver = bash_script + '''
COMP_LINE="$1"; COMP_POINT=${#COMP_LINE}
words="${COMP_LINE//:/ : }"
read -ra COMP_WORDS <<<"${words//=/ = }"
[[ $COMP_LINE == *" " ]] && COMP_WORDS+=("")
COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
_drmaa2 2>/dev/null
printf '%s\\n' "${COMPREPLY[@]}" | sort -u
'''
    r = subprocess.run(["bash", "-c", driver, "bash", line], capture_output=True, text=True,
                       env=store_env, timeout=60)
    assert r.returncode == 0, r.stderr
    got = [w for w in r.stdout.splitlines() if w]
    assert got == sorted(set(expected)), (line, got)


FISH_CASES = [
    ("drmaa2 se", {"serve", "sessions"}),
    ("drmaa2 wait ", {"1", "2", "3"}),
    ("drmaa2 run --session ", {"default", "default:docker", "nightly"}),
    ("drmaa2 run --session=n", {"--session=nightly"}),
    ("drmaa2 run --contact d", {"docker"}),
    ("drmaa2 jobs --state q", {"queued", "queued_held"}),
    ("drmaa2 sessions destroy ", {"default", "default:docker", "nightly"}),
    ("drmaa2 sessions create ", set()),
    ("drmaa2 info 1 ", set()),
    ("drmaa2 run --wait -- ech", {"echo"}),
]


@pytest.mark.skipif(shutil.which("fish") is None, reason="fish is not installed")
@pytest.mark.parametrize(("line", "expected"), FISH_CASES, ids=[c[0] for c in FISH_CASES])
def test_fish_completion_proposes(store_env, line, expected):
    """fish's own `complete -C LINE` (what <TAB> shows) with the script loaded."""
    r = subprocess.run(["fish", "--no-config", "-c",
                        "drmaa2 completion fish | source; complete -C $argv[1]", line],
                       capture_output=True, text=True, env=store_env, timeout=60)
    assert r.returncode == 0, r.stderr
    assert {c.split("\t")[0] for c in r.stdout.splitlines()} == expected


# -- output: run --wait streams it, logs reads it -----------------------------------------------------
def test_run_wait_streams_stdout_and_stderr_apart_and_says_how_it_ended_on_stderr(drmaa2):
    r = drmaa2("run", "--wait", "--", "/bin/sh", "-c", "echo hello; echo oops >&2; exit 3",
               check=False)
    assert r.returncode == 3
    assert r.stdout == "hello\n"  # the job's output alone, as docker run gives it
    assert r.stderr.startswith("oops\n") and "FAILED" in r.stderr


def test_run_wait_streams_only_what_no_file_was_named_for(drmaa2, tmp_path):
    out = tmp_path / "out.txt"
    r = drmaa2("run", "--wait", "--output", str(out), "--", "/bin/sh", "-c",
               "echo to-file; echo to-terminal >&2")
    assert out.read_text() == "to-file\n" and "to-file" not in r.stdout + r.stderr
    assert r.stderr.startswith("to-terminal\n")
    joined = drmaa2("run", "--wait", "--join", "--", "/bin/sh", "-c", "echo a; echo b >&2")
    assert sorted(joined.stdout.split()) == ["a", "b"]


def test_logs_reads_any_job_whole_tailed_or_followed(drmaa2, home):
    # Submitted by a program, read by the command.
    with d2.SessionManager(home=home) as sm, sm.create_job_session("default") as js:
        job = js.run_job(d2.JobTemplate(remote_command="/bin/sh", args=[
            "-c", "echo one; echo err >&2; sleep 1; echo two"]))
        job_id = job.id
    follow = subprocess.Popen([sys.executable, "-m", "pydrmaa2.cli", "logs", "-f", job_id],
                              stdout=subprocess.PIPE, text=True,
                              env=dict(os.environ, PYDRMAA2_HOME=str(home)))
    assert follow.stdout is not None
    assert follow.stdout.readline() == "one\n"  # before the job has ended
    assert follow.wait(30) == 0 and follow.stdout.read() == "two\n"
    assert drmaa2("logs", job_id).stdout == "one\ntwo\n"
    assert drmaa2("logs", "--stderr", job_id).stdout == "err\n"
    assert drmaa2("logs", "--tail", "1", job_id).stdout == "two\n"
    bad = drmaa2("logs", "--tail", "-1", job_id, check=False)
    assert bad.returncode == 2 and "tail -1" in bad.stderr
    drmaa2("reap", job_id)
    gone = drmaa2("logs", job_id, check=False)
    assert gone.returncode == 2 and job_id in gone.stderr
