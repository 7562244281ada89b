"""The drmaa2 command, run as a user would (a subprocess, JSON for checking)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest


@pytest.fixture
def drmaa2(tmp_path):
    env = dict(os.environ, PYDRMAA2_HOME=str(tmp_path / "home"))

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
        r = subprocess.run([sys.executable, "-m", "pydrmaa2.cli", *args], capture_output=True,
                           text=True, env=env, timeout=60)
        if check and r.returncode != 0:
            raise AssertionError(f"drmaa2 {args} -> {r.returncode}\n{r.stdout}\n{r.stderr}")
        return r

    return run


def test_run_wait_and_info(drmaa2, tmp_path):
    out = tmp_path / "o.txt"
    r = drmaa2("run", "--wait", "--json", "--output", str(out), "--env", "X=42", "--",
               "/bin/sh", "-c", "echo $X")
    (info,) = json.loads(r.stdout)
    assert info["state"] == "done" and info["exit_status"] == 0
    assert out.read_text() == "42\n"
    r = drmaa2("info", info["id"], "--json")
    assert json.loads(r.stdout)["id"] == info["id"]


def test_a_failed_job_makes_wait_non_zero(drmaa2):
    r = drmaa2("run", "--wait", "--", "/bin/false", check=False)
    assert r.returncode == 1
    job = json.loads(drmaa2("run", "--json", "--", "/bin/sh", "-c", "exit 4").stdout)["job"]
    r = drmaa2("wait", job, "--json", check=False)
    assert r.returncode == 1 and json.loads(r.stdout)[0]["exit_status"] == 4


def test_array_with_max_parallel_and_jobs_listing(drmaa2):
    r = drmaa2("run", "--json", "--array", "1:4", "--max-parallel", "2", "--", "/bin/true")
    arr = json.loads(r.stdout)
    assert len(arr["jobs"]) == 4
    drmaa2("wait", *arr["jobs"])
    listed = json.loads(drmaa2("jobs", "--state", "done", "--json").stdout)
    assert sorted(i["id"] for i in listed) == sorted(arr["jobs"])


def test_hold_release_terminate_reap(drmaa2):
    job = json.loads(drmaa2("run", "--hold", "--json", "--", "/bin/sleep", "30").stdout)["job"]
    assert json.loads(drmaa2("info", job, "--json").stdout)["state"] == "queued_held"
    drmaa2("release", job)
    drmaa2("terminate", job)
    r = drmaa2("wait", job, "--timeout", "10", "--json", check=False)
    assert json.loads(r.stdout)[0]["state"] == "failed"
    drmaa2("reap", job)
    r = drmaa2("info", job, check=False)
    assert r.returncode == 2 and "InvalidArgumentError" in r.stderr and job in r.stderr


def test_wait_timeout_is_an_error(drmaa2):
    job = json.loads(drmaa2("run", "--json", "--", "/bin/sleep", "30").stdout)["job"]
    r = drmaa2("wait", job, "--timeout", "0.2", check=False)
    assert r.returncode == 2 and "TimeoutError" in r.stderr
    drmaa2("terminate", job)


def test_sessions_and_monitor(drmaa2):
    drmaa2("sessions", "create", "s1")
    names = [s["name"] for s in json.loads(drmaa2("sessions", "list", "--json").stdout)]
    assert names == ["s1"]
    r = drmaa2("sessions", "create", "s1", check=False)
    assert r.returncode == 2 and "s1" in r.stderr
    drmaa2("sessions", "destroy", "s1")
    machines = json.loads(drmaa2("monitor", "machines", "--json").stdout)
    assert machines[0]["phys_memory"] > 0


def test_bad_usage_is_explained(drmaa2):
    r = drmaa2("run", "--array", "5:1", "--", "/bin/true", check=False)
    assert r.returncode == 2 and "5" in r.stderr
    r = drmaa2("run", "--", "/no/such/binary", check=False)
    assert r.returncode == 2 and "/no/such/binary" in r.stderr


def test_one_command_after_another_gets_consecutive_job_ids(drmaa2):
    ids = [json.loads(drmaa2("run", "--json", "--", "/bin/true").stdout)["job"] for _ in range(3)]
    assert [int(i) for i in ids] == [int(ids[0]), int(ids[0]) + 1, int(ids[0]) + 2]


def test_a_failed_run_creates_no_session_and_contact_alone_uses_its_own_default(drmaa2):
    """`drmaa2 run --contact docker -- true` without an image fails and leaves nothing behind;
    plain `drmaa2 run` then still uses the process tracker; --contact C alone means session
    'default:C', never a change to 'default'."""

    def sessions() -> dict[str, str]:
        listed = json.loads(drmaa2("sessions", "list", "--json").stdout)
        return {s["name"]: s["contact"] for s in listed}

    r = drmaa2("run", "--contact", "docker", "--", "true", check=False)
    assert r.returncode == 2 and "job_category" in r.stderr
    assert sessions() == {}
    drmaa2("run", "--wait", "--", "/bin/true")
    assert sessions() == {"default": "process"}
    r = drmaa2("run", "--contact", "process?bogus=1", "--", "/bin/true", check=False)
    assert r.returncode == 2 and "bogus" in r.stderr
    assert sessions() == {"default": "process"}
