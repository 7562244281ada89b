"""drmaa2 serve (docs/serve.md): every endpoint against a real server on a Unix socket, over the
process tracker, with httpx; event streams, output, long polls, a restart, 1,000 waiters."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

import pydrmaa2 as d2
from pydrmaa2.agent import AgentClient

from .conftest import end_and_reap

httpx = pytest.importorskip("httpx")
pytest.importorskip("starlette")
pytest.importorskip("uvicorn")

#: Seconds a server has to answer after it was started.
START_TIMEOUT = 30.0


class Server:
    """A ``drmaa2 serve`` subprocess on a store of its own (``home``)."""

    def __init__(self, home: Path, *args: str) -> None:
        self.home = home
        self.args = list(args) or ["--socket", str(home / "serve.sock")]
        self.socket = Path(self.args[self.args.index("--socket") + 1]) \
            if "--socket" in self.args else home / "serve.sock"
        self.token_file = Path(self.args[self.args.index("--token-file") + 1]) \
            if "--token-file" in self.args else home / "serve.token"
        self.log = home.parent / f"serve-{home.name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, wait: bool = True) -> Server:
        self.home.mkdir(mode=0o700, parents=True, exist_ok=True)
        env = {**os.environ, "PYDRMAA2_HOME": str(self.home)}
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "pydrmaa2.cli", "serve", *self.args],
                env=env, stdout=log, stderr=log)
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self) -> str:
        """The address it announced, once it answers."""
        assert self.process is not None
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"drmaa2 serve exited {self.process.returncode}: "
                                     f"{self.log.read_text()}")
            m = re.search(r"listening on (\S+)", self.log.read_text())
            if m and m.group(1).startswith("unix:"):
                try:
                    with self.client() as c:
                        if c.get("/v1/info").status_code == 200:
                            return m.group(1)
                except httpx.TransportError:
                    pass
            elif m:
                return m.group(1)
            time.sleep(0.05)  # nothing tells that a server listens: look again
        raise AssertionError(f"drmaa2 serve did not answer: {self.log.read_text()}")

    @property
    def token(self) -> str:
        return self.token_file.read_text().strip()

    def client(self, token: str | None = None, **kw: Any) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.token if token is None else token}"}
        return httpx.Client(transport=httpx.HTTPTransport(uds=str(self.socket)),
                            base_url="http://drmaa2", headers=headers,
                            timeout=kw.pop("timeout", 60.0), **kw)

    def stop(self) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def cleanup(self) -> None:
        self.stop()
        if (self.home / "store.sqlite").exists():
            with d2.SessionManager(home=self.home) as sm:
                for name in sm.job_session_names:
                    with sm.open_job_session(name) as js:
                        end_and_reap(js)
        AgentClient.for_home(self.home).close()


def sh(script: str, **fields: Any) -> dict[str, Any]:
    """A JobTemplate running a /bin/sh script, as JSON."""
    return {"remote_command": "/bin/sh", "args": ["-c", script], **fields}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = Server(tmp_path_factory.mktemp("serve") / "home").start()
    yield srv
    srv.cleanup()


@pytest.fixture
def client(server: Server) -> Iterator[httpx.Client]:
    with server.client() as c:
        yield c


@pytest.fixture
def session(client: httpx.Client, request: pytest.FixtureRequest) -> Iterator[str]:
    """A job session of the test's own; destroyed (its jobs ended) afterwards."""
    name = re.sub(r"\W", "-", request.node.name)[:60]
    r = client.post("/v1/sessions", json={"name": name})
    assert r.status_code == 201, r.text
    yield name
    for job in client.get(f"/v1/sessions/{name}/jobs").json():
        client.post(f"/v1/jobs/{job['id']}/terminate")
    ids = [j["id"] for j in client.get(f"/v1/sessions/{name}/jobs").json()]
    if ids:
        client.post("/v1/wait", json={"ids": ids, "mode": "all_terminated", "timeout": 20})
    client.delete(f"/v1/sessions/{name}")


