"""Test set-up: which trackers run, and turning a missing engine into a failure in CI.

``PYDRMAA2_REQUIRE=process,docker,...`` (set by .ci/run) makes a tracker whose engine is not
available fail instead of skip. The remote targets (``remote-process``, ``remote-slurm``) run
through a ``drmaa2 serve`` that their first probe starts and the run's end stops.

``PYDRMAA2_TEST_INSTALLED=1`` (set by scripts/test.sh) makes the run fail unless the pydrmaa2 it
imports is an installed wheel (``PYDRMAA2_WHEEL``: that one), not the checkout's src/; without it
any pydrmaa2 is tested (``pip install -e .`` for a developer), and the header says which.
"""

from __future__ import annotations

import base64
import contextlib
import csv
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

import pydrmaa2 as d2
from pydrmaa2.agent import AgentClient
from pydrmaa2.testing.targets import SERVER, TARGETS, Target
from pydrmaa2.trackers import Contact, tracker_class

os.environ.setdefault("PYDRMAA2_AGENT_IDLE", "5")

CHECKOUT = Path(__file__).resolve().parents[1]
PYDRMAA2 = Path(d2.__file__).resolve().parent


def _record_hashes(lines: str) -> dict[str, str]:
    """A RECORD's ``path -> sha256=...`` of the package's files and metadata (not pip's own)."""
    return {row[0]: row[1] for row in csv.reader(io.StringIO(lines))
            if len(row) > 1 and row[1] and (row[0].startswith("pydrmaa2/") or row[0].endswith(
                tuple(f".dist-info/{n}" for n in ("METADATA", "WHEEL", "entry_points.txt"))))}


def not_the_installed_wheel() -> str | None:
    """Why the imported pydrmaa2 is not an installed wheel (``PYDRMAA2_WHEEL``: that one), or None."""
    if PYDRMAA2.is_relative_to(CHECKOUT / "src"):
        return f"pydrmaa2 is imported from the checkout ({PYDRMAA2}), not from an install"
    site = {Path(sysconfig.get_paths()[k]).resolve() for k in ("purelib", "platlib")}
    if PYDRMAA2.parent not in site:
        return f"pydrmaa2 is imported from {PYDRMAA2}, not from {sys.executable}'s site-packages"
    dist = metadata.distribution("pydrmaa2")
    if Path(dist.locate_file("pydrmaa2")).resolve() != PYDRMAA2:
        return f"the installed pydrmaa2 distribution is not the imported {PYDRMAA2}"
    if json.loads(dist.read_text("direct_url.json") or "{}").get("dir_info", {}).get("editable"):
        return "pydrmaa2 is an editable install (of a checkout), not a wheel"
    installed = _record_hashes(dist.read_text("RECORD") or "")
    if not installed:
        return "the installed pydrmaa2 has no RECORD of its files"
    for rel, digest in installed.items():
        sha = hashlib.sha256(Path(dist.locate_file(rel)).read_bytes()).digest()
        if digest != "sha256=" + base64.urlsafe_b64encode(sha).rstrip(b"=").decode():
            return f"the installed {rel} was changed after it was installed"
    wheel = os.environ.get("PYDRMAA2_WHEEL")
    if wheel:
        with zipfile.ZipFile(wheel) as z:
            record = next(n for n in z.namelist() if n.endswith(".dist-info/RECORD"))
            if _record_hashes(z.read(record).decode()) != installed:
                return f"the installed pydrmaa2 is not {wheel}"
    # Programs the tests start (the agent, examples, the CLI) import the same one.
    out = subprocess.run([sys.executable, "-c", "import pydrmaa2; print(pydrmaa2.__file__)"],
                         cwd=CHECKOUT, capture_output=True, text=True, check=True).stdout
    if Path(out.strip()).resolve().parent != PYDRMAA2:
        return f"a program run from the checkout imports pydrmaa2 from {out.strip()}"
    return None


