"""pydrmaa2.aio on the process tracker: awaits, timeouts, cancellation, events, interop with the
sync API in another program, and waits that share one watcher instead of a thread each."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

import pydrmaa2 as d2
from pydrmaa2.agent import AgentClient, socket_path
from pydrmaa2.aio import AsyncJob, AsyncJobSession, AsyncSessionManager
from pydrmaa2.aio._threads import Threads
from pydrmaa2.aio._watch import IDLE_AFTER

from .conftest import require, sh

SLEEP = d2.JobTemplate(remote_command="/bin/sleep", args=["30"])
TRUE = d2.JobTemplate(remote_command="/bin/true")



#: No async test may take longer than this (a missed event must fail, not hang).
TEST_TIMEOUT = 120


def asyncio_test(fn: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Run an async test on a fresh event loop (pytest sees the wrapped signature's fixtures)."""
    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> None:
        asyncio.run(asyncio.wait_for(fn(*args, **kwargs), TEST_TIMEOUT))
    return run


@pytest.fixture
def home(tmp_path: Path):
    require("process")
    h = tmp_path / "home"
    yield h
    AgentClient.for_home(h).close()


@contextlib.asynccontextmanager
async def session(home: Path, name: str = "aio") -> AsyncIterator[AsyncJobSession]:
    """A new job session on the process tracker; whatever the test left running is ended."""
    async with AsyncSessionManager(home) as sm:
        js = await sm.create_job_session(name)
        try:
            yield js
        finally:
            with contextlib.suppress(d2.InvalidSessionError):
                for job in await js.get_jobs():
                    with contextlib.suppress(d2.Drmaa2Error):
                        await job.terminate()


# -- awaits ---------------------------------------------------------------------------------------
@asyncio_test
async def test_wait_terminated_returns_the_job_info_with_its_exit_status(home):
    async with session(home) as js:
        done = await js.run_job(TRUE)
        failed = await js.run_job(sh("exit 3"))
        info = await failed.wait_terminated(10)
        assert (info.state, info.exit_status, info.id) == (d2.JobState.FAILED, 3, failed.id)
        info = await done.wait_terminated(10)
        assert (info.state, info.exit_status) == (d2.JobState.DONE, 0)
        assert await done.state is d2.JobState.DONE
        assert (await done.get_state())[0] is d2.JobState.DONE
        assert (await done.template).remote_command == "/bin/true"


@asyncio_test
async def test_output_is_read_and_followed_without_blocking_the_loop(home):
    async with session(home) as js:
        job = await js.run_job(sh("echo one; echo oops >&2; sleep 1; echo two"))
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.05)
                ticks += 1

        t = asyncio.create_task(ticker())
        lines = [line async for line in job.output(follow=True)]
        t.cancel()
        assert lines == ["one\n", "two\n"]
        assert ticks >= 10  # the loop ran while the follower waited for the second line
        assert [line async for line in job.error()] == ["oops\n"]
        assert [line async for line in job.output(tail=1)] == ["two\n"]
        with pytest.raises(d2.InvalidArgumentError, match="tail"):
            [line async for line in job.output(tail=-1)]


@asyncio_test
async def test_wait_any_returns_the_first_job_to_end_and_wait_all_every_job(home):
    async with session(home) as js:
        slow = await js.run_job(SLEEP)
        fast = await js.run_job(sh("sleep 0.2"))
        assert await js.wait_any_terminated([slow, fast], 10) is fast
        assert await js.wait_any_started([slow, fast], 10) in (slow, fast)
        await js.wait_all_started([slow, fast], 10)
        await slow.terminate()
        await js.wait_all_terminated([slow, fast], 10)
        assert [await j.state for j in (slow, fast)] == [d2.JobState.FAILED, d2.JobState.DONE]


@asyncio_test
async def test_an_elapsed_timeout_is_pydrmaa2s_builtin_and_asyncios_timeout_error(home):
    async with session(home) as js:
        job = await js.run_job(SLEEP)
        t0 = time.monotonic()
        with pytest.raises(d2.TimeoutError, match=job.id):
            await job.wait_terminated(0.3)
        assert 0.25 <= time.monotonic() - t0 < 5
        try:
            await js.wait_all_terminated([job], 0.1)
        except TimeoutError as e:  # the builtin one, as `except asyncio.TimeoutError` on 3.11
            assert isinstance(e, d2.Drmaa2Error)
        else:
            raise AssertionError("no TimeoutError")
        with pytest.raises(asyncio.TimeoutError):
            await js.wait_any_terminated([job], 0)


@asyncio_test
async def test_a_zero_timeout_looks_once(home):
    async with session(home) as js:
        ended = await js.run_job(TRUE)
        await ended.wait_terminated(10)
        assert (await ended.wait_terminated(d2.ZERO_TIME)).state is d2.JobState.DONE
        running = await js.run_job(SLEEP)
        await running.wait_started(10)
        assert (await running.wait_started(0)).state is d2.JobState.RUNNING
        with pytest.raises(d2.TimeoutError):
            await running.wait_terminated(0)


