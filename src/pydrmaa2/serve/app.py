"""The HTTP API of ``drmaa2 serve`` (docs/serve.md) as a Starlette app over ``pydrmaa2.aio``.

The store is the truth: the app keeps only open sessions (a cache, reopened after a restart)
and the connections it is serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import getpass
import importlib.metadata
import json
import logging
import threading
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from .. import _codec
from .._book import capabilities
from .._store import JobRow, Phase, Store
from ..aio import AsyncJob, AsyncJobSession, AsyncSessionManager, EventStream
from ..errors import Drmaa2Error, InternalError, InvalidArgumentError
from ..errors import TimeoutError as Drmaa2TimeoutError
from ..info import Notification
from ..jobs import Job, check_timeout
from ..session import DEFAULT_CONTACT
from ..states import JobState
from ..templates import JobTemplate, ReservationTemplate, check_text
from ..trackers import Contact, available_schemes, tracker_class
from ..trackers.base import JobTracker
from . import _wire
from ._openapi import document
from ._security import BearerAuth
from ._wire import NotFoundError, field, job_view, read_json, refusal

__all__ = ["serve_app", "CONTROLS", "WAIT_MODES", "LONG_POLL", "PING_INTERVAL"]

log = logging.getLogger("pydrmaa2.serve")

#: What ``POST /v1/jobs/{id}/{action}`` and ``POST /v1/control`` may do to a job.
CONTROLS = ("suspend", "resume", "hold", "release", "terminate")
#: ``POST /v1/wait``'s modes: (started, any).
WAIT_MODES = {"any_started": (True, True), "any_terminated": (False, True),
              "all_started": (True, False), "all_terminated": (False, False)}
#: The longest a wait is held before it answers ``{"done": false}`` (seconds): below the idle
#: timeouts of common proxies, so a long poll is never cut by one.
LONG_POLL = 25.0
#: An event stream with no news says ``: ping`` this often (seconds), so a client and the
#: proxies between notice a dead connection.
PING_INTERVAL = 15.0
#: The most lines of a job's output read ahead of a client (a slow client holds the reader
#: back instead of the server buffering a whole output).
OUTPUT_QUEUE = 64
#: How often (seconds) an output reader waiting for room checks whether its client has left.
STOP_POLL = 0.2
#: The most notifications an event stream holds for a client that does not read them; past
#: that the stream is closed (the client reconnects), not buffered without end.
SSE_QUEUE = 1024
#: The dashboard's files, served as they are.
STATIC = Path(__file__).resolve().parent / "static"

T = TypeVar("T")
Handler = Callable[[Request], Awaitable[Response]]


def _version() -> str:
    try:
        return importlib.metadata.version("pydrmaa2")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _flag(request: Request, name: str) -> bool:
    value = request.query_params.get(name, "0").lower()
    if value not in ("0", "1", "true", "false", ""):
        raise InvalidArgumentError(f"{name}={value!r} is not 1 or 0")
    return value in ("1", "true")


def _check_query(request: Request, known: tuple[str, ...]) -> None:
    _wire.check_fields(request.query_params, known, "the query")


class _Api:
    """The handlers, over one AsyncSessionManager opened on the server's event loop."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self._sm: AsyncSessionManager | None = None
        self._sessions: dict[str, AsyncJobSession] = {}
        self._opening: dict[str, asyncio.Lock] = {}
        #: When each kept session was created (the store's): tells one recreated since.
        self._created: dict[str, float] = {}

    # -- life cycle and lookups -----------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        self._sm = AsyncSessionManager(self.home)
        try:
            yield
        finally:
            sm, self._sm = self._sm, None
            self._sessions.clear()
            self._created.clear()
            await sm.close()

    @property
    def sm(self) -> AsyncSessionManager:
        if self._sm is None:
            raise InternalError("the server is not running")
        return self._sm

    @property
    def store(self) -> Store:
        return self.sm.sync._store

    async def session(self, name: str) -> AsyncJobSession:
        """The open session named so (opened once, then kept); NotFoundError if none is. One
        destroyed and created again since (by another program) is opened anew, the old one
        closed."""
        row = self.store.session(name, "job")
        js = self._sessions.get(name)
        if row is None:
            if js is not None:  # destroyed by another program: its watcher goes too
                await self._forget(name)
            raise NotFoundError(f"there is no job session named {name!r}")
        if js is not None and self._current(name, js, row):
            return js
        async with self._opening.setdefault(name, asyncio.Lock()):
            js = self._sessions.get(name)
            if js is None or not self._current(name, js, row):
                new = await self.sm.open_job_session(name)
                await self._keep(name, new, row[1])
                js = new
            return js

    def _current(self, name: str, js: AsyncJobSession, row: tuple[str, float]) -> bool:
        """Whether ``js`` is still the session of this store row (not one of the same name
        destroyed since)."""
        return js.contact == row[0] and self._created.get(name) == row[1] and not js._closed

    async def _keep(self, name: str, js: AsyncJobSession, created: float | None) -> None:
        """Keep ``js`` open as the session ``name``, closing the one it replaces."""
        old = self._sessions.get(name)
        self._sessions[name] = js
        if created is not None:
            self._created[name] = created
        else:
            self._created.pop(name, None)
        if old is not None and old is not js and not old._closed:
            await old.close()

    async def _forget(self, name: str) -> None:
        """Close and forget the open session ``name`` (destroyed)."""
        js = self._sessions.pop(name, None)
        self._created.pop(name, None)
        self._opening.pop(name, None)
        if js is not None and not js._closed:
            await js.close()

    def session_of(self, job_id: str) -> str:
        name = self.store.job_session(job_id)
        if name is None:
            raise NotFoundError(f"there is no job {job_id!r}")
        return name

    async def job(self, job_id: str) -> tuple[AsyncJobSession, JobRow]:
        js = await self.session(self.session_of(job_id))
        row = self.store.job(job_id)
        if row is None:
            raise NotFoundError(f"there is no job {job_id!r}")
        return js, row

    async def grouped(self, ids: list[str]) -> dict[str, tuple[AsyncJobSession, list[str]]]:
        """The jobs' open sessions and ids, by session, in the order of ``ids``."""
        out: dict[str, tuple[AsyncJobSession, list[str]]] = {}
        for job_id in ids:
            name = self.session_of(job_id)
            if name not in out:
                out[name] = (await self.session(name), [])
            out[name][1].append(job_id)
        return out

    async def views(self, js: AsyncJobSession, rows: list[JobRow]) -> list[dict[str, Any]]:
        """JobViews of these rows, their states read as the session reads them."""
        if not rows:
            return []
        states = await js._blocking(js.sync._states_of, rows)
        return [job_view(r, *states[r.id]) for r in rows]

    async def array_view(self, js: AsyncJobSession, array_id: str,
                         rows: list[JobRow] | None = None, live: bool = True) -> dict[str, Any]:
        arr = self.store.array(js.session_name, array_id)
        if arr is None:
            raise NotFoundError(f"there is no job array {array_id!r}")
        if rows is None:
            rows = [r for r in self.store.job_rows(js.session_name) if r.array_id == array_id]
        views = (await self.views(js, rows) if live
                 else [job_view(r, JobState(r.state), r.sub_state) for r in rows])
        return {"id": array_id, "session": js.session_name, "job_ids": [r.id for r in rows],
                "counts": dict(Counter(v["state"] for v in views)),
                "max_parallel": arr.max_parallel}

    # -- server and trackers --------------------------------------------------------------------
    async def info(self, request: Request) -> Response:
        _check_query(request, ())
        return JSONResponse({"user": getpass.getuser(), "home": str(self.sm.home),
                             "version": _version(), "schemes": available_schemes()})

    async def tracker(self, request: Request) -> Response:
        _check_query(request, ("contact",))
        contact = request.query_params.get("contact") or DEFAULT_CONTACT
        c = Contact.parse(contact)
        cls = tracker_class(c.scheme)
        cls.check_contact(c)

        def categories() -> list[str]:
            tracker: JobTracker = cls(c, self.sm.home)
            try:
                return tracker.job_categories()
            finally:
                tracker.close()

        return JSONResponse({
            "scheme": c.scheme, "supported_fields": sorted(cls.supported_fields),
            "capabilities": sorted(cap.value for cap in capabilities(cls)),
            "max_array_tasks": cls.max_array_tasks,
            "job_categories": await self.sm._blocking(categories)})

    # -- job sessions ---------------------------------------------------------------------------
    def _session_view(self, name: str) -> dict[str, Any]:
        row = self.store.session(name, "job")
        if row is None:
            raise NotFoundError(f"there is no job session named {name!r}")
        return {"name": name, "contact": row[0]}

    async def list_sessions(self, request: Request) -> Response:
        _check_query(request, ())
        return JSONResponse([{"name": n, "contact": c}
                             for n, c in self.sm.job_session_contacts.items()])

    async def create_session(self, request: Request) -> Response:
        _check_query(request, ())
        data = await read_json(request, ("name", "contact", "exist_ok"), ("name",))
        name = field(data, "name", str)
        contact = field(data, "contact", str)

        async def create() -> Response:
            js = await self.sm.create_job_session(name, contact)
            row = self.store.session(name, "job")
            await self._keep(name, js, row[1] if row is not None else None)
            return JSONResponse({"name": name, "contact": js.contact}, 201)

        return await self._create_session("job", name, contact,
                                          field(data, "exist_ok", bool, False), create)

    async def _create_session(self, kind: str, name: str, contact: str | None, exist_ok: bool,
                              create: Callable[[], Awaitable[Response]]) -> Response:
        """``create()``'s answer; with ``exist_ok``, 200 and the session when one of that name
        and contact exists, also when another request created it meanwhile (several clients
        opening the remote tracker at once on a fresh server)."""

        def existing() -> Response | None:
            row = self.store.session(name, kind)
            if row is None:
                return None
            wanted = contact or DEFAULT_CONTACT  # none is process, as when creating
            if wanted != row[0]:
                raise InvalidArgumentError(
                    f"session {name!r} uses contact {row[0]!r}, not {wanted!r}")
            return JSONResponse({"name": name, "contact": row[0]})

        if exist_ok:
            answer = existing()
            if answer is not None:
                return answer
        try:
            return await create()
        except InvalidArgumentError:
            if exist_ok:  # created by another request since the look above?
                answer = existing()
                if answer is not None:
                    return answer
            raise

    async def get_session(self, request: Request) -> Response:
        _check_query(request, ())
        return JSONResponse(self._session_view(request.path_params["name"]))

    async def delete_session(self, request: Request) -> Response:
        _check_query(request, ())
        name = request.path_params["name"]
        self._session_view(name)
        await self._forget(name)
        await self.sm.destroy_job_session(name)
        return Response(status_code=204)

    async def list_jobs(self, request: Request) -> Response:
        _check_query(request, ("state",))
        wanted = {_wire.parse_state(s) for s in request.query_params.getlist("state")}
        js = await self.session(request.path_params["name"])
        views = await self.views(js, self.store.job_rows(js.session_name))
        if wanted:
            views = [v for v in views if JobState(v["state"]) in wanted]
        return JSONResponse(views)

    async def run_job(self, request: Request) -> Response:
        _check_query(request, ())
        js = await self.session(request.path_params["name"])
        data = await read_json(request, ("template",), ("template",))
        template = _wire.decode_strict(JobTemplate, data["template"], "template")
        job = await js.run_job(template)
        row = self.store.job(job.id)
        if row is None:  # reaped already by someone else
            raise NotFoundError(f"there is no job {job.id!r}")
        return JSONResponse(job_view(row, JobState(row.state), row.sub_state), 201)

    async def run_array(self, request: Request) -> Response:
        _check_query(request, ())
        js = await self.session(request.path_params["name"])
        data = await read_json(request, ("template", "begin", "end", "step", "max_parallel"),
                               ("template", "begin", "end"))
        template = _wire.decode_strict(JobTemplate, data["template"], "template")
        array = await js.run_bulk_jobs(template, field(data, "begin", int),
                                       field(data, "end", int), field(data, "step", int, 1),
                                       field(data, "max_parallel", int))
        rows = self.store.job_rows(js.session_name, [j.id for j in array.jobs])
        return JSONResponse(await self.array_view(js, array.id, rows, live=False), 201)

    async def list_arrays(self, request: Request) -> Response:
        _check_query(request, ())
        js = await self.session(request.path_params["name"])
        rows = self.store.job_rows(js.session_name)
        by_array: dict[str, list[JobRow]] = {}
        for r in rows:
            if r.array_id is not None:
                by_array.setdefault(r.array_id, []).append(r)
        views = await self.views(js, [r for r in rows if r.array_id is not None])
        states = {v["id"]: v["state"] for v in views}
        out = []
        for array_id, tasks in by_array.items():
            arr = self.store.array(js.session_name, array_id)
            out.append({"id": array_id, "session": js.session_name,
                        "job_ids": [r.id for r in tasks],
                        "counts": dict(Counter(states[r.id] for r in tasks)),
                        "max_parallel": arr.max_parallel if arr else None})
        return JSONResponse(out)

    async def get_array(self, request: Request) -> Response:
        _check_query(request, ())
        array_id = request.path_params["id"]
        ids = self.store.array_job_ids(array_id)
        if not ids:
            raise NotFoundError(f"there is no job array {array_id!r}")
        js = await self.session(self.session_of(ids[0]))
        return JSONResponse(await self.array_view(js, array_id))

    # -- jobs -----------------------------------------------------------------------------------
    async def get_job(self, request: Request) -> Response:
        _check_query(request, ())
        js, row = await self.job(request.path_params["id"])
        return JSONResponse((await self.views(js, [row]))[0])

    async def job_info(self, request: Request) -> Response:
        _check_query(request, ())
        js, row = await self.job(request.path_params["id"])
        return JSONResponse(_codec.encode(await AsyncJob(js, row.id).info))

    async def job_template(self, request: Request) -> Response:
        _check_query(request, ())
        js, row = await self.job(request.path_params["id"])
        return JSONResponse(_codec.encode(await AsyncJob(js, row.id).template))

    async def control_job(self, request: Request) -> Response:
        _check_query(request, ())
        action = request.path_params["action"]
        if action not in CONTROLS:
            raise NotFoundError(f"no action {action!r} (known: {', '.join(CONTROLS)})")
        await read_json(request, (), optional=True)
        js, row = await self.job(request.path_params["id"])
        await getattr(AsyncJob(js, row.id), action)()
        return Response(status_code=204)

    async def reap_job(self, request: Request) -> Response:
        _check_query(request, ())
        js, row = await self.job(request.path_params["id"])
        await AsyncJob(js, row.id).reap()
        return Response(status_code=204)

    async def output(self, request: Request) -> Response:
        _check_query(request, ("stderr", "follow", "tail"))
        stderr, follow = _flag(request, "stderr"), _flag(request, "follow")
        tail_word = request.query_params.get("tail")
        if tail_word is not None and not (tail_word.isascii() and tail_word.isdecimal()):
            raise InvalidArgumentError(f"tail={tail_word!r} is not a number of lines")
        tail = None if tail_word is None else int(tail_word)
        js, row = await self.job(request.path_params["id"])
        stop = threading.Event()
        # A follow ends once the client has left (``stop``), also while the job is silent or
        # held: the reader stops within one poll.
        lines = await js._blocking(js.sync._output, row.id, stderr, follow, tail, stop.is_set)
        return StreamingResponse(_threaded(lines, stop), media_type="text/plain; charset=utf-8",
                                 headers={"Cache-Control": "no-store",
                                          "X-Content-Type-Options": "nosniff"})

    # -- many jobs at once ----------------------------------------------------------------------
    async def states(self, request: Request) -> Response:
        _check_query(request, ())
        data = await read_json(request, ("ids",), ("ids",))
        out: dict[str, list[Any]] = {}
        # An id the store does not know (reaped, or its session destroyed) is left out of the
        # answer, not a 404 of the whole batch: the remote tracker reports it UNDETERMINED.
        groups: dict[str, list[str]] = {}
        for job_id in _wire.ids_of(data):
            name = self.store.job_session(job_id)
            if name is not None:
                groups.setdefault(name, []).append(job_id)
        for name, ids in groups.items():
            try:
                js = await self.session(name)
            except NotFoundError:  # destroyed meanwhile: its jobs are unknown now
                continue
            views = await self.views(js, self.store.job_rows(js.session_name, ids))
            ended = [v["id"] for v in views if JobState(v["state"]).is_terminal]

            def infos(js: AsyncJobSession = js, ended: list[str] = ended) -> dict[str, Any]:
                return {i: _codec.encode(Job(js.sync, i).info) for i in ended}

            # An ended job's JobInfo comes with its state: it never changes, and the remote
            # tracker records it at once instead of asking for it.
            ended_infos = await js._blocking(infos) if ended else {}
            for v in views:
                out[v["id"]] = [v["state"], v["sub_state"], *(
                    [ended_infos[v["id"]]] if v["id"] in ended_infos else [])]
        return JSONResponse(out)

    async def control(self, request: Request) -> Response:
        _check_query(request, ())
        data = await read_json(request, ("ids", "action"), ("ids", "action"))
        ids = _wire.ids_of(data)
        action = field(data, "action", str)
        if action not in (*CONTROLS, "reap"):
            raise InvalidArgumentError(f"action {action!r} is not one of "
                                       f"{', '.join((*CONTROLS, 'reap'))}")
        refused: dict[str, dict[str, str]] = {}
        groups: dict[str, list[str]] = {}
        for job_id in ids:
            name = self.store.job_session(job_id)
            if name is None:
                e = NotFoundError(f"there is no job {job_id!r}")
                refused[job_id] = {"error": _wire.error_name(e), "message": str(e)}
            else:
                groups.setdefault(name, []).append(job_id)
        for name, job_ids in groups.items():
            js = await self.session(name)

            def each(js: AsyncJobSession = js, job_ids: list[str] = job_ids) -> dict[str, Any]:
                out = {}
                for job_id in job_ids:
                    try:
                        getattr(Job(js.sync, job_id), action)()
                    except Drmaa2Error as e:
                        out[job_id] = {"error": _wire.error_name(e), "message": str(e)}
                return out

            refused.update(await js._blocking(each))
        return JSONResponse({"refused": refused})

    async def wait(self, request: Request) -> Response:
        _check_query(request, ())
        data = await read_json(request, ("ids", "mode", "timeout"), ("ids", "mode"))
        ids = _wire.ids_of(data)
        mode = field(data, "mode", str)
        if mode not in WAIT_MODES:
            raise InvalidArgumentError(f"mode {mode!r} is not one of {', '.join(WAIT_MODES)}")
        started, any_ = WAIT_MODES[mode]
        timeout = check_timeout(data.get("timeout"))
        held = LONG_POLL if timeout is None else min(timeout, LONG_POLL)
        groups = list((await self.grouped(ids)).values())
        try:
            first = await _until_disconnect(request, _wait_groups(groups, started, any_, held))
        except Drmaa2TimeoutError:
            if timeout is not None and timeout <= LONG_POLL:
                raise Drmaa2TimeoutError(
                    f"{mode} of {len(ids)} job(s) timed out after {timeout:g} s") from None
            return JSONResponse({"done": False})
        if first is None:
            return JSONResponse({"done": True, "job": None})
        js, row = await self.job(first)
        return JSONResponse({"done": True, "job": (await self.views(js, [row]))[0]})

    # -- events ---------------------------------------------------------------------------------
    async def events(self, request: Request) -> Response:
        _check_query(request, ("session", "ids"))
        name, ids_word = request.query_params.get("session"), request.query_params.get("ids")
        if (name is None) == (ids_word is None):
            raise InvalidArgumentError("give either ?session=NAME or ?ids=A,B,...")
        subscribe: list[tuple[Callable[[], EventStream], AsyncJobSession]]
        if name is not None:
            js = await self.session(name)
            subscribe, whole = [(js.events, js)], js
        else:
            ids = [i for i in (ids_word or "").split(",") if i]
            if not ids:
                raise InvalidArgumentError("ids= names no job")
            groups = (await self.grouped(list(dict.fromkeys(ids)))).values()
            subscribe = [(functools.partial(js._stream, job_ids), js) for js, job_ids in groups]
            whole = None
        return StreamingResponse(self._sse(subscribe, whole), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store",
                                          "X-Accel-Buffering": "no"})

    async def _sse(self, subscribe: list[tuple[Callable[[], EventStream], AsyncJobSession]],
                   whole: AsyncJobSession | None) -> AsyncIterator[str]:
        """The events of the streams ``subscribe`` opens (here, so they are always closed),
        each of its session; with ``whole``, a stream of that whole session, first the jobs
        ended before it began. The change of a job to an ended state carries its JobInfo
        (``info``: it never changes, so a client waiting for the job needs no request more).
        A client that falls SSE_QUEUE notifications behind has its stream closed (it
        reconnects and starts again from the present states)."""
        queue: asyncio.Queue[tuple[Notification, AsyncJobSession] | None] = \
            asyncio.Queue(SSE_QUEUE)
        overflowed = False

        async def pump(stream: EventStream, js: AsyncJobSession) -> None:
            nonlocal overflowed
            try:
                async for n in stream:
                    queue.put_nowait((n, js))
            except asyncio.QueueFull:
                overflowed = True
            finally:
                with contextlib.suppress(asyncio.QueueFull):
                    queue.put_nowait(None)

        streams: list[EventStream] = []
        pumps: list[asyncio.Future[None]] = []
        # The rows of the jobs streamed and not ended (a job reaped before its end is read
        # is still named); an ended job's row is dropped.
        rows: dict[str, JobRow] = {}
        try:
            for open_stream, _ in subscribe:
                streams.append(open_stream())
            if whole is not None:
                ended = streams[0]._ended_before
                for r in self.store.job_rows(whole.session_name):
                    if r.id in ended:
                        yield _event(job_view(r, JobState(r.state), r.sub_state))
            pumps = [asyncio.ensure_future(pump(s, js))
                     for s, (_, js) in zip(streams, subscribe, strict=True)]
            left = len(pumps)
            while left and not overflowed:
                try:
                    item = await asyncio.wait_for(queue.get(), PING_INTERVAL)
                except asyncio.TimeoutError:
                    yield ": ping\n\n"
                    continue
                if item is None:
                    left -= 1
                    continue
                n, js = item
                row = self.store.job(n.job_id) or rows.get(n.job_id)
                if row is None:
                    continue
                sub = row.sub_state if row.state == n.state.value else ""
                view = job_view(row, n.state, sub)
                if n.state.is_terminal:
                    rows.pop(n.job_id, None)
                    info = (json.loads(row.info) if row.phase == Phase.TERMINAL and row.info
                            else await self._ended_info(js, n.job_id))
                    if info is not None:
                        view["info"] = info
                else:
                    rows[n.job_id] = row
                yield _event(view)
            if overflowed:
                log.info("an event stream's client fell %d events behind: closed", SSE_QUEUE)
        finally:
            for p in pumps:
                p.cancel()
            for s in streams:
                await s.aclose()

    @staticmethod
    async def _ended_info(js: AsyncJobSession, job_id: str) -> dict[str, Any] | None:
        """The encoded JobInfo of an ended job whose end the store has not recorded yet (a
        recorded one is its row's ``info`` as it is); None once it is gone (reaped meanwhile)."""
        try:
            info: dict[str, Any] = await js._blocking(
                lambda: _codec.encode(Job(js.sync, job_id).info))
        except Drmaa2Error:
            return None
        except Exception:  # noqa: BLE001 - the event goes without it; the stream goes on
            log.exception("reading the JobInfo of ended job %s failed", job_id)
            return None
        return info

    # -- monitoring and reservations -----------------------------------------------------------
    async def monitor(self, request: Request) -> Response:
        _check_query(request, ("contact",))
        what = request.path_params["what"]
        calls = {"jobs": "get_all_jobs", "machines": "get_all_machines",
                 "queues": "get_all_queues", "reservations": "get_all_reservations"}
        if what not in calls:
            raise NotFoundError(f"cannot monitor {what!r} (known: {', '.join(calls)})")
        ms = await self.sm.open_monitoring_session(request.query_params.get("contact"))
        try:
            data = await getattr(ms, calls[what])()
        finally:
            await ms.close()
        return JSONResponse(_codec.encode(data))

    async def create_reservation_session(self, request: Request) -> Response:
        _check_query(request, ())
        data = await read_json(request, ("name", "contact", "exist_ok"), ("name",))
        name = field(data, "name", str)
        contact = field(data, "contact", str)

        async def create() -> Response:
            rs = await self.sm.create_reservation_session(name, contact)
            await rs.close()
            return JSONResponse({"name": name, "contact": rs.contact}, 201)

        return await self._create_session("reservation", name, contact,
                                          field(data, "exist_ok", bool, False), create)

    async def _reservation_session(self, name: str) -> Any:
        if self.store.session(name, "reservation") is None:
            raise NotFoundError(f"there is no reservation session named {name!r}")
        return await self.sm.open_reservation_session(name)

    async def request_reservation(self, request: Request) -> Response:
        _check_query(request, ())
        rs = await self._reservation_session(request.path_params["name"])
        try:
            data = await read_json(request, ("template",), ("template",))
            template = _wire.decode_strict(ReservationTemplate, data["template"], "template")
            r = await rs.request_reservation(template)
            return JSONResponse(_codec.encode(await r.info), 201)
        finally:
            await rs.close()

    async def list_reservations(self, request: Request) -> Response:
        _check_query(request, ())
        rs = await self._reservation_session(request.path_params["name"])
        try:
            return JSONResponse([_codec.encode(await r.info)
                                 for r in await rs.get_reservations()])
        finally:
            await rs.close()

    async def delete_reservation(self, request: Request) -> Response:
        _check_query(request, ())
        rid = request.path_params["id"]
        for name in self.sm.reservation_session_names:
            for store_id, tracker_id, _ in self.store.reservations(name):
                if rid in (tracker_id, store_id):
                    rs = await self.sm.open_reservation_session(name)
                    try:
                        await (await rs.get_reservation(store_id)).terminate()
                    finally:
                        await rs.close()
                    return Response(status_code=204)
        raise NotFoundError(f"there is no reservation {rid!r}")

    # -- documents ------------------------------------------------------------------------------
    async def openapi(self, request: Request) -> Response:
        _check_query(request, ())
        return JSONResponse(document(_version()))

    async def index(self, request: Request) -> Response:
        return _static_file(STATIC / "index.html")

    async def static(self, request: Request) -> Response:
        try:
            path = (STATIC / request.path_params["path"]).resolve()
        except (ValueError, OSError):  # a NUL byte, a path too long: no such file
            raise NotFoundError(f"no file {request.path_params['path']!r}") from None
        if not path.is_relative_to(STATIC.resolve()):
            raise NotFoundError(f"no file {request.path_params['path']!r}")
        return _static_file(path)