def run(client: httpx.Client, session: str, template: dict[str, Any]) -> dict[str, Any]:
    r = client.post(f"/v1/sessions/{session}/jobs", json={"template": template})
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def wait_all(client: httpx.Client, ids: list[str], timeout: float = 30) -> dict[str, Any]:
    r = client.post("/v1/wait", json={"ids": ids, "mode": "all_terminated", "timeout": timeout})
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


# -- server, trackers, sessions -------------------------------------------------------------------
def test_info_names_the_user_store_and_schemes(server: Server, client: httpx.Client) -> None:
    info = client.get("/v1/info").json()
    assert info["home"] == str(server.home)
    assert "process" in info["schemes"] and info["user"] and info["version"]


def test_tracker_describes_the_process_tracker(client: httpx.Client) -> None:
    t = client.get("/v1/tracker", params={"contact": "process"}).json()
    assert t["scheme"] == "process" and "remote_command" in t["supported_fields"]
    assert isinstance(t["capabilities"], list) and t["max_array_tasks"] > 0
    assert t["job_categories"] == []
    r = client.get("/v1/tracker", params={"contact": "nosuch"})
    assert r.status_code == 400 and r.json()["error"] == "InvalidArgumentError"


def test_sessions_are_created_listed_and_destroyed(client: httpx.Client) -> None:
    r = client.post("/v1/sessions", json={"name": "s1", "contact": "process"})
    assert r.status_code == 201 and r.json() == {"name": "s1", "contact": "process"}
    assert {"name": "s1", "contact": "process"} in client.get("/v1/sessions").json()
    assert client.get("/v1/sessions/s1").json() == {"name": "s1", "contact": "process"}
    again = client.post("/v1/sessions", json={"name": "s1", "exist_ok": True})
    assert again.status_code == 200 and again.json()["contact"] == "process"
    dup = client.post("/v1/sessions", json={"name": "s1"})
    assert dup.status_code == 400 and "already exists" in dup.json()["message"]
    other = client.post("/v1/sessions", json={"name": "s1", "contact": "slurm", "exist_ok": True})
    assert other.status_code == 400 and "slurm" in other.json()["message"]
    assert client.delete("/v1/sessions/s1").status_code == 204
    gone = client.get("/v1/sessions/s1")
    assert gone.status_code == 404 and gone.json()["error"] == "InvalidArgumentError"
    assert client.delete("/v1/sessions/s1").status_code == 404
    assert client.get("/v1/sessions/s1/jobs").status_code == 404
    # a missing contact is process, also for exist_ok
    assert client.post("/v1/sessions", json={"name": "s2", "contact": "slurm"}).status_code == 201
    try:
        bare = client.post("/v1/sessions", json={"name": "s2", "exist_ok": True})
        assert bare.status_code == 400 and "process" in bare.json()["message"], bare.text
        same = client.post("/v1/sessions", json={"name": "s2", "contact": "slurm",
                                                 "exist_ok": True})
        assert same.status_code == 200 and same.json()["contact"] == "slurm"
    finally:
        assert client.delete("/v1/sessions/s2").status_code == 204


def test_sessions_opened_with_exist_ok_at_once_are_all_answered(server: Server) -> None:
    """Several remote clients opening the tracker at once on a fresh server: each gets the
    session, one of them made it."""
    import concurrent.futures

    def open_it(i: int) -> int:
        with server.client() as c:
            r = c.post("/v1/sessions", json={"name": "race", "contact": "process",
                                             "exist_ok": True} if i % 2 else
                       {"name": "race", "exist_ok": True})
            assert r.json() == {"name": "race", "contact": "process"}, r.text
            return r.status_code

    for _ in range(3):
        with concurrent.futures.ThreadPoolExecutor(12) as pool:
            codes = sorted(pool.map(open_it, range(12)))
        with server.client() as c:
            assert c.delete("/v1/sessions/race").status_code == 204
        assert codes == [200] * 11 + [201], codes


