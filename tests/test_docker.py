"""What only the Docker tracker does, against the real engine: the template and extension
mapping as ``docker inspect`` shows it (drmaa2os's Docker tracker mapping), monitoring of the
engine's host, and the states of many jobs in one listing. What every container engine does is
in test_containers_common.py."""

from __future__ import annotations

import pytest

import pydrmaa2 as d2
from pydrmaa2.testing.targets import TEST_IMAGE
from pydrmaa2.trackers.containers import LABELS
from tests.conftest import require
from tests.test_containers_common import cid_of, containers_of


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


@pytest.fixture(autouse=True)
def nothing_leaks(sm):
    """After every test the engine holds none of the containers of the test's store (the
    session itself comes from conftest's ``js``)."""
    yield
    assert containers_of("docker", sm.home) == []


# -- the template and extension mappings --------------------------------------------------------------
def test_every_template_field_and_extension_reaches_the_container_config(js, target, engine,
                                                                         tmp_path):
    staged = tmp_path / "staged.txt"
    staged.write_text("in\n")
    job = js.run_job(target.sh(
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
    # drmaa2os's -v hostPath:containerPath, as a structured mount (a ':' in a path works).
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


def test_host_namespaces_are_shared_on_request(js, target, engine):
    job = js.run_job(target.template("/bin/true", submit_as_hold=True, extensions={
        "net": "host", "uts": "host", "pid": "host", "ipc": "host"}))
    host = engine.inspect_container(cid_of(job))["HostConfig"]
    assert (host["NetworkMode"], host["UTSMode"], host["PidMode"], host["IpcMode"]) == (
        "host", "host", "host", "host")


# -- the engine ---------------------------------------------------------------------------------------------
def test_monitoring_lists_every_container_and_the_engine_host(sm, js, target, engine):
    job = js.run_job(target.template("/bin/sleep", "60"))
    job.wait_started(target.slow)
    cid = cid_of(job)
    with sm.open_monitoring_session(contact=target.contact) as ms:
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


def test_the_states_of_many_jobs_take_one_listing(js, target):
    jobs = [js.run_job(target.template("/bin/true", submit_as_hold=True)) for _ in range(20)]
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

