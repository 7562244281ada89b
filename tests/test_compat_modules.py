"""pydrmaa2.drmaa2 in uge-drmaa2 8.11's module layout: every module and the names it defines, the
same objects as the package's, also under an alias ``drmaa2``; and the names only modules have."""

from __future__ import annotations

import datetime as dt
import importlib
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import pydrmaa2.drmaa2 as drmaa2
from pydrmaa2.drmaa2 import _constants, _exceptions, _objects

#: uge-drmaa2 8.11.0's modules (the drmaa2/ folder of its sdist on PyPI) and the names each
#: defines at module level (what it only imports is not its own).
UGE_MODULES = {
    "byte_string": {"ByteString"},
    "drmaa2_constants": {
        "UNSET_BOOL", "UNSET_ENUM", "UNSET_NUM", "UNSET_PRIORITY", "UNSET_TIME", "POSIX_EPOCH",
        "PY_DICT_TYPE", "PY_STRING_TYPE", "PY_BYTES_TYPE", "Bool", "Time", "Capability", "Cpu",
        "Event", "JobState", "Os", "ResourceLimit", "ListType", "StatusCode"},
    "drmaa2_exceptions": {
        "Drmaa2Exception", "DeniedByDrms", "DrmCommunicationError", "TryLaterError",
        "SessionManagementError", "TimeoutError", "InternalError", "InvalidArgument",
        "InvalidSession", "InvalidState", "ResourceNotAvailable", "UnsupportedAttribute",
        "UnsupportedOperation", "ImplementationSpecificError", "AuthorizationError"},
    "drmaa2_object": {"Drmaa2Object"},
    "exception_mapper": {"ExceptionMapper"},
    "job": {"Job"},
    "job_array": {"JobArray"},
    "job_info": {"JobInfo"},
    "job_session": {"JobSession"},
    "job_template": {"JobTemplate"},
    "library_manager": {"LibraryManager"},
    "log_manager": {"LogManager"},
    "machine_info": {"MachineInfo"},
    "monitoring_session": {"MonitoringSession"},
    "notification": {"Notification"},
    "queue_info": {"QueueInfo"},
    "reservation": {"Reservation"},
    "reservation_info": {"ReservationInfo"},
    "reservation_session": {"ReservationSession"},
    "reservation_template": {"ReservationTemplate"},
    "singleton": {"Singleton"},
    "slot_info": {"SlotInfo"},
    "sudo": {"Sudo"},
    "version": {"Version"},
}
#: uge-drmaa2's modules over libdrmaa2's C structures: not here (the package docstring says why).
CTYPES_MODULES = {"drmaa2_ctypes", "drmaa2_object_descriptors", "drmaa2_job_list_descriptor",
                  "drmaa2_slot_info_list_descriptor", "drmaa2_version_descriptor"}
#: Where the names that only modules have (not the package) are defined.
MODULE_ONLY = {
    "ByteString": _objects, "Drmaa2Object": _objects, "ExceptionMapper": _exceptions,
    "Singleton": _objects, "SlotInfo": _objects, "POSIX_EPOCH": _constants,
    "PY_DICT_TYPE": _constants, "PY_STRING_TYPE": _constants, "PY_BYTES_TYPE": _constants,
    **{f"UNSET_{k}": _constants for k in ("BOOL", "ENUM", "NUM", "PRIORITY", "TIME")},
}
SRC = Path(drmaa2.__file__).parent


def test_the_modules_are_uge_drmaa2s_less_its_ctypes_ones():
    public = {p.stem for p in SRC.glob("*.py") if not p.stem.startswith("_")}
    assert public == set(UGE_MODULES)
    assert not public & CTYPES_MODULES
    for name in CTYPES_MODULES:
        assert f"``{name}``" in drmaa2.__doc__, name  # the docstring says why it is not here
        with pytest.raises(ModuleNotFoundError):
            importlib.import_module(f"pydrmaa2.drmaa2.{name}")


@pytest.mark.parametrize("module", sorted(UGE_MODULES))
def test_each_module_has_its_names_as_the_very_objects_of_the_package(module):
    mod = importlib.import_module(f"pydrmaa2.drmaa2.{module}")
    assert set(mod.__all__) == UGE_MODULES[module]
    assert mod.__doc__.startswith(f"uge-drmaa2's ``drmaa2.{module}``")
    for name in mod.__all__:
        obj = getattr(mod, name)
        if name in drmaa2.__all__:
            assert obj is getattr(drmaa2, name), name
        else:
            assert obj is getattr(MODULE_ONLY[name], name), name


