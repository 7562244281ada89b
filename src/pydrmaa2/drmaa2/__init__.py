"""Grid Engine's Python DRMAA2 API (uge-drmaa2 8.11, import name ``drmaa2``) on every pydrmaa2 tracker.

Code written for uge-drmaa2 runs on processes, containers or Slurm by changing one import::

    import pydrmaa2.drmaa2 as drmaa2          # or: from pydrmaa2.drmaa2 import JobSession

    js = drmaa2.JobSession('js-01')           # opens 'js-01' if it exists, else creates it
    j = js.run_job({'remote_command': '/bin/sleep', 'args': ['10']})
    j.wait_terminated(drmaa2.Time.INFINITE_TIME)
    state, sub_state = j.get_state()          # (JobState.DONE, None)

Names, signatures, defaults, return types and value conventions are uge-drmaa2's (unset values
read as None, bools as 'TRUE'/'FALSE', enum fields as member names, times as naive UTC datetimes
or Time names, timeouts in seconds with Time.INFINITE_TIME / Time.ZERO_TIME); every operation
is delegated to pydrmaa2's sessions, and pydrmaa2's errors are raised as uge-drmaa2's classes.

Modules: uge-drmaa2's own layout answers too (``from drmaa2.drmaa2_constants import POSIX_EPOCH``,
``drmaa2.job_session.JobSession``). Each of its modules is a module here holding the very objects
of this package, and is also found under an alias of the package: ``sys.modules['drmaa2'] =
pydrmaa2.drmaa2`` before the first ``import drmaa2`` (or a ``drmaa2.py`` that does this with its
own ``__name__``). Beyond the package's names they hold drmaa2_constants' UNSET_* values,
POSIX_EPOCH and PY_DICT_TYPE/PY_STRING_TYPE/PY_BYTES_TYPE, byte_string.ByteString,
drmaa2_object.Drmaa2Object, exception_mapper.ExceptionMapper, singleton.Singleton and
slot_info.SlotInfo (a data object that no call returns, in uge-drmaa2 neither).

Environment:

- ``PYDRMAA2_CONTACT``: the tracker where the API has no contact argument (MonitoringSession,
  drmaa_supports, notifications) and when a new Job- or ReservationSession gets
  ``contact=None``; else process.
- ``PYDRMAA2_JOB_CATEGORY``: the job category of templates that set none, so that unchanged
  uge-drmaa2 code runs on container trackers (the category names the image there).
- ``PYDRMAA2_HOME``: the pydrmaa2 store; one SessionManager per store is created on first use.

Session names: uge-drmaa2 lists sessions as ``user@name``. A pydrmaa2 store belongs to one user,
so ``list_session_names()``/``get_job_session_names()`` return the plain names, the same that
pydrmaa2 and the ``drmaa2`` command show; ``JobSession(name)`` and ``destroy_by_name`` accept
``name`` and ``<your user>@name`` alike.

Where this differs from uge-drmaa2 8.11, on purpose:

- uge-drmaa2's bugs are not reproduced: Notification and event callbacks work,
  ``Job.get_state()`` returns the sub-state as ``str`` (not bytes), float timeouts work,
  ``Sudo(uid=0)`` keeps uid 0, ``destroy_by_name(name, auth)`` works, and a dict key that
  names no property raises InvalidArgument instead of being silently ignored.
- There is no C library: ``LibraryManager.get_drmaa2_library()`` returns the pydrmaa2
  SessionManager, and the ctypes helpers (``to_py_*``, ``to_ctypes_*``, ``create_from_ctypes``)
  do not exist. Objects are built from dicts (``JobTemplate({...})``) or from pydrmaa2's objects
  (``Job(pydrmaa2_job)``). Five modules of uge-drmaa2 are not here: ``drmaa2_ctypes`` (ctypes
  mirrors of libdrmaa2's C structures) and the descriptors that read and write fields of those
  structures (``drmaa2_object_descriptors``, ``drmaa2_job_list_descriptor``,
  ``drmaa2_slot_info_list_descriptor``, ``drmaa2_version_descriptor``): there is no C structure
  to hand them, and code using uge-drmaa2 has no reason to import them. ExceptionMapper keeps
  its map and ``check_status_code(code)``, without libdrmaa2's last-error readers
  (``get_last_error_message``, ``last_error_code``, ``check_last_error_code``): pydrmaa2 raises
  its errors at once and keeps no last error.
- Implementation-specific values are pydrmaa2's open-ended ``extensions``: no fixed key list
  (``get_implementation_specific_keys()`` is ``[]``), any key may be set, and a tracker refuses
  keys it does not know when the job is submitted (UnsupportedAttribute).
- ``auth`` (Sudo) is accepted only when it names the calling user; anything else raises
  UnsupportedOperation, as pydrmaa2 acts as the calling user only.
- What a tracker cannot do raises UnsupportedOperation, as uge-drmaa2 does for an unsupported
  operation: e.g. ReservationSession on trackers without advance reservations.
- Jobs and reservations found by a MonitoringSession are snapshots: ``get_info``/``get_state``
  work, operations raise UnsupportedOperation (act on them through their job session).
- MachineInfo memory is in KiB, as in DRMAA2 (pydrmaa2 reports bytes).
- Logging is configured only by ``LogManager.get_instance().configure()``, never on import.
"""