def _static_file(path: Path) -> Response:
    if not path.is_file():
        raise NotFoundError(f"no file {path.name!r}")
    return FileResponse(path, headers={"Cache-Control": "no-store",
                                       "X-Content-Type-Options": "nosniff"})


def _event(view: dict[str, Any]) -> str:
    return f"event: state\ndata: {json.dumps(view)}\n\n"


async def _threaded(lines: Iterator[str], stop: threading.Event | None = None,
                    capacity: int = OUTPUT_QUEUE) -> AsyncIterator[bytes]:
    """The lines of a blocking iterator, read on a thread of their own (a followed output may
    block for as long as the job runs), in chunks of what has arrived. At most ``capacity``
    lines wait for the client (a slow one holds the reader back, not the server's memory);
    when the stream ends (the client left) ``stop`` is set, the thread gives up and closes
    ``lines``."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[str | BaseException | None] = asyncio.Queue()
    room = threading.Semaphore(capacity)
    stop = stop if stop is not None else threading.Event()

    def put(item: str | BaseException | None) -> bool:
        """Whether ``item`` was queued (False: stopped before there was room)."""
        while not room.acquire(timeout=STOP_POLL):
            if stop.is_set():
                return False
        if stop.is_set():
            return False
        try:
            loop.call_soon_threadsafe(queue.put_nowait, item)
        except RuntimeError:  # the loop has closed
            return False
        return True

    def read() -> None:
        try:
            for line in lines:
                if stop.is_set() or not put(line):
                    return
            put(None)
        except BaseException as e:  # noqa: BLE001 - handed to the loop, which ends the stream
            put(e)
        finally:
            close = getattr(lines, "close", None)
            if close is not None:
                with contextlib.suppress(Exception):
                    close()

    threading.Thread(target=read, name="pydrmaa2-serve-output", daemon=True).start()
    try:
        while True:
            item = await queue.get()
            room.release()
            chunk = []
            while isinstance(item, str):
                chunk.append(item)
                if queue.empty():
                    item = ""
                    break
                item = queue.get_nowait()
                room.release()
            if chunk:
                yield "".join(chunk).encode()
            if item is None:
                return
            if isinstance(item, BaseException):
                log.warning("reading a job's output failed: %s", item)
                return
    finally:
        stop.set()


class _ClientGone(Exception):
    """The client closed the connection before the answer was ready."""


async def _until_disconnect(request: Request, work: Awaitable[T]) -> T:
    """``work``'s result, cancelled if the client goes away meanwhile (a long poll holds
    nothing for a client that left)."""
    task = asyncio.ensure_future(work)

    async def gone() -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass

    watch = asyncio.ensure_future(gone())
    try:
        await asyncio.wait({task, watch}, return_when=asyncio.FIRST_COMPLETED)
        if not task.done():
            raise _ClientGone
        return task.result()
    finally:
        watch.cancel()
        task.cancel()


async def _wait_groups(groups: list[tuple[AsyncJobSession, list[str]]], started: bool,
                       any_: bool, timeout: float) -> str | None:
    """Wait for jobs of one or several sessions: the first job to get there (``any_``)."""

    async def one(js: AsyncJobSession, ids: list[str], timeout: float) -> str | None:
        found = await js._wait([AsyncJob(js, i) for i in ids], started, any_, timeout)
        return None if found is None else found.id

    if len(groups) == 1:
        return await one(*groups[0], timeout)
    loop = asyncio.get_running_loop()
    if not any_:
        deadline = loop.time() + timeout
        for js, ids in groups:
            await one(js, ids, max(0.0, deadline - loop.time()))
        return None
    tasks = [asyncio.ensure_future(one(js, ids, timeout)) for js, ids in groups]
    try:
        pending: set[asyncio.Future[str | None]] = set(tasks)
        while pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for t in tasks:
                if t in done:
                    e = t.exception()
                    if e is None:
                        return t.result()
                    if not isinstance(e, Drmaa2TimeoutError):
                        raise e
        raise Drmaa2TimeoutError(f"no job got there in {timeout:g} s")
    finally:
        for t in tasks:
            t.cancel()


def _endpoint(handler: Handler) -> Handler:
    """``handler`` answering each Drmaa2Error as a refusal, and anything else as an
    InternalError (logged, never a traceback to the client)."""

    async def endpoint(request: Request) -> Response:
        try:
            # Every id, name and query value may reach the store: refused here when it is no
            # valid text (a lone surrogate is no sqlite3.Error, a NUL byte no program's).
            for key, value in request.path_params.items():
                if key != "path":  # a dashboard file's: no such file, below
                    check_text(key, value)
            for key, value in request.query_params.multi_items():
                check_text(f"the query's {key}", value)
            return await handler(request)
        except Drmaa2Error as e:
            return refusal(e)
        except _ClientGone:
            return Response(status_code=204)  # nobody reads it
        except Exception as e:  # noqa: BLE001 - the boundary: nothing escapes as a raw 500
            log.exception("%s %s failed", request.method, request.url.path)
            return refusal(InternalError(f"{type(e).__name__}: {e}"))

    return endpoint


async def _http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own refusals (no such route, method not allowed) in the API's shape."""
    assert isinstance(exc, HTTPException)
    name = "UnsupportedOperationError" if exc.status_code == 405 else "InvalidArgumentError"
    return JSONResponse({"error": name,
                         "message": f"{request.method} {request.url.path}: {exc.detail}"},
                        exc.status_code)


