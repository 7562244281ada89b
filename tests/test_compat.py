"""pydrmaa2.drmaa2, the uge-drmaa2 API: every public name on the process tracker, then
uge-drmaa2's own examples (tests/compat_examples, changed only in the import) on every tracker.

Run as ``python -m tests.test_compat EXAMPLE RESULT`` it is the runner of one ported example.
"""

from __future__ import annotations

import ast
import builtins
import contextlib
import datetime as dt
import enum
import gc
import getpass
import json
import logging
import os
import re
import runpy
import socket
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, ClassVar

import pytest

import pydrmaa2 as d2
import pydrmaa2.drmaa2 as drmaa2
from pydrmaa2 import trackers
from pydrmaa2.agent import AgentClient
from pydrmaa2.drmaa2 import _runtime
from pydrmaa2.drmaa2._exceptions import boundary
from pydrmaa2.testing.targets import TARGETS
from pydrmaa2.trackers.process import ProcessTracker
from tests.conftest import require, unavailable

EXAMPLES_DIR = Path(__file__).resolve().parent / "compat_examples"
REPO = EXAMPLES_DIR.parents[1]


# -- clean-up shared by the unit tests and the example runner ------------------------------------
def _end_jobs(sm: d2.SessionManager, name: str) -> None:
    """Terminate the unfinished jobs of job session ``name`` and wait until they have ended."""
    with contextlib.suppress(d2.Drmaa2Error), sm.open_job_session(name) as js:
        jobs = [j for j in js.get_jobs() if not j.state.is_terminal]
        for j in jobs:
            with contextlib.suppress(d2.Drmaa2Error):
                j.terminate()
        if jobs:
            js.wait_all_terminated(jobs, timeout=60)


def _cancel_reservations(sm: d2.SessionManager, name: str) -> None:
    """Cancel every reservation of reservation session ``name``."""
    with contextlib.suppress(d2.Drmaa2Error), sm.open_reservation_session(name) as rs:
        for r in rs.get_reservations():
            with contextlib.suppress(d2.Drmaa2Error):
                r.terminate()


def _tidy_destroy(setattr_: Callable[[Any, str, Any], None]) -> None:
    """Make destroying a session end its jobs and reservations first: uge-drmaa2 code destroys
    sessions with jobs still running (destroy_on_exit), which pydrmaa2 leaves running."""
    destroy_jobs = d2.SessionManager.destroy_job_session
    destroy_reservations = d2.SessionManager.destroy_reservation_session

    def destroy_job_session(self: d2.SessionManager, name: str) -> None:
        _end_jobs(self, name)
        destroy_jobs(self, name)

    def destroy_reservation_session(self: d2.SessionManager, name: str) -> None:
        _cancel_reservations(self, name)
        destroy_reservations(self, name)

    setattr_(d2.SessionManager, "destroy_job_session", destroy_job_session)
    setattr_(d2.SessionManager, "destroy_reservation_session", destroy_reservation_session)


def _clear_store(home: Path) -> None:
    """Destroy every session left in the store at ``home`` (ending its jobs and reservations)."""
    sm = d2.SessionManager(home)
    for name in sm.job_session_names:
        with contextlib.suppress(d2.Drmaa2Error):
            sm.destroy_job_session(name)
    for name in sm.reservation_session_names:
        with contextlib.suppress(d2.Drmaa2Error):
            sm.destroy_reservation_session(name)


# -- a tracker that can reserve, for the reservation half of the API -----------------------------
class ReservingTracker(ProcessTracker):
    """The process tracker plus in-memory advance reservations, and without event callbacks."""

    scheme = "reserving"
    capabilities = ((ProcessTracker.capabilities - {d2.Capability.CALLBACK})
                    | {d2.Capability.ADVANCE_RESERVATION})
    made: ClassVar[dict[str, d2.ReservationInfo]] = {}

    def reserve(self, template: d2.ReservationTemplate) -> d2.ReservationInfo:
        start = template.start_time or dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
        info = d2.ReservationInfo(
            reservation_id=f"R{len(self.made) + 1}", reservation_name=template.reservation_name,
            reserved_start_time=start, reserved_end_time=start + (template.duration or
                                                                  dt.timedelta(hours=1)),
            users_acl=list(template.users_acl), reserved_slots=template.min_slots or 1,
            reserved_machines=[socket.gethostname()])
        self.made[info.reservation_id] = info
        return info

    def reservation_info(self, reservation_id: str) -> d2.ReservationInfo:
        if reservation_id not in self.made:
            raise d2.InvalidArgumentError(f"no reservation {reservation_id!r}")
        return self.made[reservation_id]

    def reservations(self) -> list[d2.ReservationInfo]:
        return list(self.made.values())

    def cancel_reservation(self, reservation_id: str) -> None:
        self.made.pop(reservation_id, None)


