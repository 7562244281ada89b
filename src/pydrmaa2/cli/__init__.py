"""The ``drmaa2`` command: submit, list, inspect, wait for and control jobs from a shell.

The only code of pydrmaa2 that prints. ``--json`` output is for scripts; live output (progress,
``jobs --watch``'s table) appears only on a terminal and never with ``--json``. ``run --wait`` and
``wait`` exit with the jobs' own status (``_status``), wait in slices and take Ctrl-C as
``docker run`` does (``_wait``); ``completion`` prints shell completion scripts (``_complete``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from .. import _codec
from ..errors import Drmaa2Error, InvalidArgumentError, InvalidStateError
from ..info import JobInfo
from ..jobs import Job, JobArray
from ..session import JobSession, SessionManager
from ..states import JobState
from ..templates import JobTemplate
from . import _status

DEFAULT_SESSION = "default"
JSON_HELP = "machine-readable output (no live output)"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="drmaa2", description="DRMAA2 jobs on processes, containers and Slurm (pydrmaa2).",
        epilog="Exit status: `run --wait` and `wait` exit with the job's own status (killed by "
        "signal N: 128+N; FAILED without an exit status: 125; several jobs: the first, in task "
        "order, that did not end DONE); 2 is drmaa2's own error, 130 a wait stopped by a second "
        "Ctrl-C (the first terminates the jobs). Completion: eval \"$(drmaa2 completion bash)\".")
    sub = p.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="submit a job or a job array")
    run.add_argument("--session", default=os.environ.get("PYDRMAA2_SESSION"),
                     help="job session (default: 'default'; with --contact C: 'default:C')")
    run.add_argument("--contact", help="tracker for a new session (default: process)")
    run.add_argument("--category", help="job category (the image, for container trackers)")
    run.add_argument("--name", help="job name")
    run.add_argument("--output", help="file for stdout")
    run.add_argument("--error", help="file for stderr")
    run.add_argument("--input", help="file for stdin")
    run.add_argument("--join", action="store_true", help="stderr into the output file")
    run.add_argument("--env", action="append", default=[], metavar="K=V",
                     help="an environment variable of the job (repeatable)")
    run.add_argument("--workdir", help="working directory")
    run.add_argument("--array", metavar="BEGIN:END[:STEP]", help="run a job array")
    run.add_argument("--max-parallel", type=int, help="array tasks running at once")
    run.add_argument("--hold", action="store_true", help="submit held (release later)")
    run.add_argument("--wait", action="store_true",
                     help="wait for the end and exit with the job's exit status (see: Exit status)")
    run.add_argument("--json", action="store_true", help=JSON_HELP)
    run.add_argument("cmd", nargs=argparse.REMAINDER, metavar="-- COMMAND [ARGS...]")

    jobs = sub.add_parser("jobs", help="list the jobs of a session")
    jobs.add_argument("--session", default=os.environ.get("PYDRMAA2_SESSION", DEFAULT_SESSION),
                      help="job session (default: 'default')")
    jobs.add_argument("--state", type=_state, help="only jobs in this state (e.g. running, done)")
    jobs.add_argument("--watch", action="store_true",
                      help="a live table (jobs, arrays, counts per state) until Ctrl-C; "
                      "without a terminal or with --json: a line per change")
    jobs.add_argument("--interval", type=float, metavar="S", help="seconds between looks of "
                      "--watch (default: 1)")
    jobs.add_argument("--json", action="store_true", help=JSON_HELP)

    info = sub.add_parser("info", help="show everything known about a job")
    info.add_argument("job", help="job id")
    info.add_argument("--json", action="store_true", help=JSON_HELP)

    logs = sub.add_parser("logs", help="print a job's output (kept until the job is reaped "
                          "when its template names no file)")
    logs.add_argument("job", help="job id")
    logs.add_argument("-f", "--follow", action="store_true",
                      help="go on printing what the job writes until it ends")
    logs.add_argument("--stderr", action="store_true", help="the job's stderr instead of stdout")
    logs.add_argument("--tail", type=int, metavar="N", help="only the last N lines")

    wait = sub.add_parser("wait", help="wait until jobs have ended")
    wait.add_argument("jobs", nargs="+", metavar="job", help="job ids")
    wait.add_argument("--timeout", type=float, help="seconds (default: forever); then exit 2")
    wait.add_argument("--json", action="store_true", help=JSON_HELP)

    for op in ("suspend", "resume", "hold", "release", "terminate", "reap"):
        c = sub.add_parser(op, help=f"{op} jobs")
        c.add_argument("jobs", nargs="+", metavar="job", help="job ids")

    ses = sub.add_parser("sessions", help="list, create or destroy job sessions")
    ses.add_argument("action", nargs="?", default="list", choices=["list", "create", "destroy"])
    ses.add_argument("name", nargs="?", help="session name (create, destroy)")
    ses.add_argument("--contact", default=None, help="tracker of a new session (default: process)")
    ses.add_argument("--json", action="store_true", help=JSON_HELP)

    mon = sub.add_parser("monitor", help="everything an engine runs: jobs, machines, queues")
    mon.add_argument("what", choices=["jobs", "machines", "queues"])
    mon.add_argument("--contact", default="process", help="tracker (default: process)")
    mon.add_argument("--json", action="store_true", help=JSON_HELP)

    lib = sub.add_parser("libdrmaa", help="print the path of libdrmaa.so, the DRMAA 1.0 library "
                         "(export DRMAA_LIBRARY_PATH=$(drmaa2 libdrmaa)); built on first use")
    lib.add_argument("--header", action="store_true", help="print the path of its drmaa.h")

    srv = sub.add_parser("serve", help="serve this user's store and trackers over HTTP "
                         "(docs/serve.md; pip install 'pydrmaa2[serve]')")
    where = srv.add_mutually_exclusive_group()
    where.add_argument("--listen", metavar="HOST:PORT",
                       help="a TCP address (not loopback: needs --tls-cert and --tls-key)")
    where.add_argument("--socket", metavar="PATH",
                       help="a Unix socket, mode 0600 (default: $PYDRMAA2_HOME/serve.sock)")
    srv.add_argument("--tls-cert", metavar="F", help="TLS certificate (PEM)")
    srv.add_argument("--tls-key", metavar="F", help="TLS private key (PEM)")
    srv.add_argument("--token-file", metavar="F", help="the bearer token, created 0600 when "
                     "missing (default: $PYDRMAA2_HOME/serve.token)")

    comp = sub.add_parser("completion", help="print the shell completion script of drmaa2 "
                          "(eval \"$(drmaa2 completion bash)\")")
    comp.add_argument("shell", choices=["bash", "zsh", "fish"])
    return p


def _state(word: str) -> JobState:
    """A job state as --state names it (running, DONE, queued_held)."""
    try:
        return JobState[word.upper()]
    except KeyError:
        raise argparse.ArgumentTypeError(
            f"{word!r} is not a job state ({', '.join(s.value for s in JobState)})") from None


def _print_json(data: Any) -> None:
    print(json.dumps(_codec.encode(data), indent=2))


def _table(rows: Sequence[Sequence[Any]], header: Sequence[str], stderr: bool = False) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(*header, box=None, pad_edge=False)
    for r in rows:
        t.add_row(*("" if v is None else str(v) for v in r))
    Console(stderr=stderr).print(t)


def _cmd_logs(sm: SessionManager, a: argparse.Namespace) -> int:
    """``drmaa2 logs``: the job's stdout (or stderr) as written, to stdout."""
    with _session_of(sm, a.job) as js:
        job = Job(js, a.job)
        lines = (job.error if a.stderr else job.output)(follow=a.follow, tail=a.tail)
        for line in lines:
            sys.stdout.write(line)
            if a.follow:
                sys.stdout.flush()
    return 0


