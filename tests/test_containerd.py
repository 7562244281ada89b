"""What only the containerd tracker does, against the real daemon: its state and control tables
as containerd sees them, the image config, hold as a created task, terminate's grace period, reap
leaving nothing behind, shim-written files, limits, CPU time, stage-out from the snapshot,
monitoring and a missing daemon."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import os
import re
import socket
import subprocess
import tarfile
import time

import pytest

import pydrmaa2 as d2
from pydrmaa2.testing.targets import TEST_IMAGE
from tests.conftest import require

try:
    from pydrmaa2.trackers import containerd as cd
    from pydrmaa2.trackers.containerd import api, tracker
except ImportError:  # no grpcio/protobuf: ``require`` skips (or fails under PYDRMAA2_REQUIRE)
    cd = api = tracker = None  # type: ignore[assignment]

#: An image made by the fixture below: the test image's layer with a config of its own.
ENTRY_IMAGE = "pydrmaa2-entrypoint-test:latest"


@pytest.fixture(scope="module")
def target():
    return require("containerd")


@pytest.fixture(scope="module")
def engine(target):
    """A client of the tracker's own API module, to look at containerd directly."""
    client = api.Client(f"unix://{cd.DEFAULT_SOCKET}", cd.DEFAULT_NAMESPACE)
    yield client
    client.close()


def _snapshots(engine) -> set[str]:
    req = api.msg("containerd.services.snapshots.v1.ListSnapshotsRequest",
                  snapshotter=cd.DEFAULT_SNAPSHOTTER)
    return {i.name for r in engine.stream("snapshots.List", req) for i in r.info}


def _containers(engine) -> set[str]:
    r = engine.call("containers.List",
                    api.msg("containerd.services.containers.v1.ListContainersRequest"))
    return {c.id for c in r.containers}


def _task_status(engine, cid: str) -> str | None:
    """The name of the task's status (``"CREATED"``), None when the container has no task."""
    try:
        r = engine.call("tasks.Get", api.msg("containerd.services.tasks.v1.GetRequest",
                                             container_id=cid))
    except Exception:  # noqa: BLE001 - NOT_FOUND: no task
        return None
    return api.TaskStatus(r.process.status).name


@pytest.fixture(scope="module", autouse=True)
def nothing_leaks(engine):
    """After every test of this module, containerd holds the same containers and snapshots as
    before (checked with the snapshots and containers services)."""
    snapshots, containers = _snapshots(engine), _containers(engine)
    yield
    assert _containers(engine) == containers
    assert _snapshots(engine) == snapshots


def _cid(job: d2.Job) -> str:
    return job.info.extensions["container_id"]


def _wait_for(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def entry_image(engine):
    """The test image's layer under a config with Entrypoint, Env, WorkingDir and User, imported
    with ``ctr`` (fixture set-up only) and removed afterwards."""
    base = engine.call("images.Get", api.msg("containerd.services.images.v1.GetImageRequest",
                                             name=cd.normalize_image(TEST_IMAGE))).image
    manifest = json.loads(engine.read_blob(base.target.digest))
    config = json.loads(engine.read_blob(manifest["config"]["digest"]))
    config["config"].update(Entrypoint=["/bin/echo", "entry"], Cmd=["from-cmd"],
                            Env=["PATH=/bin:/usr/bin", "IMGVAR=from-image"],
                            WorkingDir="/work/img", User="nobody")
    blobs: dict[str, bytes] = {}

    def add(data: bytes) -> dict:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        blobs[digest] = data
        return {"digest": digest, "size": len(data)}

    for layer in manifest["layers"]:
        add(engine.read_blob(layer["digest"]))
    manifest["config"].update(add(json.dumps(config).encode()))
    man = add(json.dumps(manifest).encode())
    name = cd.normalize_image(ENTRY_IMAGE)
    index = {"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", **man,
        "annotations": {"io.containerd.image.name": name}}]}
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        files = {"oci-layout": b'{"imageLayoutVersion":"1.0.0"}',
                 "index.json": json.dumps(index).encode(),
                 **{f"blobs/sha256/{d.split(':')[1]}": b for d, b in blobs.items()}}
        for path, data in files.items():
            info = tarfile.TarInfo(path)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    ctr = ["ctr", "-n", cd.DEFAULT_NAMESPACE]
    subprocess.run([*ctr, "images", "import", "-"], input=buf.getvalue(), check=True,
                   capture_output=True)
    yield ENTRY_IMAGE
    subprocess.run([*ctr, "images", "rm", "--sync", name], check=True, capture_output=True)


