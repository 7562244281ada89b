"""What reading and waiting on Slurm jobs costs the scheduler, counted by wrappers on PATH.

``squeue`` and ``sacct`` are wrapped by scripts that log each call and run the real command;
only the measured programs see the wrappers. Each figure is taken with the store's shared look
(pydrmaa2 as it is) and with every program looking for itself (``shared.fresh = 0``: how it was
before, the baseline), in the same run:

(a) ``job.state`` of each of N held jobs (default 200), one by one: calls and time
(b) ``job.info`` of each of them: calls and time
(c) P programs (default 10) each waiting on M held jobs (default 100, one held array each)
    for S seconds (default 10): squeue calls per second, all programs together
    (target: at most 2)
Run: .venv/bin/python bench/bench_slurm_polling.py [N [P [M [S]]]]   (needs a Slurm cluster)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(__file__))
from _common import report  # noqa: E402

import pydrmaa2 as d2  # noqa: E402

WRAPPER = """#!/bin/sh
echo "$(basename "$0") $$" >> {log}
exec {real} "$@"
"""

PROGRAM = textwrap.dedent("""
    import sys, time
    import pydrmaa2 as d2
    session, shared, first, count, seconds = sys.argv[1:6]
    sm = d2.SessionManager()
    js = sm.open_job_session(session)
    if shared == "0":
        js._tracker.shared.fresh = 0
    jobs = [d2.Job(js, str(i)) for i in range(int(first), int(first) + int(count))]
    print("ready", flush=True)
    sys.stdin.readline()
    try:
        js.wait_all_terminated(jobs, float(seconds))
    except d2.TimeoutError:
        pass
""")


def wrappers(tmp: Path) -> tuple[Path, Path]:
    """A directory of counting squeue/sacct wrappers, and their log."""
    bindir, log = tmp / "bin", tmp / "calls.log"
    bindir.mkdir()
    for cmd in ("squeue", "sacct"):
        real = shutil.which(cmd)
        assert real, f"{cmd} is not on PATH"
        (bindir / cmd).write_text(WRAPPER.format(log=log, real=real))
        (bindir / cmd).chmod(0o755)
    log.touch()
    return bindir, log


def calls(log: Path, cmd: str) -> int:
    return sum(1 for line in log.read_text().splitlines() if line.startswith(cmd + " "))


def main() -> None:
    n, programs, per, seconds = (int(a) for a in (sys.argv[1:] + ["200", "10", "100", "10"])[:4])
    tmp = Path(tempfile.mkdtemp(prefix="pydrmaa2-bench-poll-"))
    bindir, log = wrappers(tmp)
    os.environ["PYDRMAA2_HOME"] = str(tmp / "home")
    sm = d2.SessionManager()
    js = sm.create_job_session("poll", contact="slurm")
    held = d2.JobTemplate(remote_command="/bin/true", submit_as_hold=True)
    rows = []
    try:
        singles = [js.run_bulk_jobs(held, 1, n).jobs]
        jobs = singles[0]
        arrays = [js.run_bulk_jobs(held, 1, per) for _ in range(programs)]
        os.environ["PATH"] = f"{bindir}:{os.environ['PATH']}"
        for what, read in (("state", lambda j: j.state), ("info", lambda j: j.info)):
            for shared in (True, False):
                js._tracker.shared.fresh = 0.5 if shared else 0
                js._tracker.shared.stale([js._row(j.id).tracker_id for j in jobs])
                before = calls(log, "squeue")
                t0 = time.perf_counter()
                for j in jobs:
                    read(j)
                took = time.perf_counter() - t0
                used = calls(log, "squeue") - before
                if shared:
                    ours = (used, took)
                else:
                    rows.append((f"({'a' if what == 'state' else 'b'}) job.{what} of {n} held jobs",
                                 f"{ours[0]} squeue, {ours[1]:.2f} s",
                                 f"{used} squeue, {took:.2f} s", f"{used / max(ours[0], 1):.0f}x fewer"))
        js._tracker.shared.fresh = 0.5
        for shared in (True, False):
            procs = [subprocess.Popen([sys.executable, "-c", PROGRAM, "poll", "1" if shared else "0",
                                       arr.jobs[0].id, str(per), str(seconds)],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
                     for arr in arrays]
            for p in procs:
                assert p.stdout is not None and p.stdout.readline().strip() == "ready"
            before_q, before_a = calls(log, "squeue"), calls(log, "sacct")
            t0 = time.perf_counter()
            for p in procs:
                assert p.stdin is not None
                p.stdin.write("go\n")
                p.stdin.flush()
            for p in procs:
                p.wait()
            took = time.perf_counter() - t0
            rate = (calls(log, "squeue") - before_q) / took
            acct = (calls(log, "sacct") - before_a) / took
            if shared:
                ours_rate, ours_acct = rate, acct
            else:
                rows.append((f"(c) {programs} programs x {per} held jobs, wait {seconds} s",
                             f"{ours_rate:.2f} squeue/s", f"{rate:.2f} squeue/s",
                             f"target <= 2/s (sacct {ours_acct:.2f}/s)"))
    finally:
        os.environ["PATH"] = os.environ["PATH"].split(":", 1)[1]
        for arr in [*arrays] if "arrays" in dir() else []:
            arr.terminate()
        for j in jobs if "jobs" in dir() else []:
            try:
                j.terminate()
            except d2.Drmaa2Error:
                pass
        js.close()
    report("Slurm: scheduler calls of reads and waits (shared look vs each program alone)", rows)


if __name__ == "__main__":
    main()
