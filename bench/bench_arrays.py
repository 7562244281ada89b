"""Throughput of job arrays and run_job on the process tracker, each against its raw baseline.

(a) an N-task /bin/true array with max_parallel=64, submit + drain, vs a sliding window of 64
    subprocess.Popen (a new one as soon as one ends)
(b) the same array without max_parallel, vs a pool of 64 threads each running subprocess.run
(c) M run_job + wait_all_terminated, vs subprocess.Popen all then wait all
(d) the first run_job of a program with no agent running yet (agent start included), median of 5
Run: .venv/bin/python bench/bench_arrays.py [N [M]] [--only a|b|c] [--rounds R]
(defaults 10000, 1000 and 3; --only: that part alone, for runs side by side). Each of (a)-(c)
runs its baseline and then pydrmaa2, R times in turn, and reports the medians and the median of
the R ratios with their range: this machine's speed wanders by a third within minutes, which one
pair of runs cannot tell from a change of pydrmaa2's.
"""

from __future__ import annotations

import concurrent.futures
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, os.path.dirname(__file__))
from _common import median_of, report, timed  # noqa: E402

import pydrmaa2 as d2  # noqa: E402

WINDOW = 64


def sliding_window(n: int, width: int = WINDOW) -> None:
    """Keep ``width`` /bin/true processes running until ``n`` have run (os.wait for any)."""
    running: dict[int, subprocess.Popen] = {}
    started = 0
    while started < n or running:
        while started < n and len(running) < width:
            p = subprocess.Popen(["/bin/true"])
            running[p.pid] = p
            started += 1
        pid, status = os.wait()
        p = running.pop(pid, None)
        if p is not None:
            p.returncode = os.waitstatus_to_exitcode(status)


def thread_pool(n: int, width: int = WINDOW) -> None:
    with concurrent.futures.ThreadPoolExecutor(width) as pool:
        list(pool.map(lambda _: subprocess.run(["/bin/true"], check=True), range(n)))


def popen_all(m: int) -> None:
    procs = [subprocess.Popen(["/bin/true"]) for _ in range(m)]
    for p in procs:
        p.wait()


def first_run_job(parent: Path) -> float:
    """Seconds from a fresh program's first run_job call to its return, no agent running."""
    home = Path(tempfile.mkdtemp(dir=parent))
    code = ("import sys, time, pydrmaa2 as d2\n"
            "sm = d2.SessionManager(home=sys.argv[1]); js = sm.create_job_session('s')\n"
            "t = time.perf_counter(); j = js.run_job(d2.JobTemplate(remote_command='/bin/true'))\n"
            "print(time.perf_counter() - t); j.wait_terminated(30)\n")
    out = subprocess.run([sys.executable, "-c", code, str(home)], check=True,
                         capture_output=True, text=True).stdout
    return float(out.split()[0])


def main() -> None:
    args = sys.argv[1:]
    only = None
    rounds = 3
    if "--rounds" in args:
        i = args.index("--rounds")
        try:
            rounds = int(args[i + 1])
        except (IndexError, ValueError):
            rounds = 0
        if rounds < 1:
            sys.exit("--rounds takes a whole number of at least 1")
        del args[i:i + 2]
    if "--only" in args:
        i = args.index("--only")
        only = args[i + 1] if i + 1 < len(args) else ""
        del args[i:i + 2]
        if only not in ("a", "b", "c"):
            sys.exit(f"--only takes a, b or c, not {only!r}")
    n = int(args[0]) if args else 10000
    m = int(args[1]) if len(args) > 1 else 1000
    parent = Path(tempfile.mkdtemp(prefix="pydrmaa2-bench-"))
    sm = d2.SessionManager(home=parent / "home")
    js = sm.create_job_session("bench")
    jt = d2.JobTemplate(remote_command="/bin/true")
    js.wait_all_terminated([js.run_job(jt)])  # the agent runs before any measurement

    def array(limit: int | None) -> None:
        arr = js.run_bulk_jobs(jt, 1, n, max_parallel=limit)
        js.wait_all_terminated(arr.jobs)
        bad = [j for j in arr.jobs if j.state is not d2.JobState.DONE]
        assert not bad, f"{len(bad)} tasks did not end DONE"

    def run_jobs() -> None:
        js.wait_all_terminated([js.run_job(jt) for _ in range(m)])

    def paired(base: Callable[[], None], ours: Callable[[], None],
               count: int) -> tuple[float, float, str]:
        """Median rates (per second) of the baseline and of pydrmaa2 over the rounds, and the
        median ratio with its range when there is more than one round."""
        pairs = [(timed(base), timed(ours)) for _ in range(rounds)]
        ratios = sorted(b / o for b, o in pairs)
        spread = f" ({ratios[0]:.2f}-{ratios[-1]:.2f}x in {rounds})" if rounds > 1 else ""
        return (count / median_of([b for b, _ in pairs]), count / median_of([o for _, o in pairs]),
                f"{median_of(ratios):.2f}x{spread}")

    rows = []
    if only in (None, "a"):
        base, ours, ratio = paired(lambda: sliding_window(n), lambda: array(WINDOW), n)
        rows.append((f"(a) {n}-task array, max_parallel={WINDOW}", f"{ours:.0f} tasks/s",
                     f"{base:.0f}/s (sliding window of {WINDOW} Popen)", ratio))
    if only in (None, "b"):
        base, ours, ratio = paired(lambda: thread_pool(n), lambda: array(None), n)
        rows.append((f"(b) {n}-task array, no max_parallel", f"{ours:.0f} tasks/s",
                     f"{base:.0f}/s ({WINDOW} threads of subprocess.run)", ratio))
    if only in (None, "c"):
        base, ours, ratio = paired(lambda: popen_all(m), run_jobs, m)
        rows.append((f"(c) {m} run_job + wait", f"{ours:.0f} jobs/s",
                     f"{base:.0f}/s (Popen + wait)", ratio))
    if only is None:
        firsts = sorted(first_run_job(parent) for _ in range(5))
        rows.append(("(d) first run_job, agent start included",
                     f"{firsts[2] * 1000:.0f} ms (median of 5)", "", ""))
    report("process tracker: arrays and run_job", rows)


if __name__ == "__main__":
    main()
