"""MkDocs hooks: the pages' tables come from the code, and the reference misses no docstring.

Markers a page may hold (each replaced by markdown before the page is converted):

- ``<!-- fields -->``, ``<!-- fields: docker -->``: ``pydrmaa2._fields.field_table`` (every
  built-in tracker, or the schemes named), read from the trackers' ``supported_fields``.
- ``<!-- declared: docker -->``: what the tracker class declares (contact options,
  capabilities, native hold and arrays, the agent, the array size limit).
- ``<!-- table: MODULE:NAME "KEY HEADING" "VALUE HEADING" [none="TEXT"] -->``: a mapping the
  code declares (a tracker's extensions, states, control operations), as a table.
- ``<!-- list: MODULE:NAME -->``: a set the code declares, as a list of names.
- ``<!-- conformance -->``: the behaviours of ``pydrmaa2.testing.conformance``, one per test.
- ``<!-- exports: MODULE -->``: the names of ``MODULE.__all__``, each linked to its reference.

A marker that names something the code no longer has fails the build: the page has drifted.
For every ``::: IDENTIFIER`` of a page, each public module, class, function, method, property
and exported constant it renders must have a docstring (its own, one inherited from the method it
overrides, or a ``#:`` comment); a name without one is a warning, which ``--strict`` makes fatal.
"""

from __future__ import annotations

import ast
import enum
import functools
import importlib
import logging
import re
import shlex
from pathlib import Path
from typing import Any

import yaml

log = logging.getLogger("mkdocs.hooks.pydrmaa2")

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"
MARKER = re.compile(r"^<!-- (fields|declared|table|list|conformance|exports)(?::\s*(.*?))? -->$", re.M)
DIRECTIVE = re.compile(r"^::: (\S+)\n((?:[ \t]+\S.*\n?)*)", re.M)
GRIFFE_EXTENSIONS = ("griffe_inherited_docstrings", "griffe_sphinx")
#: Public names that had no docstring when the check was written: reported at INFO level until
#: src documents them (then each must leave this list: one that has a docstring is a warning).
KNOWN_UNDOCUMENTED: frozenset[str] = frozenset()


class DocsError(Exception):
    """A marker that cannot be filled: it names something the code does not have."""


# -- markers ------------------------------------------------------------------------------------


def _cell(value: Any, none: str = "—") -> str:
    """One table cell: enums by name, sequences joined, pipes escaped."""
    if value is None:
        text = none
    elif isinstance(value, enum.Enum):
        text = value.name
    elif isinstance(value, (tuple, list)):
        text = " ".join(_cell(v) for v in value)
    elif isinstance(value, (set, frozenset)):
        text = ", ".join(sorted(_cell(v) for v in value))
    else:
        text = str(value)
    return text.replace("|", "\\|")


def _resolve(spec: str) -> Any:
    module_name, _, attr = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise DocsError(f"cannot import {module_name} ({e}); install pydrmaa2[all,docs]") from e
    try:
        return getattr(module, attr)
    except AttributeError:
        raise DocsError(f"{module_name} has no {attr} (the page has drifted from the code)") from None


def fields(arg: str | None) -> str:
    from pydrmaa2._fields import field_table

    schemes = arg.replace(",", " ").split() if arg else None
    return field_table(schemes)


def declared(scheme: str) -> str:
    from pydrmaa2._book import capabilities as supported
    from pydrmaa2.trackers import JobTracker, tracker_class

    cls = tracker_class(scheme.strip())
    options = ", ".join(f"`{o}`" for o in sorted(cls.contact_options)) or "none"
    capabilities = ", ".join(f"`{c.name}`" for c in sorted(supported(cls), key=lambda c: c.name))
    rows = [
        ("class", f"`{cls.__module__}.{cls.__qualname__}`"),
        ("contact options (`?key=value`)", options),
        ("capabilities (what `supports()` answers)", capabilities or "none"),
        ("hold kept by", "the engine" if cls.native_hold else "pydrmaa2 (the job waits in the store)"),
        ("arrays run by", "the engine" if cls.native_arrays
         else "pydrmaa2 (the submitter, then the agent, start the tasks)"),
        ("changes announced by", "pydrmaa2's agent (`agent_keys`)"
         if cls.agent_keys is not JobTracker.agent_keys else "the engine (`watch`)"),
        ("most tasks in one array", f"{cls.max_array_tasks:,}"),
    ]
    return "| declaration | value |\n| --- | --- |\n" + "\n".join(f"| {k} | {v} |" for k, v in rows)


def table(arg: str | None) -> str:
    words = shlex.split(arg or "")
    options = dict(w.split("=", 1) for w in words if "=" in w and not w.startswith('"'))
    positional = [w for w in words if "=" not in w]
    if len(positional) != 3:
        raise DocsError(f'table marker {arg!r}: want MODULE:NAME "KEY HEADING" "VALUE HEADING"')
    spec, key_heading, value_heading = positional
    value = _resolve(spec)
    none = options.get("none", "—")
    if not isinstance(value, dict):
        raise DocsError(f"{spec} is a {type(value).__name__}, not a dict")
    lines = [f"| {key_heading} | {value_heading} |", "| --- | --- |"]
    lines += [f"| `{_cell(k)}` | {_cell(v, none)} |" for k, v in value.items()]
    return "\n".join(lines)


