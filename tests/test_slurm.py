"""What only the Slurm tracker does, against the real cluster: native arrays with max_parallel,
arrays split beyond MaxArraySize, one squeue/sacct call per poll, the template as sbatch options,
hold/release and suspend/resume through scontrol, reservations, monitoring, extensions and an
unreachable cluster. The pure parsers are tested first, without a cluster."""

from __future__ import annotations

import datetime as dt
import getpass
import os
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

import pydrmaa2 as d2
from pydrmaa2.trackers import slurm
from pydrmaa2.trackers.base import Contact
from pydrmaa2.trackers.slurm import commands, parsers, specs, tables
from tests.conftest import end_and_reap, require

# -- pure parsers and builders (no cluster needed) -------------------------------------------------


def test_state_words_and_reasons_map_to_drmaa2_states():
    assert parsers.job_state("PENDING", "Resources") is d2.JobState.QUEUED
    assert parsers.job_state("PENDING", "JobHeldUser") is d2.JobState.QUEUED_HELD
    assert parsers.job_state("PENDING", "JobHeldAdmin") is d2.JobState.QUEUED_HELD
    assert parsers.job_state("PENDING", "BeginTime", restarts=1) is d2.JobState.REQUEUED
    assert parsers.job_state("PENDING", "JobHeldAdmin", restarts=2) is d2.JobState.REQUEUED_HELD
    assert parsers.job_state("COMPLETING") is d2.JobState.RUNNING
    assert parsers.job_state("SUSPENDED") is d2.JobState.SUSPENDED
    assert parsers.job_state("REQUEUE_HOLD") is d2.JobState.REQUEUED_HELD
    assert parsers.job_state("COMPLETED") is d2.JobState.DONE
    assert parsers.job_state("CANCELLED by 0") is d2.JobState.FAILED
    for word in ("FAILED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "BOOT_FAIL", "DEADLINE",
                 "PREEMPTED"):
        assert parsers.job_state(word) is d2.JobState.FAILED
    assert parsers.job_state("SOMETHING_NEW") is d2.JobState.UNDETERMINED
    assert parsers.sub_state("PENDING", "JobArrayTaskLimit") == "PENDING (JobArrayTaskLimit)"
    assert parsers.sub_state("RUNNING", "None") == "RUNNING"


def test_exit_codes_and_wait_statuses_decode_to_status_and_signal():
    assert parsers.decode_exit_code("3:0") == (3, None)
    assert parsers.decode_exit_code("0:9") == (137, "SIGKILL")
    assert parsers.decode_wait_status("768") == (3, None)
    assert parsers.decode_wait_status("15") == (143, "SIGTERM")


def test_host_lists_and_array_records_expand():
    assert parsers.expand_hostlist("vm") == ["vm"]
    assert parsers.expand_hostlist("n[01-03,7],gpu1") == ["n01", "n02", "n03", "n7", "gpu1"]
    assert parsers.expand_hostlist("None assigned") == []
    assert parsers.expand_array_id("338_[3-5%2]") == ["338_3", "338_4", "338_5"]
    assert parsers.expand_array_id("9_[1,4-8:2]") == ["9_1", "9_4", "9_6", "9_8"]
    assert parsers.expand_array_id("338_4") == ["338_4"]
    # squeue without -r: the pending tasks of 1-29:2 in one record, the last one included
    # (Slurm 22.05's own -r expansion drops task 29).
    pending = {"JobArrayID": "7_[25-29:2]", "ArrayTaskID": "25-29:2", "State": "PENDING"}
    running = {"JobArrayID": "7_23", "ArrayTaskID": "23", "State": "RUNNING"}
    tasks = parsers.one_per_task([running, pending])
    assert [(t["JobArrayID"], t["ArrayTaskID"], t["State"]) for t in tasks] == [
        ("7_23", "23", "RUNNING"), ("7_25", "25", "PENDING"), ("7_27", "27", "PENDING"),
        ("7_29", "29", "PENDING")]


def test_arrays_are_split_only_when_an_index_reaches_max_array_size():
    ids = [str(100 + k) for k in range(10)]
    (one,) = specs.array_chunks(ids, list(range(2, 22, 2)), 1001)
    assert one.array_spec(3) == "2-20:2%3" and one.slurm_indices == list(range(2, 22, 2))
    chunks = specs.array_chunks(ids, list(range(2, 22, 2)), 4)
    assert [c.indices for c in chunks] == [[2, 4, 6, 8], [10, 12, 14, 16], [18, 20]]
    assert [c.array_spec(None) for c in chunks] == ["0-3", "0-3", "0-1"]
    assert chunks[2].job_ids == ["108", "109"]


def test_durations_times_and_key_values_parse():
    assert parsers.parse_duration("1-02:03:04") == dt.timedelta(days=1, hours=2, minutes=3,
                                                                seconds=4)
    assert parsers.parse_duration("00:01.500") == dt.timedelta(seconds=1, milliseconds=500)
    assert parsers.limit_seconds("90") == 90 and parsers.limit_seconds("1:00:00") == 3600
    assert parsers.format_duration(3601) == "0-01:00:01"
    when = parsers.parse_time("2026-01-02T03:04:05")
    assert when is not None and when.tzinfo is not None
    assert parsers.format_time(when) == "2026-01-02T03:04:05"
    kv = parsers.parse_key_values("JobId=5 Comment=a b, c OS=Linux 6.1 #1 SMP State=IDLE")
    assert kv == {"JobId": "5", "Comment": "a b, c", "OS": "Linux 6.1 #1 SMP", "State": "IDLE"}


def test_records_survive_newlines_in_the_free_text_field():
    sep = tables.SEP
    fields = ("A", "B", "Name")
    text = f"1{sep}x{sep}two\nlines{sep}\n2{sep}y{sep}plain{sep}\n"
    assert parsers.records(text, fields, trailing=True) == [
        {"A": "1", "B": "x", "Name": "two\nlines"}, {"A": "2", "B": "y", "Name": "plain"}]


def _run_batch_script(tmp_path: Path, env: dict[str, str], settings: dict[str, str],
                      *argv: str) -> str:
    script = tmp_path / "job.sh"
    script.write_text(specs.BATCH_SCRIPT)
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "PYDRMAA2_SLURM_"))}
    r = subprocess.run(["/bin/sh", str(script), *(f"{k}={v}" for k, v in settings.items()), "--",
                        *argv], env={**clean, **env}, cwd=tmp_path, capture_output=True, text=True,
                       check=True)
    return r.stdout


