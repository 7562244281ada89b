"""Only the owner gets in: file modes, the agent's socket and peers, the log, the job's umask,
and staging copies that cannot stall the agent. Real agent, real sockets, real uids (as root,
the tests act as user ``nobody`` where another user is needed)."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

import pydrmaa2 as d2
from pydrmaa2.agent import AgentClient, AgentImpostorError, _Conn, _own_private_dir, socket_path

NOBODY = 65534
#: A Python that user nobody may run (the test's own may live under root's home).
SYSTEM_PYTHON = next((p for p in ("/usr/bin/python3", "/usr/local/bin/python3")
                      if os.access(p, os.X_OK)), sys.executable)


@pytest.fixture
def open_tmp():
    """A directory every user can traverse (pytest's own tmp_path is root's alone)."""
    d = Path(tempfile.mkdtemp(prefix="pydrmaa2-sec-", dir="/tmp"))
    d.chmod(0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def mode(p: Path) -> int:
    return stat.S_IMODE(os.lstat(p).st_mode)


def test_the_store_directory_and_its_files_are_private_whatever_the_umask(tmp_path):
    old = os.umask(0)
    try:
        home = tmp_path / "home"
        sm = d2.SessionManager(home=home)
        js = sm.create_job_session("modes")
        js.run_job(d2.JobTemplate(remote_command="/bin/true")).wait_terminated(10)
    finally:
        os.umask(old)
    assert mode(home) == 0o700
    files = [p for p in home.iterdir() if not p.is_socket() and not p.is_dir()]
    assert {p.name for p in files} >= {"store.sqlite", "process.sqlite", "agent.log"}
    for p in files:
        assert mode(p) == 0o600, (p, oct(mode(p)))
    # The job's output, kept for job.output() (its template names no file): the owner's alone.
    assert mode(home / "output") == 0o700
    kept = sorted((home / "output").iterdir())
    assert [p.name for p in kept] == ["1.err", "1.out"]
    for p in kept:
        assert mode(p) == 0o600, (p, oct(mode(p)))
    assert mode(socket_path(home)) == 0o600
    sm._notifier_stop.set()
    AgentClient.for_home(home).close()


def test_an_existing_wider_store_is_narrowed(tmp_path):
    home = tmp_path / "home"
    home.mkdir(mode=0o755)
    (home / "store.sqlite").touch(mode=0o644)
    d2.SessionManager(home=home).job_session_names  # noqa: B018 - opening is the test
    assert mode(home) == 0o700 and mode(home / "store.sqlite") == 0o600


def test_a_sticky_shared_directory_given_as_the_home_is_left_shared(tmp_path):
    """A store whose home is a shared directory of its owner (root's /tmp) does not take the
    directory away from everyone else; its own files are private all the same."""
    home = tmp_path / "shared"
    home.mkdir()
    home.chmod(0o1777)
    d2.SessionManager(home=home).job_session_names  # noqa: B018 - opening is the test
    assert stat.S_IMODE(os.stat(home).st_mode) == 0o1777
    assert mode(home / "store.sqlite") == 0o600


def test_the_socket_fallback_directory_must_be_ours_and_private(tmp_path, monkeypatch):
    ok = tmp_path / "ok"
    _own_private_dir(ok)
    assert mode(ok) == 0o700
    theirs = tmp_path / "theirs"
    theirs.mkdir(mode=0o700)
    os.chown(theirs, NOBODY, NOBODY)
    with pytest.raises(d2.SessionManagementError, match="owner is uid 65534"):
        _own_private_dir(theirs)
    wide = tmp_path / "wide"
    wide.mkdir()
    wide.chmod(0o777)
    with pytest.raises(d2.SessionManagementError, match="mode 0o777"):
        _own_private_dir(wide)
    link = tmp_path / "link"
    link.symlink_to(ok)
    with pytest.raises(d2.SessionManagementError, match="symlink"):
        _own_private_dir(link)
    # A home too long for AF_UNIX: the socket goes to $XDG_RUNTIME_DIR/pydrmaa2 when set.
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    long_home = tmp_path / ("x" * 120)
    assert socket_path(long_home).parent == runtime / "pydrmaa2"
    assert mode(runtime / "pydrmaa2") == 0o700


def _as_nobody(code: str) -> subprocess.CompletedProcess:
    def drop() -> None:
        os.setgid(NOBODY)
        os.setuid(NOBODY)

    return subprocess.run([SYSTEM_PYTHON, "-c", code], preexec_fn=drop, capture_output=True,
                          text=True, timeout=30, cwd="/")


def test_the_agent_refuses_another_user_even_through_an_open_socket(open_tmp):
    sm = d2.SessionManager(home=open_tmp / "home")
    js = sm.create_job_session("peer")
    js.run_job(d2.JobTemplate(remote_command="/bin/true")).wait_terminated(10)
    path = socket_path(sm.home)
    # As if the socket had been reachable (a wide umask, a shared directory): open it all up.
    sm.home.chmod(0o755)
    path.chmod(0o777)
    r = _as_nobody(f"""
import json, socket
s = socket.socket(socket.AF_UNIX)
s.connect({str(path)!r})
try:
    s.sendall(json.dumps({{"op": "ping"}}).encode() + b"\\n")
    print(repr(s.recv(100)))
except OSError as e:  # closed by the agent before or after the request
    print(repr(b""))
""")
    sm.home.chmod(0o700)
    AgentClient.for_home(sm.home).close()
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() in ("b''", ""), r.stdout  # closed without an answer
    assert "refused a connection from uid 65534" in (sm.home / "agent.log").read_text()


def test_the_client_talks_to_no_agent_of_another_user(open_tmp):
    d = open_tmp / "d"
    d.mkdir(mode=0o777)
    d.chmod(0o777)
    path = d / "agent.sock"
    listener = subprocess.Popen(
        [SYSTEM_PYTHON, "-c", f"""
import socket, time
s = socket.socket(socket.AF_UNIX); s.bind({str(path)!r}); s.listen(1)
print("up", flush=True)
c, _ = s.accept(); time.sleep(5)
"""], preexec_fn=lambda: (os.setgid(NOBODY), os.setuid(NOBODY)), stdout=subprocess.PIPE, text=True)
    try:
        assert listener.stdout.readline().strip() == "up"
        with pytest.raises(AgentImpostorError, match="uid 65534"):
            _Conn(path)
    finally:
        listener.kill()
        listener.wait()


def test_the_agent_log_keeps_no_environment_or_arguments(sm):
    js = sm.create_job_session("log")
    secret = "s3cr3t-value-1234"
    js.run_job(d2.JobTemplate(remote_command="/bin/true", args=[secret],
                              job_environment={"TOKEN": secret})).wait_terminated(10)
    client = AgentClient.for_home(sm.home)
    # A request the agent fails on, carrying the secret in its fields.
    with pytest.raises(d2.Drmaa2Error):
        client.request("proc.control", tid="1", action=secret, env={"T": secret})
    client.send("proc.control", tid="1", action=secret)
    time.sleep(0.3)
    log = (sm.home / "agent.log").read_text()
    assert "failed" in log and secret not in log


def test_a_job_runs_with_its_submitters_umask(sm, tmp_path):
    js = sm.create_job_session("umask")
    out = tmp_path / "made"
    old = os.umask(0o027)
    try:
        job = js.run_job(d2.JobTemplate(remote_command="/bin/sh", args=["-c", f"echo > {out}"]))
    finally:
        os.umask(old)
    job.wait_terminated(10)
    assert mode(out) == 0o640


def test_a_large_stage_in_does_not_stall_other_jobs(sm, tmp_path):
    big = tmp_path / "big"
    with open(big, "wb") as f:
        f.truncate(3 << 30)  # sparse 3 GB: a long copy, little disk read
    js = sm.create_job_session("staging")
    slow = js.run_job(d2.JobTemplate(remote_command="/bin/true",
                                     stage_in_files={str(big): str(tmp_path / "copy")}))
    t0 = time.monotonic()
    quick = js.run_job(d2.JobTemplate(remote_command="/bin/true"))
    quick.wait_terminated(30)
    quick_took = time.monotonic() - t0
    assert not slow.state.is_started, "the stage-in ended before the quick job: no test"
    slow.wait_terminated(120)
    assert slow.state is d2.JobState.DONE
    assert quick_took < 2.0
    (tmp_path / "copy").unlink()