@pytest.mark.parametrize("recreate", ["elsewhere", "over_the_api"])
def test_a_session_destroyed_and_recreated_elsewhere_is_opened_anew(
        server: Server, client: httpx.Client, recreate: str) -> None:
    """The server's open session of that name is closed (its event streams end), not kept."""
    name = f"again-{recreate}"
    assert client.post("/v1/sessions", json={"name": name}).status_code == 201
    with server.client(timeout=5) as watcher, \
            watcher.stream("GET", "/v1/events", params={"session": name}) as stream:
        assert stream.status_code == 200
        with d2.SessionManager(home=server.home) as sm:
            sm.destroy_job_session(name)
            if recreate == "elsewhere":
                sm.create_job_session(name).close()
        if recreate == "over_the_api":
            assert client.post("/v1/sessions", json={"name": name}).status_code == 201
        else:
            assert client.get(f"/v1/sessions/{name}/jobs").json() == []
        assert list(stream.iter_lines()) == []  # ended, not held for the old session
    job = run(client, name, sh("true"))
    wait_all(client, [job["id"]])
    assert client.delete(f"/v1/jobs/{job['id']}").status_code == 204
    assert client.delete(f"/v1/sessions/{name}").status_code == 204


# -- jobs -----------------------------------------------------------------------------------------
def test_a_job_runs_and_its_views_say_so(client: httpx.Client, session: str) -> None:
    view = run(client, session, sh("exit 3", job_name="three"))
    assert view["session"] == session and view["array_id"] is None
    assert view["task_index"] is None and view["state"] in ("queued", "running", "failed")
    done = wait_all(client, [view["id"]])
    assert done == {"done": True, "job": None}
    job = client.get(f"/v1/jobs/{view['id']}").json()
    assert job["state"] == "failed" and job["id"] == view["id"]
    info = client.get(f"/v1/jobs/{view['id']}/info").json()
    assert info["exit_status"] == 3 and info["job_name"] == "three" and info["state"] == "failed"
    template = client.get(f"/v1/jobs/{view['id']}/template").json()
    assert template == sh("exit 3", job_name="three", submit_as_hold=False)
    states = client.post("/v1/states", json={"ids": [view["id"]]}).json()
    # An ended job's JobInfo comes with its state.
    assert states == {view["id"]: ["failed", job["sub_state"], info]}
    listed = client.get(f"/v1/sessions/{session}/jobs", params={"state": "failed"}).json()
    assert [j["id"] for j in listed] == [view["id"]]
    assert client.get(f"/v1/sessions/{session}/jobs", params={"state": "DONE"}).json() == []
    assert client.delete(f"/v1/jobs/{view['id']}").status_code == 204
    assert client.get(f"/v1/jobs/{view['id']}").status_code == 404
    assert client.get(f"/v1/sessions/{session}/jobs").json() == []


def test_a_running_job_cannot_be_reaped(client: httpx.Client, session: str) -> None:
    view = run(client, session, sh("sleep 30"))
    r = client.delete(f"/v1/jobs/{view['id']}")
    assert r.status_code == 409 and r.json()["error"] == "InvalidStateError"


def test_unknown_jobs_are_404(client: httpx.Client) -> None:
    for r in (client.get("/v1/jobs/999999"), client.get("/v1/jobs/999999/info"),
              client.get("/v1/jobs/999999/output"), client.post("/v1/jobs/999999/terminate"),
              client.post("/v1/wait", json={"ids": ["999999"], "mode": "any_started"}),
              client.get("/v1/events", params={"ids": "999999"}),
              client.get("/v1/arrays/999999")):
        assert r.status_code == 404, r.text
        assert r.json()["error"] == "InvalidArgumentError" and "999999" in r.json()["message"]


def test_states_leave_unknown_ids_out_instead_of_refusing_the_batch(
        client: httpx.Client, session: str) -> None:
    job = run(client, session, sh("true"))
    wait_all(client, [job["id"]])
    r = client.post("/v1/states", json={"ids": ["999999", job["id"]]})
    assert r.status_code == 200, r.text
    assert list(r.json()) == [job["id"]] and r.json()[job["id"]][0] == "done"
    assert client.post("/v1/states", json={"ids": ["999999"]}).json() == {}
    assert client.delete(f"/v1/jobs/{job['id']}").status_code == 204  # reaped: unknown now
    assert client.post("/v1/states", json={"ids": [job["id"]]}).json() == {}