def test_batch_script_sets_job_and_task_ids_and_runs_the_argv_unchanged(tmp_path):
    show = ('echo "$JOB_ID|${TASK_ID-unset}|$#|$1|$2|$(env | grep -c ^PYDRMAA2_SLURM_)"', "sh",
            "a b", "$HOME")
    # a stray setting in the environment is not the job's
    out = _run_batch_script(tmp_path, {"SLURM_JOB_ID": "77", "PYDRMAA2_SLURM_TASK_ID": "9"},
                            {"PYDRMAA2_SLURM_JOB_ID": "5"}, "/bin/sh", "-c", *show)
    assert out == "5|unset|2|a b|$HOME|0\n"
    # a native array task: Slurm's index is DRMAA2's; JOB_ID from the first id and the step
    out = _run_batch_script(tmp_path, {"SLURM_ARRAY_TASK_ID": "7", "SLURM_ARRAY_JOB_ID": "70"},
                            {"PYDRMAA2_SLURM_FIRST_INDEX": "3", "PYDRMAA2_SLURM_STEP": "2",
                             "PYDRMAA2_SLURM_FIRST_ID": "100"},
                            "/bin/sh", "-c", *show)
    assert out == "102|7|2|a b|$HOME|0\n"
    # a re-indexed chunk: Slurm's index 2 is DRMAA2's 3 + 2 * 2; indexed paths opened here
    (tmp_path / "wd7").mkdir()
    settings = {"PYDRMAA2_SLURM_FIRST_INDEX": "3", "PYDRMAA2_SLURM_STEP": "2",
                "PYDRMAA2_SLURM_REINDEXED": "1",
                "PYDRMAA2_SLURM_WORKDIR": str(tmp_path / "wd$DRMAA2_INDEX$"),
                "PYDRMAA2_SLURM_STDOUT": str(tmp_path / "o.$DRMAA2_INDEX$.$DRMAA2_INDEX$"),
                "PYDRMAA2_SLURM_JOIN": "1", "PYDRMAA2_SLURM_CPU_LIMIT": "9"}
    _run_batch_script(tmp_path, {"SLURM_ARRAY_TASK_ID": "2", "SLURM_ARRAY_JOB_ID": "70"}, settings,
                      "/bin/sh", "-c", 'echo "$TASK_ID $JOB_ID $(pwd)"; echo err >&2; ulimit -t')
    assert (tmp_path / "o.7.7").read_text() == f"7 70_2 {tmp_path / 'wd7'}\nerr\n9\n"


def test_batch_script_takes_settings_literally_and_refuses_a_stray_argument(tmp_path):
    # a value with quotes, $(...) and a newline is assigned, never evaluated
    odd = "x'$(touch pwned)\"`id`\nz"
    (tmp_path / odd).mkdir()
    out = _run_batch_script(tmp_path, {"SLURM_JOB_ID": "1"},
                            {"PYDRMAA2_SLURM_WORKDIR": str(tmp_path / odd)}, "/bin/pwd")
    assert out == f"{tmp_path / odd}\n" and not (tmp_path / "pwned").exists()
    # a command that looks like a setting is still the command (it comes after --)
    with pytest.raises(subprocess.CalledProcessError) as e:
        _run_batch_script(tmp_path, {"SLURM_JOB_ID": "1"}, {}, "PYDRMAA2_SLURM_X=1")
    assert e.value.returncode == 127
    script = tmp_path / "job.sh"
    r = subprocess.run(["/bin/sh", str(script), "/bin/true"], capture_output=True, text=True)
    assert r.returncode == 1 and "unexpected argument '/bin/true'" in r.stderr


def test_environment_file_keeps_any_value_and_contact_options_are_checked(tmp_path):
    assert specs.environment_file({"A": "x,y\nz", "B": ""}) == b"A=x,y\nz\0B=\0"
    with pytest.raises(d2.InvalidArgumentError, match="bogus"):
        slurm.SlurmTracker(Contact.parse("slurm?bogus=1"), tmp_path)
    with pytest.raises(d2.InvalidArgumentError, match="max_array_size"):
        slurm.SlurmTracker(Contact.parse("slurm?max_array_size=zero"), tmp_path)
    with pytest.raises(d2.InvalidArgumentError, match="slurm://CLUSTER"):
        slurm.SlurmTracker(Contact.parse("slurm:///some/socket"), tmp_path)


def test_a_failed_batch_control_asks_only_the_jobs_it_did_not_reach(tmp_path, monkeypatch):
    """Slurm acts on the rest of a list when one job refuses: those are not refusals."""
    tracker = slurm.SlurmTracker(Contact.parse("slurm"), tmp_path)
    ids = [f"70_{i}" for i in range(1, 6)]
    runs: list[list[str]] = []

    def run(argv, what, **kw):
        runs.append(list(argv))
        if argv[2] in (",".join(ids), "70_5"):
            raise d2.InvalidStateError(f"{what}: Job has already finished")
        return ""

    states = {t: (d2.JobState.SUSPENDED, "SUSPENDED") for t in ids[:3]}
    states |= {"70_4": (d2.JobState.RUNNING, "RUNNING"), "70_5": (d2.JobState.DONE, "COMPLETED")}
    monkeypatch.setattr(tracker, "_run", run)
    monkeypatch.setattr(tracker, "states", lambda tids: {t: states[t] for t in tids})
    refused = tracker.control_many(ids, d2.trackers.Action.SUSPEND)
    assert list(refused) == ["70_5"] and "already finished" in str(refused["70_5"])
    assert runs == [["scontrol", "suspend", ",".join(ids)], ["scontrol", "suspend", "70_4"],
                    ["scontrol", "suspend", "70_5"]]


def test_a_command_that_hangs_is_a_communication_error_naming_the_cluster(tmp_path, monkeypatch):
    monkeypatch.setattr(commands, "COMMAND_TIMEOUT", 0.3)
    tracker = slurm.SlurmTracker(Contact.parse("slurm"), tmp_path)
    t0 = time.monotonic()
    with pytest.raises(d2.DrmCommunicationError, match="did not answer within"):
        tracker._run(["sleep", "10"], "testing")
    assert time.monotonic() - t0 < 5
    assert tracker._run(["echo", "quick"], "testing") == "quick\n"
    tracker.close()
    with pytest.raises(d2.DrmCommunicationError, match="not installed"):
        tracker._run(["no-such-slurm-command"], "testing")


