"""Benchmark of the Docker tracker against the Docker SDK used by hand, measured in the same run.

(1) start-to-exit latency of a ``/bin/true`` container: ``run_job`` + ``wait_terminated`` against
    the SDK's low-level create + start + wait, median of N each, alternating (target <= 1.15x);
(2) throughput of a 100-task array with max_parallel 4 against a thread pool of 4 doing
    create/start/wait by hand (target >= 0.9x).
Containers are removed outside the measurements; array rounds alternate, best of each counts.
Run: .venv/bin/python bench/bench_docker.py [N] [TASKS] [ROUNDS]   (needs the engine and the test image)
"""

from __future__ import annotations

import os
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import docker

sys.path.insert(0, os.path.dirname(__file__))
from _common import median_of, report, timed  # noqa: E402

import pydrmaa2 as d2  # noqa: E402
from pydrmaa2.testing.targets import TEST_IMAGE  # noqa: E402

PARALLEL = 4


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    tasks = int(sys.argv[2]) if len(sys.argv) > 2 else 100
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 2
    api = docker.APIClient(version="auto")
    home = Path(tempfile.mkdtemp(prefix="pydrmaa2-bench-"))
    sm = d2.SessionManager(home=home)
    js = sm.create_job_session("bench", contact="docker")
    jt = d2.JobTemplate(remote_command="/bin/true", job_category=TEST_IMAGE)
    by_hand: list[str] = []

    def sdk_one() -> None:
        cid = api.create_container(TEST_IMAGE, ["/bin/true"])["Id"]
        api.start(cid)
        api.wait(cid)
        by_hand.append(cid)

    def ours_one() -> None:
        js.run_job(jt).wait_terminated()

    def clean() -> None:
        for cid in by_hand:
            api.remove_container(cid)
        by_hand.clear()
        for job in js.get_jobs():
            job.reap()

    # Warm up both paths outside the measurement (connections, image, page cache, the agent).
    sdk_one()
    ours_one()
    js.wait_all_terminated(js.run_bulk_jobs(jt, 1, 2, max_parallel=1).jobs)
    clean()

    base, mine = [], []
    for _ in range(n):
        base.append(timed(sdk_one))
        mine.append(timed(ours_one))
    clean()

    def sdk_array() -> None:
        with ThreadPoolExecutor(PARALLEL) as pool:
            list(pool.map(lambda _: sdk_one(), range(tasks)))

    def ours_array() -> None:
        js.wait_all_terminated(js.run_bulk_jobs(jt, 1, tasks, max_parallel=PARALLEL).jobs)

    # Rounds alternate so that a change in the machine's load hits both sides; best of each.
    base_times, ours_times = [], []
    for _ in range(rounds):
        base_times.append(timed(sdk_array))
        clean()
        ours_times.append(timed(ours_array))
        clean()
    base_t, ours_t = min(base_times), min(ours_times)
    js.close()
    sm.destroy_job_session("bench")

    b, m = median_of(base), median_of(mine)
    latency, throughput = m / b, base_t / ours_t
    report(f"docker tracker (Python {sys.version.split()[0]}, {os.cpu_count()} cores, "
           f"engine {api.version()['Version']})", [
        (f"(1) /bin/true start-to-exit, median of {n}, ms", f"{m * 1e3:.1f}", f"{b * 1e3:.1f}",
         f"{latency:.2f}x (<=1.15)"),
        (f"(2) {tasks} tasks, max_parallel {PARALLEL}, best of {rounds}, s", f"{ours_t:.2f}",
         f"{base_t:.2f}", f"{throughput:.2f}x (>=0.90)"),
        ("    tasks per second", f"{tasks / ours_t:.1f}", f"{tasks / base_t:.1f}", ""),
    ])
    print("\nbaseline: the docker SDK's APIClient, create + start + wait (a pool of 4 for the array)")
    print(f"latency ratio (pydrmaa2 / SDK): {latency:.2f}  {'ok' if latency <= 1.15 else 'MISSED'}")
    print(f"throughput ratio (pydrmaa2 / SDK): {throughput:.2f}  "
          f"{'ok' if throughput >= 0.9 else 'MISSED'}")


if __name__ == "__main__":
    main()
