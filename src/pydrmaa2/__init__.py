"""pydrmaa2: the DRMAA2 job-management API for Python, on pluggable job trackers.

Submit, control, wait for and account jobs and job arrays on OS processes, containers or Slurm
with one API; sessions persist in a store shared by every program of the user.
"""

from .errors import (
    DeniedByDrmsError,
    Drmaa2Error,
    DrmCommunicationError,
    ImplementationSpecificError,
    InternalError,
    InvalidArgumentError,
    InvalidSessionError,
    InvalidStateError,
    OutOfResourceError,
    SessionManagementError,
    TimeoutError,
    TryLaterError,
    UnsupportedAttributeError,
    UnsupportedOperationError,
)
from .info import JobInfo, MachineInfo, Notification, QueueInfo, ReservationInfo, Version
from .jobs import Job, JobArray, Reservation
from .session import (
    INFINITE_TIME,
    ZERO_TIME,
    JobSession,
    MonitoringSession,
    ReservationSession,
    SessionManager,
)
from .states import CPU, OS, Capability, Event, JobState
from .templates import JobTemplate, ReservationTemplate

__version__ = "0.1.0"

__all__ = [
    "CPU", "OS", "Capability", "DeniedByDrmsError", "DrmCommunicationError", "Drmaa2Error",
    "Event", "INFINITE_TIME", "ImplementationSpecificError", "InternalError",
    "InvalidArgumentError", "InvalidSessionError", "InvalidStateError", "Job", "JobArray",
    "JobInfo", "JobSession", "JobState", "JobTemplate", "MachineInfo", "MonitoringSession",
    "Notification", "OutOfResourceError", "QueueInfo", "Reservation", "ReservationInfo",
    "ReservationSession", "ReservationTemplate", "SessionManagementError", "SessionManager",
    "TimeoutError", "TryLaterError", "UnsupportedAttributeError", "UnsupportedOperationError",
    "Version", "ZERO_TIME", "__version__",
]
