"""containerd in DRMAA2's words: a task's status as a job state (STATES), job control as the
Tasks calls that do it (CONTROL), gRPC status codes as Drmaa2Errors (ERRORS), and the functions
that read them, among them the one boundary where gRPC errors become Drmaa2Errors."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator

import grpc

from ...errors import (
    DeniedByDrmsError,
    Drmaa2Error,
    DrmCommunicationError,
    ImplementationSpecificError,
    InvalidArgumentError,
    InvalidStateError,
    OutOfResourceError,
)
from ...states import JobState
from ..base import Action
from .api import TaskStatus

__all__ = ["STATES", "CONTROL", "TASK_CALLS", "ERRORS", "job_state", "drmaa2_error", "rpc_errors"]

#: A task's status -> the job's state. None: by exit status, DONE for 0, else FAILED. A held job's
#: CREATED task is QUEUED_HELD; a container without a task is QUEUED.
STATES: dict[TaskStatus, JobState | None] = {
    TaskStatus.CREATED: JobState.QUEUED,
    TaskStatus.RUNNING: JobState.RUNNING,
    TaskStatus.PAUSING: JobState.RUNNING,
    TaskStatus.PAUSED: JobState.SUSPENDED,
    TaskStatus.STOPPED: None,
    TaskStatus.UNKNOWN: JobState.UNDETERMINED,
}

#: DRMAA2 job control -> the Tasks call that does it. HOLD calls nothing: a held job's task is
#: created and stays unstarted until RELEASE starts it. TERMINATE kills every process of the task
#: with SIGTERM, then SIGKILL after a grace period; a task that never started is deleted instead.
CONTROL: dict[Action, str | None] = {
    Action.SUSPEND: "tasks.Pause",
    Action.RESUME: "tasks.Resume",
    Action.TERMINATE: "tasks.Kill",
    Action.HOLD: None,
    Action.RELEASE: "tasks.Start",
}
#: CONTROL's actions that make a Tasks call, and the call.
TASK_CALLS: dict[Action, str] = {action: call for action, call in CONTROL.items() if call is not None}

_UNREACHABLE = (DrmCommunicationError, "{what}: cannot reach {where}: {details}")
_REFUSED = (DeniedByDrmsError, "{what}: {where} refused: {details}")
_INVALID = (InvalidArgumentError, "{what}: {details}")

#: gRPC status code -> the Drmaa2Error raised and its message ({what} was being done, {where} is
#: containerd's address, {details} its explanation). NOT_FOUND's error is the caller's: a missing
#: image is an invalid argument, a task gone under a control call an invalid state.
ERRORS: dict[grpc.StatusCode, tuple[type[Drmaa2Error], str]] = {
    grpc.StatusCode.UNAVAILABLE: _UNREACHABLE,
    grpc.StatusCode.CANCELLED: _UNREACHABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED: (DrmCommunicationError,
                                        "{what}: {where} did not answer in time"),
    grpc.StatusCode.NOT_FOUND: _INVALID,
    grpc.StatusCode.FAILED_PRECONDITION: (InvalidStateError, "{what}: {details}"),
    grpc.StatusCode.INVALID_ARGUMENT: _INVALID,
    grpc.StatusCode.ALREADY_EXISTS: _INVALID,
    grpc.StatusCode.PERMISSION_DENIED: _REFUSED,
    grpc.StatusCode.UNAUTHENTICATED: _REFUSED,
    grpc.StatusCode.RESOURCE_EXHAUSTED: (OutOfResourceError, "{what}: {where}: {details}"),
}
#: Any other code.
OTHER_ERROR = (ImplementationSpecificError, "{what}: {where} says: {details}")
#: Details of an UNKNOWN or INTERNAL error that mean the connection to containerd broke: such an
#: error is UNAVAILABLE's.
TRANSPORT_BROKEN = re.compile(r"stream removed|socket closed|connection reset|broken pipe|goaway|"
                              r"failed to connect|connection refused", re.IGNORECASE)
#: Details of an UNKNOWN error that mean the call's own deadline ran out inside containerd
#: (it passes the deadline on to the shim and reports the shim's timeout as UNKNOWN): such an
#: error is DEADLINE_EXCEEDED's.
DEADLINE_PASSED = re.compile(r"context deadline exceeded", re.IGNORECASE)


def job_state(status: TaskStatus, exit_status: int, held: bool) -> JobState:
    """The state of a job whose task has ``status`` (see STATES)."""
    state = STATES[status]
    if state is None:
        return JobState.DONE if exit_status == 0 else JobState.FAILED
    if status is TaskStatus.CREATED and held:
        return JobState.QUEUED_HELD
    return state


def drmaa2_error(e: grpc.RpcError, what: str, address: str,
                 not_found: type[Drmaa2Error] = InvalidArgumentError) -> Drmaa2Error:
    """The Drmaa2Error for gRPC error ``e`` of containerd at ``address`` (see ERRORS), keeping
    containerd's explanation."""
    code, details = e.code(), e.details()
    if code in (grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL) and TRANSPORT_BROKEN.search(
            details or ""):
        code = grpc.StatusCode.UNAVAILABLE
    elif code is grpc.StatusCode.UNKNOWN and DEADLINE_PASSED.search(details or ""):
        code = grpc.StatusCode.DEADLINE_EXCEEDED
    kind, message = ERRORS.get(code, OTHER_ERROR)
    if code is grpc.StatusCode.NOT_FOUND:
        kind = not_found
    return kind(message.format(what=what, where=f"containerd at {address}", details=details))


@contextlib.contextmanager
def rpc_errors(what: str, address: str,
               not_found: type[Drmaa2Error] = InvalidArgumentError) -> Iterator[None]:
    """Every call to containerd runs in this: a gRPC error leaves it as ``drmaa2_error``'s."""
    try:
        yield
    except grpc.RpcError as e:
        raise drmaa2_error(e, what, address, not_found) from e
