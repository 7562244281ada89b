"""stage_out_files on Docker and Podman, against the real engines: what the job wrote in its
container is on the host (a file as a file, a directory as a directory) before the job is seen
ended, also when the rm extension removes the container; a path that cannot be copied fails the
job with the reason in its annotation (as on the process tracker); bad paths are refused before
anything is created; an engine away during the copy records nothing, and a later look copies."""

from __future__ import annotations

import os

import pytest
import requests.exceptions
import urllib3.exceptions

import pydrmaa2 as d2
from tests.test_containers_common import (  # noqa: F401 - fixtures: engine_name, target, js
    containers_of,
    each_engine,
    engine_session,
    engine_target,
    wait_exit,
)


def _tracker_id(js: d2.JobSession, job: d2.Job) -> str:
    return js._store.job(job.id).tracker_id


# -- what is copied ---------------------------------------------------------------------------------
def test_a_file_the_job_wrote_is_on_the_host_when_the_job_has_ended(js, target, tmp_path):
    dest = tmp_path / "results" / "result.txt"  # its folder is made by the copy
    job = js.run_job(target.sh("mkdir -p /out && printf 'the result\\n' > /out/result.txt && "
                               "chmod 4750 /out/result.txt",
                               stage_out_files={str(dest): "/out/result.txt"}))
    info = job.wait_terminated(30)
    assert info.state is d2.JobState.DONE, info.annotation
    assert info.annotation is None
    assert dest.read_text() == "the result\n"
    assert dest.stat().st_mode & 0o7777 == 0o750  # no set-id bit from a container


def test_a_file_copied_to_an_existing_directory_lands_in_it_under_its_name(js, target, tmp_path):
    folder = tmp_path / "into"
    folder.mkdir()
    job = js.run_job(target.sh("echo inside > /tmp/made.txt",
                               stage_out_files={str(folder): "/tmp/made.txt"}))
    assert job.wait_terminated(30).state is d2.JobState.DONE
    assert (folder / "made.txt").read_text() == "inside\n"


def test_a_directory_is_copied_as_a_directory_with_its_links_kept_as_links(js, target, tmp_path):
    dest = tmp_path / "out"
    dest.mkdir()
    (dest / "kept.txt").write_text("already here\n")  # merged into, as the process tracker does
    script = ("mkdir -p /out/sub/deeper && echo a > /out/a.txt && echo b > /out/sub/deeper/b.txt"
              " && ln -s /etc/passwd /out/sub/abs && ln -s ../a.txt /out/sub/rel"
              " && ln /out/a.txt /out/sub/hard && chmod 700 /out/sub/deeper")
    job = js.run_job(target.sh(script, stage_out_files={str(dest): "/out"}))
    info = job.wait_terminated(30)
    assert info.state is d2.JobState.DONE, info.annotation
    assert (dest / "kept.txt").read_text() == "already here\n"
    assert (dest / "a.txt").read_text() == "a\n"
    assert (dest / "sub" / "deeper" / "b.txt").read_text() == "b\n"
    assert (dest / "sub" / "deeper").stat().st_mode & 0o777 == 0o700
    assert os.readlink(dest / "sub" / "abs") == "/etc/passwd"  # a link, not the host's file
    assert os.readlink(dest / "sub" / "rel") == "../a.txt"
    assert (dest / "sub" / "hard").read_text() == "a\n"


def test_output_files_and_stage_out_files_are_both_written(js, target, tmp_path):
    out, dest = tmp_path / "out.txt", tmp_path / "copy.txt"
    job = js.run_job(target.sh("echo logged; echo kept > /tmp/kept.txt", output_path=str(out),
                               stage_out_files={str(dest): "/tmp/kept.txt"}))
    assert job.wait_terminated(30).state is d2.JobState.DONE
    assert out.read_text() == "logged\n"
    assert dest.read_text() == "kept\n"


def test_a_container_removed_at_its_end_is_copied_before_it_goes(js, target, engine_name, sm,
                                                                 tmp_path):
    dest = tmp_path / "gone.txt"
    job = js.run_job(target.sh("echo saved > /tmp/gone.txt", extensions={"rm": "true"},
                               stage_out_files={str(dest): "/tmp/gone.txt"}))
    tid = _tracker_id(js, job)
    assert job.wait_terminated(30).state is d2.JobState.DONE
    assert dest.read_text() == "saved\n"
    assert tid not in containers_of(engine_name, sm.home)


def test_each_array_task_stages_out_to_its_own_path(js, target, tmp_path):
    dest = str(tmp_path / "task.$DRMAA2_INDEX$")
    arr = js.run_bulk_jobs(target.sh('echo "task $TASK_ID" > /tmp/task.txt',
                                     stage_out_files={dest: "/tmp/task.txt"}), 1, 3, max_parallel=2)
    js.wait_all_terminated(arr.jobs, 60)
    assert {j.state for j in arr.jobs} == {d2.JobState.DONE}
    for i in (1, 2, 3):
        assert (tmp_path / f"task.{i}").read_text() == f"task {i}\n"


