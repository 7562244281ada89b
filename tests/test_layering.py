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
