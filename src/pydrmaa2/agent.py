"""The per-user agent: one background process per store that outlives the programs using it.

It is the parent of every process-tracker job (so it can ``wait4`` them and record exit status
and rusage even after the submitter died), it keeps starting the throttled tasks of job arrays on
any tracker, and it relays "job changed" events so that waits are event-driven across processes.
Clients speak newline-delimited JSON over a Unix socket next to the store.
"""

from __future__ import annotations

import contextlib
import errno
import faulthandler
import fcntl
import hashlib
import json
import logging
import math
import os
import select
import selectors
import signal
import socket
import stat
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from . import errors
from .trackers.base import ChangeFeed

log = logging.getLogger("pydrmaa2.agent")

#: The agent exits after this many seconds with no job, no array to drive and no client.
IDLE_EXIT = float(os.environ.get("PYDRMAA2_AGENT_IDLE", "60"))
#: How long a client waits for a freshly started agent to accept connections.
START_TIMEOUT = 15.0
#: Interval between connection attempts while an agent starts (it has no way to signal us).
START_POLL = 0.01
#: Connections the agent's socket queues before the agent accepts them.
LISTEN_BACKLOG = 128


def socket_path(home: Path) -> Path:
    """The agent's socket: in the store's directory unless that path is too long for AF_UNIX,
    then in ``$XDG_RUNTIME_DIR/pydrmaa2``, else in a ``/tmp/pydrmaa2-UID`` directory that is
    checked to be ours, 0700 and no symlink."""
    p = Path(home) / "agent.sock"
    if len(os.fsencode(p)) < 100:
        return p
    name = hashlib.sha1(os.fsencode(Path(home).resolve())).hexdigest()[:16] + ".sock"
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isabs(runtime):
        d = Path(runtime) / "pydrmaa2"
        if len(os.fsencode(d / name)) < 100:
            _own_private_dir(d)
            return d / name
    d = Path(f"/tmp/pydrmaa2-{os.getuid()}")
    _own_private_dir(d)
    return d / name


def _own_private_dir(d: Path) -> None:
    """Create ``d`` with mode 0700 atomically, or check that the existing one is a directory
    (not a symlink) owned by us with no access for others; else refuse with a named error."""
    try:
        os.mkdir(d, 0o700)
    except FileExistsError:
        pass
    except OSError as e:
        raise errors.SessionManagementError(f"cannot create the agent's directory {d}: {e}") from e
    st = os.lstat(d)
    if stat.S_ISLNK(st.st_mode):
        why = "it is a symlink"
    elif not stat.S_ISDIR(st.st_mode):
        why = "it is not a directory"
    elif st.st_uid != os.getuid() or st.st_mode & 0o077:
        why = f"its owner is uid {st.st_uid} and its mode {oct(st.st_mode & 0o777)}"
    else:
        return
    raise errors.SessionManagementError(
        f"the agent's socket directory {d} is not a private directory of this user "
        f"(uid {os.getuid()}): {why}; remove it or set PYDRMAA2_HOME to a shorter path")


def peer_creds(sock: socket.socket) -> tuple[int, int, int]:
    """(pid, uid, gid) of the process at the other end of a Unix socket (SO_PEERCRED)."""
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return struct.unpack("3i", creds)


# ------------------------------------------------------------------------------------------------
# client side
# ------------------------------------------------------------------------------------------------

def _raise_remote(reply: dict[str, Any]) -> None:
    cls = getattr(errors, reply.get("error", ""), None)
    if not (isinstance(cls, type) and issubclass(cls, errors.Drmaa2Error)):
        cls = errors.InternalError
    raise cls(reply.get("message", "the pydrmaa2 agent failed"))


class AgentImpostorError(errors.DrmCommunicationError):
    """The socket of the agent is held by another user's process."""


