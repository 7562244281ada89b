"""uge-drmaa2's data objects (templates, infos, Version, Sudo) over pydrmaa2's dataclasses, and
its small helpers (Singleton, LogManager, ByteString).

Each property keeps uge-drmaa2's value conventions (unset is None, bools read back 'TRUE'/'FALSE',
enums as member names, times as naive UTC datetimes or Time names) and knows the pydrmaa2 field
it crosses to, so ``_to_core``/``_from_core`` convert whole objects at the boundary.
"""

from __future__ import annotations

import datetime as dt
import enum
import functools
import getpass
import logging
import os
from collections.abc import Mapping
from typing import Any, ClassVar, Generic, TypeVar, cast, overload

from .. import info as core_info
from .. import states as core_states
from .. import templates as core_templates
from ._constants import (
    POSIX_EPOCH,
    UNSET_NUM,
    UNSET_PRIORITY,
    UNSET_TIME,
    Bool,
    Cpu,
    JobState,
    Os,
    Time,
)
from ._exceptions import InvalidArgument, UnsupportedOperation

__all__ = ["Drmaa2Object", "JobTemplate", "JobInfo", "ReservationTemplate", "ReservationInfo",
           "MachineInfo", "QueueInfo", "SlotInfo", "Version", "Sudo", "Singleton", "LogManager",
           "ByteString", "check_auth"]

_UTC = dt.timezone.utc
_Obj = TypeVar("_Obj", bound="Drmaa2Object")
#: What a property reads back as.
_Read = TypeVar("_Read")
_AnyField = TypeVar("_AnyField", bound="_Field[Any]")
_Single = TypeVar("_Single", bound="Singleton")


# -- properties ------------------------------------------------------------------------------------
class _Field(Generic[_Read]):
    """One property: uge-drmaa2's conventions on read and write, and how it crosses to the
    pydrmaa2 dataclass field ``core`` (the same name unless given; None: not in pydrmaa2)."""

    unset: Any = None

    def __init__(self, core: str | None = "") -> None:
        self.core = core

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name
        if self.core == "":
            self.core = name

    @overload
    def __get__(self: _AnyField, obj: None, owner: type | None = None) -> _AnyField: ...
    @overload
    def __get__(self, obj: Drmaa2Object, owner: type | None = None) -> _Read: ...
    def __get__(self, obj: Drmaa2Object | None, owner: type | None = None) -> Any:
        if obj is None:
            return self
        return self.read(obj._values.get(self.name, self.unset))

    def __set__(self, obj: Drmaa2Object, value: Any) -> None:
        if obj._read_only:  # as in uge-drmaa2, a read-only object ignores writes
            return
        obj._values[self.name] = self.write(value)

    def bad(self, value: Any, why: str) -> InvalidArgument:
        return InvalidArgument(f"{self.name} = {value!r}: {why}")

    def read(self, raw: Any) -> _Read:
        return cast("_Read", raw)  # kept as write made it

    def write(self, value: Any) -> Any:
        return value

    def to_core(self, raw: Any) -> Any:
        return raw

    def from_core(self, value: Any) -> Any:
        return value


class _String(_Field[str | None]):
    def write(self, value: Any) -> str | None:
        if isinstance(value, bytes):
            return value.decode()
        return None if value is None else str(value)


class _Id(_Field[str]):
    """The id of a job, array or reservation handle: set when the handle is made, read-only."""


class _StringList(_Field[list[str]]):
    unset: Any = ()

    def read(self, raw: Any) -> list[str]:
        return list(raw)

    def write(self, value: Any) -> list[str]:
        if isinstance(value, (str, bytes)):
            raise self.bad(value, "expected a list of strings")
        return [str(v) for v in value or ()]

    def to_core(self, raw: Any) -> list[str]:
        return list(raw)

    def from_core(self, value: Any) -> list[str]:
        return list(value or ())


class _List(_Field[list[Any]]):
    """A list of objects (JobArray.job_list); read back as a new list."""

    unset: Any = ()

    def read(self, raw: Any) -> list[Any]:
        return list(raw)


