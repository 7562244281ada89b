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
  (``Job(pydrmaa2_job)``).
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

from ._constants import (
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
from ._exceptions import (
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
from ._objects import (
    JobInfo,
    JobTemplate,
    LogManager,
    MachineInfo,
    QueueInfo,
    ReservationInfo,
    ReservationTemplate,
    Sudo,
    Version,
)
from ._sessions import (
    Job,
    JobArray,
    JobSession,
    LibraryManager,
    MonitoringSession,
    Notification,
    Reservation,
    ReservationSession,
)

get_drms_name = LibraryManager.get_drms_name
get_drmaa_name = LibraryManager.get_drmaa_name
drmaa_supports = LibraryManager.drmaa_supports
get_drms_version = Version.get_drms_version
get_drmaa_version = Version.get_drmaa_version
get_job_session_names = JobSession.list_session_names
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
