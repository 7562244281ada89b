"""Property tests (Hypothesis) of the public API's argument checks, on the process tracker.

Whatever a caller passes -- every JobTemplate field, run_bulk_jobs's range and max_parallel, wait
timeouts and job lists, get_jobs filters, contact strings and session names -- only a
Drmaa2Error leaves the API. A call refused by its checks reaches neither the store nor the
engine: no job row, no id used up (sqlite_sequence, this process's reserve), no process row.
Each property also knows, independently of the code under test, which values are of the wrong
type or out of range, and requires those to be refused at the call.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import fractions
import math
import numbers
import os
from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import pydrmaa2 as d2
from pydrmaa2.agent import AgentClient
from pydrmaa2.jobs import Job, JobArray
from pydrmaa2.trackers import Contact
from pydrmaa2.trackers.base import MAX_ARRAY_SIZE

from .test_validation import footprint

#: Fast and the same on every run (CI): a fixed example sequence, no example database.
PROPERTY = settings(max_examples=200, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                           HealthCheck.function_scoped_fixture])
MAX_INT = 2**63 - 1
#: Arrays the oracle deems valid are submitted only up to this size (a valid array of a million
#: tasks would be a load test, not a check).
SMALL_ARRAY = 16


# -- values ---------------------------------------------------------------------------------------
class BytesPath:
    """An os.PathLike that gives bytes (pydrmaa2 takes str paths only)."""

    def __fspath__(self) -> bytes:
        return b"/tmp/bytes"


class BrokenPath:
    """An os.PathLike whose __fspath__ returns neither str nor bytes."""

    def __fspath__(self) -> Any:
        return 5


ANY_CHAR = st.characters(blacklist_categories=())  # NUL and lone surrogates included
SAFE_TEXT = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=8)
NUMBERS = st.one_of(
    st.integers(-3, 8), st.integers(),
    st.sampled_from([2**31, 2**63 - 1, 2**63, -2**63, -2**63 - 1, 2**64, 10**400]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([Decimal("2"), fractions.Fraction(1, 3), 1 + 2j]))
WILD = st.one_of(
    st.none(), st.booleans(), NUMBERS, st.text(ANY_CHAR, max_size=6), st.binary(max_size=4),
    st.sampled_from([Path("/nonexistent"), BytesPath(), BrokenPath(), object(), d2.OS.LINUX,
                     d2.CPU.X64, d2.JobState.DONE, dt.datetime(2020, 1, 1),
                     dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc), dt.timedelta(seconds=-1),
                     dt.timedelta(hours=1), Mapping, range(3)]),
    st.lists(st.one_of(st.text(ANY_CHAR, max_size=4), st.integers(), st.none(),
                       st.just(Path("/x"))), max_size=3),
    st.tuples(st.text(ANY_CHAR, max_size=3)),
    st.dictionaries(st.one_of(st.text(ANY_CHAR, max_size=4), st.integers(), st.just(Path("/x"))),
                    st.one_of(st.text(ANY_CHAR, max_size=4), st.integers(), st.none()),
                    max_size=2))


# -- the oracle: which values are of the right type and range, written from the API's contract --
def ok_text(v: Any) -> bool:
    return isinstance(v, str) and "\0" not in v and not any(0xD800 <= ord(c) <= 0xDFFF for c in v)


def fspath(v: Any) -> Any:
    try:
        return os.fspath(v) if isinstance(v, os.PathLike) else v
    except TypeError:
        return None


def ok_path(v: Any) -> bool:
    return ok_text(fspath(v))


def optional(ok: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda v: v is None or ok(v)


def ok_int(low: int) -> Callable[[Any], bool]:
    return lambda v: (not isinstance(v, bool) and hasattr(v, "__index__")
                      and low <= v.__index__() <= MAX_INT)


def ok_strings(v: Any) -> bool:
    return v is None or (isinstance(v, (list, tuple)) and all(ok_text(x) for x in v))


def ok_map(key: Callable[[Any], bool], value: Callable[[Any], bool],
           convert: Callable[[Any], Any] = lambda k: k) -> Callable[[Any], bool]:
    return lambda v: v is None or (
        isinstance(v, dict) and all(key(k) and value(x) for k, x in v.items())
        and len({convert(k) for k in v}) == len(v))


def ok_env_name(v: Any) -> bool:
    return ok_text(v) and v != "" and "=" not in v


def ok_instance(kind: type) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, kind)


OK_FIELD: dict[str, Callable[[Any], bool]] = {
    "remote_command": optional(ok_path), "args": ok_strings,
    "submit_as_hold": optional(ok_instance(bool)), "rerunnable": optional(ok_instance(bool)),
    "job_environment": ok_map(ok_env_name, ok_text), "working_directory": optional(ok_path),
    "job_category": optional(ok_text), "email": ok_strings,
    "email_on_started": optional(ok_instance(bool)),
    "email_on_terminated": optional(ok_instance(bool)), "job_name": optional(ok_text),
    "input_path": optional(ok_path), "output_path": optional(ok_path),
    "error_path": optional(ok_path), "join_files": optional(ok_instance(bool)),
    "reservation_id": optional(ok_text), "queue_name": optional(ok_text),
    "min_slots": optional(ok_int(0)), "max_slots": optional(ok_int(0)),
    "priority": optional(ok_int(-MAX_INT - 1)), "candidate_machines": ok_strings,
    "min_phys_memory": optional(ok_int(0)), "machine_os": optional(ok_instance(d2.OS)),
    "machine_arch": optional(ok_instance(d2.CPU)),
    "start_time": optional(ok_instance(dt.datetime)),
    "deadline_time": optional(ok_instance(dt.datetime)),
    "stage_in_files": ok_map(ok_path, ok_path, fspath),
    "stage_out_files": ok_map(ok_path, ok_path, fspath),
    "resource_limits": ok_map(ok_text, ok_text), "accounting_id": optional(ok_text),
    "extensions": ok_map(ok_text, ok_text),
}


def ok_timeout(t: Any) -> bool:
    return t is None or (isinstance(t, numbers.Real) and not isinstance(t, bool)
                         and not (isinstance(t, float) and math.isnan(t)) and t >= 0)


def ok_aware(v: Any) -> bool:
    return isinstance(v, dt.datetime) and v.utcoffset() is not None


OK_FILTER: dict[str, Callable[[Any], bool]] = {
    "id": optional(ok_text), "job_name": optional(ok_text),
    "exit_status": optional(ok_int(-MAX_INT - 1)), "terminating_signal": optional(ok_text),
    "annotation": optional(ok_text), "state": optional(ok_instance(d2.JobState)),
    "sub_state": optional(ok_text), "allocated_machines": ok_strings,
    "submission_machine": optional(ok_text), "job_owner": optional(ok_text),
    "slots": optional(ok_int(0)), "queue_name": optional(ok_text),
    "wallclock_time": optional(lambda v: isinstance(v, dt.timedelta) and v >= dt.timedelta(0)),
    "cpu_time": optional(lambda v: isinstance(v, dt.timedelta) and v >= dt.timedelta(0)),
    "submission_time": optional(ok_aware), "dispatch_time": optional(ok_aware),
    "finish_time": optional(ok_aware), "extensions": ok_map(ok_text, ok_text),
}


# -- the session the properties share ---------------------------------------------------------------
class Spy:
    """Records every call that writes to the store or reaches the engine."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def wrap(self, obj: Any, *names: str) -> None:
        for name in names:
            real = getattr(obj, name)

            def spied(*args: Any, _real: Callable = real, _name: str = name, **kw: Any) -> Any:
                self.calls.append(_name)
                return _real(*args, **kw)

            setattr(obj, name, spied)


