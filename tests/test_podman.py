"""What only the Podman tracker does, against the real service: seed 004's mappings as Podman
sees them (extensions, working directory, states), Docker's other extensions, pause-based
suspend, hold as a created container, reap as ``podman rm``, images, monitoring, and a service
that cannot be reached. Every test leaves the service with the containers it found."""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

import pytest

import pydrmaa2 as d2
from pydrmaa2.testing.targets import TEST_IMAGE
from pydrmaa2.trackers.base import Contact
from tests.conftest import end_and_reap, require

try:
    import podman

    from pydrmaa2.trackers import podman as pm
except ImportError:  # no podman-py: ``require`` skips (or fails under PYDRMAA2_REQUIRE)
    podman = pm = None  # type: ignore[assignment]

#: How Podman names the test image (``pydrmaa2-test:latest`` resolves to it).
CANONICAL_IMAGE = f"docker.io/library/{TEST_IMAGE}"


@pytest.fixture(scope="module")
def target():
    return require("podman")


@pytest.fixture(scope="module")
def engine(target):
    """podman-py on the same service, to look at the containers directly."""
    client = podman.PodmanClient(base_url=pm._base_url(Contact.parse(target.contact)))
    yield client
    client.close()


def _container_ids(engine, home: Path) -> set[str]:
    """The containers of pydrmaa2 homes under ``home`` (other programs may use the service)."""
    found = engine.api.get("/containers/json", params={"all": True}).json()
    return {c["Id"] for c in found
            if (c.get("Labels") or {}).get("org.pydrmaa2.home", "").startswith(str(home))}


@pytest.fixture(autouse=True)
def nothing_leaks(engine, tmp_path):
    """After every test the service holds none of the containers the test created."""
    yield
    assert _container_ids(engine, tmp_path) == set()


@pytest.fixture
def js(sm, target):
    session = sm.create_job_session("p", contact=target.contact)
    yield session
    end_and_reap(session)
    session.close()


def sh(script: str, **fields) -> d2.JobTemplate:
    return d2.JobTemplate(remote_command="/bin/sh", args=["-c", script], job_category=TEST_IMAGE,
                          **fields)


def _cid(job: d2.Job) -> str:
    return job.info.extensions["container_id"]


def _inspect(engine, cid: str) -> dict | None:
    r = engine.api.get(f"/containers/{cid}/json")
    return None if r.status_code == 404 else r.json()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- the mapping ---------------------------------------------------------------------------------------
def test_seed_004_extensions_reach_the_container(js, engine, tmp_path):
    port = _free_port()
    out = tmp_path / "out"
    job = js.run_job(sh("id -un; for ns in ipc uts pid; do readlink /proc/self/ns/$ns; done",
                        output_path=str(out), extensions={
                            "user": "nobody", "exposedPorts": f"127.0.0.1:{port}:8080,9090/udp",
                            "privileged": "true", "restart": "no", "ipc": "host", "uts": "host",
                            "pid": "host"}))
    info = job.wait_terminated(30)
    assert info.state is d2.JobState.DONE, info.annotation
    user, *namespaces = out.read_text().splitlines()
    assert user == "nobody" and info.job_owner == "nobody"
    # ipc, uts and pid host: the job shares this host's namespaces (Podman 4.3's inspect
    # misreports the IPC one as "shareable").
    assert namespaces == [os.readlink(f"/proc/self/ns/{ns}") for ns in ("ipc", "uts", "pid")]
    host = _inspect(engine, _cid(job))["HostConfig"]
    assert host["PortBindings"]["8080/tcp"] == [{"HostIp": "127.0.0.1", "HostPort": str(port)}]
    assert host["PortBindings"]["9090/udp"][0]["HostPort"]  # a port the service chose
    assert host["Privileged"] is True
    assert host["RestartPolicy"]["Name"] in ("no", "")


