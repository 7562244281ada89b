"""The trackers the conformance suite runs against, and how to tell whether each is available."""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
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


TARGETS: dict[str, Target] = {
    "process": Target("process", "process", slow=10.0),
    "docker": Target("docker", "docker", TEST_IMAGE,
                     _unix_socket("/var/run/docker.sock", "docker")),
    "podman": Target("podman", "podman", TEST_IMAGE,
                     _unix_socket("/run/podman/podman.sock", "podman")),
    "containerd": Target("containerd", "containerd", TEST_IMAGE,
                         _unix_socket("/run/containerd/containerd.sock", "grpc")),
    "slurm": Target("slurm", "slurm", None, _slurm, slow=60.0),
}