# -- fixtures ------------------------------------------------------------------------------------
@pytest.fixture(autouse=True)
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh store and module SessionManager per test, on the process tracker; whatever the
    test leaves behind is ended and destroyed."""
    home = tmp_path / "home"
    monkeypatch.setenv("PYDRMAA2_HOME", str(home))
    for var in ("PYDRMAA2_CONTACT", "PYDRMAA2_JOB_CATEGORY", "DRMAA2_LOG_LEVEL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(_runtime, "_manager", None)
    monkeypatch.setattr(drmaa2.Notification, "_callback", None)
    monkeypatch.setitem(trackers._cache, "reserving", ReservingTracker)
    monkeypatch.setattr(ReservingTracker, "made", {})
    _tidy_destroy(monkeypatch.setattr)
    yield home
    gc.collect()  # session objects the test dropped: their finalizers destroy their sessions now
    _clear_store(home)
    if _runtime._manager is not None:
        _runtime._manager._notifier_stop.set()
    AgentClient.for_home(home).close()


def sleeper(seconds: int = 30, **fields: Any) -> dict[str, Any]:
    """A uge-drmaa2 template dict for a job that sleeps."""
    return {"remote_command": "/bin/sleep", "args": [str(seconds)], **fields}


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll ``condition`` (suspend/resume take effect asynchronously in the engine)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


@pytest.fixture
def js() -> Iterator[drmaa2.JobSession]:
    session = drmaa2.JobSession("compat")
    yield session
    with contextlib.suppress(drmaa2.Drmaa2Exception):
        session.destroy()


# -- the module's names ----------------------------------------------------------------------------
PUBLIC = {
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
}


def test_public_names_are_uge_drmaa2s_and_pinned():
    assert set(drmaa2.__all__) == PUBLIC
    assert drmaa2.__version__ == "8.11.0"
    for name in PUBLIC - {"__version__"}:
        obj = getattr(drmaa2, name)
        if isinstance(obj, type):
            assert obj.__module__ == "pydrmaa2.drmaa2", name


def test_every_public_member_is_exercised_by_this_file():
    source = Path(__file__).read_text()
    source = source[:source.index("# -- " + "examples")]  # the unit tests only
    for name in PUBLIC:
        obj = getattr(drmaa2, name)
        members = [m for m in dir(obj) if not m.startswith("_")] if isinstance(obj, type) else []
        if isinstance(obj, type) and issubclass(obj, (drmaa2.Drmaa2Exception, enum.Enum)):
            members = []  # exceptions and enum members are covered as tables below
        for member in [name, *members]:
            assert re.search(rf"\b{re.escape(member)}\b", source), f"{name}.{member}"


def test_module_functions_are_the_class_methods_uge_drmaa2_aliases():
    assert drmaa2.get_drms_name() == "pydrmaa2"
    assert drmaa2.get_drmaa_name() == "pydrmaa2"
    assert drmaa2.get_drms_version() == drmaa2.Version.get_drms_version()
    v = drmaa2.get_drmaa_version()
    assert (v.major, v.minor) == ("2", "0")
    assert v.to_dict() == {"implementation_specific": {}, "major": "2", "minor": "0"}
    assert drmaa2.get_job_session_names() == []
    assert drmaa2.get_reservation_session_names() == []


def test_drmaa_supports_asks_the_tracker_of_pydrmaa2_contact(monkeypatch):
    assert drmaa2.drmaa_supports(drmaa2.Capability.CALLBACK) is True
    assert drmaa2.drmaa_supports(int(drmaa2.Capability.BULK_JOBS_MAXPARALLEL)) is True
    assert drmaa2.drmaa_supports(drmaa2.Capability.ADVANCE_RESERVATION) is False
    assert drmaa2.drmaa_supports(drmaa2.Capability.UNSET_CAPABILITY) is False
    with pytest.raises(drmaa2.InvalidArgument):
        drmaa2.drmaa_supports("callback")
    monkeypatch.setenv("PYDRMAA2_CONTACT", "reserving")
    assert drmaa2.drmaa_supports(drmaa2.Capability.ADVANCE_RESERVATION) is True
    monkeypatch.setenv("PYDRMAA2_CONTACT", "nosuchtracker")
    with pytest.raises(drmaa2.InvalidArgument, match="nosuchtracker"):
        drmaa2.drmaa_supports(drmaa2.Capability.CALLBACK)


def test_library_manager_is_a_singleton_standing_for_libdrmaa2():
    lm = drmaa2.LibraryManager.get_instance()
    assert lm is drmaa2.LibraryManager.get_instance()
    assert isinstance(lm.get_drmaa2_library(), d2.SessionManager)
    assert lm.get_drms_name() == drmaa2.LibraryManager.get_drms_name() == "pydrmaa2"
    assert lm.get_drmaa_name() == "pydrmaa2"
    assert lm.drmaa_supports(drmaa2.Capability.JT_STAGING) is True


def test_log_manager_configures_pydrmaa2_logging_only_when_asked():
    lm = drmaa2.LogManager.get_instance()
    assert lm is drmaa2.LogManager.get_instance()
    assert drmaa2.LogManager.get_logger().name == "LogManager"
    assert drmaa2.LogManager.get_logger("JobSession").name == "JobSession"
    assert drmaa2.LogManager.LOG_LEVEL_ENV_VAR == "DRMAA2_LOG_LEVEL"
    assert drmaa2.LogManager.LOG_LEVEL_MAP["DEBUG"] == logging.DEBUG
    assert "%(message)s" in drmaa2.LogManager.LOG_MESSAGE_FORMAT
    logger = logging.getLogger("pydrmaa2")
    before = logger.level
    try:
        lm.configure("debug")
        assert logger.level == logging.DEBUG
        os.environ["DRMAA2_LOG_LEVEL"] = "ERROR"
        lm.configure()
        assert logger.level == logging.ERROR
    finally:
        logger.setLevel(before)
        os.environ.pop("DRMAA2_LOG_LEVEL", None)


# -- enums -------------------------------------------------------------------------------------------
UGE_ENUMS = {
    "Bool": {"FALSE": 0, "TRUE": 1},
    "Time": {"ZERO_TIME": 0, "INFINITE_TIME": -1, "NOW": -2, "UNSET_TIME": -3},
    "Capability": {"UNSET_CAPABILITY": -1, "ADVANCE_RESERVATION": 0, "RESERVE_SLOTS": 1,
                   "CALLBACK": 2, "BULK_JOBS_MAXPARALLEL": 3, "JT_EMAIL": 4, "JT_STAGING": 5,
                   "JT_DEADLINE": 6, "JT_MAXSLOTS": 7, "JT_ACCOUNTINGID": 8, "RT_STARTNOW": 9,
                   "RT_DURATION": 10, "RT_MACHINEOS": 11, "RT_MACHINEARCH": 12},
    "Cpu": {"UNSET_CPU": -1, "OTHER_CPU": 0, "ALPHA": 1, "ARM": 2, "ARM64": 3, "CELL": 4,
            "PARISC": 5, "PARISC64": 6, "X86": 7, "X64": 8, "IA64": 9, "MIPS": 10, "MIPS64": 11,
            "PPC": 12, "PPC64": 13, "SPARC": 14, "SPARC64": 15, "PPC64LE": 16},
    "Event": {"UNSET_EVENT": -1, "NEW_STATE": 0, "MIGRATED": 1, "ATTRIBUTE_CHANGE": 2},
    "JobState": {"UNSET_JSTATE": -1, "UNDETERMINED": 0, "QUEUED": 1, "QUEUED_HELD": 2,
                 "RUNNING": 3, "SUSPENDED": 4, "REQUEUED": 5, "REQUEUED_HELD": 6, "DONE": 7,
                 "FAILED": 8, "RUNNING_HELD": 9},
    "Os": {"UNSET_OS": -1, "OTHER_OS": 0, "AIX": 1, "BSD": 2, "LINUX": 3, "HPUX": 4, "IRIX": 5,
           "MACOS": 6, "SUNOS": 7, "TRU64": 8, "UNIXWARE": 9, "WIN": 10, "WINNT": 11},
    "ListType": {"UNSET_LISTTYPE": -1, "STRINGLIST": 0, "JOBLIST": 1, "QUEUEINFOLIST": 2,
                 "MACHINEINFOLIST": 3, "SLOTINFOLIST": 4, "RESERVATIONLIST": 5},
    "StatusCode": {"UNSET_ERROR": -1, "SUCCESS": 0, "DENIED_BY_DRMS": 1, "DRM_COMMUNICATION": 2,
                   "TRY_LATER": 3, "SESSION_MANAGEMENT": 4, "TIMEOUT": 5, "INTERNAL": 6,
                   "INVALID_ARGUMENT": 7, "INVALID_SESSION": 8, "INVALID_STATE": 9,
                   "OUT_OF_RESOURCE": 10, "UNSUPPORTED_ATTRIBUTE": 11,
                   "UNSUPPORTED_OPERATION": 12, "IMPLEMENTATION_SPECIFIC": 13,
                   "AUTHORIZATION": 14, "LASTERROR": 15},
    "ResourceLimit": {n: n for n in ("CORE_FILE_SIZE", "CPU_TIME", "DATA_SIZE", "FILE_SIZE",
                                     "OPEN_FILES", "STACK_SIZE", "VIRTUAL_MEMORY",
                                     "WALLCLOCK_TIME")},
}


@pytest.mark.parametrize("name", sorted(UGE_ENUMS))
def test_enums_have_uge_drmaa2s_members_and_values(name):
    enum_cls = getattr(drmaa2, name)
    assert {m.name: m.value for m in enum_cls} == UGE_ENUMS[name]
    if name != "ResourceLimit":
        assert all(isinstance(m, int) for m in enum_cls)  # IntEnums, as in uge-drmaa2


# -- exceptions --------------------------------------------------------------------------------------
UGE_ERRORS = {
    "DeniedByDrms": ("DENIED_BY_DRMS", d2.DeniedByDrmsError),
    "DrmCommunicationError": ("DRM_COMMUNICATION", d2.DrmCommunicationError),
    "TryLaterError": ("TRY_LATER", d2.TryLaterError),
    "SessionManagementError": ("SESSION_MANAGEMENT", d2.SessionManagementError),
    "TimeoutError": ("TIMEOUT", d2.TimeoutError),
    "InternalError": ("INTERNAL", d2.InternalError),
    "InvalidArgument": ("INVALID_ARGUMENT", d2.InvalidArgumentError),
    "InvalidSession": ("INVALID_SESSION", d2.InvalidSessionError),
    "InvalidState": ("INVALID_STATE", d2.InvalidStateError),
    "ResourceNotAvailable": ("OUT_OF_RESOURCE", d2.OutOfResourceError),
    "UnsupportedAttribute": ("UNSUPPORTED_ATTRIBUTE", d2.UnsupportedAttributeError),
    "UnsupportedOperation": ("UNSUPPORTED_OPERATION", d2.UnsupportedOperationError),
    "ImplementationSpecificError": ("IMPLEMENTATION_SPECIFIC", d2.ImplementationSpecificError),
    "AuthorizationError": ("AUTHORIZATION", None),
}


@pytest.mark.parametrize("name", sorted(UGE_ERRORS))
def test_exceptions_derive_directly_from_drmaa2exception_with_their_code(name):
    cls = getattr(drmaa2, name)
    assert cls.__bases__[0].__bases__ == (drmaa2.Drmaa2Exception,) or \
        drmaa2.Drmaa2Exception in cls.__mro__[1:3]
    e = cls("what went wrong")
    assert str(e) == "what went wrong" and e.args == ("what went wrong",)
    assert e.error_code is drmaa2.StatusCode[UGE_ERRORS[name][0]]
    assert cls().args == ("",)
    assert not issubclass(cls, d2.Drmaa2Error)


@pytest.mark.parametrize("name", sorted(n for n in UGE_ERRORS if UGE_ERRORS[n][1]))
def test_pydrmaa2_errors_leave_the_boundary_as_uge_drmaa2s_class(name):
    core_cls = UGE_ERRORS[name][1]
    with pytest.raises(getattr(drmaa2, name)) as caught, boundary:
        raise core_cls(f"{name} message")
    assert str(caught.value) == f"{name} message"
    assert isinstance(caught.value.__cause__, core_cls)


def test_root_exception_and_timeout_error_are_uge_drmaa2s_not_builtins():
    e = drmaa2.Drmaa2Exception("x", drmaa2.StatusCode.INTERNAL)
    assert e.error_code is drmaa2.StatusCode.INTERNAL
    assert drmaa2.Drmaa2Exception().error_code is drmaa2.StatusCode.UNSET_ERROR
    assert not issubclass(drmaa2.TimeoutError, builtins.TimeoutError)
    with pytest.raises(drmaa2.Drmaa2Exception) as caught, boundary:
        raise d2.Drmaa2Error("plain")
    assert type(caught.value) is drmaa2.Drmaa2Exception


# -- data objects ------------------------------------------------------------------------------------
def test_job_template_reads_back_with_uge_drmaa2s_conventions():
    jt = drmaa2.JobTemplate({"remote_command": "/bin/sleep"})
    assert jt.to_dict() == {
        "args": [], "candidate_machines": [], "email": [], "email_on_started": "FALSE",
        "email_on_terminated": "FALSE", "implementation_specific": {}, "job_environment": {},
        "join_files": "FALSE", "remote_command": "/bin/sleep", "rerunnable": "FALSE",
        "resource_limits": {}, "stage_in_files": {}, "stage_out_files": {},
        "submit_as_hold": "FALSE"}
    jt.args = ["200"]
    jt.job_environment = {"MY_ENV": "xyz", "N": 7}
    jt.rerunnable = True
    jt.submit_as_hold = 1
    jt.join_files = "TRUE"
    jt.email_on_started = 0
    jt.machine_os = "LINUX"
    jt.machine_arch = drmaa2.Cpu.X64
    jt.start_time = dt.datetime(2020, 1, 2, 3, 4, 5)
    jt.deadline_time = "NOW"
    jt.priority = None
    jt.min_slots = 2
    jt.max_slots = -1
    assert (jt.args, jt.job_environment) == (["200"], {"MY_ENV": "xyz", "N": "7"})
    assert (jt.rerunnable, jt.submit_as_hold, jt.join_files, jt.email_on_started) == \
        ("TRUE", "TRUE", "TRUE", "FALSE")
    assert (jt.machine_os, jt.machine_arch) == ("LINUX", "X64")
    jt.machine_arch = 3
    assert jt.machine_arch == "ARM64"
    assert jt.start_time == dt.datetime(2020, 1, 2, 3, 4, 5)
    assert jt.deadline_time == "NOW"
    jt.deadline_time = drmaa2.Time.ZERO_TIME
    assert jt.deadline_time == "ZERO_TIME"
    jt.deadline_time = dt.datetime(2020, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    assert jt.deadline_time == dt.datetime(2019, 12, 31, 23, 0)
    assert (jt.priority, jt.min_slots, jt.max_slots) == (None, 2, None)
    jt.priority = -99999
    assert jt.priority is None
    for field in ("working_directory", "job_category", "job_name", "input_path", "output_path",
                  "error_path", "reservation_id", "queue_name", "accounting_id"):
        setattr(jt, field, f"{field}-value")
        assert getattr(jt, field) == f"{field}-value"
        setattr(jt, field, None)
        assert getattr(jt, field) is None
    jt.email, jt.candidate_machines = ["a@b"], ["h1"]
    jt.stage_in_files, jt.stage_out_files = {"a": "b"}, {"c": "d"}
    jt.resource_limits = {drmaa2.ResourceLimit.CPU_TIME.value: "60"}
    jt.email_on_terminated, jt.min_phys_memory = True, 1024
    assert (jt.email, jt.candidate_machines, jt.stage_in_files, jt.stage_out_files) == \
        (["a@b"], ["h1"], {"a": "b"}, {"c": "d"})
    assert (jt.resource_limits, jt.email_on_terminated, jt.min_phys_memory) == \
        ({"CPU_TIME": "60"}, "TRUE", 1024)
    jt.args.append("ignored")  # a read-back list is a copy, as uge-drmaa2's is
    assert jt.args == ["200"]


def test_job_template_dict_round_trip_equality_and_strings():
    jt = drmaa2.JobTemplate({"remote_command": "/bin/sleep", "args": ["10"], "job_name": "x",
                             "output_path": "/dev/null", "join_files": True})
    assert drmaa2.JobTemplate(jt.to_dict()) == jt
    assert drmaa2.JobTemplate.create_from_dict(jt) is jt
    assert drmaa2.JobTemplate.create_from_dict({"job_name": "x"}).job_name == "x"
    assert jt != drmaa2.JobTemplate({"remote_command": "/bin/true"})
    assert str(jt) == str(jt.to_dict())
    assert repr(jt) == f"JobTemplate({jt.to_dict()})"
    jt2 = drmaa2.JobTemplate()
    jt2.from_dict({"args": ["1"]})
    assert jt2.args == ["1"]
    assert drmaa2.JobTemplate.scrub_dict({"a": None, "b": 0}) == {"b": 0}


def test_unknown_properties_and_wrong_values_are_invalid_arguments():
    with pytest.raises(drmaa2.InvalidArgument, match="remoteCommand"):
        drmaa2.JobTemplate({"remoteCommand": "/bin/sleep"})
    with pytest.raises(drmaa2.InvalidArgument):
        drmaa2.JobTemplate("remote_command=/bin/sleep")
    jt = drmaa2.JobTemplate()
    with pytest.raises(drmaa2.InvalidArgument, match="machine_os"):
        jt.machine_os = "PLAN9"
    with pytest.raises(drmaa2.InvalidArgument, match="rerunnable"):
        jt.rerunnable = "maybe"
    with pytest.raises(drmaa2.InvalidArgument, match="start_time"):
        jt.start_time = "tomorrow"
    with pytest.raises(drmaa2.InvalidArgument, match="args"):
        jt.args = "10"
    with pytest.raises(drmaa2.InvalidArgument, match="min_slots"):
        jt.min_slots = "two"
    with pytest.raises(drmaa2.InvalidArgument, match="job_environment"):
        jt.job_environment = ["A=1"]


def test_implementation_specific_values_are_pydrmaa2_extensions():
    assert drmaa2.JobTemplate.get_implementation_specific_keys() == []
    assert drmaa2.JobTemplate.implementation_specific_keys == []
    jt = drmaa2.JobTemplate({"implementation_specific": {"k": "v"}})
    jt.init_impl_spec_key_values()
    assert jt.get_impl_spec_key_value("k") == "v"
    jt.set_impl_spec_key_value("uge_jt_pe", "xxx")
    assert jt.get_impl_spec_key_value("uge_jt_pe") == "xxx"
    assert jt.get_impl_spec_key_value("missing") is None
    assert jt.implementation_specific == {"k": "v", "uge_jt_pe": "xxx"}
    assert jt._to_core().extensions == {"k": "v", "uge_jt_pe": "xxx"}
    with pytest.raises(drmaa2.InvalidArgument):
        jt.set_impl_spec_key_value("n", 1)


def test_job_info_reads_back_with_uge_drmaa2s_conventions():
    ji = drmaa2.JobInfo()
    assert ji.to_dict() == {"allocated_machines": [], "implementation_specific": {}}
    ji = drmaa2.JobInfo({"queue_name": "all.q", "job_id": "113"})
    ji.job_name, ji.job_owner, ji.annotation = "job-01", "a.user", "note"
    ji.terminating_signal, ji.job_sub_state = "SIGKILL", "killed"
    ji.submission_machine, ji.allocated_machines = "h0", ["h1", "h2"]
    ji.slots, ji.exit_status, ji.cpu_time = 10, 0, 77
    ji.job_state = drmaa2.JobState.RUNNING
    ji.wallclock_time = 42
    ji.submission_time = dt.datetime(2020, 1, 2, 3, 4, 5)
    ji.dispatch_time = drmaa2.Time.NOW
    ji.finish_time = None
    assert ji.job_state == drmaa2.JobState.RUNNING.name == "RUNNING"
    assert ji.wallclock_time == dt.datetime(1970, 1, 1, 0, 0, 42)
    assert ji.submission_time == dt.datetime(2020, 1, 2, 3, 4, 5)
    assert (ji.dispatch_time, ji.finish_time) == ("NOW", None)
    assert (ji.slots, ji.exit_status, ji.cpu_time) == (10, 0, 77)
    assert (ji.job_id, ji.job_name, ji.job_owner, ji.annotation, ji.queue_name) == \
        ("113", "job-01", "a.user", "note", "all.q")
    assert (ji.terminating_signal, ji.job_sub_state, ji.submission_machine) == \
        ("SIGKILL", "killed", "h0")
    assert ji.allocated_machines == ["h1", "h2"]
    ji.wallclock_time, ji.slots, ji.job_state = 0, None, "DONE"
    assert (ji.wallclock_time, ji.slots, ji.job_state) == ("ZERO_TIME", None, "DONE")
    core = ji._to_core()
    assert core.id == "113" and core.state is d2.JobState.DONE
    assert core.cpu_time == dt.timedelta(seconds=77)
    assert core.submission_time == dt.datetime(2020, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
    assert core.dispatch_time.tzinfo is dt.timezone.utc  # NOW: the time of the conversion
    ji.dispatch_time = dt.datetime(2020, 1, 2, 3, 4, 6)
    assert drmaa2.JobInfo._from_core(ji._to_core()) == ji


def test_reservation_template_and_info_read_back_with_uge_drmaa2s_conventions():
    rt = drmaa2.ReservationTemplate({"reservation_name": "res-01", "duration": 100})
    rt.users_acl, rt.min_slots, rt.max_slots = ["u1", "u2"], 2, 4
    rt.machine_os, rt.machine_arch, rt.min_phys_memory = "LINUX", "X64", 10
    rt.start_time, rt.end_time = dt.datetime(2030, 1, 1), None
    rt.job_category, rt.candidate_machines = "cat", ["h1"]
    assert rt.to_dict() == {
        "candidate_machines": ["h1"], "duration": 100, "implementation_specific": {},
        "job_category": "cat", "machine_arch": "X64", "machine_os": "LINUX", "max_slots": 4,
        "min_phys_memory": 10, "min_slots": 2, "reservation_name": "res-01",
        "start_time": dt.datetime(2030, 1, 1), "users_acl": ["u1", "u2"]}
    assert rt.end_time is None
    assert rt._to_core().duration == dt.timedelta(seconds=100)
    ri = drmaa2.ReservationInfo({"reservation_name": "rs-01"})
    ri.reservation_id, ri.users_acl, ri.reserved_slots = "rid-01", ["user1"], 5
    ri.reserved_start_time = dt.datetime(2030, 1, 1)
    ri.reserved_end_time = dt.datetime(2030, 1, 2)
    ri.reserved_machines = ["h1"]
    assert (ri.reservation_id, ri.reservation_name, ri.users_acl, ri.reserved_slots) == \
        ("rid-01", "rs-01", ["user1"], 5)
    assert (ri.reserved_start_time, ri.reserved_end_time, ri.reserved_machines) == \
        (dt.datetime(2030, 1, 1), dt.datetime(2030, 1, 2), ["h1"])


def test_version_machine_and_queue_infos_are_read_only():
    v = drmaa2.Version({"major": "8", "minor": "6.0"})
    v.major = "9"  # ignored, as uge-drmaa2 ignores writes to read-only objects
    assert (v.major, v.minor, v.implementation_specific) == ("8", "6.0", {})
    assert drmaa2.Version.get_implementation_specific_attrs() == {}
    assert drmaa2.Version.get_implementation_specific_keys() == []
    q = drmaa2.QueueInfo({"name": "all.q"})
    assert str(q) == "{'implementation_specific': {}, 'name': 'all.q'}"
    m = drmaa2.MachineInfo({"name": "h1", "available": True, "load": 0.5, "machine_os": "LINUX"})
    m.name = "h2"
    assert (m.name, m.available, m.load, m.machine_os) == ("h1", "TRUE", 0.5, "LINUX")
    for field in ("sockets", "cores_per_socket", "threads_per_core", "phys_memory",
                  "virt_memory", "machine_arch", "machine_os_version"):
        assert getattr(m, field) is None


def test_sudo_keeps_its_fields_including_id_zero():
    s = drmaa2.Sudo(username="u", groupname="g", uid=0, gid=0)
    assert (s.username, s.groupname, s.uid, s.gid) == ("u", "g", 0, 0)
    s2 = drmaa2.Sudo(sudo_dict={"username": "v", "uid": 5})
    assert (s2.username, s2.uid, s2.gid) == ("v", 5, None)
    s2.groupname = "grp"
    assert s2.groupname == "grp"


def test_auth_is_accepted_only_for_the_calling_user(js):
    me = drmaa2.Sudo(username=getpass.getuser(), uid=os.getuid())
    j = js.run_job(sleeper(0), me)
    j.wait_terminated(10)
    j.reap()
    with pytest.raises(drmaa2.UnsupportedOperation, match="nobody-at-all"):
        js.run_job(sleeper(0), {"username": "nobody-at-all"})
    with pytest.raises(drmaa2.UnsupportedOperation):
        drmaa2.JobSession("other", auth=drmaa2.Sudo(uid=os.getuid() + 4242))


# -- job sessions ------------------------------------------------------------------------------------
def test_job_session_creates_or_opens_by_name_and_lists_plain_names():
    js = drmaa2.JobSession("js-01", destroy_on_exit=False)
    assert (js.name, js.contact) == ("js-01", "process")
    assert str(js) == "{'contact': 'process', 'name': 'js-01'}"
    j = js.run_job(sleeper(0))
    js2 = drmaa2.JobSession("js-01", destroy_on_exit=False)
    assert [x.id for x in js2.get_jobs(None)] == [j.id]
    js3 = drmaa2.JobSession(f"{getpass.getuser()}@js-01", destroy_on_exit=False)
    assert js3.name == "js-01"
    assert drmaa2.JobSession.list_session_names() == drmaa2.get_job_session_names() == ["js-01"]
    anonymous = drmaa2.JobSession(destroy_on_exit=False)
    assert re.fullmatch("[0-9a-f]{32}", anonymous.name)
    from_dict = drmaa2.JobSession(session_dict={"name": "js-02", "contact": "process"})
    assert (from_dict.name, from_dict.contact) == ("js-02", "process")
    with pytest.raises(drmaa2.InvalidArgument, match="@ is not allowed"):
        drmaa2.JobSession("someone@else")
    with pytest.raises(drmaa2.InvalidArgument, match="already exists"):
        drmaa2.JobSession("js-01", check_for_existing_session=False)
    with pytest.raises(drmaa2.InvalidArgument, match="nosuchtracker"):
        drmaa2.JobSession("js-03", contact="nosuchtracker")


def test_contact_defaults_to_pydrmaa2_contact(monkeypatch):
    monkeypatch.setenv("PYDRMAA2_CONTACT", "nosuchtracker")
    with pytest.raises(drmaa2.InvalidArgument, match="nosuchtracker"):
        drmaa2.JobSession("js-env")
    assert drmaa2.JobSession("js-arg", contact="process").contact == "process"


def test_a_collected_session_is_destroyed_unless_destroy_on_exit_is_false():
    kept = drmaa2.JobSession("kept", destroy_on_exit=False)
    gone = drmaa2.JobSession("gone")
    assert sorted(drmaa2.get_job_session_names()) == ["gone", "kept"]
    del kept, gone
    gc.collect()
    assert drmaa2.get_job_session_names() == ["kept"]


def test_open_close_destroy_and_destroy_by_name():
    js = drmaa2.JobSession("js-01")
    js.close()
    js.close()  # closing a closed session does nothing, as in uge-drmaa2
    with pytest.raises(drmaa2.InvalidSession):
        js.run_job(sleeper(0))
    js.open()
    js.open()
    js.run_job(sleeper(0)).wait_terminated()
    js.destroy()
    assert drmaa2.get_job_session_names() == []
    drmaa2.JobSession("js-02", destroy_on_exit=False)
    drmaa2.JobSession("js-03", destroy_on_exit=False)
    drmaa2.JobSession.destroy_by_name("js-02")
    drmaa2.JobSession.destroy_by_name(f"{getpass.getuser()}@js-03", auth=None)
    assert drmaa2.get_job_session_names() == []
    with pytest.raises(drmaa2.InvalidArgument, match="js-04"):
        drmaa2.JobSession.destroy_by_name("js-04")


def test_jobs_outlive_their_closed_or_collected_session_object():
    js = drmaa2.JobSession("js-01", destroy_on_exit=False)
    j = js.run_job(sleeper(0))
    js.close()
    j.wait_terminated(10)
    del js
    gc.collect()
    assert j.get_state()[0] is drmaa2.JobState.DONE
    js2 = drmaa2.JobSession("js-02")
    j2 = js2.run_job(sleeper(0))
    del js2
    gc.collect()  # destroys js-02: its jobs are gone with it
    with pytest.raises(drmaa2.InvalidSession, match="js-02"):
        j2.get_state()


def test_run_job_takes_a_dict_or_a_job_template(js):
    j = js.run_job(sleeper(0, job_name="from-dict"))
    assert isinstance(j, drmaa2.Job)
    assert (j.job_name, j.session_name) == ("from-dict", "compat")
    assert j.id and isinstance(j.id, str)
    j2 = js.run_job(drmaa2.JobTemplate(sleeper(0)))
    assert j2.job_name is None and j2.id != j.id
    assert str(j2) == f"{{'id': '{j2.id}', 'session_name': 'compat'}}"
    with pytest.raises(drmaa2.InvalidArgument):
        js.run_job(["/bin/sleep"])
    with pytest.raises(drmaa2.UnsupportedAttribute, match="queue_name"):
        js.run_job(sleeper(0, queue_name="all.q"))


def test_pydrmaa2_job_category_fills_in_an_unset_category(js, monkeypatch):
    monkeypatch.setenv("PYDRMAA2_JOB_CATEGORY", "pydrmaa2-test:latest")
    # The process tracker has no job categories: the filled-in one shows in its refusal.
    with pytest.raises(drmaa2.UnsupportedAttribute, match="job_category"):
        js.run_job(sleeper(0))
    assert js.get_job_categories() == []


def test_run_bulk_jobs_takes_begin_end_step_max_parallel(js):
    ja = js.run_bulk_jobs(sleeper(0, job_name="arr"), 1, 10, 5, 2)
    assert isinstance(ja, drmaa2.JobArray)
    assert len(ja.job_list) == 2 and all(isinstance(j, drmaa2.Job) for j in ja.job_list)
    assert {j.job_name for j in ja.job_list} == {"arr"}
    assert ja.session_name == "compat"
    assert js.wait_all_terminated(ja.job_list) == ja.job_list
    unlimited = js.run_bulk_jobs(drmaa2.JobTemplate(sleeper(0)), 1, 3, 1, -1)
    assert len(unlimited.job_list) == 3
    js.wait_all_terminated(unlimited.job_list)
    assert js.get_job_array(ja.id) == ja
    assert js.get_job_array(ja.id).id == ja.id
    with pytest.raises(drmaa2.InvalidArgument):
        js.run_bulk_jobs(sleeper(0), 5, 1, 1, 1)
    with pytest.raises(drmaa2.InvalidArgument):
        js.get_job_array("9999")


def test_waits_take_seconds_and_uge_drmaa2s_time_constants(js):
    slow = js.run_job(sleeper(30))
    quick = js.run_job(sleeper(0))
    assert js.wait_any_started([slow, quick]) in (slow, quick)
    assert js.wait_all_started([slow, quick], drmaa2.Time.INFINITE_TIME) == [slow, quick]
    assert js.wait_any_terminated([slow, quick], 20.0) is quick
    with pytest.raises(drmaa2.TimeoutError):
        js.wait_all_terminated([slow, quick], drmaa2.Time.ZERO_TIME)
    with pytest.raises(drmaa2.TimeoutError):
        js.wait_any_terminated([slow], 0.2)
    with pytest.raises(drmaa2.TimeoutError):
        slow.wait_terminated(0)
    with pytest.raises(drmaa2.InvalidArgument):
        js.wait_any_started([slow], drmaa2.Time.NOW)
    with pytest.raises(drmaa2.InvalidArgument):
        js.wait_all_started([slow.id])
    assert slow.wait_started(drmaa2.Time.ZERO_TIME) is None
    assert quick.wait_terminated(-1) is None
    slow.terminate()
    assert js.wait_all_terminated([slow, quick], 20) == [slow, quick]


def test_get_jobs_filters_by_job_info_or_dict(js):
    a = js.run_job(sleeper(30, job_name="a"))
    b = js.run_job(sleeper(0, job_name="b"))
    b.wait_terminated(10)
    a.wait_started(10)
    assert {j.id for j in js.get_jobs(None)} == {a.id, b.id}
    assert [j.id for j in js.get_jobs({"job_name": "a"})] == [a.id]
    assert [j.id for j in js.get_jobs(drmaa2.JobInfo({"job_state": "DONE"}))] == [b.id]
    assert [j.id for j in js.get_jobs(drmaa2.JobInfo({"job_id": b.id}))] == [b.id]
    assert js.get_jobs({"job_name": "c"}) == []


# -- jobs --------------------------------------------------------------------------------------------
def test_job_state_info_and_template(js):
    j = js.run_job(sleeper(0, job_name="j", output_path="/dev/null", join_files=True))
    assert j.wait_terminated() is None
    state, sub_state = j.get_state()
    assert state is drmaa2.JobState.DONE and isinstance(state, drmaa2.JobState)
    assert sub_state is None or isinstance(sub_state, str)
    ji = j.get_info()
    assert isinstance(ji, drmaa2.JobInfo)
    assert (ji.job_id, ji.job_name, ji.job_state, ji.exit_status) == (j.id, "j", "DONE", 0)
    assert isinstance(ji.submission_time, dt.datetime) and ji.submission_time.tzinfo is None
    jt = j.get_template()
    assert jt == drmaa2.JobTemplate(sleeper(0, job_name="j", output_path="/dev/null",
                                            join_files=True))
    assert jt.join_files == "TRUE"
    assert drmaa2.Job(d2.Job(d2.SessionManager().open_job_session("compat"), j.id)) == j
    with pytest.raises(drmaa2.InvalidArgument):
        drmaa2.Job(j.id)


def test_suspend_resume_as_uge_drmaa2s_tests_check_them(js):
    j = js.run_job(sleeper(30))
    j.wait_started()
    assert j.get_info().job_state != drmaa2.JobState.SUSPENDED.name
    j.suspend()
    wait_for(lambda: j.get_info().job_state == drmaa2.JobState.SUSPENDED.name)
    j.resume()
    wait_for(lambda: j.get_state()[0] is drmaa2.JobState.RUNNING)
    j.terminate()
    j.wait_terminated(10)
    with pytest.raises(drmaa2.InvalidState):
        j.suspend()


def test_hold_release_and_submit_as_hold(js):
    j = js.run_job(sleeper(0, submit_as_hold=True))
    assert j.get_info().job_state.endswith("HELD")
    j.release()
    j.wait_terminated(10)
    assert j.get_state()[0] is drmaa2.JobState.DONE
    j2 = js.run_job(sleeper(0, submit_as_hold="TRUE"))
    j2.hold()  # already held: nothing to do
    j2.terminate()
    assert j2.get_state()[0] is drmaa2.JobState.FAILED
    with pytest.raises(drmaa2.InvalidState):
        j2.release()


def test_terminate_variants_and_reap(js):
    j = js.run_job(sleeper(30))
    with pytest.raises(drmaa2.InvalidState):
        j.reap()
    j.terminate_forced()
    j.wait_terminated(10)
    assert j.get_state()[0] is drmaa2.JobState.FAILED
    j.reap()
    with pytest.raises(drmaa2.InvalidArgument):
        j.get_info()
    single = js.run_job(sleeper(30))
    single.terminate_forced_all()
    single.wait_terminated(10)
    ja = js.run_bulk_jobs(sleeper(30), 1, 3, 1, 1)
    ja.job_list[0].wait_started(10)
    ja.job_list[0].terminate_all()  # a task's terminate_all ends its whole array
    js.wait_all_terminated(ja.job_list, 10)
    assert {j.get_state()[0] for j in ja.job_list} == {drmaa2.JobState.FAILED}


# -- job arrays --------------------------------------------------------------------------------------
def test_job_array_controls_every_task(js):
    ja = js.run_bulk_jobs(sleeper(30, job_name="arr"), 1, 3, 1, 2)
    first, second, third = ja.job_list
    js.wait_all_started([first, second], 10)
    ja.suspend()
    wait_for(lambda: first.get_state()[0] is drmaa2.JobState.SUSPENDED)
    ja.resume()
    wait_for(lambda: second.get_state()[0] is drmaa2.JobState.RUNNING)
    ja.hold()  # holds the task that waits for a slot
    assert third.get_state()[0] is drmaa2.JobState.QUEUED_HELD
    ja.release()
    assert third.get_state()[0] is drmaa2.JobState.QUEUED
    assert ja.get_template().job_name == "arr"
    ja.terminate_all()
    js.wait_all_terminated(ja.job_list, 20)
    ja.reap()
    again = js.run_bulk_jobs(sleeper(30), 1, 2, 1, 2)
    again.terminate()
    js.wait_all_terminated(again.job_list, 20)
    core_array = d2.SessionManager().open_job_session("compat").get_job_array(again.id)
    assert drmaa2.JobArray(core_array) == again
    with pytest.raises(drmaa2.InvalidArgument):
        drmaa2.JobArray()


# -- monitoring --------------------------------------------------------------------------------------
def test_monitoring_session_lists_machines_queues_and_jobs():
    ms = drmaa2.MonitoringSession("ms-01")
    assert ms.name == "ms-01" and re.fullmatch("[0-9a-f]{32}", drmaa2.MonitoringSession().name)
    assert drmaa2.MonitoringSession(session_dict={"name": "ms-02"}).name == "ms-02"
    machines = ms.get_all_machines(None)
    assert len(machines) == 1 and isinstance(machines[0], drmaa2.MachineInfo)
    m = machines[0]
    assert [x.name for x in ms.get_all_machines([m.name])] == [m.name]
    assert ms.get_all_machines(["nohost"]) == []
    assert m.available == "TRUE" and m.machine_os == "LINUX"
    assert isinstance(m.machine_os_version, drmaa2.Version)
    core_bytes = d2.SessionManager().open_monitoring_session().get_all_machines()[0].phys_memory
    assert m.phys_memory == core_bytes // 1024  # KiB, as DRMAA2 has it
    assert ms.get_all_queues(None) == [] and ms.get_all_queues(["all.q"]) == []
    mine = ms.get_all_jobs(drmaa2.JobInfo({"job_id": str(os.getpid())}))
    assert [j.id for j in mine] == [str(os.getpid())]
    assert mine[0].get_info().job_id == str(os.getpid())
    assert mine[0].get_state()[0] is drmaa2.JobState.RUNNING
    with pytest.raises(drmaa2.UnsupportedOperation, match="monitoring session"):
        mine[0].suspend()
    assert len(ms.get_all_jobs({"job_id": str(os.getpid())})) == 1
    ms.close()
    with pytest.raises(drmaa2.InvalidSession):
        ms.get_all_jobs(None)
    ms.open()
    with pytest.raises(drmaa2.UnsupportedOperation):
        ms.get_all_reservations(None)


# -- reservations ------------------------------------------------------------------------------------
def test_reservations_are_unsupported_where_the_tracker_cannot_reserve():
    with pytest.raises(drmaa2.UnsupportedOperation, match="reservation"):
        drmaa2.ReservationSession("rs-01")
    assert drmaa2.ReservationSession.list_session_names() == []
    with pytest.raises(drmaa2.InvalidArgument):
        drmaa2.ReservationSession.destroy_by_name("rs-01")


def test_reservation_session_on_a_tracker_that_reserves(monkeypatch):
    monkeypatch.setenv("PYDRMAA2_CONTACT", "reserving")
    rs = drmaa2.ReservationSession("rs-01", destroy_on_exit=False)
    assert (rs.name, rs.contact) == ("rs-01", "reserving")
    r = rs.request_reservation({"reservation_name": "night", "duration": 100, "min_slots": 2})
    assert isinstance(r, drmaa2.Reservation) and r.session_name == "rs-01"
    r2 = rs.request_reservation(drmaa2.ReservationTemplate({"reservation_name": "day"}))
    assert rs.get_reservation(r.id) == r
    assert [x.id for x in rs.get_reservations()] == [r.id, r2.id]
    assert r.get_template().to_dict()["duration"] == 100
    info = r.get_info()
    assert (info.reservation_name, info.reserved_slots) == ("night", 2)
    assert info.reserved_end_time - info.reserved_start_time == dt.timedelta(seconds=100)
    assert drmaa2.get_reservation_session_names() == ["rs-01"]
    ms = drmaa2.MonitoringSession("ms")
    listed = ms.get_all_reservations(drmaa2.ReservationInfo({"reservation_name": "night"}))
    assert [x.id for x in listed] == [info.reservation_id]
    assert listed[0].get_info().reservation_name == "night"
    with pytest.raises(drmaa2.UnsupportedOperation):
        listed[0].terminate()
    assert len(ms.get_all_reservations(None)) == 2
    r2.terminate()
    assert [x.id for x in rs.get_reservations()] == [r.id]
    core_rs = d2.SessionManager().open_reservation_session("rs-01")
    assert drmaa2.Reservation(core_rs.get_reservation(r.id)) == r
    with pytest.raises(drmaa2.InvalidArgument):
        drmaa2.Reservation(r.id)
    rs2 = drmaa2.ReservationSession(f"{getpass.getuser()}@rs-01")
    rs2.close()
    rs2.open()
    rs2.destroy()
    assert drmaa2.ReservationSession.list_session_names() == []
    drmaa2.ReservationSession("rs-02", destroy_on_exit=False)
    drmaa2.ReservationSession.destroy_by_name("rs-02", auth={"username": getpass.getuser()})
    assert drmaa2.get_reservation_session_names() == []


# -- notifications -----------------------------------------------------------------------------------
def test_event_notifications_reach_the_registered_callback(js):
    seen: list[drmaa2.Notification] = []
    drmaa2.Notification.register_event_notification(seen.append)
    j = js.run_job(sleeper(0))
    j.wait_terminated(10)
    wait_for(lambda: any(n.job_id == j.id and n.job_state == "DONE" for n in seen))
    n = next(n for n in seen if n.job_id == j.id)
    assert isinstance(n, drmaa2.Notification)
    assert (n.event, n.session_name, n.implementation_specific) == ("NEW_STATE", "compat", {})
    drmaa2.Notification.unregister_event_notification()
    count = len(seen)
    js.run_job(sleeper(0)).wait_terminated(10)
    time.sleep(1.5)  # the notifier looks about once a second: it would have delivered by now
    assert len(seen) == count
    with pytest.raises(drmaa2.InvalidArgument):
        drmaa2.Notification.register_event_notification("not callable")
    got = []
    drmaa2.Notification.event_callback(got.append)(d2.Notification(
        d2.Event.NEW_STATE, "7", "s", d2.JobState.RUNNING))
    assert got[0].to_dict() == {"event": "NEW_STATE", "implementation_specific": {},
                                "job_id": "7", "job_state": "RUNNING", "session_name": "s"}
    assert drmaa2.Notification({"job_id": "8"}).job_id == "8"
    assert drmaa2.Notification.get_implementation_specific_keys() == []


def test_event_notifications_are_unsupported_without_the_callback_capability(monkeypatch):
    monkeypatch.setenv("PYDRMAA2_CONTACT", "reserving")  # a tracker without CALLBACK
    with pytest.raises(drmaa2.UnsupportedOperation, match="notifications"):
        drmaa2.Notification.register_event_notification(print)


# -- examples: uge-drmaa2's own, ported by changing the import line only ----------------------------
#: Every .py file there but its conftest.py (which keeps pytest out of upstream_tests/).
EXAMPLES = sorted(p.stem for p in EXAMPLES_DIR.glob("*.py") if p.name != "conftest.py")
TRACKERS = ("process", "docker", "slurm")
#: Examples that need advance reservations: UnsupportedOperation where the tracker has none.
RESERVING = {"create_reservation_session", "get_all_reservations", "get_reservation",
             "get_reservation_info", "get_reservation_template", "get_reservations",
             "request_reservation", "terminate_reservation"}
#: Examples changed beyond their import, each with a "pydrmaa2 port:" comment (see INDEX.md).
CHANGED = {"request_reservation"}
#: Longest first (seconds of sleep in them), so the examples end about when the slowest does.
SLOW = {"wait_terminated": 100, "suspend_and_resume_job": 20, "suspend_and_resume_job_array": 20,
        "terminate_job": 10, "terminate_job_array": 10, "wait_any_terminated": 10}
#: How many examples run at once on each tracker: they mostly sleep, but each starts Pythons.
PARALLEL = {"process": 8, "docker": 8, "slurm": 1}
#: What some examples must print, beyond printing every message they have (checked for all).
PRINTS = {
    "create_job_session": r"Current session names: \['js-01'\]",
    "destroy_all_job_sessions": r"Remaining session names: \[\]",
    "get_drmaa2_library_info": r"DRMS Name: pydrmaa2",
    "get_job_array": r"Retrieved job array: \{'id': '\d+', 'job_list': \[Job",
    "get_jobs": r"Got jobs: \[Job\(\{'id'",
    # '%s' of an IntEnum member is its number from Python 3.11 on, as with uge-drmaa2
    "get_job_state": r"Retrieved job state: (JobState\.)?(QUEUED|RUNNING|1|3)$",
    "readme_basic_api_usage": r"^pydrmaa2$",
    "run_job_array": r"'job_list': \[Job\(.*\), Job\(.*\), Job\(.*\), Job\(.*\), Job\(",
    "wait_all_started": r"Jobs started: \[Job\(.*\), Job\(",
    "wait_terminated": r"after termination: \{.*'job_state': 'DONE'",
}


def expected_error(tracker: str, example: str) -> str | None:
    """The uge-drmaa2 exception an example must end with on ``tracker`` (None: it succeeds)."""
    caps = trackers.tracker_class(tracker).capabilities
    if example in RESERVING and d2.Capability.ADVANCE_RESERVATION not in caps:
        return "UnsupportedOperation"
    if example == "register_event_notification" and d2.Capability.CALLBACK not in caps:
        return "UnsupportedOperation"
    return None


def printed_messages(source: str) -> list[str]:
    """The literal text each print() of an example starts with, in the order of the source
    (those that must run: not in callbacks, nor in loops that may run no time)."""
    tree = ast.parse(source)
    nested = {id(n) for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.For))
              for n in ast.walk(f)}  # prints in callbacks and loops need not run
    out = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and getattr(node.func, "id", None) == "print"
                and id(node) not in nested and node.args):
            arg = node.args[0]
            text = arg.left if isinstance(arg, ast.BinOp) else arg
            if isinstance(text, ast.Constant) and isinstance(text.value, str):
                out.append((node.lineno, text.value.split("%")[0].strip()))
    return [text for _, text in sorted(out)]


def tracker_env(tracker: str, home: Path) -> dict[str, str]:
    """The environment that runs uge-drmaa2 code on ``tracker`` with its own store at ``home``."""
    target = TARGETS[tracker]
    env = dict(os.environ, PYDRMAA2_HOME=str(home), PYDRMAA2_CONTACT=target.contact)
    env.pop("PYDRMAA2_JOB_CATEGORY", None)
    if target.job_category:
        env["PYDRMAA2_JOB_CATEGORY"] = target.job_category
    return env


class ExampleRuns:
    """Runs ported examples as subprocesses (one store each), many at once per tracker."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.pools: dict[str, ThreadPoolExecutor] = {}
        self.runs: dict[tuple[str, str], Future[dict[str, Any]]] = {}

    def start(self, tracker: str, example: str) -> None:
        if (tracker, example) not in self.runs:
            pool = self.pools.setdefault(tracker, ThreadPoolExecutor(PARALLEL[tracker]))
            self.runs[tracker, example] = pool.submit(self._run, tracker, example)

    def result(self, tracker: str, example: str) -> dict[str, Any]:
        self.start(tracker, example)
        return self.runs[tracker, example].result()

    def _run(self, tracker: str, example: str) -> dict[str, Any]:
        work = self.tmp / tracker / example
        work.mkdir(parents=True)
        result = work / "result.json"
        p = subprocess.run(
            [sys.executable, "-m", "tests.test_compat", str(EXAMPLES_DIR / f"{example}.py"),
             str(result)], cwd=REPO, env=tracker_env(tracker, work / "home"), capture_output=True,
            text=True, timeout=280)
        raised = json.loads(result.read_text())["raised"] if result.exists() else "?"
        return {"returncode": p.returncode, "stdout": p.stdout, "stderr": p.stderr,
                "raised": raised}

    def close(self) -> None:
        for pool in self.pools.values():
            pool.shutdown(cancel_futures=True)