def test_a_held_job_stages_out_after_release_and_not_when_terminated_unstarted(js, target,
                                                                               tmp_path):
    released, dropped = tmp_path / "released.txt", tmp_path / "dropped.txt"
    job = js.run_job(target.sh("echo ran > /tmp/r.txt", submit_as_hold=True,
                               stage_out_files={str(released): "/tmp/r.txt"}))
    never = js.run_job(target.sh("echo ran > /tmp/r.txt", submit_as_hold=True,
                                 stage_out_files={str(dropped): "/tmp/r.txt"}))
    assert not released.exists()
    job.release()
    assert job.wait_terminated(30).state is d2.JobState.DONE
    assert released.read_text() == "ran\n"
    never.terminate()
    info = never.wait_terminated(30)
    assert info.state is d2.JobState.FAILED
    assert "stage-out" not in (info.annotation or "")
    assert not dropped.exists()


# -- what fails ---------------------------------------------------------------------------------------
def test_a_path_missing_in_the_container_fails_the_job_and_the_others_are_copied(js, target,
                                                                                 tmp_path):
    missing, copied = tmp_path / "missing.txt", tmp_path / "copied.txt"
    job = js.run_job(target.sh("echo here > /tmp/here.txt",
                               stage_out_files={str(missing): "/tmp/not-there.txt",
                                                str(copied): "/tmp/here.txt"}))
    info = job.wait_terminated(30)
    assert info.state is d2.JobState.FAILED
    assert info.exit_status == 0  # the job itself succeeded; its stage-out did not
    assert "stage-out of '/tmp/not-there.txt'" in info.annotation
    assert str(missing) in info.annotation
    assert not missing.exists()
    assert copied.read_text() == "here\n"
    assert job.state is d2.JobState.FAILED  # the same at every later look


def test_a_destination_that_cannot_be_written_fails_the_job_with_the_reason(js, target, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder\n")
    job = js.run_job(target.sh("mkdir -p /out && echo x > /out/x.txt",
                               stage_out_files={str(blocker / "below"): "/out"}))
    info = job.wait_terminated(30)
    assert info.state is d2.JobState.FAILED
    assert "stage-out of '/out'" in info.annotation and str(blocker) in info.annotation
    assert blocker.read_text() == "not a folder\n"


@pytest.mark.parametrize(("stage_out", "named"), [
    ({"/tmp/x": "relative/path"}, "relative/path"),
    ({"": "/out"}, "stage_out_files"),
    ({"/tmp/x": "$DRMAA2_WORKING_DIR$/out"}, "DRMAA2_WORKING_DIR"),
])
def test_bad_stage_out_paths_are_refused_before_anything_is_created(js, target, engine_name, sm,
                                                                    stage_out, named):
    before = containers_of(engine_name, sm.home)
    with pytest.raises(d2.InvalidArgumentError, match=named):
        js.run_job(target.sh("true", stage_out_files=stage_out))
    with pytest.raises(d2.InvalidArgumentError, match=named):
        js.run_bulk_jobs(target.sh("true", stage_out_files=stage_out), 1, 2)
    assert js.get_jobs() == []
    assert containers_of(engine_name, sm.home) == before


# -- an engine away during the copy ------------------------------------------------------------------
def _break_archive_reads(monkeypatch, engine_name: str, tracker) -> None:
    """Make the tracker's archive reads fail as an engine that goes away does: Docker's stream
    cut short after its first bytes, Podman's connection refused."""
    if engine_name == "docker":
        real = tracker.api.get_archive

        def cut_short(cid, path, *args, **kwargs):
            chunks, stat = real(cid, path, *args, **kwargs)

            def stream():
                yield next(iter(chunks))[:100]
                raise urllib3.exceptions.ProtocolError("Connection broken: IncompleteRead")
            return stream(), stat

        monkeypatch.setattr(tracker.api, "get_archive", cut_short)
        return
    real_get = tracker.api.get

    def refused(path, *args, **kwargs):
        if path.endswith("/archive"):
            raise requests.exceptions.ConnectionError("connection refused")
        return real_get(path, *args, **kwargs)

    monkeypatch.setattr(tracker.api, "get", refused)


def test_an_engine_away_during_the_copy_records_nothing_and_a_later_look_copies(
        js, target, engine_name, tmp_path, monkeypatch):
    dest = tmp_path / "late.txt"
    tracker = js._tracker
    _break_archive_reads(monkeypatch, engine_name, tracker)
    job = js.run_job(target.sh("echo finally > /tmp/late.txt",
                               stage_out_files={str(dest): "/tmp/late.txt"}))
    tid = _tracker_id(js, job)
    wait_exit(engine_name, tid)
    with pytest.raises(d2.DrmCommunicationError):
        tracker.state(tid)
    row = tracker.records.row(tid)
    assert row is not None and row.state is None  # the end is not recorded
    assert not dest.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".late.txt")]  # no leftovers
    monkeypatch.undo()
    info = job.wait_terminated(30)
    assert info.state is d2.JobState.DONE, info.annotation
    assert dest.read_text() == "finally\n"