def test_net_shm_size_and_ulimit_extensions_reach_the_job(js, tmp_path):
    out, plain = tmp_path / "out", tmp_path / "plain"
    script = "ls /sys/class/net; df -k /dev/shm | tail -1; ulimit -Sn; ulimit -Hn; ulimit -u"
    job = js.run_job(sh(script, output_path=str(out), extensions={
        "net": "none", "shm-size": "96m", "ulimit": "nofile=1024:2048"}))
    reference = js.run_job(sh("ulimit -u", output_path=str(plain)))
    assert job.wait_terminated(30).state is d2.JobState.DONE, job.info.annotation
    reference.wait_terminated(30)
    lines = out.read_text().splitlines()
    assert lines[0] == "lo"  # net=none: loopback only
    assert lines[1].split()[1] == str(96 * 1024)
    assert lines[2:4] == ["1024", "2048"]
    # The service's other default ulimits stay (Podman drops them when a container sets any).
    assert lines[4] == plain.read_text().strip()


def test_resource_limits_and_staged_files_reach_the_container(js, engine, tmp_path):
    staged = tmp_path / "input.txt"
    staged.write_text("staged in\n")
    out = tmp_path / "out"
    job = js.run_job(sh("cat /data/input.txt", output_path=str(out),
                        stage_in_files={str(staged): "/data/input.txt"},
                        resource_limits={"memory": "64m", "cpus": "0.5", "pids": "50"}))
    assert job.wait_terminated(30).state is d2.JobState.DONE
    assert out.read_text() == "staged in\n"
    host = _inspect(engine, _cid(job))["HostConfig"]
    assert host["Memory"] == 64 << 20 and host["MemorySwap"] == 64 << 20
    assert host["NanoCpus"] == 500_000_000
    assert host["PidsLimit"] == 50


def test_restart_extension_retries_a_failing_job(js, engine):
    job = js.run_job(sh("exit 3", extensions={"restart": "on-failure:2"}))
    info = job.wait_terminated(30)
    assert info.state is d2.JobState.FAILED and info.exit_status == 3
    assert _inspect(engine, _cid(job))["RestartCount"] == 2


def test_rm_extension_removes_the_container_and_keeps_the_job(js, engine, tmp_path):
    out = tmp_path / "out"
    job = js.run_job(sh("echo kept; exit 4", output_path=str(out), extensions={"rm": "TRUE"}))
    info = job.wait_terminated(30)
    assert (info.state, info.exit_status) == (d2.JobState.FAILED, 4)
    assert out.read_text() == "kept\n"
    assert _inspect(engine, info.extensions["container_id"]) is None
    assert job.info.exit_status == 4


def test_gpus_without_a_cdi_spec_is_unsupported_and_nothing_is_created(js):
    if any(any(Path(d).glob("*nvidia*")) for d in ("/etc/cdi", "/var/run/cdi")):
        pytest.skip("this host has an NVIDIA CDI spec: the gpus extension would work")
    with pytest.raises(d2.UnsupportedAttributeError, match="gpus"):
        js.run_job(sh("true", extensions={"gpus": "all"}))
    with pytest.raises(d2.InvalidArgumentError, match="gpus"):
        js.run_job(sh("true", extensions={"gpus": "some"}))
    assert js.get_jobs() == []


@pytest.mark.parametrize(("extensions", "error", "named"), [
    ({"nosuch": "1"}, d2.UnsupportedAttributeError, "nosuch"),
    ({"exposedPorts": "http"}, d2.InvalidArgumentError, "exposedPorts"),
    ({"privileged": "maybe"}, d2.InvalidArgumentError, "privileged"),
    ({"restart": "sometimes"}, d2.InvalidArgumentError, "restart"),
    ({"ipc": "shared"}, d2.InvalidArgumentError, "ipc"),
    ({"uts": "private-ish"}, d2.InvalidArgumentError, "uts"),
    ({"pid": "mine"}, d2.InvalidArgumentError, "pid"),
    ({"rm": "perhaps"}, d2.InvalidArgumentError, "rm"),
    ({"shm-size": "lots"}, d2.InvalidArgumentError, "shm-size"),
    ({"ulimit": "nofile"}, d2.InvalidArgumentError, "ulimit"),
    ({"net": "two words"}, d2.InvalidArgumentError, "net"),
])
def test_unknown_or_malformed_extensions_are_refused_by_name(js, extensions, error, named):
    with pytest.raises(error, match=named):
        js.run_job(sh("true", extensions=extensions))
    with pytest.raises(error, match=named):
        js.run_bulk_jobs(sh("true", extensions=extensions), 1, 3)
    assert js.get_jobs() == []


