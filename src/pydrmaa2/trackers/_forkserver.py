"""The fork server that starts process-tracker jobs (its C source is ``_spawn.c``).

Built once per user and machine with the C compiler into a private cache directory, started by
the agent, spoken to over a Unix socket; see the source for why and for the wire format.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import os
import platform
import shlex
import socket
import stat
import struct
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

SOURCE = Path(__file__).with_name("_spawn.c")
HELLO = b"pydrmaa2-spawn 3\n"
#: Compiler flags, best first: a static binary needs no dynamic loader (a faster exec, and it
#: runs on any machine of the architecture that shares the cache directory).
FLAGS = (["-O2", "-static"], ["-O2"])
#: Seconds a compilation, and the server's greeting, may take.
BUILD_TIMEOUT, HELLO_TIMEOUT = 120.0, 10.0

#: The steps of a start, as the server numbers the one that failed.
(STEP_CLONE, STEP_FDS, STEP_CHDIR, STEP_RLIMIT, STEP_NICE, STEP_EXEC, STEP_REQUEST, STEP_OPEN_IN,
 STEP_OPEN_OUT, STEP_OPEN_ERR) = range(1, 11)

_REQUEST = struct.Struct("=8i")
_LIMIT = struct.Struct("=iqq")  # -1: RLIM_INFINITY
_LENGTH = struct.Struct("=I")
_REPLY = struct.Struct("=3i")


class SpawnError(OSError):
    """A job the server could not start: ``errno`` says why, ``step`` where (STEP_*); ``pid``
    is the agent's child that failed before exec (to be reaped), or None."""

    def __init__(self, err: int, step: int, pid: int | None) -> None:
        super().__init__(err, os.strerror(err))
        self.step = step
        self.pid = pid


class ServerGone(ConnectionError):
    """The fork server ended; ``sent`` says whether it may have received the request."""

    def __init__(self, message: str, sent: bool) -> None:
        super().__init__(message)
        self.sent = sent


#: How os.fsencode encodes (POSIX): a whole environment is encoded in one call.
_FS_ENCODING, _FS_ERRORS = sys.getfilesystemencoding(), sys.getfilesystemencodeerrors()


def env_entries(env: Any) -> dict[Any, bytes]:
    """Each variable of ``env`` as exec gets it (``b"NAME=value"``), by name, refused with
    Popen's own errors (TypeError, ValueError)."""
    if isinstance(env, dict):
        # Where every name and value is a str that exec can take, the whole environment is
        # encoded in one call: a third of the time of os.fsencode on each name and value (the
        # agent encodes each run_job's). Anything else takes the way below, for its error.
        try:
            names, values = "".join(env), "".join(env.values())
        except TypeError:
            names = values = "\0"
        if not ("=" in names or "\0" in names or "\0" in values):
            if not env:
                return {}
            blob = "\0".join(map("=".join, env.items()))
            return dict(zip(env, blob.encode(_FS_ENCODING, _FS_ERRORS).split(b"\0"),
                            strict=True))
    out = {}
    for k, v in env.items():
        name = os.fsencode(k)
        if b"=" in name:
            raise ValueError("illegal environment variable name")
        entry = name + b"=" + os.fsencode(v)
        if b"\0" in entry:
            raise ValueError("embedded null byte")
        out[k] = entry
    return out


def exec_args(executable: Any, argv: Any, env: Any, cwd: Any,
              entries: list[bytes] | None = None,
              ) -> tuple[list[bytes], list[bytes], list[bytes], bytes]:
    """(executables to try, argv, environment, working directory) as subprocess.Popen would
    exec them, refused with Popen's own errors (TypeError, ValueError); ``entries``: ``env``
    already encoded (``env_entries``), as an array's tasks share most of theirs."""
    env_list = list(env_entries(env).values()) if entries is None else entries
    argv = [os.fsencode(a) for a in ([argv] if isinstance(argv, (str, bytes)) else argv)]
    executable, cwd = os.fsencode(executable), os.fsencode(cwd)
    if any(b"\0" in b for b in (executable, cwd, *argv)):
        raise ValueError("embedded null byte")
    if os.path.dirname(executable):
        return [executable], argv, env_list, cwd
    path = [os.path.join(os.fsencode(d), executable) for d in os.get_exec_path(env)]
    return path, argv, env_list, cwd


def cache_dirs(home: Path) -> list[Path]:
    """Where the built server may live: the user's cache, else the store's directory."""
    dirs = []
    xdg = os.environ.get("XDG_CACHE_HOME")
    with contextlib.suppress(RuntimeError, KeyError):
        base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"
        dirs.append(base / "pydrmaa2")
    dirs.append(Path(home) / "bin")
    return dirs


def _private(d: Path) -> bool:
    """Whether ``d`` is (now) a directory of ours, no symlink, that nobody else may write to
    or rename: what is executed from it is what we built."""
    with contextlib.suppress(OSError):
        d.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.mkdir(d, 0o700)
    try:
        st, up = os.lstat(d), os.stat(d.parent)
    except OSError:
        return False
    return (stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid() and not st.st_mode & 0o022
            and up.st_uid in (0, os.getuid()) and not up.st_mode & 0o022)


