"""DRMAA 1.0 for every tracker: ``libdrmaa.so``, the C library DRMAA v1 clients load
(drmaa-python through ``DRMAA_LIBRARY_PATH``, Snakemake's DRMAA executor, C programs), over
pydrmaa2's sessions. ``library_path()`` builds it on first use (cffi, a C compiler) into a
cache directory and returns its path; ``drmaa.h`` lies beside it.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import sys
import sysconfig
import tempfile
from pathlib import Path

from .. import __version__
from ..errors import UnsupportedOperationError

__all__ = ["library_path", "header_path", "cache_dir"]


def cache_dir() -> Path:
    """Where built libraries are kept: ``$PYDRMAA2_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/pydrmaa2`` (``~/.cache/pydrmaa2``)."""
    if os.environ.get("PYDRMAA2_CACHE_DIR"):
        return Path(os.environ["PYDRMAA2_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "pydrmaa2"


def _build_key() -> str:
    """What a built library depends on: its sources, this Python and where pydrmaa2 is."""
    from . import _build

    h = hashlib.sha256()
    for part in (_build.header_text(), Path(_build.__file__).read_text(), sys.version,
                 sys.executable, os.fspath(Path(__file__).resolve()), __version__):
        h.update(part.encode() + b"\0")
    return h.hexdigest()[:16]


def library_path(build: bool = True) -> Path:
    """The path of libdrmaa.so for this Python, built now if it is not yet (``build=False``:
    raise instead). Building needs cffi (``pip install 'pydrmaa2[drmaa1]'``), a C compiler
    and Python's headers."""
    target = cache_dir() / "drmaa1" / _build_key()
    lib = target / "libdrmaa.so"
    if lib.exists():
        return lib
    if not build:
        raise UnsupportedOperationError(f"libdrmaa is not built yet (it would be {lib})")
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / ".build.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one build at a time, whatever the programs
        if not lib.exists():
            _build_into(target)
    return lib


def header_path() -> Path:
    """The path of drmaa.h beside the built library (``-I`` its directory)."""
    return library_path().parent / "drmaa.h"


def _build_into(target: Path) -> None:
    try:
        import cffi  # noqa: F401
    except ImportError as e:
        raise UnsupportedOperationError(
            "building libdrmaa needs cffi: pip install 'pydrmaa2[drmaa1]'") from e
    cc = (os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc").split()[0]
    if shutil.which(cc) is None:
        raise UnsupportedOperationError(
            f"building libdrmaa needs a C compiler, and {cc!r} is not on PATH: install one "
            "(Debian: apt-get install gcc python3-dev) or set CC")
    from . import _build

    work = Path(tempfile.mkdtemp(prefix=".build-", dir=target.parent))
    try:
        _build.build(work)
        shutil.rmtree(work / "build", ignore_errors=True)
        os.replace(work, target)  # whole, or not at all
    except Exception as e:
        shutil.rmtree(work, ignore_errors=True)
        if isinstance(e, UnsupportedOperationError):
            raise
        raise UnsupportedOperationError(
            f"building libdrmaa failed ({type(e).__name__}: {e}); it needs a C compiler and "
            f"Python's headers ({sysconfig.get_paths()['include']}/Python.h)") from e
