"""uge-drmaa2's ``drmaa2.drmaa2_constants``: the enumerations of ``pydrmaa2.drmaa2``, the UNSET_*
values, POSIX_EPOCH and the PY_*_TYPE aliases."""

from pydrmaa2.drmaa2._aliases import settle
from pydrmaa2.drmaa2._constants import (
    POSIX_EPOCH,
    PY_BYTES_TYPE,
    PY_DICT_TYPE,
    PY_STRING_TYPE,
    UNSET_BOOL,
    UNSET_ENUM,
    UNSET_NUM,
    UNSET_PRIORITY,
    UNSET_TIME,
    Bool,
    Capability,
    Cpu,
    Event,
    JobState,
    ListType,
    Os,
    ResourceLimit,
    StatusCode,
    Time,
)

__all__ = ["UNSET_BOOL", "UNSET_ENUM", "UNSET_NUM", "UNSET_PRIORITY", "UNSET_TIME", "POSIX_EPOCH",
           "PY_DICT_TYPE", "PY_STRING_TYPE", "PY_BYTES_TYPE", "Bool", "Time", "Capability", "Cpu",
           "Event", "JobState", "Os", "ResourceLimit", "ListType", "StatusCode"]

settle(__name__)
