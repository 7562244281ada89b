"""The layers import downwards only: trackers never import sessions, the store never trackers."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "pydrmaa2"


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level:
            out.add("." * node.level + (node.module or ""))
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return out


def test_tracker_base_imports_nothing_above_it():
    above = {"..session", "..jobs", "..cli", "..drmaa2", ".._store", "pydrmaa2.session"}
    assert not _imports(SRC / "trackers" / "base.py") & above


def test_store_knows_no_tracker():
    assert not any("tracker" in m for m in _imports(SRC / "_store.py"))


def test_only_the_cli_prints():
    for path in SRC.rglob("*.py"):
        if "cli" in path.parts or "testing" in path.parts:
            continue
        tree = ast.parse(path.read_text())
        calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)
                 and getattr(n.func, "id", None) == "print"]
        assert not calls, f"{path} prints"


#: The session layer: what a program holds (sessions, jobs, arrays) and what stands above it.
SESSION_LAYER = {"session", "jobs", "cli", "drmaa2", "drmaa1", "aio"}


def _resolved(path: Path, module: str) -> str:
    """An import of ``path`` as a dotted name inside pydrmaa2 ('' when outside it)."""
    if module.startswith("pydrmaa2."):
        return module[len("pydrmaa2."):]
    if not module.startswith("."):
        return ""
    level = len(module) - len(module.lstrip("."))
    package = list(path.relative_to(SRC).parent.parts)
    base = package[:len(package) - (level - 1)] if level > 1 else package
    rest = module.lstrip(".")
    return ".".join([*base, rest] if rest else base)


def test_trackers_the_agent_and_the_store_never_import_the_session_layer():
    """Every module below the sessions (trackers, agent, its services, store, book) imports
    nothing of the session layer, not even inside a function."""
    below = [p for p in SRC.rglob("*.py")
             if p.relative_to(SRC).parts[0] not in {"session.py", "jobs.py", "__init__.py",
                                                    "cli", "drmaa2", "drmaa1", "testing", "aio", "serve",
                                                    "__main__.py"}]
    assert any(p.name == "agent.py" for p in below) and any(p.name == "process.py" for p in below)
    for path in below:
        for module in _imports(path):
            top = _resolved(path, module).split(".")[0]
            assert top not in SESSION_LAYER, f"{path.relative_to(SRC)} imports {module}"