@dataclasses.dataclass
class Env:
    sm: d2.SessionManager
    js: d2.JobSession
    files: Path
    done: Job
    spy: Spy

    def attempt(self, call: Callable[[], Any]) -> tuple[Any, d2.Drmaa2Error | None]:
        """Run ``call``; a Drmaa2Error is returned (any other exception fails the property). A
        refusal that reached neither the store nor the engine changed nothing."""
        before = footprint(self.sm)
        self.spy.calls.clear()
        try:
            return call(), None
        except d2.Drmaa2Error as e:
            if not self.spy.calls:
                assert footprint(self.sm) == before, e
            return None, e

    def refused_at_the_call(self, error: d2.Drmaa2Error | None, *named: str) -> None:
        """The call was refused by its checks, naming one of ``named``."""
        assert isinstance(error, d2.InvalidArgumentError), error
        assert not self.spy.calls, self.spy.calls
        assert any(n in str(error) for n in named), (named, str(error))

    def finish(self, jobs: list[Job]) -> None:
        """Let jobs a property submitted end, and forget them (the session stays small)."""
        for job in jobs:
            if job.state in (d2.JobState.QUEUED_HELD, d2.JobState.QUEUED):
                try:
                    job.terminate()
                except d2.InvalidStateError:
                    pass  # it started, or ended, meanwhile
        self.js.wait_all_terminated(jobs, 30)
        for job in jobs:
            job.reap()


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    home, files = tmp_path_factory.mktemp("home"), tmp_path_factory.mktemp("files")
    (files / "src").write_text("staged\n")
    sm = d2.SessionManager(home=home)
    js = sm.create_job_session("prop")
    done = js.run_job(d2.JobTemplate(remote_command="/bin/true"))
    done.wait_terminated(30)
    spy = Spy()
    spy.wrap(sm._store, "reserve_job_id", "reserve_job_ids", "add_job", "add_array",
             "add_submitted_job", "add_submitted_array", "create_session")
    spy.wrap(js._tracker, "submit", "submit_array")
    yield Env(sm, js, files, done, spy)
    for job in js.get_jobs():
        if not job.state.is_terminal:
            job.terminate()
    js.close()
    sm._notifier_stop.set()
    AgentClient.for_home(home).close()


