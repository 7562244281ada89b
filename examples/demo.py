"""The main job of pydrmaa2 in one page: an array of jobs, throttled, waited for, accounted."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import pydrmaa2 as d2


def main() -> int:
    contact = sys.argv[1] if len(sys.argv) > 1 else "process"
    category = sys.argv[2] if len(sys.argv) > 2 else None
    out_dir = Path(tempfile.mkdtemp(prefix="pydrmaa2-demo-"))
    sm = d2.SessionManager(home=out_dir / "store")
    with sm.create_job_session("demo", contact=contact) as js:
        jt = d2.JobTemplate(
            remote_command="/bin/sh",
            args=["-c", 'echo "task $TASK_ID of job $JOB_ID on $(hostname)"; sleep 0.5; '
                        'test "$TASK_ID" -ne 4'],   # task 4 fails on purpose
            job_category=category,
            output_path=str(out_dir / "task-$DRMAA2_INDEX$.out"),
            join_files=True,
        )
        arr = js.run_bulk_jobs(jt, begin=1, end=8, max_parallel=3)
        print(f"submitted array {arr.id} on {contact!r}: 8 tasks, at most 3 at once")
        js.wait_all_terminated(arr.jobs)
        print(f"{'job':>4} {'task':>4} {'state':7} {'exit':>4} {'wallclock':>9} {'cpu ms':>6} "
              f"{'max rss KiB':>11}  output")
        for job, index in zip(arr.jobs, range(1, 9), strict=True):
            i = job.info
            output = (out_dir / f"task-{index}.out").read_text().strip()
            print(f"{job.id:>4} {index:>4} {i.state.name:7} {i.exit_status!s:>4} "
                  f"{i.wallclock_time.total_seconds():9.3f} "
                  f"{i.cpu_time.total_seconds() * 1000 if i.cpu_time else 0:6.0f} "
                  f"{i.extensions.get('max_rss', '-'):>11}  {output}")
        failed = [j for j in arr.jobs if j.state is d2.JobState.FAILED]
        print(f"{len(arr.jobs) - len(failed)} done, {len(failed)} failed (task 4 fails on purpose)")
        arr.reap()
    return 0


if __name__ == "__main__":
    sys.exit(main())
