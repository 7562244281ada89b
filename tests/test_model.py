"""The DRMAA2 model: contacts, templates, placeholders, filters, JSON encoding."""

from __future__ import annotations

import datetime as dt

import pytest

import pydrmaa2 as d2
from pydrmaa2 import _codec
from pydrmaa2.info import matches
from pydrmaa2.templates import expand_placeholders, for_task
from pydrmaa2.trackers import Contact


@pytest.mark.parametrize("raw, scheme, path, host, port, options", [
    ("process", "process", None, None, None, {}),
    ("docker", "docker", None, None, None, {}),
    ("docker:///var/run/docker.sock", "docker", "/var/run/docker.sock", None, None, {}),
    ("docker://10.0.0.1:2375", "docker", None, "10.0.0.1", 2375, {}),
    ("containerd:///run/c.sock?namespace=drmaa", "containerd", "/run/c.sock", None, None,
     {"namespace": "drmaa"}),
    ("slurm://mycluster", "slurm", None, "mycluster", None, {}),
])
def test_contact_forms(raw, scheme, path, host, port, options):
    c = Contact.parse(raw)
    assert (c.scheme, c.path, c.host, c.port, c.options) == (scheme, path, host, port, options)


@pytest.mark.parametrize("raw", ["", "  ", "no spaces allowed", "docker://h:notaport"])
def test_bad_contacts_are_invalid_arguments_naming_the_value(raw):
    with pytest.raises(d2.InvalidArgumentError):
        Contact.parse(raw)


def test_unknown_scheme_names_the_known_ones(tmp_path):
    sm = d2.SessionManager(home=tmp_path)
    with pytest.raises(d2.InvalidArgumentError, match="'nosuch'.*process"):
        sm.create_job_session("x", contact="nosuch")
    assert sm.job_session_names == []


def test_placeholders_are_expanded(monkeypatch):
    monkeypatch.setenv("HOME", "/home/u")
    assert expand_placeholders("$DRMAA2_HOME_DIR$/o.$DRMAA2_INDEX$", index=7,
                               working_dir=None) == "/home/u/o.7"
    t = for_task(d2.JobTemplate(remote_command="x", working_directory="/w/$DRMAA2_INDEX$",
                                output_path="$DRMAA2_WORKING_DIR$/out"), 3)
    assert t.working_directory == "/w/3" and t.output_path == "/w/3/out"


def test_template_validation_names_the_field():
    with pytest.raises(d2.InvalidArgumentError, match="args"):
        d2.JobTemplate(remote_command="x", args="not a list").validate()  # type: ignore[arg-type]
    with pytest.raises(d2.InvalidArgumentError, match="min_slots"):
        d2.JobTemplate(remote_command="x", min_slots=4, max_slots=2).validate()
    with pytest.raises(d2.InvalidArgumentError, match="job_environment"):
        d2.JobTemplate(remote_command="x", job_environment={"A=B": "c"}).validate()


def test_set_fields_ignores_defaults():
    assert d2.JobTemplate().set_fields() == []
    assert d2.JobTemplate(remote_command="x", args=["a"]).set_fields() == ["remote_command", "args"]


def test_codec_round_trips_templates_and_infos():
    now = dt.datetime.now(dt.timezone.utc)
    jt = d2.JobTemplate(remote_command="x", args=["1"], start_time=now,
                        machine_arch=d2.CPU.X64, job_environment={"A": "b"})
    assert _codec.decode(d2.JobTemplate, _codec.encode(jt)) == jt
    ji = d2.JobInfo(id="1", state=d2.JobState.DONE, wallclock_time=dt.timedelta(seconds=1.5),
                    finish_time=now, allocated_machines=["h"], extensions={"k": "v"})
    assert _codec.decode(d2.JobInfo, _codec.encode(ji)) == ji


def test_codec_leaves_out_what_is_not_set_and_keeps_the_rest_as_json():
    import collections
    import json

    jt = d2.JobTemplate(remote_command="x", args=[""], job_environment=collections.OrderedDict(),
                        stage_in_files={}, resource_limits={"cpu": "1"}, priority=0,
                        submit_as_hold=False, job_name="")
    assert _codec.encode(jt) == {"remote_command": "x", "args": [""],
                                 "resource_limits": {"cpu": "1"}, "priority": 0,
                                 "submit_as_hold": False, "job_name": ""}
    ji = d2.JobInfo(state=d2.JobState.FAILED, cpu_time=dt.timedelta(milliseconds=1500),
                    dispatch_time=dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc))
    assert json.loads(json.dumps(_codec.encode(ji))) == {
        "state": "failed", "cpu_time": 1.5, "dispatch_time": "2026-01-02T03:04:05+00:00"}


def test_filter_rules():
    t = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    info = d2.JobInfo(id="1", state=d2.JobState.DONE, allocated_machines=["a", "b"],
                      wallclock_time=dt.timedelta(seconds=10), finish_time=t,
                      extensions={"k": "v"})
    assert matches(info, None)
    assert matches(info, d2.JobInfo())  # unset fields never filter
    assert matches(info, d2.JobInfo(state=d2.JobState.DONE))
    assert not matches(info, d2.JobInfo(state=d2.JobState.FAILED))
    assert matches(info, d2.JobInfo(allocated_machines=["a"]))  # superset
    assert not matches(info, d2.JobInfo(allocated_machines=["c"]))
    assert matches(info, d2.JobInfo(wallclock_time=dt.timedelta(seconds=5)))  # at least
    assert not matches(info, d2.JobInfo(wallclock_time=dt.timedelta(seconds=50)))
    assert matches(info, d2.JobInfo(finish_time=t - dt.timedelta(days=1)))  # not before
    assert not matches(info, d2.JobInfo(finish_time=t + dt.timedelta(days=1)))
    assert matches(info, d2.JobInfo(extensions={"k": "v"}))
    assert not matches(info, d2.JobInfo(extensions={"k": "w"}))