class _Dict(_Field[dict[str, str]]):
    unset: Any = {}

    def read(self, raw: Any) -> dict[str, str]:
        return dict(raw)

    def write(self, value: Any) -> dict[str, str]:
        if value is not None and not isinstance(value, Mapping):
            raise self.bad(value, "expected a dict of strings")
        return {str(k): str(v) for k, v in (value or {}).items()}

    def to_core(self, raw: Any) -> dict[str, str]:
        return dict(raw)

    def from_core(self, value: Any) -> dict[str, str]:
        return dict(value or {})


class _Number(_Field[Any]):
    """A number whose unset sentinel reads back as None; ``unit`` converts it for pydrmaa2:
    'seconds' (a timedelta there) or 'KiB' (bytes there)."""

    def __init__(self, core: str | None = "", unset_value: int = UNSET_NUM, kind: type = int,
                 unit: str | None = None) -> None:
        super().__init__(core)
        self.unset_value, self.kind, self.unit = unset_value, kind, unit

    def write(self, value: Any) -> int | float | None:
        if value is None:
            return None
        try:
            number = self.kind(value)
        except (TypeError, ValueError):
            raise self.bad(value, f"expected {self.kind.__name__}") from None
        return None if number == self.unset_value else number

    def to_core(self, raw: Any) -> Any:
        if raw is None or self.unit is None:
            return raw
        return dt.timedelta(seconds=raw) if self.unit == "seconds" else raw * 1024

    def from_core(self, value: Any) -> Any:
        if value is None or self.unit is None:
            return value
        return int(value.total_seconds()) if self.unit == "seconds" else value // 1024


class _Bool(_Field[str]):
    """Reads 'TRUE'/'FALSE'; unset is FALSE, which pydrmaa2 receives as ``core_false``."""

    unset: Any = False

    def __init__(self, core: str | None = "", core_false: bool | None = None) -> None:
        super().__init__(core)
        self.core_false = core_false

    def read(self, raw: Any) -> str:
        return Bool(bool(raw)).name

    def write(self, value: Any) -> bool:
        if isinstance(value, str):
            try:
                return bool(Bool[value.upper()])
            except KeyError:
                raise self.bad(value, "expected 'TRUE' or 'FALSE'") from None
        return bool(value)

    def to_core(self, raw: Any) -> bool | None:
        return True if raw else self.core_false

    def from_core(self, value: Any) -> bool:
        return bool(value)


class _Enum(_Field[str | None]):
    """Reads the member's name; accepts a name, an int or a member; maps by name to ``core_cls``."""

    def __init__(self, cls: type[enum.Enum], core_cls: type[enum.Enum], core: str | None = "") -> None:
        super().__init__(core)
        self.cls, self.core_cls = cls, core_cls

    def read(self, raw: Any) -> str | None:
        return None if raw is None else raw.name

    def write(self, value: Any) -> Any:
        if value is None:
            return None
        try:
            member = self.cls[value] if isinstance(value, str) else self.cls(int(value))
        except (KeyError, ValueError, TypeError):
            raise self.bad(value, f"not a {self.cls.__name__}") from None
        return None if member.value == -1 else member

    def to_core(self, raw: Any) -> Any:
        if raw is None:
            return None
        try:
            return self.core_cls[raw.name]
        except KeyError:
            raise self.bad(raw.name, "pydrmaa2 has no such value") from None

    def from_core(self, value: Any) -> Any:
        return None if value is None else self.cls[value.name]