def test_every_package_name_lives_in_one_of_the_modules():
    defined = set().union(*UGE_MODULES.values())
    functions = {"drmaa_supports", "get_drmaa_name", "get_drmaa_version", "get_drms_name",
                 "get_drms_version", "get_job_session_names", "get_reservation_session_names"}
    assert set(drmaa2.__all__) - defined == functions | {"__version__"}  # __init__'s own, as upstream


def test_after_importing_the_package_every_module_is_its_attribute():
    for module in UGE_MODULES:  # as uge-drmaa2's __init__ imports them all: drmaa2.job.Job works
        assert getattr(drmaa2, module) is sys.modules[f"pydrmaa2.drmaa2.{module}"]


# -- under an alias: code written for uge-drmaa2 with its imports unchanged ----------------------
#: Every import statement of uge-drmaa2's examples and test suite, and its other modules' forms.
UGE_IMPORTS = """
import drmaa2
from drmaa2 import JobSession, JobTemplate, JobState, Drmaa2Exception, Sudo
from drmaa2.drmaa2_constants import POSIX_EPOCH
import drmaa2.job_session
import drmaa2.drmaa2_exceptions as exc
from drmaa2 import job_info
from drmaa2.reservation_template import ReservationTemplate
"""

CHECK_ALIAS = """
import importlib, sys
import pydrmaa2.drmaa2
MODULES = {modules!r}
{imports}
assert drmaa2 is pydrmaa2.drmaa2
assert JobSession is drmaa2.job_session.JobSession is pydrmaa2.drmaa2.JobSession
assert POSIX_EPOCH is pydrmaa2.drmaa2.drmaa2_constants.POSIX_EPOCH
assert exc.InvalidArgument is pydrmaa2.drmaa2.InvalidArgument
assert ReservationTemplate is pydrmaa2.drmaa2.ReservationTemplate
for name in MODULES:
    alias = importlib.import_module("drmaa2." + name)
    own = sys.modules["pydrmaa2.drmaa2." + name]
    # one module object under both names, and the package's attribute is still its own module
    assert alias is own is sys.modules["drmaa2." + name] is getattr(pydrmaa2.drmaa2, name), name
print("ok")
"""