# -- templates -------------------------------------------------------------------------------------
def _good(files: Path) -> dict[str, st.SearchStrategy]:
    """Per field, right values that are safe to run: paths inside ``files``, /bin/true."""
    out_path = files / "out.$DRMAA2_INDEX$"
    maybe_bool = st.one_of(st.none(), st.booleans())
    return {
        "remote_command": st.sampled_from(["/bin/true", Path("/bin/true")]),
        "args": st.one_of(st.lists(SAFE_TEXT, max_size=3), st.tuples(SAFE_TEXT)),
        "submit_as_hold": st.booleans(), "rerunnable": maybe_bool,
        "job_environment": st.dictionaries(st.from_regex(r"[A-Z]{1,4}", fullmatch=True),
                                           SAFE_TEXT, max_size=2),
        "working_directory": st.sampled_from([str(files), files]),
        "job_category": st.one_of(st.none(), SAFE_TEXT), "email": st.lists(SAFE_TEXT, max_size=1),
        "email_on_started": maybe_bool, "email_on_terminated": maybe_bool,
        "job_name": st.one_of(st.none(), SAFE_TEXT),
        "input_path": st.sampled_from([None, "/dev/null", Path("/dev/null")]),
        "output_path": st.sampled_from([None, str(out_path), out_path]),
        "error_path": st.sampled_from([None, str(files / "err"), files / "err"]),
        "join_files": maybe_bool, "reservation_id": st.one_of(st.none(), SAFE_TEXT),
        "queue_name": st.one_of(st.none(), SAFE_TEXT),
        "min_slots": st.one_of(st.none(), st.integers(0, MAX_INT)),
        "max_slots": st.one_of(st.none(), st.integers(0, MAX_INT)),
        "priority": st.one_of(st.none(), st.integers(-MAX_INT - 1, MAX_INT)),
        "candidate_machines": st.lists(st.sampled_from(["localhost", "elsewhere"]), max_size=2),
        "min_phys_memory": st.one_of(st.none(), st.integers(0, MAX_INT)),
        "machine_os": st.one_of(st.none(), st.sampled_from(d2.OS)),
        "machine_arch": st.one_of(st.none(), st.sampled_from(d2.CPU)),
        "start_time": st.one_of(st.none(), st.datetimes(timezones=st.just(dt.timezone.utc))),
        "deadline_time": st.one_of(st.none(), st.datetimes()),
        "stage_in_files": st.dictionaries(st.sampled_from([str(files / "src"), files / "src"]),
                                          st.sampled_from([str(files / "in"), files / "in"]),
                                          max_size=1),
        "stage_out_files": st.dictionaries(st.sampled_from([str(files / "in")]),
                                           st.sampled_from([files / "back"]), max_size=1),
        "resource_limits": st.dictionaries(SAFE_TEXT, SAFE_TEXT, max_size=1),
        "accounting_id": st.one_of(st.none(), SAFE_TEXT),
        "extensions": st.dictionaries(SAFE_TEXT, SAFE_TEXT, max_size=1),
    }