class _Time(_Field[dt.datetime | str | None]):
    """Seconds since the epoch (or a duration, where pydrmaa2 has a timedelta); reads back as a
    naive UTC datetime, or the name of ZERO_TIME, INFINITE_TIME and NOW."""

    def __init__(self, core: str | None = "", duration: bool = False) -> None:
        super().__init__(core)
        self.duration = duration

    def read(self, raw: Any) -> dt.datetime | str | None:
        if raw is None:
            return None
        if raw in (Time.ZERO_TIME, Time.INFINITE_TIME, Time.NOW):
            return Time(raw).name
        return POSIX_EPOCH + dt.timedelta(seconds=raw)

    def write(self, value: Any) -> int | None:
        if value is None:
            return None
        if isinstance(value, str):
            try:
                seconds = int(Time[value])
            except KeyError:
                raise self.bad(value, "not a Time name") from None
        elif isinstance(value, dt.datetime):
            naive = value.astimezone(_UTC).replace(tzinfo=None) if value.tzinfo else value
            seconds = int((naive - POSIX_EPOCH).total_seconds())
        else:
            try:
                seconds = int(value)
            except (TypeError, ValueError):
                raise self.bad(value, "expected a datetime, seconds or a Time") from None
        return None if seconds == UNSET_TIME else seconds

    def to_core(self, raw: Any) -> Any:
        if raw is None or raw == Time.INFINITE_TIME:
            return None
        if self.duration:
            return dt.timedelta(seconds=max(raw, 0))
        if raw == Time.NOW:
            return dt.datetime.now(_UTC)
        return dt.datetime.fromtimestamp(raw, _UTC)

    def from_core(self, value: Any) -> int | None:
        if value is None:
            return None
        if isinstance(value, dt.timedelta):
            return int(value.total_seconds())
        return int(value.timestamp())


class _Nested(_Field[Any]):
    """A property holding another object (MachineInfo.machine_os_version: a Version)."""

    def __init__(self, cls: type[Drmaa2Object], core: str | None = "") -> None:
        super().__init__(core)
        self.cls = cls

    def to_core(self, raw: Any) -> Any:
        return None if raw is None else raw._to_core()

    def from_core(self, value: Any) -> Any:
        return None if value is None else self.cls._from_core(value)


# -- the base ------------------------------------------------------------------------------------
class Drmaa2Object:
    """Base of every uge-drmaa2 object: snake_case properties, ``to_dict``/``from_dict``, equality
    and string form by dict, and implementation-specific (pydrmaa2: extension) values."""

    #: The pydrmaa2 dataclass this object converts to and from (None: it has none).
    _core_type: ClassVar[type | None] = None
    #: pydrmaa2's extensions are open-ended: no fixed list of implementation-specific keys.
    implementation_specific_keys: ClassVar[list[str]] = []
    #: Objects that describe the engine's view (infos of machines, versions, handles) are read-only.
    _frozen: ClassVar[bool] = False

    def __init__(self) -> None:
        self._values: dict[str, Any] = {}
        self._read_only = False

    @classmethod
    def _blank(cls: type[_Obj]) -> _Obj:
        """An instance with no value set, whatever the subclass's constructor needs."""
        obj = cls.__new__(cls)
        Drmaa2Object.__init__(obj)
        return obj

    @classmethod
    @functools.cache
    def _fields(cls) -> dict[str, _Field[Any]]:
        found: dict[str, _Field[Any]] = {}
        for klass in reversed(cls.__mro__):
            found.update((k, v) for k, v in vars(klass).items() if isinstance(v, _Field))
        return dict(sorted(found.items()))

    def _init_from(self, d: Any) -> None:
        if not isinstance(d, dict):
            raise InvalidArgument(f"Invalid argument: {d!r} (expected a dict)")
        self.init_impl_spec_key_values()
        self.from_dict(d)
        self._read_only = self._frozen

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Drmaa2Object):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    # Unhashable: equal by value, and mutable. (typeshed types object.__hash__ as a method, so
    # mypy refuses the None that Python documents for this.)
    __hash__ = None  # type: ignore[assignment]

    def __str__(self) -> str:
        return str(self.to_dict())

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self})"

    def to_dict(self) -> dict[str, Any]:
        """Every property that is set, by snake_case name (bools, lists and dicts always)."""
        out = {}
        for name in self._fields():
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        return out

    def from_dict(self, d: dict[str, Any] | None) -> None:
        """Set properties from a dict of snake_case names; an unknown name is InvalidArgument."""
        fields = self._fields()
        for key, value in (d or {}).items():
            if key not in fields:
                raise InvalidArgument(
                    f"{type(self).__name__} has no property {key!r}; known: {', '.join(fields)}")
            setattr(self, key, value)

    @classmethod
    def create_from_dict(cls: type[_Obj], d: Any) -> _Obj:
        """``d`` itself when it is already one of these, else a new object built from the dict."""
        if isinstance(d, cls):
            return d
        obj = cls._blank()
        obj._init_from(d)
        return obj

    @classmethod
    def scrub_dict(cls, d: dict[str, Any]) -> dict[str, Any]:
        """``d`` without its None values."""
        return {k: v for k, v in d.items() if v is not None}

    @classmethod
    def get_implementation_specific_keys(cls) -> list[str]:
        """The fixed implementation-specific keys: none, any extension key may be set."""
        return list(cls.implementation_specific_keys)

    def get_impl_spec_key_value(self, key: str) -> str | None:
        """The implementation-specific (extension) value of ``key``; None when unset or empty."""
        return self._values.get("implementation_specific", {}).get(key) or None

    def set_impl_spec_key_value(self, key: str, value: str) -> None:
        """Set an implementation-specific (extension) value; a tracker refuses keys it doesn't know."""
        if not isinstance(value, str):
            raise InvalidArgument(f"implementation-specific value {value!r} of {key!r} is not a str")
        self._values.setdefault("implementation_specific", {})[key] = value

    def init_impl_spec_key_values(self) -> None:
        """Set every fixed implementation-specific key to '' (there are none)."""
        for key in self.get_implementation_specific_keys():
            self.set_impl_spec_key_value(key, "")

    def _to_core(self) -> Any:
        assert self._core_type is not None
        return self._core_type(**{
            f.core: f.to_core(self._values.get(name, f.unset))
            for name, f in self._fields().items() if f.core})

    @classmethod
    def _from_core(cls: type[_Obj], value: Any) -> _Obj:
        obj = cls._blank()
        for name, f in cls._fields().items():
            if f.core:
                obj._values[name] = f.from_core(getattr(value, f.core))
        obj._read_only = cls._frozen
        return obj


