"""The remote tracker (pydrmaa2.trackers.remote) in front of a ``drmaa2 serve`` of its own: the
drmaa2 command through it, a wait that rides out the server's restart, the errors of a server
that is down or refuses the token, and the refusals' mapping. The conformance suite runs the
rest (targets remote-process and remote-slurm)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import pydrmaa2 as d2
from pydrmaa2.agent import AgentClient
from pydrmaa2.testing.targets import LocalServer

from .conftest import end_and_reap, require

httpx = pytest.importorskip("httpx", reason="pip install 'pydrmaa2[serve]'")
remote = pytest.importorskip("pydrmaa2.trackers.remote")


@pytest.fixture
def server() -> Iterator[LocalServer]:
    """A drmaa2 server of the test's own (a short path: a socket's is at most 107 bytes)."""
    require("remote-process")  # the run's server starts: so can this one
    server = LocalServer(Path(tempfile.mkdtemp(prefix="d2s-")))
    why = server.start()
    if why is not None:
        server.stop()
        pytest.fail(f"drmaa2 serve did not start: {why}")
    yield server
    server.stop()
    shutil.rmtree(server.directory, ignore_errors=True)


@pytest.fixture
def manager(home: Path) -> Iterator[d2.SessionManager]:
    with d2.SessionManager(home=home) as sm:
        yield sm
        for name in sm.job_session_names:
            with sm.open_job_session(name) as js:
                end_and_reap(js)


def test_the_drmaa2_command_runs_a_job_through_the_server(server: LocalServer, home: Path) -> None:
    env = dict(os.environ, PYDRMAA2_HOME=str(home))
    env.pop("PYDRMAA2_SESSION", None)

    def drmaa2(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "pydrmaa2.cli", *args], capture_output=True,
                              text=True, env=env, timeout=120)

    r = drmaa2("sessions", "create", "far", "--contact", server.contact("process"))
    assert r.returncode == 0, r.stderr
    r = drmaa2("run", "--wait", "--session", "far", "--", "/bin/echo", "hi")
    assert (r.returncode, r.stdout) == (0, "hi\n"), r.stderr
    r = drmaa2("run", "--wait", "--session", "far", "--", "/bin/sh", "-c", "exit 3")
    assert r.returncode == 3, r.stderr
    (job,) = [j for j in json.loads(drmaa2("jobs", "--session", "far", "--json").stdout)
              if j["state"] == "failed"]
    r = drmaa2("logs", job["id"])
    assert r.returncode == 0, r.stderr
    with d2.SessionManager(home=home) as sm, sm.open_job_session("far") as js:
        end_and_reap(js)
    AgentClient.for_home(home).close()


def test_a_wait_rides_out_a_restart_of_the_server(server: LocalServer, manager: d2.SessionManager,
                                                  tmp_path: Path) -> None:
    js = manager.create_job_session("restart", contact=server.contact("process"))
    out = tmp_path / "out"
    job = js.run_job(d2.JobTemplate(remote_command="/bin/sh", output_path=str(out),
                                    args=["-c", "sleep 3; echo ended; exit 5"]))
    job.wait_started(30)
    ended: list[d2.JobInfo | BaseException] = []

    def wait() -> None:
        try:
            ended.append(job.wait_terminated(90))
        except BaseException as e:  # noqa: BLE001 - the test reports it
            ended.append(e)

    waiter = threading.Thread(target=wait)
    waiter.start()
    assert server.process is not None
    os.kill(server.process.pid, signal.SIGKILL)  # no goodbye to the waiter
    server.process.wait()
    assert waiter.is_alive()
    assert server.start() is None  # on the same socket, with the same store and token
    waiter.join(90)
    assert not waiter.is_alive()
    (info,) = ended
    assert isinstance(info, d2.JobInfo), info
    assert (info.state, info.exit_status) == (d2.JobState.FAILED, 5)
    assert out.read_text() == "ended\n"


def test_a_server_that_is_down_is_a_communication_error_naming_the_socket(
        manager: d2.SessionManager, tmp_path: Path) -> None:
    sock, token = tmp_path / "nobody.sock", tmp_path / "token"
    token.write_text("secret\n")
    with pytest.raises(d2.DrmCommunicationError, match=str(sock)):
        manager.create_job_session("down", contact=f"drmaa2+unix://{sock}?token_file={token}")
    assert "down" not in manager.job_session_names


def test_a_wrong_token_is_the_servers_denial(server: LocalServer, manager: d2.SessionManager,
                                             tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("not-the-token\n")
    with pytest.raises(d2.DeniedByDrmsError):
        manager.create_job_session("denied", contact=f"drmaa2+unix://{server.socket}"
                                   f"?contact=process&token_file={token}")
    assert "denied" not in manager.job_session_names


def test_a_missing_token_says_where_it_was_looked_for(
        manager: d2.SessionManager, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PYDRMAA2_TOKEN", raising=False)
    with pytest.raises(d2.DeniedByDrmsError, match="PYDRMAA2_TOKEN") as e:
        manager.create_job_session("tokenless", contact="drmaa2+unix:///nowhere.sock")
    assert str(home / "serve.token") in str(e.value)


def test_the_token_comes_from_the_environment(server: LocalServer, monkeypatch: pytest.MonkeyPatch,
                                              manager: d2.SessionManager) -> None:
    # (monkeypatch before manager: the token is still there when the manager reaps)
    monkeypatch.setenv("PYDRMAA2_TOKEN", server.token_file.read_text().strip())
    js = manager.create_job_session("by-env", contact=f"drmaa2+unix://{server.socket}")
    assert js.run_job(d2.JobTemplate(remote_command="/bin/true")).wait_terminated(30).state \
        is d2.JobState.DONE


def test_plain_http_is_for_loopback_addresses_only(manager: d2.SessionManager) -> None:
    with pytest.raises(d2.InvalidArgumentError, match="loopback"):
        manager.create_job_session("far", contact="drmaa2+http://example.org:8080/?contact=process")


def test_options_the_remote_tracker_does_not_know_are_refused(manager: d2.SessionManager) -> None:
    with pytest.raises(d2.InvalidArgumentError, match="colour"):
        manager.create_job_session("odd", contact="drmaa2+unix:///x.sock?colour=blue")


@pytest.mark.parametrize(("status", "body", "error"), [
    (409, {"error": "InvalidStateError", "message": "job 7 is DONE"}, d2.InvalidStateError),
    (400, {"error": "UnsupportedAttributeError", "message": "queue_name"},
     d2.UnsupportedAttributeError),
    (401, {"error": "DeniedByDrmsError", "message": "no token"}, d2.DeniedByDrmsError),
    (500, {"error": "SomethingNewError", "message": "new"}, d2.ImplementationSpecificError),
    (503, "<html>bad gateway</html>", d2.DrmCommunicationError),
    (418, "teapot", d2.ImplementationSpecificError),
])
def test_refusals_become_the_error_class_they_name(status: int, body: object,
                                                   error: type[d2.Drmaa2Error]) -> None:
    content = json.dumps(body).encode() if isinstance(body, dict) else str(body).encode()
    e = remote.refusal(httpx.Response(status, content=content))
    assert type(e) is error
    assert str(e) == body["message"] if isinstance(body, dict) else str(body) in str(e)


def test_waits_share_one_event_stream_of_the_session(server: LocalServer,
                                                     manager: d2.SessionManager) -> None:
    def readers() -> set[threading.Thread]:
        return {t for t in threading.enumerate() if t.name == "pydrmaa2-remote-events"}

    before = readers()
    js = manager.create_job_session("shared", contact=server.contact("process"))
    for _ in range(5):
        job = js.run_job(d2.JobTemplate(remote_command="/bin/sh", args=["-c", "sleep 0.2"]))
        assert job.wait_terminated(30).state is d2.JobState.DONE
    assert len(readers() - before) == 1
    # A feed made after the stream told a job's news (the waiter saw it running) fires at once.
    tid = js._store.job(job.id).tracker_id
    feed = js._tracker.watch([tid])
    assert not feed.wait(0.2)  # the waiter has seen it done: no news
    feed.close()
    feed = js._tracker._events.feed(frozenset([tid]), {tid: "running"})
    assert feed.wait(0)
    feed.close()


def _counting(js: d2.JobSession) -> list[str]:
    """The requests the session's remote tracker makes from now on ("METHOD /path")."""
    made: list[str] = []
    tracker = js._tracker
    send = tracker._request

    def counted(method: str, path: str, doing: str, **kwargs: object) -> object:
        made.append(f"{method} {path}")
        return send(method, path, doing, **kwargs)

    tracker._request = counted  # type: ignore[method-assign]
    return made


