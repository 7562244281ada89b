"""What only the Docker tracker does, against the real engine: seed 001's template, extension,
state and JobInfo mappings as ``docker inspect`` shows them, hold as a created container, output
files, stdin, reap, images, monitoring and an unreachable engine."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import pydrmaa2 as d2
from pydrmaa2._agent import AgentClient
from pydrmaa2.testing.targets import TEST_IMAGE
from pydrmaa2.trackers.containers import LABELS
from pydrmaa2.trackers.base import Action
from tests.conftest import require

SOCKET = "unix:///var/run/docker.sock"


@pytest.fixture(scope="module")
def target():
    return require("docker")


@pytest.fixture(scope="module")
def engine(target):
    """The Docker SDK's low-level client, to look at what the tracker made."""
    import docker

    client = docker.APIClient(version="auto")
    yield client
    client.close()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    h = tmp_path / "home"
    h.mkdir()
    return h


@pytest.fixture
def sm(home: Path, engine):
    manager = d2.SessionManager(home=home)
    yield manager
    manager._notifier_stop.set()
    AgentClient.for_home(home).close()
    # Whatever a test left behind in the engine goes, found by our home label.
    for c in engine.containers(all=True, filters={"label": f"{LABELS['home']}={home.resolve()}"}):
        engine.remove_container(c["Id"], force=True)


@pytest.fixture
def js(sm):
    session = sm.create_job_session("docker", contact="docker")
    yield session
    if not session._closed:
        session.close()


def jt(command: str, *args: str, **fields: object) -> d2.JobTemplate:
    fields.setdefault("job_category", TEST_IMAGE)
    return d2.JobTemplate(remote_command=command, args=list(args), **fields)  # type: ignore[arg-type]


def sh(script: str, **fields: object) -> d2.JobTemplate:
    return jt("/bin/sh", "-c", script, **fields)


def cid_of(job: d2.Job) -> str:
    return job.info.extensions["container_id"]


def ours(engine, home: Path) -> list[dict]:
    return engine.containers(all=True, filters={"label": f"{LABELS['home']}={home.resolve()}"})


def wait_for_output(engine, cid: str, text: str) -> None:
    """Block until the container has written ``text`` (follows its log: no polling)."""
    seen = b""
    for chunk in engine.logs(cid, stream=True, follow=True):
        seen += chunk
        if text.encode() in seen:
            return
    raise AssertionError(f"container {cid[:12]} ended without writing {text!r}: {seen!r}")


