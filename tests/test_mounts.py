"""Stage-in files as structured bind mounts on every container engine (issue 12): Docker's
HostConfig.Mounts, Podman's libpod mounts, containerd's OCI mounts. A path holding ':' reaches
the container exactly, and a container path ending in ':Z' or ':ro' is a path, not an option:
the host file is neither relabelled nor made read-only."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

import pytest

import pydrmaa2 as d2
from pydrmaa2.testing.targets import TEST_IMAGE
from tests.conftest import end_and_reap, require
from tests.test_containers_common import inspect

ENGINES = ["docker", "podman", "containerd"]
#: drmaa2os's stage-in files are writable bind mounts, on every container tracker.
WRITABLE = {"docker": True, "podman": True, "containerd": True}


@pytest.fixture(params=ENGINES)
def engine_name(request) -> str:
    require(request.param)
    return request.param


@pytest.fixture
def js(sm, engine_name):
    session = sm.create_job_session(f"mounts-{engine_name}", contact=require(engine_name).contact)
    yield session
    end_and_reap(session)
    session.close()


def _label(path: Path) -> bytes | None:
    """The file's SELinux label (None where the host has none)."""
    with contextlib.suppress(OSError):
        return os.getxattr(path, "security.selinux")
    return None


def _host_mount_points() -> set[str]:
    with open("/proc/self/mountinfo") as f:
        return {line.split()[4] for line in f}


def _staged(tmp_path: Path) -> dict[str, Path]:
    folder = tmp_path / "in:put"
    folder.mkdir()
    files = {"colon": folder / "data:1.txt", "z": tmp_path / "z.txt", "ro": tmp_path / "ro.txt"}
    for key, path in files.items():
        path.write_text(f"{key} content\n")
    return files


def _inspect_mounts(engine_name: str, cid: str) -> list[tuple[str, str]]:
    """(source, destination) of the container's bind mounts as the engine records them;
    for Docker, also that HostConfig uses Mounts, not Binds."""
    if engine_name == "docker":
        host = inspect("docker", cid)["HostConfig"]
        assert not host.get("Binds")
        assert all(m["Type"] == "bind" and not m.get("ReadOnly") for m in host["Mounts"])
        return [(m["Source"], m["Target"]) for m in host["Mounts"]]
    if engine_name == "podman":
        mounts = [m for m in inspect("podman", cid)["Mounts"] if m.get("Type") == "bind"]
        assert all(m.get("RW") for m in mounts)
        return [(m["Source"], m["Destination"]) for m in mounts]
    from pydrmaa2.trackers import containerd as cd
    from pydrmaa2.trackers.containerd import api

    client = api.Client(f"unix://{cd.DEFAULT_SOCKET}", cd.DEFAULT_NAMESPACE)
    try:
        container = client.call("containers.Get", api.msg(
            "containerd.services.containers.v1.GetContainerRequest", id=cid)).container
    finally:
        client.close()
    spec = json.loads(container.spec.value)
    return [(m["source"], m["destination"]) for m in spec["mounts"]
            if m.get("type") == "bind" and m["source"] != m["destination"]]


def test_paths_with_colons_are_mounted_exactly(js, engine_name, tmp_path):
    files = _staged(tmp_path)
    labels = {k: _label(p) for k, p in files.items()}
    inside = {"colon": "/in:x/data:1.txt", "z": "/in/z.txt:Z", "ro": "/in/ro.txt:ro"}
    out = tmp_path / "out"
    write = 'echo more >> "/in/ro.txt:ro" && echo more >> "/in/z.txt:Z"' \
        if WRITABLE[engine_name] else "true"
    script = (f'cat "{inside["colon"]}" "{inside["z"]}" "{inside["ro"]}" && {write} && '
              "grep ' /in' /proc/mounts")
    job = js.run_job(d2.JobTemplate(
        remote_command="/bin/sh", args=["-c", script], job_category=TEST_IMAGE,
        output_path=str(out), stage_in_files={str(files[k]): v for k, v in inside.items()}))
    info = job.wait_terminated(60)
    text = out.read_text()
    assert info.state is d2.JobState.DONE, (info, text)
    lines = text.splitlines()
    assert lines[:3] == ["colon content", "z content", "ro content"]
    mounted = {line.split()[1]: line.split()[3].split(",") for line in lines[3:]}
    assert set(inside.values()) <= set(mounted)
    for path in inside.values():
        assert ("rw" if WRITABLE[engine_name] else "ro") in mounted[path]
    assert sorted(_inspect_mounts(engine_name, info.extensions["container_id"])) == sorted(
        (str(files[k]), v) for k, v in inside.items())
    # The host files: written through where the engine mounts them writable, still writable
    # here, not relabelled and not mounted anywhere on the host.
    more = "more\n" if WRITABLE[engine_name] else ""
    assert files["ro"].read_text() == f"ro content\n{more}"
    assert files["z"].read_text() == f"z content\n{more}"
    for key, path in files.items():
        assert os.access(path, os.W_OK)
        assert _label(path) == labels[key]
        assert str(path) not in _host_mount_points()


def test_relative_host_paths_with_colons_resolve_from_the_current_directory(
        js, engine_name, tmp_path, monkeypatch):
    (tmp_path / "sub:dir").mkdir()
    (tmp_path / "sub:dir" / "rel:file.txt").write_text("relative\n")
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "out"
    job = js.run_job(d2.JobTemplate(
        remote_command="/bin/cat", args=["/data/rel:file.txt"], job_category=TEST_IMAGE,
        output_path=str(out), stage_in_files={"sub:dir/rel:file.txt": "/data/rel:file.txt"}))
    info = job.wait_terminated(60)
    assert info.state is d2.JobState.DONE
    assert out.read_text() == "relative\n"
    assert _inspect_mounts(engine_name, info.extensions["container_id"]) == [
        (str(tmp_path / "sub:dir" / "rel:file.txt"), "/data/rel:file.txt")]


@pytest.mark.parametrize("mode", ["rw", "ro"])
def test_stage_in_means_the_same_on_every_container_tracker(js, tmp_path, mode):
    """stage_in_files: a writable bind mount by default (as drmaa2os has them), read-only with
    extensions stage_in_mode='ro', the same on Docker, Podman and containerd."""
    staged = tmp_path / "data.txt"
    staged.write_text("before\n")
    t = d2.JobTemplate(remote_command="/bin/sh", args=["-c", "echo after > /in/data.txt"],
                       job_category=TEST_IMAGE, stage_in_files={str(staged): "/in/data.txt"},
                       extensions={} if mode == "rw" else {"stage_in_mode": "ro"})
    job = js.run_job(t)
    job.wait_terminated(60)
    if mode == "rw":
        assert job.state is d2.JobState.DONE
        assert staged.read_text() == "after\n"
    else:
        assert job.state is d2.JobState.FAILED  # a read-only file system
        assert staged.read_text() == "before\n"
    with pytest.raises(d2.InvalidArgumentError, match="stage_in_mode"):
        js.run_job(d2.JobTemplate(remote_command="/bin/true", job_category=TEST_IMAGE,
                                  stage_in_files={str(staged): "/in/data.txt"},
                                  extensions={"stage_in_mode": "readonly"}))
