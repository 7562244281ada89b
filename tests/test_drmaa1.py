"""libdrmaa (DRMAA 1.0) as clients nobody here wrote use it: drmaa-python 0.7.9's own test suite
and examples, Snakemake's DRMAA executor plugin, a C program; on the process tracker and on
Slurm. Then the semantics a DRMAA v1 program relies on (each job waited for once, across
threads; ids valid across drmaa_exit and drmaa_init), and the template translation's units.

Each client runs in a program of its own (DRMAA 1.0 has one session per process), on a store of
the test's own. drmaa-python's sdist is downloaded from PyPI (its tests are not in the wheel) and
its tests run by pynose, as upstream runs them; Snakemake gets a virtualenv of its own,
``.venv-snakemake`` at the repository's root, made on first use.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tarfile
import textwrap
from pathlib import Path

import pytest

import pydrmaa2 as d2
from pydrmaa2.agent import AgentClient
from pydrmaa2.drmaa1 import _session
from pydrmaa2.drmaa1._constants import STAT_ABORTED, Errno
from pydrmaa2.drmaa1._template import (
    Drmaa1Error,
    Template,
    apply_sbatch_options,
    job_template,
    parse_duration,
    parse_time,
)

from .conftest import end_and_reap, require

REPO = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent / "drmaa1"
DRMAA_PYTHON = "drmaa==0.7.9"
SNAKEMAKE = ["snakemake>=9,<10", "snakemake-executor-plugin-drmaa==0.1.5"]
CONTACTS = ["process", "slurm"]


# -- set-up ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def libdrmaa() -> Path:
    pytest.importorskip("cffi", reason="libdrmaa is built with cffi: pip install 'pydrmaa2[drmaa1]'")
    from pydrmaa2.drmaa1 import library_path

    return library_path()


@pytest.fixture(scope="module")
def drmaa_python_sdist(tmp_path_factory) -> Path:
    """drmaa-python's source distribution, unpacked (its tests and examples are only there)."""
    if importlib.util.find_spec("drmaa") is None:  # not imported here: it loads libdrmaa at once
        pytest.skip(f"drmaa-python is not installed: pip install {DRMAA_PYTHON}")
    where = tmp_path_factory.mktemp("sdist")
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", DRMAA_PYTHON,
                    "--no-binary", ":all:", "--no-deps", "-d", str(where)], check=True)
    (archive,) = where.glob("drmaa-*.tar.gz")
    with tarfile.open(archive) as tar:
        tar.extractall(where, filter="data")
    (root,) = (p for p in where.iterdir() if p.is_dir())
    (root / "examples" / "sleeper.sh").chmod(0o755)
    return root


@pytest.fixture
def contact(request) -> str:
    require(request.param)
    return request.param