@pytest.fixture(scope="module")
def example_runs(request: pytest.FixtureRequest,
                 tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExampleRuns]:
    """Starts every selected example on every available tracker at once, slowest first."""
    runs = ExampleRuns(tmp_path_factory.mktemp("compat-examples"))
    wanted = [item.callspec.params for item in request.session.items
              if getattr(item, "originalname", "") == "test_ported_example_runs"]
    # Reservations last: Slurm reserves only idle nodes, so they must not meet other examples' jobs.
    for params in sorted(wanted, key=lambda p: (p["example"] in RESERVING, -SLOW.get(p["example"], 0))):
        if unavailable(params["tracker"]) is None:
            runs.start(params["tracker"], params["example"])
    yield runs
    runs.close()


@pytest.mark.slow
@pytest.mark.parametrize("example", EXAMPLES)
@pytest.mark.parametrize("tracker", TRACKERS)
def test_ported_example_runs(tracker: str, example: str, example_runs: ExampleRuns) -> None:
    require(tracker)
    run = example_runs.result(tracker, example)
    report = f"stdout:\n{run['stdout']}\nstderr:\n{run['stderr']}"
    assert run["returncode"] == 0, report
    assert run["raised"] == expected_error(tracker, example), report
    if run["raised"] is None:
        at = 0
        for message in printed_messages((EXAMPLES_DIR / f"{example}.py").read_text()):
            found = run["stdout"].find(message, at)
            assert found >= 0, f"missing {message!r} (in order)\n{report}"
            at = found + len(message)
        pattern = PRINTS.get(example)
        if example == "get_job_template" and not TARGETS[tracker].job_category:
            pattern = r"equals the original\? True"
        if pattern:
            assert re.search(pattern, run["stdout"], re.MULTILINE), report