def test_a_refusal_becomes_the_drmaa2_error_its_message_means_with_the_message_kept():
    def refused(message: str, hint=None) -> d2.Drmaa2Error:
        with pytest.raises(d2.Drmaa2Error) as e, commands.slurm_errors("doing x", "here", hint):
            raise commands.Refused("scontrol", message)
        return e.value

    e = refused("Job has already finished")
    assert type(e) is d2.InvalidStateError and str(e) == "doing x: Job has already finished"
    e = refused("Invalid partition name specified", lambda m: "queue_name" if "partition" in m
                else None)
    assert type(e) is d2.InvalidArgumentError and str(e).endswith("specified (queue_name)")
    e = refused("Unable to contact slurm controller (connect failure)")
    assert type(e) is d2.DrmCommunicationError and "cannot reach here" in str(e)
    assert type(refused("something new")) is d2.ImplementationSpecificError


def _squeue_record(job: str, state: str, nodes: str = "vm") -> dict[str, str]:
    """One squeue record (SQUEUE_FIELDS) of a job that ran on ``nodes``."""
    r = dict.fromkeys(tables.SQUEUE_FIELDS, "N/A")
    r.update(JobArrayID=job, ArrayJobID=job, JobID=job, State=state, Reason="None", exit_code="0",
             RestartCnt="0", SubmitTime="2026-01-02T03:04:05", StartTime="2026-01-02T03:04:06",
             EndTime="2026-01-02T03:04:08", TimeUsed="0:02", NodeList=nodes, NumCPUs="1",
             Name="job")
    return r


def _sacct_record(job: str, state: str, end: str = "Unknown") -> dict[str, str]:
    """One sacct record (SACCT_FIELDS); ``end`` Unknown: slurmdbd has not recorded the end."""
    r = dict.fromkeys(tables.SACCT_FIELDS, "")
    r.update(JobID=job, JobIDRaw=job, State=state, ExitCode="0:0", Reason="None",
             Submit="2026-01-02T03:04:05", Start="2026-01-02T03:04:06", End=end,
             ElapsedRaw="2", TotalCPU="00:01.250", NodeList="vm", AllocCPUS="1", JobName="job")
    return r


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """A tracker (accounting on) whose squeue and sacct answer from the test's lists, each
    answer used once, the last one again; it counts the sacct calls."""
    tracker = slurm.SlurmTracker(Contact.parse("slurm"), tmp_path)
    tracker._config = {"AccountingStorageType": "accounting_storage/slurmdbd"}
    tracker.shared.fresh = 0  # each read looks (the shared look is tested on its own)
    tracker.squeue_answers, tracker.sacct_answers, tracker.sacct_calls = [], [], []

    def answer(answers: list, calls: list | None) -> list:
        if calls is not None:
            calls.append(time.monotonic())
        return answers.pop(0) if len(answers) > 1 else answers[0]

    monkeypatch.setattr(tracker, "_squeue", lambda bases: answer(tracker.squeue_answers, None))
    monkeypatch.setattr(tracker, "_sacct",
                        lambda bases: answer(tracker.sacct_answers, tracker.sacct_calls))
    yield tracker
    tracker.close()


def test_a_job_ended_in_squeue_is_never_running_while_sacct_catches_up(offline):
    """squeue shows the end first; sacct records it a moment later: the look waits for that
    record (the CPU time) and reports the end, not RUNNING meanwhile."""
    offline.squeue_answers.append([_squeue_record("70", "COMPLETED")])
    offline.sacct_answers += [[_sacct_record("70", "RUNNING")], [_sacct_record("70", "RUNNING")],
                              [_sacct_record("70", "COMPLETED", end="2026-01-02T03:04:08")]]
    assert offline.states(["70"]) == {"70": (d2.JobState.DONE, "COMPLETED")}
    assert len(offline.sacct_calls) == 3
    info = offline.info("70")
    assert info.state is d2.JobState.DONE and info.exit_status == 0
    assert info.cpu_time == dt.timedelta(seconds=1, milliseconds=250)


def test_a_job_sacct_does_not_record_in_time_is_reported_ended_without_cpu_time(offline,
                                                                                monkeypatch):
    monkeypatch.setattr(slurm.tracker, "ACCOUNTING_LAG", 0.3)
    offline.squeue_answers.append([_squeue_record("71", "FAILED")])
    offline.sacct_answers.append([_sacct_record("71", "RUNNING")])
    t0 = time.monotonic()
    assert offline.states(["71"])["71"][0] is d2.JobState.FAILED
    assert 0.3 <= time.monotonic() - t0 < 2
    assert offline.info("71").cpu_time is None
    # the lag is counted from the first look: a later look does not wait again
    t0 = time.monotonic()
    assert offline.states(["71"])["71"][0] is d2.JobState.FAILED
    assert time.monotonic() - t0 < 0.2


def test_a_job_slurmctld_no_longer_holds_is_not_running_whatever_sacct_last_recorded(offline):
    offline.squeue_answers.append([])
    offline.sacct_answers += [[_sacct_record("72", "RUNNING")], [_sacct_record("72", "RUNNING")],
                              [_sacct_record("72", "COMPLETED", end="2026-01-02T03:04:08")]]
    state, sub = offline.states(["72"])["72"]
    assert state is d2.JobState.UNDETERMINED and "unknown to slurmctld" in sub
    assert "no longer known to slurmctld" in offline.info("72").annotation
    assert offline.states(["72"])["72"] == (d2.JobState.DONE, "COMPLETED")


def test_every_tracker_of_a_store_shares_one_look_per_interval(tmp_path, monkeypatch):
    """Reads of many jobs, one by one and by several trackers (programs) of one store, cost one
    squeue while the look is fresh; a job acted on is looked at again at its next read."""
    calls: list[list[str]] = []

    def squeue(bases):
        calls.append(sorted(bases))
        return [_squeue_record(b, "PENDING") for b in bases]

    trackers = [slurm.SlurmTracker(Contact.parse("slurm"), tmp_path) for _ in range(3)]
    for t in trackers:
        t._config = {"AccountingStorageType": "accounting_storage/none"}
        monkeypatch.setattr(t, "_squeue", squeue)
        t.shared.fresh = 60.0
    ids = [str(100 + i) for i in range(200)]
    trackers[0].shared.add(ids)  # as submit() records them
    for i, tid in enumerate(ids):
        assert trackers[i % 3].states([tid])[tid][0] is d2.JobState.QUEUED
    assert calls == [sorted(ids)]  # one look, at every live job of the store
    assert "slurm_looked_at" in trackers[1].info("150").extensions  # how old the answer is
    trackers[2].shared.stale(["150"])
    trackers[1].states(["151"])
    assert len(calls) == 1
    trackers[0].states(["150"])
    assert len(calls) == 2
    for t in trackers:
        t.close()


