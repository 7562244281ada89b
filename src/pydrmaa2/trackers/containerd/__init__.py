"""The containerd tracker (contact ``containerd[:///path.sock][?namespace=N]``): jobs are
containerd containers and their tasks, driven over containerd's own gRPC API, after drmaa2os's
containerd tracker mapping (its README).

A job is a container (rootfs: a snapshot of the image's layers; an OCI runtime spec built from
the template) and its task. The shim writes output_path and error_path and reads input_path
itself, so a job's files are complete and outlive the submitter. Hold creates the task without
starting it; release starts it. A stopped task is deleted once its exit status, times and CPU
time are kept in ``containerd.sqlite``; then the stage_out_files are copied out of the
container's snapshot, mounted read-only, and only then is the job ended; reap deletes the
container and its snapshot.

Modules, top down: ``tables`` (STATES, CONTROL, ERRORS and the one error boundary), ``api``
(the wire API), ``spec`` (the template as an OCI runtime spec), ``rootfs`` (the snapshot's files
and the stage-out copy), ``records`` (the SQLite rows), ``events`` (task events as change feeds),
``tracker`` (the ContainerdTracker).
"""

from __future__ import annotations

from .spec import EXTENSIONS, normalize_image
from .tables import CONTROL, ERRORS, STATES
from .tracker import (
    DEFAULT_NAMESPACE,
    DEFAULT_RUNTIME,
    DEFAULT_SNAPSHOTTER,
    DEFAULT_SOCKET,
    LABEL,
    ContainerdTracker,
)

__all__ = ["ContainerdTracker", "STATES", "CONTROL", "ERRORS", "EXTENSIONS", "DEFAULT_SOCKET",
           "DEFAULT_NAMESPACE", "DEFAULT_SNAPSHOTTER", "DEFAULT_RUNTIME", "LABEL", "normalize_image"]