def test_an_array_runs_throttled_and_its_view_counts_states(client: httpx.Client,
                                                            session: str) -> None:
    r = client.post(f"/v1/sessions/{session}/arrays",
                    json={"template": sh("echo $DRMAA2_INDEX"), "begin": 1, "end": 5,
                          "step": 2, "max_parallel": 2})
    assert r.status_code == 201, r.text
    arr = r.json()
    assert len(arr["job_ids"]) == 3 and arr["max_parallel"] == 2 and arr["session"] == session
    assert sum(arr["counts"].values()) == 3
    wait_all(client, arr["job_ids"])
    again = client.get(f"/v1/arrays/{arr['id']}").json()
    assert again["counts"] == {"done": 3} and again["job_ids"] == arr["job_ids"]
    assert client.get(f"/v1/sessions/{session}/arrays").json() == [again]
    tasks = client.get(f"/v1/sessions/{session}/jobs").json()
    assert [t["task_index"] for t in tasks] == [1, 3, 5]
    assert {t["array_id"] for t in tasks} == {arr["id"]}


def test_controls_suspend_resume_hold_release_terminate(client: httpx.Client,
                                                        session: str) -> None:
    job = run(client, session, sh("sleep 30"))
    client.post("/v1/wait", json={"ids": [job["id"]], "mode": "all_started", "timeout": 20})
    assert client.post(f"/v1/jobs/{job['id']}/suspend").status_code == 204
    assert client.get(f"/v1/jobs/{job['id']}").json()["state"] == "suspended"
    assert client.post(f"/v1/jobs/{job['id']}/resume").status_code == 204
    assert client.get(f"/v1/jobs/{job['id']}").json()["state"] == "running"
    held = run(client, session, sh("true", submit_as_hold=True))
    assert client.get(f"/v1/jobs/{held['id']}").json()["state"] == "queued_held"
    r = client.post(f"/v1/jobs/{held['id']}/suspend")
    assert r.status_code == 409 and r.json()["error"] == "InvalidStateError"
    assert client.post(f"/v1/jobs/{held['id']}/release").status_code == 204
    assert client.post(f"/v1/jobs/{job['id']}/explode").status_code == 404
    out = client.post("/v1/control", json={"ids": [job["id"], "999999"], "action": "terminate"})
    assert out.status_code == 200
    assert list(out.json()["refused"]) == ["999999"]
    assert out.json()["refused"]["999999"]["error"] == "InvalidArgumentError"
    wait_all(client, [job["id"], held["id"]])
    assert client.get(f"/v1/jobs/{job['id']}").json()["state"] == "failed"
    assert client.get(f"/v1/jobs/{held['id']}").json()["state"] == "done"
    again = client.post("/v1/control", json={"ids": [job["id"]], "action": "suspend"}).json()
    assert again["refused"][job["id"]]["error"] == "InvalidStateError"
    reaped = client.post("/v1/control", json={"ids": [job["id"], held["id"]], "action": "reap"})
    assert reaped.json() == {"refused": {}}
    assert client.get(f"/v1/sessions/{session}/jobs").json() == []


# -- waits ----------------------------------------------------------------------------------------
def test_wait_answers_the_first_job_to_end(client: httpx.Client, session: str) -> None:
    slow = run(client, session, sh("sleep 30"))
    fast = run(client, session, sh("sleep 0.3"))
    t0 = time.monotonic()
    r = client.post("/v1/wait", json={"ids": [slow["id"], fast["id"]],
                                      "mode": "any_terminated", "timeout": 20})
    assert time.monotonic() - t0 < 10
    assert r.json()["done"] is True and r.json()["job"]["id"] == fast["id"]
    assert r.json()["job"]["state"] == "done"
    started = client.post("/v1/wait", json={"ids": [slow["id"]], "mode": "any_started"}).json()
    assert started["job"]["id"] == slow["id"]


