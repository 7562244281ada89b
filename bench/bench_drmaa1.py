"""DRMAA 1.0 through libdrmaa against pydrmaa2's own Python API, in the same run.

drmaa-python (ctypes over libdrmaa.so) submits N /bin/true jobs on the process tracker and waits
for them (``synchronize`` of all with dispose, and ``wait`` of each, which reaps), against
pydrmaa2's API doing the same: ``run_job`` N times, ``wait_all_terminated``, ``reap`` each. The
drmaa-python side runs in a program of its own (DRMAA 1.0 has one session per process); rounds
alternate, and the median of each is reported. Prints ``uptime`` before and after: the machine
may be shared.
Run: .venv/bin/python bench/bench_drmaa1.py [N] [ROUNDS]   (needs drmaa==0.7.9 and cffi)
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(__file__))
from _common import median_of, report  # noqa: E402

import pydrmaa2 as d2  # noqa: E402
from pydrmaa2.drmaa1 import library_path  # noqa: E402

#: The drmaa-python program: one warm-up job (starts the library's interpreter and the agent),
#: then the measured submissions and waits; prints the seconds they took.
CLIENT = textwrap.dedent("""
    import sys, time, drmaa
    n, how = int(sys.argv[1]), sys.argv[2]
    s = drmaa.Session(); s.initialize()
    jt = s.createJobTemplate(); jt.remoteCommand = "/bin/true"
    s.wait(s.runJob(jt))
    t0, c0 = time.perf_counter(), time.process_time()
    ids = [s.runJob(jt) for _ in range(n)]
    if how == "synchronize":
        s.synchronize([drmaa.Session.JOB_IDS_SESSION_ALL], drmaa.Session.TIMEOUT_WAIT_FOREVER, True)
    else:
        for job_id in ids:
            s.wait(job_id, drmaa.Session.TIMEOUT_WAIT_FOREVER)
    print(time.perf_counter() - t0, time.process_time() - c0)
    s.exit()
""")


def drmaa_python(n: int, how: str, env: dict[str, str]) -> tuple[float, float]:
    """(wall, CPU) seconds of the drmaa-python program's submissions and waits."""
    out = subprocess.run([sys.executable, "-c", CLIENT, str(n), how], env=env, check=True,
                         capture_output=True, text=True).stdout
    wall, cpu = out.strip().splitlines()[-1].split()
    return float(wall), float(cpu)


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    home = Path(tempfile.mkdtemp(prefix="pydrmaa2-bench-drmaa1-"))
    env = dict(os.environ, PYDRMAA2_HOME=str(home), PYDRMAA2_CONTACT="process",
               DRMAA_LIBRARY_PATH=str(library_path()))
    sm = d2.SessionManager(home=home)
    js = sm.create_job_session("bench")
    jt = d2.JobTemplate(remote_command="/bin/true")
    js.wait_all_terminated([js.run_job(jt)])  # start the agent outside the measurement

    def ours(reap: bool) -> tuple[float, float]:
        t0, c0 = time.perf_counter(), time.process_time()
        jobs = [js.run_job(jt) for _ in range(n)]
        js.wait_all_terminated(jobs)
        if reap:
            for job in jobs:
                job.reap()
        took = time.perf_counter() - t0, time.process_time() - c0
        for job in jobs if not reap else []:
            job.reap()  # outside the measurement: every round starts from the same store
        return took

    load_before = uptime()
    api, api_no_reap, sync, each = [], [], [], []
    for _ in range(rounds):
        api.append(ours(True))
        sync.append(drmaa_python(n, "synchronize", env))
        api_no_reap.append(ours(False))
        each.append(drmaa_python(n, "wait", env))
    load_after = uptime()

    def med(rows: list[tuple[float, float]], i: int) -> float:
        return median_of([r[i] for r in rows])

    base, base_cpu = med(api, 0), med(api, 1)
    report(f"drmaa-python 0.7.9 through libdrmaa (column pydrmaa2) vs pydrmaa2's API (baseline), "
           f"{n} /bin/true jobs on the process tracker, median of {rounds} "
           f"(Python {sys.version.split()[0]}, {os.cpu_count()} cores)", [
        (f"API: run_job x{n}, wait_all_terminated, reap each, s", "-", f"{base:.3f}", "-"),
        (f"runJob x{n}, synchronize(ALL, dispose=True), s", f"{med(sync, 0):.3f}", f"{base:.3f}",
         f"{base / med(sync, 0):.2f}x tput"),
        (f"runJob x{n}, wait(id) each, s", f"{med(each, 0):.3f}", f"{base:.3f}",
         f"{base / med(each, 0):.2f}x tput"),
        ("API without reaping, s", "-", f"{med(api_no_reap, 0):.3f}", "-"),
        ("submitter's CPU: synchronize vs API, s", f"{med(sync, 1):.3f}", f"{base_cpu:.3f}",
         f"{base_cpu / med(sync, 1):.2f}x"),
        ("submitter's CPU: wait each vs API, s", f"{med(each, 1):.3f}", f"{base_cpu:.3f}",
         f"{base_cpu / med(each, 1):.2f}x"),
    ])

    def walls(rows: list[tuple[float, float]]) -> list[float]:
        return [round(r[0], 3) for r in rows]

    print(f"\nrounds (s): api {walls(api)}, synchronize {walls(sync)}, wait each {walls(each)}, "
          f"api no reap {walls(api_no_reap)}")
    print(f"load before: {load_before}\nload after:  {load_after}")
    print("throughput ratio: pydrmaa2 API time / drmaa-python time (target >= 0.80x)")


if __name__ == "__main__":
    main()