#: Fields where a wrong value that happens to be of the right type could run something or write
#: outside the test's directory: their wrong values are drawn from the wrong types only.
_RUNS_OR_WRITES = {"remote_command", "working_directory", "input_path", "output_path",
                   "error_path", "stage_in_files", "stage_out_files"}


#: Wrong values for those fields, never a usable path.
WRONG_PATH_KEY = st.one_of(
    st.booleans(), st.integers(), st.floats(), st.binary(max_size=3),
    st.text(ANY_CHAR, max_size=4).map(lambda t: t + "\0"),
    st.text(ANY_CHAR, max_size=4).map(lambda t: "\ud800" + t),
    st.sampled_from([BytesPath(), BrokenPath(), object(), d2.OS.LINUX]))
WRONG_PATH = st.one_of(WRONG_PATH_KEY, st.sampled_from([["/x"], {"/x": "/y"}, ("/x",)]))
WRONG_PATH_MAP = st.one_of(
    st.sampled_from(["/x", ["/x"], 5, object(), Path("/x")]),
    st.dictionaries(WRONG_PATH_KEY, st.just("/x"), min_size=1, max_size=1),
    st.dictionaries(st.just("/x"), WRONG_PATH, min_size=1, max_size=1))


def _fields(files: Path) -> st.SearchStrategy[dict[str, Any]]:
    good = _good(files)
    wrong = {name: WRONG_PATH_MAP if name.startswith("stage_") else WRONG_PATH
             for name in _RUNS_OR_WRITES}
    return st.fixed_dictionaries({}, optional={
        name: st.one_of(good[name], wrong.get(name, WILD)) for name in OK_FIELD})


def test_the_oracle_covers_every_template_field():
    assert set(OK_FIELD) == {f.name for f in dataclasses.fields(d2.JobTemplate)}
    assert set(OK_FILTER) == {f.name for f in dataclasses.fields(d2.JobInfo)}


@PROPERTY
@given(data=st.data())
def test_any_template_is_run_or_refused_with_a_drmaa2_error_and_nothing_left(env, data):
    fields = data.draw(_fields(env.files), label="fields")
    as_array = data.draw(st.booleans(), label="as_array")
    template = d2.JobTemplate(**{"remote_command": "/bin/true",
                                 "working_directory": str(env.files), **fields})
    wrong = [name for name, value in fields.items() if not OK_FIELD[name](value)]
    result, error = env.attempt(
        (lambda: env.js.run_bulk_jobs(template, 1, 2)) if as_array
        else (lambda: env.js.run_job(template)))
    event("submitted" if error is None else "refused at the call" if not env.spy.calls
          else "refused by the engine")
    if wrong:
        env.refused_at_the_call(error, *wrong)
    if result is not None:
        env.finish(result.jobs if as_array else [result])