def names(spec: str | None) -> str:
    value = _resolve((spec or "").strip())
    if not isinstance(value, (set, frozenset)):
        raise DocsError(f"{spec} is a {type(value).__name__}, not a set")
    return ", ".join(f"`{_cell(v)}`" for v in sorted(value, key=str))


def conformance(_: str | None) -> str:
    path = SRC / "pydrmaa2" / "testing" / "conformance.py"
    tree = ast.parse(path.read_text())
    names = [n.name for n in tree.body if isinstance(n, ast.FunctionDef) and n.name.startswith("test_")]
    if not names:
        raise DocsError(f"{path} defines no test")
    return "\n".join(f"- `{n}`: {n.removeprefix('test_').replace('_', ' ')}" for n in names)


def exports(module_name: str) -> str:
    module = _lookup(module_name.strip())
    lines = ["| name | defined in |", "| --- | --- |"]
    for name in sorted(module.exports or (), key=str.lower):
        member = module.members[name]
        target = _target(member) if member.is_alias else member
        path = target.path if target is not None else f"{module.path}.{name}"
        home = path.rpartition(".")[0]
        if target is not None and target.kind.value in ("class", "function"):
            lines.append(f"| [`{name}`][{path}] | `{home}` |")
        else:
            lines.append(f"| `{name}` | `{home}` |")
    return "\n".join(lines)


FILL = {"fields": fields, "declared": declared, "table": table, "list": names,
        "conformance": conformance, "exports": exports}


def fill_markers(markdown: str, where: str) -> str:
    """The page with each marker replaced by what it names."""
    def replace(m: re.Match[str]) -> str:
        try:
            return FILL[m.group(1)](m.group(2))
        except DocsError as e:
            raise DocsError(f"{where}: {m.group(0)}: {e}") from e

    return MARKER.sub(replace, markdown)


# -- docstrings ---------------------------------------------------------------------------------


@functools.cache
def _package(name: str) -> Any:
    import griffe

    return griffe.load(name, search_paths=[str(SRC)], docstring_parser=None,
                       extensions=griffe.load_extensions(*GRIFFE_EXTENSIONS), resolve_aliases=True,
                       resolve_external=False)


def _lookup(identifier: str) -> Any:
    package = _package(identifier.split(".")[0])
    rest = identifier.split(".", 1)[1] if "." in identifier else ""
    return package[rest] if rest else package


def _target(obj: Any) -> Any | None:
    """The object an alias points to, when it is pydrmaa2's (external ones are not ours)."""
    if not obj.is_alias:
        return obj
    try:
        target = obj.final_target
    except Exception:  # noqa: BLE001 - an alias griffe cannot resolve is not one of ours
        return None
    return target if target.path.startswith("pydrmaa2") else None


def undocumented(identifier: str, members: list[str] | bool | None = None) -> list[str]:
    """Public names rendered by ``::: identifier`` that have no docstring."""
    missing: list[str] = []
    seen: set[str] = set()

    def visit(obj: Any, depth: int, only: list[str] | bool | None) -> None:
        if obj.path in seen:
            return
        seen.add(obj.path)
        kind = obj.kind.value
        documented = obj.docstring is not None and obj.docstring.value.strip()
        shown = kind in ("module", "class", "function") or "property" in obj.labels or (
            kind == "attribute" and obj.parent is not None and obj.parent.is_module
            and obj.name in (obj.parent.exports or ()))
        if shown and not documented:
            missing.append(obj.path)
        if only is False or kind not in ("module", "class") or depth > 3:
            return
        # A class shows what it inherits from pydrmaa2's own classes too (inherited_members).
        members = obj.all_members if obj.is_class else obj.members
        for name, member in members.items():
            if isinstance(only, list) and name not in only:
                continue
            if member.is_alias and not member.inherited and not (
                    obj.is_module and name in (obj.exports or ())):
                continue
            if not member.is_public or name.startswith("_"):
                continue
            target = _target(member)
            if target is not None and not target.is_module:  # submodules are not rendered
                visit(target, depth + 1, None)

    visit(_lookup(identifier), 0, members)
    return missing


# -- MkDocs events ------------------------------------------------------------------------------


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    where = page.file.src_uri
    markdown = fill_markers(markdown, where)
    for m in DIRECTIVE.finditer(markdown):
        options = yaml.safe_load(m.group(2)) if m.group(2).strip() else {}
        members = ((options or {}).get("options") or {}).get("members")
        for path in undocumented(m.group(1), members):
            if path in KNOWN_UNDOCUMENTED:
                log.info("%s: %s is public and has no docstring (known)", where, path)
            else:
                log.warning("%s: %s is public and has no docstring", where, path)
    return markdown


def on_post_build(config: Any) -> None:
    stale = sorted(p for p in KNOWN_UNDOCUMENTED if _has_docstring(p))
    for path in stale:
        log.warning("%s has a docstring now: remove it from KNOWN_UNDOCUMENTED in docs/hooks.py", path)


def _has_docstring(path: str) -> bool:
    try:
        obj = _lookup(path)
    except KeyError:
        return False
    return bool(obj.docstring is not None and obj.docstring.value.strip())
