"""The dashboard of ``drmaa2 serve`` in a real headless browser: Debian's chromium driven by
Playwright, against the real server (a subprocess on loopback with a home of its own).

The page is opened before anything is submitted, so every job and array it shows arrived through
its event stream. Screenshots are kept in ``$PYDRMAA2_ARTIFACTS`` (default ``tests/artifacts/``).
Without chromium or Playwright the tests skip, and fail in CI (``CI=true`` or PYDRMAA2_REQUIRE).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import pydrmaa2 as d2
from pydrmaa2.agent import AgentClient

from .conftest import end_and_reap

CHROMIUM = os.environ.get("PYDRMAA2_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(os.environ.get("PYDRMAA2_ARTIFACTS") or Path(__file__).resolve().parent / "artifacts")
IN_CI = (os.environ.get("CI", "").lower() in ("1", "true", "yes")
         or bool(os.environ.get("PYDRMAA2_REQUIRE")))
#: How long the page may take to show what the server already knows (seconds).
SEEN = 20


def unavailable(reason: str) -> None:
    """Skip, or fail in CI, where the dashboard cannot be tested."""
    if IN_CI:
        pytest.fail(f"the dashboard test is required in CI but cannot run: {reason}")
    pytest.skip(reason)


try:
    import httpx
    from playwright.sync_api import Browser, Page, sync_playwright
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
except ImportError as e:  # pragma: no cover - depends on the environment
    _missing: str | None = f"{e.name} is not installed (pip install -e '.[serve,dev]')"
else:
    _missing = None


# -- the server ------------------------------------------------------------------------------------

@dataclass
class Server:
    url: str
    token: str
    home: Path
    log: Path
    proc: subprocess.Popen[bytes]
    api: httpx.Client

    def call(self, method: str, path: str, **kw: Any) -> Any:
        r = self.api.request(method, f"/v1{path}", **kw)
        assert r.is_success, f"{method} {path}: {r.status_code} {r.text}"
        return r.json() if r.content else None

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    if _missing:
        unavailable(_missing)
    tmp = tmp_path_factory.mktemp("dashboard")
    home = tmp / "home"
    token = secrets.token_urlsafe(32)
    token_file = tmp / "serve.token"
    token_file.write_text(token + "\n")
    token_file.chmod(0o600)
    port = _free_port()
    log = tmp / "serve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pydrmaa2.cli", "serve", "--listen", f"127.0.0.1:{port}",
             "--token-file", str(token_file)],
            env={**os.environ, "PYDRMAA2_HOME": str(home)}, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    api = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    srv = Server(url, token, home, log, proc, api)
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                pytest.fail(f"drmaa2 serve exited with {proc.returncode}:\n{srv.log_tail()}")
            with contextlib.suppress(httpx.TransportError):
                if api.get("/v1/info").status_code == 200:
                    break
            if time.monotonic() > deadline:
                pytest.fail(f"drmaa2 serve did not answer on {url} within 30 s:\n{srv.log_tail()}")
            time.sleep(0.1)
        yield srv
    finally:
        api.close()
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
        if (home / "store.sqlite").exists():
            with d2.SessionManager(home=home) as sm:
                for name in sm.job_session_names:
                    with contextlib.suppress(d2.Drmaa2Error), sm.open_job_session(name) as js:
                        end_and_reap(js)
        AgentClient.for_home(home).close()


# -- the browser -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if _missing:
        unavailable(_missing)
    exe = shutil.which(CHROMIUM) or (CHROMIUM if os.access(CHROMIUM, os.X_OK) else None)
    if exe is None:
        unavailable(f"no chromium at {CHROMIUM} (apt-get install chromium)")
    with sync_playwright() as p:
        try:
            b = p.chromium.launch(executable_path=exe, args=["--no-sandbox"])
        except Exception as e:  # noqa: BLE001 - any launch failure means no browser here
            unavailable(f"chromium at {exe} does not start under Playwright: {e}")
        yield b
        b.close()


class Tab:
    """A page of the dashboard whose failures come with a screenshot and the page's errors."""

    def __init__(self, browser: Browser, name: str):
        self.name = name
        self.page: Page = browser.new_page(viewport={"width": 1400, "height": 900})
        self.errors: list[str] = []
        self.page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))
        self.shots = 0

    def shot(self, what: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.shots += 1
        path = ARTIFACTS / f"dashboard-{self.name}-{self.shots}-{what}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def why(self, what: str) -> str:
        with contextlib.suppress(Exception):
            path = self.shot("failed")
            banner = self.page.locator("#banner-text").text_content(timeout=1000)
            return (f"{what}; screenshot {path}; banner {banner!r}; conn "
                    f"{self.page.get_attribute('#conn', 'data-status', timeout=1000)!r}; {self.errors}")
        return f"{what}; {self.errors}"

    def see(self, selector: str, what: str, timeout: float = SEEN) -> None:
        try:
            self.page.wait_for_selector(selector, timeout=timeout * 1000)
        except PlaywrightTimeout:
            pytest.fail(self.why(f"{what}: {selector} not seen within {timeout} s"))

    def see_text(self, selector: str, text: str, what: str, timeout: float = SEEN) -> None:
        deadline = time.monotonic() + timeout
        got = None
        while time.monotonic() < deadline:
            got = self.page.locator(selector).text_content()
            if got is not None and text in got:
                return
            time.sleep(0.2)
        pytest.fail(self.why(f"{what}: {text!r} not in {selector} within {timeout} s (it shows {got!r})"))

    def close(self) -> None:
        self.page.close()


@pytest.fixture
def tab(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Tab]:
    t = Tab(browser, request.node.name.removeprefix("test_"))
    yield t
    t.close()


# -- the tests ---------------------------------------------------------------------------------------

def sh(script: str) -> dict[str, Any]:
    return {"remote_command": "/bin/sh", "args": ["-c", script]}


def test_the_page_follows_an_array_and_terminates_a_job(server: Server, tab: Tab):
    server.call("POST", "/sessions", json={"name": "dash", "contact": "process"})
    page = tab.page
    page.goto(f"{server.url}/#token={server.token}")
    assert "token" not in page.url, tab.why(f"the token stays in the address bar: {page.url}")
    tab.see('#sessions [data-session="dash"]', "the session list")
    page.click('#sessions [data-session="dash"]')
    tab.see('#conn[data-status="live"]', "the event stream of the session")

    # Submitted after the page is open: the array and the job reach it through the events.
    marker = f"dashboard-marker-{secrets.token_hex(4)}"
    long = server.call("POST", "/sessions/dash/jobs",
                       json={"template": sh(f"echo {marker}; exec sleep 300")})
    array = server.call("POST", "/sessions/dash/arrays",
                        json={"template": sh("sleep 1"), "begin": 1, "end": 6, "step": 1,
                              "max_parallel": 2})
    aid, jid = str(array["id"]), str(long["id"])
    bar = f'[id="progress-{aid}"]'
    tab.see(bar, "the array's progress bar")
    tab.see(f'#jobs-body tr[data-job-id="{jid}"]', "the long job's row")

    seen: list[int] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        now = int(page.get_attribute(bar, "aria-valuenow") or 0)
        if not seen or seen[-1] != now:
            seen.append(now)
        if now == 6:
            break
        time.sleep(0.1)
    assert seen and seen[-1] == 6, tab.why(f"the array's progress went {seen}, not to 6")
    assert seen == sorted(seen) and any(0 < v < 6 for v in seen), tab.why(
        f"the progress did not rise step by step: {seen}")
    assert page.get_attribute(bar, "aria-valuemax") == "6", tab.why("the bar's total is not 6")
    tab.see_text(f'[id="progress-label-{aid}"]', "6/6 ended", "the array's label")
    tab.see(f'[id="counts-{aid}"] [data-state="DONE"][data-count="6"]', "the array's DONE count")
    tab.see('#jobs-body tr[data-state="DONE"] >> nth=5', "six DONE rows")
    done = server.call("GET", f"/arrays/{aid}")
    assert {k.upper(): v for k, v in done["counts"].items()} == {"DONE": 6}, done
    shot = tab.shot("array-done")

    # An ended task's JobInfo.
    task = str(done["job_ids"][0])
    page.click(f'#jobs-body tr[data-job-id="{task}"]')
    tab.see_text('#jobinfo dd[data-field="exit_status"]', "0", "the task's exit status")
    tab.see('#job-actions button[data-action="terminate"]:disabled', "actions off for an ended job")

    # The long job: its JobInfo, its output's tail, then terminated from the page.
    page.click(f'#jobs-body tr[data-job-id="{jid}"]')
    tab.see_text("#job-title", jid, "the job panel")
    tab.see_text('#jobinfo dd[data-field="id"]', jid, "the long job's JobInfo")
    tab.see('#job-state[data-state="RUNNING"]', "the long job running")
    tab.see_text("#job-output", marker, "the long job's output tail")
    tab.shot("job-running")
    page.click('#job-actions button[data-action="terminate"]')
    tab.see(f'#jobs-body tr[data-job-id="{jid}"][data-state="FAILED"]', "the terminated job's row")
    tab.see('#job-state[data-state="FAILED"]', "the job panel's state")
    tab.see_text('#jobinfo dd[data-field="annotation"]', "terminated", "the terminated job's JobInfo")
    tab.see('#job-actions[data-last="terminate:ok"]', "the terminate POST answered 204")
    view = server.call("GET", f"/jobs/{jid}")
    assert view["state"].upper() == "FAILED", view
    row_sub = page.locator(f'#jobs-body tr[data-job-id="{jid}"] td.sub-state').text_content()
    assert (row_sub or "") == (view["sub_state"] or ""), tab.why(f"sub_state {row_sub!r} vs {view}")
    assert page.locator("#banner").is_hidden(), tab.why("an error banner is shown")
    shot = tab.shot("terminated")
    assert not tab.errors, f"{tab.errors}; screenshot {shot}"


def test_a_wrong_token_shows_the_error_then_the_form_takes_the_right_one(server: Server, tab: Tab):
    server.call("POST", "/sessions", json={"name": "tokens", "contact": "process", "exist_ok": True})
    page = tab.page
    page.goto(f"{server.url}/#token=not-the-token")
    tab.see("#banner:not([hidden])", "the error banner")
    tab.see_text("#banner-text", "DeniedByDrmsError", "the API's error in the banner")
    tab.see("#login:not([hidden])", "the token form")
    shot = tab.shot("wrong-token")
    assert page.locator("#main").is_hidden(), f"data shown with a wrong token; screenshot {shot}"

    page.fill("#token-input", server.token)
    page.click('#login button[type="submit"]')
    tab.see('#sessions [data-session="tokens"]', "the sessions after the form")
    assert page.locator("#banner").is_hidden(), tab.why("the banner stays after a good token")
    page.reload()  # the token is kept in the tab's sessionStorage, not asked again
    tab.see('#sessions [data-session="tokens"]', "the sessions after a reload")
    assert page.locator("#login").is_hidden(), tab.why("the form is shown again after a reload")
    assert not tab.errors, tab.why("page errors")