class _Conn:
    """One connection to the agent; requests on it are serialized by a lock."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(os.fspath(path))
        # Nothing is sent (environments, commands) before we know who listens.
        uid = peer_creds(self.sock)[1]
        if uid != os.getuid():
            self.sock.close()
            raise AgentImpostorError(
                f"the process listening at {path} runs as uid {uid}, not as this user "
                f"(uid {os.getuid()}): refusing to talk to it")
        self.rfile = self.sock.makefile("rb")
        self.lock = threading.Lock()

    def send(self, msg: dict[str, Any]) -> None:
        self.sock.sendall(_line(msg))

    def recv(self) -> dict[str, Any]:
        line = self.rfile.readline()
        if not line:
            raise ConnectionResetError("the pydrmaa2 agent closed the connection")
        reply: dict[str, Any] = json.loads(line)
        return reply

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.rfile.close()
            self.sock.close()


class AgentClient:
    """Talks to (and if needed starts) the agent of one store directory."""

    _instances: dict[tuple[int, str], AgentClient] = {}
    _instances_lock = threading.Lock()

    def __init__(self, home: Path) -> None:
        self.home = Path(home)
        self.path = socket_path(self.home)
        self._conn: _Conn | None = None
        self._lock = threading.Lock()

    @classmethod
    def for_home(cls, home: Path) -> AgentClient:
        """The process-wide client for ``home`` (a new one after fork)."""
        key = (os.getpid(), os.fspath(Path(home).resolve()))
        with cls._instances_lock:
            client = cls._instances.get(key)
            if client is None:
                client = cls._instances[key] = cls(home)
            return client

    def connect(self) -> _Conn:
        """A new connection, starting the agent if none answers."""
        try:
            return _Conn(self.path)
        except OSError:
            pass
        from .database import private_dir

        private_dir(self.home)
        fd = os.open(self.home / "agent.spawn.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        with open(fd, "a+") as lockf:
            fcntl.flock(lockf, fcntl.LOCK_EX)
            try:
                return _Conn(self.path)
            except OSError as e:
                nobody = e.errno in (errno.ENOENT, errno.ECONNREFUSED)
            if nobody:
                # Nobody listens: the agent's socket is bound here and handed to it, so this
                # connection is queued at once and what is sent on it waits for the agent,
                # instead of the caller waiting for the agent's start (a quarter second).
                listener = _listen(self.path)  # (under the spawn lock)
                try:
                    self._start(listener)
                finally:
                    listener.close()
                return _Conn(self.path)
            self._start()
            deadline = time.monotonic() + START_TIMEOUT
            while True:
                try:
                    return _Conn(self.path)
                except OSError as e:
                    if time.monotonic() > deadline:
                        raise errors.DrmCommunicationError(
                            f"the pydrmaa2 agent for {self.home} did not start at {self.path}: "
                            f"{e}\n{self._log_tail()}") from e
                    time.sleep(START_POLL)

    def _log_tail(self) -> str:
        """The end of the agent's log (why it did not start, or left)."""
        with contextlib.suppress(OSError):
            return (self.home / "agent.log").read_text(errors="replace")[-2000:]
        return ""

    def _start(self, listener: socket.socket | None = None) -> None:
        """Start the agent (on ``listener``, if given: it serves that socket)."""
        env = dict(os.environ)
        pkg_root = os.fspath(Path(__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (pkg_root, env.get("PYTHONPATH")) if p)
        agent = [sys.executable, "-c",
                 "import sys; from pydrmaa2.agent import main; sys.exit(main(sys.argv))",
                 os.fspath(self.home)]
        fds: tuple[int, ...] = ()
        if listener is not None:
            agent.append(f"--listen-fd={listener.fileno()}")
            fds = (listener.fileno(),)
        # Started by a shell that backgrounds it and exits at once, so the agent is not our
        # child: it outlives us without ever becoming our zombie. (The shell's arguments are
        # the agent's command as "$@", never a line built from them.)
        fd = os.open(self.home / "agent.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC,
                     0o600)
        with open(fd, "ab") as logf:
            subprocess.run(["/bin/sh", "-c", '"$@" &', "pydrmaa2-agent-launcher", *agent],
                           stdin=subprocess.DEVNULL, stdout=logf, stderr=logf, pass_fds=fds,
                           start_new_session=True, env=env, cwd="/", check=True)

    def close(self) -> None:
        """Drop this process's connection (the agent may then exit when idle)."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def request(self, op: str, **fields: Any) -> dict[str, Any]:
        """Send one request and return the reply; agent errors become Drmaa2Errors."""
        reply = self._exchange({"op": op, **fields}, want_reply=True)
        if "error" in reply:
            _raise_remote(reply)
        return reply

    def send(self, op: str, **fields: Any) -> None:
        """Send a request that needs no answer (the agent records its outcome itself)."""
        self._exchange({"op": op, "noreply": True, **fields}, want_reply=False)

    def _exchange(self, msg: dict[str, Any], want_reply: bool) -> dict[str, Any]:
        for attempt in (1, 2):
            with self._lock:
                try:
                    if self._conn is None:
                        self._conn = self.connect()
                    self._conn.send(msg)
                    return self._conn.recv() if want_reply else {}
                except (OSError, ValueError) as e:
                    # The agent may have exited on idle between our calls: reconnect once.
                    if self._conn is not None:
                        self._conn.close()
                    self._conn = None
                    if attempt == 2:
                        # (An agent that did not start, on the socket this program bound for
                        # it, ends here too: its log says why.)
                        raise errors.DrmCommunicationError(
                            f"lost the pydrmaa2 agent at {self.path}: {e}\n"
                            f"{self._log_tail()}") from e
        raise AssertionError("unreachable")

    def notify(self, keys: Iterable[str]) -> None:
        """Tell every waiter watching these keys that they may have changed (no answer awaited:
        a waiter that misses it looks again within its resync interval)."""
        keys = list(keys)
        if keys:
            self.send("notify", keys=keys)

    def watch(self, keys: Iterable[str]) -> AgentFeed:
        """A change feed for these keys (``*`` for all)."""
        return AgentFeed(self, list(keys))


class AgentFeed(ChangeFeed):
    """Events from the agent for a set of keys, on a dedicated connection."""

    def __init__(self, client: AgentClient, keys: list[str]) -> None:
        #: The keys watched (``*``: all).
        self.keys: frozenset[str] = frozenset(keys)
        for attempt in (1, 2):
            try:
                self.conn = client.connect()
                self.conn.send({"op": "watch", "keys": keys})
                reply = self.conn.recv()
                break
            except (OSError, ValueError) as e:  # an agent that was just exiting: start anew
                if attempt == 2:
                    raise errors.DrmCommunicationError(
                        f"cannot watch jobs through the pydrmaa2 agent at {client.path}: {e}"
                    ) from e
        if "error" in reply:
            self.conn.close()
            _raise_remote(reply)
        self.conn.sock.setblocking(False)
        self._buf = b""
        # One poll object for the feed's life: a wait costs one system call, not a selector's
        # three (a throttled array's driver waits once per task's end).
        self._poll = select.poll()
        self._poll.register(self.conn.sock, select.POLLIN)

    def fileno(self) -> int:
        """The feed's socket, for a selector or an event loop to wait on."""
        return self.conn.sock.fileno()

    def rewatch(self, keys: Iterable[str], wake: bool = False) -> None:
        """Watch these keys instead, on the same connection (no answer awaited); ``wake``: the
        agent's answer comes as an event, so the next ``wait`` returns once the keys apply."""
        keys = list(keys)
        self.keys = frozenset(keys)
        msg: dict[str, Any] = {"op": "watch", "keys": keys}
        if not wake:
            msg["noreply"] = True
        try:
            self.conn.send(msg)
        except OSError as e:
            raise errors.DrmCommunicationError(f"the pydrmaa2 agent went away: {e}") from e

    def wait(self, timeout: float | None) -> bool:
        if self.conn.sock.fileno() < 0:
            raise errors.DrmCommunicationError("the pydrmaa2 agent's event stream is closed")
        if not self._poll.poll(None if timeout is None else max(0, math.ceil(timeout * 1000))):
            return False
        try:
            data = self.conn.sock.recv(65536)
        except BlockingIOError:
            return True
        except OSError as e:
            raise errors.DrmCommunicationError(f"the pydrmaa2 agent went away: {e}") from e
        if not data:
            raise errors.DrmCommunicationError("the pydrmaa2 agent closed the event stream")
        # Drain whatever else arrived; each message only says "look again".
        with contextlib.suppress(BlockingIOError):
            while self.conn.sock.recv(65536):
                pass
        return True

    def close(self) -> None:
        # shutdown() wakes a select() on this socket in another thread; close() alone does not.
        with contextlib.suppress(OSError):
            self.conn.sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError, ValueError, KeyError):
            self._poll.unregister(self.conn.sock)
        self.conn.close()