# -- the state and control tables, as containerd sees them ----------------------------------------
def test_task_statuses_and_controls_follow_the_tables(js, target, engine):
    job = js.run_job(target.sh("sleep 30", submit_as_hold=True))
    cid = _cid(job)
    assert _task_status(engine, cid) == "CREATED"
    assert job.state is d2.JobState.QUEUED_HELD
    job.release()
    assert _task_status(engine, cid) in ("RUNNING", "STOPPED")
    assert job.state is d2.JobState.RUNNING
    job.suspend()
    assert _task_status(engine, cid) == "PAUSED"
    assert job.get_state() == (d2.JobState.SUSPENDED, "paused")
    job.resume()
    assert _task_status(engine, cid) == "RUNNING"
    assert job.state is d2.JobState.RUNNING
    job.terminate()
    info = job.wait_terminated(20)
    assert info.state is d2.JobState.FAILED and info.annotation == "terminated"
    assert _task_status(engine, cid) is None  # the stopped task is deleted once its end is kept


def test_exit_code_decides_done_or_failed_and_is_kept_after_the_task_is_gone(js, target, engine):
    ok, bad = js.run_job(target.sh("exit 0")), js.run_job(target.sh("exit 42"))
    js.wait_all_terminated([ok, bad], 20)
    assert (ok.state, bad.state) == (d2.JobState.DONE, d2.JobState.FAILED)
    assert _task_status(engine, _cid(bad)) is None
    assert bad.info.exit_status == 42


# -- the image --------------------------------------------------------------------------------------
def test_image_entrypoint_env_workdir_and_user_are_honoured(js, entry_image, tmp_path):
    out = tmp_path / "out"
    job = js.run_job(d2.JobTemplate(remote_command="hello", args=["world"],
                                    job_category=entry_image, output_path=str(out)))
    assert job.wait_terminated(20).state is d2.JobState.DONE
    assert out.read_text() == "entry hello world\n"  # Entrypoint + remote_command + args

    job = js.run_job(d2.JobTemplate(
        args=["/bin/sh", "-c", 'echo "$IMGVAR $MINE"; pwd; id -u; id -g'],
        job_category=entry_image, output_path=str(out), job_environment={"MINE": "mine"}))
    assert job.wait_terminated(20).state is d2.JobState.DONE
    assert out.read_text().split("\n") == ["from-image mine", "/work/img", "65534", "65534", ""]


def test_args_without_remote_command_are_the_whole_command(js, tmp_path):
    out = tmp_path / "out"
    job = js.run_job(d2.JobTemplate(args=["/bin/echo", "ctr", "style"], job_category=TEST_IMAGE,
                                    output_path=str(out)))
    info = job.wait_terminated(20)
    assert info.state is d2.JobState.DONE
    assert out.read_text() == "ctr style\n"
    assert info.extensions["command_line"] == "/bin/echo ctr style"


def test_user_extension_hostname_and_stage_in(js, target, tmp_path):
    staged = tmp_path / "data.txt"
    staged.write_text("staged data\n")
    staged.chmod(0o666)  # the job runs as uid 1234
    out = tmp_path / "out"
    job = js.run_job(target.sh("id -u; id -g; hostname; cat /in/data.txt; echo x > /in/data.txt",
                        output_path=str(out), extensions={"user": "1234:99"},
                        candidate_machines=["compute-7"], stage_in_files={str(staged): "/in/data.txt"}))
    info = job.wait_terminated(20)
    lines = out.read_text().splitlines()
    assert lines[:4] == ["1234", "99", "compute-7", "staged data"]
    assert info.state is d2.JobState.DONE  # a writable bind mount, as on Docker and Podman
    assert staged.read_text() == "x\n"
    with pytest.raises(d2.UnsupportedAttributeError, match="volumes"):
        js.run_job(target.sh("true", extensions={"volumes": "/x"}))


