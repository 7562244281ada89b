"""The trackers the conformance suite runs against, and how to tell whether each is available;
the remote targets reach local trackers through a ``drmaa2 serve`` of the test run (LocalServer)."""

from __future__ import annotations

import contextlib
import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..templates import JobTemplate

#: The image the project's engine script builds and loads into every container engine.
TEST_IMAGE = "pydrmaa2-test:latest"


@dataclass
class Target:
    """One tracker under test: its contact, the job category its templates need, a probe."""

    name: str
    contact: str
    job_category: str | None = None
    #: Returns None when the engine is usable here, else the reason it is not.
    probe: Callable[[], str | None] = field(default=lambda: None)
    #: Seconds a trivial job may take from submission to end on this engine (for test timeouts).
    slow: float = 20.0

    def template(self, command: str, *args: str, **fields: Any) -> JobTemplate:
        """A template running ``command args`` with this target's job category."""
        return JobTemplate(remote_command=command, args=list(args),
                           job_category=self.job_category, **fields)

    def sh(self, script: str, **fields: Any) -> JobTemplate:
        """A template running a /bin/sh script."""
        return self.template("/bin/sh", "-c", script, **fields)


def _unix_socket(path: str, module: str) -> Callable[[], str | None]:
    def probe() -> str | None:
        try:
            __import__(module)
        except ImportError:
            return f"the Python package {module!r} is not installed"
        if not os.path.exists(path):
            return f"no engine socket at {path}"
        s = socket.socket(socket.AF_UNIX)
        try:
            s.connect(path)
        except OSError as e:
            return f"engine socket {path} does not answer: {e}"
        finally:
            s.close()
        return None

    return probe


def _slurm() -> str | None:
    if shutil.which("sbatch") is None:
        return "the Slurm commands are not installed"
    import subprocess

    r = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=20)
    if r.returncode != 0:
        return f"sinfo failed: {r.stderr.strip()}"
    return None


class _UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP over a Unix socket, with the standard library only (the server's extra may be
    missing where the probe runs)."""

    def __init__(self, path: str) -> None:
        super().__init__("drmaa2", timeout=5.0)
        self.path = path

    def connect(self) -> None:
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(self.timeout)
        try:
            s.connect(self.path)
        except OSError:
            s.close()
            raise
        self.sock = s


class LocalServer:
    """A ``drmaa2 serve`` on a Unix socket in ``directory`` (``serve.sock``), with a store of its
    own (``home``, where it writes its token), started as a program of its own and ended by pid."""

    #: Seconds a starting server has to answer GET /v1/info.
    START_TIMEOUT = 60.0

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.socket = directory / "serve.sock"
        self.home = directory / "home"
        self.token_file = self.home / "serve.token"
        self.log = directory / "serve.log"
        self.process: subprocess.Popen[bytes] | None = None
        #: Whether this program started the server (and so may remove its directory).
        self.started = False

    def contact(self, server_contact: str) -> str:
        """The remote tracker's contact for the server's tracker ``server_contact``."""
        return (f"drmaa2+unix://{self.socket}?contact={server_contact}"
                f"&token_file={self.token_file}")

    def start(self) -> str | None:
        """Start the server unless it runs; None once it answers, else why it does not."""
        if self.process is not None and self.process.poll() is None:
            return self.answers()
        env = dict(os.environ, PYDRMAA2_HOME=str(self.home))
        try:
            self.home.mkdir(parents=True, exist_ok=True, mode=0o700)
            with contextlib.suppress(FileNotFoundError):
                self.socket.unlink()
            self.started = True
            with open(self.log, "ab") as log:
                self.process = subprocess.Popen(
                    [sys.executable, "-m", "pydrmaa2.cli", "serve", "--socket", str(self.socket)],
                    env=env, cwd=self.directory, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                    start_new_session=True)
        except OSError as e:
            return f"cannot start drmaa2 serve in {self.directory}: {e}"
        deadline = time.monotonic() + self.START_TIMEOUT
        why = "it did not start"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return f"drmaa2 serve exited with status {self.process.returncode}: {self._tail()}"
            why = self.answers() or ""
            if not why:
                return None
            time.sleep(0.1)  # no event tells that a server listens: look again
        self.stop()
        return f"drmaa2 serve did not answer on {self.socket} in {self.START_TIMEOUT} s: {why}"

    def answers(self) -> str | None:
        """None when the server answers GET /v1/info with its token, else why not."""
        try:
            token = self.token_file.read_text().strip()
            connection = _UnixHTTPConnection(str(self.socket))
            try:
                connection.request("GET", "/v1/info", headers={"Authorization": f"Bearer {token}"})
                r = connection.getresponse()
                status, body = r.status, r.read(200).decode(errors="replace")
            finally:
                connection.close()
        except (OSError, http.client.HTTPException) as e:
            return f"{type(e).__name__}: {e}"
        return None if status == 200 else f"GET /v1/info: HTTP {status} {body}"

    def stop(self) -> None:
        """End the server (its pid: SIGTERM, then SIGKILL) and its store's agent."""
        if self.process is not None:
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGTERM)
                try:
                    self.process.wait(10)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait()
            self.process = None
        if self.home.is_dir():
            from ..agent import AgentClient

            AgentClient.for_home(self.home).close()

    def _tail(self) -> str:
        with contextlib.suppress(OSError):
            return self.log.read_text(errors="replace")[-2000:].strip()
        return "(no log)"


#: The test run's server (its directory is kept in $PYDRMAA2_TEST_SERVE for the programs the
#: tests start); started by the first probe of a remote target, ended when the run ends.
SERVER = LocalServer(Path(os.environ.get("PYDRMAA2_TEST_SERVE") or os.path.join(
    tempfile.gettempdir(), f"pydrmaa2-serve-{os.getuid()}-{os.getpid()}")))


def _served(engine: Callable[[], str | None] | None) -> Callable[[], str | None]:
    """The probe of a remote target: its server-side engine, then the test run's server."""
    def probe() -> str | None:
        why = engine() if engine is not None else None
        if why is not None:
            return f"the server's tracker is unavailable: {why}"
        os.environ["PYDRMAA2_TEST_SERVE"] = str(SERVER.directory)
        why = SERVER.start()
        return None if why is None else f"no drmaa2 server on {SERVER.socket}: {why}"

    return probe


TARGETS: dict[str, Target] = {
    "process": Target("process", "process", slow=10.0),
    "docker": Target("docker", "docker", TEST_IMAGE,
                     _unix_socket("/var/run/docker.sock", "docker")),
    "podman": Target("podman", "podman", TEST_IMAGE,
                     _unix_socket("/run/podman/podman.sock", "podman")),
    "containerd": Target("containerd", "containerd", TEST_IMAGE,
                         _unix_socket("/run/containerd/containerd.sock", "grpc")),
    "slurm": Target("slurm", "slurm", None, _slurm, slow=60.0),
    "remote-process": Target("remote-process", SERVER.contact("process"), None,
                             _served(None), slow=15.0),
    "remote-slurm": Target("remote-slurm", SERVER.contact("slurm"), None, _served(_slurm),
                           slow=60.0),
}