@asyncio_test
async def test_cancelling_one_waiter_ends_that_wait_only(home):
    async with session(home) as js:
        job = await js.run_job(sh("sleep 1"))
        other = await js.run_job(sh("sleep 1"))
        doomed = asyncio.create_task(job.wait_terminated())
        same_job = asyncio.create_task(job.wait_terminated(10))
        other_job = asyncio.create_task(js.wait_all_terminated([other], 10))
        await asyncio.sleep(0.1)
        doomed.cancel()
        with pytest.raises(asyncio.CancelledError):
            await doomed
        assert (await same_job).state is d2.JobState.DONE
        await other_job
        assert js._watcher.waits == {}  # nothing of the cancelled wait stays behind


@asyncio_test
async def test_a_wait_outside_asyncio_wait_for_is_cancelled_by_it_alone(home):
    async with session(home) as js:
        job = await js.run_job(sh("sleep 0.5"))
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(job.wait_terminated(), 0.1)
        assert (await job.wait_terminated(10)).state is d2.JobState.DONE


@asyncio_test
async def test_hundreds_of_waits_share_the_sessions_watcher_not_a_thread_each(home):
    async with session(home) as js:
        array = await js.run_bulk_jobs(d2.JobTemplate(remote_command="/bin/sleep", args=["1"]),
                                       1, 300)
        before = threading.active_count()
        waits = [asyncio.create_task(j.wait_terminated(60)) for j in array.jobs]
        await asyncio.sleep(0.3)
        during = threading.active_count()
        infos = await asyncio.gather(*waits)
        assert {i.state for i in infos} == {d2.JobState.DONE}
        # main thread, the two call threads and the look thread at most
        assert during <= max(before, 4), (before, during)


@asyncio_test
async def test_waits_refuse_bad_arguments_as_the_sync_api_does(home):
    async with session(home) as js:
        job = await js.run_job(TRUE)
        with pytest.raises(d2.InvalidArgumentError, match="empty"):
            await js.wait_any_terminated([])
        with pytest.raises(d2.InvalidArgumentError, match="timeout"):
            await job.wait_terminated(timeout="5")  # type: ignore[arg-type]
        with pytest.raises(d2.InvalidArgumentError):
            await js.wait_all_started([1])  # type: ignore[list-item]
        array = await js.run_bulk_jobs(TRUE, 1, 2)
        with pytest.raises(d2.InvalidArgumentError, match="JobArray"):
            await js.wait_all_terminated(array)  # type: ignore[arg-type]
        async with session(home, "other") as other:
            with pytest.raises(d2.InvalidArgumentError, match="not in session"):
                await other.wait_all_terminated([job], 5)
        await js.wait_all_terminated([job, *array.jobs], 10)


@asyncio_test
async def test_controls_reap_and_queries_are_awaited(home):
    async with session(home) as js:
        job = await js.run_job(SLEEP)
        await job.wait_started(10)
        await job.suspend()
        await _until(job, d2.JobState.SUSPENDED)
        await job.resume()
        await _until(job, d2.JobState.RUNNING)
        with pytest.raises(d2.InvalidStateError):
            await job.reap()
        assert [j.id for j in await js.get_jobs(d2.JobInfo(state=d2.JobState.RUNNING))] == [job.id]
        await job.terminate()
        assert (await job.wait_terminated(10)).state is d2.JobState.FAILED
        with pytest.raises(d2.InvalidStateError, match=job.id):
            await job.suspend()
        await job.reap()
        assert await js.get_jobs() == []
        held = await js.run_bulk_jobs(sh("true", submit_as_hold=True), 1, 3, max_parallel=1)
        assert {await j.state for j in held.jobs} == {d2.JobState.QUEUED_HELD}
        assert (await js.get_job_array(held.id)).jobs == held.jobs
        await held.release()
        await js.wait_all_terminated(held.jobs, 20)
        await held.reap()


async def _until(job: AsyncJob, state: d2.JobState) -> None:
    """A non-terminal state a control takes effect in: await the job's events until it."""
    async with job.events() as events:
        async for n in events:
            if n.state is state:
                return
            assert not n.state.is_terminal, n


@asyncio_test
async def test_async_with_closes_the_session_and_a_running_wait_hears_of_it(home):
    async with AsyncSessionManager(home) as sm:
        async with await sm.create_job_session("closing") as js:
            job = await js.run_job(SLEEP)
            wait = asyncio.create_task(job.wait_terminated())
            await asyncio.sleep(0.1)
        with pytest.raises(d2.InvalidSessionError):
            await wait
        with pytest.raises(d2.InvalidSessionError):
            await js.run_job(TRUE)
        with pytest.raises(d2.InvalidSessionError):
            await js.close()
        again = await sm.open_job_session("closing")
        (found,) = await again.get_jobs()
        await found.terminate()
        assert (await found.wait_terminated(10)).state is d2.JobState.FAILED
    with pytest.raises(d2.InvalidSessionError):  # the manager closed the sessions it opened
        await again.get_jobs()