if os.environ.get("PYDRMAA2_TEST_INSTALLED", "0") not in ("", "0"):
    _why = not_the_installed_wheel()
    if _why is not None:
        raise pytest.UsageError(f"PYDRMAA2_TEST_INSTALLED: the tests must run against the installed "
                                f"wheel: {_why}")


def pytest_report_header() -> str:
    return f"pydrmaa2: {PYDRMAA2}"


REQUIRED = {t.strip() for t in os.environ.get("PYDRMAA2_REQUIRE", "").split(",") if t.strip()}
_unknown = REQUIRED - set(TARGETS)
if _unknown:
    raise pytest.UsageError(f"PYDRMAA2_REQUIRE names unknown trackers: {sorted(_unknown)}")

_availability: dict[str, str | None] = {}


def unavailable(name: str) -> str | None:
    """Why tracker ``name`` cannot be tested here (None: it can)."""
    if name not in _availability:
        reason = TARGETS[name].probe()
        if reason is None:
            try:
                tracker_class(Contact.parse(TARGETS[name].contact).scheme)
            except Exception as e:  # noqa: BLE001 - any import failure makes it unavailable
                reason = f"tracker not loadable: {e}"
        _availability[name] = reason
    return _availability[name]


def require(name: str) -> Target:
    """The target, or skip (fail when PYDRMAA2_REQUIRE names it) if its engine is missing."""
    reason = unavailable(name)
    if reason is not None:
        if name in REQUIRED:
            pytest.fail(f"tracker {name!r} is required (PYDRMAA2_REQUIRE) but unavailable: {reason}")
        pytest.skip(f"tracker {name!r} unavailable: {reason}")
    return TARGETS[name]


@pytest.fixture(scope="session", autouse=True)
def _drmaa2_server() -> Iterator[None]:
    """The test run's drmaa2 server (started by a remote target's probe), ended by pid at the
    end of the run, its directory removed."""
    yield
    if SERVER.started:
        SERVER.stop()
        shutil.rmtree(SERVER.directory, ignore_errors=True)


@pytest.fixture
def sm(tmp_path) -> Iterator[d2.SessionManager]:
    """A SessionManager on a home of the test's own; its notifier and agent stop afterwards."""
    home = tmp_path / "home"
    manager = d2.SessionManager(home=home)
    yield manager
    manager._notifier_stop.set()
    AgentClient.for_home(home).close()


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    """An isolated store (not created yet) for tests that run programs on it, such as the
    drmaa2 command; whatever a test leaves running there is ended and reaped afterwards."""
    home = tmp_path / "home"
    yield home
    if (home / "store.sqlite").exists():
        with d2.SessionManager(home=home) as sm:
            for name in sm.job_session_names:
                with sm.open_job_session(name) as js:
                    end_and_reap(js)
    AgentClient.for_home(home).close()


@pytest.fixture
def js(sm: d2.SessionManager, target: Target) -> Iterator[d2.JobSession]:
    """A job session on the module's ``target``; whatever a test leaves is ended and reaped."""
    session = sm.create_job_session(target.name, contact=target.contact)
    yield session
    end_and_reap(session)
    session.close()


def sh(script: str, **fields: Any) -> d2.JobTemplate:
    """A template running a /bin/sh script on the process tracker (``Target.sh`` of process)."""
    return TARGETS["process"].sh(script, **fields)


def end_and_reap(session: d2.JobSession) -> None:
    """Terminate whatever a test left running in the session, wait for it, reap every job."""
    jobs = session.get_jobs()
    for j in jobs:
        with contextlib.suppress(d2.Drmaa2Error):
            if not j.state.is_terminal:
                j.terminate()
    with contextlib.suppress(d2.Drmaa2Error):
        if jobs:
            session.wait_all_terminated(jobs, 30)
    for j in jobs:
        with contextlib.suppress(d2.Drmaa2Error):
            j.reap()