def _cmd_serve(a: argparse.Namespace) -> int:
    """``drmaa2 serve``: until Ctrl-C or SIGTERM; where it listens goes to stderr."""
    try:
        from ..serve import run
    except ImportError as e:
        print(f"drmaa2: serve needs its extra ({e}): pip install 'pydrmaa2[serve]'",
              file=sys.stderr)
        return _status.ERROR
    run(listen=a.listen, socket_path=a.socket, tls_cert=a.tls_cert, tls_key=a.tls_key,
        token_file=a.token_file, announce=lambda line: print(line, file=sys.stderr, flush=True))
    return 0


def _session_of(sm: SessionManager, job_id: str) -> JobSession:
    return sm.find_job(job_id).session


def _jobs(sm: SessionManager, ids: Sequence[str]) -> list[Job]:
    """The jobs of these ids, one open session per job session."""
    sessions: dict[str, JobSession] = {}
    out = []
    for job_id in ids:
        name = sm.job_session_of(job_id)
        if name not in sessions:
            sessions[name] = sm.open_job_session(name)
        out.append(Job(sessions[name], job_id))
    return out


def _wait(sm: SessionManager, jobs: list[Job], timeout: float | None, as_json: bool,
          terminate: Callable[[], None] | None = None, stream: bool = False) -> int:
    """Wait for the jobs (progress on a terminal, Ctrl-C as ``_wait`` says), print how they
    ended and return the exit status that stands for them. ``stream`` (one job): its output
    and error go to ours as written, and how it ended to stderr, so stdout is the job's."""
    from ._wait import JobWaiter, Progress, stream_output, wait_jobs

    waiter = JobWaiter(jobs, sm.home)
    live = sys.stdout.isatty() and sys.stderr.isatty() and not as_json
    streams = stream_output(jobs[0]) if stream and len(jobs) == 1 and not as_json else []
    with Progress(waiter, live) as progress:
        if not wait_jobs(waiter, timeout, progress, terminate):
            return _status.INTERRUPTED
    for t in streams:  # the rest of what the job wrote before it ended
        t.join(STREAM_DRAIN)
    return _report(waiter.infos(), as_json, stderr=bool(streams))