def test_missing_image_names_image_and_namespace_and_nothing_is_created(js, engine):
    before = _containers(engine)
    with pytest.raises(d2.InvalidArgumentError) as e:
        js.run_job(d2.JobTemplate(remote_command="true", job_category="no-such-image:1.0"))
    msg = str(e.value)
    assert "no-such-image:1.0" in msg and "'pydrmaa2'" in msg and "does not pull" in msg
    assert js.get_jobs() == [] and _containers(engine) == before


def test_job_categories_are_the_images_of_the_namespace(js):
    cats = js.job_categories
    assert TEST_IMAGE in cats and cd.normalize_image(TEST_IMAGE) in cats


# -- control ----------------------------------------------------------------------------------------
def test_terminate_sends_sigterm_then_sigkill_after_the_grace_period(js, target, tmp_path,
                                                                    monkeypatch):
    monkeypatch.setattr(tracker, "GRACE_PERIOD", 1.5)
    out = tmp_path / "out"
    job = js.run_job(target.sh("trap 'echo got TERM' TERM; echo ready; while :; do sleep 0.1; done",
                        output_path=str(out)))
    _wait_for(lambda: out.exists() and "ready" in out.read_text())
    t0 = time.monotonic()
    job.terminate()
    info = job.wait_terminated(20)
    assert time.monotonic() - t0 >= 1.5
    assert "got TERM" in out.read_text()
    assert info.state is d2.JobState.FAILED
    assert (info.exit_status, info.terminating_signal) == (137, "SIGKILL")


def test_terminate_does_not_wait_when_sigterm_cannot_reach_the_job(js, target):
    job = js.run_job(target.template("/bin/sleep", "60"))
    job.wait_started(20)
    t0 = time.monotonic()
    job.terminate()  # sleep is PID 1 with no SIGTERM handler: the kernel would drop SIGTERM
    assert job.wait_terminated(20).state is d2.JobState.FAILED
    assert time.monotonic() - t0 < tracker.GRACE_PERIOD


def test_hold_creates_the_container_and_release_starts_its_task(js, target, engine, tmp_path):
    out = tmp_path / "out"
    job = js.run_job(target.sh("echo ran", output_path=str(out), submit_as_hold=True))
    cid = _cid(job)
    assert cid in _containers(engine) and _task_status(engine, cid) == "CREATED"
    assert job.info.dispatch_time is None
    with pytest.raises(d2.InvalidStateError):
        job.suspend()
    job.release()
    info = job.wait_terminated(20)
    assert info.state is d2.JobState.DONE and info.dispatch_time is not None
    assert out.read_text() == "ran\n"


def test_a_terminated_held_job_never_runs(js, target, engine, tmp_path):
    out = tmp_path / "out"
    job = js.run_job(target.sh("echo ran", output_path=str(out), submit_as_hold=True))
    job.terminate()
    info = job.wait_terminated(20)
    assert info.state is d2.JobState.FAILED and info.dispatch_time is None
    assert info.annotation == "terminated before it started"
    assert out.read_text() == ""


# -- reap, files --------------------------------------------------------------------------------------
def test_reap_deletes_task_container_and_snapshot(js, target, engine):
    job = js.run_job(target.sh("true"))
    job.wait_terminated(20)
    cid = _cid(job)
    assert cid in _containers(engine) and cid in _snapshots(engine)
    job.reap()
    assert cid not in _containers(engine) and cid not in _snapshots(engine)
    assert _task_status(engine, cid) is None


def test_find_job_removes_what_an_interrupted_submission_left(js, target, engine):
    """A container labelled with a job id that has no row in the tracker's file is what a
    submission left when containerd did not answer (its clean-up dropped the row but could
    not remove the container): find_job removes it (task, container, snapshot) and says None,
    so the job is submitted again; a recorded job's container is found."""
    tracker = js._tracker
    kept = tracker.submit("900001", target.sh("exit 0"), None, hold=True)
    left = tracker.submit("900002", target.sh("exit 0"), None, hold=True)
    with tracker.db.transaction() as db:
        db.execute("DELETE FROM containers WHERE cid=?", (left,))
    try:
        assert tracker.find_job("900001") == kept
        assert tracker.find_job("900002") is None
        assert left not in _containers(engine) and left not in _snapshots(engine)
    finally:
        tracker._remove(kept)
        tracker._remove(left)


