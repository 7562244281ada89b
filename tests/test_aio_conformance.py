"""The conformance behaviours (pydrmaa2.testing.conformance) through pydrmaa2.aio, on every
tracker: the same jobs, controls, arrays, waits and timeouts, awaited; and the events."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import subprocess
import sys
import textwrap
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

import pydrmaa2 as d2
from pydrmaa2.agent import AgentClient
from pydrmaa2.aio import AsyncJob, AsyncJobSession, AsyncSessionManager
from pydrmaa2.testing.targets import TARGETS, Target

from .conftest import require


@pytest.fixture(params=sorted(TARGETS))
def target(request) -> Target:
    return require(request.param)


@pytest.fixture
def home(tmp_path: Path):
    h = tmp_path / "home"
    h.mkdir()
    yield h
    AgentClient.for_home(h).close()


def asyncio_test(fn: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Run an async test on a fresh event loop, failing (not hanging) after 300 s."""
    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> None:
        asyncio.run(asyncio.wait_for(fn(*args, **kwargs), 300))
    return run


@contextlib.asynccontextmanager
async def session(home: Path, target: Target) -> AsyncIterator[AsyncJobSession]:
    """A job session on the target; afterwards nothing it ran is left in the engine."""
    async with AsyncSessionManager(home) as sm:
        js = await sm.create_job_session("aio-conformance", contact=target.contact)
        try:
            yield js
        finally:
            jobs = await js.get_jobs()
            for job in jobs:
                with contextlib.suppress(d2.Drmaa2Error):
                    if not (await job.state).is_terminal:
                        await job.terminate()
            with contextlib.suppress(d2.Drmaa2Error):
                if jobs:
                    await js.wait_all_terminated(jobs, target.slow)
            for job in jobs:
                with contextlib.suppress(d2.Drmaa2Error):
                    await job.reap()


async def reach(job: AsyncJob, state: d2.JobState, timeout: float) -> None:
    """Until the job is in ``state`` (suspend and resume take effect asynchronously), from
    its events rather than a polling loop."""
    async def until() -> None:
        async with job.events() as events:
            async for n in events:
                if n.state is state:
                    return
        raise AssertionError(f"{job} ended before it was {state.name}")

    await asyncio.wait_for(until(), timeout)


# -- lifecycle -------------------------------------------------------------------------------------
@asyncio_test
async def test_a_job_that_exits_zero_is_done_and_one_that_exits_3_failed(home, target):
    async with session(home, target) as js:
        done = await js.run_job(target.template("/bin/true"))
        failed = await js.run_job(target.sh("exit 3"))
        info = await done.wait_terminated(target.slow)
        assert (info.state, info.exit_status, info.id) == (d2.JobState.DONE, 0, done.id)
        info = await failed.wait_terminated(target.slow)
        assert (info.state, info.exit_status) == (d2.JobState.FAILED, 3)
        assert await done.state is d2.JobState.DONE


@asyncio_test
async def test_output_and_error_paths_receive_the_streams(home, target, tmp_path):
    out, err = tmp_path / "out.txt", tmp_path / "err.txt"
    async with session(home, target) as js:
        job = await js.run_job(target.sh("echo to-out; echo to-err >&2; exit 1",
                                         output_path=str(out), error_path=str(err)))
        await job.wait_terminated(target.slow)
        assert out.read_text() == "to-out\n"
        assert err.read_text() == "to-err\n"


# -- control ---------------------------------------------------------------------------------------
@asyncio_test
async def test_suspend_and_resume_a_running_job(home, target):
    async with session(home, target) as js:
        job = await js.run_job(target.template("/bin/sleep", "30"))
        await job.wait_started(target.slow)
        await job.suspend()
        await reach(job, d2.JobState.SUSPENDED, target.slow)
        await job.resume()
        await reach(job, d2.JobState.RUNNING, target.slow)
        await job.terminate()
        assert (await job.wait_terminated(target.slow)).state is d2.JobState.FAILED


@asyncio_test
async def test_terminate_ends_a_running_job_failed(home, target):
    async with session(home, target) as js:
        job = await js.run_job(target.template("/bin/sleep", "60"))
        await job.wait_started(target.slow)
        await job.terminate()
        assert (await job.wait_terminated(30)).state is d2.JobState.FAILED
        with pytest.raises(d2.InvalidStateError, match=job.id):
            await job.suspend()