def test_a_job_key_names_its_store_and_pydrmaa2_ids_and_maps_them_to_slurm_ids(tmp_path):
    tracker = slurm.SlurmTracker(Contact.parse("slurm"), tmp_path / "a")
    other = slurm.SlurmTracker(Contact.parse("slurm"), tmp_path / "b")
    assert tracker.store_key != other.store_key
    script = f"{tmp_path}/my home/slurm/pydrmaa2-job-0123abcd.sh"
    k = tracker.store_key

    def line(key: str) -> str:
        return f"{script} PYDRMAA2_SLURM_KEY={key} PYDRMAA2_SLURM_JOB_ID=7 -- /bin/sh -c x"

    assert tracker.key_tracker_id(line(f"{k}:7"), "501", "501", "7") == "501"
    assert tracker.key_tracker_id(line(f"{k}:7"), "501", "501", "8") is None
    assert other.key_tracker_id(line(f"{k}:7"), "501", "501", "7") is None
    # an array of ids 10..14, Slurm indices 3, 5, ..., 11; one of ids 20, 22 re-indexed from 0
    assert tracker.key_tracker_id(line(f"{k}:10+5:3:2"), "530", "520", "13") == "520_9"
    assert tracker.key_tracker_id(line(f"{k}:10+5:3:2"), "530", "520", "15") is None
    assert tracker.key_tracker_id(line(f"{k}:10+5:3:2"), "530", "520", "9") is None
    assert tracker.key_tracker_id(line(f"{k}:20,22:0:1"), "540", "540", "22") == "540_1"
    # the key is the script's first argument: the job's own arguments cannot forge one
    forged = f"{script} PYDRMAA2_SLURM_JOB_ID=1 -- /bin/echo {line(f'{k}:7')}"
    assert tracker.key_tracker_id(forged, "1", "1", "7") is None
    assert tracker.key_tracker_id(f"sbatch --parsable -H {line(f'{k}:7')}", "2", "2", "7") == "2"
    assert tracker.key_tracker_id("/bin/other.sh PYDRMAA2_SLURM_KEY=x", "3", "3", "7") is None
    assert tracker.key_tracker_id(line(f"{k}:a+b:c:d"), "4", "4", "7") is None


# -- against the cluster ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def target():
    return require("slurm")


@pytest.fixture
def sm(sm, target):
    """conftest's, skipped (failed in CI) without a cluster."""
    return sm


def _cleanup(session: d2.JobSession) -> None:
    """scancel whatever the test left by array job id (a big array goes at once, not task by
    task), then end and reap the rest as every engine's tests do."""
    rows = session._store.job_rows(session.session_name)
    states = session._states_of(rows)
    bases = {r.tracker_id.split("_")[0] for r in rows
             if r.tracker_id and not states[r.id][0].is_terminal}
    if bases:
        subprocess.run(["scancel", *sorted(bases)], check=False)
    end_and_reap(session)


@pytest.fixture
def js(sm, target):
    session = sm.create_job_session("s", contact=target.contact)
    yield session
    _cleanup(session)
    session.close()


@pytest.fixture
def calls(js, monkeypatch):
    """The argv of every Slurm command the session's tracker runs from now on."""
    seen: list[list[str]] = []
    real = js._tracker._run

    def run(argv, what, **kw):
        seen.append(list(argv))
        return real(argv, what, **kw)

    monkeypatch.setattr(js._tracker, "_run", run)
    return seen


def _count(calls: list[list[str]], command: str) -> int:
    return sum(1 for c in calls if c[0] == command)


def _tid(js: d2.JobSession, job: d2.Job) -> str:
    return js._row(job.id).tracker_id


def _scontrol_job(slurm_id: str) -> dict[str, str]:
    out = subprocess.run(["scontrol", "show", "job", "-o", slurm_id], capture_output=True,
                         text=True, check=True).stdout
    return parsers.parse_key_values(out.splitlines()[0])


def _node() -> str:
    return subprocess.run(["sinfo", "-h", "-N", "-o", "%N"], capture_output=True, text=True,
                          check=True).stdout.split()[0]


def _wait_for(predicate, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.2)


def test_native_array_is_one_sbatch_with_max_parallel_and_tasks_are_jobs(js, target, calls,
                                                                         tmp_path):
    out = tmp_path / "task.$DRMAA2_INDEX$"
    arr = js.run_bulk_jobs(target.sh('echo "$TASK_ID $JOB_ID"', output_path=str(out)), 2, 12, 2,
                           max_parallel=2)
    assert _count(calls, "sbatch") == 1
    (sbatch,) = [c for c in calls if c[0] == "sbatch"]
    assert "--array=2-12:2%2" in sbatch
    tids = [_tid(js, j) for j in arr.jobs]
    base = tids[0].split("_")[0]
    assert tids == [f"{base}_{i}" for i in range(2, 14, 2)]
    assert _scontrol_job(tids[-1])["ArrayTaskThrottle"] == "2"
    js.wait_all_terminated(arr.jobs, 120)
    for job, i in zip(arr.jobs, range(2, 14, 2), strict=True):
        assert (tmp_path / f"task.{i}").read_text() == f"{i} {job.id}\n"
        assert job.state is d2.JobState.DONE
        assert job.info.extensions["task_id"] == str(i)