# -- templates and infos ---------------------------------------------------------------------------
class JobTemplate(Drmaa2Object):
    """What to run: ``JobTemplate({'remote_command': '/bin/sleep', 'args': ['10']})``."""

    _core_type = core_templates.JobTemplate
    remote_command = _String()
    args = _StringList()
    submit_as_hold = _Bool(core_false=False)
    rerunnable = _Bool()
    job_environment = _Dict()
    working_directory = _String()
    job_category = _String()
    email = _StringList()
    email_on_started = _Bool()
    email_on_terminated = _Bool()
    job_name = _String()
    input_path = _String()
    output_path = _String()
    error_path = _String()
    join_files = _Bool()
    reservation_id = _String()
    queue_name = _String()
    min_slots = _Number()
    max_slots = _Number()
    priority = _Number(unset_value=UNSET_PRIORITY)
    candidate_machines = _StringList()
    min_phys_memory = _Number()
    machine_os = _Enum(Os, core_states.OS)
    machine_arch = _Enum(Cpu, core_states.CPU)
    start_time = _Time()
    deadline_time = _Time()
    stage_in_files = _Dict()
    stage_out_files = _Dict()
    resource_limits = _Dict()
    accounting_id = _String()
    implementation_specific = _Dict(core="extensions")

    def __init__(self, template: dict[str, Any] = {}) -> None:  # noqa: B006 - uge-drmaa2's default
        super().__init__()
        self._init_from(template)


class JobInfo(Drmaa2Object):
    """What is known about a job; as a filter (``get_jobs``), the set properties must match."""

    _core_type = core_info.JobInfo
    job_id = _String(core="id")
    job_name = _String()
    exit_status = _Number()
    terminating_signal = _String()
    annotation = _String()
    job_state = _Enum(JobState, core_states.JobState, core="state")
    job_sub_state = _String(core="sub_state")
    allocated_machines = _StringList()
    submission_machine = _String()
    job_owner = _String()
    slots = _Number()
    queue_name = _String()
    wallclock_time = _Time(duration=True)
    cpu_time = _Number(unit="seconds")
    submission_time = _Time()
    dispatch_time = _Time()
    finish_time = _Time()
    implementation_specific = _Dict(core="extensions")

    def __init__(self, job_info: dict[str, Any] = {}) -> None:  # noqa: B006 - uge-drmaa2's default
        super().__init__()
        self._init_from(job_info)