def run_python(code: str, tmp_path: Path, *paths: Path) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter (a clean sys.modules) with ``paths`` on its path."""
    env_path = ":".join(str(p) for p in paths)
    return subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60, env={"PYTHONPATH": env_path, "PATH": "/usr/bin:/bin"})


def test_an_alias_in_sys_modules_serves_uge_drmaa2s_imports_unchanged(tmp_path):
    code = CHECK_ALIAS.format(modules=sorted(UGE_MODULES), imports=(
        "sys.modules['drmaa2'] = pydrmaa2.drmaa2\n" + UGE_IMPORTS))
    p = run_python(code, tmp_path)
    assert p.returncode == 0 and p.stdout == "ok\n", p.stderr


def test_a_drmaa2_shim_module_serves_uge_drmaa2s_imports_unchanged(tmp_path):
    (tmp_path / "drmaa2.py").write_text(textwrap.dedent("""
        import sys
        import pydrmaa2.drmaa2
        sys.modules[__name__] = pydrmaa2.drmaa2
    """))
    p = run_python(CHECK_ALIAS.format(modules=sorted(UGE_MODULES), imports=UGE_IMPORTS),
                   tmp_path, tmp_path)
    assert p.returncode == 0 and p.stdout == "ok\n", p.stderr


def test_the_ctypes_modules_stay_missing_under_the_alias(tmp_path):
    code = ("import sys, pydrmaa2.drmaa2\nsys.modules['drmaa2'] = pydrmaa2.drmaa2\n"
            "try:\n    import drmaa2.drmaa2_ctypes\nexcept ModuleNotFoundError:\n    print('missing')")
    p = run_python(code, tmp_path)
    assert p.stdout == "missing\n", p.stderr


# -- the names only the modules have ---------------------------------------------------------------
def test_constants_have_uge_drmaa2s_values():
    from pydrmaa2.drmaa2 import drmaa2_constants as c

    assert (c.UNSET_BOOL, c.UNSET_ENUM, c.UNSET_NUM, c.UNSET_PRIORITY, c.UNSET_TIME) == (
        0, -1, -1, -99999, -3)
    assert c.UNSET_TIME == c.Time.UNSET_TIME
    epoch, types = c.POSIX_EPOCH, (c.PY_DICT_TYPE, c.PY_STRING_TYPE, c.PY_BYTES_TYPE)
    assert epoch == dt.datetime(1970, 1, 1) and epoch.tzinfo is None
    assert types == (dict, str, bytes)


def test_times_read_back_as_seconds_since_posix_epoch():
    from pydrmaa2.drmaa2.drmaa2_constants import POSIX_EPOCH

    ji = drmaa2.JobInfo({"submission_time": 86400})
    assert ji.submission_time == POSIX_EPOCH + dt.timedelta(days=1)


def test_byte_string_converts_between_str_and_bytes_and_passes_the_rest():
    from pydrmaa2.drmaa2.byte_string import ByteString

    assert ByteString("é").encode() == "é".encode()
    assert ByteString(b"\xc3\xa9").decode() == "é"
    assert ByteString(b"x").encode() == b"x" and ByteString("x").decode() == "x"
    assert ByteString(None).encode() is None and ByteString(None).decode() is None
    assert ByteString(ByteString("x")).s == "x"  # uge-drmaa2 kept the wrapper here
    assert str(ByteString(b"x")) == "b'x'" and str(ByteString()) == ""


def test_exception_mapper_maps_every_status_code_to_uge_drmaa2s_class():
    from pydrmaa2.drmaa2.drmaa2_constants import StatusCode
    from pydrmaa2.drmaa2.exception_mapper import ExceptionMapper

    mapping = ExceptionMapper.EXCEPTION_MAP
    assert set(mapping) == set(StatusCode) - {StatusCode.LASTERROR}  # as uge-drmaa2's map
    assert mapping[StatusCode.SUCCESS] is None
    assert mapping[StatusCode.UNSET_ERROR] is drmaa2.Drmaa2Exception
    for code, cls in mapping.items():
        if cls is None:
            ExceptionMapper.check_status_code(code)  # raises nothing
            continue
        assert cls is drmaa2.Drmaa2Exception or cls.code == code
        with pytest.raises(cls, match="the message") as raised:
            ExceptionMapper.check_status_code(int(code), "the message")
        assert type(raised.value) is cls
    with pytest.raises(drmaa2.Drmaa2Exception) as raised:  # codes outside the map: the root class
        ExceptionMapper.check_status_code(StatusCode.LASTERROR)
    assert type(raised.value) is drmaa2.Drmaa2Exception
    with pytest.raises(drmaa2.InvalidArgument, match="99"):
        ExceptionMapper.check_status_code(99)


def test_slot_info_is_a_data_object_like_its_siblings():
    from pydrmaa2.drmaa2.slot_info import SlotInfo

    si = SlotInfo({"machine_name": "node1", "slots": 4})
    assert (si.machine_name, si.slots) == ("node1", 4)
    assert si == SlotInfo({"machine_name": "node1", "slots": 4}) != SlotInfo()
    assert SlotInfo().to_dict() == {"implementation_specific": {}}
    si.slots = None
    assert si.slots is None
    with pytest.raises(drmaa2.InvalidArgument, match="nodes"):
        SlotInfo({"nodes": 1})


def test_singleton_gives_one_instance_per_class():
    from pydrmaa2.drmaa2.singleton import Singleton

    assert drmaa2.LibraryManager.get_instance() is drmaa2.LibraryManager.get_instance()
    assert drmaa2.LogManager.get_instance() is not drmaa2.LibraryManager.get_instance()
    assert issubclass(drmaa2.LibraryManager, Singleton) and issubclass(drmaa2.LogManager, Singleton)


def test_drmaa2_object_is_the_base_of_every_object():
    from pydrmaa2.drmaa2.drmaa2_object import Drmaa2Object

    for cls in (drmaa2.JobTemplate, drmaa2.JobInfo, drmaa2.ReservationTemplate, drmaa2.Sudo,
                drmaa2.ReservationInfo, drmaa2.MachineInfo, drmaa2.QueueInfo, drmaa2.Version,
                drmaa2.Notification, drmaa2.Job, drmaa2.JobArray, drmaa2.Reservation,
                drmaa2.JobSession, drmaa2.ReservationSession, drmaa2.MonitoringSession):
        assert issubclass(cls, Drmaa2Object), cls