def test_an_observer_never_sees_more_tasks_running_than_max_parallel(js, target):
    """Every look at the tasks' states, while the array runs: one look at them all (get_jobs,
    one squeue) never finds more than max_parallel running, and a task seen ended is never seen
    running again. Tasks looked at one by one (job.state) were surely running between the end
    of the first call that saw one running and the start of the last: never more than
    max_parallel such spans overlap."""
    arr = js.run_bulk_jobs(target.sh("sleep 1"), 1, 6, max_parallel=2)
    stop = threading.Event()
    snapshots: list[int] = []
    seen: dict[str, list[tuple[float, float, d2.JobState]]] = {j.id: [] for j in arr.jobs}
    errors: list[BaseException] = []

    def one_look_at_all() -> None:
        while not stop.is_set():
            snapshots.append(len(js.get_jobs(d2.JobInfo(state=d2.JobState.RUNNING))))

    def one_by_one() -> None:
        while not stop.is_set():
            for job in arr.jobs:
                t0 = time.monotonic()
                state = job.state
                seen[job.id].append((t0, time.monotonic(), state))

    def guarded(look) -> Callable[[], None]:
        def run() -> None:
            try:
                look()
            except BaseException as e:  # noqa: BLE001 - reported by the test below
                errors.append(e)
        return run

    threads = [threading.Thread(target=guarded(f)) for f in (one_look_at_all, one_by_one)]
    for t in threads:
        t.start()
    try:
        js.wait_all_terminated(arr.jobs, 120)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not errors, errors
    assert {j.state for j in arr.jobs} == {d2.JobState.DONE}
    assert snapshots and max(snapshots) <= 2, snapshots
    spans = []
    for job_id, looks in seen.items():
        ended = [end for _, end, st in looks if st.is_terminal]
        later = [start for start, _, st in looks if not st.is_terminal and ended
                 and start > min(ended)]
        assert not later, f"task {job_id} seen {looks}"
        running = [(start, end) for start, end, st in looks if st is d2.JobState.RUNNING]
        if running and running[0][1] < running[-1][0]:
            spans.append((running[0][1], running[-1][0]))
    overlap = max(sum(1 for a, b in spans if a <= t <= b) for t, _ in spans)
    assert overlap <= 2, sorted(spans)


def test_array_beyond_max_array_size_is_split_and_behaves_as_one(sm, target, tmp_path):
    js = sm.create_job_session("split", contact="slurm?max_array_size=4")
    try:
        calls: list[list[str]] = []
        real = js._tracker._run
        js._tracker._run = lambda argv, what, **kw: calls.append(list(argv)) or real(argv, what, **kw)
        for i in range(3, 23, 2):
            (tmp_path / f"wd{i}").mkdir()
        jt = target.sh('echo "$TASK_ID $JOB_ID"; echo "err $TASK_ID" >&2; pwd; sleep 0.2',
                working_directory=str(tmp_path / "wd$DRMAA2_INDEX$"), output_path="out",
                error_path=str(tmp_path / "err.$DRMAA2_INDEX$"))
        arr = js.run_bulk_jobs(jt, 3, 21, 2, max_parallel=2)
        sbatches = [c for c in calls if c[0] == "sbatch"]
        assert len(sbatches) == 3
        assert [next(a for a in c if a.startswith("--array=")) for c in sbatches] == [
            "--array=0-3%2", "--array=0-3%2", "--array=0-1%2"]
        bases = sorted({_tid(js, j).split("_")[0] for j in arr.jobs}, key=int)
        assert len(bases) == 3
        # Later chunks wait for the previous one: max_parallel holds for the whole array.
        assert f"--dependency=afterany:{bases[0]}" in sbatches[1]
        assert f"--dependency=afterany:{bases[1]}" in sbatches[2]
        assert len(arr.jobs) == 10 and js.get_job_array(arr.id).jobs == arr.jobs
        js.wait_all_terminated(arr.jobs, 180)
        for job, i in zip(arr.jobs, range(3, 23, 2), strict=True):
            assert job.state is d2.JobState.DONE
            lines = (tmp_path / f"wd{i}" / "out").read_text().splitlines()
            assert lines == [f"{i} {job.id}", str(tmp_path / f"wd{i}")]
            assert (tmp_path / f"err.{i}").read_text() == f"err {i}\n"
        spans = sorted((j.info.dispatch_time, j.info.finish_time) for j in arr.jobs)
        # chunk k+1 starts when chunk k has ended (Slurm's times are in whole seconds)
        assert spans[4][0] >= spans[3][1] and spans[8][0] >= spans[7][1]
    finally:
        _cleanup(js)
        js.close()


def test_an_array_larger_than_the_clusters_max_array_size(js, target, calls, tmp_path):
    limit = js._tracker.max_array_size
    n = limit + limit // 2
    out = tmp_path / "t.$DRMAA2_INDEX$"
    arr = js.run_bulk_jobs(target.sh('echo "$TASK_ID $JOB_ID"', output_path=str(out),
                              submit_as_hold=True), 1, n)
    assert _count(calls, "sbatch") == 2
    assert len(arr.jobs) == n
    calls.clear()
    held = js.get_jobs(d2.JobInfo(state=d2.JobState.QUEUED_HELD))
    assert len(held) == n
    assert _count(calls, "squeue") == 1 and _count(calls, "sacct") == 0
    last = arr.jobs[-1]
    last.release()
    assert last.wait_terminated(60).state is d2.JobState.DONE
    assert (tmp_path / f"t.{n}").read_text() == f"{n} {last.id}\n"
    bases = sorted({_tid(js, j).split("_")[0] for j in arr.jobs})
    subprocess.run(["scancel", *bases], check=True)
    calls.clear()
    js.wait_all_terminated(arr.jobs, 60)
    assert {j.state for j in arr.jobs[:-1]} == {d2.JobState.FAILED}
    assert arr.jobs[0].info.dispatch_time is None


