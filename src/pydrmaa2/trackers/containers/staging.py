"""A container job's files on this host: its stdin, stdout and stderr files (checked, then
written from the engine's log), its stdin fed to an attached container, and the stage-out
files, unpacked safely from the engine's archive of one container path."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import secrets
import socket
import stat
import tarfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

from ...errors import InvalidArgumentError
from ...templates import JobTemplate
from ..common import check_writable

if TYPE_CHECKING:
    from .spec import ContainerSpec

__all__ = ["ChunkReader", "LocalFiles", "StageOutError", "extract_archive", "feed_stdin",
           "local_files", "stage_out_pairs"]

# -- the job's local files --------------------------------------------------------------------------------


def stage_out_pairs(template: JobTemplate) -> tuple[tuple[str, str], ...]:
    """The template's stage_out_files as (host path, container path) pairs, the host path made
    absolute from the current directory. DRMAA2's direction, as the process tracker reads it:
    the key is the local path the file is copied to, the value the path the job wrote (here an
    absolute path inside the container). The host side is not checked here, as the process
    tracker does not: missing folders are created by the copy, and a copy that fails fails the
    job (see ``ContainerTracker``)."""
    pairs = []
    for host, inside in template.stage_out_files.items():
        if not isinstance(inside, str) or not inside.startswith("/"):
            raise InvalidArgumentError(
                f"JobTemplate.stage_out_files {host!r}: the container path {inside!r} must be "
                "absolute")
        if not isinstance(host, str) or not host:
            raise InvalidArgumentError(f"JobTemplate.stage_out_files key {host!r} is not a host path")
        pairs.append((os.path.abspath(host), inside))
    return tuple(pairs)


@dataclass(frozen=True)
class LocalFiles:
    """The job's local stdin/stdout/stderr files and its stage-out destinations (host path,
    container path), as absolute paths."""

    input_path: str | None = None
    output_path: str | None = None
    error_path: str | None = None
    join_files: bool = False
    stage_out: tuple[tuple[str, str], ...] = ()

    def create_outputs(self) -> None:
        """Create (or empty) the output files, so they exist from submission on."""
        for field_name in ("output_path", "error_path"):
            path = getattr(self, field_name)
            if path is None:
                continue
            try:
                with open(path, "wb"):
                    pass
            except OSError as e:
                raise InvalidArgumentError(
                    f"JobTemplate.{field_name} {path!r} cannot be written: {e.strerror or e}") from None


def local_files(template: JobTemplate, spec: ContainerSpec | None = None) -> LocalFiles:
    """Check the template's local paths (input readable, outputs writable, stage-in sources
    present) and return them absolute, relative paths taken from the current directory."""
    def absolute(p: str | None) -> str | None:
        return None if p is None else os.path.abspath(p)

    files = LocalFiles(absolute(template.input_path), absolute(template.output_path),
                       absolute(template.error_path), bool(template.join_files),
                       stage_out_pairs(template))
    if files.input_path is not None and not (
            os.path.isfile(files.input_path) and os.access(files.input_path, os.R_OK)):
        raise InvalidArgumentError(
            f"JobTemplate.input_path {template.input_path!r} is not a readable file")
    for name in ("output_path", "error_path"):
        check_writable(getattr(template, name), name)
    for bind in (spec.binds if spec else []):
        if not os.path.exists(bind.host_path):
            raise InvalidArgumentError(
                f"JobTemplate.stage_in_files {bind.host_path!r} does not exist on this machine")
    return files


# -- stage-out: an engine's archive unpacked on this host ---------------------------------------------


class StageOutError(Exception):
    """A stage-out that this host could not complete: the engine's archive is unreadable or
    holds an unsafe member, or the destination cannot be written. The engine is not at fault
    (not a Drmaa2Error): the job's annotation says why."""