def wait_state(job: d2.Job, state: d2.JobState, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while job.state is not state:
        assert time.monotonic() < deadline, f"{job} is {job.state}, not {state}"
        time.sleep(0.05)


# -- the template and extension mappings --------------------------------------------------------------
def test_every_template_field_and_extension_reaches_the_container_config(js, engine, tmp_path):
    staged = tmp_path / "staged.txt"
    staged.write_text("in\n")
    job = js.run_job(sh(
        "true", submit_as_hold=True, job_name="mapped", working_directory="/tmp",
        job_environment={"GREETING": "hi there"}, candidate_machines=["jobhost"],
        stage_in_files={str(staged): "/data/staged.txt"}, min_phys_memory=16 * 1024,
        resource_limits={"memory": "64m", "cpus": "0.5", "pids": "50", "OPEN_FILES": "512:1024"},
        extensions={"user": "nobody", "exposedPorts": "127.0.0.1:18080:80,9090/udp",
                    "net": "bridge", "privileged": "true", "restart": "on-failure:3",
                    "ipc": "shareable", "gpus": "all", "shm-size": "64m",
                    "ulimit": "memlock=-1,stack=67108864"}))
    data = engine.inspect_container(cid_of(job))
    config, host = data["Config"], data["HostConfig"]
    assert data["State"]["Status"] == "created"
    assert config["Image"] == TEST_IMAGE
    assert config["Cmd"] == ["/bin/sh", "-c", "true"]
    assert config["WorkingDir"] == "/tmp"
    assert config["Hostname"] == "jobhost"
    assert config["User"] == "nobody"
    assert "GREETING=hi there" in config["Env"] and f"JOB_ID={job.id}" in config["Env"]
    assert config["Labels"][LABELS["job_id"]] == job.id
    assert config["Labels"][LABELS["job_name"]] == "mapped"
    # Seed 001's -v hostPath:containerPath, as a structured mount (a ':' in a path works).
    assert not host.get("Binds")
    assert [(m["Type"], m["Source"], m["Target"], m.get("ReadOnly", False))
            for m in host["Mounts"]] == [("bind", str(staged), "/data/staged.txt", False)]
    assert host["PortBindings"] == {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "18080"}],
                                    "9090/udp": [{"HostIp": "", "HostPort": ""}]}
    assert set(config["ExposedPorts"]) == {"80/tcp", "9090/udp"}
    assert host["NetworkMode"] == "bridge"
    assert host["Privileged"] is True
    assert host["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 3}
    assert host["IpcMode"] == "shareable"
    assert host["DeviceRequests"][0]["Count"] == -1
    assert host["DeviceRequests"][0]["Capabilities"] == [["gpu"]]
    assert host["ShmSize"] == 64 << 20
    assert {u["Name"]: (u["Soft"], u["Hard"]) for u in host["Ulimits"]} == {
        "memlock": (-1, -1), "stack": (67108864, 67108864), "nofile": (512, 1024)}
    assert host["Memory"] == 64 << 20 and host["MemorySwap"] == 64 << 20
    assert host["MemoryReservation"] == 16 << 20
    assert host["NanoCpus"] == 500_000_000
    assert host["PidsLimit"] == 50
    assert host["AutoRemove"] is False
    job.terminate()
    job.reap()


def test_host_namespaces_are_shared_on_request(js, engine):
    job = js.run_job(jt("/bin/true", submit_as_hold=True,
                        extensions={"net": "host", "uts": "host", "pid": "host", "ipc": "host"}))
    host = engine.inspect_container(cid_of(job))["HostConfig"]
    assert (host["NetworkMode"], host["UTSMode"], host["PidMode"], host["IpcMode"]) == (
        "host", "host", "host", "host")
    job.terminate()
    job.reap()


@pytest.mark.parametrize(("extensions", "error", "named"), [
    ({"nosuch": "1"}, d2.UnsupportedAttributeError, "nosuch"),
    ({"privileged": "maybe"}, d2.InvalidArgumentError, "maybe"),
    ({"restart": "sometimes"}, d2.InvalidArgumentError, "sometimes"),
    ({"rm": "perhaps"}, d2.InvalidArgumentError, "perhaps"),
    ({"gpus": "many"}, d2.InvalidArgumentError, "many"),
    ({"shm-size": "lots"}, d2.InvalidArgumentError, "lots"),
    ({"ulimit": "bogus=1"}, d2.InvalidArgumentError, "bogus"),
    ({"ulimit": "nofile"}, d2.InvalidArgumentError, "nofile"),
    ({"exposedPorts": "http"}, d2.InvalidArgumentError, "http"),
    ({"ipc": "everything"}, d2.InvalidArgumentError, "everything"),
    ({"pid": "shared"}, d2.InvalidArgumentError, "shared"),
    ({"uts": "private"}, d2.InvalidArgumentError, "private"),
    ({"net": "two words"}, d2.InvalidArgumentError, "two words"),
    ({"rm": "true", "restart": "always"}, d2.InvalidArgumentError, "always"),
])
def test_a_bad_extension_is_refused_and_nothing_is_created(js, engine, home, extensions, error,
                                                           named):
    with pytest.raises(error, match=named):
        js.run_job(jt("/bin/true", extensions=extensions))
    with pytest.raises(error, match=named):
        js.run_bulk_jobs(jt("/bin/true", extensions=extensions), 1, 3)
    assert js.get_jobs() == []
    assert ours(engine, home) == []


@pytest.mark.parametrize(("fields", "error", "named"), [
    ({"resource_limits": {"wallclock_time": "60"}}, d2.UnsupportedAttributeError, "wallclock_time"),
    ({"resource_limits": {"memory": "much"}}, d2.InvalidArgumentError, "much"),
    ({"candidate_machines": ["a", "b"]}, d2.UnsupportedAttributeError, "candidate_machines"),
    ({"stage_out_files": {"/a": "relative/b"}}, d2.InvalidArgumentError, "relative/b"),
    ({"job_category": None}, d2.InvalidArgumentError, "must name a Docker image"),
    ({"working_directory": "relative"}, d2.InvalidArgumentError, "relative"),
    ({"stage_in_files": {"/no/such/file": "/x"}}, d2.InvalidArgumentError, "/no/such/file"),
    ({"input_path": "/no/such/input"}, d2.InvalidArgumentError, "/no/such/input"),
    ({"extensions": {"user": "nosuchuser"}}, d2.InvalidArgumentError, "nosuchuser"),
])
def test_a_template_docker_cannot_run_is_refused_and_nothing_is_left(js, engine, home, fields,
                                                                     error, named):
    with pytest.raises(error, match=named):
        js.run_job(jt("/bin/true", **fields))
    assert js.get_jobs() == []
    assert ours(engine, home) == []


def test_a_missing_image_is_named_with_the_engine_and_not_pulled(js, engine, home):
    with pytest.raises(d2.InvalidArgumentError) as e:
        js.run_job(d2.JobTemplate(remote_command="/bin/true", job_category="busybx"))
    message = str(e.value)
    assert "'busybx'" in message and SOCKET in message and "pull" in message
    assert not any("busybx" in t for i in engine.images() for t in i.get("RepoTags") or [])
    assert ours(engine, home) == []


# -- states, control and outputs ------------------------------------------------------------------------
def test_submit_as_hold_creates_the_container_and_release_starts_it(js, engine, tmp_path):
    out = tmp_path / "out"
    job = js.run_job(sh("echo released", submit_as_hold=True, output_path=str(out)))
    cid = cid_of(job)
    assert engine.inspect_container(cid)["State"]["Status"] == "created"
    assert job.get_state() == (d2.JobState.QUEUED_HELD, "created")
    assert job.info.dispatch_time is None
    job.release()
    info = job.wait_terminated(20)
    assert info.state is d2.JobState.DONE
    assert out.read_text() == "released\n"
    with pytest.raises(d2.InvalidStateError):
        job.release()


def test_suspend_pauses_and_resume_unpauses_the_container(js, engine):
    job = js.run_job(jt("/bin/sleep", "60"))
    job.wait_started(20)
    cid = cid_of(job)
    job.suspend()
    assert engine.inspect_container(cid)["State"]["Paused"] is True
    wait_state(job, d2.JobState.SUSPENDED)
    assert job.get_state()[1] == "paused"
    job.resume()
    assert engine.inspect_container(cid)["State"]["Paused"] is False
    wait_state(job, d2.JobState.RUNNING)
    with pytest.raises(d2.InvalidStateError):
        job.hold()  # a started container cannot be held
    job.terminate()
    info = job.wait_terminated(20)
    assert info.state is d2.JobState.FAILED
    assert info.exit_status == 137 and info.terminating_signal == "SIGKILL"


def test_output_and_error_files_are_complete_for_a_terminated_job(js, engine, tmp_path):
    out, err = tmp_path / "out", tmp_path / "err"
    job = js.run_job(sh("echo started; echo problem >&2; exec sleep 60",
                        output_path=str(out), error_path=str(err)))
    job.wait_started(20)
    wait_for_output(engine, cid_of(job), "started")
    job.terminate()
    info = job.wait_terminated(20)
    assert info.state is d2.JobState.FAILED
    assert out.read_text() == "started\n"
    assert err.read_text() == "problem\n"


def test_output_files_are_written_by_whoever_sees_the_end_first(sm, js, tmp_path, home):
    out = tmp_path / "out"
    job = js.run_job(sh("echo once; exit 4", output_path=str(out)))
    js.close()  # the submitter stops looking; another program finds the job ended
    again = d2.SessionManager(home=home).open_job_session("docker")
    info = again.get_jobs()[0].wait_terminated(20)
    assert (info.state, info.exit_status) == (d2.JobState.FAILED, 4)
    assert out.read_text() == "once\n"
    out.write_text("changed")  # written once: later looks leave the file alone
    assert again.get_jobs()[0].info.exit_status == 4 and out.read_text() == "changed"
    again.close()
    del job


def test_input_path_is_fed_to_stdin(js, tmp_path):
    data = "".join(f"line {i}\n" for i in range(20000))  # larger than a pipe's buffer
    (tmp_path / "in").write_text(data)
    out = tmp_path / "out"
    job = js.run_job(jt("/bin/cat", input_path=str(tmp_path / "in"), output_path=str(out)))
    assert job.wait_terminated(20).state is d2.JobState.DONE
    assert out.read_text() == data


def test_stage_in_files_are_visible_in_the_container(js, tmp_path):
    src = tmp_path / "data.txt"
    src.write_text("staged\n")
    out = tmp_path / "out"
    job = js.run_job(jt("/bin/cat", "/in/data.txt", stage_in_files={str(src): "/in/data.txt"},
                        output_path=str(out)))
    assert job.wait_terminated(20).state is d2.JobState.DONE
    assert out.read_text() == "staged\n"


def test_an_out_of_memory_job_is_failed(js, engine):
    hog = "a=$(dd if=/dev/zero bs=1M count=64 2>/dev/null | tr '\\0' x); echo ${#a}"
    job = js.run_job(sh(hog, resource_limits={"memory": "8m"}))
    info = job.wait_terminated(30)
    if not info.extensions.get("oom_killed"):
        pytest.skip(f"the engine did not OOM-kill an 8m container allocating 64m: {info}")
    assert info.state is d2.JobState.FAILED
    assert info.terminating_signal == "SIGKILL"
    assert "out of memory" in (info.annotation or "")


def test_job_and_task_ids_are_set_in_every_container(js, tmp_path):
    arr = js.run_bulk_jobs(sh('echo "$JOB_ID $TASK_ID"',
                              output_path=str(tmp_path / "out.$DRMAA2_INDEX$")), 1, 3)
    js.wait_all_terminated(arr.jobs, 30)
    for index, job in enumerate(arr.jobs, start=1):
        assert (tmp_path / f"out.{index}").read_text() == f"{job.id} {index}\n"
    single = js.run_job(sh('echo "$JOB_ID ${TASK_ID:-none}"', output_path=str(tmp_path / "one")))
    single.wait_terminated(20)
    assert (tmp_path / "one").read_text() == f"{single.id} none\n"


def test_job_info_follows_seed_001(js, engine):
    job = js.run_job(sh("exit 2", candidate_machines=["infohost"], working_directory="/tmp",
                        job_name="info", extensions={"user": "65534"}))
    info = job.wait_terminated(20)
    data = engine.inspect_container(info.extensions["container_id"])
    assert info.id == job.id and info.job_name == "info"
    assert (info.state, info.sub_state, info.exit_status) == (d2.JobState.FAILED, "exited", 2)
    assert info.slots == 1
    assert info.allocated_machines == ["infohost"]
    assert info.job_owner == "65534"
    assert info.extensions["workingdir"] == "/tmp"
    assert info.extensions["commandline"] == "/bin/sh -c exit 2"
    assert info.extensions["category"] == TEST_IMAGE
    assert info.submission_time.tzinfo and info.dispatch_time.tzinfo and info.finish_time.tzinfo
    assert info.submission_time <= info.dispatch_time <= info.finish_time
    assert info.finish_time.isoformat()[:19] == data["State"]["FinishedAt"][:19]
    assert info.dispatch_time.isoformat()[:16] == data["State"]["StartedAt"][:16]
    assert info.wallclock_time == info.finish_time - info.dispatch_time
    assert info.terminating_signal is None


def test_rm_removes_the_container_yet_the_job_keeps_its_end(js, engine, tmp_path):
    out = tmp_path / "out"
    job = js.run_job(sh("echo bye; exit 5", output_path=str(out), extensions={"rm": "true"},
                        submit_as_hold=True))
    cid = cid_of(job)
    assert engine.inspect_container(cid)["Config"]["Labels"][LABELS["rm"]] == "true"
    job.release()
    info = job.wait_terminated(20)
    assert (info.state, info.exit_status) == (d2.JobState.FAILED, 5)
    assert out.read_text() == "bye\n"
    assert not engine.containers(all=True, filters={"id": [cid]})
    assert job.info.exit_status == 5
    job.reap()


def test_reap_removes_the_container_and_refuses_a_running_one(js, engine):
    running = js.run_job(jt("/bin/sleep", "60"))
    with pytest.raises(d2.InvalidStateError):
        running.reap()
    assert engine.containers(all=True, filters={"id": [cid_of(running)]})
    done = js.run_job(jt("/bin/true"))
    done.wait_terminated(20)
    cid = cid_of(done)
    done.reap()
    assert not engine.containers(all=True, filters={"id": [cid]})
    running.terminate()
    running.wait_terminated(20)
    running.reap()


def test_a_failed_release_ends_the_held_job_failed(js, engine):
    job = js.run_job(jt("/bin/no-such-program", submit_as_hold=True))
    with pytest.raises(d2.InvalidArgumentError, match="no-such-program"):
        job.release()
    info = job.wait_terminated(5)
    assert info.state is d2.JobState.FAILED and "no-such-program" in info.annotation
    job.reap()


# -- engine-wide views ---------------------------------------------------------------------------------------
def test_job_categories_are_the_images_present(js, engine):
    assert TEST_IMAGE in js.job_categories


def test_monitoring_lists_every_container_and_the_engine_host(sm, js, engine):
    job = js.run_job(jt("/bin/sleep", "60"))
    job.wait_started(20)
    cid = cid_of(job)
    with sm.open_monitoring_session(contact="docker") as ms:
        # A job of a session of this store is listed under its pydrmaa2 id, the container's
        # id in native_id.
        jobs = {i.id: i for i in ms.get_all_jobs()}
        assert jobs[job.id].state is d2.JobState.RUNNING
        assert jobs[job.id].extensions["native_id"] == cid
        assert jobs[job.id].extensions["category"] == TEST_IMAGE
        assert job.id in {i.id for i in ms.get_all_jobs(d2.JobInfo(state=d2.JobState.RUNNING))}
        (machine,) = ms.get_all_machines()
        facts = engine.info()
        assert machine.name == facts["Name"]
        assert machine.cores_per_socket == facts["NCPU"]
        assert machine.phys_memory == facts["MemTotal"]
        assert machine.machine_os is d2.OS.LINUX
        assert machine.machine_arch is d2.CPU.from_machine(facts["Architecture"])
        assert ms.get_all_queues() == []
    job.terminate()


@pytest.mark.parametrize("contact", ["docker:///nonexistent.sock", "docker://127.0.0.1:1"])
def test_an_unreachable_engine_is_a_communication_error_naming_it(sm, contact):
    address = contact.split("://", 1)[1].lstrip("/")
    with pytest.raises(d2.DrmCommunicationError, match=address):
        sm.create_job_session("nowhere", contact=contact)
    with pytest.raises(d2.DrmCommunicationError, match=address):
        sm.open_monitoring_session(contact=contact)
    assert "nowhere" not in sm.job_session_names


def test_closing_a_watch_does_not_hang(js, home):
    job = js.run_job(jt("/bin/sleep", "60"))
    feed = js._tracker.watch([job.info.extensions["container_id"]])
    assert feed.wait(0.2) in (True, False)
    t0 = time.monotonic()
    feed.close()
    assert time.monotonic() - t0 < 2
    job.terminate()


def test_engine_errors_keep_the_engines_words_and_address(js):
    job = js.run_job(jt("/bin/true", submit_as_hold=True))
    tracker = js._tracker
    with pytest.raises(d2.InvalidStateError, match="is not running") as e:
        tracker.control(cid_of(job), Action.SUSPEND)
    assert SOCKET in str(e.value)
    with pytest.raises(d2.InvalidArgumentError, match="No such container"):
        tracker.control("0" * 64, Action.RESUME)
    job.terminate()


def test_the_states_of_many_jobs_take_one_listing(js):
    jobs = [js.run_job(jt("/bin/true", submit_as_hold=True)) for _ in range(20)]
    tracker = js._tracker
    tids = [cid_of(j) for j in jobs]
    listings = []
    real = tracker.api.containers

    def counting(*args, **kwargs):
        listings.append(kwargs.get("filters"))
        return real(*args, **kwargs)

    tracker.api.containers = counting
    try:
        states = tracker.states(tids)
    finally:
        tracker.api.containers = real
    assert len(listings) == 1
    assert set(states.values()) == {(d2.JobState.QUEUED_HELD, "created")}
    for job in jobs:
        job.terminate()
