"""Benchmark of the containerd tracker against containerd's own CLI, measured in the same run.

Start-to-exit latency of a ``/bin/true`` job: ``run_job`` + ``wait_terminated`` through pydrmaa2
against ``ctr -n pydrmaa2 run --rm IMAGE ID /bin/true`` (a subprocess), median of N each,
alternating; also pydrmaa2 with ``reap`` (container and snapshot deleted, as ``--rm`` does).
Run: .venv/bin/python bench/bench_containerd.py [N]   (needs containerd and the test image)
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, os.path.dirname(__file__))
from _common import median_of, report, timed  # noqa: E402

import pydrmaa2 as d2  # noqa: E402
from pydrmaa2.testing.targets import TEST_IMAGE  # noqa: E402
from pydrmaa2.trackers.containerd import DEFAULT_NAMESPACE, normalize_image  # noqa: E402


def ctr_run(n: int) -> None:
    subprocess.run(["ctr", "-n", DEFAULT_NAMESPACE, "run", "--rm", normalize_image(TEST_IMAGE),
                    f"pydrmaa2-bench-{os.getpid()}-{n}", "/bin/true"], check=True,
                   stdout=subprocess.DEVNULL)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 30
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

    # Warm up both paths outside the measurement (connection, image config, page cache).
    ours_reaped()
    ctr_run(n)
    base, mine, mine_reaped = [], [], []
    for i in range(n):
        base.append(timed(lambda i=i: ctr_run(i)))
        mine.append(timed(ours))
        mine_reaped.append(timed(ours_reaped))
    for job in jobs:
        job.reap()
    js.close()
    sm.destroy_job_session("bench")

    b, m, r = median_of(base), median_of(mine), median_of(mine_reaped)
    report(f"containerd tracker, median of {n} (Python {sys.version.split()[0]}, "
           f"{os.cpu_count()} cores)", [
        ("run_job + wait_terminated of /bin/true, ms", f"{m * 1e3:.1f}", f"{b * 1e3:.1f}",
         f"{m / b:.2f}x (<= 1.0)"),
        ("... + reap (as ctr run --rm), ms", f"{r * 1e3:.1f}", f"{b * 1e3:.1f}", f"{r / b:.2f}x"),
    ])
    print("\nbaseline: ctr -n pydrmaa2 run --rm IMAGE ID /bin/true; ratio is pydrmaa2 / baseline")


if __name__ == "__main__":
    main()
