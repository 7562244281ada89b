"""The store at scale: N jobs in one store (default 1,000,000), and a large array's submission.

(a) get_jobs() of a session holding all N jobs
(b) job.state of a finished job (median of 1,000 reads)
(c) open_job_session of that session
(d) the store's size on disk
(e) run_bulk_jobs of an M-task array (default 100,000; process tracker, submit_as_hold so nothing
    runs): the submit call's time and this program's peak RSS
The N finished jobs are written as the store records ended jobs (arrays of done tasks with their
JobInfo), through the store's own calls, so filling it takes seconds rather than N real jobs.
Run: .venv/bin/python bench/bench_store.py [N [M]]
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(__file__))
from _common import report  # noqa: E402

import pydrmaa2 as d2  # noqa: E402
from pydrmaa2 import _codec  # noqa: E402
from pydrmaa2._store import Phase, dumps  # noqa: E402

CHUNK = 100_000


def fill(sm: d2.SessionManager, session: str, n: int) -> None:
    """N ended jobs in ``session``, as arrays of CHUNK done tasks with their JobInfo."""
    template = dumps(_codec.encode(d2.JobTemplate(remote_command="/bin/true")))
    info = json.loads(dumps(_codec.encode(d2.JobInfo(state=d2.JobState.DONE, exit_status=0))))
    store = sm._store
    for start in range(0, n, CHUNK):
        count = min(CHUNK, n - start)
        array_id, ids = store.add_array(session, template, 1, count, 1, None,
                                        [(i, Phase.TERMINAL, "done") for i in range(1, count + 1)])
        with store.db.transaction() as db:
            db.executemany("UPDATE jobs SET info=? WHERE id=?",
                           [(json.dumps({**info, "id": j}), j) for j in ids])


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    m = int(sys.argv[2]) if len(sys.argv) > 2 else 100_000
    home = Path(tempfile.mkdtemp(prefix="pydrmaa2-bench-"))
    sm = d2.SessionManager(home=home)
    sm.create_job_session("big").close()
    t = time.perf_counter()
    fill(sm, "big", n)
    filled = time.perf_counter() - t
    size = sum(f.stat().st_size for f in home.glob("store.sqlite*"))

    t = time.perf_counter()
    js = sm.open_job_session("big")
    opened = time.perf_counter() - t
    t = time.perf_counter()
    jobs = js.get_jobs()
    listed = time.perf_counter() - t
    assert len(jobs) == n, len(jobs)
    job = jobs[n // 2]
    reads = []
    for _ in range(1000):
        t = time.perf_counter()
        assert job.state is d2.JobState.DONE
        reads.append(time.perf_counter() - t)
    del jobs

    # (e) in a program of its own: its peak RSS is the submission's, not the listing's above.
    # Peak RSS as VmHWM (this program's own pages: ru_maxrss would count the forking parent's).
    code = ("import sys, time, pydrmaa2 as d2\n"
            "def hwm():\n"
            "    return next(int(x.split()[1]) for x in open('/proc/self/status') "
            "if x.startswith('VmHWM'))\n"
            "sm = d2.SessionManager(home=sys.argv[1]); js = sm.create_job_session('submit')\n"
            "before = hwm(); t = time.perf_counter()\n"
            "js.run_bulk_jobs(d2.JobTemplate(remote_command='/bin/true', submit_as_hold=True), "
            "1, int(sys.argv[2]))\n"
            "print(time.perf_counter() - t, before, hwm())\n")
    out = subprocess.run([sys.executable, "-c", code, str(home), str(m)], check=True,
                         capture_output=True, text=True).stdout.split()
    submitted, before, peak = float(out[0]), int(out[1]), int(out[2])
    report(f"the store at {n:,} jobs (filled in {filled:.0f} s); a {m:,}-task array", [
        ("(a) get_jobs() of all", f"{listed:.2f} s", "", "target < 1 s"),
        ("(b) job.state of an ended job", f"{statistics.median(reads) * 1e6:.0f} us", "",
         "target < 200 us"),
        ("(c) open_job_session", f"{opened * 1000:.0f} ms", "", "target < 100 ms"),
        ("(d) store size", f"{size / 2**20:.0f} MB", "", "target < 1 GB"),
        (f"(e) run_bulk_jobs of {m:,} tasks", f"{submitted:.1f} s", "", "target < 10 s"),
        ("(e) peak RSS of this program", f"{peak / 1024:.0f} MB", f"{before / 1024:.0f} MB before",
         "target < 150 MB"),
    ])


if __name__ == "__main__":
    main()
