"""pydrmaa2's distributions: what the sdist and the wheel hold, and what each extra installs.

The wheel is installed into a fresh virtualenv of its own for each extra (none, docker, podman,
containerd, drmaa1, serve), as a user does with ``pip install 'pydrmaa2[docker]'``. Each must then hold
exactly pydrmaa2, its base requirements, the extra's requirements and what those require in turn:
everything the extra's tracker needs, nothing it does not. There the extra's tracker loads, and
the trackers of the other extras fail with the hint naming their extra.

The distributions are scripts/test.sh's (``PYDRMAA2_WHEEL``, ``PYDRMAA2_SDIST``); without them
this checkout is built into a temporary directory (``python -m build``: the dev extra's ``build``
and the package index pip is configured with).
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import tarfile
import time
import zipfile
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from email.parser import Parser
from pathlib import Path
from typing import Any

import pytest

packaging_requirements = pytest.importorskip("packaging.requirements", reason="pip install packaging")
packaging_utils = pytest.importorskip("packaging.utils")
Requirement = packaging_requirements.Requirement
canon = packaging_utils.canonicalize_name

CHECKOUT = Path(__file__).resolve().parents[1]
IN_CI = bool(os.environ.get("PYDRMAA2_REQUIRE") or os.environ.get("PYDRMAA2_TEST_INSTALLED"))

#: What ``pip install pydrmaa2`` brings (distribution names).
BASE = {"psutil", "rich"}
#: What each extra brings: its tracker's client library, and what the modules that only its users
#: import import themselves (requests and urllib3 for the errors the container trackers catch).
EXTRAS = {
    "docker": {"docker", "requests", "urllib3"},
    "podman": {"podman", "requests", "urllib3"},
    "containerd": {"grpcio", "protobuf"},
    "drmaa1": {"cffi"},
    # drmaa2 serve (an ASGI app served by uvicorn) and the remote tracker (an HTTP client).
    "serve": {"starlette", "uvicorn", "httpx", "httptools", "uvloop"},
}
#: Extras for people, not trackers: everything, and the tools to develop and document pydrmaa2.
OTHER_EXTRAS = {"all", "dev", "docs"}
#: The modules (paths in the wheel, a directory ending in /) that only an extra's users import.
EXTRA_MODULES = {
    "docker": ("pydrmaa2/trackers/docker.py",),
    "podman": ("pydrmaa2/trackers/podman.py",),
    "containerd": ("pydrmaa2/trackers/containerd/",),
    "drmaa1": ("pydrmaa2/drmaa1/",),
    "serve": ("pydrmaa2/serve/", "pydrmaa2/trackers/remote.py"),
}
#: Modules for another project's test suite: they may import what it runs under.
TEST_SUPPORT = {"pydrmaa2/testing/conformance.py": {"pytest"}}
#: Every tracker the wheel registers, and the extra each needs (None: none).
TRACKERS = {"process": None, "slurm": None, "docker": "docker", "podman": "podman",
            "containerd": "containerd", "drmaa2+unix": "serve", "drmaa2+https": "serve",
            "drmaa2+http": "serve"}
#: The checkout's files that are not in the sdist: CI's entry point and git's own.
NOT_IN_SDIST = (".ci/", ".gitignore")
#: What no distribution may hold: build output and caches.
JUNK_PARTS = {"__pycache__", ".git", ".ruff_cache", ".pytest_cache", ".mypy_cache", ".hypothesis",
              ".venv", "dist", "build", "site"}
JUNK_SUFFIXES = (".pyc", ".pyo", ".so", ".o")

#: Run in each virtualenv: its distributions, which of them provide which modules, the trackers.
PROBE = """
import importlib.metadata as md, json
from pydrmaa2.errors import Drmaa2Error
from pydrmaa2.trackers import available_schemes, tracker_class
trackers = {}
for scheme in available_schemes():
    try:
        trackers[scheme] = tracker_class(scheme).__module__
    except Drmaa2Error as e:
        trackers[scheme] = f"{type(e).__name__}: {e}"
print(json.dumps({"dists": {d.metadata["Name"]: d.requires or [] for d in md.distributions()},
                  "modules": md.packages_distributions(), "trackers": trackers}))
