"""Arguments of the public API are checked at the call: each reported escape or wrong acceptance
is now an InvalidArgumentError naming the field and the value, and leaves nothing behind."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import pydrmaa2 as d2
from pydrmaa2 import templates
from pydrmaa2.jobs import check_timeout
from pydrmaa2.trackers import Contact, tracker_class
from pydrmaa2.trackers.base import MAX_ARRAY_SIZE, JobTracker

TRUE = d2.JobTemplate(remote_command="/bin/true")


def _rows(path: Path, *queries: str) -> tuple:
    if not path.exists():
        return ()
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return tuple(tuple(db.execute(q).fetchall()) for q in queries)
    finally:
        db.close()


def footprint(sm: d2.SessionManager) -> tuple:
    """What a refused call must leave as it was: sessions, jobs, arrays, claimed ids, the id
    sequences (sqlite_sequence), the ids this process holds in reserve, the process tracker's
    rows."""
    store = _rows(sm.home / "store.sqlite",
                  "SELECT name, seq FROM sqlite_sequence ORDER BY name",
                  "SELECT name, contact FROM sessions ORDER BY name",
                  "SELECT id FROM jobs ORDER BY id", "SELECT id FROM arrays ORDER BY id",
                  "SELECT id FROM id_claims ORDER BY id")
    reserve = {k: list(v) for k, v in sm._store._reserved.items()}
    return store, reserve, _rows(sm.home / "process.sqlite", "SELECT tid FROM procs ORDER BY tid")


@pytest.fixture
def js(sm: d2.SessionManager) -> Iterator[d2.JobSession]:
    with sm.create_job_session("v") as session:
        # One job first: the next submission takes its id from this process's reserve, which a
        # refused call must not touch either.
        session.wait_all_terminated([session.run_job(TRUE)], 30)
        yield session


def refused(sm: d2.SessionManager, call: Callable[[], Any], *named: str,
            error: type[d2.Drmaa2Error] = d2.InvalidArgumentError) -> str:
    """Run ``call``: it raises ``error`` whose message names each of ``named``, and nothing in
    the store or the engine changed."""
    before = footprint(sm)
    with pytest.raises(error) as e:
        call()
    for word in named:
        assert word in str(e.value), (word, str(e.value))
    assert footprint(sm) == before
    return str(e.value)


# -- the reported escapes ---------------------------------------------------------------------------
def test_a_remote_command_that_is_not_a_string_is_an_invalid_argument(sm, js):
    refused(sm, lambda: js.run_job(d2.JobTemplate(remote_command=5)), "remote_command", "5")


def test_path_objects_are_accepted_for_every_path_field_and_stored_as_strings(sm, js, tmp_path):
    src = tmp_path / "in.txt"
    src.write_text("staged\n")
    jt = d2.JobTemplate(remote_command=Path("/bin/sh"), args=("-c", "cat staged; echo err >&2"),
                        working_directory=tmp_path, output_path=tmp_path / "out.txt",
                        error_path=tmp_path / "err.txt", input_path=Path("/dev/null"),
                        stage_in_files={src: tmp_path / "staged"})
    original = dataclasses.replace(jt)
    job = js.run_job(jt)
    assert job.wait_terminated(30).exit_status == 0
    assert (tmp_path / "out.txt").read_text() == "staged\n"
    assert (tmp_path / "err.txt").read_text() == "err\n"
    stored = job.template
    assert stored.working_directory == str(tmp_path)
    assert stored.output_path == str(tmp_path / "out.txt")
    assert stored.stage_in_files == {str(src): str(tmp_path / "staged")}
    assert stored.args == ["-c", "cat staged; echo err >&2"]
    assert jt == original  # the caller's template is never changed
    arr = js.run_bulk_jobs(d2.JobTemplate(remote_command="/bin/true",
                                          output_path=tmp_path / "o.$DRMAA2_INDEX$"), 1, 2)
    js.wait_all_terminated(arr.jobs, 30)
    assert arr.template.output_path == str(tmp_path / "o.$DRMAA2_INDEX$")
    assert (tmp_path / "o.2").exists()


def test_a_canonical_template_is_submitted_as_it_is():
    assert TRUE.validate() is TRUE


def test_stage_in_files_mapping_to_a_number_is_refused(sm, js):
    refused(sm, lambda: js.run_job(dataclasses.replace(TRUE, stage_in_files={"a": 5})),
            "stage_in_files", "'a'", "5")


def test_an_array_index_beyond_64_bits_is_refused(sm, js):
    refused(sm, lambda: js.run_bulk_jobs(TRUE, 2**63, 2**63), "end", str(2**63))
    refused(sm, lambda: js.run_bulk_jobs(TRUE, 1, 2**64), "end", str(2**64))


def test_a_timeout_that_is_not_a_number_is_refused(sm, js):
    job = js.get_jobs()[0]
    refused(sm, lambda: job.wait_terminated(timeout="5"), "timeout", "'5'")
    refused(sm, lambda: js.wait_any_terminated([job], timeout=True), "timeout", "True")
    refused(sm, lambda: js.wait_all_terminated([job], timeout=-1), "timeout", "-1")
    refused(sm, lambda: js.wait_all_terminated([job], timeout=math.nan), "timeout", "nan")


def test_a_timeout_too_long_to_count_waits_forever_and_zero_looks_once():
    assert check_timeout(10**400) is None
    assert check_timeout(math.inf) is None
    assert check_timeout(0) == 0.0 and check_timeout(d2.ZERO_TIME) == 0.0
    assert check_timeout(2) == 2.0


def test_waiting_on_something_that_is_not_a_job_is_refused(sm, js):
    refused(sm, lambda: js.wait_all_started([1]), "jobs[0]", "1")
    refused(sm, lambda: js.wait_any_started(5), "jobs", "5")
    refused(sm, lambda: js.wait_all_terminated("12"), "jobs", "'12'")
    refused(sm, lambda: js.wait_all_terminated(js.get_jobs()[0]), "jobs", "Job")
    refused(sm, lambda: js.wait_all_terminated([]), "empty")


def test_a_filter_that_is_not_a_jobinfo_is_refused(sm, js):
    refused(sm, lambda: js.get_jobs(filter="x"), "filter", "'x'")
    refused(sm, lambda: js.get_jobs(filter=d2.JobInfo(wallclock_time=5)), "wallclock_time", "5")
    refused(sm, lambda: js.get_jobs(filter=d2.JobInfo(state="RUNNING")), "state", "RUNNING")
    naive = dt.datetime(2020, 1, 1)
    refused(sm, lambda: js.get_jobs(filter=d2.JobInfo(submission_time=naive)), "submission_time",
            "timezone")
    refused(sm, lambda: js.get_jobs(filter=d2.JobInfo(allocated_machines="host")),
            "allocated_machines", "'host'")
    assert len(js.get_jobs(filter=d2.JobInfo(state=d2.JobState.DONE))) == 1


def test_a_contact_with_a_broken_address_is_an_invalid_argument(sm):
    for raw in ("docker://[::1", "docker://[nohost]", "docker://h:99999", "process?bogus",
                "process?a=1&a=2", "process?a=", "docker://h#x", "process\0"):
        with pytest.raises(d2.InvalidArgumentError, match="contact"):
            Contact.parse(raw)
        refused(sm, lambda raw=raw: sm.create_job_session("c", contact=raw), "contact")
    with pytest.raises(d2.InvalidArgumentError, match="contact must be a string"):
        Contact.parse(5)  # type: ignore[arg-type]
    refused(sm, lambda: sm.create_job_session("c", contact=5), "contact", "5")


# -- the reported wrong acceptances -----------------------------------------------------------------
def test_candidate_machines_as_one_string_is_refused_not_read_letter_by_letter(sm, js):
    refused(sm, lambda: js.run_job(dataclasses.replace(TRUE, candidate_machines="localhost")),
            "candidate_machines", "'localhost'")


@pytest.mark.parametrize("max_parallel", [0, -1, True, False, 1.5, "2", 2**63])
def test_max_parallel_is_a_positive_int_or_none(sm, js, max_parallel):
    refused(sm, lambda: js.run_bulk_jobs(TRUE, 1, 2, max_parallel=max_parallel), "max_parallel",
            repr(max_parallel) if isinstance(max_parallel, str) else str(max_parallel))


def test_unknown_contact_options_are_refused_naming_the_option_and_the_contact(sm):
    message = refused(sm, lambda: sm.create_job_session("b", contact="process?bogus=1"),
                      "'bogus'", "process?bogus=1")
    assert "takes none" in message
    refused(sm, lambda: sm.open_monitoring_session("process?bogus=1"), "bogus")
    refused(sm, lambda: sm.supports(d2.Capability.JOB_ARRAYS, "process?bogus=1"), "bogus")


def test_an_array_larger_than_max_array_size_is_refused_at_once(sm, js):
    started = time.monotonic()
    refused(sm, lambda: js.run_bulk_jobs(TRUE, 1, 10**9), "1000000000 tasks", str(MAX_ARRAY_SIZE))
    refused(sm, lambda: js.run_bulk_jobs(TRUE, 1, MAX_ARRAY_SIZE + 1), str(MAX_ARRAY_SIZE + 1))
    assert time.monotonic() - started < 2


def test_a_tracker_may_allow_fewer_tasks_than_max_array_size(sm, js, monkeypatch):
    monkeypatch.setattr(type(js._tracker), "max_array_tasks", 3)
    refused(sm, lambda: js.run_bulk_jobs(TRUE, 1, 4), "4 tasks", "at most 3")
    js.wait_all_terminated(js.run_bulk_jobs(TRUE, 1, 7, 3).jobs, 30)  # 1, 4, 7: three tasks


# -- the rest of the contract -----------------------------------------------------------------------
def test_every_template_field_has_a_check():
    fields = {f.name for f in dataclasses.fields(d2.JobTemplate)}
    assert set(templates._JOB_RULES) == fields
    assert set(templates._RESERVATION_RULES) == {
        f.name for f in dataclasses.fields(d2.ReservationTemplate)}


@pytest.mark.parametrize(("fields", "named"), [
    ({"args": "-c"}, "args"),
    ({"args": ["ok", 3]}, "args[1]"),
    ({"args": ["a\0b"]}, "NUL"),
    ({"output_path": "/tmp/\0"}, "NUL"),
    ({"output_path": b"/tmp/x"}, "output_path"),
    ({"job_environment": {"A": 1}}, "job_environment['A']"),
    ({"job_environment": {"": "x"}}, "job_environment key"),
    ({"job_environment": {"A\0": "x"}}, "NUL"),
    ({"job_environment": ["A=1"]}, "job_environment"),
    ({"submit_as_hold": 1}, "submit_as_hold"),
    ({"join_files": "yes"}, "join_files"),
    ({"min_slots": -1}, "min_slots"),
    ({"min_slots": 2**63}, "min_slots"),
    ({"min_slots": 1.0}, "min_slots"),
    ({"priority": 2**63}, "priority"),
    ({"min_slots": 4, "max_slots": 2}, "min_slots"),
    ({"machine_os": "LINUX"}, "machine_os"),
    ({"start_time": "now"}, "start_time"),
    ({"email": "a@b"}, "email"),
    ({"extensions": {"k": 1}}, "extensions['k']"),
    ({"resource_limits": {"k": None}}, "resource_limits['k']"),
    ({"stage_out_files": {"/a": Path("/b"), Path("/a"): "/c"}}, "twice"),
])
def test_each_template_field_is_checked_before_anything_is_created(sm, js, fields, named):
    refused(sm, lambda: js.run_job(dataclasses.replace(TRUE, **fields)), named)
    refused(sm, lambda: js.run_bulk_jobs(dataclasses.replace(TRUE, **fields), 1, 3), named)


def test_run_bulk_jobs_range_arguments_are_checked(sm, js):
    refused(sm, lambda: js.run_bulk_jobs(TRUE, 0, 3), "begin", "0")
    refused(sm, lambda: js.run_bulk_jobs(TRUE, 3, 1), "begin 3", "end 1")
    refused(sm, lambda: js.run_bulk_jobs(TRUE, 1, 3, 0), "step", "0")
    refused(sm, lambda: js.run_bulk_jobs(TRUE, True, 3), "begin", "True")
    refused(sm, lambda: js.run_bulk_jobs(TRUE, 1, "3"), "end", "'3'")
    refused(sm, lambda: js.run_bulk_jobs("not a template", 1, 3), "JobTemplate")


def test_session_manager_names_home_and_contacts_are_checked(sm, tmp_path):
    refused(sm, lambda: sm.create_job_session(5), "session name", "5")
    refused(sm, lambda: sm.create_job_session("a\0b"), "session name", "NUL")
    refused(sm, lambda: sm.create_job_session(" "), "session name")
    refused(sm, lambda: sm.open_job_session(None), "session name", "None")
    refused(sm, lambda: sm.destroy_job_session(b"v"), "session name")
    refused(sm, lambda: sm.supports("JOB_ARRAYS"), "Capability")
    with pytest.raises(d2.InvalidArgumentError, match="home"):
        d2.SessionManager(home=5)  # type: ignore[arg-type]
    with pytest.raises(d2.InvalidArgumentError, match="NUL"):
        d2.SessionManager(home=f"{tmp_path}/a\0b")


def test_monitoring_names_are_a_list_not_one_string(sm):
    with sm.open_monitoring_session() as ms:
        with pytest.raises(d2.InvalidArgumentError, match="names"):
            ms.get_all_machines("localhost")
        with pytest.raises(d2.InvalidArgumentError, match="filter"):
            ms.get_all_jobs(filter="x")


def test_reservation_templates_are_checked_field_by_field():
    bad = [d2.ReservationTemplate(duration=dt.timedelta(seconds=-1)),
           d2.ReservationTemplate(users_acl="alice"), d2.ReservationTemplate(min_slots=True),
           d2.ReservationTemplate(start_time="now"), d2.ReservationTemplate(extensions={"k": 1})]
    for rt in bad:
        with pytest.raises(d2.InvalidArgumentError, match="ReservationTemplate"):
            rt.validate()
    rt = d2.ReservationTemplate(users_acl=("alice",), duration=dt.timedelta(hours=1))
    assert rt.validate().users_acl == ["alice"] and rt.users_acl == ("alice",)


@pytest.mark.parametrize(("scheme", "options"), [
    ("process", ()), ("docker", ()), ("podman", ()),
    ("containerd", ("namespace", "snapshotter", "runtime")), ("slurm", ("max_array_size",)),
])
def test_each_tracker_knows_its_own_contact_options_and_refuses_others(scheme, options):
    try:
        cls = tracker_class(scheme)
    except d2.UnsupportedOperationError as e:  # its client library is not installed
        pytest.skip(str(e))
    for option in options:
        cls.check_contact(Contact.parse(f"{scheme}?{option}=1"))
    with pytest.raises(d2.InvalidArgumentError, match="'bogus'"):
        cls.check_contact(Contact.parse(f"{scheme}?bogus=1"))


def test_a_tracker_that_declares_no_options_refuses_every_option():
    class Quiet(JobTracker):
        scheme = "quiet"

    Quiet.check_contact(Contact.parse("quiet"))
    with pytest.raises(d2.InvalidArgumentError, match="takes none"):
        Quiet.check_contact(Contact.parse("quiet?x=1"))

    class Chatty(JobTracker):
        scheme = "chatty"
        contact_options = frozenset({"x"})

    Chatty.check_contact(Contact.parse("chatty?x=1"))
    with pytest.raises(d2.InvalidArgumentError, match="it knows x"):
        Chatty.check_contact(Contact.parse("chatty?y=1"))
