"""Test set-up: which trackers run, and turning a missing engine into a failure in CI.

``PYDRMAA2_REQUIRE=process,docker,...`` (set by .ci/run) makes a tracker whose engine is not
available fail instead of skip.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import pytest

import pydrmaa2 as d2
from pydrmaa2._agent import AgentClient
from pydrmaa2.testing.targets import TARGETS, Target
from pydrmaa2.trackers import tracker_class

os.environ.setdefault("PYDRMAA2_AGENT_IDLE", "5")

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
                tracker_class(name)
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


@pytest.fixture
def sm(tmp_path) -> Iterator[d2.SessionManager]:
    """A SessionManager on a home of the test's own; its notifier and agent stop afterwards."""
    home = tmp_path / "home"
    manager = d2.SessionManager(home=home)
    yield manager
    manager._notifier_stop.set()
    AgentClient.for_home(home).close()


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
