"""How a container engine's error answer becomes a Drmaa2Error, for each engine's one boundary:
an answer saying the engine cannot act just now is a DrmCommunicationError, any other is looked
up in the engine's ERRORS table; the message keeps the engine's words and address."""

from __future__ import annotations

import re
from collections.abc import Mapping

from ...errors import (
    DeniedByDrmsError,
    Drmaa2Error,
    DrmCommunicationError,
    ImplementationSpecificError,
    InvalidArgumentError,
    InvalidStateError,
)

__all__ = ["HTTP_STATUSES", "OUTAGE", "EngineErrors", "engine_error", "outage"]

#: An engine's ERRORS table: an HTTP status, or words of the engine's error, -> the Drmaa2Error
#: class it becomes. The first entry that matches wins.
EngineErrors = Mapping[int | str, type[Drmaa2Error]]

#: What an HTTP status of an engine's REST API means, whichever the engine: a part of each
#: engine's ERRORS table.
HTTP_STATUSES: dict[int | str, type[Drmaa2Error]] = {
    400: InvalidArgumentError,      # a request the engine refuses: the template's values
    404: InvalidArgumentError,      # no such container or image
    304: InvalidStateError,         # already in the state asked for
    409: InvalidStateError,         # not running, paused, in use
    401: DeniedByDrmsError,
    403: DeniedByDrmsError,
}

#: Words of an engine's error answer (HTTP 5xx) saying that the engine, or what it stands on
#: (dockerd's containerd), cannot act just now rather than that the request is wrong: such an
#: answer is a DrmCommunicationError, as a refused connection is. Dockerd says e.g. 'connection
#: error: desc = "transport: Error while dialing dial unix /run/containerd/containerd.sock:
#: connect: connection refused": unavailable' while containerd is down.
OUTAGE = re.compile(r"connection refused|connection reset|broken pipe|connection error|"
                    r"error while dialing|transport is closing|did not receive an exit event|"
                    r"containerd\.sock", re.IGNORECASE)


def outage(status: int | None, explanation: str) -> bool:
    """Whether an engine's error answer means that it cannot act just now (see OUTAGE)."""
    code = status or 0
    return code in (502, 503, 504) or (code >= 500 and OUTAGE.search(explanation) is not None)


def engine_error(errors: EngineErrors, doing: str, engine: str, status: int | None,
                 explanation: str, words: str | None = None,
                 default: type[Drmaa2Error] = ImplementationSpecificError) -> Drmaa2Error:
    """The Drmaa2Error of an engine's error answer while ``doing`` something.

    ``engine`` names the engine and its address ("Docker engine at unix:///..."). An outage is
    DrmCommunicationError; else the first entry of ``errors`` whose key is ``status`` or a
    phrase found in ``words`` (the engine's error, by default its ``explanation``) gives the
    class, ``default`` when none does.
    """
    if outage(status, explanation):
        return DrmCommunicationError(f"{doing}: the {engine} cannot act now: {explanation}")
    text = explanation if words is None else words
    cls = next((c for key, c in errors.items()
                if (key == status if isinstance(key, int) else key in text)), default)
    return cls(f"{doing}: {explanation} ({engine})")
