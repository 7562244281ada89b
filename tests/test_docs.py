"""The documentation is true: every code block of docs/ runs, and the site builds with --strict.

Each page's ```python blocks run in order in one namespace (```sh blocks in bash, with the
venv's ``drmaa2`` on PATH), in a temporary directory and a store of their own (PYDRMAA2_HOME).
An HTML comment right before a block (a blank line between is allowed) qualifies it:

- ``<!-- requires: docker -->``: the block runs only where that tracker's engine is available
  (as tests/conftest.py's ``require`` decides; PYDRMAA2_REQUIRE turns a missing one into a
  failure); ``drmaa-v1`` stands for drmaa-python over pydrmaa2's libdrmaa (``pydrmaa2.drmaa1``).
- ``<!-- run: own-process -->``: the python block runs as a program of its own (a new
  interpreter), as "another program" in the text it illustrates.
- ``<!-- file: NAME -->``: the block is a file that later blocks use: it is written to NAME in
  the page's directory (a python file is also compiled), not run.
- ``<!-- skip: REASON -->``: an ```sh block that must not run here (it provisions the machine
  or serves forever); never allowed on a python block.

A python block whose requirement is not met is still compiled.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import pydrmaa2 as d2
from pydrmaa2.agent import AgentClient

from .conftest import REQUIRED, end_and_reap, unavailable

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
MARKS = {"requires", "run", "skip", "file"}
BLOCK = re.compile(
    r"(?P<marks>(?:^<!-- [a-z-]+:[^\n]*?-->\n\n?)*)^```(?P<lang>[a-z]*)[^\n]*\n(?P<code>.*?)^```[ \t]*$",
    re.M | re.S)
MARK = re.compile(r"<!-- ([a-z-]+):\s*(.*?)\s*-->")
RUNNABLE = {"python", "sh"}
#: Fences that show text, not code to run (a command's output, a file's format).
SHOWN = {"text", "console", "toml", "yaml", "ini"}


@dataclass
class Block:
    page: str
    line: int
    lang: str
    code: str
    requires: list[str] = field(default_factory=list)
    own_process: bool = False
    skip: str | None = None
    file: str | None = None


def blocks(page: Path) -> list[Block]:
    """The fenced code blocks of a page, with their markers."""
    text = page.read_text()
    out = []
    for m in BLOCK.finditer(text):
        line = text.count("\n", 0, m.start("code"))  # 1-based line of the first code line - 1
        marks = dict(MARK.findall(m.group("marks")))
        unknown = set(marks) - MARKS
        where = f"{page.relative_to(DOCS)}:{line}"
        assert not unknown, f"{where}: unknown marker(s) {sorted(unknown)}"
        lang = m.group("lang")
        assert lang in RUNNABLE | SHOWN, f"{where}: a fence names its language (python, sh, text, ...)"
        block = Block(str(page.relative_to(DOCS)), line, lang, m.group("code"),
                      requires=[r.strip() for r in marks.get("requires", "").split(",") if r.strip()],
                      own_process=marks.get("run") == "own-process", skip=marks.get("skip"),
                      file=marks.get("file"))
        assert marks.get("run") in (None, "own-process"), f"{where}: run: {marks['run']!r}"
        assert not (block.skip is not None and lang == "python"), f"{where}: python blocks always run"
        assert block.skip is None or block.skip, f"{where}: skip needs a reason"
        assert block.file is None or (block.file and "/" not in block.file and not block.requires), \
            f"{where}: file: a plain file name, on a block that needs nothing"
        out.append(block)
    return out


PAGES = sorted(p for p in DOCS.rglob("*.md")
               if any(b.lang in RUNNABLE or b.file for b in blocks(p)))


def missing(requirement: str) -> str | None:
    """Why a requirement is not met here (None: it is)."""
    if requirement == "drmaa-v1":
        try:  # pydrmaa2's own libdrmaa (built on first use), unless one is named already
            if not os.environ.get("DRMAA_LIBRARY_PATH"):
                from pydrmaa2.drmaa1 import library_path

                os.environ["DRMAA_LIBRARY_PATH"] = str(library_path())
            import drmaa  # noqa: F401 - drmaa-python loads a DRMAA v1 library on import
        except Exception as e:  # noqa: BLE001 - any failure means no usable DRMAA v1 here
            return f"drmaa-python with a DRMAA v1 library is not available ({e})"
        return None
    return unavailable(requirement)


def test_every_page_with_code_is_found():
    assert DOCS / "getting-started.md" in PAGES
    assert all(b.lang in RUNNABLE | SHOWN for p in DOCS.rglob("*.md") for b in blocks(p))


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(DOCS)))
def test_the_code_of_the_page_runs(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    home = tmp_path / "home"
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.setenv("PYDRMAA2_HOME", str(home))
    monkeypatch.delenv("PYDRMAA2_SESSION", raising=False)
    monkeypatch.delenv("PYDRMAA2_CONTACT", raising=False)
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.chdir(work)
    namespace: dict[str, object] = {"__name__": "__docs__"}
    not_run: list[str] = []
    try:
        for b in blocks(page):
            if b.file is not None:
                (work / b.file).write_text(b.code)
                if b.lang == "python":
                    compile(b.code, str(DOCS / b.page), "exec")
                continue
            if b.lang not in RUNNABLE:
                continue
            where = f"{b.page}:{b.line + 1}"
            if b.skip is not None:
                not_run.append(f"{where} ({b.skip})")
                continue
            reasons = {r: missing(r) for r in b.requires}
            unmet = {r: why for r, why in reasons.items() if why is not None}
            for r, why in unmet.items():
                if r in REQUIRED:
                    pytest.fail(f"{where} needs {r!r}, required (PYDRMAA2_REQUIRE) but unavailable: {why}")
            if unmet:
                if b.lang == "python":
                    compile("\n" * b.line + b.code, str(DOCS / b.page), "exec")
                not_run.append(f"{where} (needs {', '.join(unmet)})")
                continue
            run(b, namespace)
    finally:
        clean_up(home, namespace)
    if not_run:
        pytest.skip("ran the rest; not run: " + "; ".join(not_run))


def run(b: Block, namespace: dict[str, object]) -> None:
    """Run one block: python in the page's namespace (or its own process), sh in bash."""
    where = f"{b.page}:{b.line + 1}"
    if b.lang == "python" and not b.own_process:
        exec(compile("\n" * b.line + b.code, str(DOCS / b.page), "exec"), namespace)  # noqa: S102
        return
    argv = ([sys.executable, "-c", b.code] if b.lang == "python"
            else ["bash", "-euo", "pipefail", "-c", b.code])
    r = subprocess.run(argv, capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, f"{where} exited {r.returncode}\n{r.stdout}\n{r.stderr}"


def clean_up(home: Path, namespace: dict[str, object]) -> None:
    """End whatever the page left running, stop its notifiers and its agent."""
    for value in namespace.values():
        if isinstance(value, d2.SessionManager):
            value.close()
    if (home / "store.sqlite").exists():
        with d2.SessionManager(home=home) as sm:
            for name in sm.job_session_names:
                with contextlib.suppress(d2.Drmaa2Error), sm.open_job_session(name) as js:
                    end_and_reap(js)
    AgentClient.for_home(home).close()


def test_the_site_builds_strictly(tmp_path: Path):
    try:
        import mkdocs  # noqa: F401
        import mkdocstrings  # noqa: F401
    except ImportError as e:
        if os.environ.get("PYDRMAA2_REQUIRE"):
            pytest.fail(f"the docs tools are required in CI but not installed: {e}")
        pytest.skip(f"the docs tools are not installed ({e}): pip install -e '.[docs]'")
    site = tmp_path / "site"
    r = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(ROOT / "mkdocs.yml"),
                        "-d", str(site)], capture_output=True, text=True, timeout=600,
                       env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert r.returncode == 0, r.stderr[-5000:]
    trackers = (site / "trackers" / "index.html").read_text()
    assert "JobTemplate field" in trackers  # the generated field table is there
    for page in site.rglob("*.html"):
        assert "<!-- fields" not in page.read_text(), f"{page}: a marker was not filled"