@asyncio_test
async def test_submit_as_hold_waits_for_release(home, target, tmp_path):
    out = tmp_path / "held.txt"
    async with session(home, target) as js:
        job = await js.run_job(target.sh("echo ran", output_path=str(out), submit_as_hold=True))
        assert await job.state is d2.JobState.QUEUED_HELD
        with pytest.raises(d2.TimeoutError):
            await job.wait_started(0.5)
        await job.release()
        assert (await job.wait_terminated(target.slow)).state is d2.JobState.DONE
        assert out.read_text() == "ran\n"


@asyncio_test
async def test_terminating_a_held_job_ends_it_without_running(home, target, tmp_path):
    marker = tmp_path / "marker"
    async with session(home, target) as js:
        job = await js.run_job(target.sh("echo ran", output_path=str(marker),
                                         submit_as_hold=True))
        await job.terminate()
        assert (await job.wait_terminated(target.slow)).state is d2.JobState.FAILED
        assert not marker.exists() or marker.read_text() == ""


# -- arrays ----------------------------------------------------------------------------------------
@asyncio_test
async def test_array_respects_max_parallel(home, target):
    async with session(home, target) as js:
        array = await js.run_bulk_jobs(target.sh("sleep 0.4"), begin=1, end=6, max_parallel=2)
        await js.wait_all_terminated(array.jobs, target.slow * 4)
        infos = [await j.info for j in array.jobs]
        spans = [(i.dispatch_time, i.finish_time) for i in infos]
        assert all(s and e for s, e in spans)
        most = max(sum(1 for s2, e2 in spans if s2 <= s < e2) for s, _ in spans)
        assert most <= 2, spans
        assert {i.state for i in infos} == {d2.JobState.DONE}


@asyncio_test
async def test_a_queued_task_terminated_frees_the_array(home, target):
    async with session(home, target) as js:
        array = await js.run_bulk_jobs(target.sh("sleep 0.5"), begin=1, end=3, max_parallel=1)
        _, second, third = array.jobs
        assert await second.state is d2.JobState.QUEUED
        with pytest.raises(d2.InvalidStateError):
            await second.suspend()
        await second.terminate()
        await js.wait_all_terminated(array.jobs, target.slow * 3)
        info = await second.info
        assert info.state is d2.JobState.FAILED and info.dispatch_time is None
        assert await third.state is d2.JobState.DONE


@asyncio_test
async def test_array_hold_and_release(home, target):
    async with session(home, target) as js:
        array = await js.run_bulk_jobs(target.template("/bin/true", submit_as_hold=True), 1, 3, 1, 2)
        assert {await j.state for j in array.jobs} == {d2.JobState.QUEUED_HELD}
        await array.release()
        await js.wait_all_terminated(array.jobs, target.slow * 2)
        assert {await j.state for j in array.jobs} == {d2.JobState.DONE}


# -- waiting and timeouts --------------------------------------------------------------------------
@asyncio_test
async def test_wait_any_returns_the_first_job_to_end(home, target):
    async with session(home, target) as js:
        slow = await js.run_job(target.template("/bin/sleep", "30"))
        fast = await js.run_job(target.template("/bin/true"))
        assert await js.wait_any_terminated([slow, fast], target.slow) is fast
        assert await js.wait_any_started([slow, fast], target.slow) in (slow, fast)


@asyncio_test
async def test_timeouts_raise_pydrmaa2s_timeout_error_which_is_the_builtin_one(home, target):
    async with session(home, target) as js:
        job = await js.run_job(target.template("/bin/sleep", "30"))
        with pytest.raises(d2.TimeoutError):
            await job.wait_terminated(d2.ZERO_TIME)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        with pytest.raises(TimeoutError):  # and so asyncio.TimeoutError on Python >= 3.11
            await js.wait_all_terminated([job], 0.3)
        assert 0.25 <= loop.time() - t0 < 5
        with pytest.raises(d2.InvalidArgumentError):
            await js.wait_any_terminated([])


@asyncio_test
async def test_cancelling_one_wait_leaves_the_others_waiting(home, target):
    async with session(home, target) as js:
        job = await js.run_job(target.sh("sleep 1"))
        doomed = asyncio.create_task(job.wait_terminated())
        kept = asyncio.create_task(job.wait_terminated(target.slow))
        await asyncio.sleep(0.2)
        doomed.cancel()
        with pytest.raises(asyncio.CancelledError):
            await doomed
        assert (await kept).state is d2.JobState.DONE