@asyncio_test
async def test_the_manager_opens_creates_and_destroys_sessions(home):
    async with AsyncSessionManager(home) as sm:
        (await sm.create_job_session("a")).sync.close()
        assert "a" in sm.job_session_names and sm.job_session_contacts["a"] == "process"
        with pytest.raises(d2.InvalidArgumentError, match="a"):
            await sm.create_job_session("a")
        with pytest.raises(d2.InvalidArgumentError, match="nope"):
            await sm.open_job_session("nope")
        js = await sm.open_job_session("a")
        job = await js.run_job(TRUE)
        assert sm.job_session_of(job.id) == "a"
        found = await sm.find_job(job.id)
        assert (await found.wait_terminated(10)).state is d2.JobState.DONE
        await sm.destroy_job_session("a")
        assert "a" not in sm.job_session_names
        assert sm.supports(d2.Capability.JOB_ARRAYS)
        with pytest.raises(d2.UnsupportedOperationError):
            await sm.create_reservation_session("r")
        async with await sm.open_monitoring_session() as ms:
            machines = await ms.get_all_machines()
            assert machines and machines[0].name == socket.gethostname()


# -- events ---------------------------------------------------------------------------------------
_RANK = {d2.JobState.QUEUED: 0, d2.JobState.QUEUED_HELD: 0, d2.JobState.RUNNING: 1,
         d2.JobState.SUSPENDED: 1, d2.JobState.DONE: 2, d2.JobState.FAILED: 2}


def _in_order(states: list[d2.JobState]) -> bool:
    ranks = [_RANK[s] for s in states]
    return ranks == sorted(ranks) and states[-1].is_terminal and len(set(states)) == len(states)


@asyncio_test
async def test_session_events_report_every_job_in_order_none_missed_before_the_first_read(home):
    async with session(home) as js:
        old = await js.run_job(TRUE)
        await old.wait_terminated(10)
        events = js.events()
        # Jobs that end before anyone reads the stream are reported all the same.
        jobs = [await js.run_job(TRUE), await js.run_job(sh("sleep 0.3")),
                await js.run_job(sh("exit 2"))]
        await js.wait_all_terminated(jobs, 10)
        seen: dict[str, list[d2.JobState]] = {}

        async def read() -> None:
            async with events:
                async for n in events:
                    assert n.event is d2.Event.NEW_STATE and n.session_name == "aio"
                    seen.setdefault(n.job_id, []).append(n.state)
                    if all(seen.get(j.id, [d2.JobState.QUEUED])[-1].is_terminal for j in jobs):
                        return

        # Within the agent's own announcements: not the resync backstop (RESYNC_INTERVAL).
        await asyncio.wait_for(read(), 4)
        assert old.id not in seen  # it had ended before the stream began
        assert all(_in_order(states) for states in seen.values()), seen
        assert [seen[j.id][-1] for j in jobs] == [d2.JobState.DONE, d2.JobState.DONE,
                                                   d2.JobState.FAILED]
        assert d2.JobState.RUNNING in seen[jobs[1].id]  # it ran long enough to be seen running


@asyncio_test
async def test_job_and_array_events_begin_with_the_state_now_and_end_with_the_job(home):
    async with session(home) as js:
        job = await js.run_job(sh("sleep 0.3"))
        await job.wait_started(10)
        assert [n.state async for n in job.events()] == [d2.JobState.RUNNING, d2.JobState.DONE]
        assert [n.state async for n in job.events()] == [d2.JobState.DONE]  # ended: one event
        array = await js.run_bulk_jobs(sh("sleep 0.2"), 1, 4, max_parallel=2)
        per_task: dict[str, list[d2.JobState]] = {}
        async for n in array.events():
            per_task.setdefault(n.job_id, []).append(n.state)
        assert sorted(per_task) == sorted(j.id for j in array.jobs)
        assert all(_in_order(s) and s[-1] is d2.JobState.DONE for s in per_task.values()), per_task


@asyncio_test
async def test_callbacks_registered_on_the_manager_get_every_new_state(home):
    async with AsyncSessionManager(home) as sm:
        js = await sm.create_job_session("notified")
        plain: list[d2.Notification] = []
        awaited: list[d2.Notification] = []
        ended = asyncio.Event()

        async def coroutine_callback(n: d2.Notification) -> None:
            awaited.append(n)
            if n.state.is_terminal:
                ended.set()

        sm.register_event_notification(plain.append)
        sm.register_event_notification(coroutine_callback)
        job = await js.run_job(sh("sleep 0.2"))
        await asyncio.wait_for(ended.wait(), 10)
        assert [n.state for n in plain if n.job_id == job.id][-1] is d2.JobState.DONE
        assert [n.state for n in awaited] == [n.state for n in plain]


