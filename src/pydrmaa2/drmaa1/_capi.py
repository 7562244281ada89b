"""The C side of libdrmaa: each drmaa_* function of drmaa.h attached to the built library with
``ffi.def_extern``, turning C buffers and handles into Python values for ``_session.Library``
and its Drmaa1Errors into error codes and diagnoses.

Opaque C handles (templates, name and value lists, job id lists) are small integers cast to
pointers, looked up here: a stale or foreign pointer is DRMAA_ERRNO_INVALID_ARGUMENT, never a
crash.
"""

from __future__ import annotations

import functools
import itertools
import threading
import traceback
from collections.abc import Callable
from typing import Any, TypeVar

from . import _session as s
from ._constants import STRERROR, Errno
from ._template import Drmaa1Error, Template

#: A cffi C value (a pointer, an array): cffi ships no types.
_CData = Any
_Extern = TypeVar("_Extern", bound=Callable[..., None])


class _Handles:
    """Integer handles for Python objects a C program holds as opaque pointers."""

    def __init__(self) -> None:
        self._objects: dict[int, Any] = {}
        self._next = itertools.count(0x1000)
        self._lock = threading.Lock()

    def add(self, obj: Any) -> int:
        with self._lock:
            handle = next(self._next)
            self._objects[handle] = obj
        return handle

    def get(self, handle: int, what: str) -> Any:
        try:
            return self._objects[handle]
        except KeyError:
            raise Drmaa1Error(Errno.INVALID_ARGUMENT,
                              f"{what} {handle:#x} is not one this library gave out (released?)"
                              ) from None

    def pop(self, handle: int) -> Any:
        return self._objects.pop(handle, None)


class _Cursor:
    """A list of strings read one at a time (drmaa_get_next_*)."""

    __slots__ = ("items", "pos")

    def __init__(self, items: list[str]) -> None:
        self.items, self.pos = items, 0


