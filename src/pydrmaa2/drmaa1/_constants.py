"""DRMAA 1.0's numbers and names as data: error codes and their texts, job states, control
actions, attribute names, and the DRMAA2 errors and states they correspond to."""

from __future__ import annotations

import enum

from .. import errors
from ..states import JobState


class Errno(enum.IntEnum):
    """DRMAA 1.0 error codes (drmaa.h)."""

    SUCCESS = 0
    INTERNAL_ERROR = 1
    DRM_COMMUNICATION_FAILURE = 2
    AUTH_FAILURE = 3
    INVALID_ARGUMENT = 4
    NO_ACTIVE_SESSION = 5
    NO_MEMORY = 6
    INVALID_CONTACT_STRING = 7
    DEFAULT_CONTACT_STRING_ERROR = 8
    NO_DEFAULT_CONTACT_STRING_SELECTED = 9
    DRMS_INIT_FAILED = 10
    ALREADY_ACTIVE_SESSION = 11
    DRMS_EXIT_ERROR = 12
    INVALID_ATTRIBUTE_FORMAT = 13
    INVALID_ATTRIBUTE_VALUE = 14
    CONFLICTING_ATTRIBUTE_VALUES = 15
    TRY_LATER = 16
    DENIED_BY_DRM = 17
    INVALID_JOB = 18
    RESUME_INCONSISTENT_STATE = 19
    SUSPEND_INCONSISTENT_STATE = 20
    HOLD_INCONSISTENT_STATE = 21
    RELEASE_INCONSISTENT_STATE = 22
    EXIT_TIMEOUT = 23
    NO_RUSAGE = 24
    NO_MORE_ELEMENTS = 25
    NO_ERRNO = 26


#: drmaa_strerror's texts.
STRERROR: dict[int, str] = {
    Errno.SUCCESS: "success",
    Errno.INTERNAL_ERROR: "unexpected or internal error",
    Errno.DRM_COMMUNICATION_FAILURE: "could not contact the DRM system",
    Errno.AUTH_FAILURE: "authorization failed",
    Errno.INVALID_ARGUMENT: "invalid argument",
    Errno.NO_ACTIVE_SESSION: "no active DRMAA session (call drmaa_init first)",
    Errno.NO_MEMORY: "out of memory",
    Errno.INVALID_CONTACT_STRING: "invalid contact string",
    Errno.DEFAULT_CONTACT_STRING_ERROR: "the default contact string could not be used",
    Errno.NO_DEFAULT_CONTACT_STRING_SELECTED: "no default contact string selected",
    Errno.DRMS_INIT_FAILED: "the DRM system could not be initialized",
    Errno.ALREADY_ACTIVE_SESSION: "a DRMAA session is already active",
    Errno.DRMS_EXIT_ERROR: "the DRM system could not be disengaged from",
    Errno.INVALID_ATTRIBUTE_FORMAT: "invalid attribute format",
    Errno.INVALID_ATTRIBUTE_VALUE: "invalid attribute value",
    Errno.CONFLICTING_ATTRIBUTE_VALUES: "conflicting attribute values",
    Errno.TRY_LATER: "the DRM system is busy: try later",
    Errno.DENIED_BY_DRM: "the DRM system refused the job",
    Errno.INVALID_JOB: "no such job (never submitted, or already reaped)",
    Errno.RESUME_INCONSISTENT_STATE: "the job is not suspended: it cannot be resumed",
    Errno.SUSPEND_INCONSISTENT_STATE: "the job is not running: it cannot be suspended",
    Errno.HOLD_INCONSISTENT_STATE: "the job is not queued: it cannot be held",
    Errno.RELEASE_INCONSISTENT_STATE: "the job is not held: it cannot be released",
    Errno.EXIT_TIMEOUT: "the timeout passed before the job(s) ended",
    Errno.NO_RUSAGE: "the job ended but no resource usage is known",
    Errno.NO_MORE_ELEMENTS: "no more elements",
    Errno.NO_ERRNO: "no error number",
}

