"""The DRMAA2 error tree: every error pydrmaa2 raises derives from Drmaa2Error.

Each message names the value at fault, so a user can act on it without a traceback.
"""

from __future__ import annotations

import builtins

__all__ = [
    "Drmaa2Error",
    "DeniedByDrmsError",
    "DrmCommunicationError",
    "TryLaterError",
    "SessionManagementError",
    "TimeoutError",
    "InternalError",
    "InvalidArgumentError",
    "InvalidSessionError",
    "InvalidStateError",
    "OutOfResourceError",
    "UnsupportedAttributeError",
    "UnsupportedOperationError",
    "ImplementationSpecificError",
]


class Drmaa2Error(Exception):
    """Root of all pydrmaa2 errors."""


class DeniedByDrmsError(Drmaa2Error):
    """The engine refused the request (permissions, policy)."""


class DrmCommunicationError(Drmaa2Error):
    """The engine could not be reached or answered garbage; the message names its address."""


class TryLaterError(Drmaa2Error):
    """The engine is busy; the same request may succeed later."""


class SessionManagementError(Drmaa2Error):
    """Creating, opening or destroying a session failed."""


class TimeoutError(Drmaa2Error, builtins.TimeoutError):  # noqa: A001 - DRMAA2's name
    """A wait ran out of time before its condition held."""


class InternalError(Drmaa2Error):
    """A bug or an inconsistent store: please report it."""


class InvalidArgumentError(Drmaa2Error, ValueError):
    """An argument (template field, name, range) is wrong; the message names it."""


class InvalidSessionError(Drmaa2Error):
    """The session is closed or was destroyed."""


class InvalidStateError(Drmaa2Error):
    """The job is not in a state that allows the operation."""


class OutOfResourceError(Drmaa2Error):
    """The engine ran out of a resource (disk, memory, slots)."""


class UnsupportedAttributeError(Drmaa2Error):
    """A template field or extension that this tracker cannot honour was set."""


class UnsupportedOperationError(Drmaa2Error):
    """The tracker cannot perform this operation at all."""


class ImplementationSpecificError(Drmaa2Error):
    """An engine-specific failure that fits no other class; the engine's message is kept."""