# -- run_bulk_jobs's range and max_parallel -------------------------------------------------------
RANGE_VALUES = st.one_of(
    st.integers(-2, 6),
    st.sampled_from([0, 2**31, 2**62, 2**63 - 1, 2**63, 2**64, -2**63, 10**9, MAX_ARRAY_SIZE,
                     MAX_ARRAY_SIZE + 1]),
    st.booleans(), st.none(), st.floats(allow_nan=True), st.text(max_size=2),
    st.sampled_from([Decimal(2), fractions.Fraction(4, 2)]))


def _tasks(begin: Any, end: Any, step: Any, max_parallel: Any) -> int | None:
    """The number of tasks of a valid call, None for an invalid one (the API's contract)."""
    def is_int(v: Any) -> bool:
        return isinstance(v, int) and not isinstance(v, bool)

    if not (is_int(begin) and is_int(end) and is_int(step)):
        return None
    if not (1 <= begin <= end <= MAX_INT and step >= 1):
        return None
    count = len(range(begin, end + 1, step))
    if count > MAX_ARRAY_SIZE:
        return None
    if max_parallel is not None and not (is_int(max_parallel) and 1 <= max_parallel <= MAX_INT):
        return None
    return count


@PROPERTY
@given(begin=RANGE_VALUES, end=RANGE_VALUES, step=RANGE_VALUES, max_parallel=RANGE_VALUES)
def test_any_array_range_is_run_or_refused_at_the_call(env, begin, end, step, max_parallel):
    count = _tasks(begin, end, step, max_parallel)
    if count is not None and count > SMALL_ARRAY:
        return
    template = d2.JobTemplate(remote_command="/bin/true", working_directory=str(env.files))
    result, error = env.attempt(lambda: env.js.run_bulk_jobs(template, begin, end, step,
                                                             max_parallel))
    if count is None:
        env.refused_at_the_call(error, "begin", "end", "step", "max_parallel", "tasks")
    else:
        assert error is None, error
        assert len(result.jobs) == count
        env.finish(result.jobs)


# -- waits -----------------------------------------------------------------------------------------
JOB_LISTS = st.one_of(
    st.sampled_from(["[done]", "(done,)", "iter", "done", "[]", "array", "[done, 1]", "{done}",
                     "{done: 1}", "[stranger]"]),
    WILD)
TIMEOUTS = st.one_of(NUMBERS, st.none(), st.booleans(), st.text(max_size=3),
                     st.sampled_from([-0.0, 1e-300, 1e308, math.inf, -math.inf]))
WAITS = ["wait_any_started", "wait_any_terminated", "wait_all_started", "wait_all_terminated",
         "job.wait_started", "job.wait_terminated"]


def _jobs(env: Env, token: Any) -> tuple[Any, bool]:
    """The jobs argument a token stands for, and whether it is a valid one (a non-empty
    iterable of Job objects)."""
    done = env.done
    stranger = Job(env.js, "999999999")
    table = {"[done]": ([done], True), "(done,)": ((done,), True), "iter": (iter([done]), True),
             "{done}": ({done}, True), "done": (done, False), "[]": ([], False),
             "[done, 1]": ([done, 1], False), "{done: 1}": ({done: 1}, False),
             "array": (JobArray(env.js, "0", [done.id]), False),
             "[stranger]": ([stranger], True)}
    if isinstance(token, str) and token in table:
        return table[token]
    return token, False


@PROPERTY
@given(method=st.sampled_from(WAITS), token=JOB_LISTS, timeout=TIMEOUTS)
def test_any_wait_returns_or_is_refused_at_the_call(env, method, token, timeout):
    jobs, valid = _jobs(env, token)
    own = method.startswith("job.")  # Job.wait_*: the job itself, no list
    result, error = env.attempt(
        (lambda: getattr(env.done, method[4:])(timeout)) if own
        else (lambda: getattr(env.js, method)(jobs, timeout)))
    wrong = ([] if ok_timeout(timeout) else ["timeout"]) + (
        [] if own or valid else ["jobs", "nothing to wait for"])
    if wrong:
        env.refused_at_the_call(error, *wrong)
    elif not own and token == "[stranger]":
        env.refused_at_the_call(error, "999999999")
    else:
        assert error is None, error