def test_a_network_the_service_does_not_know_is_refused(js):
    with pytest.raises(d2.InvalidArgumentError, match="no-such-network"):
        js.run_job(sh("true", extensions={"net": "no-such-network"}))
    assert js.get_jobs() == []


def test_working_directory_defaults_to_root(js, engine, tmp_path):
    out = tmp_path / "pwd"
    job = js.run_job(sh("pwd", output_path=str(out)))
    info = job.wait_terminated(30)
    assert out.read_text() == "/\n"
    assert info.extensions["workingdir"] == "/"
    assert _inspect(engine, _cid(job))["Config"]["WorkingDir"] == "/"


def test_missing_image_is_an_error_naming_it(js):
    with pytest.raises(d2.InvalidArgumentError, match="busybx.*podman pull"):
        js.run_job(d2.JobTemplate(remote_command="/bin/true", job_category="busybx:latest"))
    assert js.get_jobs() == []


def test_input_path_is_the_jobs_stdin_byte_for_byte(js, tmp_path):
    data = bytes(range(256)) * 64 + b"\x10\x11 ctrl-p ctrl-q are no detach keys here\n"
    source, out = tmp_path / "in.bin", tmp_path / "out.bin"
    source.write_bytes(data)
    job = js.run_job(d2.JobTemplate(remote_command="/bin/cat", job_category=TEST_IMAGE,
                                    input_path=str(source), output_path=str(out)))
    assert job.wait_terminated(30).state is d2.JobState.DONE
    assert out.read_bytes() == data


def test_job_info_reports_the_container(js, engine):
    job = js.run_job(sh("sleep 0.2; exit 5", candidate_machines=["jobhost"], job_name="named"))
    info = job.wait_terminated(30)
    record = _inspect(engine, _cid(job))
    assert (info.state, info.sub_state, info.exit_status) == (d2.JobState.FAILED, "exited", 5)
    assert info.allocated_machines == ["jobhost"] == [record["Config"]["Hostname"]]
    assert info.job_owner == "root" and info.slots == 1 and info.job_name == "named"
    assert info.submission_time <= info.dispatch_time <= info.finish_time
    assert info.wallclock_time.total_seconds() >= 0.15
    assert info.extensions["category"] == CANONICAL_IMAGE
    assert info.extensions["commandline"] == "/bin/sh -c sleep 0.2; exit 5"
    assert info.extensions["container_id"] == record["Id"]


# -- control ---------------------------------------------------------------------------------------
def test_suspend_pauses_and_resume_unpauses_the_container(js, engine):
    job = js.run_job(d2.JobTemplate(remote_command="/bin/sleep", args=["30"],
                                    job_category=TEST_IMAGE))
    job.wait_started(30)
    cid = _cid(job)
    job.suspend()
    assert _inspect(engine, cid)["State"]["Status"] == "paused"
    assert job.get_state() == (d2.JobState.SUSPENDED, "paused")
    job.resume()
    assert _inspect(engine, cid)["State"]["Status"] == "running"
    assert job.get_state() == (d2.JobState.RUNNING, "running")


def test_terminate_kills_even_a_suspended_container(js):
    job = js.run_job(d2.JobTemplate(remote_command="/bin/sleep", args=["60"],
                                    job_category=TEST_IMAGE))
    job.wait_started(30)
    job.suspend()
    t0 = time.monotonic()
    job.terminate()
    info = job.wait_terminated(30)
    assert time.monotonic() - t0 < 10
    assert info.state is d2.JobState.FAILED
    assert (info.exit_status, info.terminating_signal) == (137, "SIGKILL")
    assert "terminated" in info.annotation


def test_hold_keeps_the_container_created_until_release(js, engine, tmp_path):
    out = tmp_path / "out"
    job = js.run_job(sh("echo released", output_path=str(out), submit_as_hold=True))
    cid = job.info.extensions["container_id"]
    assert _inspect(engine, cid)["State"]["Status"] in ("configured", "created")
    assert job.get_state() == (d2.JobState.QUEUED_HELD, "created")
    job.release()
    assert job.wait_terminated(30).state is d2.JobState.DONE
    assert out.read_text() == "released\n"
    with pytest.raises(d2.InvalidStateError):
        job.hold()