def bind(ffi: Any) -> None:
    """Attach every drmaa_* function of the built library (``ffi``) to one Library."""
    lib = s.Library()
    templates, cursors = _Handles(), _Handles()
    strerror = {code: ffi.new("char[]", text.encode()) for code, text in STRERROR.items()}
    unknown_error = ffi.new("char[]", b"unknown DRMAA error code")

    def text(p: _CData) -> str:
        raw: bytes = ffi.string(p)
        return raw.decode("utf-8", "surrogateescape")

    def put(buf: _CData, size: int, value: str) -> None:
        """Copy ``value`` into a C buffer of ``size`` bytes, cut to fit, NUL-terminated."""
        if buf == ffi.NULL or size <= 0:
            return
        data = value.encode("utf-8", "surrogateescape")
        if len(data) >= size:
            data = data[:size - 1].decode("utf-8", "ignore").encode()
        ffi.memmove(buf, data + b"\0", len(data) + 1)

    def handle(p: _CData) -> int:
        return int(ffi.cast("uintptr_t", p))

    def extern(errbuf: bool = True) -> Callable[[_Extern], _Extern]:
        """Attach a function: its Drmaa1Error becomes the code returned and the diagnosis in
        the two last arguments (the error buffer and its length)."""
        def attach(f: _Extern) -> _Extern:
            @functools.wraps(f)
            def call(*args: Any) -> int:
                try:
                    f(*args)
                    return Errno.SUCCESS
                except Drmaa1Error as e:
                    code, message = e.code, str(e)
                except Exception as e:  # a C caller gets a code, never a raise
                    code = Errno.INTERNAL_ERROR
                    message = f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=5)}"
                if errbuf:
                    put(args[-2], args[-1], message)
                return int(code)
            ffi.def_extern(name=f.__name__)(call)
            return f
        return attach

    def need(p: _CData, what: str) -> None:
        if p == ffi.NULL:
            raise Drmaa1Error(Errno.INVALID_ARGUMENT, f"{what} is NULL")

    def new_cursor(out: _CData, items: list[str], kind: str) -> None:
        need(out, kind)
        out[0] = ffi.cast(kind, cursors.add(_Cursor(items)))

    # -- session -----------------------------------------------------------------------------------
    @extern()
    def drmaa_init(contact: _CData, err: _CData, err_len: int) -> None:
        lib.init(None if contact == ffi.NULL else text(contact) or None)

    @extern()
    def drmaa_exit(err: _CData, err_len: int) -> None:
        lib.exit()

    @extern()
    def drmaa_get_contact(buf: _CData, size: int, err: _CData, err_len: int) -> None:
        put(buf, size, lib.contact())

    @extern()
    def drmaa_version(major: _CData, minor: _CData, err: _CData, err_len: int) -> None:
        need(major, "major")
        need(minor, "minor")
        major[0], minor[0] = 1, 0

    @extern()
    def drmaa_get_DRM_system(buf: _CData, size: int, err: _CData, err_len: int) -> None:
        put(buf, size, lib.drm_system())

    @extern()
    def drmaa_get_DRMAA_implementation(buf: _CData, size: int, err: _CData, err_len: int) -> None:
        put(buf, size, lib.implementation())

    def drmaa_strerror(code: int) -> _CData:
        return strerror.get(code, unknown_error)

    ffi.def_extern(name="drmaa_strerror")(drmaa_strerror)

    # -- job templates -----------------------------------------------------------------------------
    def template(p: _CData) -> Template:
        need(p, "job template")
        found: Template = templates.get(handle(p), "job template")
        return found

    @extern()
    def drmaa_allocate_job_template(out: _CData, err: _CData, err_len: int) -> None:
        lib._require()
        need(out, "jt")
        out[0] = ffi.cast("drmaa_job_template_t *", templates.add(Template()))

    @extern()
    def drmaa_delete_job_template(jt: _CData, err: _CData, err_len: int) -> None:
        template(jt)
        templates.pop(handle(jt))

    @extern()
    def drmaa_set_attribute(jt: _CData, name: _CData, value: _CData, err: _CData, err_len: int) -> None:
        need(name, "name")
        template(jt).set(text(name), "" if value == ffi.NULL else text(value))

    @extern()
    def drmaa_get_attribute(jt: _CData, name: _CData, buf: _CData, size: int, err: _CData,
                            err_len: int) -> None:
        need(name, "name")
        put(buf, size, template(jt).get(text(name)))

    @extern()
    def drmaa_set_vector_attribute(jt: _CData, name: _CData, values: _CData, err: _CData,
                                   err_len: int) -> None:
        need(name, "name")
        items = []
        if values != ffi.NULL:
            for i in itertools.count():
                if values[i] == ffi.NULL:
                    break
                items.append(text(values[i]))
        template(jt).set_vector(text(name), items)

    @extern()
    def drmaa_get_vector_attribute(jt: _CData, name: _CData, out: _CData, err: _CData, err_len: int) -> None:
        need(name, "name")
        new_cursor(out, template(jt).get_vector(text(name)), "drmaa_attr_values_t *")

    @extern()
    def drmaa_get_attribute_names(out: _CData, err: _CData, err_len: int) -> None:
        new_cursor(out, lib.attribute_names(), "drmaa_attr_names_t *")

    @extern()
    def drmaa_get_vector_attribute_names(out: _CData, err: _CData, err_len: int) -> None:
        new_cursor(out, lib.vector_attribute_names(), "drmaa_attr_names_t *")

    # -- lists -------------------------------------------------------------------------------------
    def next_item(p: _CData, buf: _CData, size: int) -> int:
        try:
            need(p, "list")
            cursor = cursors.get(handle(p), "list")
        except Drmaa1Error as e:
            return int(e.code)
        if cursor.pos >= len(cursor.items):
            return int(Errno.NO_MORE_ELEMENTS)
        put(buf, size, cursor.items[cursor.pos])
        cursor.pos += 1
        return int(Errno.SUCCESS)

    def count(p: _CData, out: _CData) -> int:
        try:
            need(p, "list")
            need(out, "size")
            out[0] = len(cursors.get(handle(p), "list").items)
        except Drmaa1Error as e:
            return int(e.code)
        return int(Errno.SUCCESS)

    for kind in ("attr_name", "attr_value", "job_id"):
        ffi.def_extern(name=f"drmaa_get_next_{kind}")(next_item)
    def release(p: _CData) -> None:
        if p != ffi.NULL:
            cursors.pop(handle(p))

    for kind in ("attr_names", "attr_values", "job_ids"):
        ffi.def_extern(name=f"drmaa_get_num_{kind}")(count)
        ffi.def_extern(name=f"drmaa_release_{kind}")(release)

    # -- jobs --------------------------------------------------------------------------------------
    @extern()
    def drmaa_run_job(buf: _CData, size: int, jt: _CData, err: _CData, err_len: int) -> None:
        need(buf, "job_id")
        put(buf, size, lib.run_job(template(jt)))

    @extern()
    def drmaa_run_bulk_jobs(out: _CData, jt: _CData, start: int, end: int, incr: int, err: _CData,
                            err_len: int) -> None:
        need(out, "jobids")
        ids = lib.run_bulk_jobs(template(jt), start, end, incr)
        out[0] = ffi.cast("drmaa_job_ids_t *", cursors.add(_Cursor(ids)))

    @extern()
    def drmaa_control(job_id: _CData, action: int, err: _CData, err_len: int) -> None:
        need(job_id, "jobid")
        lib.control(text(job_id), action)

    @extern()
    def drmaa_job_ps(job_id: _CData, out: _CData, err: _CData, err_len: int) -> None:
        need(job_id, "job_id")
        need(out, "remote_ps")
        out[0] = lib.job_ps(text(job_id))

    @extern()
    def drmaa_synchronize(job_ids: _CData, timeout: int, dispose: int, err: _CData, err_len: int) -> None:
        need(job_ids, "job_ids")
        ids = []
        for i in itertools.count():
            if job_ids[i] == ffi.NULL:
                break
            ids.append(text(job_ids[i]))
        lib.synchronize(ids, timeout, bool(dispose))

    @extern()
    def drmaa_wait(job_id: _CData, buf: _CData, size: int, stat: _CData, timeout: int, rusage: _CData,
                   err: _CData, err_len: int) -> None:
        need(job_id, "job_id")
        got, code, usage = lib.wait(text(job_id), timeout)
        put(buf, size, got)
        if stat != ffi.NULL:
            stat[0] = code
        if rusage != ffi.NULL:
            rusage[0] = ffi.cast("drmaa_attr_values_t *", cursors.add(_Cursor(usage)))

    # -- status macros -----------------------------------------------------------------------------
    def macro(name: str, read: Callable[[int], int]) -> None:
        def f(out: _CData, stat: int, err: _CData, err_len: int) -> None:
            need(out, "result")
            out[0] = int(read(stat))
        f.__name__ = name
        extern()(f)

    macro("drmaa_wifexited", s.exited)
    macro("drmaa_wexitstatus", s.exit_status)
    macro("drmaa_wifsignaled", s.signaled)
    macro("drmaa_wcoredump", s.core_dumped)
    macro("drmaa_wifaborted", s.aborted)

    @extern()
    def drmaa_wtermsig(buf: _CData, size: int, stat: int, err: _CData, err_len: int) -> None:
        put(buf, size, s.signal_name(stat) if s.signaled(stat) else "")
