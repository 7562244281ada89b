"""What every container engine's tracker does the same, against the real engines (Docker and
Podman): templates and extensions refused before anything is created, hold as a created
container, suspend as pause, output files and stdin, stage-in, limits, JobInfo, rm and reap,
images, an engine that cannot be reached. Each test leaves the engine with no container of its
store. The engine-specific rest is in test_docker.py and test_podman.py."""

from __future__ import annotations

import contextlib
import re
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import pydrmaa2 as d2
from pydrmaa2.testing.targets import TEST_IMAGE, Target
from pydrmaa2.trackers.base import Action, Contact
from pydrmaa2.trackers.containers import LABELS
from tests.conftest import end_and_reap, require

ENGINES = ["docker", "podman"]


@dataclass(frozen=True)
class Engine:
    """What the tests see differently on each engine."""

    #: How the engine names the test image (JobInfo's category, its image listing).
    category: str
    #: Its status words of a created container that has not started.
    created: tuple[str, ...]
    #: Its words for a container not in a state to be paused.
    not_running: str


FACTS = {
    "docker": Engine(TEST_IMAGE, ("created",), "is not running"),
    "podman": Engine(f"docker.io/library/{TEST_IMAGE}", ("configured", "created"),
                     "state improper"),
}


# -- the engines, seen directly -----------------------------------------------------------------------
@contextlib.contextmanager
def engine_client(engine_name: str) -> Iterator:
    """The engine's own client (docker-py's APIClient, podman-py's PodmanClient)."""
    if engine_name == "docker":
        import docker

        client = docker.APIClient(version="auto")
    else:
        import podman

        from pydrmaa2.trackers import podman as pm

        client = podman.PodmanClient(base_url=pm._base_url(Contact.parse(require("podman").contact)))
    try:
        yield client
    finally:
        client.close()


def inspect(engine_name: str, cid: str) -> dict | None:
    """The engine's inspect record of a container, None when it has none."""
    with engine_client(engine_name) as client:
        if engine_name == "docker":
            found = client.containers(all=True, filters={"id": [cid]})
            return client.inspect_container(cid) if found else None
        r = client.api.get(f"/containers/{cid}/json")
        return None if r.status_code == 404 else r.json()


def containers_of(engine_name: str, home: Path) -> list[str]:
    """The ids of the engine's containers labelled with this pydrmaa2 home."""
    label = f"{LABELS['home']}={Path(home).resolve()}"
    with engine_client(engine_name) as client:
        if engine_name == "docker":
            return [c["Id"] for c in client.containers(all=True, filters={"label": label})]
        found = client.api.get("/containers/json", params={
            "all": True, "filters": f'{{"label": ["{label}"]}}'}).json()
        return [c["Id"] for c in found or []]


def images(engine_name: str) -> set[str]:
    """The tags of the engine's images."""
    with engine_client(engine_name) as client:
        listed = client.images() if engine_name == "docker" else client.api.get("/images/json").json()
    return {t for i in listed for t in i.get("RepoTags") or [] if t != "<none>:<none>"}


def wait_exit(engine_name: str, cid: str) -> None:
    """Block until the engine says the container has exited (pydrmaa2 does not look)."""
    with engine_client(engine_name) as client:
        if engine_name == "docker":
            client.wait(cid)
        else:
            client.api.post(f"/containers/{cid}/wait",
                            params={"condition": "exited"}).raise_for_status()


def wait_for_output(engine_name: str, cid: str, text: str) -> None:
    """Block until the container has written ``text`` (follows its log: no polling)."""
    seen = b""
    with engine_client(engine_name) as client:
        if engine_name == "docker":
            chunks = client.logs(cid, stream=True, follow=True)
        else:
            chunks = client.api.get(f"/containers/{cid}/logs", stream=True, params={
                "follow": True, "stdout": True}).iter_content(None)
        for chunk in chunks:
            seen += chunk
            if text.encode() in seen:
                return
    raise AssertionError(f"container {cid[:12]} ended without writing {text!r}: {seen!r}")


# -- fixtures ------------------------------------------------------------------------------------------
# Named fixtures (``name=``): other test modules of the container trackers import them.
@pytest.fixture(name="engine_name", params=ENGINES)
def each_engine(request) -> str:
    """Each container engine in turn (skipped where it is not available)."""
    require(request.param)
    return request.param