@pytest.fixture
def client(tmp_path, libdrmaa, contact):
    """Runs a DRMAA v1 client program on a store (and a HOME) of the test's own; at the end,
    every job left in the drmaa1 session is terminated and reaped."""
    home = tmp_path / "store"
    user_home = tmp_path / "home"
    user_home.mkdir()
    env = dict(os.environ, PYDRMAA2_HOME=str(home), PYDRMAA2_CONTACT=contact,
               DRMAA_LIBRARY_PATH=str(libdrmaa), HOME=str(user_home),
               PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]))

    def run(args: list[str], cwd: Path | None = None, timeout: float = 300,
            extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(args, cwd=cwd or tmp_path, env={**env, **(extra_env or {})},
                              capture_output=True, text=True, timeout=timeout)

    run.env, run.home, run.user_home, run.contact = env, home, user_home, contact  # type: ignore[attr-defined]
    yield run
    if (home / "store.sqlite").exists():
        sm = d2.SessionManager(home=home)
        for name in sm.job_session_names:
            with sm.open_job_session(name) as js:
                end_and_reap(js)
        sm.close()
        AgentClient.for_home(home).close()


def _python(client, code: str, **kwargs) -> subprocess.CompletedProcess:
    return client([sys.executable, "-c", textwrap.dedent(code)], **kwargs)


def _ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result.stdout


# -- drmaa-python ----------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("contact", CONTACTS, indirect=True)
def test_drmaa_python_runs_its_own_test_suite(client, drmaa_python_sdist):
    if importlib.util.find_spec("nose") is None:
        pytest.skip("drmaa-python's tests are nose tests: pip install pynose")
    nosetests = shutil.which("nosetests", path=client.env["PATH"])
    result = client([nosetests, "-v", "test"], cwd=drmaa_python_sdist)
    report = result.stdout + result.stderr
    assert result.returncode == 0, report
    assert re.search(r"^Ran 19 tests in", report, re.M), report
    assert report.rstrip().endswith("OK"), report


#: Each example of drmaa-python's sdist, its arguments and what its output must show.
EXAMPLES = {
    "example1.py": ([], ["A session was started successfully"]),
    "example1.1.py": ([], ["Session was restarted successfully"]),
    "example2.py": ([], ["Your job has been submitted with id"]),
    "example2.1.py": ([], ["Your job has been submitted with id"]),
    "example3.py": ([], ["finished with status True"]),
    "example3.1.py": ([], ["Cleaning up"]),
    "example3.2.py": ([], ["finished with status True"] * 15),
    "example4.py": ([], ["Cleaning up"]),
    "example5.py": ([], ["job finished normally"]),
    "example6.py": ([], ["Supported contact strings: ", "Version 1.0"]),
    "example.py": (["./sleeper.sh", "42", "Simon says:"], ["synchronized with all jobs"]),
}


def _example_cases():
    for contact in CONTACTS:
        for name in EXAMPLES:
            yield pytest.param(contact, name, id=f"{contact}-{name}")


@pytest.mark.slow
@pytest.mark.parametrize(("contact", "example"), list(_example_cases()), indirect=["contact"])
def test_drmaa_python_example_runs(client, drmaa_python_sdist, example):
    examples = drmaa_python_sdist / "examples"
    args, expected = EXAMPLES[example]
    if example == "example.py":
        args = [str(examples / "sleeper.sh"), *args[1:]]
    out = _ok(client([sys.executable, example, *args], cwd=examples))
    for line in set(expected):
        assert out.count(line) >= expected.count(line), f"{example}:\n{out}"
    if example == "example.py":
        # Its jobs wrote into $drmaa_hd_ph$ (HOME): a bulk job's tasks, one file each.
        for suffix in (".1", ".2", ".3", ""):
            text = (client.user_home / f"DRMAA_JOB_OUT{suffix}").read_text()
            assert "Hello World, the answer is 42" in text and "Simon says: Bye world!" in text


# -- Snakemake -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def snakemake_venv() -> Path:
    """A virtualenv with Snakemake, its DRMAA executor plugin and pydrmaa2 (the wheel under test
    when CI names one in PYDRMAA2_WHEEL, else this checkout, editable), made once and given
    pydrmaa2 again when that changes; its own pydrmaa2 builds the libdrmaa it loads."""
    venv = REPO / ".venv-snakemake"
    python = venv / "bin" / "python"
    pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    if not (venv / "bin" / "snakemake").exists():
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        subprocess.run([*pip, *SNAKEMAKE, "cffi>=1.16", "psutil>=5.9", "rich>=13"], check=True)
    wheel = os.environ.get("PYDRMAA2_WHEEL")
    source = ["--force-reinstall", wheel] if wheel else ["-e", str(REPO)]
    stamp = venv / "pydrmaa2-installed-from"
    want = f"{wheel} {os.stat(wheel).st_mtime_ns}" if wheel else f"editable {REPO}"
    if not stamp.exists() or stamp.read_text() != want:
        subprocess.run([*pip, "--no-deps", *source], check=True)
        stamp.write_text(want)
    return venv


@pytest.mark.slow
@pytest.mark.parametrize("contact", CONTACTS, indirect=True)
def test_snakemake_runs_a_workflow_of_dependent_rules(client, snakemake_venv, tmp_path):
    python = snakemake_venv / "bin" / "python"
    lib = _ok(client([str(python), "-c",
                      "from pydrmaa2.drmaa1 import library_path; print(library_path())"])).strip()
    work = tmp_path / "workflow"
    work.mkdir()
    args = [str(snakemake_venv / "bin" / "snakemake"), "--executor", "drmaa", "--jobs", "4",
            "-s", str(HERE / "Snakefile"), "-d", str(work), "--drmaa-log-dir", str(work / "logs")]
    if client.contact == "slurm":
        args.append("--drmaa-args=--ntasks=1 --comment=snakemake-{rule}")  # sbatch options
    result = client(args, extra_env={"DRMAA_LIBRARY_PATH": lib,
                                     "PATH": f"{snakemake_venv / 'bin'}{os.pathsep}{os.environ['PATH']}"})
    log = result.stdout + result.stderr
    assert result.returncode == 0, log
    assert "10 of 10 steps (100%) done" in log, log
    assert (work / "report.txt").read_text().strip() == "30"  # 1 + 4 + 9 + 16
    assert len(re.findall(r"Submitted DRMAA job \d+ with external jobid \d+", log)) == 9, log
    # --drmaa-log-dir is an output path naming a directory: one file per job, named after it.
    assert len(list((work / "logs").glob("snakejob.*.sh.out"))) == 9


# -- a C program -----------------------------------------------------------------------------------


@pytest.mark.parametrize("contact", CONTACTS, indirect=True)
def test_c_program_submits_waits_and_reports(client, libdrmaa, tmp_path):
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler")
    exe = tmp_path / "submit"
    subprocess.run([cc, "-Wall", "-Werror", "-o", str(exe), str(HERE / "submit.c"),
                    f"-I{libdrmaa.parent}", str(libdrmaa), f"-Wl,-rpath,{libdrmaa.parent}"],
                   check=True)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = _ok(client([str(exe), client.contact, str(out_dir), "7"]))
    facts = dict(line.split("=", 1) for line in out.splitlines())
    assert facts["version"] == "1.0" and facts["contact"] == client.contact
    assert facts["waited"] == facts["job_id"]
    assert facts["exited"] == "1" and facts["exit_status"] == "7"
    assert float(facts["rusage.wallclock"]) >= 0 and "rusage.cpu" in facts
    assert facts["second_wait"] == str(int(Errno.INVALID_JOB))   # reaped by the first wait
    assert facts["any_after_all"] == str(int(Errno.INVALID_JOB))  # every task returned once
    assert facts["second_exit"] == str(int(Errno.NO_ACTIVE_SESSION))
    assert (out_dir / "single.out").read_text() == "hello from C\n"
    assert sorted(p.name for p in out_dir.glob("task.*")) == ["task.1", "task.3", "task.5"]
    assert out.count("any=") == 3 and all(line.endswith(":0") for line in out.splitlines()
                                          if line.startswith("any="))


# -- semantics -------------------------------------------------------------------------------------


@pytest.mark.parametrize("contact", ["process"], indirect=True)
def test_threads_submit_and_each_job_is_waited_for_once(client):
    out = _ok(_python(client, """
        import threading, drmaa
        s = drmaa.Session(); s.initialize()
        jt = s.createJobTemplate(); jt.remoteCommand = "/bin/true"
        ids, lock = s.runBulkJobs(jt, 1, 20, 1), threading.Lock()
        def submit():
            mine = [s.runJob(jt) for _ in range(10)]
            with lock:
                ids.extend(mine)
        threads = [threading.Thread(target=submit) for _ in range(4)]
        [t.start() for t in threads]; [t.join() for t in threads]
        got = []
        def reap():
            while True:
                try:
                    info = s.wait(drmaa.Session.JOB_IDS_SESSION_ANY, 60)
                except drmaa.InvalidJobException:
                    return  # none left
                with lock:
                    got.append(info.jobId)
        threads = [threading.Thread(target=reap) for _ in range(4)]
        [t.start() for t in threads]; [t.join() for t in threads]
        assert sorted(got) == sorted(ids), (sorted(got), sorted(ids))
        print("returned", len(got), "of", len(ids))
        s.exit()
    """))
    assert "returned 60 of 60" in out


@pytest.mark.parametrize("contact", ["process"], indirect=True)
def test_job_ids_stay_valid_across_exit_init_and_programs(client):
    first = _ok(_python(client, """
        import drmaa
        s = drmaa.Session(); s.initialize()
        jt = s.createJobTemplate(); jt.remoteCommand = "/bin/sh"; jt.args = ["-c", "exit 4"]
        a, b = s.runJob(jt), s.runJob(jt)
        s.exit(); s.initialize()
        assert s.wait(a).exitStatus == 4  # the same contact's session has the job still
        print(b)
        s.exit()
    """)).strip()
    out = _ok(_python(client, f"""
        import drmaa
        s = drmaa.Session(); s.initialize()
        info = s.wait({first!r}, 60)  # submitted by another program
        print(info.jobId, info.hasExited, info.exitStatus, sorted(info.resourceUsage))
        try:
            s.wait(drmaa.Session.JOB_IDS_SESSION_ANY, 0)  # ANY: this program's jobs only
        except drmaa.InvalidJobException:
            print("none of mine")
        s.exit()
    """))
    assert out.startswith(f"{first} True 4 [") and "'cpu'" in out and "'wallclock'" in out
    assert "none of mine" in out


@pytest.mark.parametrize("contact", ["process"], indirect=True)
def test_status_control_and_errors_as_drmaa_python_sees_them(client):
    out = _ok(_python(client, """
        import time, drmaa
        s = drmaa.Session(); s.initialize()
        jt = s.createJobTemplate(); jt.remoteCommand = "sleep"; jt.args = ["60"]
        jt.jobSubmissionState = drmaa.JobSubmissionState.HOLD_STATE
        held = s.runJob(jt)
        print("held", s.jobStatus(held))
        s.control(held, drmaa.JobControlAction.TERMINATE)
        info = s.wait(held, 60)
        print("aborted", info.wasAborted, info.hasExited, info.hasSignal)
        jt.jobSubmissionState = drmaa.JobSubmissionState.ACTIVE_STATE
        job = s.runJob(jt)
        while s.jobStatus(job) != drmaa.JobState.RUNNING:
            time.sleep(0.05)
        try:
            s.control(job, drmaa.JobControlAction.RESUME)
        except drmaa.ResumeInconsistentStateException:
            print("resume refused")
        s.control(job, drmaa.JobControlAction.SUSPEND)
        print("suspended", s.jobStatus(job))
        s.control(job, drmaa.JobControlAction.TERMINATE)
        info = s.wait(job, 60)
        print("killed", info.hasSignal, info.terminatedSignal)
        try:
            s.jobStatus(job)
        except drmaa.InvalidJobException:
            print("reaped")
        for name, value in (("nativeSpecification", "-p debug"), ("jobCategory", "busybox")):
            jt.nativeSpecification, jt.jobCategory = "", ""
            setattr(jt, name, value)
            try:
                s.runJob(jt)
            except drmaa.InvalidAttributeValueException as e:
                print("refused", name, e)
        try:
            jt.startTime = "tomorrow"
        except drmaa.InvalidAttributeFormatException:
            print("bad time")
        try:
            s.wait("999999", 0)
        except drmaa.InvalidJobException:
            print("unknown job")
        s.exit()
        try:
            s.exit()
        except drmaa.NoActiveSessionException:
            print("no session")
    """))
    assert "held user_on_hold" in out
    assert "aborted True False False" in out
    assert "resume refused" in out and "suspended user_suspended" in out
    assert "killed True SIGKILL" in out and "reaped" in out
    assert "refused nativeSpecification code 14" in out and "takes no native specification" in out
    assert "refused jobCategory code 14" in out and "drmaa_job_category" in out
    assert "bad time" in out and "unknown job" in out and "no session" in out


@pytest.mark.parametrize("contact", ["slurm"], indirect=True)
def test_native_specification_reaches_sbatch(client):
    job_id = _ok(_python(client, """
        import drmaa
        s = drmaa.Session(); s.initialize()
        jt = s.createJobTemplate(); jt.remoteCommand = "/bin/true"
        jt.jobSubmissionState = drmaa.JobSubmissionState.HOLD_STATE
        jt.nativeSpecification = "-J drmaa1-native --comment=from-drmaa1 -n 1"
        print(s.runJob(jt))
        s.exit()
    """)).strip()
    sm = d2.SessionManager(home=client.home)
    with sm.open_job_session("drmaa1-slurm") as js:
        native = d2.Job(js, job_id).info.extensions["native_id"]
    sm.close()
    shown = subprocess.run(["scontrol", "show", "job", native], capture_output=True, text=True,
                           check=True).stdout
    assert "JobName=drmaa1-native" in shown and "Comment=from-drmaa1" in shown, shown


def test_a_missing_c_compiler_is_named(tmp_path, monkeypatch):
    pytest.importorskip("cffi")
    from pydrmaa2.drmaa1 import library_path

    monkeypatch.setenv("PYDRMAA2_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("CC", "/nonexistent/cc")
    with pytest.raises(d2.UnsupportedOperationError, match="needs a C compiler.*nonexistent/cc"):
        library_path()
    assert not list(tmp_path.glob("drmaa1/*/libdrmaa.so"))


def test_drmaa2_libdrmaa_prints_the_library_path(libdrmaa, capsys):
    from pydrmaa2 import cli

    try:
        status = cli.main(["libdrmaa"])
    except SystemExit:
        pytest.skip("the `drmaa2 libdrmaa` subcommand is not in pydrmaa2.cli yet")
    assert status == 0 and capsys.readouterr().out.strip() == str(libdrmaa)


# -- the template translation ----------------------------------------------------------------------


def test_placeholders_host_paths_and_bulk_index_become_drmaa2s():
    t = Template()
    t.set("drmaa_remote_command", "/bin/echo")
    t.set("drmaa_wd", "$drmaa_hd_ph$/work")
    t.set("drmaa_output_path", "somehost:$drmaa_wd_ph$/out.$drmaa_incr_ph$")
    t.set("drmaa_error_path", ":/tmp/err")
    t.set("drmaa_input_path", "/dev/null")
    t.set("drmaa_join_files", "y")
    t.set("drmaa_js_state", "drmaa_hold")
    t.set_vector("drmaa_v_env", ["A=1=2", "B="])
    jt = job_template(t, "process", bulk=True)
    assert jt.working_directory == "$DRMAA2_HOME_DIR$/work"
    assert jt.output_path == "$DRMAA2_WORKING_DIR$/out.$DRMAA2_INDEX$"
    assert (jt.error_path, jt.input_path) == ("/tmp/err", "/dev/null")
    assert jt.join_files and jt.submit_as_hold and jt.job_environment == {"A": "1=2", "B": ""}


def test_output_path_naming_a_directory_is_a_file_named_after_the_job(tmp_path):
    t = Template()
    t.set("drmaa_remote_command", "/bin/echo")
    t.set("drmaa_job_name", "step")
    t.set("drmaa_output_path", f":{tmp_path}")
    assert job_template(t, "process").output_path == f"{tmp_path}/step.out"
    assert job_template(t, "process", bulk=True).output_path == f"{tmp_path}/step.out.$DRMAA2_INDEX$"


def test_attribute_values_are_checked_when_set():
    t = Template()
    for name, value, code in (("drmaa_js_state", "running", Errno.INVALID_ATTRIBUTE_VALUE),
                              ("drmaa_join_files", "yes", Errno.INVALID_ATTRIBUTE_VALUE),
                              ("drmaa_start_time", "noon", Errno.INVALID_ATTRIBUTE_FORMAT),
                              ("drmaa_wct_hlimit", "1h", Errno.INVALID_ATTRIBUTE_FORMAT),
                              ("drmaa_v_argv", "x", Errno.INVALID_ARGUMENT),
                              ("drmaa_no_such", "x", Errno.INVALID_ARGUMENT)):
        with pytest.raises(Drmaa1Error) as e:
            t.set(name, value)
        assert e.value.code == code and name in str(e.value)
    with pytest.raises(Drmaa1Error) as e:
        t.set_vector("drmaa_v_env", ["NOEQUALS"])
    assert e.value.code == Errno.INVALID_ATTRIBUTE_FORMAT


def test_drmaa1_times_and_durations():
    now = dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.timezone.utc)
    assert parse_time("t", "2027/01/02 03:04:05 +01:00", now) == dt.datetime(
        2027, 1, 2, 3, 4, 5, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    assert parse_time("t", "13:30 +00:00", now) == now.replace(hour=13, minute=30)
    assert parse_time("t", "11:00 +00:00", now) == now.replace(hour=11) + dt.timedelta(days=1)
    assert parse_time("t", "15 11:00 +00:00", now) == now.replace(day=15, hour=11)
    assert [parse_duration("d", v) for v in ("90", "2:30", "1:00:05")] == [90, 150, 3605]


def test_native_specification_sbatch_options_become_fields_and_extensions():
    jt = d2.JobTemplate(remote_command="/bin/true")
    apply_sbatch_options(jt, "-p debug -A proj --time=10:00 --mem 1G -n4 --nice=5 "
                             "--exclusive -c 2 --qos=high -w n1,n2 -H")
    assert (jt.queue_name, jt.accounting_id, jt.min_slots, jt.priority) == ("debug", "proj", 4, -5)
    assert jt.resource_limits == {"wallclock_time": "10:00", "memory": "1G"}
    assert jt.candidate_machines == ["n1", "n2"] and jt.submit_as_hold
    assert jt.extensions == {"exclusive": "", "cpus-per-task": "2", "qos": "high"}
    with pytest.raises(Drmaa1Error) as e:
        apply_sbatch_options(jt, "debug")
    assert e.value.code == Errno.INVALID_ATTRIBUTE_VALUE


def test_stat_encodes_exit_status_signal_and_abort():
    done = d2.JobInfo(state=d2.JobState.DONE, exit_status=0)
    failed = d2.JobInfo(state=d2.JobState.FAILED, exit_status=3)
    killed = d2.JobInfo(state=d2.JobState.FAILED, exit_status=137, terminating_signal="SIGKILL")
    never = d2.JobInfo(state=d2.JobState.FAILED)
    s = {k: _session.stat_of(v) for k, v in
         dict(done=done, failed=failed, killed=killed, never=never).items()}
    assert [_session.exited(v) for v in s.values()] == [True, True, False, False]
    assert _session.exit_status(s["failed"]) == 3 and _session.exit_status(s["killed"]) == 137
    assert _session.signaled(s["killed"]) and _session.signal_name(s["killed"]) == "SIGKILL"
    assert _session.aborted(s["never"]) and s["never"] == STAT_ABORTED
    assert _session.signal_number("SIGRTMIN+3") == int(__import__("signal").SIGRTMIN) + 3