def test_output_and_error_files_are_complete_when_the_job_ends(js, target, tmp_path):
    out, err = tmp_path / "out", tmp_path / "err"
    size = 8 << 20
    job = js.run_job(target.sh(f"head -c {size} /dev/zero; echo done >&2", output_path=str(out),
                        error_path=str(err)))
    assert job.wait_terminated(30).state is d2.JobState.DONE
    assert out.stat().st_size == size
    assert err.read_text() == "done\n"


def test_input_path_is_the_jobs_stdin(js, target, tmp_path):
    data, out = tmp_path / "in", tmp_path / "out"
    data.write_text("line one\nline two\n")
    job = js.run_job(target.sh("tr a-z A-Z", input_path=str(data), output_path=str(out)))
    job.wait_terminated(20)
    assert out.read_text() == "LINE ONE\nLINE TWO\n"


# -- monitoring, errors -------------------------------------------------------------------------------
def test_monitoring_lists_the_namespaces_containers_and_the_host(sm, js, target):
    job = js.run_job(target.template("/bin/sleep", "30", job_name="watched"))
    job.wait_started(20)
    with sm.open_monitoring_session(contact=target.contact) as ms:
        (mine,) = [i for i in ms.get_all_jobs() if i.id == job.id]  # a session's job: its id
        assert mine.extensions["native_id"] == _cid(job)
        assert mine.state is d2.JobState.RUNNING and mine.job_name == "watched"
        assert mine.extensions["image"] == cd.normalize_image(TEST_IMAGE)
        assert ms.get_all_jobs(d2.JobInfo(state=d2.JobState.RUNNING))
        (host,) = ms.get_all_machines()
        assert host.name == socket.gethostname() and host.phys_memory > 0
    job.terminate()


def test_wrong_socket_is_a_communication_error_naming_the_address(sm, tmp_path):
    with pytest.raises(d2.DrmCommunicationError, match="/nonexistent.sock"):
        sm.create_job_session("x", contact="containerd:///nonexistent.sock")
    dead = tmp_path / "dead.sock"  # a socket nobody listens on: containerd is down
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(dead))
    s.close()
    with pytest.raises(d2.DrmCommunicationError, match=re.escape(str(dead))):
        sm.open_monitoring_session(contact=f"containerd://{dead}")


@pytest.mark.parametrize("code, details, kind", [
    ("UNKNOWN", "context deadline exceeded: unknown", d2.DrmCommunicationError),
    ("UNKNOWN", "stream removed", d2.DrmCommunicationError),
    ("UNKNOWN", "shim said no", d2.ImplementationSpecificError),
    ("NOT_FOUND", "no such task", d2.InvalidArgumentError),
])
def test_grpc_errors_map_through_the_table(code, details, kind):
    """containerd reports a deadline that ran out in the shim as UNKNOWN "context deadline
    exceeded": it is DEADLINE_EXCEEDED's, which terminate reads as its grace period ending."""
    grpc = pytest.importorskip("grpc")
    from pydrmaa2.trackers.containerd.tables import drmaa2_error

    class Err(grpc.RpcError):
        def code(self):
            return getattr(grpc.StatusCode, code)

        def details(self):
            return details

    e = drmaa2_error(Err(), "waiting for container c", "unix:///x.sock")
    assert type(e) is kind and "waiting for container c" in str(e)


def test_namespace_comes_from_the_contact(sm, target):
    with sm.create_job_session("ns", contact="containerd:///run/containerd/containerd.sock"
                               "?namespace=pydrmaa2-empty") as js:
        assert js.job_categories == []
        with pytest.raises(d2.InvalidArgumentError, match="'pydrmaa2-empty'"):
            js.run_job(target.sh("true"))
    subprocess.run(["ctr", "namespaces", "rm", "pydrmaa2-empty"], capture_output=True)
    with pytest.raises(d2.InvalidArgumentError, match="bogus"):
        sm.create_job_session("bad", contact="containerd?bogus=1")


# -- resource limits and min_phys_memory: the OCI spec's cgroup resources and rlimits --------------
def test_limits_reach_the_containers_cgroup_and_rlimits(js, target, tmp_path):
    out = tmp_path / "out"
    cg = "/sys/fs/cgroup"
    job = js.run_job(target.sh(
        f"cat {cg}/memory/memory.limit_in_bytes {cg}/memory/memory.soft_limit_in_bytes "
        f"{cg}/cpu/cpu.cfs_quota_us {cg}/cpu/cpu.cfs_period_us {cg}/pids/pids.max; "
        "ulimit -t; ulimit -n; ulimit -Hn",
        output_path=str(out), min_phys_memory=16 * 1024,
        resource_limits={"memory": "64m", "cpus": "0.5", "pids": "50", "cpu_time": "100",
                         "OPEN_FILES": "512:1024"}))
    assert job.wait_terminated(20).state is d2.JobState.DONE
    assert out.read_text().split() == [str(64 << 20), str(16 << 20), "50000", "100000", "50",
                                       "100", "512", "1024"]


