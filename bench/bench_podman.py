"""Benchmark of the Podman tracker against podman-py used by hand, measured in the same run.

(1) start-to-exit latency of a ``/bin/true`` container: ``run_job`` + ``wait_terminated``
    against podman-py's create + start + wait, median of N each, alternating (target <= 1.15x);
    for reference also against the leanest hand-written path (raw libpod calls);
(2) throughput of a 100-task array with max_parallel 4 (``run_bulk_jobs`` +
    ``wait_all_terminated``) against a thread pool of 4 doing podman-py's create/start/wait by
    hand (target >= 0.9x).
Containers are removed outside the measurements; array rounds alternate, best of each counts.
Run: .venv/bin/python bench/bench_podman.py [N] [TASKS] [ROUNDS]   (needs the service and the
test image)
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import podman

sys.path.insert(0, os.path.dirname(__file__))
from _common import median_of, report, timed  # noqa: E402

import pydrmaa2 as d2  # noqa: E402
from pydrmaa2.testing.targets import TEST_IMAGE  # noqa: E402
from pydrmaa2.trackers.base import Contact  # noqa: E402
from pydrmaa2.trackers.podman import _base_url  # noqa: E402

PARALLEL = 4


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    tasks = int(sys.argv[2]) if len(sys.argv) > 2 else 100
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 2
    client = podman.PodmanClient(base_url=_base_url(Contact.parse("podman")))
    home = Path(tempfile.mkdtemp(prefix="pydrmaa2-bench-"))
    sm = d2.SessionManager(home=home)
    js = sm.create_job_session("bench", contact="podman")
    jt = d2.JobTemplate(remote_command="/bin/true", job_category=TEST_IMAGE)
    by_hand: list[str] = []

    def podman_py_one() -> None:
        container = client.containers.create(TEST_IMAGE, ["/bin/true"])
        container.start()
        container.wait()
        by_hand.append(container.id)

    def libpod_one() -> None:
        # The leanest hand-written path: podman-py's raw libpod calls, without the inspect its
        # containers.create adds, and a wait asked to poll every 10 ms.
        cid = client.api.post("/containers/create", headers={"Content-Type": "application/json"},
                              data=json.dumps({"image": TEST_IMAGE, "command": ["/bin/true"]})
                              ).json()["Id"]
        client.api.post(f"/containers/{cid}/start").raise_for_status()
        client.api.post(f"/containers/{cid}/wait", params={"interval": "10ms"}).raise_for_status()
        by_hand.append(cid)

    def ours_one() -> None:
        js.run_job(jt).wait_terminated()

    def clean() -> None:
        for cid in by_hand:
            client.api.delete(f"/containers/{cid}").raise_for_status()
        by_hand.clear()
        for job in js.get_jobs():
            job.reap()

    # Warm up both paths outside the measurement (connections, image, page cache, the agent).
    podman_py_one()
    ours_one()
    js.wait_all_terminated(js.run_bulk_jobs(jt, 1, 2, max_parallel=1).jobs)
    clean()

    base, lean, mine = [], [], []
    for _ in range(n):
        base.append(timed(podman_py_one))
        lean.append(timed(libpod_one))
        mine.append(timed(ours_one))
    clean()

    def podman_py_array() -> None:
        with ThreadPoolExecutor(PARALLEL) as pool:
            list(pool.map(lambda _: podman_py_one(), range(tasks)))

    def ours_array() -> None:
        js.wait_all_terminated(js.run_bulk_jobs(jt, 1, tasks, max_parallel=PARALLEL).jobs)

    # Rounds alternate so that a change in the machine's load hits both sides; best of each.
    base_times, ours_times = [], []
    for _ in range(rounds):
        base_times.append(timed(podman_py_array))
        clean()
        ours_times.append(timed(ours_array))
        clean()
    base_t, ours_t = min(base_times), min(ours_times)
    js.close()
    sm.destroy_job_session("bench")

    b, t, m = median_of(base), median_of(lean), median_of(mine)
    ratio, throughput = m / b, base_t / ours_t
    report(f"podman tracker (Python {sys.version.split()[0]}, {os.cpu_count()} cores, "
           f"Podman {client.version()['Version']}, podman-py {podman.__version__})", [
        (f"(1) /bin/true start-to-exit, median of {n}, ms", f"{m * 1e3:.1f}", f"{b * 1e3:.1f}",
         f"{ratio:.2f}x (<= 1.15)"),
        ("    vs raw libpod create + start + wait", f"{m * 1e3:.1f}", f"{t * 1e3:.1f}",
         f"{m / t:.2f}x"),
        (f"(2) {tasks} tasks, max_parallel {PARALLEL}, best of {rounds}, s", f"{ours_t:.2f}",
         f"{base_t:.2f}", f"{throughput:.2f}x (>=0.90)"),
        ("    tasks per second", f"{tasks / ours_t:.1f}", f"{tasks / base_t:.1f}", ""),
    ])
    print(f"\nbaseline: podman-py's containers.create + start + wait (a pool of {PARALLEL} for the"
          "\narray); Podman 4.3's wait endpoint answers about 250 ms after the exit, whatever"
          "\ninterval it is given")
    print(f"latency ratio (pydrmaa2 / podman-py): {ratio:.2f}  {'ok' if ratio <= 1.15 else 'MISSED'}")
    print(f"throughput ratio (podman-py / pydrmaa2 time): {throughput:.2f}  "
          f"{'ok' if throughput >= 0.9 else 'MISSED'}")
    client.close()


if __name__ == "__main__":
    main()