def test_states_of_many_jobs_take_one_squeue_call_and_forgotten_jobs_one_sacct_call(js, calls,
                                                                                    tmp_path):
    # Pending on a begin time: as many jobs as we like, whatever else the cluster runs.
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1)
    jt = d2.JobTemplate(remote_command="/bin/true", start_time=later)
    jobs = [js.run_job(jt) for _ in range(15)]
    arr = js.run_bulk_jobs(jt, 1, 10)
    everything = jobs + arr.jobs
    calls.clear()
    states = js._states_of(js._store.job_rows(js.session_name))
    assert {st for st, _ in states.values()} == {d2.JobState.QUEUED}
    assert all(sub.startswith("PENDING") for _, sub in states.values())  # reason: BeginTime
    assert [c[0] for c in calls] == ["squeue"]
    assert "-j" in calls[0]  # only this session's jobs
    bases = sorted({_tid(js, j).split("_")[0] for j in everything})
    subprocess.run(["scancel", *bases], check=True)
    js.wait_all_terminated(everything, 60)
    # squeue forgets a job MinJobAge (minutes) after its end; by then accounting has the end.
    _wait_for(lambda: "PENDING" not in subprocess.run(
        ["sacct", "-n", "-X", "-P", "-o", "State", "-j", ",".join(bases)], capture_output=True,
        text=True).stdout, 30)
    # The store's own trackers answer from its shared look (no call at all); a tracker of
    # another store, whose squeue has forgotten the jobs (MinJobAge passed): ONE sacct call.
    mine = slurm.SlurmTracker(Contact.parse("slurm"), js._tracker.home)
    mine._run = lambda argv, what, **kw: pytest.fail(f"asked {argv[0]}")
    assert all(st.is_terminal for st, _ in mine.states([_tid(js, j) for j in everything]).values())
    mine.close()
    fresh = slurm.SlurmTracker(Contact.parse("slurm"), tmp_path / "another-store")
    fresh._squeue = lambda bases: []
    assert fresh.accounting  # reads the configuration once
    seen: list[str] = []
    real = fresh._run
    fresh._run = lambda argv, what, **kw: seen.append(argv[0]) or real(argv, what, **kw)
    tids = [_tid(js, j) for j in everything]
    got = fresh.states(tids)
    assert seen == ["sacct"]
    assert all(got[t][0] is d2.JobState.FAILED and got[t][1].startswith("CANCELLED") for t in tids)
    for t in (tids[0], tids[-1]):  # a job and an array task, cancelled before they started
        info = fresh.info(t)
        assert info.state is d2.JobState.FAILED and info.dispatch_time is None
        assert info.exit_status is None and info.submission_time is not None
    assert seen == ["sacct"]


def test_find_job_finds_what_sbatch_accepted_by_its_pydrmaa2_id(js, tmp_path):
    """A submitter that dies between sbatch and writing the job's row leaves a Slurm job no row
    names: its pydrmaa2 id finds it (squeue, or sacct once slurmctld forgot it), in this store
    only, whether a job, a task of an array, or of an array split beyond MaxArraySize."""
    jt = d2.JobTemplate(remote_command="/bin/true", submit_as_hold=True)
    tracker = js._tracker
    split = slurm.SlurmTracker(Contact.parse("slurm?max_array_size=4"), tracker.home)
    raw: list[str] = []
    try:
        raw.append(tracker.submit("990001", jt, None, hold=True))
        ids = [str(990010 + k) for k in range(5)]
        tasks = tracker.submit_array(ids, jt, [3, 5, 7, 9, 11], 2, hold=True)
        split_ids = [str(990020 + k) for k in range(6)]
        split_tasks = split.submit_array(split_ids, jt, list(range(2, 14, 2)), None, hold=True)
        raw += tasks + split_tasks
        assert len({t.split("_")[0] for t in split_tasks}) == 2  # two sbatch, re-indexed
        assert tracker.find_job("990001") == raw[0]
        for job_id, tid in zip(ids + split_ids, tasks + split_tasks, strict=True):
            assert tracker.find_job(job_id) == tid
        assert tracker.find_job("990015") is None and tracker.find_job("990002") is None
        job = js.run_job(jt)
        arr = js.run_bulk_jobs(jt, 1, 3)
        for j in (job, *arr.jobs):
            assert tracker.find_job(j.id) == _tid(js, j)
        # the same ids in another store are other jobs
        elsewhere = slurm.SlurmTracker(Contact.parse("slurm"), tmp_path / "elsewhere")
        assert elsewhere.find_job("990001") is None and elsewhere.find_job(job.id) is None
        if not tracker.accounting:
            return
        # ended, then forgotten by slurmctld (MinJobAge): accounting still has them
        ended = [raw[0], tasks[0].split("_")[0]]
        subprocess.run(["scancel", *ended], check=True)

        def accounted() -> bool:  # the end, and the submit line (recorded up to 1 s later)
            lines = subprocess.run(["sacct", "-n", "-X", "-P", "-o", "State,SubmitLine", "-j",
                                    ",".join(ended)], capture_output=True, text=True).stdout
            return len(lines.splitlines()) >= 2 and all(
                w.startswith("CANCELLED") and "PYDRMAA2_SLURM_KEY" in w for w in lines.splitlines())

        _wait_for(accounted, 30)
        forgetful = slurm.SlurmTracker(Contact.parse("slurm"), tracker.home)
        real = forgetful._run
        forgetful._run = lambda argv, what, **kw: "" if argv[0] == "squeue" else real(
            argv, what, **kw)
        assert forgetful.find_job("990001") == raw[0]
        assert forgetful.find_job("990013") == tasks[3]
        assert forgetful.find_job("990003") is None
    finally:
        subprocess.run(["scancel", *{t.split("_")[0] for t in raw}], check=False)
        split.close()


def test_template_fields_reach_slurm(js, sm, tmp_path):
    node = _node()
    rs = sm.create_reservation_session("fields", contact="slurm")
    r = rs.request_reservation(d2.ReservationTemplate(
        reservation_name=f"pd2-{uuid.uuid4().hex[:8]}", duration=dt.timedelta(hours=3), min_slots=2))
    try:
        now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
        begin, deadline = now + dt.timedelta(minutes=30), now + dt.timedelta(hours=2)
        job = js.run_job(d2.JobTemplate(
            remote_command="/bin/true", job_name="pd2-fields", working_directory=str(tmp_path),
            queue_name="debug", min_slots=2, max_slots=4, min_phys_memory=100 * 1024, priority=-5,
            candidate_machines=[node], start_time=begin, deadline_time=deadline,
            reservation_id=r.tracker_id, accounting_id="root", email=["a@example.org"],
            email_on_started=True, email_on_terminated=True, rerunnable=False,
            resource_limits={"wallclock_time": "1:30:00", "tmp": "10M"},
            extensions={"comment": "hello, world", "qos": "normal"}, submit_as_hold=True))
        j = _scontrol_job(_tid(js, job))
        assert j["JobName"] == "pd2-fields" and j["WorkDir"] == str(tmp_path)
        assert j["Partition"] == "debug" and j["NumTasks"] == "2"
        assert j["MinMemoryNode"] == "100M" and j["Nice"] == "5"
        assert j["ReqNodeList"] == node and j["Reservation"] == r.tracker_id
        assert j["Account"] == "root" and j["MailUser"] == "a@example.org"
        assert set(j["MailType"].split(",")) >= {"BEGIN", "END", "FAIL"}
        assert j["Requeue"] == "0" and j["TimeLimit"] == "01:30:00" and j["MinTmpDiskNode"] == "10M"
        assert j["Comment"] == "hello, world" and j["QOS"] == "normal"
        assert j["Reason"] in ("JobHeldUser", "JobHeldAdmin")
        assert parsers.parse_time(j["EligibleTime"]) == begin
        assert parsers.parse_time(j["Deadline"]) == deadline
        assert job.state is d2.JobState.QUEUED_HELD
        job.terminate()
        assert job.wait_terminated(60).state is d2.JobState.FAILED
    finally:
        r.terminate()