# ------------------------------------------------------------------------------------------------
# the agent itself
# ------------------------------------------------------------------------------------------------

class _Client:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""
        self.out = b""
        self.watch: set[str] | None = None  # None: not a watcher
        self.writing = False  # registered for EVENT_WRITE too (output is waiting)
        # The agent's own array drivers connect to it too; they must not keep it alive.
        pid, self.uid, _ = peer_creds(sock)
        self.own = pid == os.getpid()


class Agent:
    """The event loop: clients, watchers, child processes (via services) and array drivers."""

    def __init__(self, home: Path) -> None:
        self.home = Path(home)
        self.sel = selectors.DefaultSelector()
        self.clients: dict[int, _Client] = {}
        self.handlers: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "ping": lambda m: {"pid": os.getpid()},
            "notify": self._op_notify,
        }
        self.busy_checks: list[Callable[[], bool]] = []
        #: Called after each round of events: services batch their store writes there. A hook
        #: returns within how many seconds it wants to be called again (None: at the next event).
        self.flush_hooks: list[Callable[[], float | None]] = []
        self._last_activity = time.monotonic()
        self._stop = False
        self._listener: socket.socket | None = None
        self._current: _Client | None = None  # the client whose request is being handled
        self._reading = False

    # services (the process tracker) plug in here
    def add_reader(self, fd: int, callback: Callable[[], None]) -> None:
        self.sel.register(fd, selectors.EVENT_READ, ("fd", callback))

    def remove_reader(self, fd: int) -> None:
        self.sel.unregister(fd)

    def publish(self, keys: Iterable[str]) -> None:
        """Wake every watcher of any of these keys, naming the keys it watches (all of them
        for a watcher of ``*``): a throttled array's driver and its waiter each watch a few
        jobs of the many a loop turn changes, and are not sent the others."""
        keys = set(keys)
        every: bytes | None = None  # encoded once for all watchers of "*"
        for c in list(self.clients.values()):
            if c.watch is None:
                continue
            if "*" in c.watch:
                if every is None:
                    every = _line({"changed": sorted(keys)})
                self._send_line(c, every)
            else:
                mine = c.watch & keys
                if mine:
                    self._send_line(c, _line({"changed": sorted(mine)}))

    # -- built-in operations ----------------------------------------------------------------------
    def _op_notify(self, msg: dict[str, Any]) -> dict[str, Any]:
        self.publish(msg.get("keys", []))
        return {}

    def touch(self) -> None:
        """Count now as activity (a service finished work): the idle exit starts anew."""
        self._last_activity = time.monotonic()

    # -- the loop ----------------------------------------------------------------------------------
    def _busy(self) -> bool:
        return (any(not c.own for c in self.clients.values())
                or any(check() for check in self.busy_checks))

    def serve(self, listener: socket.socket) -> None:
        listener.setblocking(False)
        self._listener = listener
        self.sel.register(listener, selectors.EVENT_READ, ("listen", None))
        timeout = 1.0
        while not self._stop:
            for key, mask in self.sel.select(timeout=timeout):
                kind, cb = key.data
                # One job, one client or one failed write must never end the agent that
                # supervises every job: each callback is isolated.
                try:
                    if kind == "listen":
                        self._accept(listener)
                    elif kind == "fd":
                        cb()
                    else:
                        self._on_client(cb, mask)
                except Exception:
                    log.exception("the agent's %s callback failed", kind)
            timeout = 1.0
            for hook in self.flush_hooks:
                try:
                    again = hook()
                except Exception:
                    log.exception("the agent's flush hook %r failed", hook)
                    again = 1.0
                if again is not None:
                    timeout = min(timeout, max(again, 0.0))
            if self._busy():
                self._last_activity = time.monotonic()
            elif time.monotonic() - self._last_activity > IDLE_EXIT:
                break

    def read_pending(self) -> None:
        """Handle every request already sent by any other client (those of clients that died
        included, connections not yet accepted too) before answering a question about what
        was sent."""
        if self._reading:
            return
        self._reading = True
        try:
            if self._listener is not None:
                self._accept(self._listener)
            for c in list(self.clients.values()):
                if c is not self._current and c.sock.fileno() in self.clients:
                    self._on_client(c, selectors.EVENT_READ)
        finally:
            self._reading = False

    def _accept(self, listener: socket.socket) -> None:
        with contextlib.suppress(BlockingIOError):
            while True:
                sock, _ = listener.accept()
                sock.setblocking(False)
                c = _Client(sock)
                if c.uid != os.getuid():  # only the owner reaches the agent
                    log.warning("refused a connection from uid %d", c.uid)
                    sock.close()
                    continue
                self.clients[sock.fileno()] = c
                self.sel.register(sock, selectors.EVENT_READ, ("client", c))

    def _drop(self, c: _Client) -> None:
        with contextlib.suppress(KeyError, ValueError):
            self.sel.unregister(c.sock)
        self.clients.pop(c.sock.fileno(), None)
        c.sock.close()

    def _send(self, c: _Client, msg: dict[str, Any]) -> None:
        self._send_line(c, _line(msg))

    def _send_line(self, c: _Client, line: bytes) -> None:
        c.out += line
        self._flush(c)

    def _flush(self, c: _Client) -> None:
        try:
            while c.out:
                n = c.sock.send(c.out)
                c.out = c.out[n:]
        except BlockingIOError:
            pass
        except OSError:
            self._drop(c)
            return
        if bool(c.out) != c.writing:  # (a system call: only when it changes)
            c.writing = bool(c.out)
            events = selectors.EVENT_READ | (selectors.EVENT_WRITE if c.writing else 0)
            with contextlib.suppress(KeyError, ValueError):
                self.sel.modify(c.sock, events, ("client", c))

    def _on_client(self, c: _Client, mask: int) -> None:
        if mask & selectors.EVENT_WRITE:
            self._flush(c)
        if not mask & selectors.EVENT_READ:
            return
        try:
            data = c.sock.recv(1 << 20)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._drop(c)
            return
        c.buf += data
        while b"\n" in c.buf and c.sock.fileno() in self.clients:
            line, c.buf = c.buf.split(b"\n", 1)
            self._handle(c, line)

    def _handle(self, c: _Client, line: bytes) -> None:
        noreply = False
        try:
            msg = json.loads(line)
            noreply = bool(msg.get("noreply"))
            op = msg.get("op")
            if op == "watch":
                c.watch = set(msg.get("keys") or ["*"])
                if not noreply:
                    self._send(c, {})
                return
            handler = self.handlers.get(op)
            if handler is None:
                raise errors.InternalError(f"the pydrmaa2 agent knows no operation {op!r}")
            outer, self._current = self._current, c
            try:
                reply = handler(msg)
            finally:
                self._current = outer
        except errors.Drmaa2Error as e:
            reply = {"error": type(e).__name__, "message": str(e)}
        except Exception as e:  # a bug must not kill the agent that supervises every job
            # The log never holds a request's environment or arguments: its op and job only.
            log.error("request %s failed: %s", _describe(line), type(e).__name__)
            reply = {"error": "InternalError", "message": f"pydrmaa2 agent: {e!r}"}
        if noreply:
            if "error" in reply:
                log.warning("request %s failed: %s", _describe(line), reply["error"])
        else:
            self._send(c, reply)