def serve_app(home: str | Path, token: str) -> Starlette:
    """The ``drmaa2 serve`` app on the store at ``home``, answering only requests that carry
    ``Authorization: Bearer <token>`` (the dashboard's static files excepted)."""
    api = _Api(Path(home))
    routes = [
        ("GET", "/v1/info", api.info),
        ("GET", "/v1/tracker", api.tracker),
        ("GET", "/v1/sessions", api.list_sessions),
        ("POST", "/v1/sessions", api.create_session),
        ("GET", "/v1/sessions/{name}", api.get_session),
        ("DELETE", "/v1/sessions/{name}", api.delete_session),
        ("GET", "/v1/sessions/{name}/jobs", api.list_jobs),
        ("POST", "/v1/sessions/{name}/jobs", api.run_job),
        ("GET", "/v1/sessions/{name}/arrays", api.list_arrays),
        ("POST", "/v1/sessions/{name}/arrays", api.run_array),
        ("GET", "/v1/arrays/{id}", api.get_array),
        ("GET", "/v1/jobs/{id}", api.get_job),
        ("DELETE", "/v1/jobs/{id}", api.reap_job),
        ("GET", "/v1/jobs/{id}/info", api.job_info),
        ("GET", "/v1/jobs/{id}/template", api.job_template),
        ("GET", "/v1/jobs/{id}/output", api.output),
        ("POST", "/v1/jobs/{id}/{action}", api.control_job),
        ("POST", "/v1/states", api.states),
        ("POST", "/v1/control", api.control),
        ("POST", "/v1/wait", api.wait),
        ("GET", "/v1/events", api.events),
        ("GET", "/v1/monitor/{what}", api.monitor),
        ("POST", "/v1/reservation-sessions", api.create_reservation_session),
        ("GET", "/v1/reservation-sessions/{name}/reservations", api.list_reservations),
        ("POST", "/v1/reservation-sessions/{name}/reservations", api.request_reservation),
        ("DELETE", "/v1/reservations/{id}", api.delete_reservation),
        ("GET", "/openapi.json", api.openapi),
        ("GET", "/", api.index),
        ("GET", "/static/{path:path}", api.static),
    ]
    app = Starlette(routes=[Route(path, _endpoint(fn), methods=[method])
                            for method, path, fn in routes],
                    exception_handlers={HTTPException: _http_error},
                    lifespan=api.lifespan)
    app.add_middleware(BearerAuth, token=token)
    return app
