"""drmaa2 serve refuses what it must (docs/serve.md): wrong or missing tokens, oversized and
malformed bodies, unknown fields, wrong types; each refusal creates nothing. The token file and
the socket are the user's only; an address off loopback needs TLS, and TLS works."""

from __future__ import annotations

import os
import ssl
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import pydrmaa2 as d2

from .test_serve import Server, sh, wait_all

httpx = pytest.importorskip("httpx")

MIB = 1 << 20


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = Server(tmp_path_factory.mktemp("serve-security") / "home").start()
    with srv.client() as c:
        assert c.post("/v1/sessions", json={"name": "s"}).status_code == 201
    yield srv
    srv.cleanup()


@pytest.fixture
def client(server: Server) -> Iterator[httpx.Client]:
    with server.client() as c:
        yield c
        # each test leaves the store as it found it: one empty session
        assert c.get("/v1/sessions").json() == [{"name": "s", "contact": "process"}]
        for job in c.get("/v1/sessions/s/jobs").json():
            c.post(f"/v1/jobs/{job['id']}/terminate")
            wait_all(c, [job["id"]])
            c.delete(f"/v1/jobs/{job['id']}")


def nothing_created(server: Server) -> None:
    with d2.SessionManager(home=server.home) as sm:
        assert sm.job_session_names == ["s"]
        assert sm.reservation_session_names == []
        with sm.open_job_session("s") as js:
            assert js.get_jobs() == []


def refused(r: httpx.Response, status: int, error: str, *words: str) -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["error"] == error, body
    for w in words:
        assert w in body["message"], (w, body)


# -- the token ------------------------------------------------------------------------------------
@pytest.mark.parametrize("headers", [
    {}, {"Authorization": "Bearer wrong"}, {"Authorization": "Bearer a b"},
    {"Authorization": "Basic dXNlcjpwYXNz"}, {"Authorization": "bearer"}])
def test_requests_without_the_right_token_are_refused_and_change_nothing(
        server: Server, headers: dict[str, str]) -> None:
    with httpx.Client(transport=httpx.HTTPTransport(uds=str(server.socket)),
                      base_url="http://drmaa2", headers=headers) as anon:
        for r in (anon.get("/v1/info"), anon.get("/v1/sessions"), anon.get("/openapi.json"),
                  anon.post("/v1/sessions", json={"name": "evil"}),
                  anon.post("/v1/sessions/s/jobs", json={"template": sh("true")}),
                  anon.delete("/v1/sessions/s"), anon.get("/v1/nosuch"),
                  anon.get("/v1/events", params={"session": "s"})):
            refused(r, 401, "DeniedByDrmsError")
            assert r.headers["www-authenticate"] == "Bearer"
    nothing_created(server)


def test_a_tracker_s_own_denial_is_403_without_a_token_challenge() -> None:
    """A limit over the user's allowance is no token fault: a 401 would log the dashboard out.
    (The process tracker denies a priority only to an unprivileged user: tested here as the
    refusal the server answers with.)"""
    from pydrmaa2.serve._wire import TokenError, refusal

    denied = refusal(d2.DeniedByDrmsError("priority 19 needs privilege"))
    assert denied.status_code == 403 and "www-authenticate" not in denied.headers
    assert b'"DeniedByDrmsError"' in denied.body
    token = refusal(TokenError("wrong token"))
    assert token.status_code == 401 and token.headers["www-authenticate"] == "Bearer"
    assert b'"DeniedByDrmsError"' in token.body


def test_the_token_in_another_scheme_or_the_query_is_refused(server: Server) -> None:
    token = server.token
    with httpx.Client(transport=httpx.HTTPTransport(uds=str(server.socket)),
                      base_url="http://drmaa2") as anon:
        refused(anon.get("/v1/info", headers={"Authorization": f"Token {token}"}), 401,
                "DeniedByDrmsError", "Bearer")
        refused(anon.get("/v1/info", headers={"Authorization": token}), 401, "DeniedByDrmsError")
        refused(anon.get("/v1/info", params={"token": token}), 401, "DeniedByDrmsError")
        refused(anon.get("/v1/info", headers={"Authorization": f"Bearer {token}x"}), 401,
                "DeniedByDrmsError")
        assert anon.get("/v1/info", headers={"Authorization": f"Bearer {token}"}).status_code == 200