class ChunkReader(io.RawIOBase):
    """A binary file over an iterator of byte chunks (Docker's archive stream), for tarfile."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._chunk = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._chunk:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._chunk = memoryview(chunk)
        n = min(len(buffer), len(self._chunk))
        buffer[:n] = self._chunk[:n]
        self._chunk = self._chunk[n:]
        return n


#: Bytes copied at a time from an archive member to its file.
_COPY_CHUNK = 1 << 16


@contextlib.contextmanager
def _on_host(path: str) -> Iterator[None]:
    """An OSError of this host's file system (never of the engine's stream) as StageOutError."""
    try:
        yield
    except OSError as e:
        raise StageOutError(f"{path}: {e.strerror or e}") from e


def extract_archive(stream: IO[bytes], destination: str) -> None:
    """Unpack an engine's tar archive of one container path (Docker's and Podman's archive
    endpoint: its first member is that path, under its base name) to ``destination``.

    A file becomes the file ``destination`` (or a file of that name in it, when
    ``destination`` is a directory, as ``cp`` and the process tracker's copy do), written
    whole or not at all; a directory's content goes into the directory ``destination``,
    created with its parents if missing and merged into if present. Members are safe by
    construction: no absolute or '..' names, nothing outside the asked-for path, symbolic links
    made as links and never followed (each folder below ``destination`` is opened with
    O_NOFOLLOW), hard links only to files of this archive, set-id bits dropped, no owners
    taken over. Device files and FIFOs are not made: they are named in the StageOutError raised
    once the rest is copied. Errors of ``stream`` (the engine) propagate as they are.
    """
    try:
        with tarfile.open(fileobj=stream, mode="r|") as tar:
            _Extraction(destination).run(tar)
    except tarfile.TarError as e:
        raise StageOutError(f"the engine's archive cannot be read: {e}") from e


class _Extraction:
    """One archive unpacked to one destination (see extract_archive)."""

    def __init__(self, destination: str) -> None:
        self.destination = destination
        self.root: str | None = None
        self.root_fd: int | None = None
        self.files: set[tuple[str, ...]] = set()  # regular files made: hard links may name them
        self.dirs: list[tuple[tuple[str, ...], int, float]] = []  # made: mode and time at the end
        self.skipped: list[str] = []

    def run(self, tar: tarfile.TarFile) -> None:
        try:
            for member in tar:
                if self.root is None:
                    self.root = member.name.rstrip("/") or "/"
                    if not member.isdir():
                        self._single(tar, member)
                        continue
                    self._open_root()
                    continue
                if self.root_fd is None:
                    raise StageOutError(
                        f"the engine's archive holds {member.name!r} beside the file {self.root!r}")
                self._member(tar, member, self._parts(member.name))
            for parts, mode, mtime in reversed(self.dirs):
                fd = self._open_dir(parts)
                try:
                    with _on_host(self._shown(parts)):
                        os.fchmod(fd, (mode & 0o777) | 0o700)  # its owner may always clean up
                        os.utime(fd, (mtime, mtime))
                finally:
                    os.close(fd)
        finally:
            if self.root_fd is not None:
                os.close(self.root_fd)
        if self.root is None:
            raise StageOutError("the engine's archive is empty")
        if self.skipped:
            raise StageOutError(
                f"not copied (device files or FIFOs): {', '.join(map(repr, self.skipped))}")

    # -- names ---------------------------------------------------------------------------------------
    def _parts(self, name: str) -> tuple[str, ...]:
        """A member's path below the root, checked: no '.', '..' or empty part, not outside."""
        assert self.root is not None
        name = name.rstrip("/")
        prefix = self.root.rstrip("/") + "/"
        if not name.startswith(prefix):
            raise StageOutError(f"the engine's archive member {name!r} is outside {self.root!r}")
        parts = tuple(name[len(prefix):].split("/"))
        if any(p in ("", ".", "..") for p in parts):
            raise StageOutError(f"the engine's archive member {name!r} is not a plain path")
        return parts

    def _shown(self, parts: Iterable[str]) -> str:
        return os.path.join(self.destination, *parts)

    # -- a single file (or link) -------------------------------------------------------------------------
    def _single(self, tar: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        """The archive of a file or link: written whole to a temporary name beside the
        destination, then renamed over it (a link or file in the way is replaced, never
        followed)."""
        target = self.destination
        if os.path.isdir(target):
            base = os.path.basename(member.name.rstrip("/"))
            if base in ("", ".", ".."):
                raise StageOutError(f"the engine's archive member {member.name!r} is not a file name")
            target = os.path.join(target, base)
        if not (member.isreg() or member.issym()):
            self.skipped.append(member.name)
            return
        parent = os.path.dirname(target) or "."
        with _on_host(parent):
            os.makedirs(parent, exist_ok=True)
        temporary = os.path.join(parent, f".{os.path.basename(target)}.pydrmaa2-{secrets.token_hex(6)}")
        try:
            if member.issym():
                with _on_host(target):
                    os.symlink(member.linkname, temporary)
            else:
                with _on_host(target):
                    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                                 | os.O_CLOEXEC, 0o600)
                self._write(tar, member, fd, target)
            with _on_host(target):
                os.replace(temporary, target)
        finally:
            with contextlib.suppress(OSError):
                os.unlink(temporary)

    def _write(self, tar: tarfile.TarFile, member: tarfile.TarInfo, fd: int, shown: str) -> None:
        """Copy a member's content into a file opened for it (and closes it); reads of the
        archive are outside _on_host, so an engine's error stays the engine's."""
        f = os.fdopen(fd, "wb")
        try:
            source = tar.extractfile(member)
            while source is not None and (chunk := source.read(_COPY_CHUNK)):
                with _on_host(shown):
                    f.write(chunk)
            with _on_host(shown):
                f.flush()
                os.fchmod(fd, member.mode & 0o777)  # no set-id or sticky bits from a container
                os.utime(fd, (member.mtime, member.mtime))
        finally:
            with contextlib.suppress(OSError):
                f.close()

    # -- a directory ------------------------------------------------------------------------------------
    def _open_root(self) -> None:
        """The destination directory (the user's own path: made with its parents, followed)."""
        with _on_host(self.destination):
            if os.path.exists(self.destination) and not os.path.isdir(self.destination):
                raise StageOutError(f"{self.destination}: exists and is not a directory")
            os.makedirs(self.destination, exist_ok=True)
            self.root_fd = os.open(self.destination, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)

    def _open_dir(self, parts: tuple[str, ...]) -> int:
        """A directory below the destination, opened one part at a time without following a
        link (a link in the way is an error, a missing part is made)."""
        assert self.root_fd is not None
        fd = os.dup(self.root_fd)
        try:
            for i, part in enumerate(parts):
                with _on_host(self._shown(parts[:i + 1])):
                    try:
                        child = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
                                        | os.O_CLOEXEC, dir_fd=fd)
                    except FileNotFoundError:
                        os.mkdir(part, 0o700, dir_fd=fd)
                        child = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
                                        | os.O_CLOEXEC, dir_fd=fd)
                os.close(fd)
                fd = child
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _clear(self, parent: int, name: str, shown: str) -> None:
        """Remove what is in the way of a new file or link (a directory is an error)."""
        with _on_host(shown):
            try:
                st = os.stat(name, dir_fd=parent, follow_symlinks=False)
            except FileNotFoundError:
                return
            if stat.S_ISDIR(st.st_mode):
                raise StageOutError(f"{shown}: is a directory")
            os.unlink(name, dir_fd=parent)

    def _member(self, tar: tarfile.TarFile, member: tarfile.TarInfo, parts: tuple[str, ...]) -> None:
        if not (member.isdir() or member.isreg() or member.issym() or member.islnk()):
            self.skipped.append(member.name)
            return
        shown = self._shown(parts)
        parent = self._open_dir(parts[:-1])
        name = parts[-1]
        try:
            if member.isdir():
                with _on_host(shown):
                    try:
                        os.mkdir(name, 0o700, dir_fd=parent)
                        self.dirs.append((parts, member.mode, member.mtime))
                    except FileExistsError:
                        st = os.stat(name, dir_fd=parent, follow_symlinks=False)
                        if not stat.S_ISDIR(st.st_mode):
                            os.unlink(name, dir_fd=parent)
                            os.mkdir(name, 0o700, dir_fd=parent)
                            self.dirs.append((parts, member.mode, member.mtime))
            elif member.issym():
                self._clear(parent, name, shown)
                with _on_host(shown):
                    os.symlink(member.linkname, name, dir_fd=parent)
            elif member.islnk():
                self._link(member, parts, parent, shown)
            else:
                self._clear(parent, name, shown)
                with _on_host(shown):
                    fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                                 | os.O_CLOEXEC, 0o600, dir_fd=parent)
                self._write(tar, member, fd, shown)
                self.files.add(parts)
        finally:
            os.close(parent)

    def _link(self, member: tarfile.TarInfo, parts: tuple[str, ...], parent: int,
              shown: str) -> None:
        """A hard link, to a regular file this archive made (else an error)."""
        target = self._parts(member.linkname)
        if target not in self.files:
            raise StageOutError(
                f"the engine's archive links {member.name!r} to {member.linkname!r}, which it "
                "did not hold before")
        source = self._open_dir(target[:-1])
        try:
            self._clear(parent, parts[-1], shown)
            with _on_host(shown):
                os.link(target[-1], parts[-1], src_dir_fd=source, dst_dir_fd=parent,
                        follow_symlinks=False)
        finally:
            os.close(source)
        self.files.add(parts)


# -- stdin ----------------------------------------------------------------------------------------------


def feed_stdin(attached: Any, path: str) -> None:
    """Copy a file into a container's attached stdin, then close it (the job sees EOF).

    ``attached`` is the engine's attach socket, bare or wrapped (docker-py's SocketIO)."""
    sock = getattr(attached, "_sock", attached)
    try:
        with open(path, "rb") as f:
            while chunk := f.read(1 << 16):
                sock.sendall(chunk)
        sock.shutdown(socket.SHUT_WR)
    except OSError as e:  # the job ended without reading all of it
        logging.getLogger("pydrmaa2.container").debug(
            "stdin of a container from %s cut short: %s", path, e)
    finally:
        with contextlib.suppress(OSError):
            attached.close()
