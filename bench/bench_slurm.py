"""Benchmark of the Slurm tracker against plain Slurm commands, measured in the same run.

(a) Submission throughput of N jobs (default 200): ``run_job`` through pydrmaa2 against plain
    ``sbatch --parsable --wrap=/bin/true`` subprocess calls, interleaved one by one (in turn
    first and second) so that both see the same controller load from the jobs already running;
    target: pydrmaa2 at least 0.9x the jobs per second of plain sbatch. slurmctld on a 2-core
    machine stalls now and then for 20-120 ms (either side's call, at random), and a single
    stall moves one 200-job total by 10%: so the measurement is made in ROUNDS rounds (default
    9) of N jobs each, and the table shows the median round with the range of all rounds, and
    the median of the single submissions (which stalls do not move).
(b) (measured first) A 200-task array of ``/bin/true`` in one submission: time to submit
    (``run_bulk_jobs`` vs ``sbatch --array=1-200``, both held so that nothing runs meanwhile,
    median of 7 alternating), and time to drain one array each way on an idle cluster
    (``wait_all_terminated`` vs polling ``squeue`` every 0.5 s, pydrmaa2's own poll interval).
Run: .venv/bin/python bench/bench_slurm.py [N [ROUNDS]]   (needs a Slurm cluster answering sinfo)
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
from pydrmaa2.trackers.slurm import POLL_INTERVAL  # noqa: E402

ARRAY = 200


def sbatch(*args: str) -> str:
    out = subprocess.run(["sbatch", "--parsable", "--output=/dev/null", "--error=/dev/null",
                          *args], check=True, capture_output=True, text=True).stdout
    return out.strip().split(";")[0]


def scancel(ids: list[str]) -> None:
    for k in range(0, len(ids), 500):
        subprocess.run(["scancel", *ids[k:k + 500]], check=False)


def drained(job_id: str) -> bool:
    out = subprocess.run(["squeue", "-h", "-r", "-j", job_id, "-o", "%T"], capture_output=True,
                         text=True).stdout
    return not any(s in out for s in ("PENDING", "RUNNING", "COMPLETING", "CONFIGURING"))


def quiesce() -> None:
    """Wait until the cluster runs nothing and has nothing eligible to start (cancelled jobs
    take slurmctld a while); held jobs and jobs waiting for their begin time do not count."""
    deadline = time.monotonic() + 300
    while True:
        out = subprocess.run(["squeue", "-h", "-o", "%T %r"], capture_output=True, text=True).stdout
        busy = [line for line in out.splitlines()
                if not line.startswith("PENDING") or line.split()[-1] not in (
                    "JobHeldUser", "JobHeldAdmin", "BeginTime")]
        if not busy:
            return
        if time.monotonic() > deadline:
            raise SystemExit(f"the cluster did not drain within 300 s: {busy[:3]}")
        time.sleep(POLL_INTERVAL)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    n_rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 9
    home = Path(tempfile.mkdtemp(prefix="pydrmaa2-bench-"))
    sm = d2.SessionManager(home=home)
    js = sm.create_job_session("bench", contact="slurm")
    jt = d2.JobTemplate(remote_command="/bin/true")
    plain: list[str] = []
    jobs: list[d2.Job] = []

    # Warm up both paths outside the measurement (batch script written, the cluster's
    # configuration read once per tracker, page cache).
    jobs.append(js.run_job(jt))
    jobs += js.run_bulk_jobs(jt, 1, 1).jobs
    plain.append(sbatch("--wrap=/bin/true"))
    plain.append(sbatch("--array=1-1", "--wrap=/bin/true"))

    def ours() -> None:
        jobs.append(js.run_job(jt))

    def base() -> None:
        plain.append(sbatch("--wrap=/bin/true"))

    # (b) first, while slurmctld holds few finished jobs (it keeps them MinJobAge, 300 s here, and
    # (a) leaves thousands). The submission alone: held arrays, alternating, median of 7.
    held = d2.JobTemplate(remote_command="/bin/true", submit_as_hold=True)
    took: dict = {"ours": [], "base": []}
    for i in range(7):
        for side in ("ours", "base") if i % 2 == 0 else ("base", "ours"):
            t0 = time.perf_counter()
            if side == "ours":
                jobs.extend(js.run_bulk_jobs(held, 1, ARRAY).jobs)
            else:
                plain.append(sbatch("-H", f"--array=1-{ARRAY}", "--wrap=/bin/true"))
            took[side].append(time.perf_counter() - t0)
    ours_submit, base_submit = median_of(took["ours"]), median_of(took["base"])
    scancel(plain + [js._row(j.id).tracker_id for j in jobs])
    js.wait_all_terminated(jobs, 300)
    for j in jobs:
        j.reap()
    jobs.clear()
    plain.clear()
    # Then one array each way, drained on an idle cluster.
    quiesce()
    t0 = time.perf_counter()
    arr = js.run_bulk_jobs(jt, 1, ARRAY)
    js.wait_all_terminated(arr.jobs)
    ours_drain = time.perf_counter() - t0
    assert all(j.state is d2.JobState.DONE for j in arr.jobs)
    quiesce()
    t0 = time.perf_counter()
    array_id = sbatch(f"--array=1-{ARRAY}", "--wrap=/bin/true")
    while not drained(array_id):
        time.sleep(POLL_INTERVAL)
    base_drain = time.perf_counter() - t0

    # (a) submissions, interleaved, from an idle cluster (the drain's accounting written).
    quiesce()
    time.sleep(5)
    spent: dict = {ours: [], base: []}
    rounds = []  # (ours jobs/s, baseline jobs/s) of each round
    for _ in range(n_rounds):
        this: dict = {ours: [], base: []}
        for i in range(n):
            # In turn first and second: neither side always follows the other's submission.
            for fn in (ours, base) if i % 2 == 0 else (base, ours):
                this[fn].append(timed(fn))
        rounds.append((n / sum(this[ours]), n / sum(this[base])))
        for fn in (ours, base):
            spent[fn] += this[fn]
        scancel(plain + [js._row(j.id).tracker_id for j in jobs])  # only submission is measured
        js.wait_all_terminated(jobs, 300)
        for j in jobs:
            j.reap()
        jobs.clear()
        plain.clear()
    ours_med, base_med = median_of(spent[ours]), median_of(spent[base])
    ratios = sorted(o / b for o, b in rounds)
    mid = sorted(rounds, key=lambda r: r[0] / r[1])[len(rounds) // 2]

    for j in arr.jobs:
        j.reap()
    js.close()
    sm.destroy_job_session("bench")

    version = subprocess.run(["sinfo", "--version"], capture_output=True, text=True).stdout.strip()
    report(f"Slurm tracker ({version}, Python {sys.version.split()[0]}, {os.cpu_count()} cores)", [
        (f"submit {n} jobs, jobs/s (median of {n_rounds} rounds)", f"{mid[0]:.1f}",
         f"{mid[1]:.1f}", f"{mid[0] / mid[1]:.2f}x (>= 0.9)"),
        ("... range of the rounds' ratios", "", "", f"{ratios[0]:.2f}-{ratios[-1]:.2f}x"),
        ("... median ms per submission", f"{ours_med * 1e3:.2f}", f"{base_med * 1e3:.2f}",
         f"{base_med / ours_med:.2f}x (>= 0.9)"),
        (f"{ARRAY}-task array: submit, median of 7, ms", f"{ours_submit * 1e3:.1f}",
         f"{base_submit * 1e3:.1f}", f"{ours_submit / base_submit:.2f}x"),
        (f"{ARRAY}-task array: submit + drain, s", f"{ours_drain:.2f}", f"{base_drain:.2f}",
         f"{ours_drain / base_drain:.2f}x"),
    ])
    load = os.getloadavg()[0]
    print("\nbaseline: sbatch --parsable --wrap=/bin/true (subprocess), and sbatch --array=1-200 "
          f"polled with squeue every {POLL_INTERVAL} s. Throughput ratios are pydrmaa2 / "
          "baseline (the median one is robust to bursts of other load), time ratios pydrmaa2 / "
          f"baseline. Load average during the run: {load:.1f} on {os.cpu_count()} cores.")


if __name__ == "__main__":
    main()
