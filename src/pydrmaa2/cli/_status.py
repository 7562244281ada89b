"""The exit status of ``drmaa2 run --wait`` and ``drmaa2 wait``: the job's own, as ``docker run``
and ``srun`` give it, so a shell script can use ``drmaa2`` where it ran the command itself.

======  ==================================================================================
0       every job ended DONE
1-255   the job's exit status (a job killed by signal N: 128 + N, as a shell says it)
2       drmaa2's own error (a message ``drmaa2: ...Error: ...`` on stderr, nothing on stdout)
125     the job ended FAILED without an exit status: it never ran (it could not start, it was
        terminated before it started) or its end is unknown (lost); ``drmaa2 info`` tells why
130     the second Ctrl-C: drmaa2 stopped waiting and left the jobs running
======  ==================================================================================

Several jobs (an array, ``wait`` on several ids): the status of the first job, in task order
(the order of the ids given), that did not end DONE; 0 when all did.
"""

from __future__ import annotations

import re
import signal
from collections.abc import Sequence

from ..info import JobInfo
from ..states import JobState

__all__ = ["ERROR", "NOT_RUN", "INTERRUPTED", "signal_number", "job_status", "jobs_status"]

#: drmaa2's own error: bad usage, a refused submission, an unknown job, a wait that timed out.
ERROR = 2
#: A job that ended FAILED with no exit status (as ``docker run``'s 125: it never ran).
NOT_RUN = 125
#: Waiting was stopped by a second Ctrl-C (128 + SIGINT, as a shell reports an interrupt).
INTERRUPTED = 130

_RT = re.compile(r"SIGRT(MIN|MAX)([+-]\d+)?")


def signal_number(name: str | None) -> int | None:
    """The number of a signal named as JobInfo.terminating_signal names it (``SIGKILL``,
    ``SIGRTMIN+3``, ``SIG42``); None for None or a name this system does not know."""
    if not name:
        return None
    name = name.strip().upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    if name[3:].isdigit():
        return int(name[3:]) or None
    m = _RT.fullmatch(name)
    if m:
        base = int(signal.SIGRTMIN if m.group(1) == "MIN" else signal.SIGRTMAX)
        return base + int(m.group(2) or 0)
    try:
        return int(signal.Signals[name])
    except KeyError:
        return None


def job_status(info: JobInfo) -> int:
    """The exit status that stands for one ended job (see the module's table)."""
    if info.state is JobState.DONE:
        return 0
    signum = signal_number(info.terminating_signal)
    if signum is not None and 0 < signum < 128:
        return 128 + signum
    if info.exit_status is not None and 0 < info.exit_status < 256:
        return info.exit_status
    return NOT_RUN


def jobs_status(infos: Sequence[JobInfo]) -> int:
    """The status of the first job (in the order given) that did not end DONE; else 0."""
    for info in infos:
        status = job_status(info)
        if status:
            return status
    return 0