#: pydrmaa2 errors -> the DRMAA 1.0 code they are reported as (the first matching class wins;
#: callers override it where the call gives the error a more precise meaning).
ERRORS: dict[type[errors.Drmaa2Error], Errno] = {
    errors.DrmCommunicationError: Errno.DRM_COMMUNICATION_FAILURE,
    errors.DeniedByDrmsError: Errno.DENIED_BY_DRM,
    errors.TryLaterError: Errno.TRY_LATER,
    errors.OutOfResourceError: Errno.TRY_LATER,
    errors.TimeoutError: Errno.EXIT_TIMEOUT,
    errors.InvalidSessionError: Errno.NO_ACTIVE_SESSION,
    errors.UnsupportedAttributeError: Errno.INVALID_ATTRIBUTE_VALUE,
    errors.InvalidArgumentError: Errno.INVALID_ARGUMENT,
}


class Control(enum.IntEnum):
    """drmaa_control's actions."""

    SUSPEND = 0
    RESUME = 1
    HOLD = 2
    RELEASE = 3
    TERMINATE = 4


#: An action refused because of the job's state -> the DRMAA 1.0 error (terminate has none:
#: terminating a job that has ended succeeds).
CONTROL_ERRORS: dict[Control, Errno] = {
    Control.SUSPEND: Errno.SUSPEND_INCONSISTENT_STATE,
    Control.RESUME: Errno.RESUME_INCONSISTENT_STATE,
    Control.HOLD: Errno.HOLD_INCONSISTENT_STATE,
    Control.RELEASE: Errno.RELEASE_INCONSISTENT_STATE,
}


class PS(enum.IntEnum):
    """drmaa_job_ps's job states."""

    UNDETERMINED = 0x00
    QUEUED_ACTIVE = 0x10
    SYSTEM_ON_HOLD = 0x11
    USER_ON_HOLD = 0x12
    USER_SYSTEM_ON_HOLD = 0x13
    RUNNING = 0x20
    SYSTEM_SUSPENDED = 0x21
    USER_SUSPENDED = 0x22
    USER_SYSTEM_SUSPENDED = 0x23
    DONE = 0x30
    FAILED = 0x40


#: DRMAA2 states -> DRMAA 1.0 states. Holds and suspensions are the user's: pydrmaa2 applies
#: only those a program asked for (a requeued job is queued again).
STATES: dict[JobState, PS] = {
    JobState.UNDETERMINED: PS.UNDETERMINED,
    JobState.QUEUED: PS.QUEUED_ACTIVE,
    JobState.QUEUED_HELD: PS.USER_ON_HOLD,
    JobState.RUNNING: PS.RUNNING,
    JobState.SUSPENDED: PS.USER_SUSPENDED,
    JobState.REQUEUED: PS.QUEUED_ACTIVE,
    JobState.REQUEUED_HELD: PS.USER_ON_HOLD,
    JobState.DONE: PS.DONE,
    JobState.FAILED: PS.FAILED,
}

TIMEOUT_WAIT_FOREVER = -1
TIMEOUT_NO_WAIT = 0
JOB_IDS_SESSION_ANY = "DRMAA_JOB_IDS_SESSION_ANY"
JOB_IDS_SESSION_ALL = "DRMAA_JOB_IDS_SESSION_ALL"
SUBMISSION_STATE_ACTIVE = "drmaa_active"
SUBMISSION_STATE_HOLD = "drmaa_hold"

PLACEHOLDER_INCR = "$drmaa_incr_ph$"
PLACEHOLDER_HD = "$drmaa_hd_ph$"
PLACEHOLDER_WD = "$drmaa_wd_ph$"

#: The stat bit of a job that ended without ever running (see drmaa.h).
STAT_ABORTED = 0x10000
STAT_CORE = 0x80

#: Scalar attributes every DRMAA 1.0 library offers.
MANDATORY = (
    "drmaa_remote_command", "drmaa_js_state", "drmaa_wd", "drmaa_job_category",
    "drmaa_native_specification", "drmaa_block_email", "drmaa_start_time", "drmaa_job_name",
    "drmaa_input_path", "drmaa_output_path", "drmaa_error_path", "drmaa_join_files",
)
#: Optional scalar attributes: listed by drmaa_get_attribute_names where the session's tracker
#: can honour them (see ``_template.optional_attributes``).
OPTIONAL = (
    "drmaa_transfer_files", "drmaa_deadline_time", "drmaa_wct_hlimit", "drmaa_wct_slimit",
    "drmaa_duration_hlimit", "drmaa_duration_slimit",
)
VECTOR = ("drmaa_v_argv", "drmaa_v_env", "drmaa_v_email")

IMPLEMENTATION = "pydrmaa2 libdrmaa (DRMAA 1.0 over pydrmaa2's DRMAA2 trackers)"