def test_hold_and_release_use_scontrol_and_apply_to_queued_jobs_only(js, calls):
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1)
    queued = js.run_job(d2.JobTemplate(remote_command="/bin/true", start_time=later))
    assert queued.get_state() == (d2.JobState.QUEUED, "PENDING (BeginTime)")
    queued.hold()
    assert queued.state is d2.JobState.QUEUED_HELD
    assert ["scontrol", "hold", _tid(js, queued)] in calls
    queued.release()
    assert queued.state is d2.JobState.QUEUED
    assert ["scontrol", "release", _tid(js, queued)] in calls
    with pytest.raises(d2.InvalidStateError, match="held"):
        queued.release()
    running = js.run_job(d2.JobTemplate(remote_command="/bin/sleep", args=["60"]))
    running.wait_started(60)
    with pytest.raises(d2.InvalidStateError, match="RUNNING"):
        running.hold()


def test_suspend_and_resume_use_scontrol(js, calls):
    job = js.run_job(d2.JobTemplate(remote_command="/bin/sleep", args=["60"]))
    job.wait_started(60)
    job.suspend()
    assert job.get_state() == (d2.JobState.SUSPENDED, "SUSPENDED")
    job.resume()
    assert job.state is d2.JobState.RUNNING
    tid = _tid(js, job)
    assert ["scontrol", "suspend", tid] in calls and ["scontrol", "resume", tid] in calls
    job.terminate()
    assert ["scancel", tid] in calls
    info = job.wait_terminated(60)
    assert info.state is d2.JobState.FAILED and info.sub_state.startswith("CANCELLED")


def test_array_controls_take_one_command_for_all_tasks(js, calls):
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1)
    arr = js.run_bulk_jobs(d2.JobTemplate(remote_command="/bin/true", start_time=later), 1, 300)
    arr.jobs[1].hold()  # one task held already: the others still make the whole array
    calls.clear()
    arr.hold()
    # all the array's tasks: held as the array (not task by task, which is slow in Slurm)
    assert _count(calls, "squeue") <= 3
    (hold,) = [c for c in calls if c[0] == "scontrol"]
    assert hold == ["scontrol", "hold", _tid(js, arr.jobs[0]).split("_")[0]]
    assert {j.state for j in arr.jobs} == {d2.JobState.QUEUED_HELD}
    # a task that is already released is skipped, the others are released in one command
    arr.jobs[0].release()
    calls.clear()
    arr.release()
    (release,) = [c for c in calls if c[:2] == ["scontrol", "release"]]
    assert len(release[2].split(",")) == 299
    calls.clear()
    arr.terminate()
    assert _count(calls, "scancel") == 1
    js.wait_all_terminated(arr.jobs, 120)
    assert {j.state for j in arr.jobs} == {d2.JobState.FAILED}
    with pytest.raises(d2.InvalidStateError, match="no task"):
        arr.terminate()


def test_job_info_comes_from_accounting(js, target):
    job = js.run_job(target.sh("i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; kill -9 $$",
                        min_slots=2))
    info = job.wait_terminated(60)
    assert info.state is d2.JobState.FAILED
    assert info.terminating_signal == "SIGKILL" and info.exit_status == 137
    assert info.slots == 2 and info.queue_name == "debug" and info.job_owner
    assert info.allocated_machines == [_node()]
    assert info.cpu_time is not None and info.wallclock_time is not None
    assert info.dispatch_time.tzinfo is not None and info.finish_time >= info.dispatch_time
    assert info.extensions["slurm_id"] == _tid(js, job)


def test_reservation_session_creates_lists_reads_and_terminates(sm, js):
    name = f"pd2-{uuid.uuid4().hex[:8]}"
    rs = sm.create_reservation_session("r", contact="slurm")
    r = rs.request_reservation(d2.ReservationTemplate(
        reservation_name=name, duration=dt.timedelta(minutes=10), min_slots=2))
    try:
        info = r.info
        assert info.reservation_id == name and info.reserved_slots == 2
        assert info.reserved_machines == [_node()]
        assert info.users_acl == [getpass.getuser()]
        assert info.reserved_end_time - info.reserved_start_time == dt.timedelta(minutes=10)
        assert abs(info.reserved_start_time - dt.datetime.now(dt.timezone.utc)) < dt.timedelta(
            minutes=1)
        assert [x.id for x in rs.get_reservations()] == [r.id]
        assert rs.get_reservation(r.id).tracker_id == name
        with sm.open_monitoring_session(contact="slurm") as ms:
            assert name in {x.reservation_id for x in ms.get_all_reservations()}
        job = js.run_job(d2.JobTemplate(remote_command="/bin/true", reservation_id=name))
        assert job.wait_terminated(60).state is d2.JobState.DONE
        assert _scontrol_job(_tid(js, job))["Reservation"] == name
        later = rs.request_reservation(d2.ReservationTemplate(
            start_time=dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=5),
            duration=dt.timedelta(minutes=30), min_slots=1))
        assert later.info.reserved_start_time > dt.datetime.now(dt.timezone.utc) + dt.timedelta(
            hours=4)
        later.terminate()
    finally:
        r.terminate()
    assert rs.get_reservations() == []
    gone = subprocess.run(["scontrol", "show", "reservation", name], capture_output=True, text=True)
    assert "not found" in gone.stdout + gone.stderr
    with pytest.raises(d2.InvalidArgumentError, match="no-such-user-x"):
        rs.request_reservation(d2.ReservationTemplate(
            duration=dt.timedelta(minutes=5), users_acl=["no-such-user-x"]))