# The names come through uge-drmaa2's own modules, as in its __init__, so that every module is an
# attribute of the package after ``import drmaa2``; they are defined in the private modules.
from . import byte_string, drmaa2_object, exception_mapper, singleton, slot_info  # noqa: F401
from .drmaa2_constants import (
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
from .drmaa2_exceptions import (
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
from .job import Job
from .job_array import JobArray
from .job_info import JobInfo
from .job_session import JobSession
from .job_template import JobTemplate
from .library_manager import LibraryManager
from .log_manager import LogManager
from .machine_info import MachineInfo
from .monitoring_session import MonitoringSession
from .notification import Notification
from .queue_info import QueueInfo
from .reservation import Reservation
from .reservation_info import ReservationInfo
from .reservation_session import ReservationSession
from .reservation_template import ReservationTemplate
from .sudo import Sudo
from .version import Version

#: The DRM system's name ("pydrmaa2"), as uge-drmaa2's module function.
get_drms_name = LibraryManager.get_drms_name
#: The DRMAA implementation's name, as uge-drmaa2's module function.
get_drmaa_name = LibraryManager.get_drmaa_name
#: Whether the tracker of PYDRMAA2_CONTACT offers a Capability.
drmaa_supports = LibraryManager.drmaa_supports
#: The DRM system's Version.
get_drms_version = Version.get_drms_version
#: The DRMAA version implemented (2.0).
get_drmaa_version = Version.get_drmaa_version
#: The names of the job sessions of the store.
get_job_session_names = JobSession.list_session_names
#: The names of the reservation sessions of the store.
get_reservation_session_names = ReservationSession.list_session_names

#: The uge-drmaa2 version whose API this module offers.
__version__ = "8.11.0"

__all__ = [
    "AuthorizationError", "Bool", "Capability", "Cpu", "DeniedByDrms", "DrmCommunicationError",
    "Drmaa2Exception", "Event", "ImplementationSpecificError", "InternalError",
    "InvalidArgument", "InvalidSession", "InvalidState", "Job", "JobArray", "JobInfo",
    "JobSession", "JobState", "JobTemplate", "LibraryManager", "ListType", "LogManager",
    "MachineInfo", "MonitoringSession", "Notification", "Os", "QueueInfo", "Reservation",
    "ReservationInfo", "ReservationSession", "ReservationTemplate", "ResourceLimit",
    "ResourceNotAvailable", "SessionManagementError", "StatusCode", "Sudo", "Time",
    "TimeoutError", "TryLaterError", "UnsupportedAttribute", "UnsupportedOperation", "Version",
    "__version__", "drmaa_supports", "get_drmaa_name", "get_drmaa_version", "get_drms_name",
    "get_drms_version", "get_job_session_names", "get_reservation_session_names",
]

# Public classes show (and pickle) under this module's name, not the private one defining them.
for _name in __all__:
    if isinstance(globals()[_name], type):
        globals()[_name].__module__ = __name__
del _name
