"""What only the Podman tracker does, against the real service: drmaa2os's Podman tracker
mapping as Podman sees it (extensions, working directory, a restart policy's restarts), Docker's
other extensions as libpod takes them, GPUs as CDI devices, the service's event stream and
monitoring, and the default socket. What every container engine does is in
test_containers_common.py; every test leaves the service with the containers it found."""

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
from tests.conftest import require
from tests.test_containers_common import FACTS, cid_of, engine_client, inspect

try:
    from pydrmaa2.trackers import podman as pm
except ImportError:  # no podman-py: ``require`` skips (or fails under PYDRMAA2_REQUIRE)
    pm = None  # type: ignore[assignment]


@pytest.fixture(scope="module")
def target():
    return require("podman")


def _container_ids(home: Path) -> set[str]:
    """The containers of pydrmaa2 homes under ``home`` (other programs may use the service)."""
    with engine_client("podman") as client:
        found = client.api.get("/containers/json", params={"all": True}).json()
    return {c["Id"] for c in found
            if (c.get("Labels") or {}).get("org.pydrmaa2.home", "").startswith(str(home))}


@pytest.fixture(autouse=True)
def nothing_leaks(target, tmp_path):
    """After every test the service holds none of the containers the test created."""
    yield
    assert _container_ids(tmp_path) == set()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- the mapping ---------------------------------------------------------------------------------------
def test_user_ports_privileged_and_host_namespaces_reach_the_container(js, target, tmp_path):
    port = _free_port()
    out = tmp_path / "out"
    script = "id -un; for ns in ipc uts pid; do readlink /proc/self/ns/$ns; done"
    job = js.run_job(target.sh(script, output_path=str(out), extensions={
        "user": "nobody", "exposedPorts": f"127.0.0.1:{port}:8080,9090/udp",
        "privileged": "true", "restart": "no", "ipc": "host", "uts": "host", "pid": "host"}))
    info = job.wait_terminated(30)
    assert info.state is d2.JobState.DONE, info.annotation
    user, *namespaces = out.read_text().splitlines()
    assert user == "nobody" and info.job_owner == "nobody"
    # ipc, uts and pid host: the job shares this host's namespaces (Podman 4.3's inspect
    # misreports the IPC one as "shareable").
    assert namespaces == [os.readlink(f"/proc/self/ns/{ns}") for ns in ("ipc", "uts", "pid")]
    host = inspect("podman", cid_of(job))["HostConfig"]
    assert host["PortBindings"]["8080/tcp"] == [{"HostIp": "127.0.0.1", "HostPort": str(port)}]
    assert host["PortBindings"]["9090/udp"][0]["HostPort"]  # a port the service chose
    assert host["Privileged"] is True
    assert host["RestartPolicy"]["Name"] in ("no", "")


def test_net_shm_size_and_ulimit_extensions_reach_the_job(js, target, tmp_path):
    out, plain = tmp_path / "out", tmp_path / "plain"
    script = "ls /sys/class/net; df -k /dev/shm | tail -1; ulimit -Sn; ulimit -Hn; ulimit -u"
    job = js.run_job(target.sh(script, output_path=str(out), extensions={
        "net": "none", "shm-size": "96m", "ulimit": "nofile=1024:2048"}))
    reference = js.run_job(target.sh("ulimit -u", output_path=str(plain)))
    assert job.wait_terminated(30).state is d2.JobState.DONE, job.info.annotation
    reference.wait_terminated(30)
    lines = out.read_text().splitlines()
    assert lines[0] == "lo"  # net=none: loopback only
    assert lines[1].split()[1] == str(96 * 1024)
    assert lines[2:4] == ["1024", "2048"]
    # The service's other default ulimits stay (Podman drops them when a container sets any).
    assert lines[4] == plain.read_text().strip()


def test_restart_extension_retries_a_failing_job(js, target):
    job = js.run_job(target.sh("exit 3", extensions={"restart": "on-failure:2"}))
    info = job.wait_terminated(30)
    assert info.state is d2.JobState.FAILED and info.exit_status == 3
    assert inspect("podman", cid_of(job))["RestartCount"] == 2