def test_examples_differ_from_upstream_only_in_their_imports():
    for path in (EXAMPLES_DIR / f"{example}.py" for example in EXAMPLES):
        lines = path.read_text().splitlines()
        imports = [line for line in lines if "drmaa2" in line and "import" in line
                   and not line.lstrip().startswith(">>>")]
        assert imports and all("pydrmaa2.drmaa2" in line for line in imports), path.name
        changes = [n for n, line in enumerate(lines) if "pydrmaa2 port:" in line]
        assert len(changes) <= (path.stem in CHANGED), path.name  # and each says why
    assert set(EXAMPLES) >= RESERVING | set(SLOW) | set(PRINTS)


# -- the runner of one example (a subprocess of the test above) ----------------------------------
def run_example(path: str, result: str) -> None:
    """Run a ported example as ``__main__``; record which uge-drmaa2 exception it raised."""
    _tidy_destroy(setattr)
    raised = None
    try:
        runpy.run_path(path, run_name="__main__")
    except drmaa2.Drmaa2Exception as e:
        traceback.print_exc()
        raised = type(e).__name__
    sys.stdout.flush()
    gc.collect()  # the example's objects are gone: their sessions are destroyed (destroy_on_exit)
    _clear_store(_runtime.manager().home)
    Path(result).write_text(json.dumps({"raised": raised}))


if __name__ == "__main__":
    run_example(sys.argv[1], sys.argv[2])