def test_the_pids_limit_stops_the_jobs_forks(js, target, tmp_path):
    out = tmp_path / "out"
    job = js.run_job(target.sh("for i in 1 2 3 4 5 6 7 8; do sleep 1 & done; wait",
                        output_path=str(out), join_files=True, resource_limits={"pids": "4"}))
    assert job.wait_terminated(20).state is d2.JobState.FAILED
    assert "can't fork" in out.read_text()


def test_the_ulimit_extension_wins_over_resource_limits(js, target, tmp_path):
    out = tmp_path / "out"
    job = js.run_job(target.sh("ulimit -t; ulimit -n", output_path=str(out),
                        resource_limits={"cpu_time": "100", "nofile": "512"},
                        extensions={"ulimit": "cpu=7"}))
    assert job.wait_terminated(20).state is d2.JobState.DONE
    assert out.read_text().split() == ["7", "512"]


@pytest.mark.parametrize(("fields", "error", "named"), [
    ({"resource_limits": {"memory": "much"}}, d2.InvalidArgumentError, "memory 'much'"),
    ({"resource_limits": {"memory": "1k"}}, d2.InvalidArgumentError, "6m"),
    ({"resource_limits": {"cpus": "none"}}, d2.InvalidArgumentError, "cpus 'none'"),
    ({"resource_limits": {"cpus": "4096"}}, d2.InvalidArgumentError, "cpus '4096'.*this machine"),
    ({"resource_limits": {"cpus": "0.001"}}, d2.InvalidArgumentError, "cpus '0.001'"),
    ({"resource_limits": {"pids": "0"}}, d2.InvalidArgumentError, "pids '0'"),
    ({"resource_limits": {"nofile": "9:8"}}, d2.InvalidArgumentError, "nofile=9:8"),
    ({"resource_limits": {"wallclock_time": "60"}}, d2.UnsupportedAttributeError, "wallclock_time"),
    ({"extensions": {"ulimit": "bogus=1"}}, d2.InvalidArgumentError, "bogus"),
    ({"min_phys_memory": 1 << 40}, d2.InvalidArgumentError, "min_phys_memory.*this machine"),
    ({"min_phys_memory": 128 * 1024, "resource_limits": {"memory": "64m"}},
     d2.InvalidArgumentError, "min_phys_memory 131072 KiB is more than the memory limit"),
    ({"stage_out_files": {"/tmp/x": "relative/b"}}, d2.InvalidArgumentError, "relative/b"),
])
def test_bad_limits_are_refused_before_anything_is_created(js, target, engine, tmp_path, fields,
                                                          error, named):
    with pytest.raises(error, match=named):
        js.run_job(target.sh("true", **fields))
    with pytest.raises(error, match=named):
        js.run_bulk_jobs(target.sh("true", **fields), 1, 3)
    assert js.get_jobs() == []
    home = str((tmp_path / "home").resolve())  # the sm fixture's (other programs share the engine)
    r = engine.call("containers.List",
                    api.msg("containerd.services.containers.v1.ListContainersRequest"))
    assert [c.id for c in r.containers if c.labels.get(f"{cd.LABEL}home") == home] == []