#: How long the job's last output may take to be printed after it has ended (seconds).
STREAM_DRAIN = 10.0


def _info_rows(infos: Sequence[JobInfo]) -> list[list[Any]]:
    return [[i.id, i.job_name, i.state.name if i.state else None, i.sub_state, i.exit_status,
             i.terminating_signal, ",".join(i.allocated_machines),
             i.wallclock_time.total_seconds() if i.wallclock_time else None] for i in infos]


INFO_HEADER = ["id", "name", "state", "sub_state", "exit", "signal", "machines", "wallclock s"]


def _cmd_run(sm: SessionManager, a: argparse.Namespace) -> int:
    cmd = a.cmd[1:] if a.cmd and a.cmd[0] == "--" else a.cmd
    if not cmd:
        raise InvalidArgumentError("no COMMAND given: drmaa2 run [options] -- COMMAND [ARGS...]")
    env = {}
    for kv in a.env:
        k, sep, v = kv.partition("=")
        if not sep:
            raise InvalidArgumentError(f"--env {kv!r} is not K=V")
        env[k] = v
    jt = JobTemplate(remote_command=cmd[0], args=cmd[1:], job_category=a.category,
                     job_name=a.name, output_path=a.output, error_path=a.error,
                     input_path=a.input, join_files=a.join or None, job_environment=env,
                     working_directory=a.workdir, submit_as_hold=a.hold)
    if a.session is None:  # trying another engine never changes what plain `drmaa2 run` does
        a.session = (DEFAULT_SESSION if a.contact in (None, "process")
                     else f"{DEFAULT_SESSION}:{a.contact}")
    created = a.session not in sm.job_session_names
    if not created:
        js = sm.open_job_session(a.session)
        if a.contact and a.contact != js.contact:
            raise InvalidArgumentError(
                f"session {a.session!r} uses contact {js.contact!r}, not {a.contact!r}")
    else:
        js = sm.create_job_session(a.session, contact=a.contact)
    try:
        return _submit(sm, a, js, jt)
    except BaseException:
        # A command that fails creates nothing: a session made for a submission that was
        # refused goes again (unless a job got into it after all).
        if created:
            with sm.open_job_session(a.session) as again:
                empty = not again.get_jobs()
            if empty:
                sm.destroy_job_session(a.session)
        raise


def _submit(sm: SessionManager, a: argparse.Namespace, js: JobSession, jt: JobTemplate) -> int:
    """Submit the job or array of ``drmaa2 run`` to ``js``; wait for it with ``--wait``."""
    with js:
        terminate: Callable[[], None] | None = None  # the first Ctrl-C's, for an array
        if a.array:
            parts = a.array.split(":")
            try:
                nums = [int(p) for p in parts]
            except ValueError:
                raise InvalidArgumentError(f"--array {a.array!r} is not BEGIN:END[:STEP]") from None
            if len(nums) not in (2, 3):
                raise InvalidArgumentError(f"--array {a.array!r} is not BEGIN:END[:STEP]")
            arr = js.run_bulk_jobs(jt, nums[0], nums[1], nums[2] if len(nums) == 3 else 1,
                                   a.max_parallel)
            jobs, terminate = arr.jobs, _terminate_array(arr)
            if not a.wait:
                if a.json:
                    _print_json({"array": arr.id, "jobs": [j.id for j in jobs]})
                else:
                    print(f"array {arr.id}: jobs {jobs[0].id}..{jobs[-1].id}")
                return 0
        else:
            jobs = [js.run_job(jt)]
            if not a.wait:
                if a.json:
                    _print_json({"job": jobs[0].id})
                else:
                    print(jobs[0].id)
                return 0
        return _wait(sm, jobs, None, a.json, terminate, stream=not a.array)


