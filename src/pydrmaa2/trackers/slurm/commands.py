"""Running the Slurm commands: one argv at a time (never a shell line), on one cluster, each
killed when it outlives COMMAND_TIMEOUT; ``slurm_errors`` is the one place where a command's
failure becomes a DRMAA2 error."""

from __future__ import annotations

import contextlib
import os
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

from ...errors import DrmCommunicationError, ImplementationSpecificError
from .tables import ERRORS

#: A Slurm command that has not answered after this many seconds means the controller is gone
#: (Slurm's own connection retries take about MessageTimeout, 10 s by default).
COMMAND_TIMEOUT = 60.0
#: The most characters of job ids put in one squeue/sacct -j argument (Linux allows 128 kB).
MAX_ID_LIST = 100_000


class _Inherit:
    """The type of INHERIT."""


#: ``SlurmCommands.run(env=INHERIT)``: the command inherits this process's environment as it is.
INHERIT = _Inherit()


class CommandFailure(Exception):
    """A Slurm command that failed: ``command`` is its name, ``message`` what it said."""

    def __init__(self, command: str, message: str = "") -> None:
        super().__init__(message or command)
        self.command = command
        self.message = message


class Refused(CommandFailure):
    """A Slurm command that answered with an error."""


class Unanswered(CommandFailure):
    """A Slurm command that the watchdog killed after COMMAND_TIMEOUT."""


class Missing(CommandFailure):
    """A Slurm command that is not installed (not in PATH)."""


@contextlib.contextmanager
def slurm_errors(what: str, where: str,
                 hint: Callable[[str], str | None] | None = None) -> Iterator[None]:
    """Raise the DRMAA2 error of a Slurm command that failed in the block: its message looked
    up in ERRORS (ImplementationSpecificError when nothing matches), kept in the error with
    ``what`` was done and ``hint(message)`` (the template value it is about); a command that is
    missing or does not answer cannot reach the cluster ``where``."""
    try:
        yield
    except Missing as e:
        raise DrmCommunicationError(
            f"{what}: the Slurm command {e.command!r} is not installed (not in PATH "
            f"{os.environ.get('PATH', '')!r}); cannot reach {where}") from e
    except Unanswered as e:
        raise DrmCommunicationError(
            f"{what}: {e.command} did not answer within {COMMAND_TIMEOUT:.0f} s; "
            f"is the controller of {where} running?") from e
    except Refused as e:
        low = e.message.lower()
        cls = next((c for piece, c in ERRORS.items() if piece in low), ImplementationSpecificError)
        if cls is DrmCommunicationError:
            raise cls(f"{what}: cannot reach {where}: {e.message}") from e
        extra = hint(low) if hint is not None else None
        raise cls(f"{what}: {e.message}" + (f" ({extra})" if extra else "")) from e


class _Watchdog:
    """Kills the Slurm commands that outlive COMMAND_TIMEOUT: one thread for all the commands of
    a tracker. (A threading.Timer per command costs more than a thread that is already there,
    and communicate()'s own timeout makes Popen.wait poll with sleeps.) Every command gets the
    same timeout, so the commands are watched in the order of their deadlines."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._watched: dict[int, tuple[float, subprocess.Popen[str]]] = {}
        self._killed: set[int] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def watch(self, proc: subprocess.Popen[str]) -> None:
        with self._lock:
            self._watched[id(proc)] = (time.monotonic() + COMMAND_TIMEOUT, proc)
            if self._thread is None or self._stop.is_set():
                self._stop = threading.Event()
                self._thread = threading.Thread(target=self._run, args=(self._stop,), daemon=True,
                                                name="pydrmaa2-slurm-watchdog")
                self._thread.start()

    def done(self, proc: subprocess.Popen[str]) -> bool:
        """Stop watching ``proc``; True when the watchdog killed it."""
        with self._lock:
            self._watched.pop(id(proc), None)
            if id(proc) in self._killed:
                self._killed.discard(id(proc))
                return True
            return False

    def _run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            with self._lock:
                now = time.monotonic()
                while self._watched:
                    key, (deadline, proc) = next(iter(self._watched.items()))
                    if deadline > now:
                        break
                    del self._watched[key]
                    self._killed.add(key)
                    proc.kill()
                # A command watched from now on has its deadline COMMAND_TIMEOUT away or more.
                wait = (next(iter(self._watched.values()))[0] - now if self._watched
                        else COMMAND_TIMEOUT)
            stop.wait(wait)

    def close(self) -> None:
        self._stop.set()


class SlurmCommands:
    """The Slurm commands of one cluster (``cluster`` None: the one the commands answer for);
    ``where`` names it in errors."""

    def __init__(self, cluster: str | None) -> None:
        self.cluster = cluster
        self.where = (f"Slurm cluster {cluster!r}" if cluster else
                      f"the Slurm cluster of {os.environ.get('SLURM_CONF', '/etc/slurm/slurm.conf')}")
        self._watchdog = _Watchdog()

    def run(self, argv: Sequence[str], what: str, *, fds: Sequence[int] = (),
            hint: Callable[[str], str | None] | None = None,
            ok: Callable[[str], bool] | None = None,
            env: Mapping[bytes, bytes] | None | _Inherit = None) -> str:
        """Run one Slurm command on this cluster; return its output or raise the DRMAA2 error
        its message means (``slurm_errors``), naming ``what`` and the cluster. ``ok(message)``
        may accept a failure (e.g. squeue on ids it no longer knows). ``env``: None is ours with
        ISO times, INHERIT ours as it is (no copy)."""
        with slurm_errors(what, self.where, hint):
            return self._output(argv, fds, ok, env)

    def _output(self, argv: Sequence[str], fds: Sequence[int], ok: Callable[[str], bool] | None,
                env: Mapping[bytes, bytes] | None | _Inherit) -> str:
        """The command's output; Refused with its message when it failed (and ``ok`` does not
        accept that), Unanswered when the watchdog killed it, Missing when it is not installed."""
        args = [argv[0], *(["-M", self.cluster] if self.cluster else []), *argv[1:]]
        if isinstance(env, _Inherit):
            env = None
        elif env is None:
            env = {**os.environb, b"SLURM_TIME_FORMAT": b"standard"}  # ISO times, whatever is set
        try:
            proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True, env=env, pass_fds=tuple(fds))
        except FileNotFoundError:
            raise Missing(argv[0]) from None
        self._watchdog.watch(proc)
        try:
            stdout, stderr = proc.communicate()
        finally:
            killed = self._watchdog.done(proc)
        if killed:
            raise Unanswered(argv[0])
        message = " ".join(line.strip() for line in stderr.splitlines() if line.strip("* \t"))
        # With -M, scontrol reports an unknown cluster on stderr and still exits 0.
        failed = proc.returncode != 0 or (not stdout.strip() and "error" in message.lower())
        if not failed:
            return stdout
        message = message or " ".join(
            line.strip() for line in stdout.splitlines() if line.strip("* \t")) or \
            f"exit status {proc.returncode}"
        if ok is not None and ok(message):
            return stdout
        raise Refused(argv[0], message)

    def close(self) -> None:
        self._watchdog.close()


def id_lists(ids: Iterable[str]) -> list[str]:
    """Comma-joined job id lists, each short enough for one argument."""
    out: list[str] = []
    current: list[str] = []
    size = 0
    for i in ids:
        if current and size + len(i) + 1 > MAX_ID_LIST:
            out.append(",".join(current))
            current, size = [], 0
        current.append(i)
        size += len(i) + 1
    if current:
        out.append(",".join(current))
    return out
