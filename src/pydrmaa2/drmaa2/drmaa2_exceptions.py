"""uge-drmaa2's ``drmaa2.drmaa2_exceptions``: the exception classes of ``pydrmaa2.drmaa2``."""

from pydrmaa2.drmaa2._aliases import settle
from pydrmaa2.drmaa2._exceptions import (
    AuthorizationError,
    DeniedByDrms,
    Drmaa2Exception,
    DrmCommunicationError,
    ImplementationSpecificError,
    InternalError,
    InvalidArgument,
    InvalidSession,
    InvalidState,
    ResourceNotAvailable,
    SessionManagementError,
    TimeoutError,
    TryLaterError,
    UnsupportedAttribute,
    UnsupportedOperation,
)

__all__ = ["Drmaa2Exception", "DeniedByDrms", "DrmCommunicationError", "TryLaterError",
           "SessionManagementError", "TimeoutError", "InternalError", "InvalidArgument",
           "InvalidSession", "InvalidState", "ResourceNotAvailable", "UnsupportedAttribute",
           "UnsupportedOperation", "ImplementationSpecificError", "AuthorizationError"]

settle(__name__)