@pytest.fixture(name="target")
def engine_target(engine_name) -> Target:
    return require(engine_name)


@pytest.fixture(name="facts")
def engine_facts(engine_name) -> Engine:
    return FACTS[engine_name]


@pytest.fixture(name="js")
def engine_session(sm, engine_name, target):
    """A job session on the engine; afterwards the engine has no container of its store."""
    session = sm.create_job_session(f"containers-{engine_name}", contact=target.contact)
    yield session
    with contextlib.suppress(d2.Drmaa2Error):  # a test may have closed it
        end_and_reap(session)
        session.close()
    assert containers_of(engine_name, sm.home) == []


def cid_of(job: d2.Job) -> str:
    return job.info.extensions["container_id"]


def wait_state(job: d2.Job, state: d2.JobState, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while job.state is not state:
        assert time.monotonic() < deadline, f"{job} is {job.state}, not {state}"
        time.sleep(0.05)


# -- what is refused ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("extensions", "error", "named"), [
    ({"nosuch": "1"}, d2.UnsupportedAttributeError, "nosuch"),
    ({"privileged": "maybe"}, d2.InvalidArgumentError, "privileged 'maybe'"),
    ({"restart": "sometimes"}, d2.InvalidArgumentError, "restart 'sometimes'"),
    ({"rm": "perhaps"}, d2.InvalidArgumentError, "rm 'perhaps'"),
    ({"gpus": "many"}, d2.InvalidArgumentError, "gpus 'many'"),
    ({"shm-size": "lots"}, d2.InvalidArgumentError, "shm-size 'lots'"),
    ({"ulimit": "bogus=1"}, d2.InvalidArgumentError, "bogus"),
    ({"ulimit": "nofile"}, d2.InvalidArgumentError, "ulimit entry 'nofile'"),
    ({"exposedPorts": "http"}, d2.InvalidArgumentError, "exposedPorts entry 'http'"),
    ({"ipc": "everything"}, d2.InvalidArgumentError, "ipc 'everything'"),
    ({"pid": "shared"}, d2.InvalidArgumentError, "pid 'shared'"),
    ({"uts": "private"}, d2.InvalidArgumentError, "uts 'private'"),
    ({"net": "two words"}, d2.InvalidArgumentError, "net 'two words'"),
    ({"rm": "true", "restart": "always"}, d2.InvalidArgumentError, "rm and restart 'always'"),
])
def test_a_bad_extension_is_refused_by_name_and_nothing_is_created(sm, js, target, engine_name,
                                                                  extensions, error, named):
    with pytest.raises(error, match=named):
        js.run_job(target.template("/bin/true", extensions=extensions))
    with pytest.raises(error, match=named):
        js.run_bulk_jobs(target.template("/bin/true", extensions=extensions), 1, 3)
    assert js.get_jobs() == []
    assert containers_of(engine_name, sm.home) == []


@pytest.mark.parametrize(("fields", "error", "named"), [
    ({"resource_limits": {"wallclock_time": "60"}}, d2.UnsupportedAttributeError, "wallclock_time"),
    ({"resource_limits": {"memory": "much"}}, d2.InvalidArgumentError, "much"),
    ({"candidate_machines": ["a", "b"]}, d2.UnsupportedAttributeError, "candidate_machines"),
    ({"stage_out_files": {"/a": "relative/b"}}, d2.InvalidArgumentError, "relative/b"),
    ({"job_category": None}, d2.InvalidArgumentError, "must name a (Docker|Podman) image"),
    ({"working_directory": "relative"}, d2.InvalidArgumentError, "relative"),
    ({"stage_in_files": {"/no/such/file": "/x"}}, d2.InvalidArgumentError, "/no/such/file"),
    ({"input_path": "/no/such/input"}, d2.InvalidArgumentError, "/no/such/input"),
    ({"extensions": {"user": "nosuchuser"}}, d2.InvalidArgumentError, "nosuchuser"),
])
def test_a_template_the_engine_cannot_run_is_refused_and_nothing_is_left(sm, js, target,
                                                                         engine_name, fields,
                                                                         error, named):
    template = target.template("/bin/true")
    for name, value in fields.items():
        setattr(template, name, value)
    with pytest.raises(error, match=named):
        js.run_job(template)
    assert js.get_jobs() == []
    assert containers_of(engine_name, sm.home) == []