def test_a_wait_that_runs_out_of_time_is_a_timeout(client: httpx.Client, session: str) -> None:
    job = run(client, session, sh("sleep 30"))
    r = client.post("/v1/wait", json={"ids": [job["id"]], "mode": "all_terminated",
                                      "timeout": 0.5})
    assert r.status_code == 408 and r.json()["error"] == "TimeoutError"


@pytest.mark.slow
def test_a_long_wait_is_a_long_poll_that_answers_not_done(client: httpx.Client,
                                                          session: str) -> None:
    job = run(client, session, sh("sleep 60"))
    t0 = time.monotonic()
    r = client.post("/v1/wait", json={"ids": [job["id"]], "mode": "all_terminated",
                                      "timeout": None})
    assert r.status_code == 200 and r.json() == {"done": False}
    assert 24 < time.monotonic() - t0 < 30


# -- events and output ----------------------------------------------------------------------------
def _states_until_end(lines: Iterator[str], count: int = 1) -> list[dict[str, Any]]:
    """The state events of an SSE stream until ``count`` jobs have ended."""
    out, event, ended = [], None, 0
    for line in lines:
        if line.startswith("event:"):
            event = line.split(":", 1)[1].strip()
        elif line.startswith("data:") and event == "state":
            view = json.loads(line.split(":", 1)[1])
            out.append(view)
            if view["state"] in ("done", "failed"):
                ended += 1
                if ended == count:
                    return out
    return out


def test_events_of_a_job_show_its_states_to_done(client: httpx.Client, session: str) -> None:
    job = run(client, session, sh("sleep 1", submit_as_hold=True))
    with client.stream("GET", "/v1/events", params={"ids": job["id"]}) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        lines = r.iter_lines()
        first = json.loads(next(ln for ln in lines if ln.startswith("data:"))[5:])
        assert first["state"] == "queued_held" and first["id"] == job["id"]
        client.post(f"/v1/jobs/{job['id']}/release")
        rest = _states_until_end(lines)
    states = [v["state"] for v in rest]
    assert states[-1] == "done" and "running" in states
    assert rest[-1]["session"] == session and rest[-1]["sub_state"] == "exited"
    # the change to an ended state brings the JobInfo along: a waiter needs no more request
    assert [v for v in rest if "info" in v] == [rest[-1]]
    assert rest[-1]["info"] == client.get(f"/v1/jobs/{job['id']}/info").json()
    assert rest[-1]["info"]["exit_status"] == 0 and rest[-1]["info"]["state"] == "done"
    # an ended job's stream says how it ended, then ends
    with client.stream("GET", "/v1/events", params={"ids": job["id"]}) as r:
        assert [v["state"] for v in _states_until_end(r.iter_lines())] == ["done"]


def test_events_of_a_session_start_with_every_job_then_follow_new_ones(
        client: httpx.Client, session: str) -> None:
    old = run(client, session, sh("true"))
    wait_all(client, [old["id"]])
    with client.stream("GET", "/v1/events", params={"session": session}) as r:
        lines = r.iter_lines()
        first = _states_until_end(lines)
        assert first == [client.get(f"/v1/jobs/{old['id']}").json()]
        new = run(client, session, sh("sleep 0.5; exit 4"))
        rest = _states_until_end(lines)
    assert {v["id"] for v in rest} == {new["id"]} and rest[-1]["state"] == "failed"
    assert rest[-1]["info"]["exit_status"] == 4