# -- cpu_time: the task's cgroup CPU usage (Tasks.Metrics) ------------------------------------------
def test_cpu_time_is_measured_while_running_and_kept_after_the_task_is_gone(js, target, engine):
    job = js.run_job(target.sh("i=0; while [ $i -lt 150000 ]; do i=$((i+1)); done; sleep 30"))
    _wait_for(lambda: (job.info.cpu_time or dt.timedelta(0)) > dt.timedelta(milliseconds=100),
              timeout=20)
    # Then the loop's end: its CPU stops growing while the job sleeps. (The cgroup's CPU also
    # counts the container's set-up before its dispatch time; ended in mid-loop, the job's CPU
    # time could exceed its wallclock time by those few ms: 166.6 ms against 164.0 ms once.)
    seen: list[dt.timedelta | None] = []

    def looped() -> bool:
        seen.append(job.info.cpu_time)
        time.sleep(0.3)
        return job.info.cpu_time == seen[-1]

    _wait_for(looped, timeout=30)
    assert job.state is d2.JobState.RUNNING
    job.terminate()
    info = job.wait_terminated(20)
    assert _task_status(engine, _cid(job)) is None  # the cgroup went with the task
    assert info.cpu_time > dt.timedelta(milliseconds=100)
    assert job.info.cpu_time == info.cpu_time  # kept
    assert info.cpu_time < info.wallclock_time


def test_cpu_time_of_a_short_job_is_read_before_its_task_is_deleted(js, target):
    job = js.run_job(target.sh("i=0; while [ $i -lt 100000 ]; do i=$((i+1)); done"))
    info = job.wait_terminated(20)
    assert info.state is d2.JobState.DONE and info.cpu_time > dt.timedelta(0)


# -- stage_out_files: host path <- container path, copied before the job is seen ended --------------
def _mount_points() -> list[str]:
    with open("/proc/self/mounts") as f:
        return [line.split()[1] for line in f if "pydrmaa2-stage-out" in line]


def test_stage_out_copies_a_file_and_a_directory_before_the_job_is_ended(js, target, tmp_path):
    script = ("mkdir -p /out/tree/sub && echo result > /out/result && echo deep > /out/tree/sub/f"
              " && chmod 4755 /out/tree/sub/f && ln -s /out/result /out/tree/link"
              " && ln -s ../../../../../../etc/passwd /out/tree/passwd && cat /etc/passwd > /pw")
    job = js.run_job(target.sh(script, stage_out_files={
        str(tmp_path / "result.txt"): "/out/result", str(tmp_path / "tree"): "/out/tree",
        str(tmp_path / "pw"): "/pw"}))
    info = job.wait_terminated(20)  # terminal only once the files are out
    assert (info.state, info.annotation) == (d2.JobState.DONE, None)
    assert (tmp_path / "result.txt").read_text() == "result\n"
    assert (tmp_path / "tree" / "sub" / "f").read_text() == "deep\n"
    assert (tmp_path / "tree" / "sub" / "f").stat().st_mode & 0o7777 == 0o755  # no set-uid
    # Links stay links, as Docker's and Podman's archive API gives them (docker cp).
    link, passwd = tmp_path / "tree" / "link", tmp_path / "tree" / "passwd"
    assert os.readlink(link) == "/out/result"
    assert os.readlink(passwd) == "../../../../../../etc/passwd"
    assert _mount_points() == []


def test_stage_out_into_a_directory_keeps_the_files_name(js, target, tmp_path):
    (tmp_path / "into").mkdir()
    job = js.run_job(target.sh("echo x > /data.txt",
                        stage_out_files={str(tmp_path / "into"): "/data.txt"}))
    assert job.wait_terminated(20).state is d2.JobState.DONE
    assert (tmp_path / "into" / "data.txt").read_text() == "x\n"


def test_a_missing_stage_out_path_fails_the_job_and_the_rest_is_copied(js, target, tmp_path):
    missing, there = tmp_path / "missing", tmp_path / "there"
    job = js.run_job(target.sh("echo here > /here", stage_out_files={str(missing): "/nope",
                                                              str(there): "/here"}))
    info = job.wait_terminated(20)
    assert (info.state, info.exit_status) == (d2.JobState.FAILED, 0)  # as the process tracker
    assert info.annotation == (f"stage-out of '/nope' to {str(missing)!r} failed: "
                               "No such file or directory")
    assert not missing.exists() and there.read_text() == "here\n"
    assert _mount_points() == []


def test_a_terminated_job_is_staged_out_too(js, target, tmp_path):
    out = tmp_path / "partial"
    job = js.run_job(target.sh("echo partial > /partial; touch /ready; sleep 60",
                        stage_out_files={str(out): "/partial"}))
    job.wait_started(20)
    time.sleep(0.5)
    job.terminate()
    info = job.wait_terminated(20)
    assert (info.state, info.annotation) == (d2.JobState.FAILED, "terminated")
    assert out.read_text() == "partial\n"