def test_gpus_without_a_cdi_spec_is_unsupported_and_nothing_is_created(js, target):
    if any(any(Path(d).glob("*nvidia*")) for d in ("/etc/cdi", "/var/run/cdi")):
        pytest.skip("this host has an NVIDIA CDI spec: the gpus extension would work")
    with pytest.raises(d2.UnsupportedAttributeError, match="gpus"):
        js.run_job(target.sh("true", extensions={"gpus": "all"}))
    with pytest.raises(d2.InvalidArgumentError, match="gpus"):
        js.run_job(target.sh("true", extensions={"gpus": "some"}))
    assert js.get_jobs() == []


def test_a_network_the_service_does_not_know_is_refused(js, target):
    with pytest.raises(d2.InvalidArgumentError, match="no-such-network"):
        js.run_job(target.sh("true", extensions={"net": "no-such-network"}))
    assert js.get_jobs() == []


def test_working_directory_defaults_to_root(js, target, tmp_path):
    out = tmp_path / "pwd"
    job = js.run_job(target.sh("pwd", output_path=str(out)))
    info = job.wait_terminated(30)
    assert out.read_text() == "/\n"
    assert info.extensions["workingdir"] == "/"
    assert inspect("podman", cid_of(job))["Config"]["WorkingDir"] == "/"


def test_input_path_is_the_jobs_stdin_byte_for_byte(js, target, tmp_path):
    # Every byte value reaches the output file (Docker's log keeps text only).
    data = bytes(range(256)) * 64 + b"\x10\x11 ctrl-p ctrl-q are no detach keys here\n"
    source, out = tmp_path / "in.bin", tmp_path / "out.bin"
    source.write_bytes(data)
    job = js.run_job(target.template("/bin/cat", input_path=str(source), output_path=str(out)))
    assert job.wait_terminated(target.slow).state is d2.JobState.DONE
    assert out.read_bytes() == data


# -- the service ----------------------------------------------------------------------------------------
def test_the_event_feed_fires_on_a_service_event(js, target, tmp_path):
    job = js.run_job(target.sh("sleep 30"))
    job.wait_started(30)
    tracker = pm.PodmanTracker(Contact.parse(target.contact), tmp_path)
    feed = tracker.watch([cid_of(job)])
    try:
        t0 = time.monotonic()
        job.suspend()
        assert feed.wait(3)
        assert time.monotonic() - t0 < pm.RESYNC_INTERVAL
    finally:
        feed.close()
        tracker.close()
    job.terminate()


def test_monitoring_lists_every_container_and_the_host(sm, js, target, tmp_path):
    job = js.run_job(target.template("/bin/true"))
    job.wait_terminated(target.slow)
    with engine_client("podman") as engine:
        foreign = engine.api.post(
            "/containers/create", headers={"Content-Type": "application/json"},
            data=json.dumps({"image": TEST_IMAGE, "command": ["/bin/true"],
                             "labels": {"org.pydrmaa2.home": str(tmp_path)}}))
        foreign_id = foreign.json()["Id"]
        try:
            with sm.open_monitoring_session(contact=target.contact) as ms:
                jobs = {i.id: i for i in ms.get_all_jobs()}
                assert jobs[foreign_id].state is d2.JobState.QUEUED
                assert jobs[cid_of(job)].state is d2.JobState.DONE
                assert jobs[cid_of(job)].extensions["category"] == FACTS["podman"].category
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


def test_the_default_contact_is_roots_socket_or_the_users(monkeypatch):
    monkeypatch.setattr(pm.os, "geteuid", lambda: 0)
    assert pm._base_url(Contact.parse("podman")) == "unix:///run/podman/podman.sock"
    monkeypatch.setattr(pm.os, "geteuid", lambda: 1000)
    monkeypatch.setenv("XDG_RUNTIME_DIR", "/run/user/1000")
    assert pm._base_url(Contact.parse("podman")) == "unix:///run/user/1000/podman/podman.sock"
    assert pm._base_url(Contact.parse("podman:///tmp/p.sock")) == "unix:///tmp/p.sock"

