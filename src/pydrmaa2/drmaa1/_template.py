"""DRMAA 1.0 job templates: their attributes as strings, checked when set, and the pydrmaa2
JobTemplate each becomes on a tracker (placeholders, ``[host]:path``, times, limits, the native
specification)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import re
import shlex
from collections.abc import Callable, Sequence

from ..templates import HOME_DIR, PARAMETRIC_INDEX, WORKING_DIR, JobTemplate
from ._constants import (
    MANDATORY,
    OPTIONAL,
    PLACEHOLDER_HD,
    PLACEHOLDER_INCR,
    PLACEHOLDER_WD,
    SUBMISSION_STATE_ACTIVE,
    SUBMISSION_STATE_HOLD,
    VECTOR,
    Errno,
)


class Drmaa1Error(Exception):
    """A DRMAA 1.0 call failed with ``code``; the message is its error diagnosis."""

    def __init__(self, code: Errno, message: str) -> None:
        super().__init__(message)
        self.code = code


# -- values checked when set -----------------------------------------------------------------------

_TIME = re.compile(
    r"^(?:(?:(?:(?P<cc>\d{2})?(?P<yy>\d{2})/)?(?P<mm>\d{2})/)?(?P<dd>\d{2})\s+)?"
    r"(?P<h>\d{2}):(?P<m>\d{2})(?::(?P<s>\d{2}))?(?:\s*(?P<sign>[+-])(?P<zh>\d{2}):(?P<zm>\d{2}))?$")
_DURATION = re.compile(r"^(?:(?:(\d+):)?(\d+):)?(\d+)$")


def parse_time(name: str, value: str, now: dt.datetime | None = None) -> dt.datetime:
    """A DRMAA 1.0 time, ``[[[[CC]YY/]MM/]DD] hh:mm[:ss] [{-|+}UU:uu]``: the fields left out
    are now's; a time of day already past today, with no day given, is tomorrow's."""
    m = _TIME.match(value.strip())
    if m is None:
        raise Drmaa1Error(Errno.INVALID_ATTRIBUTE_FORMAT,
                          f"{name} {value!r} is not [[[[CC]YY/]MM/]DD] hh:mm[:ss] [{{-|+}}UU:uu]")
    g = m.groupdict()
    if g["sign"]:
        offset = dt.timedelta(hours=int(g["zh"]), minutes=int(g["zm"]))
        tz = dt.timezone(-offset if g["sign"] == "-" else offset)
    else:
        tz = None
    now = (now or dt.datetime.now(dt.timezone.utc)).astimezone(tz)
    year = now.year
    if g["yy"]:
        year = int((g["cc"] or str(now.year)[:2]) + g["yy"])
    try:
        when = now.replace(year=year, month=int(g["mm"] or now.month), day=int(g["dd"] or now.day),
                           hour=int(g["h"]), minute=int(g["m"]), second=int(g["s"] or 0),
                           microsecond=0)
    except ValueError as e:
        raise Drmaa1Error(Errno.INVALID_ATTRIBUTE_VALUE, f"{name} {value!r}: {e}") from None
    if g["dd"] is None and when < now:
        when += dt.timedelta(days=1)
    return when


def parse_duration(name: str, value: str) -> int:
    """A DRMAA 1.0 duration, ``[[h:]m:]s``, in seconds."""
    m = _DURATION.match(value.strip())
    if m is None:
        raise Drmaa1Error(Errno.INVALID_ATTRIBUTE_FORMAT, f"{name} {value!r} is not [[h:]m:]s")
    h, mi, s = (int(x or 0) for x in m.groups())
    return h * 3600 + mi * 60 + s


def _choice(*allowed: str) -> Callable[[str, str], None]:
    def check(name: str, value: str) -> None:
        if value not in allowed:
            raise Drmaa1Error(Errno.INVALID_ATTRIBUTE_VALUE,
                              f"{name} {value!r} is not one of {', '.join(map(repr, allowed))}")
    return check


def _transfer(name: str, value: str) -> None:
    if set(value) - set("ieo"):
        raise Drmaa1Error(Errno.INVALID_ATTRIBUTE_FORMAT,
                          f"{name} {value!r} may hold only the letters i, e and o")


#: Attribute -> the check of its value when it is set (the others take any string).
CHECKS: dict[str, Callable[[str, str], object]] = {
    "drmaa_js_state": _choice(SUBMISSION_STATE_ACTIVE, SUBMISSION_STATE_HOLD),
    "drmaa_join_files": _choice("y", "n"),
    "drmaa_block_email": _choice("0", "1"),
    "drmaa_transfer_files": _transfer,
    "drmaa_start_time": lambda n, v: parse_time(n, v),
    "drmaa_deadline_time": lambda n, v: parse_time(n, v),
    "drmaa_wct_hlimit": parse_duration,
    "drmaa_wct_slimit": parse_duration,
    "drmaa_duration_hlimit": parse_duration,
    "drmaa_duration_slimit": parse_duration,
}


#: What a converted JobTemplate was made from: the template's version, the scheme, bulk or not,
#: and whether each output path's directory existed.
_Key = tuple[int, str, bool, tuple[bool, ...]]


@dataclasses.dataclass
class Template:
    """A DRMAA 1.0 job template: attribute values as the program set them."""

    scalars: dict[str, str] = dataclasses.field(default_factory=dict)
    vectors: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    #: Changes with every attribute set: the key of the JobTemplate made from this version.
    version: int = 0
    converted: tuple[_Key, JobTemplate] | None = dataclasses.field(default=None, repr=False,
                                                                   compare=False)

    def set(self, name: str, value: str) -> None:
        if name not in MANDATORY and name not in OPTIONAL:
            kind = "a vector attribute (drmaa_set_vector_attribute)" if name in VECTOR else "no"
            raise Drmaa1Error(Errno.INVALID_ARGUMENT,
                              f"{name!r} is {kind} DRMAA 1.0 scalar attribute")
        if name in CHECKS and value != "":
            CHECKS[name](name, value)
        self.scalars[name] = value
        self.version += 1

    def get(self, name: str) -> str:
        if name not in MANDATORY and name not in OPTIONAL:
            raise Drmaa1Error(Errno.INVALID_ARGUMENT, f"{name!r} is no DRMAA 1.0 scalar attribute")
        return self.scalars.get(name, "")

    def set_vector(self, name: str, values: Sequence[str]) -> None:
        if name not in VECTOR:
            raise Drmaa1Error(Errno.INVALID_ARGUMENT, f"{name!r} is no DRMAA 1.0 vector attribute")
        if name == "drmaa_v_env":
            for v in values:
                if "=" not in v or v.startswith("="):
                    raise Drmaa1Error(Errno.INVALID_ATTRIBUTE_FORMAT,
                                      f"drmaa_v_env entry {v!r} is not NAME=value")
        self.vectors[name] = list(values)
        self.version += 1

    def get_vector(self, name: str) -> list[str]:
        if name not in VECTOR:
            raise Drmaa1Error(Errno.INVALID_ARGUMENT, f"{name!r} is no DRMAA 1.0 vector attribute")
        return list(self.vectors.get(name, []))


# -- the pydrmaa2 JobTemplate ----------------------------------------------------------------------

#: DRMAA 1.0 placeholders -> DRMAA2's (the task index is the task's own, begin + k * step, in
#: both).
PLACEHOLDERS = {PLACEHOLDER_INCR: PARAMETRIC_INDEX, PLACEHOLDER_HD: HOME_DIR,
                PLACEHOLDER_WD: WORKING_DIR}

#: JobTemplate fields -> the DRMAA 1.0 attribute a pydrmaa2 refusal of that field is about.
ATTRIBUTE_OF = {
    "remote_command": "drmaa_remote_command", "args": "drmaa_v_argv",
    "job_environment": "drmaa_v_env", "working_directory": "drmaa_wd",
    "job_category": "drmaa_job_category", "email": "drmaa_v_email", "job_name": "drmaa_job_name",
    "input_path": "drmaa_input_path", "output_path": "drmaa_output_path",
    "error_path": "drmaa_error_path", "start_time": "drmaa_start_time",
    "deadline_time": "drmaa_deadline_time", "resource_limits": "drmaa_wct_hlimit",
    "extensions": "drmaa_native_specification", "queue_name": "drmaa_native_specification",
    "accounting_id": "drmaa_native_specification", "min_slots": "drmaa_native_specification",
    "reservation_id": "drmaa_native_specification", "priority": "drmaa_native_specification",
    "candidate_machines": "drmaa_native_specification",
}


def _placeholders(value: str) -> str:
    for old, new in PLACEHOLDERS.items():
        value = value.replace(old, new)
    return value


def _path(value: str) -> str:
    """``[hostname]:path`` -> path, DRMAA2's placeholders for DRMAA 1.0's. The host is not
    looked at: every tracker's jobs see the submitter's file system (Slurm: a shared one)."""
    _, colon, path = value.partition(":")
    return _placeholders(path if colon else value)


def _into_directory(path: str, name: str, suffix: str, bulk: bool) -> str:
    """An output or error path naming an existing directory is a file in it named after the
    job (``NAME.out``, ``NAME.err``; a bulk task's index appended), as Grid Engine does."""
    plain = path.replace(HOME_DIR, os.path.expanduser("~"))
    if PARAMETRIC_INDEX in plain or WORKING_DIR in plain or not os.path.isdir(plain):
        return path
    return os.path.join(path, f"{name}.{suffix}" + (f".{PARAMETRIC_INDEX}" if bulk else ""))


def optional_attributes(supported_fields: frozenset[str]) -> list[str]:
    """The optional attributes a tracker with these JobTemplate fields honours."""
    names = ["drmaa_transfer_files", "drmaa_deadline_time"]
    if "resource_limits" in supported_fields:
        names += ["drmaa_wct_hlimit", "drmaa_duration_hlimit"]
    return names


def job_template(t: Template, scheme: str, bulk: bool = False) -> JobTemplate:
    """The pydrmaa2 JobTemplate of DRMAA 1.0 template ``t`` on the tracker of ``scheme``: made
    once per version of ``t`` (a program submits one template many times; pydrmaa2 never
    changes a template it is given), again when it holds a time of day (read against now) or
    an output path's directory appeared or went."""
    s = t.scalars
    if s.get("drmaa_start_time") or s.get("drmaa_deadline_time"):
        return _job_template(t, scheme, bulk)
    directories = tuple(os.path.isdir(_path(s[a]).replace(HOME_DIR, os.path.expanduser("~")))
                        for a in ("drmaa_output_path", "drmaa_error_path") if s.get(a))
    key = (t.version, scheme, bulk, directories)
    cached = t.converted
    if cached is None or cached[0] != key:
        cached = t.converted = (key, _job_template(t, scheme, bulk))
    return cached[1]


def _job_template(t: Template, scheme: str, bulk: bool) -> JobTemplate:
    s = t.scalars
    command = s.get("drmaa_remote_command") or None
    name = s.get("drmaa_job_name") or None
    jt = JobTemplate(
        remote_command=command,
        args=t.vectors.get("drmaa_v_argv", []),
        job_environment=dict(v.split("=", 1) for v in t.vectors.get("drmaa_v_env", [])),
        submit_as_hold=s.get("drmaa_js_state") == SUBMISSION_STATE_HOLD,
        job_name=name,
        job_category=s.get("drmaa_job_category") or None,
        join_files=True if s.get("drmaa_join_files") == "y" else None,
    )
    if s.get("drmaa_wd"):
        jt.working_directory = _placeholders(s["drmaa_wd"])
    file_name = name or os.path.basename(command or "job")
    for attr, field, suffix in (("drmaa_input_path", "input_path", None),
                                ("drmaa_output_path", "output_path", "out"),
                                ("drmaa_error_path", "error_path", "err")):
        if s.get(attr):
            path = _path(s[attr])
            if suffix is not None:
                path = _into_directory(path, file_name, suffix, bulk)
            setattr(jt, field, path)
    emails = t.vectors.get("drmaa_v_email", [])
    if emails and s.get("drmaa_block_email") != "1":
        jt.email, jt.email_on_terminated = list(emails), True
    if s.get("drmaa_start_time"):
        jt.start_time = parse_time("drmaa_start_time", s["drmaa_start_time"])
    if s.get("drmaa_deadline_time"):
        jt.deadline_time = parse_time("drmaa_deadline_time", s["drmaa_deadline_time"])
    if s.get("drmaa_wct_hlimit"):
        jt.resource_limits["wallclock_time"] = str(parse_duration("drmaa_wct_hlimit",
                                                                  s["drmaa_wct_hlimit"]))
    if s.get("drmaa_duration_hlimit"):
        jt.resource_limits["cpu_time"] = str(parse_duration("drmaa_duration_hlimit",
                                                            s["drmaa_duration_hlimit"]))
    for soft in ("drmaa_wct_slimit", "drmaa_duration_slimit"):
        if s.get(soft):
            raise Drmaa1Error(Errno.INVALID_ATTRIBUTE_VALUE,
                              f"{soft} {s[soft]!r}: pydrmaa2's trackers have no soft limits")
    native = s.get("drmaa_native_specification", "").strip()
    if native:
        if scheme != "slurm":
            raise Drmaa1Error(
                Errno.INVALID_ATTRIBUTE_VALUE,
                f"drmaa_native_specification {native!r}: the {scheme!r} tracker takes no native "
                "specification (only slurm does: sbatch options)")
        apply_sbatch_options(jt, native)
    return jt


# -- Slurm's native specification ------------------------------------------------------------------

#: sbatch short options -> their long names.
SHORT_OPTIONS = {
    "A": "account", "b": "begin", "C": "constraint", "c": "cpus-per-task", "d": "dependency",
    "D": "chdir", "e": "error", "G": "gpus", "H": "hold", "i": "input", "J": "job-name",
    "k": "no-kill", "L": "licenses", "M": "clusters", "m": "distribution", "N": "nodes",
    "n": "ntasks", "O": "overcommit", "o": "output", "p": "partition", "q": "qos", "Q": "quiet",
    "s": "oversubscribe", "S": "core-spec", "t": "time", "w": "nodelist", "x": "exclude",
}


def _set_field(jt: JobTemplate, option: str, value: str) -> bool:
    """Set the JobTemplate field the Slurm tracker makes sbatch ``--option`` of; False when
    the option is no field's (it goes to the extensions)."""
    if option == "partition":
        jt.queue_name = value
    elif option == "account":
        jt.accounting_id = value
    elif option == "reservation":
        jt.reservation_id = value
    elif option == "job-name":
        jt.job_name = value
    elif option == "time":
        jt.resource_limits["wallclock_time"] = value
    elif option == "mem":
        jt.resource_limits["memory"] = value
    elif option == "nodelist":
        jt.candidate_machines = value.split(",")
    elif option in ("ntasks", "nice"):
        try:
            number = int(value)
        except ValueError:
            raise Drmaa1Error(Errno.INVALID_ATTRIBUTE_VALUE,
                              f"drmaa_native_specification: --{option} {value!r} is not a number"
                              ) from None
        if option == "ntasks":
            jt.min_slots = number
        else:
            jt.priority = -number
    elif option == "hold" and not value:
        jt.submit_as_hold = True
    else:
        return False
    return True


def apply_sbatch_options(jt: JobTemplate, native: str) -> None:
    """Put sbatch options (``-p debug --mem=1G --exclusive``) into ``jt``: the options the
    Slurm tracker sets from a template field into that field, the others into its extensions
    (which the tracker checks and passes to sbatch)."""
    try:
        words = shlex.split(native)
    except ValueError as e:
        raise Drmaa1Error(Errno.INVALID_ATTRIBUTE_FORMAT,
                          f"drmaa_native_specification {native!r}: {e}") from None
    i = 0
    while i < len(words):
        word = words[i]
        i += 1
        if word.startswith("--") and len(word) > 2:
            option, eq, value = word[2:].partition("=")
        elif word.startswith("-") and len(word) > 1 and word[1] in SHORT_OPTIONS:
            option, value, eq = SHORT_OPTIONS[word[1]], word[2:].lstrip("="), "=" * (len(word) > 2)
        else:
            raise Drmaa1Error(Errno.INVALID_ATTRIBUTE_VALUE,
                              f"drmaa_native_specification: {word!r} is no sbatch option")
        if not eq and i < len(words) and not words[i].startswith("-"):
            value = words[i]  # "--partition debug": the next word is the value
            i += 1
        if not _set_field(jt, option, value):
            jt.extensions[option] = value
