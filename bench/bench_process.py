"""Benchmarks of the process tracker, each against a raw baseline measured in the same run.

(a) 1,000 /bin/true jobs via run_job, then wait for all, vs subprocess.Popen + wait
(b) the same as one run_bulk_jobs array
(c) latency from a job's exit to wait_terminated returning
(d) job.state and get_jobs() with 10,000 jobs in the store, and the store's size
Run: .venv/bin/python bench/bench_process.py [N]
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(__file__))
from _common import median_of, report, timed  # noqa: E402

import pydrmaa2 as d2  # noqa: E402


def baseline_popen(n: int) -> None:
    procs = [subprocess.Popen(["/bin/true"]) for _ in range(n)]
    for p in procs:
        p.wait()


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    home = Path(tempfile.mkdtemp(prefix="pydrmaa2-bench-"))
    sm = d2.SessionManager(home=home)
    js = sm.create_job_session("bench")
    jt = d2.JobTemplate(remote_command="/bin/true")
    js.wait_all_terminated([js.run_job(jt)])  # start the agent outside the measurement

    def run_jobs() -> None:
        js.wait_all_terminated([js.run_job(jt) for _ in range(n)])

    def run_array() -> None:
        js.wait_all_terminated(js.run_bulk_jobs(jt, 1, n).jobs)

    base_a = timed(lambda: baseline_popen(n))
    ours_a = timed(run_jobs)
    base_b = timed(lambda: baseline_popen(n))
    ours_b = timed(run_array)

    # (c) exit-to-return latency: the job stamps the time just before it exits.
    lat, base_lat = [], []
    stamp = home / "stamp"
    for _ in range(30):
        job = js.run_job(d2.JobTemplate(remote_command="/bin/sh",
                                        args=["-c", f"sleep 0.05; date +%s.%N > {stamp}"]))
        job.wait_terminated()
        lat.append(time.time() - float(stamp.read_text()))
        p = subprocess.Popen(["/bin/sh", "-c", f"sleep 0.05; date +%s.%N > {stamp}"])
        p.wait()
        base_lat.append(time.time() - float(stamp.read_text()))

    # (d) 10,000 jobs in the store
    total = 10_000
    have = len(js.get_jobs())
    while have < total:
        chunk = min(2000, total - have)
        js.wait_all_terminated(js.run_bulk_jobs(jt, 1, chunk).jobs)
        have += chunk
    finished = js.get_jobs()[0]
    finished.state  # noqa: B018 - cache the terminal state once
    state_times = []
    for _ in range(2000):
        t0 = time.perf_counter()
        finished.state  # noqa: B018
        state_times.append(time.perf_counter() - t0)
    get_jobs_times = [timed(js.get_jobs) for _ in range(10)]
    size = sum(f.stat().st_size for f in home.iterdir() if ".sqlite" in f.name)

    report(f"process tracker, {n} jobs (Python {sys.version.split()[0]}, {os.cpu_count()} cores)", [
        (f"(a) {n} run_job + wait_all, s", f"{ours_a:.3f}", f"{base_a:.3f}",
         f"{base_a / ours_a:.2f}x tput"),
        (f"(b) run_bulk_jobs of {n} + wait_all, s", f"{ours_b:.3f}", f"{base_b:.3f}",
         f"{base_b / ours_b:.2f}x tput"),
        ("(c) exit -> wait_terminated, median ms", f"{median_of(lat) * 1e3:.2f}",
         f"{median_of(base_lat) * 1e3:.2f}", "target < 5 ms"),
        ("(d) job.state of a finished job, median us", f"{median_of(state_times) * 1e6:.0f}", "-",
         "target < 200 us"),
        (f"(d) get_jobs() over {len(js.get_jobs())} jobs, median ms",
         f"{median_of(get_jobs_times) * 1e3:.1f}", "-", "target < 100 ms"),
        ("(d) store size with 10,000 jobs, MB", f"{size / 1e6:.1f}", "-", "target < 20 MB"),
    ])
    print("\nthroughput ratios are baseline time / pydrmaa2 time (target >= 0.50x)")


if __name__ == "__main__":
    main()