def _stream_up(js: d2.JobSession) -> None:
    """Open the session's event stream (the first wait does) and wait until it is connected."""
    job = js.run_job(d2.JobTemplate(remote_command="/bin/true"))
    job.wait_terminated(30)
    events = js._tracker._events
    deadline = time.monotonic() + 30
    while not events.connected:
        assert time.monotonic() < deadline, "the event stream did not connect"
        time.sleep(0.01)


def test_a_job_submitted_while_the_stream_is_up_costs_one_request(
        server: LocalServer, manager: d2.SessionManager) -> None:
    js = manager.create_job_session("one-request", contact=server.contact("process"))
    _stream_up(js)
    made = _counting(js)
    for code in (0, 3, 0):
        job = js.run_job(d2.JobTemplate(remote_command="/bin/sh", args=["-c", f"exit {code}"]))
        info = job.wait_terminated(30)
        assert (info.exit_status, info.state) == (code, d2.JobState.DONE if code == 0
                                                  else d2.JobState.FAILED)
        # the end and its JobInfo came on the event stream: what the server keeps
        assert info.extensions["native_id"] == js._store.job(job.id).tracker_id
        assert job.state is info.state
    assert made == [f"POST /v1/sessions/{js._tracker.session}/jobs"] * 3


def test_a_job_controlled_from_here_is_read_from_the_server(
        server: LocalServer, manager: d2.SessionManager) -> None:
    js = manager.create_job_session("controlled", contact=server.contact("process"))
    _stream_up(js)
    job = js.run_job(d2.JobTemplate(remote_command="/bin/sleep", args=["60"]))
    job.wait_started(30)
    made = _counting(js)
    job.suspend()
    # at once, not once the stream has told it: the read asks the server
    assert job.state is d2.JobState.SUSPENDED
    assert "POST /v1/states" in made
    job.terminate()
    assert job.wait_terminated(30).state is d2.JobState.FAILED


def test_after_the_stream_reconnects_jobs_are_read_from_the_server(
        server: LocalServer, manager: d2.SessionManager) -> None:
    js = manager.create_job_session("reconnected", contact=server.contact("process"))
    _stream_up(js)
    events = js._tracker._events
    job = js.run_job(d2.JobTemplate(remote_command="/bin/sleep", args=["60"]))
    job.wait_started(30)
    generation = events.generation
    with events._lock:  # the connection breaks: news of the job may be missed meanwhile
        events._socket.shutdown(socket.SHUT_RDWR)
    deadline = time.monotonic() + 30
    while not (events.connected and events.generation > generation):
        assert time.monotonic() < deadline, "the event stream did not connect again"
        time.sleep(0.01)
    made = _counting(js)
    assert job.state is d2.JobState.RUNNING
    assert made == ["POST /v1/states"]
    job.terminate()
    assert job.wait_terminated(30).state is d2.JobState.FAILED
