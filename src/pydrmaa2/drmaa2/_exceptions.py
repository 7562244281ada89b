"""uge-drmaa2's exception classes, and the one boundary where pydrmaa2's errors become them.

``boundary`` (a context manager and decorator) re-raises every pydrmaa2 ``Drmaa2Error`` as the
uge-drmaa2 class of the same DRMAA2 error code, with the same message and the original as cause.
"""

from __future__ import annotations

import contextlib
from types import TracebackType
from typing import ClassVar, Literal

from .. import errors as core
from ._constants import StatusCode

__all__ = ["Drmaa2Exception", "DeniedByDrms", "DrmCommunicationError", "TryLaterError",
           "SessionManagementError", "TimeoutError", "InternalError", "InvalidArgument",
           "InvalidSession", "InvalidState", "ResourceNotAvailable", "UnsupportedAttribute",
           "UnsupportedOperation", "ImplementationSpecificError", "AuthorizationError",
           "ExceptionMapper", "boundary"]


class Drmaa2Exception(Exception):
    """Root of uge-drmaa2's exceptions; ``error_code`` is the DRMAA2 StatusCode."""

    #: The code every instance of the class carries (the root's is UNSET_ERROR).
    code = StatusCode.UNSET_ERROR

    def __init__(self, error: str = "", error_code: StatusCode = StatusCode.UNSET_ERROR) -> None:
        super().__init__(error)
        self.error_code = error_code


class _Coded(Drmaa2Exception):
    """A subclass whose error_code is fixed by the class (uge-drmaa2's constructors take only error)."""

    def __init__(self, error: str = "") -> None:
        super().__init__(error, self.code)


class DeniedByDrms(_Coded):
    """The engine refused the operation."""

    code = StatusCode.DENIED_BY_DRMS


class DrmCommunicationError(_Coded):
    """The engine could not be contacted."""

    code = StatusCode.DRM_COMMUNICATION


class TryLaterError(_Coded):
    """A transient problem: the same call may succeed later."""

    code = StatusCode.TRY_LATER


class SessionManagementError(_Coded):
    """Creating, opening or destroying a session failed."""

    code = StatusCode.SESSION_MANAGEMENT


class TimeoutError(_Coded):  # noqa: A001 - uge-drmaa2's name; not the builtin
    """A wait ran out of time."""

    code = StatusCode.TIMEOUT


class InternalError(_Coded):
    """An internal error of pydrmaa2."""

    code = StatusCode.INTERNAL


class InvalidArgument(_Coded):
    """An argument is wrong; the message names it."""

    code = StatusCode.INVALID_ARGUMENT


class InvalidSession(_Coded):
    """The session is closed or was destroyed."""

    code = StatusCode.INVALID_SESSION


class InvalidState(_Coded):
    """The job is not in a state that allows the operation."""

    code = StatusCode.INVALID_STATE


class ResourceNotAvailable(_Coded):
    """The engine ran out of a resource."""

    code = StatusCode.OUT_OF_RESOURCE


class UnsupportedAttribute(_Coded):
    """A template field the tracker cannot honour was set."""

    code = StatusCode.UNSUPPORTED_ATTRIBUTE


class UnsupportedOperation(_Coded):
    """The tracker cannot do this at all (e.g. reservations on the process tracker)."""

    code = StatusCode.UNSUPPORTED_OPERATION


class ImplementationSpecificError(_Coded):
    """An engine-specific failure; the engine's message is kept."""

    code = StatusCode.IMPLEMENTATION_SPECIFIC


class AuthorizationError(_Coded):
    """The caller may not act as the requested user."""

    code = StatusCode.AUTHORIZATION


class ExceptionMapper:
    """uge-drmaa2's table from DRMAA2 StatusCode to exception class, and the check that raises
    one. (libdrmaa2's last-error readers are not here: pydrmaa2 raises its errors at once.)"""

    EXCEPTION_MAP: ClassVar[dict[StatusCode, type[Drmaa2Exception] | None]] = {
        StatusCode.UNSET_ERROR: Drmaa2Exception,
        StatusCode.SUCCESS: None,
        **{cls.code: cls for cls in _Coded.__subclasses__()},
    }

    @classmethod
    def check_status_code(cls, code: StatusCode | int, message: str = "") -> None:
        """Raise the exception of ``code`` with ``message``; SUCCESS raises nothing."""
        try:
            status = StatusCode(code)
        except ValueError:
            raise InvalidArgument(f"{code!r} is not a DRMAA2 StatusCode") from None
        error = cls.EXCEPTION_MAP.get(status, Drmaa2Exception)
        if error is not None:
            raise error(message)


_FROM_CORE: dict[type[core.Drmaa2Error], type[Drmaa2Exception]] = {
    core.Drmaa2Error: Drmaa2Exception,
    core.DeniedByDrmsError: DeniedByDrms,
    core.DrmCommunicationError: DrmCommunicationError,
    core.TryLaterError: TryLaterError,
    core.SessionManagementError: SessionManagementError,
    core.TimeoutError: TimeoutError,
    core.InternalError: InternalError,
    core.InvalidArgumentError: InvalidArgument,
    core.InvalidSessionError: InvalidSession,
    core.InvalidStateError: InvalidState,
    core.OutOfResourceError: ResourceNotAvailable,
    core.UnsupportedAttributeError: UnsupportedAttribute,
    core.UnsupportedOperationError: UnsupportedOperation,
    core.ImplementationSpecificError: ImplementationSpecificError,
}


def translate(error: core.Drmaa2Error) -> Drmaa2Exception:
    """The uge-drmaa2 exception for a pydrmaa2 error: nearest class in its MRO, same message."""
    cls = next(_FROM_CORE[c] for c in type(error).__mro__ if c in _FROM_CORE)
    return cls(str(error))


class _Boundary(contextlib.ContextDecorator):
    """Where pydrmaa2 errors leave as uge-drmaa2 exceptions (``with boundary:`` or ``@boundary``)."""

    def __enter__(self) -> _Boundary:
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None,
                 tb: TracebackType | None) -> Literal[False]:
        if isinstance(e, core.Drmaa2Error):
            raise translate(e) from e
        return False


boundary = _Boundary()
