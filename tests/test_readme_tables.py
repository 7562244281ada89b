"""The README's tables that are generated from the code must be what the code says."""

from __future__ import annotations

from pathlib import Path

from pydrmaa2 import _fields

README = Path(__file__).resolve().parent.parent / "README.md"


def test_the_field_table_is_what_the_trackers_declare():
    assert _fields.main(["--check", str(README)]) == 0, (
        "run: python -m pydrmaa2._fields --write README.md")


def test_the_field_table_says_how_each_tracker_honours_a_field():
    table = _fields.field_table(["process", "slurm"])
    assert "| `start_time` | yes (agent) | yes |" in table
    assert "| `email` | no | yes |" in table