def test_a_released_job_that_cannot_start_fails_with_the_reason(js):
    job = js.run_job(d2.JobTemplate(remote_command="/bin/no-such-program", job_category=TEST_IMAGE,
                                    submit_as_hold=True))
    with pytest.raises(d2.InvalidArgumentError, match="no-such-program"):
        job.release()
    info = job.wait_terminated(10)
    assert info.state is d2.JobState.FAILED
    assert "no-such-program" in info.annotation


def test_the_event_feed_fires_on_a_service_event(js, target, tmp_path):
    job = js.run_job(sh("sleep 30"))
    job.wait_started(30)
    tracker = pm.PodmanTracker(Contact.parse(target.contact), tmp_path)
    feed = tracker.watch([_cid(job)])
    try:
        t0 = time.monotonic()
        job.suspend()
        assert feed.wait(3)
        assert time.monotonic() - t0 < pm.RESYNC_INTERVAL
    finally:
        feed.close()
        tracker.close()
    job.terminate()


def test_reap_is_podman_rm(js, engine):
    job = js.run_job(d2.JobTemplate(remote_command="/bin/true", job_category=TEST_IMAGE))
    job.wait_terminated(30)
    cid = _cid(job)
    assert _inspect(engine, cid) is not None
    job.reap()
    assert _inspect(engine, cid) is None


# -- images, monitoring, the service ----------------------------------------------------------------
def test_job_categories_are_the_local_images(js, engine):
    tags = {t for i in engine.api.get("/images/json").json() for t in i.get("RepoTags") or []}
    assert CANONICAL_IMAGE in js.job_categories
    assert set(js.job_categories) == tags


def test_monitoring_lists_every_container_and_the_host(sm, js, engine, target, tmp_path):
    job = js.run_job(d2.JobTemplate(remote_command="/bin/true", job_category=TEST_IMAGE))
    job.wait_terminated(30)
    foreign = engine.api.post("/containers/create", headers={"Content-Type": "application/json"},
                              data=json.dumps({"image": TEST_IMAGE, "command": ["/bin/true"],
                                               "labels": {"org.pydrmaa2.home": str(tmp_path)}}))
    foreign_id = foreign.json()["Id"]
    try:
        with sm.open_monitoring_session(contact=target.contact) as ms:
            jobs = {i.id: i for i in ms.get_all_jobs()}
            assert jobs[foreign_id].state is d2.JobState.QUEUED
            assert jobs[_cid(job)].state is d2.JobState.DONE
            assert [i.id for i in ms.get_all_jobs(d2.JobInfo(state=d2.JobState.QUEUED))
                    if i.id == foreign_id] == [foreign_id]
            (machine,) = ms.get_all_machines()
            host = engine.api.get("/info").json()["host"]
            assert machine.name == host["hostname"]
            assert machine.phys_memory == host["memTotal"]
            assert machine.extensions["podman_version"]
            assert ms.get_all_queues() == []
    finally:
        engine.api.delete(f"/containers/{foreign_id}")


def test_a_wrong_socket_is_a_communication_error_naming_it(sm):
    with pytest.raises(d2.DrmCommunicationError, match="/nonexistent.sock"):
        sm.create_job_session("nowhere", contact="podman:///nonexistent.sock")
    with pytest.raises(d2.DrmCommunicationError, match="/nonexistent.sock"):
        sm.open_monitoring_session(contact="podman:///nonexistent.sock")
    assert "nowhere" not in sm.job_session_names


def test_a_service_that_does_not_answer_is_a_communication_error(sm, tmp_path):
    dead = tmp_path / "dead.sock"
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(dead))  # a socket file nobody listens on: the service is down
        with pytest.raises(d2.DrmCommunicationError, match=str(dead)):
            sm.create_job_session("down", contact=f"podman://{dead}")


def test_the_default_contact_is_roots_socket_or_the_users(monkeypatch):
    monkeypatch.setattr(pm.os, "geteuid", lambda: 0)
    assert pm._base_url(Contact.parse("podman")) == "unix:///run/podman/podman.sock"
    monkeypatch.setattr(pm.os, "geteuid", lambda: 1000)
    monkeypatch.setenv("XDG_RUNTIME_DIR", "/run/user/1000")
    assert pm._base_url(Contact.parse("podman")) == "unix:///run/user/1000/podman/podman.sock"
    assert pm._base_url(Contact.parse("podman:///tmp/p.sock")) == "unix:///tmp/p.sock"
