"""A Slurm array larger than MaxArraySize: its submission, and what waiting on it costs.

(a) Submitting an N-task array (default 100,000), held so that nothing runs: ``run_bulk_jobs``
    (split by pydrmaa2 into submissions of at most MaxArraySize - 1 tasks, recorded in the
    store) against the same plain ``sbatch --hold --array=0-K`` calls one after another; the
    client's resident memory after the call (target: the call under 5 s, under 150 MB).
(b) Waiting on that array for S seconds (default 20), and on a 1,000-task held array for as
    long: ``squeue`` calls a minute, counted by a wrapper on PATH (bounded polling: the same
    whatever the number of tasks).
Each array is cancelled afterwards (slurmctld keeps each cancelled task's record for MinJobAge).
The cluster must allow the tasks: MaxJobCount at least 2 N above the jobs it holds
(scripts/engines.sh configures 300,000).
Run: .venv/bin/python bench/bench_slurm_array.py [N [S]]   (needs a Slurm cluster)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(__file__))
from _common import report, timed  # noqa: E402

import pydrmaa2 as d2  # noqa: E402

WRAPPER = """#!/bin/sh
echo "$(basename "$0")" >> {log}
exec {real} "$@"
"""


def config(key: str) -> str:
    out = subprocess.run(["scontrol", "show", "config"], check=True, capture_output=True,
                         text=True).stdout
    for line in out.splitlines():
        if line.split("=", 1)[0].strip() == key:
            return line.split("=", 1)[1].strip()
    raise SystemExit(f"scontrol show config has no {key}")


def records() -> int:
    """Job records slurmctld holds now (array tasks not yet split count as their array's)."""
    out = subprocess.run(["squeue", "-h", "-r", "-t", "all", "-o", "%i"], check=True,
                         capture_output=True, text=True).stdout
    return len(out.splitlines())


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def raw_submit(n: int, chunk: int) -> list[str]:
    ids = []
    for first in range(0, n, chunk):
        last = min(first + chunk, n) - 1
        out = subprocess.run(
            ["sbatch", "--parsable", "--hold", f"--array=0-{last - first}", "--output=/dev/null",
             "--error=/dev/null", "--wrap=/bin/true"],
            check=True, capture_output=True, text=True).stdout
        ids.append(out.strip().split(";")[0])
    return ids


def squeue_calls_a_minute(js: d2.JobSession, jobs: list[d2.Job], log: Path, seconds: float
                          ) -> float:
    log.write_text("")
    t0 = time.monotonic()
    try:
        js.wait_all_terminated(jobs, seconds)
    except d2.TimeoutError:
        pass
    elapsed = time.monotonic() - t0
    return sum(1 for line in log.read_text().splitlines() if line == "squeue") / elapsed * 60


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 20.0
    chunk = int(config("MaxArraySize")) - 1
    room = int(config("MaxJobCount")) - records()
    if room < 2 * n + 2000:
        raise SystemExit(f"MaxJobCount {config('MaxJobCount')} leaves room for {room} tasks; "
                         f"this needs {2 * n + 2000} (see scripts/engines.sh)")
    tmp = Path(tempfile.mkdtemp(prefix="pydrmaa2-bench-"))
    # squeue and sacct wrapped for the agent this program starts (it polls for every waiter)
    wrappers = tmp / "bin"
    wrappers.mkdir()
    calls = tmp / "calls.log"
    for name in ("squeue", "sacct"):
        real = shutil.which(name)
        assert real, f"{name} not found"
        (wrappers / name).write_text(WRAPPER.format(log=calls, real=real))
        (wrappers / name).chmod(0o755)
    os.environ["PATH"] = f"{wrappers}:{os.environ['PATH']}"
    sm = d2.SessionManager(home=tmp / "home")
    js = sm.create_job_session("bench", contact="slurm")
    held = d2.JobTemplate(remote_command="/bin/true", submit_as_hold=True)

    raw_ids: list[str] = []
    arrays: list[d2.JobArray] = []
    try:  # nothing held stays behind, whatever happens
        t_raw = timed(lambda: raw_ids.extend(raw_submit(n, chunk)))
        subprocess.run(["scancel", *raw_ids], check=False)
        before = rss_mb()
        t_ours = timed(lambda: arrays.append(js.run_bulk_jobs(held, 1, n)))
        after = rss_mb()
        arrays.append(js.run_bulk_jobs(held, 1, 1000))
        big_rate = squeue_calls_a_minute(js, arrays[0].jobs, calls, seconds)
        small_rate = squeue_calls_a_minute(js, arrays[1].jobs, calls, seconds)
    finally:
        if raw_ids:
            subprocess.run(["scancel", *raw_ids], check=False)
        for arr in arrays:
            arr.terminate()
    report(f"slurm: a {n}-task array ({-(-n // chunk)} submissions of at most {chunk})", [
        ("(a) submit, held", f"{t_ours:.2f} s", f"{t_raw:.2f} s (sbatch)",
         f"{t_ours / t_raw:.2f}x time (target < 5 s)"),
        ("(a) client RSS after the call", f"{after:.0f} MB", f"{before:.0f} MB before", ""),
        (f"(b) squeue calls a minute, waiting {seconds:.0f} s", f"{big_rate:.0f} ({n} tasks)",
         f"{small_rate:.0f} (1000 tasks)", ""),
    ])
    sm.close()


if __name__ == "__main__":
    main()
