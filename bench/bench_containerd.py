"""Benchmark of the containerd tracker against containerd's own CLI, measured in the same run.

(1) start-to-exit latency of a ``/bin/true`` job: ``run_job`` + ``wait_terminated`` through
    pydrmaa2 against ``ctr -n pydrmaa2 run --rm IMAGE ID /bin/true`` (a subprocess), median of N
    each, alternating; also pydrmaa2 with ``reap`` (container and snapshot deleted, as ``--rm``
    does);
(2) throughput of a 100-task array with max_parallel 4 (``run_bulk_jobs`` +
    ``wait_all_terminated``) against a thread pool of 4 each running ``ctr run --rm`` (target
    >= 0.9x); the tasks are reaped after the measurement (also shown with the reap, as
    ``ctr --rm`` deletes within it).
Array rounds alternate, best of each counts.
Run: .venv/bin/python bench/bench_containerd.py [N] [TASKS] [ROUNDS]   (needs containerd and
the test image)
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, os.path.dirname(__file__))
from _common import median_of, report, timed  # noqa: E402

import pydrmaa2 as d2  # noqa: E402
from pydrmaa2.testing.targets import TEST_IMAGE  # noqa: E402
from pydrmaa2.trackers.containerd import DEFAULT_NAMESPACE, normalize_image  # noqa: E402

PARALLEL = 4


def ctr_run(tag: object) -> None:
    subprocess.run(["ctr", "-n", DEFAULT_NAMESPACE, "run", "--rm", normalize_image(TEST_IMAGE),
                    f"pydrmaa2-bench-{os.getpid()}-{tag}", "/bin/true"], check=True,
                   stdout=subprocess.DEVNULL)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    tasks = int(sys.argv[2]) if len(sys.argv) > 2 else 100
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 2
    home = Path(tempfile.mkdtemp(prefix="pydrmaa2-bench-"))
    sm = d2.SessionManager(home=home)
    js = sm.create_job_session("bench", contact="containerd")
    jt = d2.JobTemplate(remote_command="/bin/true", job_category=TEST_IMAGE)
    jobs: list[d2.Job] = []

    def ours() -> None:
        job = js.run_job(jt)
        job.wait_terminated()
        jobs.append(job)

    def ours_reaped() -> None:
        job = js.run_job(jt)
        job.wait_terminated()
        job.reap()

    def clean() -> None:
        for job in js.get_jobs():
            job.reap()
        jobs.clear()

    # Warm up both paths outside the measurement (connection, image config, page cache, the
    # agent's array driver).
    ours_reaped()
    ctr_run(n)
    js.wait_all_terminated(js.run_bulk_jobs(jt, 1, 2, max_parallel=1).jobs)
    clean()
    base, mine, mine_reaped = [], [], []
    for i in range(n):
        base.append(timed(lambda i=i: ctr_run(i)))
        mine.append(timed(ours))
        mine_reaped.append(timed(ours_reaped))
    clean()

    def ctr_array(r: int) -> None:
        with ThreadPoolExecutor(PARALLEL) as pool:
            list(pool.map(lambda i: ctr_run(f"a{r}-{i}"), range(tasks)))

    def ours_array() -> None:
        js.wait_all_terminated(js.run_bulk_jobs(jt, 1, tasks, max_parallel=PARALLEL).jobs)

    # Rounds alternate so that a change in the machine's load hits both sides; best of each.
    base_times, ours_times, reaped_times = [], [], []
    for r in range(rounds):
        base_times.append(timed(lambda r=r: ctr_array(r)))
        ours_times.append(timed(ours_array))
        reaped_times.append(ours_times[-1] + timed(clean))
    base_t, ours_t, reaped_t = min(base_times), min(ours_times), min(reaped_times)
    js.close()
    sm.destroy_job_session("bench")

    b, m, r = median_of(base), median_of(mine), median_of(mine_reaped)
    throughput = base_t / ours_t
    report(f"containerd tracker (Python {sys.version.split()[0]}, {os.cpu_count()} cores)", [
        (f"(1) run_job + wait_terminated, median of {n}, ms", f"{m * 1e3:.1f}", f"{b * 1e3:.1f}",
         f"{m / b:.2f}x (<= 1.0)"),
        ("    ... + reap (as ctr run --rm), ms", f"{r * 1e3:.1f}", f"{b * 1e3:.1f}",
         f"{r / b:.2f}x"),
        (f"(2) {tasks} tasks, max_parallel {PARALLEL}, best of {rounds}, s", f"{ours_t:.2f}",
         f"{base_t:.2f}", f"{throughput:.2f}x (>=0.90)"),
        ("    tasks per second", f"{tasks / ours_t:.1f}", f"{tasks / base_t:.1f}", ""),
        ("    ... + reap of the tasks after it, s", f"{reaped_t:.2f}", f"{base_t:.2f}",
         f"{base_t / reaped_t:.2f}x"),
    ])
    print(f"\nbaseline: ctr -n {DEFAULT_NAMESPACE} run --rm IMAGE ID /bin/true (a pool of "
          f"{PARALLEL} for the array)\nlatency ratio is pydrmaa2 / baseline, throughput ratio "
          "baseline / pydrmaa2")
    print(f"throughput ratio (ctr / pydrmaa2 time): {throughput:.2f}  "
          f"{'ok' if throughput >= 0.9 else 'MISSED'}")


if __name__ == "__main__":
    main()