class ReservationTemplate(Drmaa2Object):
    """What to reserve: ``ReservationTemplate({'reservation_name': 'r', 'duration': 100})``."""

    _core_type = core_templates.ReservationTemplate
    reservation_name = _String()
    start_time = _Time()
    end_time = _Time()
    duration = _Number(unit="seconds")
    min_slots = _Number()
    max_slots = _Number()
    job_category = _String()
    users_acl = _StringList()
    candidate_machines = _StringList()
    min_phys_memory = _Number()
    machine_os = _Enum(Os, core_states.OS)
    machine_arch = _Enum(Cpu, core_states.CPU)
    implementation_specific = _Dict(core="extensions")

    def __init__(self, template: dict[str, Any] = {}) -> None:  # noqa: B006 - uge-drmaa2's default
        super().__init__()
        self._init_from(template)


class ReservationInfo(Drmaa2Object):
    """What the engine granted for a reservation; also a filter (``get_all_reservations``)."""

    _core_type = core_info.ReservationInfo
    reservation_id = _String()
    reservation_name = _String()
    reserved_start_time = _Time()
    reserved_end_time = _Time()
    users_acl = _StringList()
    reserved_slots = _Number()
    reserved_machines = _StringList()
    implementation_specific = _Dict(core="extensions")

    def __init__(self, reservation_info: dict[str, Any] = {}) -> None:  # noqa: B006
        super().__init__()
        self._init_from(reservation_info)


class Version(Drmaa2Object):
    """A version as two strings; ``Version.get_drms_version()`` is pydrmaa2's own."""

    _core_type = core_info.Version
    _frozen = True
    major = _String()
    minor = _String()
    implementation_specific = _Dict(core=None)

    def __init__(self, version: dict[str, Any]) -> None:
        super().__init__()
        self._init_from(version)

    @classmethod
    def get_drms_version(cls) -> Version:
        """The version of the DRM system: pydrmaa2's."""
        from ._runtime import manager

        return cls._from_core(manager().drms_version)

    @classmethod
    def get_drmaa_version(cls) -> Version:
        """The DRMAA version implemented: 2.0."""
        from ._runtime import manager

        return cls._from_core(manager().drmaa_version)

    @classmethod
    def get_implementation_specific_attrs(cls) -> dict[str, str]:
        """Implementation-specific facts about the version: none."""
        return {}


class MachineInfo(Drmaa2Object):
    """A machine of the engine (read-only); memory in KiB as in DRMAA2 (pydrmaa2 has bytes)."""

    _core_type = core_info.MachineInfo
    _frozen = True
    name = _String()
    available = _Bool()
    sockets = _Number()
    cores_per_socket = _Number()
    threads_per_core = _Number()
    load = _Number(kind=float)
    phys_memory = _Number(unit="KiB")
    virt_memory = _Number(unit="KiB")
    machine_arch = _Enum(Cpu, core_states.CPU)
    machine_os = _Enum(Os, core_states.OS)
    machine_os_version = _Nested(Version)
    implementation_specific = _Dict(core="extensions")

    def __init__(self, machine_info: dict[str, Any]) -> None:
        super().__init__()
        self._init_from(machine_info)


class QueueInfo(Drmaa2Object):
    """A queue of the engine (a Slurm partition, ...), read-only."""

    _core_type = core_info.QueueInfo
    _frozen = True
    name = _String()
    implementation_specific = _Dict(core="extensions")

    def __init__(self, queue_info: dict[str, Any]) -> None:
        super().__init__()
        self._init_from(queue_info)


class SlotInfo(Drmaa2Object):
    """Slots on one machine, DRMAA2's SlotInfo; uge-drmaa2 defines it and returns none (its
    allocated and reserved machines are names), nor does pydrmaa2: a plain data object."""

    machine_name = _String(core=None)
    slots = _Number(core=None)
    implementation_specific = _Dict(core=None)

    def __init__(self, slot_info: dict[str, Any] = {}) -> None:  # noqa: B006 - as its siblings
        super().__init__()
        self._init_from(slot_info)