def test_token_file_and_socket_are_the_user_s_only(server: Server) -> None:
    assert stat.S_IMODE((server.home / "serve.token").stat().st_mode) == 0o600
    assert stat.S_IMODE(server.socket.stat().st_mode) == 0o600
    assert stat.S_ISSOCK(server.socket.stat().st_mode)
    assert len(server.token) >= 43  # 32 random bytes, URL-safe base64


# -- bodies ---------------------------------------------------------------------------------------
def test_a_body_over_a_mib_is_refused_by_its_length(server: Server, client: httpx.Client) -> None:
    big = b'{"template": {"remote_command": "/bin/true", "job_name": "' + b"x" * MIB + b'"}}'
    refused(client.post("/v1/sessions/s/jobs", content=big), 413, "InvalidArgumentError",
            "bytes")
    nothing_created(server)


def test_a_streamed_body_over_a_mib_is_refused_as_it_arrives(server: Server,
                                                             client: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"template": {"remote_command": "/bin/true", "job_name": "'
        for _ in range(64):
            yield b"x" * 32768
        yield b'"}}'

    r = client.post("/v1/sessions/s/jobs", content=chunks())  # chunked: no Content-Length
    refused(r, 413, "InvalidArgumentError")
    nothing_created(server)


@pytest.mark.parametrize(("body", "words"), [
    (b"{not json", ["not JSON"]), (b"", ["not JSON"]), (b"\xff\xfe", ["not JSON"]),
    (b"[1, 2]", ["JSON object", "list"]), (b'"a string"', ["JSON object"]),
    (b"null", ["JSON object"]), (b'{"template": NaN}', ["not JSON"]),
    (b'{"template": {"remote_command": "/bin/true"}, "extra": 1}', ["'extra'"]),
    (b'{"template": {"remote_command": "/bin/true", "evil": 1}}', ["JobTemplate", "'evil'"]),
    (b'{}', ["'template'"]),
    (b'{"template": [1]}', ["template", "JSON object"]),
    (b'{"template": {"remote_command": 5}}', ["remote_command", "5"]),
    (b'{"template": {"remote_command": "/bin/true", "args": "abc"}}', ["args", "abc"]),
    (b'{"template": {"remote_command": "/bin/true", "args": [1]}}', ["args"]),
    (b'{"template": {"remote_command": "/bin/true", "job_environment": ["A=1"]}}',
     ["job_environment"]),
    (b'{"template": {"remote_command": "/bin/true", "job_environment": {"A": 1}}}',
     ["job_environment"]),
    (b'{"template": {"remote_command": "/bin/true", "machine_os": "plan9"}}',
     ["machine_os", "plan9"]),
    (b'{"template": {"remote_command": "/bin/true", "machine_os": 3}}', ["machine_os"]),
    (b'{"template": {"remote_command": "/bin/true", "start_time": "tomorrow"}}',
     ["start_time", "tomorrow"]),
    (b'{"template": {"remote_command": "/bin/true", "start_time": 5}}', ["start_time"]),
    (b'{"template": {"remote_command": "/bin/true", "min_slots": "2"}}', ["min_slots"]),
    (b'{"template": {"remote_command": "/bin/true", "submit_as_hold": "yes"}}',
     ["submit_as_hold"]),
    (b'{"template": {"remote_command": "/bin/true", "priority": 1e400}}', ["priority"]),
    (b'{"template": {"remote_command": "/bin/true", "args": "x"}}',
     ["args", "is not a list of strings"]),
    (b'{"template": {"remote_command": "/bin/true", "email": 5}}',
     ["email", "is not a list of strings"]),
    (b'{"template": {"remote_command": "/bin/true", "job_environment": ["A=1"]}}',
     ["job_environment", "is not an object"]),
])
def test_bad_job_bodies_are_refused_naming_the_fault(server: Server, client: httpx.Client,
                                                     body: bytes, words: list[str]) -> None:
    r = client.post("/v1/sessions/s/jobs", content=body,
                    headers={"Content-Type": "application/json"})
    refused(r, 400, "InvalidArgumentError", *words)
    nothing_created(server)


@pytest.mark.parametrize(("path", "body", "words"), [
    ("/v1/sessions", {"name": "x", "colour": "red"}, ["'colour'"]),
    ("/v1/sessions", {"name": 5}, ["name"]),
    ("/v1/sessions", {"name": ""}, ["name"]),
    ("/v1/sessions", {"name": "x", "contact": "nosuch"}, ["nosuch"]),
    ("/v1/sessions", {"name": "x", "exist_ok": "yes"}, ["exist_ok"]),
    ("/v1/sessions", {}, ["'name'"]),
    ("/v1/sessions/s/arrays", {"template": sh("true"), "begin": "1", "end": 3}, ["begin"]),
    ("/v1/sessions/s/arrays", {"template": sh("true"), "begin": 3, "end": 1}, []),
    ("/v1/sessions/s/arrays", {"template": sh("true"), "begin": 1, "end": 2, "max": 1},
     ["'max'"]),
    ("/v1/sessions/s/arrays", {"template": sh("true"), "begin": 1, "end": 10**9}, []),
    ("/v1/states", {"ids": "1"}, ["ids"]), ("/v1/states", {"ids": []}, ["ids"]),
    ("/v1/states", {"ids": [1]}, ["ids"]),
    ("/v1/control", {"ids": ["1"], "action": "rm -rf /"}, ["rm -rf"]),
    ("/v1/wait", {"ids": ["1"], "mode": "sometime"}, ["sometime"]),
    ("/v1/wait", {"ids": ["1"], "mode": "any_started", "timeout": -1}, ["timeout"]),
    ("/v1/wait", {"ids": ["1"], "mode": "any_started", "timeout": "soon"}, ["timeout"]),
    ("/v1/reservation-sessions", {"name": "r", "when": 1}, ["'when'"]),
])
def test_bad_bodies_elsewhere_are_refused_too(server: Server, client: httpx.Client, path: str,
                                              body: Any, words: list[str]) -> None:
    refused(client.post(path, json=body), 400, "InvalidArgumentError", *words)
    nothing_created(server)


@pytest.mark.parametrize(("path", "body", "words"), [
    ("/v1/sessions", rb'{"name": "\ud800"}', ["name"]),
    ("/v1/sessions", rb'{"name": "x", "contact": "\ud800"}', ["contact"]),
    ("/v1/sessions", rb'{"name": "x\u0000"}', ["name"]),
    ("/v1/sessions/s/jobs", rb'{"template": {"remote_command": "\ud800"}}', []),
    ("/v1/states", rb'{"ids": ["\ud800"]}', ["ids"]),
    ("/v1/control", rb'{"ids": ["\udfff"], "action": "terminate"}', ["ids"]),
    ("/v1/control", rb'{"ids": ["1"], "action": "\ud800"}', ["action"]),
    ("/v1/wait", rb'{"ids": ["\ud800"], "mode": "any_started"}', ["ids"]),
    ("/v1/reservation-sessions", rb'{"name": "\ud800"}', ["name"]),
    ("/v1/states", b"[" * 200_000 + b"]" * 200_000, ["deep"]),
    ("/v1/sessions", b'{"name": ' + b"[" * 200_000 + b"]" * 200_000 + b"}", ["deep"]),
])
def test_text_no_store_can_take_and_deep_json_are_refused_not_failed(
        server: Server, client: httpx.Client, path: str, body: bytes, words: list[str]) -> None:
    """A lone surrogate reaching SQLite, or JSON nested past Python's recursion limit, was a
    500 with a traceback in the server's log."""
    r = client.post(path, content=body, headers={"Content-Type": "application/json"})
    refused(r, 400, "InvalidArgumentError", *words)
    nothing_created(server)


def test_odd_digits_and_nul_bytes_in_urls_are_refused_not_failed(server: Server,
                                                                  client: httpx.Client) -> None:
    job = client.post("/v1/sessions/s/jobs", json={"template": sh("echo hi")}).json()
    wait_all(client, [job["id"]])
    for word in ("\u00b2", "\u0663", "1\u00b2"):  # superscript two, Arabic-Indic three
        refused(client.get(f"/v1/jobs/{job['id']}/output", params={"tail": word}), 400,
                "InvalidArgumentError", "tail")
    assert client.get(f"/v1/jobs/{job['id']}/output", params={"tail": "1"}).text == "hi\n"
    refused(client.get("/v1/jobs/1%00"), 400, "InvalidArgumentError", "NUL")
    refused(client.get("/v1/sessions/s/jobs", params={"state": "a\x00"}), 400,
            "InvalidArgumentError")
    with server.client(token="wrong") as anon:
        for path in ("/static/%00", "/static/a%00b.js", "/static/%ED%A0%80"):
            refused(anon.get(path), 404, "InvalidArgumentError")
    log = server.log.read_text()
    assert "Traceback" not in log, log[-3000:]


def test_bad_queries_are_refused(client: httpx.Client) -> None:
    refused(client.get("/v1/sessions/s/jobs", params={"state": "sleepy"}), 400,
            "InvalidArgumentError", "sleepy")
    refused(client.get("/v1/sessions/s/jobs", params={"colour": "red"}), 400,
            "InvalidArgumentError", "colour")
    refused(client.get("/v1/events"), 400, "InvalidArgumentError")
    refused(client.get("/v1/events", params={"session": "s", "ids": "1"}), 400,
            "InvalidArgumentError")
    refused(client.get("/v1/tracker", params={"contact": "process?evil=1"}), 400,
            "InvalidArgumentError", "evil")


def test_unknown_query_parameters_are_refused_on_every_endpoint(server: Server,
                                                                client: httpx.Client) -> None:
    q = {"colour": "red"}
    for method, path, body in [
            ("GET", "/v1/info", None), ("GET", "/v1/sessions", None),
            ("POST", "/v1/sessions", {"name": "x"}), ("GET", "/v1/sessions/s", None),
            ("DELETE", "/v1/sessions/s", None), ("POST", "/v1/sessions/s/jobs",
                                                 {"template": sh("true")}),
            ("POST", "/v1/sessions/s/arrays", {"template": sh("true"), "begin": 1, "end": 2}),
            ("GET", "/v1/sessions/s/arrays", None), ("GET", "/v1/arrays/1", None),
            ("GET", "/v1/jobs/1", None), ("DELETE", "/v1/jobs/1", None),
            ("GET", "/v1/jobs/1/info", None), ("GET", "/v1/jobs/1/template", None),
            ("POST", "/v1/jobs/1/terminate", None), ("POST", "/v1/states", {"ids": ["1"]}),
            ("POST", "/v1/control", {"ids": ["1"], "action": "terminate"}),
            ("POST", "/v1/wait", {"ids": ["1"], "mode": "any_started", "timeout": 0}),
            ("POST", "/v1/reservation-sessions", {"name": "r"}),
            ("GET", "/v1/reservation-sessions/r/reservations", None),
            ("POST", "/v1/reservation-sessions/r/reservations", {"template": {}}),
            ("DELETE", "/v1/reservations/1", None), ("GET", "/openapi.json", None)]:
        r = client.request(method, path, params=q, json=body)
        refused(r, 400, "InvalidArgumentError", "colour")
    nothing_created(server)


def test_unknown_routes_and_methods_answer_in_the_api_s_shape(client: httpx.Client) -> None:
    refused(client.get("/v1/nosuch"), 404, "InvalidArgumentError")
    refused(client.put("/v1/sessions"), 405, "UnsupportedOperationError")


# -- nothing reaches a shell ----------------------------------------------------------------------
def test_shell_syntax_in_command_and_args_stays_literal(tmp_path: Path, server: Server,
                                                        client: httpx.Client) -> None:
    marker = tmp_path / "pwned"
    args = [f"$(touch {marker})", f"`touch {marker}`", f"; touch {marker}", f"| touch {marker}",
            f"&& touch {marker}", "$HOME", "*"]
    r = client.post("/v1/sessions/s/jobs",
                    json={"template": {"remote_command": "/bin/echo", "args": args}})
    assert r.status_code == 201
    job = r.json()["id"]
    wait_all(client, [job])
    assert client.get(f"/v1/jobs/{job}/output").text == " ".join(args) + "\n"
    r = client.post("/v1/sessions/s/jobs", json={"template": {
        "remote_command": f"/bin/true; touch {marker}", "job_name": f"$(touch {marker})",
        "job_environment": {"X": f"$(touch {marker})"}}})
    if r.status_code == 201:  # accepted: the command is a file that does not exist
        wait_all(client, [r.json()["id"]])
        assert client.get(f"/v1/jobs/{r.json()['id']}").json()["state"] == "failed"
    else:
        assert r.status_code == 400
    assert not marker.exists()


# -- starting the server --------------------------------------------------------------------------
def _serve(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pydrmaa2.cli", "serve", *args],
                          env={**os.environ, "PYDRMAA2_HOME": str(home)},
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("address", ["0.0.0.0:0", "192.0.2.1:8443", "[::]:0", "example.org:80"])
def test_listening_off_loopback_without_tls_is_refused(tmp_path: Path, address: str) -> None:
    r = _serve(tmp_path / "home", "--listen", address)
    assert r.returncode == 2
    assert "without TLS" in r.stderr and "--tls-cert" in r.stderr


def test_a_plain_http_socket_is_checked_for_the_address_it_is_bound_to() -> None:
    """``localhost`` resolving off loopback (a hosts file, a resolver) is not served in plain
    HTTP: the bound address is what counts."""
    from pydrmaa2.serve._security import check_bound

    for address in ("127.0.0.1", "127.0.1.1", "::1"):
        check_bound("localhost:80", address, tls=False)
    for address in ("10.1.2.3", "0.0.0.0", "::", "fe80::1%eth0", "2001:db8::1"):
        with pytest.raises(d2.InvalidArgumentError, match="loopback"):
            check_bound("localhost:80", address, tls=False)
        check_bound("localhost:80", address, tls=True)


def test_a_token_file_others_can_read_is_refused(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("secret\n")
    token.chmod(0o640)
    r = _serve(tmp_path / "home", "--token-file", str(token), "--socket",
               str(tmp_path / "s.sock"))
    assert r.returncode == 2
    assert str(token) in r.stderr and f"chmod 600 {token}" in r.stderr
    assert not (tmp_path / "s.sock").exists()


def test_a_new_token_file_is_created_private_in_a_private_directory(tmp_path: Path) -> None:
    token = tmp_path / "new" / "dir" / "token"
    srv = Server(tmp_path / "home", "--socket", str(tmp_path / "home" / "serve.sock"),
                 "--token-file", str(token))
    srv.start()
    try:
        assert stat.S_IMODE(token.stat().st_mode) == 0o600
        assert stat.S_IMODE(token.parent.stat().st_mode) == 0o700
        assert stat.S_IMODE(srv.socket.stat().st_mode) == 0o600
        with srv.client(token=token.read_text().strip()) as c:
            assert c.get("/v1/info").status_code == 200
    finally:
        srv.cleanup()


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   check=True, capture_output=True)
    return cert, key


def test_tls_serves_with_a_self_signed_certificate(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    srv = Server(tmp_path / "home", "--listen", "127.0.0.1:0", "--tls-cert", str(cert),
                 "--tls-key", str(key))
    srv.start(wait=False)
    try:
        where = srv.wait_ready()
        assert where.startswith("https://127.0.0.1:")
        auth = {"Authorization": f"Bearer {srv.token}"}
        trust = ssl.create_default_context(cafile=str(cert))
        with httpx.Client(base_url=where, verify=trust, headers=auth) as c:
            assert c.get("/v1/info").json()["home"] == str(srv.home)
            assert c.post("/v1/sessions", json={"name": "tls"}).status_code == 201
            job = c.post("/v1/sessions/tls/jobs", json={"template": sh("echo over tls")}).json()
            wait_all(c, [job["id"]])
            assert c.get(f"/v1/jobs/{job['id']}/output").text == "over tls\n"
        with httpx.Client(base_url=where, verify=trust) as anon:
            refused(anon.get("/v1/info"), 401, "DeniedByDrmsError")
        with pytest.raises(httpx.ConnectError), httpx.Client(base_url=where) as unverified:
            unverified.get("/v1/info", headers=auth)  # not trusted without the certificate
        plain = where.replace("https://", "http://")
        with pytest.raises(httpx.HTTPError), httpx.Client(base_url=plain) as c:
            c.get("/v1/info", headers=auth)
    finally:
        srv.cleanup()


def test_tls_needs_both_files_and_usable_ones(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    r = _serve(tmp_path / "home", "--listen", "0.0.0.0:0", "--tls-cert", str(cert))
    assert r.returncode == 2 and "go together" in r.stderr
    r = _serve(tmp_path / "home", "--listen", "127.0.0.1:0", "--tls-cert", str(key),
               "--tls-key", str(key))
    assert r.returncode == 2 and "cannot use --tls-cert" in r.stderr


def test_the_server_raises_its_open_files_limit_to_the_hard_one(tmp_path: Path) -> None:
    """1,000 held connections need more descriptors than the usual soft limit of 1024."""
    import resource

    import psutil

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    low = min(256, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (low, hard))
    try:
        srv = Server(tmp_path / "home").start()  # inherits the low soft limit
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    try:
        assert srv.process is not None
        assert psutil.Process(srv.process.pid).rlimit(resource.RLIMIT_NOFILE) == (hard, hard)
    finally:
        srv.cleanup()


def test_a_second_server_on_the_same_socket_is_refused(server: Server) -> None:
    r = _serve(server.home, "--socket", str(server.socket))
    assert r.returncode == 2 and "already listens" in r.stderr
    assert server.socket.exists()
