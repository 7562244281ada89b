"""What each built-in tracker honours, from the trackers' own declarations (never written by hand).

``field_table()`` is the README's field table (and the docs'): one row per JobTemplate field, one
column per tracker, each cell read from the tracker class's ``supported_fields`` and from what the
generic layer keeps for every tracker (``_book.TIMED_FIELDS``). ``python -m pydrmaa2._fields
--write README.md`` rewrites the table between its markers; ``--check`` fails when it drifted.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from ._book import TIMED_FIELDS
from .templates import JobTemplate
from .trackers import BUILTIN, JobTracker, tracker_class

BEGIN, END = "<!-- fields:begin (python -m pydrmaa2._fields --write README.md) -->", "<!-- fields:end -->"


def honoured(cls: JobTracker | type[JobTracker], name: str) -> str:
    """How a tracker honours a JobTemplate field: by its engine, by pydrmaa2's agent, or not."""
    if name in cls.supported_fields:
        return "engine"
    if name in TIMED_FIELDS:
        return "agent"
    return ""


def field_table(schemes: list[str] | None = None) -> str:
    """The markdown table of JobTemplate fields by tracker."""
    # The remote tracker (drmaa2+...) honours what its server's tracker does: no column of its own.
    schemes = schemes or [s for s in BUILTIN if not s.startswith("drmaa2+")]
    classes = [tracker_class(s) for s in schemes]
    words = {"engine": "yes", "agent": "yes (agent)", "": "no"}
    lines = ["| JobTemplate field | " + " | ".join(f"`{s}`" for s in schemes) + " |",
             "| --- |" + " --- |" * len(schemes)]
    for f in dataclasses.fields(JobTemplate):
        lines.append(f"| `{f.name}` | " + " | ".join(words[honoured(c, f.name)] for c in classes)
                     + " |")
    return "\n".join(lines)


def _splice(text: str, table: str) -> str:
    head, sep, rest = text.partition(BEGIN)
    if not sep or END not in rest:
        raise SystemExit(f"the README has no {BEGIN} ... {END} markers")
    return f"{head}{BEGIN}\n{table}\n{END}{rest.partition(END)[2]}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m pydrmaa2._fields", description=__doc__)
    p.add_argument("--write", type=Path, help="rewrite the table in this file")
    p.add_argument("--check", type=Path, help="exit 1 when this file's table has drifted")
    a = p.parse_args(argv)
    table = field_table()
    if a.write:
        a.write.write_text(_splice(a.write.read_text(), table))
    elif a.check:
        text = a.check.read_text()
        if _splice(text, table) != text:
            sys.stderr.write(f"{a.check}: the field table is not what the trackers declare; "
                             f"run python -m pydrmaa2._fields --write {a.check}\n")
            return 1
    else:
        sys.stdout.write(table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