def test_monitoring_lists_jobs_machines_and_queues(sm, js):
    job = js.run_job(d2.JobTemplate(remote_command="/bin/sleep", args=["60"]))
    job.wait_started(60)
    tid = _tid(js, job)
    with sm.open_monitoring_session(contact="slurm") as ms:
        # A job of a session of this store is listed under its pydrmaa2 id, the Slurm id in
        # native_id.
        jobs = {i.id: i for i in ms.get_all_jobs()}
        assert jobs[job.id].state is d2.JobState.RUNNING
        assert jobs[job.id].extensions["native_id"] == tid
        assert job.id in {i.id for i in ms.get_all_jobs(d2.JobInfo(state=d2.JobState.RUNNING))}
        node = parsers.parse_key_values(subprocess.run(
            ["scontrol", "show", "node", "-o", _node()], capture_output=True, text=True,
            check=True).stdout)
        (m,) = ms.get_all_machines([node["NodeName"]])
        assert m.available and m.sockets == int(node["Sockets"])
        assert m.cores_per_socket == int(node["CoresPerSocket"])
        assert m.threads_per_core == int(node["ThreadsPerCore"])
        assert m.phys_memory == int(node["RealMemory"]) * 1024 * 1024
        assert m.machine_os is d2.OS.LINUX and m.machine_arch is d2.CPU.from_machine(node["Arch"])
        assert m.load is not None
        queues = {q.name: q for q in ms.get_all_queues()}
        assert queues["debug"].extensions["state"] == "UP"


def test_unreachable_cluster_is_a_communication_error_naming_it(sm, tmp_path, monkeypatch):
    with pytest.raises(d2.DrmCommunicationError, match="nosuchcluster"):
        sm.create_job_session("x", contact="slurm://nosuchcluster")
    conf = tmp_path / "slurm.conf"
    text = Path(os.environ.get("SLURM_CONF", "/etc/slurm/slurm.conf")).read_text()
    conf.write_text("\n".join("SlurmctldPort=1" if line.startswith("SlurmctldPort=") else line
                              for line in text.splitlines()) + "\n")
    monkeypatch.setenv("SLURM_CONF", str(conf))
    t0 = time.monotonic()
    with pytest.raises(d2.DrmCommunicationError, match=str(conf)):
        sm.create_job_session("y", contact="slurm")
    assert time.monotonic() - t0 < 30
    assert sm.job_session_names == []


def test_a_named_cluster_is_passed_to_every_command(sm, target, tmp_path, monkeypatch):
    config = parsers.parse_config(subprocess.run(["scontrol", "show", "config"],
                                                 capture_output=True, text=True,
                                                 check=True).stdout)
    name = config["ClusterName"]
    js = sm.create_job_session("named", contact=f"slurm://{name}")
    seen: list[list[str]] = []
    real = subprocess.Popen

    def popen(args, **kw):
        seen.append(list(args))
        return real(args, **kw)

    monkeypatch.setattr(commands.subprocess, "Popen", popen)
    try:
        out = tmp_path / "named"
        job = js.run_job(target.sh("echo on $SLURM_CLUSTER_NAME", output_path=str(out)))
        assert job.wait_terminated(60).state is d2.JobState.DONE
        assert out.read_text() == f"on {name}\n"
        slurm_commands = [a for a in seen if a[0] in ("sbatch", "squeue", "sacct", "scontrol")]
        assert slurm_commands and all(a[1:3] == ["-M", name] for a in slurm_commands)
    finally:
        monkeypatch.undo()
        _cleanup(js)
        js.close()


def test_extensions_are_sbatch_options_and_unknown_ones_are_refused_by_name(js, calls):
    with pytest.raises(d2.UnsupportedAttributeError, match="no-such-option"):
        js.run_job(d2.JobTemplate(remote_command="/bin/true", extensions={"no-such-option": "1"}))
    with pytest.raises(d2.UnsupportedAttributeError, match="queue_name"):
        js.run_job(d2.JobTemplate(remote_command="/bin/true", extensions={"partition": "debug"}))
    assert _count(calls, "sbatch") == 0 and js.get_jobs() == []
    job = js.run_job(d2.JobTemplate(remote_command="/bin/true", submit_as_hold=True,
                                    extensions={"comment": "x=1 y", "contiguous": ""}))
    j = _scontrol_job(_tid(js, job))
    assert j["Comment"] == "x=1 y" and j["Contiguous"] == "1"


def test_resource_limits_map_to_slurm_and_unknown_keys_are_refused(js, target, tmp_path):
    with pytest.raises(d2.UnsupportedAttributeError, match="bogus"):
        js.run_job(d2.JobTemplate(remote_command="/bin/true", resource_limits={"bogus": "1"}))
    with pytest.raises(d2.InvalidArgumentError, match="soon"):
        js.run_job(d2.JobTemplate(remote_command="/bin/true",
                                  resource_limits={"wallclock_time": "soon"}))
    out = tmp_path / "limits"
    job = js.run_job(target.sh("ulimit -t", output_path=str(out),
                        resource_limits={"wallclock_time": "120", "cpu_time": "7"}))
    assert job.wait_terminated(60).state is d2.JobState.DONE
    assert out.read_text() == "7\n"
    assert _scontrol_job(_tid(js, job))["TimeLimit"] == "00:02:00"


def test_environment_values_with_commas_and_newlines_reach_the_job(js, target, tmp_path):
    out = tmp_path / "env"
    env = {"A": "x,y=z", "B": "two\nlines", "C": "$HOME;"}
    job = js.run_job(target.sh('printf "%s|%s|%s|%s" "$A" "$B" "$C" "${TASK_ID-unset}"',
                        output_path=str(out), job_environment=env))
    job.wait_terminated(60)
    assert out.read_text() == "x,y=z|two\nlines|$HOME;|unset"


def test_slurm_refusals_name_the_template_value_and_create_nothing(js):
    with pytest.raises(d2.InvalidArgumentError, match="nopartition"):
        js.run_job(d2.JobTemplate(remote_command="/bin/true", queue_name="nopartition"))
    with pytest.raises(d2.InvalidArgumentError, match="noreservation"):
        js.run_job(d2.JobTemplate(remote_command="/bin/true", reservation_id="noreservation"))
    with pytest.raises(d2.UnsupportedAttributeError, match="machine_arch"):
        js.run_job(d2.JobTemplate(remote_command="/bin/true", machine_arch=d2.CPU.ARM64))
    assert js.get_jobs() == []


def test_percent_signs_in_paths_are_literal(js, target, tmp_path):
    out = tmp_path / "100%j.txt"
    job = js.run_job(target.sh("echo ok", output_path=str(out)))
    job.wait_terminated(60)
    assert out.read_text() == "ok\n"