def _line(msg: dict[str, Any]) -> bytes:
    """A message as the agent sends it: compact JSON, one line."""
    return _ENCODER.encode(msg).encode() + b"\n"


_ENCODER = json.JSONEncoder(separators=(",", ":"))  # (built once: the agent's hot path)


def _describe(line: bytes) -> str:
    """A request in words for the log: its op and job id, never its fields' values."""
    try:
        msg = json.loads(line)
        return f"op={str(msg.get('op'))[:40]!r} tid={str(msg.get('tid'))[:40]!r}"
    except Exception:  # noqa: BLE001 - whatever it was, it is not logged verbatim
        return f"({len(line)} bytes, not a JSON object)"


def _listen(path: Path) -> socket.socket:
    """The agent's listening socket, bound at ``path`` (0600; a dead agent's socket file
    replaced), by the agent or by the program that starts it, when nothing listens there.
    (Others are kept out by the store's private directory and the peer uid check.)"""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        listener.bind(os.fspath(path))
        os.chmod(path, 0o600)
        listener.listen(LISTEN_BACKLOG)
    except OSError:
        listener.close()
        raise
    return listener


def main(argv: list[str]) -> int:
    # Whatever the agent creates (its socket, log, lock, stores) is for its owner only; jobs
    # get their submitter's umask.
    os.umask(0o077)
    # Its starter shell ran it in the background, which ignores SIGINT and SIGQUIT: jobs would
    # inherit that. Both as a program started in the foreground has them.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGQUIT, signal.SIG_DFL)
    faulthandler.register(signal.SIGUSR1)  # kill -USR1 <pid>: every thread's stack to agent.log
    home = Path(argv[1])
    # --listen-fd=N: the socket its starter bound (and may have queued a request on already).
    handed = next((int(a.split("=", 1)[1]) for a in argv[2:] if a.startswith("--listen-fd=")),
                  None)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s agent[%(process)d] %(message)s")
    from .database import private_dir

    private_dir(home)
    lockf = open(home / "agent.lock", "a+")  # noqa: SIM115 - held for the agent's lifetime
    # With a socket handed over, an agent that has just left (it no longer listens, or its
    # starter would not have bound one) may still hold the lock for a moment: wait for its end,
    # a while (one whose socket file was removed under it keeps it: then this one gives up,
    # and its starter's request fails as a start that did not happen).
    patience = time.monotonic() + (START_TIMEOUT if handed is not None else 0.0)
    while True:
        try:
            fcntl.flock(lockf, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except OSError as e:
            if e.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            if time.monotonic() >= patience:
                if handed is not None:
                    log.error("another agent holds %s: not serving the socket handed over",
                              home / "agent.lock")
                return 0  # another agent serves this store
            time.sleep(START_POLL)
    path = socket_path(home)
    if handed is not None:
        listener = socket.socket(fileno=handed)
        os.set_inheritable(handed, False)
    else:
        listener = _listen(path)
    # The socket file this agent serves (its own, bound here or by its starter just before):
    # at exit it removes that file only, not one a later agent bound there since.
    try:
        own = os.stat(path).st_ino
    except OSError:
        own = None

    agent = Agent(home)
    # The services: each plugs its requests, busy checks and flush hooks into the loop.
    from ._arrays import ArrayService
    from ._timers import TimerService
    from .trackers.process import ProcessService

    services: list[ProcessService | ArrayService | TimerService] = [
        ProcessService(agent), ArrayService(agent), TimerService(agent)]
    log.info("serving %s", path)
    try:
        agent.serve(listener)
    finally:
        # Unlink first: a client that connects from now on starts a new agent.
        with contextlib.suppress(OSError):
            if own is not None and os.stat(path).st_ino == own:
                path.unlink()
        listener.close()
        for service in reversed(services):
            service.close()
        log.info("idle, exiting")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