"""
#: Run in the base virtualenv: a job on the process tracker (its fork server is compiled from the
#: installed package's C source into the cache directory).
A_JOB = """
import sys
import pydrmaa2 as d2
from pydrmaa2.agent import AgentClient
home = sys.argv[1]
try:
    with d2.SessionManager(home=home) as sm:
        js = sm.create_job_session("packaging")
        job = js.run_job(d2.JobTemplate(remote_command="/bin/sh", args=["-c", "exit 7"]))
        info = job.wait_terminated(timeout=60)
        print(info.state.name, info.exit_status)
finally:
    AgentClient.for_home(home).close()
"""


def _junk(name: str) -> bool:
    return bool(set(name.split("/")) & JUNK_PARTS) or name.endswith(JUNK_SUFFIXES)


def tracked_files() -> list[str]:
    """The checkout's files as git tracks them, else all those of the directories an sdist holds."""
    git = subprocess.run(["git", "-C", str(CHECKOUT), "ls-files", "-z"], capture_output=True)
    if git.returncode == 0 and git.stdout:
        return [f for f in git.stdout.decode().split("\0") if f and (CHECKOUT / f).is_file()]
    return [f for f in _files(CHECKOUT) if ".egg-info/" not in f and f not in ("PKG-INFO", "setup.cfg")]


