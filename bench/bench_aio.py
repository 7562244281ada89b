"""Benchmarks of pydrmaa2.aio on the process tracker, against the sync API in the same run.

(a) N concurrent ``wait_terminated`` awaits on one event loop (N ``sleep`` jobs): the most
    threads the process had meanwhile (/proc/self/status) and its peak RSS (VmHWM)
(b) latency from a job's exit to ``await job.wait_terminated()`` returning, vs the sync call
(c) M ``run_job`` from asyncio (gathered, and one after another) vs the sync API's loop, in
    interleaved rounds, medians
Run: .venv/bin/python bench/bench_aio.py [N] [M]   (defaults 10000 and 1000)
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(__file__))
from _common import median_of, report  # noqa: E402

import pydrmaa2 as d2  # noqa: E402
from pydrmaa2.aio import AsyncSessionManager  # noqa: E402

#: Rounds of (c); each runs the sync loop, the gathered and the awaited submissions in turn.
ROUNDS = 5


def status(field: str) -> int:
    """A number of /proc/self/status (Threads, VmHWM in kB, ...)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


async def many_waits(sm: AsyncSessionManager, n: int) -> tuple[int, int, float, float]:
    """(most threads, VmHWM kB, seconds to submit, seconds from the last job's end to the
    last await returning) for n concurrent awaits on n sleep jobs."""
    js = await sm.create_job_session("waits")
    # Long enough that every task has started (the agent starts them) before the first ends.
    seconds = 10 + n / 500
    t0 = time.perf_counter()
    array = await js.run_bulk_jobs(
        d2.JobTemplate(remote_command="/bin/sleep", args=[f"{seconds:.0f}"]), 1, n)
    submitted = time.perf_counter() - t0
    most = status("Threads")

    async def sample() -> None:
        nonlocal most
        while True:
            most = max(most, status("Threads"))
            await asyncio.sleep(0.05)

    sampler = asyncio.ensure_future(sample())
    infos = await asyncio.gather(*(job.wait_terminated() for job in array.jobs))
    returned = time.time()
    sampler.cancel()
    most = max(most, status("Threads"))
    assert all(i.state is d2.JobState.DONE for i in infos), {i.state for i in infos}
    last_end = max(i.finish_time.timestamp() for i in infos)  # type: ignore[union-attr]
    hwm = status("VmHWM")
    await array.reap()
    await js.close()
    return most, hwm, submitted, returned - last_end


def stamp_job(stamp: Path) -> d2.JobTemplate:
    return d2.JobTemplate(remote_command="/bin/sh",
                          args=["-c", f"sleep 0.05; date +%s.%N > {stamp}"])


async def latencies(sm: AsyncSessionManager, home: Path, rounds: int) -> tuple[list[float], list[float]]:
    """Exit-to-return latencies, async then sync, alternating."""
    js = await sm.create_job_session("latency")
    sync_js = d2.SessionManager(home=home).open_job_session("latency")
    stamp = home / "stamp"
    ours, sync = [], []
    for _ in range(rounds):
        job = await js.run_job(stamp_job(stamp))
        await job.wait_terminated()
        ours.append(time.time() - float(stamp.read_text()))
        sync_job = sync_js.run_job(stamp_job(stamp))
        sync_job.wait_terminated()
        sync.append(time.time() - float(stamp.read_text()))
    sync_js.close()
    await js.close()
    return ours, sync


async def submissions(sm: AsyncSessionManager, home: Path, m: int) -> dict[str, list[float]]:
    """Seconds for m run_job: gathered on the loop, one after another, and the sync loop."""
    js = await sm.create_job_session("runs")
    sync_js = d2.SessionManager(home=home).open_job_session("runs")
    jt = d2.JobTemplate(remote_command="/bin/true")
    times: dict[str, list[float]] = {"gathered": [], "awaited": [], "sync": []}

    async def settle() -> None:
        # The jobs end and are reaped outside the measurement, by the sync session: waits of
        # the async one would keep its agent connection watching during the next round.
        def reap() -> None:
            jobs = sync_js.get_jobs()
            sync_js.wait_all_terminated(jobs)
            for job in jobs:
                job.reap()

        await asyncio.to_thread(reap)

    for _ in range(ROUNDS):  # interleaved: a shared machine's load falls on every side alike
        t0 = time.perf_counter()
        for _ in range(m):
            sync_js.run_job(jt)
        times["sync"].append(time.perf_counter() - t0)
        await settle()
        t0 = time.perf_counter()
        await asyncio.gather(*(js.run_job(jt) for _ in range(m)))
        times["gathered"].append(time.perf_counter() - t0)
        await settle()
        t0 = time.perf_counter()
        for _ in range(m):
            await js.run_job(jt)
        times["awaited"].append(time.perf_counter() - t0)
        await settle()
    sync_js.close()
    await js.close()
    return times


async def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    m = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    home = Path(tempfile.mkdtemp(prefix="pydrmaa2-bench-aio-"))
    load_before = load()
    async with AsyncSessionManager(home) as sm:
        warm = await sm.create_job_session("warm")  # start the agent outside the measurements
        await (await warm.run_job(d2.JobTemplate(remote_command="/bin/true"))).wait_terminated()
        await warm.close()
        most, hwm, submitted, tail = await many_waits(sm, n)
        ours, sync = await latencies(sm, home, 30)
        runs = await submissions(sm, home, m)
    mid = {k: median_of(v) for k, v in runs.items()}
    report(f"pydrmaa2.aio, process tracker (Python {sys.version.split()[0]}, {os.cpu_count()} "
           f"cores, load {load_before} before, {load()} after)", [
        (f"(a) {n} concurrent awaits: most threads", str(most), "-", "target <= 4"),
        (f"(a) {n} concurrent awaits: VmHWM MB", f"{hwm / 1024:.0f}", "-", "target < 300"),
        (f"(a) run_bulk_jobs of {n} sleep jobs, s", f"{submitted:.2f}", "-", "-"),
        ("(a) last job's end -> last await, s", f"{tail:.3f}", "-", "-"),
        ("(b) exit -> await wait_terminated, median ms", f"{median_of(ours) * 1e3:.2f}",
         f"{median_of(sync) * 1e3:.2f}", f"{median_of(ours) / median_of(sync):.2f}x (< 5 ms)"),
        (f"(c) {m} run_job gathered, jobs/s", f"{m / mid['gathered']:.0f}",
         f"{m / mid['sync']:.0f}", f"{mid['sync'] / mid['gathered']:.2f}x (>= 0.9)"),
        (f"(c) {m} run_job awaited in turn, jobs/s", f"{m / mid['awaited']:.0f}",
         f"{m / mid['sync']:.0f}", f"{mid['sync'] / mid['awaited']:.2f}x (>= 0.9)"),
    ])


if __name__ == "__main__":
    asyncio.run(main())