# -- acting as another user ------------------------------------------------------------------------
class Sudo(Drmaa2Object):
    """Whom to act as (the ``auth`` argument); pydrmaa2 acts as the calling user only."""

    username = _String(core=None)
    groupname = _String(core=None)
    uid = _Number(core=None)
    gid = _Number(core=None)

    def __init__(self, username: str | None = None, groupname: str | None = None,
                 uid: int | None = None, gid: int | None = None,
                 sudo_dict: dict[str, Any] = {}) -> None:  # noqa: B006 - uge-drmaa2's default
        super().__init__()
        # ``is None``, not ``or``: uid 0 and gid 0 are ids too (uge-drmaa2 lost them).
        given = {"username": username, "groupname": groupname, "uid": uid, "gid": gid}
        for key, value in given.items():
            setattr(self, key, value if value is not None else sudo_dict.get(key))

    def _is_caller(self) -> bool:
        """Whether every set field names the calling user and group."""
        import grp

        me = {"username": getpass.getuser(), "uid": os.getuid(), "gid": os.getgid(),
              "groupname": grp.getgrgid(os.getgid()).gr_name}
        return all(getattr(self, k) in (None, v) for k, v in me.items())


def check_auth(auth: Sudo | dict[str, Any] | None) -> None:
    """Accept ``auth`` only when it names the calling user: pydrmaa2 cannot act as another."""
    if auth is None:
        return
    sudo = auth if isinstance(auth, Sudo) else Sudo(sudo_dict=auth)
    if not sudo._is_caller():
        raise UnsupportedOperation(
            f"cannot act as {sudo}: pydrmaa2 runs and controls jobs as the calling user "
            f"{getpass.getuser()!r} only")


# -- singletons ------------------------------------------------------------------------------------
class Singleton:
    """Base of uge-drmaa2's singletons: ``get_instance()`` returns the one instance per class."""

    _instances: ClassVar[dict[type, Any]] = {}

    @classmethod
    def get_instance(cls: type[_Single]) -> _Single:
        """The class's one instance, created on first use."""
        if cls not in Singleton._instances:
            Singleton._instances[cls] = cls()
        instance: _Single = Singleton._instances[cls]
        return instance


class LogManager(Singleton):
    """Logging set-up as in uge-drmaa2: ``configure(level)`` or env ``DRMAA2_LOG_LEVEL``."""

    LOG_LEVEL_ENV_VAR = "DRMAA2_LOG_LEVEL"
    LOG_LEVEL_MAP = {"CRITICAL": logging.CRITICAL, "ERROR": logging.ERROR,
                     "WARNING": logging.WARNING, "INFO": logging.INFO, "DEBUG": logging.DEBUG,
                     "NOTSET": logging.NOTSET}
    LOG_MESSAGE_FORMAT = "%(asctime)s %(levelname)s %(filename)s:%(lineno)d:  %(message)s"

    def configure(self, level: str | None = None) -> None:
        """Log pydrmaa2 at ``level`` (default: ``$DRMAA2_LOG_LEVEL``) in uge-drmaa2's format.

        Unlike uge-drmaa2 this happens only when called, never on import."""
        level = level or os.environ.get(self.LOG_LEVEL_ENV_VAR)
        logging.basicConfig(format=self.LOG_MESSAGE_FORMAT)
        if level:
            logging.getLogger("pydrmaa2").setLevel(self.LOG_LEVEL_MAP.get(level.upper(),
                                                                           logging.NOTSET))

    @classmethod
    def get_logger(cls, name: str | None = None) -> logging.Logger:
        """The logger called ``name`` (default 'LogManager')."""
        return logging.getLogger(name or cls.__name__)


# -- strings -------------------------------------------------------------------------------------
class ByteString:
    """uge-drmaa2's str/bytes helper: ``encode()`` gives bytes for a str, ``decode()`` a str for
    bytes; anything else (None, numbers, the other type) passes through unchanged."""

    def __init__(self, s: Any = "") -> None:
        self.s: Any = s.s if isinstance(s, ByteString) else s

    def __str__(self) -> str:
        return str(self.s)

    def encode(self) -> Any:
        """The value as bytes if it is a str, else unchanged."""
        return self.s.encode() if isinstance(self.s, str) else self.s

    def decode(self) -> Any:
        """The value as str if it is bytes, else unchanged."""
        return self.s.decode() if isinstance(self.s, (bytes, bytearray)) else self.s
