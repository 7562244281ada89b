"""Reading output files (pydrmaa2._logs): tails, partial lines, followed files, bad arguments."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

import pydrmaa2 as d2
from pydrmaa2 import _logs


@pytest.mark.parametrize("content, n, expected", [
    (b"a\nb\nc\n", 1, b"c\n"),
    (b"a\nb\nc\n", 2, b"b\nc\n"),
    (b"a\nb\nc", 1, b"c"),
    (b"a\nb\nc", 5, b"a\nb\nc"),
    (b"", 3, b""),
    (b"a\nb\n", 0, b""),
    (b"\n\n\n", 2, b"\n\n"),
])
def test_last_lines_offset(tmp_path: Path, content: bytes, n: int, expected: bytes) -> None:
    f = tmp_path / "f"
    f.write_bytes(content)
    assert content[_logs.last_lines_offset(f, n):] == expected


def test_last_lines_of_a_file_larger_than_a_block(tmp_path: Path) -> None:
    f = tmp_path / "f"
    f.write_bytes(b"".join(b"line %d\n" % i for i in range(100_000)))
    assert list(_logs.read_lines(f, follow=False, tail=3, ended=lambda: True)) == \
        ["line 99997\n", "line 99998\n", "line 99999\n"]


def test_lines_keep_their_newline_and_a_last_partial_line_comes_at_the_end(tmp_path: Path) -> None:
    f = tmp_path / "f"
    f.write_bytes(b"\xc3\xa9\nbad \xff byte\nno newline")
    assert list(_logs.read_lines(f, follow=False, tail=None, ended=lambda: True)) == \
        ["é\n", "bad \ufffd byte\n", "no newline"]


def test_a_character_split_across_reads_is_decoded_whole(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_logs, "CHUNK", 1)
    f = tmp_path / "f"
    f.write_bytes("žluť\n".encode())
    assert list(_logs.read_lines(f, follow=False, tail=None, ended=lambda: True)) == ["žluť\n"]


def test_follow_waits_for_the_file_and_for_what_is_written_until_the_end(tmp_path: Path) -> None:
    f = tmp_path / "f"
    done = threading.Event()

    def writer() -> None:
        time.sleep(0.3)
        with open(f, "w") as out:
            out.write("one\n")
            out.flush()
            time.sleep(0.5)
            out.write("two\nthr")
            out.flush()
            time.sleep(0.3)
            out.write("ee\n")
        done.set()

    threading.Thread(target=writer).start()
    seen = []
    for line in _logs.read_lines(f, follow=True, tail=None, ended=done.is_set):
        seen.append((line, done.is_set()))
    assert [s[0] for s in seen] == ["one\n", "two\n", "three\n"]
    assert seen[0][1] is False  # the first line came while the writer was still writing


def test_output_arguments_are_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYDRMAA2_HOME", str(tmp_path / "home"))
    sm = d2.SessionManager()
    with sm.create_job_session("logs") as js:
        job = js.run_job(d2.JobTemplate(remote_command="/bin/true"))
        for bad in (-1, "3", 1.5, True):
            with pytest.raises(d2.InvalidArgumentError, match="tail"):
                job.output(tail=bad)  # type: ignore[arg-type]
        with pytest.raises(d2.InvalidArgumentError, match="follow"):
            job.output(follow="yes")  # type: ignore[arg-type]
        joined = js.run_job(d2.JobTemplate(remote_command="/bin/true", join_files=True))
        with pytest.raises(d2.InvalidArgumentError, match="join_files"):
            joined.error()
        js.wait_all_terminated([job, joined], timeout=60)
        job.reap()
        joined.reap()
        assert not any((tmp_path / "home" / "output").iterdir())  # reaping deletes kept output