def test_a_missing_image_is_named_with_the_engine_and_not_pulled(js, engine_name):
    with pytest.raises(d2.InvalidArgumentError) as e:
        js.run_job(d2.JobTemplate(remote_command="/bin/true", job_category="busybx"))
    message = str(e.value)
    assert "'busybx'" in message and js._tracker.address in message
    assert f"{engine_name} pull" in message
    assert not any("busybx" in t for t in images(engine_name))
    assert js.get_jobs() == []


# -- hold, control --------------------------------------------------------------------------------
def test_submit_as_hold_creates_the_container_and_release_starts_it(js, target, engine_name,
                                                                   facts, tmp_path):
    out = tmp_path / "out"
    job = js.run_job(target.sh("echo released", submit_as_hold=True, output_path=str(out)))
    cid = cid_of(job)
    assert inspect(engine_name, cid)["State"]["Status"] in facts.created
    assert job.get_state() == (d2.JobState.QUEUED_HELD, "created")
    assert job.info.dispatch_time is None
    job.release()
    info = job.wait_terminated(target.slow)
    assert info.state is d2.JobState.DONE
    assert out.read_text() == "released\n"
    with pytest.raises(d2.InvalidStateError):
        job.release()
    with pytest.raises(d2.InvalidStateError):
        job.hold()


def test_find_job_removes_what_an_interrupted_submission_left_and_finds_the_rest(
        js, target, engine_name):
    """A container labelled with a job id that was never started and that the tracker has no
    record of is what a submission left when the engine did not answer its end (its clean-up
    could not run): find_job removes it and says None, so the job is submitted again rather
    than adopted as a container nothing will start. A held job's container (recorded) is
    found."""
    tracker = js._tracker
    held = tracker.submit("900001", target.sh("exit 0"), None, hold=True)
    left = tracker.submit("900002", target.sh("exit 0"), None, hold=True)
    tracker.records.forget(left)  # as submit's clean-up leaves it when the removal failed
    try:
        assert tracker.find_job("900001") == held
        assert tracker.find_job("900002") is None
        assert inspect(engine_name, left) is None
        assert tracker.find_job("900003") is None
    finally:
        for cid in (held, left):
            with contextlib.suppress(d2.Drmaa2Error):
                tracker.remove_container(cid, force=True)
        tracker.records.forget(held)


def test_suspend_pauses_and_resume_unpauses_the_container(js, target, engine_name):
    job = js.run_job(target.template("/bin/sleep", "60"))
    job.wait_started(target.slow)
    cid = cid_of(job)
    job.suspend()
    assert inspect(engine_name, cid)["State"]["Status"] == "paused"
    wait_state(job, d2.JobState.SUSPENDED)
    assert job.get_state()[1] == "paused"
    job.resume()
    assert inspect(engine_name, cid)["State"]["Status"] == "running"
    wait_state(job, d2.JobState.RUNNING)
    with pytest.raises(d2.InvalidStateError):
        job.hold()  # a started container cannot be held
    job.terminate()
    info = job.wait_terminated(target.slow)
    assert info.state is d2.JobState.FAILED
    assert info.exit_status == 137 and info.terminating_signal == "SIGKILL"


def test_terminate_kills_even_a_suspended_container(js, target):
    job = js.run_job(target.template("/bin/sleep", "60"))
    job.wait_started(target.slow)
    job.suspend()
    t0 = time.monotonic()
    job.terminate()
    info = job.wait_terminated(target.slow)
    assert time.monotonic() - t0 < 10
    assert info.state is d2.JobState.FAILED
    assert (info.exit_status, info.terminating_signal) == (137, "SIGKILL")
    assert "terminated" in info.annotation


def test_a_failed_release_ends_the_held_job_failed(js, target):
    job = js.run_job(target.template("/bin/no-such-program", submit_as_hold=True))
    with pytest.raises(d2.InvalidArgumentError, match="no-such-program"):
        job.release()
    info = job.wait_terminated(10)
    assert info.state is d2.JobState.FAILED and "no-such-program" in info.annotation


def test_engine_errors_keep_the_engines_words_and_address(js, target, facts):
    job = js.run_job(target.template("/bin/true", submit_as_hold=True))
    tracker = js._tracker
    with pytest.raises(d2.InvalidStateError, match=facts.not_running) as e:
        tracker.control(cid_of(job), Action.SUSPEND)
    assert tracker.address in str(e.value)
    with pytest.raises(d2.InvalidArgumentError, match="(?i)no such container"):
        tracker.control("0" * 64, Action.RESUME)


