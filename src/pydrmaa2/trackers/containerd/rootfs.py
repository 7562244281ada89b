"""A container's root file system seen from the host: files read from its snapshot's layers, the
snapshot mounted read-only, and the stage-out copy from it (as Docker's and Podman's archive API
gives a path)."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import posixpath
import stat
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ..containers.staging import StageOutError, extract_archive

__all__ = ["read_table", "mounted", "mount_command", "in_root", "copy_out", "stage_out"]

log = logging.getLogger("pydrmaa2.containerd")

#: Symbolic links followed at most in one container path (Linux's MAXSYMLINKS).
MAX_SYMLINKS = 40
#: A stage-out archive is kept in memory up to this size, on disk beyond.
ARCHIVE_IN_MEMORY = 16 << 20
#: Longest layer list written into one overlay mount's options (the kernel takes a page of
#: them); longer lists are given relative to the layers' common directory.
LAYER_OPTION_MAX = 3000
#: A mount(8) option set that lets the stage-out read the job's files and nothing else.
READ_ONLY = "ro,nodev,nosuid,noexec"


def read_table(rootfs: Sequence[Any], path: str) -> list[list[str]]:
    """A colon-separated table (``etc/passwd``) of a snapshot, read from its mounts' directories
    without mounting it: its upper dir first, then the image's layers, top down. Empty when
    absent or unreadable."""
    dirs: list[str] = []
    for m in rootfs:
        if m.type == "bind":
            dirs.append(m.source)
        for opt in m.options:
            key, _, value = opt.partition("=")
            if key == "upperdir":
                dirs.insert(0, value)
            elif key == "lowerdir":
                dirs.extend(value.split(":"))
    for d in dirs:
        with contextlib.suppress(OSError, UnicodeDecodeError):
            text = Path(d, path).read_text()
            return [line.split(":") for line in text.splitlines() if line and line[0] != "#"]
    return []


@contextlib.contextmanager
def mounted(mounts: Sequence[Any]) -> Iterator[str]:
    """A snapshot's mounts (Snapshots.Mounts) read-only, nodev, nosuid and noexec on a new
    private directory, unmounted afterwards. An overlay's upper directory becomes its top lower
    one: the mount reads the job's files and can write nothing, not even overlayfs' work dir."""
    target = tempfile.mkdtemp(prefix="pydrmaa2-stage-out-")
    made = 0
    try:
        for m in mounts:
            argv, cwd = mount_command(m, target)
            r = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=60,
                               check=False)
            if r.returncode != 0:
                raise OSError(errno.EIO, f"cannot mount the container's snapshot: "
                                         f"{r.stderr.strip() or r.returncode}")
            made += 1
        yield target
    finally:
        for _ in range(made):
            if subprocess.run(["umount", target], capture_output=True, timeout=60,
                              check=False).returncode != 0:
                subprocess.run(["umount", "-l", target], capture_output=True, timeout=60,
                               check=False)
        try:
            os.rmdir(target)
        except OSError as e:
            log.warning("could not remove the stage-out mount point %s: %s", target, e)


def mount_command(m: Any, target: str) -> tuple[list[str], str | None]:
    """The mount(8) command line (and its working directory) that mounts ``m`` (a containerd
    Mount message) read-only."""
    options = [o for o in m.options if o not in ("rw", "ro")]
    if m.type == "overlay":
        layers = [o.split("=", 1)[1] for o in options if o.startswith("upperdir=")]
        for o in options:
            if o.startswith("lowerdir="):
                layers += o.split("=", 1)[1].split(":")
        options = [o for o in options if o != "volatile"  # only for a writable upper dir
                   and not o.startswith(("upperdir=", "workdir=", "lowerdir="))]
        if len(layers) == 1:
            return ["mount", "--bind", "-o", READ_ONLY, layers[0], target], None
        cwd = None
        if len(":".join(layers)) > LAYER_OPTION_MAX:  # as containerd does: relative to a parent
            cwd = os.path.commonpath(layers)
            layers = [os.path.relpath(layer, cwd) for layer in layers]
        options.append("lowerdir=" + ":".join(layers))
        return ["mount", "-t", "overlay", "-o", ",".join([READ_ONLY, *options]),
                m.source or "overlay", target], cwd
    if m.type == "bind" or {"bind", "rbind"} & set(options):
        return ["mount", "--bind", "-o", READ_ONLY, m.source, target], None
    return ["mount", "-t", m.type, "-o", ",".join([READ_ONLY, *options]), m.source, target], None


def in_root(root: str, path: str) -> str:
    """The host path of container path ``path`` in a root file system mounted at ``root``, its
    symbolic links followed as in the container (an absolute target starts again at the root,
    '..' stops at it): the result never leaves ``root``."""
    todo = [p for p in reversed(path.split("/")) if p not in ("", ".")]
    done: list[str] = []
    links = 0
    while todo:
        part = todo.pop()
        if part == "..":
            if done:
                done.pop()
            continue
        here = os.path.join(root, *done, part)
        if stat.S_ISLNK(os.lstat(here).st_mode):
            links += 1
            if links > MAX_SYMLINKS:
                raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), path)
            link = os.readlink(here)
            if link.startswith("/"):
                done = []
            todo += [p for p in reversed(link.split("/")) if p not in ("", ".")]
            continue
        done.append(part)
    return os.path.join(root, *done)


def copy_out(root: str, inside: str, host: str) -> None:
    """Copy container path ``inside`` of the root file system at ``root`` to ``host`` as Docker
    and Podman do: the path archived as their archive endpoint gives it (its folders' links
    followed inside the container's root only, see in_root; the path itself and everything
    below it taken as it is, links as links) and unpacked by the one safe
    ``_container.extract_archive``. OSError or StageOutError names what failed."""
    parent = in_root(root, posixpath.dirname(inside.rstrip("/")) or "/")
    name = posixpath.basename(inside.rstrip("/"))
    src = os.path.join(parent, name)
    os.lstat(src)  # a missing path is named as such
    with tempfile.SpooledTemporaryFile(max_size=ARCHIVE_IN_MEMORY) as archive:
        with tarfile.open(fileobj=archive, mode="w|") as tar:
            tar.add(src, arcname=name, recursive=True)  # never follows a link
        archive.seek(0)
        extract_archive(archive, host)


def stage_out(mounts: Sequence[Any], pairs: Sequence[Sequence[str]], cid: str) -> str | None:
    """Copy each (host path, container path) out of the snapshot of container ``cid`` (its
    ``mounts``, mounted read-only), all of them even after a failure; the failures in words
    (None: all copied)."""
    failures = []
    try:
        with mounted(mounts) as root:
            for host, inside in pairs:
                try:
                    copy_out(root, inside, host)
                except StageOutError as e:
                    failures.append(f"stage-out of {inside!r} to {host!r} failed: {e}")
                except OSError as e:
                    name = e.filename
                    if isinstance(name, str) and (name + "/").startswith(root + "/"):
                        name = posixpath.normpath("/" + os.path.relpath(name, root))
                    where = "" if name in (None, inside) else f"{name}: "
                    failures.append(f"stage-out of {inside!r} to {host!r} failed: "
                                    f"{where}{e.strerror or e}")
    except (OSError, subprocess.SubprocessError) as e:
        return f"stage-out from container {cid} failed: {getattr(e, 'strerror', None) or e}"
    return "; ".join(failures) or None