# -- interplay with the sync API and other programs ---------------------------------------------
SYNC_SUBMITTER = textwrap.dedent("""
    import sys, pydrmaa2 as d2
    js = d2.SessionManager(home=sys.argv[1]).open_job_session("aio")
    job = js.run_job(d2.JobTemplate(remote_command="/bin/sh", args=["-c", "sleep 0.5; exit 4"]))
    print(job.id, flush=True)
""")

SYNC_WAITER = textwrap.dedent("""
    import json, sys, pydrmaa2 as d2
    js = d2.SessionManager(home=sys.argv[1]).open_job_session("aio")
    (job,) = [j for j in js.get_jobs() if j.id == sys.argv[2]]
    info = job.wait_terminated(20)
    print(json.dumps([info.state.name, info.exit_status]), flush=True)
""")


@asyncio_test
async def test_a_job_submitted_by_a_sync_program_is_awaited_and_the_other_way_round(home):
    async with session(home) as js:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", SYNC_SUBMITTER, str(home), stdout=subprocess.PIPE)
        out, _ = await proc.communicate()
        assert proc.returncode == 0
        (job,) = [j for j in await js.get_jobs() if j.id == out.decode().strip()]
        info = await job.wait_terminated(20)
        assert (info.state, info.exit_status) == (d2.JobState.FAILED, 4)

        mine = await js.run_job(sh("sleep 0.5; exit 5"))
        waiter = await asyncio.create_subprocess_exec(
            sys.executable, "-c", SYNC_WAITER, str(home), mine.id, stdout=subprocess.PIPE)
        out, _ = await waiter.communicate()
        assert json.loads(out) == ["FAILED", 5]
        # The sync objects of the same session wait alongside, on a thread of their own.
        assert await asyncio.to_thread(mine.sync.wait_terminated, 5) == await mine.info


@asyncio_test
async def test_a_wait_rides_out_the_kill_of_the_agent(home):
    async with session(home) as js:
        job = await js.run_job(sh("sleep 1.5; exit 6"))
        await job.wait_started(10)
        wait = asyncio.create_task(job.wait_terminated(30))
        await asyncio.sleep(0.2)
        pid = AgentClient.for_home(home).request("ping")["pid"]
        os.kill(pid, signal.SIGKILL)
        info = await wait
        # The agent, killed, could not see the job's end: FAILED with the reason, not a hang.
        assert info.state is d2.JobState.FAILED
        assert socket_path(home).exists()  # a new agent answers


# -- the manager's threads ------------------------------------------------------------------------
@asyncio_test
async def test_a_call_cancelled_before_it_began_never_runs():
    threads = Threads(1, "test-calls")
    gate, ran = threading.Event(), []
    first = asyncio.ensure_future(threads.run(gate.wait, 10))
    second = asyncio.ensure_future(threads.run(ran.append, "second"))
    third = asyncio.ensure_future(threads.run(ran.append, "third"))
    await asyncio.sleep(0.05)
    second.cancel()
    gate.set()
    assert await first is True
    await third
    assert ran == ["third"]
    threads.shutdown()


@asyncio_test
async def test_a_second_thread_starts_for_calls_stuck_behind_a_slow_one_only():
    threads = Threads(2, "test-calls")
    assert await asyncio.gather(*(threads.run(lambda i=i: i) for i in range(500))) == list(range(500))
    assert len(threads._threads) == 1  # quick calls: one thread runs them all
    gate = threading.Event()
    slow = asyncio.ensure_future(threads.run(gate.wait, 10))
    await asyncio.sleep(0.01)
    assert await asyncio.wait_for(threads.run(lambda: "quick"), 5) == "quick"
    assert len(threads._threads) == 2 and not slow.done()
    gate.set()
    await slow
    threads.shutdown()
    with pytest.raises(d2.InvalidSessionError):
        await threads.run(lambda: None)


@asyncio_test
async def test_an_idle_session_stops_watching_every_job_and_a_new_wait_watches_again(home):
    async with session(home) as js:
        job = await js.run_job(TRUE)
        await job.wait_terminated(10)
        stream = js._watcher._agent
        assert stream._all  # still watching: waits in turn do not subscribe each time
        await asyncio.sleep(IDLE_AFTER + 0.5)
        assert not stream._all  # nothing waits: the store's other jobs do not wake the loop
        late = await js.run_job(sh("sleep 0.3"))
        assert (await late.wait_terminated(10)).state is d2.JobState.DONE
        assert stream._all