# -- output files, stdin, stage-in, limits ------------------------------------------------------------
def test_output_and_error_files_are_complete_for_a_terminated_job(js, target, engine_name,
                                                                  tmp_path):
    out, err = tmp_path / "out", tmp_path / "err"
    job = js.run_job(target.sh("echo started; echo problem >&2; exec sleep 60",
                               output_path=str(out), error_path=str(err)))
    job.wait_started(target.slow)
    wait_for_output(engine_name, cid_of(job), "started")
    job.terminate()
    info = job.wait_terminated(target.slow)
    assert info.state is d2.JobState.FAILED
    assert out.read_text() == "started\n"
    assert err.read_text() == "problem\n"


def test_output_files_are_written_by_whoever_sees_the_end_first(sm, js, target, tmp_path):
    out = tmp_path / "out"
    js.run_job(target.sh("echo once; exit 4", output_path=str(out)))
    name = js.session_name
    js.close()  # the submitter stops looking; another program finds the job ended
    again = d2.SessionManager(home=sm.home).open_job_session(name)
    info = again.get_jobs()[0].wait_terminated(target.slow)
    assert (info.state, info.exit_status) == (d2.JobState.FAILED, 4)
    assert out.read_text() == "once\n"
    out.write_text("changed")  # written once: later looks leave the file alone
    assert again.get_jobs()[0].info.exit_status == 4 and out.read_text() == "changed"
    end_and_reap(again)
    again.close()


def test_input_path_is_fed_to_stdin(js, target, tmp_path):
    # Larger than a pipe's buffer, and the engines' default detach keys (ctrl-p ctrl-q).
    data = "".join(f"line {i}\n" for i in range(20000)).encode() + b"\x10\x11 are no keys\n"
    source, out = tmp_path / "in.bin", tmp_path / "out.bin"
    source.write_bytes(data)
    job = js.run_job(target.template("/bin/cat", input_path=str(source), output_path=str(out)))
    assert job.wait_terminated(target.slow).state is d2.JobState.DONE
    assert out.read_bytes() == data


def test_resource_limits_and_staged_files_reach_the_container(js, target, engine_name, tmp_path):
    staged = tmp_path / "input.txt"
    staged.write_text("staged in\n")
    out = tmp_path / "out"
    job = js.run_job(target.sh("cat /data/input.txt", output_path=str(out),
                               stage_in_files={str(staged): "/data/input.txt"},
                               resource_limits={"memory": "64m", "cpus": "0.5", "pids": "50"}))
    assert job.wait_terminated(target.slow).state is d2.JobState.DONE
    assert out.read_text() == "staged in\n"
    host = inspect(engine_name, cid_of(job))["HostConfig"]
    assert host["Memory"] == 64 << 20 and host["MemorySwap"] == 64 << 20
    assert host["NanoCpus"] == 500_000_000
    assert host["PidsLimit"] == 50


def test_an_out_of_memory_job_is_failed(js, target):
    hog = "a=$(dd if=/dev/zero bs=1M count=64 2>/dev/null | tr '\\0' x); echo ${#a}"
    job = js.run_job(target.sh(hog, resource_limits={"memory": "8m"}))
    info = job.wait_terminated(30)
    assert info.state is d2.JobState.FAILED
    if info.extensions.get("oom_killed"):  # the engine says why (Docker)
        assert info.terminating_signal == "SIGKILL"
        assert "out of memory" in (info.annotation or "")
    else:  # Podman 4.3 reports the kernel's kill as exit 137 only, not OOMKilled
        assert info.exit_status == 137, info


def test_job_and_task_ids_are_set_in_every_container(js, target, tmp_path):
    arr = js.run_bulk_jobs(target.sh('echo "$JOB_ID $TASK_ID"',
                                     output_path=str(tmp_path / "out.$DRMAA2_INDEX$")), 1, 3)
    js.wait_all_terminated(arr.jobs, 30)
    for index, job in enumerate(arr.jobs, start=1):
        assert (tmp_path / f"out.{index}").read_text() == f"{job.id} {index}\n"
    single = js.run_job(target.sh('echo "$JOB_ID ${TASK_ID:-none}"',
                                  output_path=str(tmp_path / "one")))
    single.wait_terminated(target.slow)
    assert (tmp_path / "one").read_text() == f"{single.id} none\n"


