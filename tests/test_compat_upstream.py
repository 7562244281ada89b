"""uge-drmaa2's own test suite (tests/compat_examples/upstream_tests, changed only in the imports),
run by pytest on each tracker with a store per file: every test passes, except where pydrmaa2
differs from uge-drmaa2 on purpose or the tracker cannot do it (``expected``)."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

import pydrmaa2 as d2
from pydrmaa2 import trackers
from tests.conftest import require, unavailable
from tests.test_compat import EXAMPLES_DIR, PARALLEL, REPO, TRACKERS, tracker_env

SUITE_DIR = EXAMPLES_DIR / "upstream_tests"
FILES = sorted(p.stem for p in SUITE_DIR.glob("test_*.py"))
#: Files changed beyond their imports, each with a "pydrmaa2 port:" comment (see INDEX.md).
CHANGED = {"test_notification"}
#: Files that reserve: on Slurm after the others, which run jobs (Slurm reserves idle nodes only).
RESERVING = {"test_reservation_info", "test_reservation_template"}

#: An outcome: 'passed', or 'failed'/'skipped' with a pattern its message must match.
Outcome = tuple[str, str]
PASSED: Outcome = ("passed", "")


def expected(tracker: str, file: str, test: str) -> Outcome:
    """What uge-drmaa2's ``file::test`` must do on ``tracker``."""
    caps = trackers.tracker_class(tracker).capabilities
    if test == "test_get_implementation_specific_keys":
        # Implementation-specific values are pydrmaa2's open-ended extensions: no fixed key list.
        return ("failed", r"^assert 0 > 0")
    if test.endswith("_from_reservation") and d2.Capability.ADVANCE_RESERVATION not in caps:
        return ("failed", rf"UnsupportedOperation: the '{tracker}' tracker cannot make advance")
    if test == "test_register_event_callback" and d2.Capability.CALLBACK not in caps:
        return ("skipped", "Not yet implemented optional feature")  # upstream's own skip
    return PASSED


def functions_in(file: str) -> list[str]:
    """The test functions of a ported file, as pytest collects them."""
    tree = ast.parse((SUITE_DIR / f"{file}.py").read_text())
    return [n.name for n in tree.body if isinstance(n, ast.FunctionDef) and n.name.startswith("test")]


class SuiteRuns:
    """Runs ported test files under pytest as subprocesses (one store each), many at once."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.pools: dict[str, ThreadPoolExecutor] = {}
        self.runs: dict[tuple[str, str], Future[tuple[dict[str, Outcome], str]]] = {}

    def start(self, tracker: str, file: str) -> None:
        if (tracker, file) not in self.runs:
            pool = self.pools.setdefault(tracker, ThreadPoolExecutor(PARALLEL[tracker]))
            self.runs[tracker, file] = pool.submit(self._run, tracker, file)

    def result(self, tracker: str, file: str) -> tuple[dict[str, Outcome], str]:
        self.start(tracker, file)
        return self.runs[tracker, file].result()

    def _run(self, tracker: str, file: str) -> tuple[dict[str, Outcome], str]:
        work = self.tmp / tracker / file
        work.mkdir(parents=True)
        report = work / "junit.xml"
        # --confcutdir: the suite's own conftest only, not the repository's (which ignores the suite).
        p = subprocess.run(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--confcutdir",
             str(SUITE_DIR), f"--junitxml={report}", str(SUITE_DIR / f"{file}.py")],
            cwd=REPO, env=tracker_env(tracker, work / "home"), capture_output=True, text=True,
            timeout=600)
        outcomes: dict[str, Outcome] = {}
        if report.exists():
            for case in ET.parse(report).iter("testcase"):
                found = [c for c in case if c.tag in ("failure", "error", "skipped")]
                outcomes[case.get("name", "")] = (
                    ("failed" if found[0].tag != "skipped" else "skipped", found[0].get("message", ""))
                    if found else PASSED)
        return outcomes, f"stdout:\n{p.stdout}\nstderr:\n{p.stderr}"

    def close(self) -> None:
        for pool in self.pools.values():
            pool.shutdown(cancel_futures=True)


@pytest.fixture(scope="module")
def suite_runs(request: pytest.FixtureRequest,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[SuiteRuns]:
    """Starts every selected file on every available tracker at once, reservations last."""
    runs = SuiteRuns(tmp_path_factory.mktemp("compat-upstream"))
    wanted = [item.callspec.params for item in request.session.items
              if getattr(item, "originalname", "") == "test_upstream_test_file_runs"]
    for params in sorted(wanted, key=lambda p: p["file"] in RESERVING):
        if unavailable(params["tracker"]) is None:
            runs.start(params["tracker"], params["file"])
    yield runs
    runs.close()


@pytest.mark.slow
@pytest.mark.parametrize("file", FILES)
@pytest.mark.parametrize("tracker", TRACKERS)
def test_upstream_test_file_runs(tracker: str, file: str, suite_runs: SuiteRuns) -> None:
    require(tracker)
    outcomes, report = suite_runs.result(tracker, file)
    assert set(outcomes) == set(functions_in(file)), f"not every test ran\n{report}"
    for test, (outcome, message) in outcomes.items():
        want, pattern = expected(tracker, file, test)
        assert outcome == want and re.search(pattern, message), (
            f"{file}::{test}: {outcome} {message!r}, expected {want} {pattern!r}\n{report}")


def test_upstream_tests_differ_from_upstream_only_in_their_imports():
    for path in SUITE_DIR.glob("test_*.py"):
        lines = path.read_text().splitlines()
        imports = [line for line in lines if "drmaa2" in line and "import" in line]
        assert imports and all("pydrmaa2.drmaa2" in line for line in imports), path.name
        changes = [n for n, line in enumerate(lines) if "pydrmaa2 port:" in line]
        assert len(changes) <= (path.stem in CHANGED), path.name  # and each says why
    assert set(FILES) >= CHANGED | RESERVING
    # uge-drmaa2's module layout is what these files needed: drmaa2.drmaa2_constants
    assert any("from pydrmaa2.drmaa2.drmaa2_constants import POSIX_EPOCH" in p.read_text()
               for p in SUITE_DIR.glob("test_*.py"))