def test_output_whole_tail_stderr_and_follow(client: httpx.Client, session: str) -> None:
    job = run(client, session, sh("for i in 1 2 3 4; do echo line$i; sleep 0.3; done; "
                                  "echo oops >&2"))
    with client.stream("GET", f"/v1/jobs/{job['id']}/output", params={"follow": 1}) as r:
        assert r.headers["content-type"].startswith("text/plain")
        assert r.headers["cache-control"] == "no-store"
        t0, lines = time.monotonic(), []
        for line in r.iter_lines():
            lines.append((line, time.monotonic() - t0))
    assert [ln for ln, _ in lines] == ["line1", "line2", "line3", "line4"]
    assert lines[0][1] < lines[-1][1] - 0.5  # streamed as written, not at the end
    tail = client.get(f"/v1/jobs/{job['id']}/output", params={"tail": 2})
    assert tail.text == "line3\nline4\n"
    err = client.get(f"/v1/jobs/{job['id']}/output", params={"stderr": 1})
    assert err.text == "oops\n"
    bad = client.get(f"/v1/jobs/{job['id']}/output", params={"tail": "-1"})
    assert bad.status_code == 400


def _threads_settle(pid: int, at_most: int, timeout: float = 5.0) -> int:
    """The server's thread count once it is at most ``at_most`` (or the timeout passed)."""
    deadline = time.monotonic() + timeout
    while True:
        n = psutil.Process(pid).num_threads()
        if n <= at_most or time.monotonic() > deadline:
            return n
        time.sleep(0.1)  # nothing tells that a thread ended: look again


def test_a_followed_output_stops_reading_when_its_client_leaves(
        server: Server, client: httpx.Client, session: str) -> None:
    assert server.process is not None
    held = run(client, session, sh("true", submit_as_hold=True))
    silent = run(client, session, sh("echo hi; sleep 30"))
    client.post("/v1/wait", json={"ids": [silent["id"]], "mode": "all_started", "timeout": 20})
    for job in (held, silent):  # the server's worker threads exist before counting
        client.get(f"/v1/jobs/{job['id']}/output")
    before = psutil.Process(server.process.pid).num_threads()
    for _ in range(3):
        for job in (held, silent):
            with client.stream("GET", f"/v1/jobs/{job['id']}/output",
                               params={"follow": 1}) as r:
                assert r.status_code == 200
                if job is silent:
                    assert next(r.iter_lines()) == "hi"
                else:
                    time.sleep(0.3)
    assert _threads_settle(server.process.pid, before) <= before


# -- monitoring, reservations, documents ----------------------------------------------------------
def test_monitor_lists_the_engine_s_jobs_machines_and_queues(client: httpx.Client,
                                                             session: str) -> None:
    job = run(client, session, sh("sleep 30"))
    client.post("/v1/wait", json={"ids": [job["id"]], "mode": "all_started", "timeout": 20})
    jobs = client.get("/v1/monitor/jobs").json()
    assert isinstance(jobs, list) and jobs and all("id" in j for j in jobs)
    machines = client.get("/v1/monitor/machines", params={"contact": "process"}).json()
    assert machines and machines[0]["name"]
    assert isinstance(client.get("/v1/monitor/queues").json(), list)
    assert client.get("/v1/monitor/nothing").status_code == 404


def test_the_process_tracker_makes_no_reservations(client: httpx.Client) -> None:
    r = client.post("/v1/reservation-sessions", json={"name": "r", "contact": "process"})
    assert r.status_code == 422 and r.json()["error"] == "UnsupportedOperationError"
    assert client.get("/v1/reservation-sessions/r/reservations").status_code == 404
    assert client.post("/v1/reservation-sessions/r/reservations",
                       json={"template": {}}).status_code == 404
    assert client.delete("/v1/reservations/1").status_code == 404


def test_openapi_lists_every_route_of_the_app(client: httpx.Client) -> None:
    from starlette.routing import Route

    from pydrmaa2.serve import serve_app

    doc = client.get("/openapi.json").json()
    assert doc["openapi"].startswith("3.1")
    for route in serve_app("/nonexistent", "t").routes:
        assert isinstance(route, Route)
        path = route.path.replace("{path:path}", "{path}")
        assert path in doc["paths"], path
        for method in route.methods or ():
            if method != "HEAD":
                assert method.lower() in doc["paths"][path], (method, path)
                assert doc["paths"][path][method.lower()]["summary"]
    assert "JobTemplate" in doc["components"]["schemas"]