# -- JobInfo, rm, reap ------------------------------------------------------------------------------
def test_job_info_reports_the_container(js, target, engine_name, facts):
    job = js.run_job(target.sh("sleep 0.2; exit 2", candidate_machines=["infohost"],
                               working_directory="/tmp", job_name="info",
                               extensions={"user": "65534"}))
    info = job.wait_terminated(target.slow)
    record = inspect(engine_name, cid_of(job))
    assert info.id == job.id and info.job_name == "info"
    assert (info.state, info.sub_state, info.exit_status) == (d2.JobState.FAILED, "exited", 2)
    assert info.slots == 1
    assert info.allocated_machines == ["infohost"] == [record["Config"]["Hostname"]]
    assert info.job_owner == "65534"
    assert info.extensions["workingdir"] == "/tmp"
    assert info.extensions["commandline"] == "/bin/sh -c sleep 0.2; exit 2"
    assert info.extensions["category"] == facts.category
    assert info.extensions["container_id"] == record["Id"]
    assert info.submission_time.tzinfo and info.dispatch_time.tzinfo and info.finish_time.tzinfo
    assert info.submission_time <= info.dispatch_time <= info.finish_time
    assert info.finish_time.isoformat()[:19] == record["State"]["FinishedAt"][:19]
    assert info.wallclock_time == info.finish_time - info.dispatch_time
    assert info.wallclock_time.total_seconds() >= 0.15
    assert info.terminating_signal is None


def test_rm_removes_the_container_yet_the_job_keeps_its_end(js, target, engine_name, tmp_path):
    out = tmp_path / "out"
    job = js.run_job(target.sh("echo bye; exit 5", output_path=str(out),
                               extensions={"rm": "TRUE"}, submit_as_hold=True))
    cid = cid_of(job)
    assert inspect(engine_name, cid)["Config"]["Labels"][LABELS["rm"]] == "true"
    job.release()
    info = job.wait_terminated(target.slow)
    assert (info.state, info.exit_status) == (d2.JobState.FAILED, 5)
    assert out.read_text() == "bye\n"
    assert inspect(engine_name, cid) is None
    assert job.info.exit_status == 5


def test_reap_removes_the_container_and_refuses_a_running_one(js, target, engine_name):
    running = js.run_job(target.template("/bin/sleep", "60"))
    with pytest.raises(d2.InvalidStateError):
        running.reap()
    assert inspect(engine_name, cid_of(running)) is not None
    done = js.run_job(target.template("/bin/true"))
    done.wait_terminated(target.slow)
    cid = cid_of(done)
    done.reap()
    assert inspect(engine_name, cid) is None


# -- the engine ----------------------------------------------------------------------------------------
def test_job_categories_are_the_images_present(js, engine_name, facts):
    assert facts.category in js.job_categories
    assert set(js.job_categories) == images(engine_name)


def test_closing_a_watch_does_not_hang(js, target):
    job = js.run_job(target.template("/bin/sleep", "60"))
    feed = js._tracker.watch([cid_of(job)])
    assert feed.wait(0.2) in (True, False)
    t0 = time.monotonic()
    feed.close()
    assert time.monotonic() - t0 < 2


@pytest.mark.parametrize("where", ["nonexistent.sock", "127.0.0.1:1", "dead.sock"])
def test_an_unreachable_engine_is_a_communication_error_naming_it(sm, engine_name, tmp_path,
                                                                 where):
    if where == "dead.sock":
        address = str(tmp_path / where)  # a socket file nobody listens on: the engine is down
        listener = socket.socket(socket.AF_UNIX)
        listener.bind(address)
        contact = f"{engine_name}://{address}"
    else:
        listener = None
        address = where if ":" in where else f"/{where}"
        contact = f"{engine_name}://{address}"
    try:
        with pytest.raises(d2.DrmCommunicationError, match=re.escape(address)):
            sm.create_job_session("nowhere", contact=contact)
        with pytest.raises(d2.DrmCommunicationError, match=re.escape(address)):
            sm.open_monitoring_session(contact=contact)
    finally:
        if listener is not None:
            listener.close()
    assert "nowhere" not in sm.job_session_names
