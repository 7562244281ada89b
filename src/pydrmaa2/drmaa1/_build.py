"""The cffi embedding build of libdrmaa.so: drmaa.h's functions exported from a shared library
that starts a Python interpreter in a C program, or uses the running one when a Python program
loads it (drmaa-python's ctypes), and attaches ``_capi``'s implementation at the first call.
"""

from __future__ import annotations

import os
import re
import site
import sys
import sysconfig
from importlib import resources
from pathlib import Path
from typing import Any

MODULE = "_pydrmaa2_drmaa1"
LIBRARY = "libdrmaa.so"
HEADER = "drmaa.h"

_BEGIN, _END = "pydrmaa2:functions-begin", "pydrmaa2:functions-end"
_PROTO = re.compile(r"^(?P<ret>[\w ]+?\*?)\s*(?P<name>drmaa_\w+)\((?P<args>.*)\);$")


def header_text() -> str:
    return resources.files(__package__).joinpath(HEADER).read_text()


def prototypes(header: str) -> list[str]:
    """The function prototypes of drmaa.h, one a line, between its two marker comments."""
    body = header.split(_BEGIN, 1)[1].split(_END, 1)[0]
    return [line.strip() for line in body.splitlines()[1:-1] if line.strip()]


def _functions(protos: list[str]) -> list[tuple[str, str, bool]]:
    """(name, return type, whether its last two arguments are the error buffer)."""
    out = []
    for p in protos:
        m = _PROTO.match(p)
        assert m is not None, p
        out.append((m["name"], m["ret"].strip(), m["args"].endswith("size_t error_diag_len")))
    return out


#: Runs in the interpreter at the library's first call. Set up so that pydrmaa2 imports in a
#: C program too (this build's sys.executable and site directories), then attach the
#: implementation; if that fails, every function answers DRMAA_ERRNO_INTERNAL_ERROR saying why
#: (an unattached cffi function would return 0, which is DRMAA_ERRNO_SUCCESS).
INIT_CODE = '''
import os, site, sys
from {module} import ffi

_BUILD = {build!r}
_FUNCTIONS = {functions!r}


def _setup():
    if tuple(sys.version_info[:2]) != tuple(_BUILD["python"]):
        raise ImportError("this libdrmaa was built for Python %d.%d but runs in Python %d.%d; "
                          "build one for this Python with `drmaa2 libdrmaa`"
                          % (tuple(_BUILD["python"]) + tuple(sys.version_info[:2])))
    try:
        host = os.path.realpath("/proc/self/exe")
    except OSError:
        host = ""
    if host != os.path.realpath(sys.executable or "/"):
        # A C program: pydrmaa2 starts its agent with sys.executable, which must be a Python.
        sys.executable = _BUILD["executable"]
        if not getattr(sys, "argv", None):
            sys.argv = [host]
    try:
        import pydrmaa2  # noqa: F401
    except ImportError:
        for path in _BUILD["paths"]:
            site.addsitedir(path)


def _unavailable(why):
    message = ("pydrmaa2's libdrmaa could not start: " + why).encode()
    text = ffi.new("char[]", message)

    def attach(name, ret, errbuf):
        def f(*args):
            if errbuf and args[-2] != ffi.NULL and args[-1] > 0:
                data = message[:args[-1] - 1] + b"\\0"
                ffi.memmove(args[-2], data, len(data))
            if ret == "void":
                return None
            return text if "char" in ret else 1
        ffi.def_extern(name=name)(f)

    for name, ret, errbuf in _FUNCTIONS:
        attach(name, ret, errbuf)


try:
    _setup()
    from pydrmaa2.drmaa1 import _capi
    _capi.bind(ffi)
except BaseException as e:
    import traceback
    traceback.print_exc()
    _unavailable("%s: %s" % (type(e).__name__, e))
'''


def build_settings() -> dict[str, object]:
    """What the library needs to find pydrmaa2 in a process this Python did not start."""
    import pydrmaa2

    paths = [os.fspath(Path(pydrmaa2.__file__).resolve().parent.parent)]
    paths += [p for p in site.getsitepackages() + [site.getusersitepackages()] if os.path.isdir(p)]
    return {"python": list(sys.version_info[:2]), "executable": sys.executable,
            "paths": list(dict.fromkeys(paths))}


def ffibuilder(header_dir: Path) -> Any:
    """The cffi builder of libdrmaa, its header read from ``header_dir``."""
    import cffi

    header = (header_dir / HEADER).read_text()
    protos = prototypes(header)
    builder = cffi.FFI()
    builder.cdef("\n".join(re.findall(r"^typedef struct \w+ \w+;$", header, re.M)))
    builder.embedding_api("\n".join(protos))
    libdir = sysconfig.get_config_var("LIBDIR")
    # A C program finds libpython where this Python has it (pyenv, venvs: off the linker's path).
    link = [f"-Wl,-rpath,{libdir}"] if libdir else []
    builder.set_source(MODULE, f'#include "{HEADER}"', include_dirs=[os.fspath(header_dir)],
                       extra_link_args=link)
    builder.embedding_init_code(INIT_CODE.format(
        module=MODULE, build=build_settings(), functions=_functions(protos)))
    return builder


def build(target_dir: Path) -> Path:
    """Build libdrmaa.so (and copy drmaa.h beside it) into ``target_dir``; return its path."""
    target_dir.mkdir(parents=True, exist_ok=True)
    header = target_dir / HEADER
    header.write_text(header_text())
    builder = ffibuilder(target_dir)
    tmp = target_dir / "build"
    out = builder.compile(tmpdir=os.fspath(tmp), target=LIBRARY, verbose=False)
    path = target_dir / LIBRARY
    if Path(out).resolve() != path.resolve():
        os.replace(out, path)
    return path