def test_the_dashboard_is_served_without_token_and_not_cached(server: Server) -> None:
    from pydrmaa2.serve.app import STATIC

    with server.client(token="wrong") as anon:
        page = anon.get("/")
        if (STATIC / "index.html").exists():
            assert page.status_code == 200 and "html" in page.headers["content-type"]
            assert page.headers["cache-control"] == "no-store"
        else:
            assert page.status_code == 404
        assert anon.get("/static/..%2F..%2Fserve.token").status_code == 404
        assert anon.get("/static/nosuch.js").status_code == 404


# -- reliability ----------------------------------------------------------------------------------
def test_a_restart_loses_nothing(tmp_path: Path) -> None:
    srv = Server(tmp_path / "home").start()
    try:
        with srv.client() as c:
            c.post("/v1/sessions", json={"name": "keep"})
            done = run(c, "keep", sh("echo kept"))
            wait_all(c, [done["id"]])
            running = run(c, "keep", sh("sleep 2; echo later"))
        srv.stop()
        assert not srv.socket.exists()
        srv.start()
        with srv.client() as c:
            assert c.get("/v1/sessions/keep").status_code == 200
            assert c.get(f"/v1/jobs/{done['id']}").json()["state"] == "done"
            assert c.get(f"/v1/jobs/{done['id']}/output").text == "kept\n"
            assert wait_all(c, [running["id"]])["done"] is True
            assert c.get(f"/v1/jobs/{running['id']}/output").text == "later\n"
    finally:
        srv.cleanup()


def test_a_job_submitted_and_waited_for_over_the_socket(client: httpx.Client,
                                                        session: str) -> None:
    """run_job + wait of /bin/true, the figure docs/serve.md compares with the local call."""
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        job = run(client, session, {"remote_command": "/bin/true"})
        r = client.post("/v1/wait", json={"ids": [job["id"]], "mode": "all_terminated"})
        times.append(time.perf_counter() - t0)
        assert r.json()["done"] is True
    print(f"remote run_job + wait of /bin/true: best {min(times) * 1000:.0f} ms")


def _rss(pid: int) -> int:
    return int(psutil.Process(pid).memory_info().rss)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["wait", "events"])
def test_one_server_holds_a_thousand_waiters(server: Server, client: httpx.Client, session: str,
                                             kind: str) -> None:
    jobs = [run(client, session, sh("sleep 6"))["id"] for _ in range(10)]
    assert server.process is not None
    n = 1000
    peak = 0

    async def main() -> list[str]:
        nonlocal peak
        limits = httpx.Limits(max_connections=n + 10, max_keepalive_connections=n + 10)
        async with httpx.AsyncClient(
                transport=httpx.AsyncHTTPTransport(uds=str(server.socket), limits=limits),
                base_url="http://drmaa2", timeout=120,
                headers={"Authorization": f"Bearer {server.token}"}) as ac:

            async def one(i: int) -> str:
                job = jobs[i % len(jobs)]
                if kind == "wait":
                    while True:
                        r = await ac.post("/v1/wait", json={"ids": [job],
                                                            "mode": "all_terminated"})
                        if r.json()["done"]:
                            return job
                async with ac.stream("GET", "/v1/events", params={"ids": job}) as r:
                    last = None
                    async for line in r.aiter_lines():
                        if line.startswith("data:"):
                            last = json.loads(line[5:])["state"]
                    return str(last)

            async def sample() -> None:
                nonlocal peak
                while True:
                    peak = max(peak, _rss(server.process.pid))  # type: ignore[union-attr]
                    await asyncio.sleep(0.2)

            sampler = asyncio.ensure_future(sample())
            try:
                return await asyncio.gather(*(one(i) for i in range(n)))
            finally:
                sampler.cancel()

    t0 = time.monotonic()
    out = asyncio.run(main())
    took = time.monotonic() - t0
    assert len(out) == n
    if kind == "events":
        assert set(out) == {"done"}
    print(f"{n} {kind} waiters: server RSS peak {peak / 2**20:.0f} MiB, {took:.1f} s")
    assert peak < 200 * 2**20