def _terminate_array(arr: JobArray) -> Callable[[], None]:
    """Terminate every task of the array not ended (all in one call to the engine)."""

    def terminate() -> None:
        try:
            arr.terminate()
        except InvalidStateError:  # every task had ended meanwhile
            pass

    return terminate


def _report(infos: list[JobInfo], as_json: bool, stderr: bool = False) -> int:
    """Print how the jobs ended (on stderr after the job's own output); return the status that
    stands for them (``_status``)."""
    if as_json:
        _print_json(infos)
    else:
        _table(_info_rows(infos), INFO_HEADER, stderr=stderr)
    return _status.jobs_status(infos)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``drmaa2`` command; returns the exit status (``_status``)."""
    args = sys.argv[1:] if argv is None else list(argv)
    if args[:1] == ["__complete"]:  # hidden: what the completion scripts ask while one types
        from ._complete import complete_main

        return complete_main(args[1:])
    a = _parser().parse_args(args)
    try:
        if a.command == "completion":
            from ._complete import script

            sys.stdout.write(script(a.shell, _parser()))
            return 0
        if a.command == "libdrmaa":
            from ..drmaa1 import header_path, library_path

            print(header_path() if a.header else library_path())
            return 0
        if a.command == "serve":
            return _cmd_serve(a)
        sm = SessionManager()
        if a.command == "run":
            return _cmd_run(sm, a)
        if a.command == "jobs":
            if a.interval is not None and not a.watch:
                raise InvalidArgumentError(f"--interval {a.interval:g} needs --watch")
            if a.watch:
                from ._watch import watch

                with sm.open_job_session(a.session) as js:
                    return watch(js, 1.0 if a.interval is None else a.interval, a.state, a.json)
            with sm.open_job_session(a.session) as js:
                flt = JobInfo(state=a.state) if a.state else None
                jobs = js.get_jobs(flt)
                infos = [j.info for j in jobs]
            if a.json:
                _print_json(infos)
            else:
                _table(_info_rows(infos), INFO_HEADER)
            return 0
        if a.command == "info":
            with _session_of(sm, a.job) as js:
                info = Job(js, a.job).info
            if a.json:
                _print_json(info)
            else:
                for k, v in _codec.encode(info).items():
                    print(f"{k:20} {v}")
            return 0
        if a.command == "logs":
            return _cmd_logs(sm, a)
        if a.command == "wait":
            return _wait(sm, _jobs(sm, a.jobs), a.timeout, a.json)
        if a.command in ("suspend", "resume", "hold", "release", "terminate", "reap"):
            for job in _jobs(sm, a.jobs):
                getattr(job, a.command)()
            return 0
        if a.command == "sessions":
            if a.action == "create":
                if not a.name:
                    raise InvalidArgumentError("sessions create needs a NAME")
                sm.create_job_session(a.name, contact=a.contact).close()
            elif a.action == "destroy":
                if not a.name:
                    raise InvalidArgumentError("sessions destroy needs a NAME")
                sm.destroy_job_session(a.name)
            else:
                contacts = list(sm.job_session_contacts.items())
                if a.json:
                    _print_json([{"name": n, "contact": c} for n, c in contacts])
                else:
                    _table(contacts, ["session", "contact"])
            return 0
        if a.command == "monitor":
            with sm.open_monitoring_session(a.contact) as ms:
                if a.what == "jobs":
                    data: list[Any] = ms.get_all_jobs()
                    rows = [[i.id, i.state.name if i.state else "", i.job_owner,
                             i.extensions.get("process_name") or i.extensions.get("command_line")]
                            for i in data]
                    header = ["id", "state", "owner", "name"]
                elif a.what == "machines":
                    data = ms.get_all_machines()
                    rows = [[m.name, m.sockets, m.cores_per_socket, m.threads_per_core,
                             m.phys_memory, m.load, m.machine_os.name if m.machine_os else "",
                             m.machine_arch.name if m.machine_arch else ""] for m in data]
                    header = ["name", "sockets", "cores/socket", "threads/core", "memory",
                              "load", "os", "arch"]
                else:
                    data = ms.get_all_queues()
                    rows = [[q.name] for q in data]
                    header = ["queue"]
            if a.json:
                _print_json(data)
            else:
                _table(rows, header)
            return 0
    except Drmaa2Error as e:
        print(f"drmaa2: {type(e).__name__}: {e}", file=sys.stderr)
        return _status.ERROR
    except KeyboardInterrupt:
        return _status.INTERRUPTED
    except BrokenPipeError:  # `drmaa2 jobs --watch | head`: the reader is gone, nothing to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