def build(home: Path) -> tuple[Path | None, str]:
    """The fork server's executable, compiled if this source has not been yet; (None, why)
    where there is no compiler, no source or no private directory for it."""
    try:
        source = SOURCE.read_bytes()
    except OSError as e:
        return None, f"its source {SOURCE} is not installed ({e.strerror})"
    key = hashlib.sha256(source + platform.machine().encode()).hexdigest()[:16]
    compiler = shlex.split(os.environ.get("CC") or "cc")
    why = "no private directory to build it in: " + ", ".join(map(str, cache_dirs(home)))
    for d in cache_dirs(home):
        if not _private(d):
            continue
        exe = d / f"spawn-{key}"
        if os.access(exe, os.X_OK):
            return exe, ""
        tmp = d / f".spawn-{key}.{os.getpid()}"
        for flags in FLAGS:
            try:
                r = subprocess.run([*compiler, *flags, "-x", "c", "-o", os.fspath(tmp), "-"],
                                   input=source, capture_output=True, timeout=BUILD_TIMEOUT,
                                   cwd=d, check=False)
            except (OSError, subprocess.SubprocessError) as e:
                return None, f"the C compiler {shlex.join(compiler)} cannot run: {e}"
            if r.returncode == 0:
                os.chmod(tmp, 0o700)
                os.replace(tmp, exe)
                return exe, ""
            why = (f"{shlex.join(compiler)} failed: "
                   f"{r.stderr.decode(errors='replace').strip()[-500:]}")
        with contextlib.suppress(OSError):
            tmp.unlink()
        return None, why
    return None, why


class Reply(NamedTuple):
    """The server's answer to one request, in the order of the requests."""

    pid: int
    err: int
    step: int

    def error(self) -> SpawnError | None:
        """Why the job did not start (None: it has exec'd)."""
        return SpawnError(self.err, self.step, self.pid if self.pid > 0 else None) \
            if self.err else None


#: The environment variable naming a fork server (ForkServer.name).
SERVER_ENV = "PYDRMAA2_FORK_SERVER"
_NAMES = itertools.count(1)


class ForkServer:
    """One running fork server. Requests are sent (``send``) without waiting, answered in
    order (``replies``); each started job is a child of this process."""

    def __init__(self, exe: Path) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        #: Names this server among an agent's: in its environment, which a job it has created
        #: and not yet exec'd shares (see ProcessService._created_by).
        self.name = f"{os.getpid()}.{next(_NAMES)}"
        try:
            # Its stderr is ours (the agent's log): a crash there is seen.
            self.proc = subprocess.Popen([os.fspath(exe)], stdin=theirs.fileno(),
                                         stdout=subprocess.DEVNULL, close_fds=True,
                                         env={**os.environ, SERVER_ENV: self.name})
        except OSError:
            ours.close()
            raise
        finally:
            theirs.close()
        self.exe = exe
        self.sock = ours
        self._buf = b""
        self._ended = False
        try:
            ours.settimeout(HELLO_TIMEOUT)
            hello = b""
            while not hello.endswith(b"\n") and len(hello) < 64:
                chunk = ours.recv(64 - len(hello))
                if not chunk:
                    break
                hello += chunk
            ours.settimeout(None)
        except OSError as e:
            self.close()
            raise ServerGone(f"the fork server {exe} did not greet: {e}", False) from e
        if hello != HELLO:
            self.close()
            raise ServerGone(f"the fork server {exe} did not greet but said {hello[:64]!r} "
                             f"(exit status {self.proc.poll()})", False)

    def fileno(self) -> int:
        """Readable when replies (or the server's end) are there to read."""
        return self.sock.fileno()

    def send(self, executables: Sequence[bytes], argv: Sequence[bytes], env: Sequence[bytes],
             cwd: bytes, umask: int, nice: int | None, limits: Sequence[tuple[int, int, int]],
             files: Sequence[bytes | None] = (None, None, None), join: bool = False) -> None:
        """Ask for a job; ServerGone if the server is gone. A file in ``files`` (stdin,
        stdout, stderr) is opened by the job's process (its error is the reply's, at
        STEP_OPEN_IN + the stream's number), a None is /dev/null; with ``join``, stderr goes
        where stdout goes."""
        if any(b"\0" in f for f in files if f):
            raise ValueError("embedded null byte")
        body = b"".join((
            _REQUEST.pack(umask, nice is not None, nice or 0, len(limits), len(executables),
                          len(argv), len(env), join),
            *(_LIMIT.pack(*limit) for limit in limits),
            cwd, b"\0", *((f or b"") + b"\0" for f in files),
            *(s + b"\0" for s in (*executables, *argv, *env))))
        frame = _LENGTH.pack(len(body)) + body
        try:
            self.sock.sendall(frame)
        except OSError as e:
            raise ServerGone(f"the fork server is gone: {e}", False) from e

    def replies(self, wait: bool) -> list[Reply]:
        """The answers that have come (with ``wait``, at least one). ServerGone once the
        server has ended and every answer it gave has been returned."""
        out: list[Reply] = []
        while not out:
            if self._ended:
                raise ServerGone("the fork server ended", True)
            try:
                data = self.sock.recv(1 << 16, 0 if wait else socket.MSG_DONTWAIT)
            except BlockingIOError:
                return out
            except OSError as e:
                raise ServerGone(f"the fork server failed: {e}", True) from e
            self._ended = not data
            self._buf += data
            whole = len(self._buf) - len(self._buf) % _REPLY.size
            out = [Reply(*r) for r in _REPLY.iter_unpack(self._buf[:whole])]
            self._buf = self._buf[whole:]
            if not wait:
                break
        return out

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def reap_failed(pid: int) -> None:
    """Reap a job that failed before exec (it has exited, or is about to)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)
