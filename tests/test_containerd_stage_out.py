"""The containerd tracker's parts that need no containerd: container paths resolved inside the
root file system, what the stage-out copies and what it never does, the read-only mount command
built from a snapshot's mounts, CPU time from either cgroup version's metrics, gRPC errors as
Drmaa2Errors, task statuses as job states, and the store of an earlier version."""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3

import pytest

import pydrmaa2 as d2
from pydrmaa2.trackers.containers.staging import StageOutError

grpc = pytest.importorskip("grpc")

from pydrmaa2.trackers.containerd import api, records, rootfs, tables  # noqa: E402


@pytest.fixture
def root(tmp_path):
    """A container's root file system: /etc/passwd, /out with links of every kind."""
    r = tmp_path / "rootfs"
    (r / "etc").mkdir(parents=True)
    (r / "etc" / "passwd").write_text("container passwd\n")
    out = r / "out"
    (out / "sub").mkdir(parents=True)
    (out / "sub" / "f").write_text("deep\n")
    (out / "abs").symlink_to("/etc/passwd")
    (out / "up").symlink_to("../../../../../../etc/passwd")
    (out / "dirlink").symlink_to("/out/sub")
    return r


def test_container_paths_resolve_inside_the_root(root):
    assert rootfs.in_root(str(root), "/out/abs") == str(root / "etc" / "passwd")
    assert rootfs.in_root(str(root), "/out/up") == str(root / "etc" / "passwd")
    assert rootfs.in_root(str(root), "/../../out/./dirlink/f") == str(root / "out" / "sub" / "f")
    with pytest.raises(FileNotFoundError):
        rootfs.in_root(str(root), "/out/missing/f")


def test_a_symlink_loop_is_refused(root):
    (root / "out" / "a").symlink_to("b")
    (root / "out" / "b").symlink_to("a")
    with pytest.raises(OSError) as e:
        rootfs.in_root(str(root), "/out/a")
    assert e.value.errno == errno.ELOOP


def test_a_tree_is_copied_with_links_as_links_as_docker_cp_does(root, tmp_path):
    """One meaning on every container tracker: the engines' archive API (Docker, Podman) gives
    links as links, so containerd's copy does too; set-id bits are dropped."""
    dest = tmp_path / "dest"
    (root / "out" / "sub" / "f").chmod(0o6755)
    rootfs.copy_out(str(root), "/out", str(dest))
    assert os.readlink(dest / "abs") == "/etc/passwd"
    assert os.readlink(dest / "dirlink") == "/out/sub"
    assert (dest / "sub" / "f").read_text() == "deep\n"
    assert (dest / "sub" / "f").stat().st_mode & 0o7777 == 0o755


def test_the_folders_of_a_path_resolve_in_the_container_and_the_path_itself_is_taken_as_is(
        root, tmp_path):
    rootfs.copy_out(str(root), "/out/dirlink/f", str(tmp_path / "f"))  # via a link to /out/sub
    assert (tmp_path / "f").read_text() == "deep\n"
    rootfs.copy_out(str(root), "/out/abs", str(tmp_path / "link"))
    assert os.readlink(tmp_path / "link") == "/etc/passwd"


def test_fifos_are_named_not_copied(root, tmp_path):
    os.mkfifo(root / "out" / "pipe")
    with pytest.raises(StageOutError, match="FIFO") as e:
        rootfs.copy_out(str(root), "/out", str(tmp_path / "dest"))
    assert "pipe" in str(e.value)
    assert not (tmp_path / "dest" / "pipe").exists()
    assert (tmp_path / "dest" / "sub" / "f").exists()


def test_a_link_in_the_destination_is_never_followed(root, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "sub").symlink_to(elsewhere)  # in the way of the directory /out/sub
    with contextlib.suppress(OSError, StageOutError):  # refused or replaced: never followed
        rootfs.copy_out(str(root), "/out", str(dest))
    assert list(elsewhere.iterdir()) == []


def test_a_file_is_copied_into_an_existing_directory_under_its_name(root, tmp_path):
    rootfs.copy_out(str(root), "/out/sub/f", str(tmp_path))
    assert (tmp_path / "f").read_text() == "deep\n"
    with pytest.raises(FileNotFoundError):
        rootfs.copy_out(str(root), "/out/missing", str(tmp_path / "m"))


def _mount(kind: str, *options: str, source: str = "overlay"):
    return api.msg("containerd.types.Mount", type=kind, source=source, options=list(options))


def test_an_overlay_snapshot_is_mounted_read_only_with_its_upper_dir_as_a_lower_one():
    argv, cwd = rootfs.mount_command(_mount("overlay", "index=off", "workdir=/s/2/work",
                                         "upperdir=/s/2/fs", "lowerdir=/s/1/fs:/s/0/fs"), "/mnt")
    assert argv == ["mount", "-t", "overlay", "-o",
                    "ro,nodev,nosuid,noexec,index=off,lowerdir=/s/2/fs:/s/1/fs:/s/0/fs",
                    "overlay", "/mnt"]
    assert cwd is None


def test_a_long_layer_list_is_given_relative_to_the_layers_directory():
    lowers = ":".join(f"/var/lib/containerd/snapshots/{i}/fs" for i in range(100))
    argv, cwd = rootfs.mount_command(_mount("overlay", "upperdir=/var/lib/containerd/snapshots/x/fs",
                                         "workdir=/var/lib/containerd/snapshots/x/work",
                                         f"lowerdir={lowers}"), "/mnt")
    assert cwd == "/var/lib/containerd/snapshots"
    assert argv[4].endswith(",lowerdir=x/fs:0/fs:1/fs:" + ":".join(f"{i}/fs" for i in range(2, 100)))