def _files(root: Path) -> list[str]:
    """The files under ``root`` (relative paths), less build output and caches."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")
                  if p.is_file() and not _junk(str(p.relative_to(root))))


@pytest.fixture(scope="module")
def dists(tmp_path_factory) -> tuple[Path, Path]:
    """(wheel, sdist): scripts/test.sh's, else built from this checkout now."""
    wheel, sdist = os.environ.get("PYDRMAA2_WHEEL"), os.environ.get("PYDRMAA2_SDIST")
    if wheel and sdist:
        assert Path(wheel).is_file() and Path(sdist).is_file(), (wheel, sdist)
        return Path(wheel), Path(sdist)
    try:
        import build  # noqa: F401
    except ImportError:
        if IN_CI:
            pytest.fail("building the distributions needs the build package (the dev extra)")
        pytest.skip("building the distributions needs the build package: pip install build")
    out = tmp_path_factory.mktemp("dist")
    r = subprocess.run([sys.executable, "-m", "build", "--outdir", str(out), str(CHECKOUT)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    (wheel_path,), (sdist_path,) = out.glob("pydrmaa2-*.whl"), out.glob("pydrmaa2-*.tar.gz")
    return wheel_path, sdist_path


def wheel_metadata(wheel: Path) -> Any:
    with zipfile.ZipFile(wheel) as z:
        (name,) = (n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        return Parser().parsestr(z.read(name).decode())


def requirements(wheel: Path) -> dict[str, set[str]]:
    """The names of the wheel's requirements by extra ("": the base ones)."""
    meta = wheel_metadata(wheel)
    out: dict[str, set[str]] = {}
    reqs = [Requirement(line) for line in meta.get_all("Requires-Dist", [])]
    for extra in ["", *meta.get_all("Provides-Extra", [])]:
        out[extra] = {canon(r.name) + (f"[{','.join(sorted(r.extras))}]" if r.extras else "") for r in reqs
                      if _applies(r, extra) and (not extra or not _applies(r, ""))}
    return out


def _applies(req: Any, extra: str) -> bool:
    """Whether ``req`` is required here by pydrmaa2 installed with ``extra`` ("": none)."""
    return req.marker is None or req.marker.evaluate({"extra": extra})


# -- what the distributions hold ---------------------------------------------------------------


def test_the_wheel_requires_what_each_extra_is_for(dists):
    reqs = requirements(dists[0])
    assert set(reqs) == {"", *EXTRAS, *OTHER_EXTRAS}
    assert reqs[""] == BASE
    for extra, names in EXTRAS.items():
        assert reqs[extra] == names, extra
    assert reqs["all"] == {f"pydrmaa2[{','.join(sorted(EXTRAS))}]"}
    assert {"build", "pytest"} <= reqs["dev"]


def test_the_wheel_holds_the_package_and_its_data_files(dists):
    with zipfile.ZipFile(dists[0]) as z:
        names = [n for n in z.namelist() if not n.endswith("/")]
        entry_points = z.read(next(n for n in names if n.endswith(".dist-info/entry_points.txt")))
    package = {n for n in names if not n.split("/")[0].endswith(".dist-info")}
    # the checkout's package, every file (tracked or not) but caches and build output
    assert package == {f"pydrmaa2/{f}" for f in _files(CHECKOUT / "src" / "pydrmaa2")}
    # What the package reads beside its code at run time, and the type marker.
    data = {"pydrmaa2/py.typed", "pydrmaa2/drmaa1/drmaa.h", "pydrmaa2/trackers/_spawn.c",
            "pydrmaa2/trackers/slurm/batch.sh", "pydrmaa2/serve/static/index.html"}
    # the dashboard drmaa2 serve serves: its page and whatever the page loads beside it
    data |= {n for n in package if n.startswith("pydrmaa2/serve/static/")}
    assert data <= package
    assert {n for n in package if not n.endswith(".py")} == data, "a data file this test should name"
    assert not [n for n in names if _junk(n)]
    text = entry_points.decode()
    assert "drmaa2 = pydrmaa2.cli:main" in text
    for scheme in TRACKERS:
        assert f"\n{scheme} = pydrmaa2.trackers." in text, scheme


def test_the_sdist_holds_the_source_tree_less_ci(dists):
    with tarfile.open(dists[1]) as tar:
        members = [m.name for m in tar.getmembers() if m.isfile()]
    top = {m.split("/")[0] for m in members}
    assert len(top) == 1, top
    names = {m.split("/", 1)[1] for m in members}
    expected = {f for f in tracked_files() if not f.startswith(NOT_IN_SDIST)}
    assert not expected - names, "missing from the sdist (MANIFEST.in)"
    assert not [n for n in names if _junk(n) or n.startswith(NOT_IN_SDIST)]
    # The whole test suite, its data and the docs: a packager runs and builds them from the sdist.
    for f in ("tests/conftest.py", "tests/__init__.py", "tests/drmaa1/submit.c", "docs/hooks.py",
              "mkdocs.yml", "scripts/engines.sh", "scripts/test.sh", "README.md", "pyproject.toml"):
        assert f in names, f
    assert "PKG-INFO" in names


def _imports(source: str) -> set[str]:
    """The top-level names of the modules ``source`` imports when it runs, at any depth (not
    relative ones, nor those for type checkers only: under ``if TYPE_CHECKING:``)."""
    out: set[str] = set()
    todo: list[ast.AST] = [ast.parse(source)]
    while todo:
        node = todo.pop()
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            todo += node.orelse
            continue
        if isinstance(node, ast.Import):
            out.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            out.add(node.module.split(".")[0])
        todo += ast.iter_child_nodes(node)
    return out - set(sys.stdlib_module_names) - {"pydrmaa2", "__future__"}


def third_party_imports(wheel: Path) -> dict[str, dict[str, set[str]]]:
    """extra ("": the base) -> module path -> the third-party modules it imports."""
    out: dict[str, dict[str, set[str]]] = {"": {}, **{e: {} for e in EXTRAS}}
    with zipfile.ZipFile(wheel) as z:
        for name in z.namelist():
            if name.endswith(".py") and name.startswith("pydrmaa2/") and name not in TEST_SUPPORT:
                extra = next((e for e, paths in EXTRA_MODULES.items() if name.startswith(paths)), "")
                if imported := _imports(z.read(name).decode()):
                    out[extra][name] = imported
            elif name in TEST_SUPPORT:
                assert _imports(z.read(name).decode()) <= TEST_SUPPORT[name], name
    return out


# -- what each extra installs ------------------------------------------------------------------


def _run(args: list[str], env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout)


def _install(wheel: Path, extra: str, where: Path) -> dict[str, Any]:
    """A fresh virtualenv with the wheel[extra] (pip from outside it: the venv holds pydrmaa2 and
    what it requires, nothing else), probed."""
    pip_env = {k: v for k, v in os.environ.items()
               if not k.startswith(("PYTHON", "PYDRMAA2_", "VIRTUAL_ENV"))}
    # What pydrmaa2 builds at run time (the fork server, libdrmaa) goes to a cache of this venv's.
    env = {**pip_env, "XDG_CACHE_HOME": str(where / "cache"), "PYTHONNOUSERSITE": "1",
           "PYDRMAA2_CACHE_DIR": str(where / "cache" / "pydrmaa2"), "PYDRMAA2_AGENT_IDLE": "2"}
    venv, start = where / "venv", time.monotonic()
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    spec = f"{wheel}[{extra}]" if extra else str(wheel)
    r = _run([sys.executable, "-m", "pip", "--python", python, "install", "-q",
              "--disable-pip-version-check", spec], pip_env)
    assert r.returncode == 0, f"pip install {spec}:\n{r.stdout}{r.stderr}"
    installed = time.monotonic()
    r = _run([python, "-c", PROBE], env, 60)
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    result["cache"] = str(where / "cache")
    result["libdrmaa"] = _run([str(venv / "bin" / "drmaa2"), "libdrmaa"], env)
    if not extra:
        result["job"] = _run([python, "-c", A_JOB, str(where / "home")], env, 120)
    result["seconds"] = (installed - start, time.monotonic() - installed)
    return result


@pytest.fixture(scope="module")
def venvs(dists, tmp_path_factory) -> Iterator[dict[str, Future[dict[str, Any]]]]:
    """extra -> its virtualenv's probe, all installed at once."""
    root = tmp_path_factory.mktemp("venvs")
    with ThreadPoolExecutor(3) as pool:
        yield {e: pool.submit(_install, dists[0], e, root / (e or "base")) for e in ("", *EXTRAS)}


def closure(dists: dict[str, list[str]], extra: str) -> set[str]:
    """The distributions ``pydrmaa2[extra]`` needs, by the requirements the installed ones declare."""
    by_name = {canon(n): reqs for n, reqs in dists.items()}
    needed: set[str] = set()
    done: set[tuple[str, str]] = set()
    todo = [("pydrmaa2", ""), ("pydrmaa2", extra)]
    while todo:
        name, wanted = todo.pop()  # wanted: one extra of it, "" for its base requirements
        if (name, wanted) in done:
            continue
        done.add((name, wanted))
        needed.add(name)
        assert name in by_name, f"{name} is required but not installed"
        for req in map(Requirement, by_name[name]):
            if req.marker is None or req.marker.evaluate({"extra": wanted}):
                todo += [(canon(req.name), e) for e in ("", *req.extras)]
    return needed


@pytest.mark.parametrize("extra", ["", *EXTRAS], ids=["base", *EXTRAS])
def test_an_extra_installs_what_its_tracker_needs_and_nothing_else(venvs, dists, extra):
    probe = venvs[extra].result()
    install, checks = probe["seconds"]
    print(f"[{extra}] venv and pip install: {install:.1f} s, checks: {checks:.1f} s")
    installed = {canon(n) for n in probe["dists"]}
    needed = closure(probe["dists"], extra)
    # exactly pydrmaa2, its base requirements, the extra's and what those require
    assert installed == needed
    assert BASE | EXTRAS.get(extra, set()) <= installed, "a requirement of pydrmaa2 is missing"
    # none of the other extras' requirements (e.g. no grpcio, cffi or podman with [docker])
    own = BASE | EXTRAS.get(extra, set())
    others = set().union(*(names for e, names in EXTRAS.items() if e != extra)) - own
    assert not others & installed, f"pydrmaa2[{extra}] installs another extra's requirements"
    # what the modules import, the wheel declares: the base modules' in the base, the extra's in it
    declared = requirements(dists[0])
    declared = declared[""] | declared.get(extra, set())
    modules = {m: {canon(d) for d in ds} for m, ds in probe["modules"].items()}
    for path, imported in third_party_imports(dists[0])[extra].items():
        for module in imported:
            assert modules.get(module, set()) & declared, (
                f"{path} imports {module}, which pydrmaa2[{extra}] does not require itself")
    # the trackers: the extra's loads, those of other extras say which extra to install
    for scheme, needs in TRACKERS.items():
        loaded = probe["trackers"][scheme]
        if needs in (None, extra):
            assert loaded.startswith("pydrmaa2.trackers."), f"{scheme} in [{extra}]: {loaded}"
        else:
            assert loaded.startswith("UnsupportedOperationError"), loaded
            assert f"pip install 'pydrmaa2[{needs}]'" in loaded, loaded
    # libdrmaa builds (cffi, a C compiler, Python's headers) only with the drmaa1 extra
    lib = probe["libdrmaa"]
    if extra == "drmaa1":
        assert lib.returncode == 0, lib.stderr
        path = Path(lib.stdout.strip())
        assert path.is_relative_to(probe["cache"]), path  # built now, in the cache
        assert path.is_file() and path.with_name("drmaa.h").is_file()
    else:
        assert lib.returncode != 0 and "pip install 'pydrmaa2[drmaa1]'" in lib.stderr, lib.stderr
    if not extra:
        job = probe["job"]
        assert (job.returncode, job.stdout) == (0, "FAILED 7\n"), job.stderr