@asyncio_test
async def test_many_waits_share_the_sessions_threads(home, target):
    """Waits are multiplexed: however many, the async API runs at most its call threads, its
    look thread and one reader of the engine's feed (the tracker's own threads aside)."""
    async with session(home, target) as js:
        jobs = [await js.run_job(target.sh("sleep 1")) for _ in range(8)]
        waits = [asyncio.ensure_future(j.wait_terminated(target.slow * 3)) for j in jobs]
        most, pending = 0, set(waits)
        while pending:
            _, pending = await asyncio.wait(pending, timeout=0.1)
            ours = [t.name for t in threading.enumerate() if t.name.startswith("pydrmaa2-aio")]
            most = max(most, len(ours))
            assert sum(1 for name in ours if name.endswith("-feed")) <= 1, ours
        assert most <= 4
        assert {w.result().state for w in waits} == {d2.JobState.DONE}


# -- events and other programs ---------------------------------------------------------------------
_RANK = {d2.JobState.QUEUED: 0, d2.JobState.QUEUED_HELD: 0, d2.JobState.RUNNING: 1,
         d2.JobState.SUSPENDED: 1, d2.JobState.DONE: 2, d2.JobState.FAILED: 2}


@asyncio_test
async def test_events_report_each_jobs_states_in_order_up_to_its_end(home, target):
    async with session(home, target) as js:
        events = js.events()
        jobs = [await js.run_job(target.sh("sleep 1")), await js.run_job(target.sh("exit 2"))]
        seen: dict[str, list[d2.JobState]] = {}

        async def read() -> None:
            async with events:
                async for n in events:
                    seen.setdefault(n.job_id, []).append(n.state)
                    if all(j.id in seen and seen[j.id][-1].is_terminal for j in jobs):
                        return

        await asyncio.wait_for(read(), target.slow * 2)
        for states in seen.values():
            ranks = [_RANK[s] for s in states]
            assert ranks == sorted(ranks) and len(set(states)) == len(states), seen
        assert [seen[j.id][-1] for j in jobs] == [d2.JobState.DONE, d2.JobState.FAILED]
        job_events = [n.state async for n in jobs[0].events()]
        assert job_events == [d2.JobState.DONE]  # a job stream begins with the state now


SUBMITTER = textwrap.dedent("""
    import sys, pydrmaa2 as d2
    js = d2.SessionManager(home=sys.argv[1]).open_job_session("aio-conformance")
    job = js.run_job(d2.JobTemplate(remote_command="/bin/sh", job_category=sys.argv[2] or None,
                                    args=["-c", "sleep 1; exit 7"]))
    print(job.id, flush=True)
""")


@asyncio_test
async def test_a_job_a_sync_program_submitted_is_awaited(home, target):
    async with session(home, target) as js:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", SUBMITTER, str(home), target.job_category or "",
            stdout=subprocess.PIPE)
        out, _ = await proc.communicate()
        assert proc.returncode == 0
        (job,) = [j for j in await js.get_jobs() if j.id == out.decode().strip()]
        info = await job.wait_terminated(target.slow)
        assert (info.state, info.exit_status) == (d2.JobState.FAILED, 7)


@asyncio_test
async def test_reservations_are_requested_read_and_terminated_where_the_tracker_reserves(
        home, target):
    async with AsyncSessionManager(home) as sm:
        if not sm.supports(d2.Capability.ADVANCE_RESERVATION, contact=target.contact):
            with pytest.raises(d2.UnsupportedOperationError):
                await sm.create_reservation_session("r", contact=target.contact)
            return
        rs = await sm.create_reservation_session("r", contact=target.contact)
        name = f"pd2-aio-{uuid.uuid4().hex[:8]}"
        r = await rs.request_reservation(d2.ReservationTemplate(
            reservation_name=name, duration=dt.timedelta(minutes=10), min_slots=1))
        try:
            info = await r.info
            assert info.reservation_id == name and info.reserved_slots == 1
            assert [x.id for x in await rs.get_reservations()] == [r.id]
            assert (await rs.get_reservation(r.id)).tracker_id == name
            async with await sm.open_monitoring_session(contact=target.contact) as ms:
                assert name in [i.reservation_id for i in await ms.get_all_reservations()]
        finally:
            await r.terminate()
        assert await rs.get_reservations() == []
