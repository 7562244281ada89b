"""Unpacking an engine's archive of stage-out files (``containers.extract_archive``) with archives
made here, hostile ones included: nothing lands outside the destination, links are made as
links and never followed, device files are not made, set-id bits are dropped; and the
tracker's file of an older release gets the stage_out column."""

from __future__ import annotations

import io
import os
import sqlite3
import tarfile
from pathlib import Path

import pytest

from pydrmaa2.trackers.containers import ChunkReader, StageOutError, extract_archive


def _tar(*members: tuple[str, bytes | str | None, dict]) -> io.BytesIO:
    """An archive of (name, content, TarInfo fields) members; content None: no data."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, content, fields in members:
            info = tarfile.TarInfo(name)
            for key, value in fields.items():
                setattr(info, key, value)
            data = content.encode() if isinstance(content, str) else content
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    buf.seek(0)
    return buf


DIR = {"type": tarfile.DIRTYPE, "mode": 0o755}


def _symlink(target: str) -> dict:
    return {"type": tarfile.SYMTYPE, "linkname": target}


def test_a_file_archive_becomes_the_destination_file_written_whole(tmp_path):
    dest = tmp_path / "new" / "result.txt"
    extract_archive(_tar(("result.txt", "content\n", {"mode": 0o6755})), str(dest))
    assert dest.read_text() == "content\n"
    assert dest.stat().st_mode & 0o7777 == 0o755
    assert sorted(p.name for p in dest.parent.iterdir()) == ["result.txt"]  # no temporary left


def test_a_link_in_the_way_of_a_file_is_replaced_not_written_through(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("untouched\n")
    dest = tmp_path / "result.txt"
    dest.symlink_to(victim)
    extract_archive(_tar(("result.txt", "new\n", {})), str(dest))
    assert victim.read_text() == "untouched\n"
    assert not dest.is_symlink() and dest.read_text() == "new\n"


def test_a_link_in_the_archive_is_made_as_a_link(tmp_path):
    extract_archive(_tar(("out", None, DIR), ("out/abs", None, _symlink("/etc/passwd"))),
                    str(tmp_path / "out"))
    assert os.readlink(tmp_path / "out" / "abs") == "/etc/passwd"


def test_a_member_below_a_link_is_never_written_through_it(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    archive = _tar(("out", None, DIR), ("out/link", None, _symlink(str(outside))),
                   ("out/link/evil.txt", "escaped\n", {}))
    with pytest.raises(StageOutError):
        extract_archive(archive, str(tmp_path / "dest"))
    assert list(outside.iterdir()) == []


@pytest.mark.parametrize("name", ["/etc/evil", "out/../evil", "other/evil", "out/./evil"])
def test_names_outside_the_asked_for_path_are_refused(tmp_path, name):
    with pytest.raises(StageOutError, match="evil"):
        extract_archive(_tar(("out", None, DIR), (name, "x", {})), str(tmp_path / "dest"))
    assert not (tmp_path / "evil").exists() and not Path("/etc/evil").exists()


def test_a_hard_link_may_only_name_a_file_of_the_same_archive(tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("host secret\n")
    archive = _tar(("out", None, DIR),
                   ("out/stolen", None, {"type": tarfile.LNKTYPE, "linkname": "out/../../secret"}))
    with pytest.raises(StageOutError):
        extract_archive(archive, str(tmp_path / "dest"))
    assert not (tmp_path / "dest" / "stolen").exists()
    archive = _tar(("out", None, DIR), ("out/a", "same\n", {}),
                   ("out/b", None, {"type": tarfile.LNKTYPE, "linkname": "out/a"}))
    extract_archive(archive, str(tmp_path / "ok"))
    assert (tmp_path / "ok" / "b").read_text() == "same\n"


def test_device_files_and_fifos_are_not_made_and_are_named(tmp_path):
    archive = _tar(("out", None, DIR), ("out/null", None, {"type": tarfile.CHRTYPE,
                                                           "devmajor": 1, "devminor": 3}),
                   ("out/pipe", None, {"type": tarfile.FIFOTYPE}), ("out/plain", "kept\n", {}))
    with pytest.raises(StageOutError, match="null.*pipe"):
        extract_archive(archive, str(tmp_path / "dest"))
    assert sorted(p.name for p in (tmp_path / "dest").iterdir()) == ["plain"]


def test_a_directory_cannot_replace_a_file_destination(tmp_path):
    dest = tmp_path / "file"
    dest.write_text("mine\n")
    with pytest.raises(StageOutError, match="not a directory"):
        extract_archive(_tar(("out", None, DIR), ("out/a", "x", {})), str(dest))
    assert dest.read_text() == "mine\n"


def test_a_broken_stream_is_the_streams_error_not_a_stage_out_error(tmp_path):
    data = _tar(("out", None, DIR), ("out/a", "x" * 100_000, {})).getvalue()

    def chunks():
        yield data[:20_000]
        raise ConnectionResetError("the engine went away")

    with pytest.raises(ConnectionResetError):
        extract_archive(ChunkReader(chunks()), str(tmp_path / "dest"))


def test_a_garbled_archive_is_a_stage_out_error(tmp_path):
    with pytest.raises(StageOutError, match="archive"):
        extract_archive(io.BytesIO(b"this is not a tar archive" * 40), str(tmp_path / "dest"))


def test_a_tracker_file_from_before_the_stage_out_column_gets_it(tmp_path):
    from pydrmaa2.trackers.containers.records import COLUMNS, ContainerRow, open_records

    old = sqlite3.connect(tmp_path / "docker.sqlite")
    old.execute("CREATE TABLE containers (cid TEXT PRIMARY KEY, job_id TEXT, held INTEGER NOT NULL "
                "DEFAULT 0, terminated INTEGER NOT NULL DEFAULT 0, remove INTEGER NOT NULL DEFAULT 0, "
                "input_path TEXT, output_path TEXT, error_path TEXT, join_files INTEGER NOT NULL "
                "DEFAULT 0, state TEXT, sub_state TEXT, annotation TEXT, inspect TEXT, starter TEXT)")
    old.execute("INSERT INTO containers(cid, job_id) VALUES ('c1', '7')")
    old.commit()
    old.close()
    db = open_records(tmp_path / "docker.sqlite")
    row = ContainerRow.of(db.query(f"SELECT {COLUMNS} FROM containers")[0])
    assert row.cid == "c1" and row.files.stage_out == ()
    open_records(tmp_path / "docker.sqlite")  # a second opening finds the column in place