def test_a_single_layer_or_a_bind_snapshot_is_a_read_only_bind_mount():
    assert rootfs.mount_command(_mount("overlay", "lowerdir=/s/1/fs"), "/mnt") == (
        ["mount", "--bind", "-o", "ro,nodev,nosuid,noexec", "/s/1/fs", "/mnt"], None)
    assert rootfs.mount_command(_mount("bind", "rbind", "rw", source="/s/3/fs"), "/mnt") == (
        ["mount", "--bind", "-o", "ro,nodev,nosuid,noexec", "/s/3/fs", "/mnt"], None)


def test_cpu_seconds_from_either_cgroup_versions_metrics():
    v1 = api.msg("io.containerd.cgroups.v1.Metrics")
    v1.cpu.usage.total = 1_500_000_000
    any_v1 = api.msg("google.protobuf.Any", type_url="io.containerd.cgroups.v1.Metrics",
                     value=v1.SerializeToString())
    v2 = api.msg("io.containerd.cgroups.v2.Metrics")
    v2.cpu.usage_usec = 2_500_000
    any_v2 = api.msg("google.protobuf.Any", type_url="io.containerd.cgroups.v2.Metrics",
                     value=v2.SerializeToString())
    other = api.msg("google.protobuf.Any", type_url="io.containerd.windows.Stats", value=b"x")
    assert (api.cpu_seconds(any_v1), api.cpu_seconds(any_v2), api.cpu_seconds(other)) == (
        1.5, 2.5, None)


class _RpcError(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode, details: str | None) -> None:
        self._code, self._details = code, details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str | None:
        return self._details


@pytest.mark.parametrize(("code", "details", "error", "message"), [
    (grpc.StatusCode.UNAVAILABLE, "connection refused", d2.DrmCommunicationError,
     "starting: cannot reach containerd at unix:///c.sock: connection refused"),
    (grpc.StatusCode.INTERNAL, "ttrpc: stream removed", d2.DrmCommunicationError,
     "starting: cannot reach containerd at unix:///c.sock: ttrpc: stream removed"),
    (grpc.StatusCode.DEADLINE_EXCEEDED, "deadline", d2.DrmCommunicationError,
     "starting: containerd at unix:///c.sock did not answer in time"),
    (grpc.StatusCode.NOT_FOUND, "no such task", d2.InvalidArgumentError,
     "starting: no such task"),
    (grpc.StatusCode.FAILED_PRECONDITION, "not paused", d2.InvalidStateError,
     "starting: not paused"),
    (grpc.StatusCode.PERMISSION_DENIED, "no", d2.DeniedByDrmsError,
     "starting: containerd at unix:///c.sock refused: no"),
    (grpc.StatusCode.RESOURCE_EXHAUSTED, "full", d2.OutOfResourceError,
     "starting: containerd at unix:///c.sock: full"),
    (grpc.StatusCode.INTERNAL, "OCI runtime create failed", d2.ImplementationSpecificError,
     "starting: containerd at unix:///c.sock says: OCI runtime create failed"),
])
def test_grpc_errors_become_drmaa2_errors_with_containerds_explanation(code, details, error,
                                                                       message):
    with pytest.raises(error) as e, tables.rpc_errors("starting", "unix:///c.sock"):
        raise _RpcError(code, details)
    assert type(e.value) is error and str(e.value) == message
    assert isinstance(e.value.__cause__, grpc.RpcError)


def test_a_missing_object_is_the_error_its_caller_names():
    with pytest.raises(d2.InvalidStateError, match="gone"), tables.rpc_errors(
            "suspend", "unix:///c.sock", d2.InvalidStateError):
        raise _RpcError(grpc.StatusCode.NOT_FOUND, "gone")


@pytest.mark.parametrize(("status", "exit_status", "held", "state"), [
    (api.TaskStatus.CREATED, 0, False, d2.JobState.QUEUED),
    (api.TaskStatus.CREATED, 0, True, d2.JobState.QUEUED_HELD),
    (api.TaskStatus.PAUSING, 0, False, d2.JobState.RUNNING),
    (api.TaskStatus.PAUSED, 0, False, d2.JobState.SUSPENDED),
    (api.TaskStatus.STOPPED, 0, False, d2.JobState.DONE),
    (api.TaskStatus.STOPPED, 137, False, d2.JobState.FAILED),
    (api.TaskStatus.of(99), 0, False, d2.JobState.UNDETERMINED),
])
def test_a_tasks_status_is_the_jobs_state(status, exit_status, held, state):
    assert tables.job_state(status, exit_status, held) is state


def test_a_store_of_an_earlier_version_gets_the_new_columns(tmp_path):
    path = tmp_path / "containerd.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE containers (cid TEXT PRIMARY KEY, held INTEGER NOT NULL "
                   "DEFAULT 0, terminated INTEGER NOT NULL DEFAULT 0, submitted REAL NOT NULL, "
                   "started REAL, finished REAL, exit_status INTEGER, sub_state TEXT, "
                   "annotation TEXT)")
        db.execute("INSERT INTO containers(cid, submitted) VALUES ('old', 1.0)")
    db = records.open_records(path)
    assert db.query("SELECT cid, exited, cpu_time, stage_out FROM containers") == [
        ("old", None, None, None)]