# -- filters ---------------------------------------------------------------------------------------
def _good_filter_values() -> dict[str, st.SearchStrategy]:
    aware = st.datetimes(timezones=st.just(dt.timezone.utc))
    durations = st.timedeltas(min_value=dt.timedelta(0))
    return {
        "id": SAFE_TEXT, "job_name": SAFE_TEXT, "exit_status": st.integers(-5, 300),
        "terminating_signal": SAFE_TEXT, "annotation": SAFE_TEXT,
        "state": st.sampled_from(d2.JobState), "sub_state": SAFE_TEXT,
        "allocated_machines": st.lists(SAFE_TEXT, max_size=2), "submission_machine": SAFE_TEXT,
        "job_owner": SAFE_TEXT, "slots": st.integers(0, 4), "queue_name": SAFE_TEXT,
        "wallclock_time": durations, "cpu_time": durations, "submission_time": aware,
        "dispatch_time": aware, "finish_time": aware,
        "extensions": st.dictionaries(SAFE_TEXT, SAFE_TEXT, max_size=1),
    }


FILTERS = st.one_of(
    st.none(), WILD,
    st.fixed_dictionaries({}, optional={name: st.one_of(good, WILD)
                                        for name, good in _good_filter_values().items()},
                          ).map(lambda fields: d2.JobInfo(**fields)))


@PROPERTY
@given(flt=FILTERS)
def test_any_filter_selects_jobs_or_is_refused_at_the_call(env, flt):
    if isinstance(flt, d2.JobInfo):
        wrong = [name for name, ok in OK_FILTER.items() if not ok(getattr(flt, name))]
    else:
        wrong = [] if flt is None else ["filter"]
    result, error = env.attempt(lambda: env.js.get_jobs(filter=flt))
    if wrong:
        env.refused_at_the_call(error, *wrong)
    else:
        assert error is None, error
        assert all(isinstance(j, Job) for j in result)


# -- contacts and session names --------------------------------------------------------------------
CONTACTS = st.one_of(
    st.text(ANY_CHAR, max_size=20),
    st.builds("".join, st.tuples(
        st.sampled_from(["process", "PROCESS", "docker", "podman", "containerd", "slurm",
                         "nosuch", "", "1x", "a b", "pro-cess"]),
        st.sampled_from(["", "://", ":///", ":", "//"]),
        st.sampled_from(["", "h", "[::1", "[::1]", "h:99999", "h:-1", "h:80", "/run/x.sock",
                         "u@h", "[abc]", "%00", "\0"]),
        st.sampled_from(["", "?", "?bogus=1", "?namespace=x", "?max_array_size=2", "?a",
                         "?a=1&a=2", "?=1", "?a=%00", "#f", "?namespace=x&namespace=y"]))),
    WILD)
NAMES = st.one_of(st.just("new"), st.just("prop"), st.text(ANY_CHAR, max_size=5), WILD)
#: Trackers with an engine to connect to: the property only asks them about their contacts.
_ENGINES = {"docker", "podman", "containerd", "slurm"}


@PROPERTY
@given(raw=CONTACTS, name=NAMES)
def test_any_contact_and_session_name_is_taken_or_refused_at_the_call(env, raw, name):
    try:
        contact = Contact.parse(raw)
    except d2.Drmaa2Error:
        contact = None
    env.attempt(lambda: env.sm.supports(d2.Capability.JOB_ARRAYS, raw))
    if contact is not None and contact.scheme in _ENGINES:
        return
    session, error = env.attempt(lambda: env.sm.create_job_session(name, raw))
    if not (ok_text(name) and name.strip()):
        env.refused_at_the_call(error, "session name")
    elif raw is not None and not isinstance(raw, str):
        env.refused_at_the_call(error, "contact")
    if session is not None:
        session.close()
        env.sm.destroy_job_session(name)
