"""The public surface: names pinned, error tree, enums."""

from __future__ import annotations

import builtins

import pydrmaa2 as d2

PUBLIC = {
    "CPU", "OS", "Capability", "DeniedByDrmsError", "DrmCommunicationError", "Drmaa2Error",
    "Event", "INFINITE_TIME", "ImplementationSpecificError", "InternalError",
    "InvalidArgumentError", "InvalidSessionError", "InvalidStateError", "Job", "JobArray",
    "JobInfo", "JobSession", "JobState", "JobTemplate", "MachineInfo", "MonitoringSession",
    "Notification", "OutOfResourceError", "QueueInfo", "Reservation", "ReservationInfo",
    "ReservationSession", "ReservationTemplate", "SessionManagementError", "SessionManager",
    "TimeoutError", "TryLaterError", "UnsupportedAttributeError", "UnsupportedOperationError",
    "Version", "ZERO_TIME", "__version__",
}


def test_public_names_are_pinned():
    assert set(d2.__all__) == PUBLIC
    for name in PUBLIC:
        assert hasattr(d2, name), name


def test_every_error_derives_from_drmaa2_error():
    for name in PUBLIC:
        obj = getattr(d2, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, d2.Drmaa2Error), name


def test_timeout_and_invalid_argument_are_also_builtins():
    assert issubclass(d2.TimeoutError, builtins.TimeoutError)
    assert issubclass(d2.InvalidArgumentError, ValueError)


def test_terminal_states():
    assert {s for s in d2.JobState if s.is_terminal} == {d2.JobState.DONE, d2.JobState.FAILED}
    assert d2.JobState.SUSPENDED.is_started and not d2.JobState.QUEUED.is_started


def test_timeout_aliases():
    assert d2.INFINITE_TIME is None
    assert d2.ZERO_TIME == 0


def test_versions_and_names():
    sm_cls = d2.SessionManager
    assert sm_cls.drms_name == "pydrmaa2"
    assert str(d2.Version("2", "0")) == "2.0"


def test_cpu_from_machine():
    assert d2.CPU.from_machine("x86_64") is d2.CPU.X64
    assert d2.CPU.from_machine("aarch64") is d2.CPU.ARM64
    assert d2.CPU.from_machine("weird") is d2.CPU.OTHER_CPU


def test_a_job_is_found_by_its_id_in_whichever_session_holds_it(sm):
    with sm.create_job_session("a") as a, sm.create_job_session("b"):
        job = a.run_job(d2.JobTemplate(remote_command="/bin/true"))
        assert sm.job_session_of(job.id) == "a"
        found = sm.find_job(job.id)
        assert found == job and found.session.session_name == "a"
        found.session.wait_all_terminated([found], 10)
        found.session.close()
    assert sm.job_session_contacts == {"a": "process", "b": "process"}
    try:
        sm.find_job("999999")
    except d2.InvalidArgumentError as e:
        assert "999999" in str(e)
    else:
        raise AssertionError("no error for a job that does not exist")


def test_a_session_manager_closes_its_notifier_and_is_a_context_manager(tmp_path):
    with d2.SessionManager(home=tmp_path) as sm:
        sm.register_event_notification(lambda n: None)
        assert any(t.name == "pydrmaa2-notify" for t in __import__("threading").enumerate())
    sm.close()  # idempotent
    assert sm._notifier_stop.is_set()
