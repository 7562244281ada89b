"""The remote tracker (contacts ``drmaa2+unix``, ``drmaa2+https``, ``drmaa2+http``): every job is
a job of a ``drmaa2 serve`` server, in one job session of its store, reached over its HTTP API
(docs/serve.md). The wire's tables (ERRORS, CONTROL), then the one boundary where the server's
refusals become Drmaa2Errors, then the event feed and the tracker.
"""

from __future__ import annotations

import contextlib
import dataclasses
import http.client
import json
import logging
import os
import select
import socket
import ssl
import threading
import time
import urllib.parse
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx

from .. import _codec
from ..errors import (
    DeniedByDrmsError,
    Drmaa2Error,
    DrmCommunicationError,
    ImplementationSpecificError,
    InternalError,
    InvalidArgumentError,
    InvalidSessionError,
    InvalidStateError,
    OutOfResourceError,
    SessionManagementError,
    TimeoutError,
    TryLaterError,
    UnsupportedAttributeError,
    UnsupportedOperationError,
)
from ..info import JobInfo, MachineInfo, QueueInfo, ReservationInfo
from ..states import Capability, JobState
from ..templates import JobTemplate, ReservationTemplate
from .base import MAX_ARRAY_SIZE, Action, ChangeFeed, Contact, JobTracker
from .common import is_loopback

__all__ = ["CONTROL", "ERRORS", "RemoteFeed", "RemoteTracker", "SessionEvents"]

log = logging.getLogger("pydrmaa2.remote")

# -- the wire's tables -----------------------------------------------------------------------------

#: The ``error`` of a refusal (``{"error", "message"}``) -> the class raised here; any other
#: name is ImplementationSpecificError with the server's message.
ERRORS: dict[str, type[Drmaa2Error]] = {cls.__name__: cls for cls in (
    DeniedByDrmsError, DrmCommunicationError, TryLaterError, SessionManagementError, TimeoutError,
    InternalError, InvalidArgumentError, InvalidSessionError, InvalidStateError, OutOfResourceError,
    UnsupportedAttributeError, UnsupportedOperationError, ImplementationSpecificError)}
#: A refusal with no readable body (a proxy's page, say): by its HTTP status.
UNREADABLE: dict[int, type[Drmaa2Error]] = {
    401: DeniedByDrmsError, 403: DeniedByDrmsError, 502: DrmCommunicationError,
    503: DrmCommunicationError, 504: DrmCommunicationError,
}

#: DRMAA2 job control -> the action word of ``POST /v1/jobs/{id}/{action}`` and ``/v1/control``.
CONTROL: dict[Action, str] = {a: a.value for a in Action}

#: Template fields the server's own job session keeps for any of its trackers (its agent starts
#: a job at its start_time and ends it at its deadline_time), so they travel to it as they are.
SERVER_KEPT_FIELDS = frozenset({"start_time", "deadline_time"})
#: The job environment variable that carries the client's job id to the server's job, so that
#: ``find_job`` can recognise a job whose submission was cut short (``HOST:HOME/ID``; for an
#: array, ``HOST:HOME/FIRST+``: its tasks have consecutive ids in task order).
CLIENT_ID_VARIABLE = "PYDRMAA2_CLIENT_JOB"
#: Seconds to connect, and to wait for an answer (a Slurm call behind the server can be slow).
CONNECT_TIMEOUT, ANSWER_TIMEOUT = 10.0, 120.0
#: Connections kept for reuse 30 s at most: less than the server keeps an idle one (65 s), so
#: a request never goes out on a connection the server is closing.
KEEP_IDLE = 30.0
_LIMITS = httpx.Limits(keepalive_expiry=KEEP_IDLE)
#: Seconds an event stream may be silent: the server pings every 15 s, so a longer silence is
#: a connection gone dead (a cut cable, a suspended laptop) and the feed connects again.
EVENT_SILENCE = 45.0
#: Backoff between attempts to reconnect an event stream: first, and at most (seconds).
RECONNECT_FIRST, RECONNECT_MAX = 0.1, 2.0
#: Ended jobs whose end, as the event stream told it, a tracker keeps (it tells of every job of
#: the server session, other programs' too).
FINAL_KEPT = 10_000


# -- the one boundary --------------------------------------------------------------------------------


def refusal(response: httpx.Response) -> Drmaa2Error:
    """The Drmaa2Error of a refusal: the class the body names (through ERRORS) with its message."""
    try:
        content = response.read()
    except httpx.HTTPError:  # the refusal was cut short: its status is all there is
        content = b""
    try:
        body = json.loads(content)
        name, message = body["error"], body["message"]
    except (ValueError, KeyError, TypeError):
        text = content.decode(errors="replace").strip()[:200]
        return UNREADABLE.get(response.status_code, ImplementationSpecificError)(
            f"the drmaa2 server answered HTTP {response.status_code}: {text or response.reason_phrase}")
    return ERRORS.get(str(name), ImplementationSpecificError)(str(message))


@contextlib.contextmanager
def server_errors(doing: str, address: str) -> Iterator[None]:
    """A server that cannot be reached (refused, gone, timed out, cut short) while ``doing``
    something as DrmCommunicationError naming its ``address``; refusals are raised as they come
    (``refusal``)."""
    try:
        yield
    except (httpx.TransportError, http.client.HTTPException, OSError) as e:
        raise DrmCommunicationError(
            f"{doing}: cannot reach the drmaa2 server at {address}: {e or type(e).__name__}") from e


def _state(word: str) -> JobState:
    """A JobState from the wire, by value ('done') or by name ('DONE')."""
    try:
        return JobState(word)
    except ValueError:
        try:
            return JobState[word]
        except KeyError:
            raise DrmCommunicationError(f"the drmaa2 server sent an unknown job state {word!r}") from None


class _UnixConnection(http.client.HTTPConnection):
    """http.client's connection to a Unix socket."""

    def __init__(self, path: str) -> None:
        super().__init__("drmaa2", timeout=CONNECT_TIMEOUT)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(CONNECT_TIMEOUT)
            sock.connect(self._path)
            sock.settimeout(ANSWER_TIMEOUT)
        except OSError:
            sock.close()
            raise
        self.sock = sock


class UnixWire:
    """Requests answered whole (JSON), to a server on a Unix socket, on http.client connections
    kept for reuse (thread-safe): the client's part of a request costs half of what httpx's
    does (0.5 ms against 1.05 ms here), which counts on each remote job. Streams (events,
    output) stay on httpx."""

    def __init__(self, path: str, headers: dict[str, str]) -> None:
        self._path = path
        self._headers = headers
        self._lock = threading.Lock()
        self._idle: list[tuple[_UnixConnection, float]] = []  # with when each was last used

    def _take(self) -> _UnixConnection:
        now = time.monotonic()
        with self._lock:
            while self._idle:
                conn, used = self._idle.pop()
                # One idle for long, or one the server has closed (readable: its EOF), is
                # dropped: a request never goes out on a connection the server is closing.
                if (now - used < KEEP_IDLE and conn.sock is not None
                        and not select.select([conn.sock], [], [], 0)[0]):
                    return conn
                conn.close()
        return _UnixConnection(self._path)

    def request(self, method: str, path: str, params: dict[str, str] | None = None,
                json_body: Any = None) -> httpx.Response:
        """One request and its whole answer (as an httpx.Response, for ``refusal``)."""
        target = urllib.parse.quote(path, safe="/:@!$&'()*+,;=-._~")
        if params:
            target += "?" + urllib.parse.urlencode(params)
        headers = dict(self._headers)
        body = None
        if json_body is not None:
            body = json.dumps(json_body).encode()
            headers["Content-Type"] = "application/json"
        conn = self._take()
        try:
            conn.request(method, target, body=body, headers=headers)
            answer = conn.getresponse()
            content = answer.read()
        except BaseException:
            conn.close()
            raise
        response = httpx.Response(answer.status, headers=answer.getheaders(), content=content)
        if answer.will_close:
            conn.close()
        else:
            with self._lock:
                self._idle.append((conn, time.monotonic()))
        return response

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn, _ in idle:
            conn.close()


# -- events ------------------------------------------------------------------------------------------


class SessionEvents:
    """The server session's event stream (``GET /v1/events?session=NAME``), one for every wait
    of a tracker: a reader thread hands each ``state`` event to the feeds watching that job
    (``RemoteFeed``). A wait then costs no connection of its own. When the stream breaks (the
    server restarts) the thread connects again with backoff and fires every feed once
    connected: the waiters look again and so miss nothing that happened meanwhile.

    It also keeps each job's last state, which the tracker reads instead of asking the server
    for jobs it submitted while this connection was up (``since``)."""

    def __init__(self, client: httpx.Client, address: str, session: str,
                 on_end: Callable[[str, str, str, dict[str, Any]], None],
                 on_reconnect: Callable[[], None]) -> None:
        self._client, self._address, self._session = client, address, session
        #: Told (id, state, sub_state, JobInfo) of a job's end the stream brought.
        self._on_end = on_end
        #: Told when the stream connects again (what it told before may be another store's).
        self._on_reconnect = on_reconnect
        self._lock = threading.Lock()
        self._feeds: set[RemoteFeed] = set()
        #: Each job's (state, sub_state) as the stream last told it.
        self._latest: dict[str, tuple[str, str]] = {}
        #: Which connection of the stream this is (one more at each reconnection) and whether
        #: it is up: news the stream brings are whole only within one connection.
        self.generation = 0
        self.connected = False
        self._closed = threading.Event()
        self._socket: socket.socket | None = None
        self._thread = threading.Thread(target=self._run, name="pydrmaa2-remote-events",
                                        daemon=True)
        self._thread.start()

    def feed(self, ids: frozenset[str], known: dict[str, str]) -> RemoteFeed:
        """A feed of these jobs, whose states the waiter has just seen as ``known``: it fires at
        once for a job whose news the stream brought before it was made."""
        feed = RemoteFeed(self, ids, known)
        with self._lock:
            self._feeds.add(feed)
            for job_id in ids:
                latest = self._latest.get(job_id)
                if latest is not None and known.get(job_id) != latest[0]:
                    feed.tell(job_id, latest[0])
        return feed

    def since(self, generation: int, job_id: str) -> tuple[str, str] | None:
        """The job's (state, sub_state) as the stream last told it, or ("", "") when it told
        nothing of it yet, if the stream has been connected since ``generation`` (before the
        job was submitted, so no news of it was missed); None if it has not."""
        with self._lock:
            if not self.connected or self.generation != generation:
                return None
            return self._latest.get(job_id, ("", ""))

    def drop(self, feed: RemoteFeed) -> None:
        """A closed feed: it hears no more."""
        with self._lock:
            self._feeds.discard(feed)

    def forget(self, job_id: str) -> None:
        """A reaped job: its news no longer matter."""
        with self._lock:
            self._latest.pop(job_id, None)

    def close(self) -> None:
        """Stop the reader (its connection shut down at once) and wake every feed."""
        self._closed.set()
        with self._lock:
            # The reader blocks in a read: shutting its socket down ends the read at once.
            if self._socket is not None:
                with contextlib.suppress(OSError):
                    self._socket.shutdown(socket.SHUT_RDWR)
            for feed in self._feeds:
                feed.fire()

    def _run(self) -> None:
        backoff, reconnecting = 0.0, False
        while not self._closed.is_set():
            try:
                # A connection of its own, never back in the pool: close() shuts its socket
                # down to end a blocked read, which must not hit a connection reused meanwhile.
                with self._client.stream("GET", "/v1/events", params={"session": self._session},
                                         headers={"Connection": "close"},
                                         timeout=httpx.Timeout(EVENT_SILENCE,
                                                               connect=CONNECT_TIMEOUT)) as r:
                    if r.status_code != 200:
                        raise refusal(r)
                    stream = r.extensions.get("network_stream")
                    with self._lock:
                        self._socket = stream.get_extra_info("socket") if stream else None
                        if self._closed.is_set():
                            return
                        self.generation += 1
                        self.connected = True
                        if reconnecting:  # perhaps another server, or a store begun anew
                            self._on_reconnect()
                        if reconnecting:  # connected again: look, nothing was heard meanwhile
                            for feed in self._feeds:
                                feed.fire()
                    backoff, reconnecting = 0.0, True
                    self._read(r)
            except (httpx.HTTPError, Drmaa2Error, OSError, RuntimeError) as e:
                # (RuntimeError: the tracker's client closed under the reader.)
                if self._closed.is_set():
                    return
                log.debug("event stream of the drmaa2 server at %s broke: %s", self._address, e)
            finally:
                with self._lock:
                    self._socket = None
                    self.connected = False
            reconnecting = True
            backoff = min(RECONNECT_MAX, backoff * 2 or RECONNECT_FIRST)
            self._closed.wait(backoff)

    def _read(self, response: httpx.Response) -> None:
        kind = ""
        for line in response.iter_lines():
            if self._closed.is_set():
                return
            if line.startswith("event:"):
                kind = line[6:].strip()
            elif line.startswith("data:") and kind == "state":
                try:
                    view = json.loads(line[5:])
                    job_id, state = str(view["id"]), str(view["state"])
                    info = view.get("info")
                    ended = (info if isinstance(info, dict) and _state(state).is_terminal
                             else None)
                except (ValueError, KeyError, TypeError, DrmCommunicationError):
                    with self._lock:  # unreadable: every waiter looks
                        for feed in self._feeds:
                            feed.fire()
                    continue
                sub_state = str(view.get("sub_state") or "")
                if ended is not None:
                    # Kept before the waiters hear of it: their next look needs no request.
                    # (Outside this stream's lock: the tracker's lock is taken before it.)
                    self._on_end(job_id, state, sub_state, ended)
                with self._lock:
                    self._latest[job_id] = (state, sub_state)
                    for feed in self._feeds:
                        if job_id in feed.ids:
                            feed.tell(job_id, state)
            elif not line:
                kind = ""


class RemoteFeed(ChangeFeed):
    """What a waiter hears of its jobs from the tracker's ``SessionEvents``: it fires on a state
    the waiter has not seen (the stream repeating one it just saw is no news)."""

    def __init__(self, events: SessionEvents, ids: frozenset[str], known: dict[str, str]) -> None:
        self.ids = ids
        self._events = events
        self._known = dict(known)
        self._event = threading.Event()

    def tell(self, job_id: str, state: str) -> None:
        """A job's state as the stream says it (under the stream's lock)."""
        if self._known.get(job_id) != state:
            self._known[job_id] = state
            self._event.set()

    def fire(self) -> None:
        """Make the waiter look (the stream connected again, or told something unreadable)."""
        self._event.set()

    def wait(self, timeout: float | None) -> bool:
        fired = self._event.wait(timeout)
        self._event.clear()
        return fired

    def close(self) -> None:
        self._events.drop(self)
        self._event.set()


# -- the tracker -------------------------------------------------------------------------------------


class RemoteTracker(JobTracker):
    """Jobs of a ``drmaa2 serve`` server, in its job session ``session`` on its tracker ``contact``.

    Tracker ids are the server's job ids. The server's tracker decides the template fields and
    capabilities (learnt when the tracker opens), holds jobs and runs arrays (max_parallel
    included), and keeps every job's output; changes come on its event stream.
    """

    scheme = "drmaa2+unix"
    contact_options = frozenset({"contact", "session", "token_file", "cafile"})
    native_hold = True
    native_arrays = True
    # The job's directories are the server's: a relative path means the server's directory.
    host_working_directory = False
    keeps_output = True
    declared_by_engine = True

    def __init__(self, contact: Contact, home: Path) -> None:
        super().__init__(contact, home)
        #: The JobInfos of ended jobs as states() or the event stream brought them (until the
        #: job is reaped).
        self._ended: dict[str, dict[str, Any]] = {}
        #: The ended states the event stream told (the last FINAL_KEPT of them): an end never
        #: changes, so states() answers them without asking the server again.
        self._final: OrderedDict[str, tuple[JobState, str]] = OrderedDict()
        #: This tracker's jobs whose states the event stream follows: the stream's generation
        #: when each was submitted, and the state the submission answered. A job leaves it
        #: once read from the server (a later event could be older than that answer) or
        #: controlled from here (so a read after a control shows the control's effect).
        self._followed: dict[str, tuple[int, str, str]] = {}
        #: The states this thread's last states() saw (the waiter's own look, which its next
        #: watch() follows): a feed's stream repeating one of them is no news.
        self._looked = threading.local()
        self._closed = False
        #: The session's event stream, opened by the first watch().
        self._events: SessionEvents | None = None
        self._ended_lock = threading.Lock()
        options = contact.options
        self.server_contact = options.get("contact", "process")
        self.session = options.get("session") or f"remote-{Contact.parse(self.server_contact).scheme}"
        self.address, base_url, transport = self._endpoint(contact)
        headers = {"Authorization": f"Bearer {self._token(options.get('token_file'))}",
                   "Accept": "application/json"}
        self._client = httpx.Client(base_url=base_url, transport=transport, headers=headers,
                                    timeout=httpx.Timeout(ANSWER_TIMEOUT, connect=CONNECT_TIMEOUT))
        #: Requests answered whole go over http.client where the server is on a Unix socket.
        self._wire = (UnixWire(self.address, {**headers, "Host": "drmaa2"})
                      if contact.scheme == "drmaa2+unix" else None)
        try:
            about = self._json("GET", "/v1/tracker", "asking the server for its tracker",
                               params={"contact": self.server_contact})
            # What the server's tracker honours, for this instance (the class knows nothing);
            # set through vars(): these shadow the JobTracker class variables of that name.
            learnt: dict[str, Any] = {
                "scheme": contact.scheme,  # one class serves the three schemes
                "supported_fields": frozenset(about.get("supported_fields", ())) | SERVER_KEPT_FIELDS,
                "capabilities": frozenset(Capability(c) for c in about.get("capabilities", ())
                                          if c in Capability._value2member_map_),
                "max_array_tasks": int(about.get("max_array_tasks") or MAX_ARRAY_SIZE),
            }
            vars(self).update(learnt)
            self._json("POST", "/v1/sessions", f"opening session {self.session!r} on the server",
                       json={"name": self.session, "contact": self.server_contact, "exist_ok": True})
        except BaseException:
            self._client.close()
            if self._wire is not None:
                self._wire.close()
            raise
        self._tag = f"{socket.gethostname()}:{os.path.abspath(home)}"

    # -- set-up ---------------------------------------------------------------------------------------
    def _endpoint(self, contact: Contact) -> tuple[str, str, httpx.HTTPTransport]:
        """The server's address in words, the base URL and the transport of ``contact``."""
        cafile = contact.options.get("cafile")
        if cafile is not None and contact.scheme != "drmaa2+https":
            raise InvalidArgumentError(
                f"contact {contact.raw!r}: option cafile means something only for drmaa2+https")
        if contact.scheme == "drmaa2+unix":
            if not contact.path or contact.host:
                raise InvalidArgumentError(
                    f"contact {contact.raw!r} names no socket: use drmaa2+unix:///PATH.sock")
            return contact.path, "http://drmaa2", httpx.HTTPTransport(uds=contact.path, limits=_LIMITS)
        if not contact.host:
            raise InvalidArgumentError(
                f"contact {contact.raw!r} names no host: use {contact.scheme}://HOST:PORT/")
        host = f"[{contact.host}]" if ":" in contact.host else contact.host
        port = f":{contact.port}" if contact.port else ""
        prefix = (contact.path or "").rstrip("/")
        if contact.scheme == "drmaa2+http":
            if not is_loopback(contact.host):
                raise InvalidArgumentError(
                    f"contact {contact.raw!r}: drmaa2+http (no TLS) is for loopback addresses "
                    "only; use drmaa2+https")
            return (contact.address, f"http://{host}{port}{prefix}", httpx.HTTPTransport(limits=_LIMITS))
        try:
            verify = ssl.create_default_context(cafile=cafile)
        except (OSError, ssl.SSLError) as e:
            raise InvalidArgumentError(f"contact {contact.raw!r}: cafile {cafile!r}: {e}") from None
        return (contact.address, f"https://{host}{port}{prefix}",
                httpx.HTTPTransport(verify=verify, limits=_LIMITS))

    def _token(self, token_file: str | None) -> str:
        """The bearer token: the ``token_file`` option's, else $PYDRMAA2_TOKEN, else the home's
        serve.token."""
        if token_file is None and os.environ.get("PYDRMAA2_TOKEN"):
            return os.environ["PYDRMAA2_TOKEN"].strip()
        path = Path(token_file).expanduser() if token_file else Path(self.home) / "serve.token"
        try:
            token = path.read_text().strip()
        except OSError as e:
            where = (f"the token file {path}" if token_file else
                     f"$PYDRMAA2_TOKEN (not set) and {path}")
            raise DeniedByDrmsError(
                f"no token for the drmaa2 server at {self.contact.address}: looked in {where} "
                f"({e.strerror or e}); copy the server's serve.token there, set PYDRMAA2_TOKEN or "
                "the contact option token_file") from None
        if not token:
            raise DeniedByDrmsError(f"the token file {path} is empty")
        return token

    def check(self) -> None:
        self._json("GET", "/v1/info", "asking the server who it is")

    # -- the wire -------------------------------------------------------------------------------------
    def _request(self, method: str, path: str, doing: str, **kwargs: Any) -> httpx.Response:
        """One request; a refusal raises its Drmaa2Error, an unreachable server
        DrmCommunicationError."""
        with server_errors(doing, self.address):
            if self._wire is not None:
                response = self._wire.request(method, path, kwargs.pop("params", None),
                                              kwargs.pop("json", None))
                assert not kwargs, kwargs
            else:
                response = self._client.request(method, path, **kwargs)
        if response.is_error:
            raise refusal(response)
        return response

    def _json(self, method: str, path: str, doing: str, **kwargs: Any) -> Any:
        response = self._request(method, path, doing, **kwargs)
        try:
            return response.json()
        except ValueError as e:
            raise DrmCommunicationError(
                f"{doing}: the drmaa2 server at {self.address} answered no JSON: {e}") from e

    # -- jobs -----------------------------------------------------------------------------------------
    def _wire_template(self, template: JobTemplate, hold: bool, tag: str) -> dict[str, Any]:
        environment = {**template.job_environment, CLIENT_ID_VARIABLE: f"{self._tag}/{tag}"}
        wire: dict[str, Any] = _codec.encode(dataclasses.replace(
            template, submit_as_hold=hold, job_environment=environment))
        return wire

    def submit(self, job_id: str, template: JobTemplate, task_index: int | None,
               hold: bool = False) -> str:
        generation = self._generation()
        view = self._json("POST", f"/v1/sessions/{self.session}/jobs", "submitting a job",
                          json={"template": self._wire_template(template, hold, job_id)})
        self._follow(generation, [view])
        return str(view["id"])

    def _generation(self) -> int | None:
        """The event stream's generation if it is connected now (before a submission)."""
        events = self._events
        return events.generation if events is not None and events.connected else None

    def _follow(self, generation: int | None, views: Sequence[dict[str, Any]]) -> None:
        """Let the event stream tell the states of jobs just submitted, if it was connected
        before their submission (``generation``) and so misses none of their changes."""
        if generation is None:
            return
        with self._ended_lock:
            for v in views:
                self._followed[str(v["id"])] = (generation, str(v["state"]),
                                                str(v.get("sub_state") or ""))

    def submit_array(self, job_ids: Sequence[str], template: JobTemplate,
                     indices: Sequence[int], max_parallel: int | None,
                     hold: bool = False) -> list[str]:
        begin, end = indices[0], indices[-1]
        step = indices[1] - indices[0] if len(indices) > 1 else 1
        if list(indices) != list(range(begin, end + 1, step)):
            raise UnsupportedOperationError(
                f"the {self.scheme!r} tracker submits arrays as begin..end by step, not {indices!r}")
        generation = self._generation()
        view = self._json("POST", f"/v1/sessions/{self.session}/arrays", "submitting an array",
                          json={"template": self._wire_template(template, hold, f"{job_ids[0]}+"),
                                "begin": begin, "end": end, "step": step,
                                "max_parallel": max_parallel})
        tids = [str(t) for t in view["job_ids"]]
        counts = view.get("counts") or {}
        if len(counts) == 1:  # every task in one state (as submitted): follow them
            state = next(iter(counts))
            self._follow(generation, [{"id": t, "state": state} for t in tids])
        if len(tids) != len(job_ids):
            raise ImplementationSpecificError(
                f"the drmaa2 server at {self.address} made array {view.get('id')} of {len(tids)} "
                f"tasks, not {len(job_ids)}")
        return tids

    def find_job(self, job_id: str) -> str | None:
        views = self._json("GET", f"/v1/sessions/{self.session}/jobs", "listing the session's jobs")
        arrays: dict[str, None] = {}
        for view in views:
            if view.get("array_id") is not None:
                arrays[str(view["array_id"])] = None
                continue
            if self._client_id(str(view["id"])) == f"{self._tag}/{job_id}":
                return str(view["id"])
        for array_id in arrays:
            array = self._json("GET", f"/v1/arrays/{array_id}", "looking at an array")
            tids = [str(t) for t in array["job_ids"]]
            tag = self._client_id(tids[0]) if tids else None
            first = tag.removeprefix(f"{self._tag}/").removesuffix("+") if tag else ""
            if tag and tag.endswith("+") and first != tag and first.isdigit() and job_id.isdigit():
                position = int(job_id) - int(first)
                if 0 <= position < len(tids):
                    return tids[position]
        return None

    def _client_id(self, tracker_id: str) -> str | None:
        template = self._json("GET", f"/v1/jobs/{tracker_id}/template", "reading a job's template")
        value = (template.get("job_environment") or {}).get(CLIENT_ID_VARIABLE)
        return str(value) if value is not None else None

    def state(self, tracker_id: str) -> tuple[JobState, str]:
        return self.states([tracker_id])[tracker_id]

    def states(self, tracker_ids: Sequence[str]) -> dict[str, tuple[JobState, str]]:
        if not tracker_ids:
            return {}
        out: dict[str, tuple[JobState, str]] = {}
        seen: dict[str, str] = {}
        events = self._events
        with self._ended_lock:
            finals = {tid: self._final.get(tid) for tid in tracker_ids}
            followed = {tid: self._followed.get(tid) for tid in tracker_ids
                        if finals[tid] is None}
        lost = []
        for tid in tracker_ids:
            final, kept = finals[tid], followed.get(tid)
            if final is not None:
                out[tid], seen[tid] = final, final[0].value
                continue
            # (The stream's lock is never taken under the tracker's: its reader takes them
            # the other way round.)
            told = events.since(kept[0], tid) if kept is not None and events else None
            if told is not None and kept is not None:
                # The stream has been up since the job's submission and tells every change:
                # its last word on the job (or else the submission's answer) is its state.
                word, sub = told if told[0] else kept[1:]
                out[tid], seen[tid] = (_state(word), sub), word
            elif kept is not None:
                lost.append(tid)
        if lost:
            with self._ended_lock:
                for tid in lost:
                    self._followed.pop(tid, None)
        self._looked.states = seen
        ask = [tid for tid in tracker_ids if tid not in out]
        if not ask:
            return out
        answer = self._json("POST", "/v1/states", "reading job states", json={"ids": ask})
        for tid in ask:
            pair = answer.get(tid)
            out[tid] = ((_state(pair[0]), str(pair[1] or "")) if pair
                        else (JobState.UNDETERMINED, "unknown to the drmaa2 server"))
            if pair:
                seen[tid] = str(pair[0])
            if pair and len(pair) > 2 and isinstance(pair[2], dict):
                # An ended job's JobInfo, which never changes: info() needs no request for it.
                with self._ended_lock:
                    self._ended[tid] = pair[2]
        return out

    def _forget_stream(self) -> None:
        """What the event stream told before it connected again is read from the server."""
        with self._ended_lock:
            self._final.clear()

    def _unfollow(self, tracker_ids: Sequence[str]) -> None:
        """Read these jobs from the server from now on (they are being controlled from here)."""
        with self._ended_lock:
            for tid in tracker_ids:
                self._followed.pop(tid, None)

    def _ended_on_stream(self, tracker_id: str, state: str, sub_state: str,
                         info: dict[str, Any]) -> None:
        """A job's end as the event stream told it, with its JobInfo."""
        with self._ended_lock:
            self._final[tracker_id] = (_state(state), sub_state)
            self._ended[tracker_id] = info
            while len(self._final) > FINAL_KEPT:  # the stream tells of others' jobs too
                old, _ = self._final.popitem(last=False)
                self._ended.pop(old, None)

    def info(self, tracker_id: str) -> JobInfo:
        with self._ended_lock:
            ended = self._ended.get(tracker_id)
        data = ended if ended is not None else self._json(
            "GET", f"/v1/jobs/{tracker_id}/info", "reading a job's JobInfo")
        return self._as_ours(_codec.decode(JobInfo, data), tracker_id)

    @staticmethod
    def _as_ours(info: JobInfo, server_id: str | None) -> JobInfo:
        """A JobInfo of the server with the server's job id as the engine's own (native_id);
        the id its tracker has (a pid, a Slurm job) is kept as ``remote_native_id``."""
        engine = info.extensions.get("native_id")
        if server_id:
            if engine is not None and engine != server_id:
                info.extensions["remote_native_id"] = engine
            info.extensions["native_id"] = server_id
        return info

    def control(self, tracker_id: str, action: Action) -> None:
        self._unfollow([tracker_id])
        self._request("POST", f"/v1/jobs/{tracker_id}/{CONTROL[action]}", f"{action.value} a job")

    def control_many(self, tracker_ids: Sequence[str], action: Action) -> dict[str, Drmaa2Error]:
        if not tracker_ids:
            return {}
        self._unfollow(tracker_ids)
        answer = self._json("POST", "/v1/control", f"{action.value} jobs",
                            json={"ids": list(tracker_ids), "action": CONTROL[action]})
        return {str(tid): ERRORS.get(str(why.get("error")), ImplementationSpecificError)(
                    str(why.get("message")))
                for tid, why in (answer.get("refused") or {}).items()}

    def watch(self, tracker_ids: Sequence[str]) -> ChangeFeed:
        ids = frozenset(tracker_ids)
        seen: dict[str, str] = getattr(self._looked, "states", {})
        known = {t: seen[t] for t in ids if t in seen}
        with self._ended_lock:
            if self._closed:
                raise InvalidStateError(f"the remote tracker of {self.address} is closed")
            if self._events is None:
                self._events = SessionEvents(self._client, self.address, self.session,
                                             self._ended_on_stream, self._forget_stream)
            events = self._events
        return events.feed(ids, known)

    def engine_log(self, tracker_id: str, stderr: bool, follow: bool,
                   tail: int | None) -> Iterator[bytes] | None:
        params = {"stderr": int(stderr), "follow": int(follow)}
        if tail is not None:
            params["tail"] = tail
        # Followed output may be silent for as long as the job runs.
        timeout = httpx.Timeout(None if follow else ANSWER_TIMEOUT, connect=CONNECT_TIMEOUT)
        return self._stream(f"/v1/jobs/{tracker_id}/output", params, timeout)

    def _stream(self, path: str, params: dict[str, int], timeout: httpx.Timeout) -> Iterator[bytes]:
        doing = "reading a job's output"
        with server_errors(doing, self.address), \
                self._client.stream("GET", path, params=params, timeout=timeout) as response:
            if response.is_error:
                raise refusal(response)
            yield from response.iter_bytes()

    def delete(self, tracker_id: str) -> None:
        self._request("DELETE", f"/v1/jobs/{tracker_id}", "reaping a job")
        with self._ended_lock:
            self._ended.pop(tracker_id, None)
            self._final.pop(tracker_id, None)
            self._followed.pop(tracker_id, None)
            events = self._events
        if events is not None:
            events.forget(tracker_id)

    def list_jobs(self) -> list[str]:
        views = self._json("GET", f"/v1/sessions/{self.session}/jobs", "listing the session's jobs")
        return [str(v["id"]) for v in views]

    def job_categories(self) -> list[str]:
        about = self._json("GET", "/v1/tracker", "asking the server for its tracker",
                           params={"contact": self.server_contact})
        return [str(c) for c in about.get("job_categories") or ()]

    # -- monitoring -------------------------------------------------------------------------------------
    def _monitor(self, what: str) -> list[Any]:
        answer = self._json("GET", f"/v1/monitor/{what}", f"listing the server's {what}",
                            params={"contact": self.server_contact})
        return list(answer)

    def monitor_jobs(self) -> list[JobInfo]:
        return [self._as_ours(_codec.decode(JobInfo, i), i.get("id")) for i in self._monitor("jobs")]

    def machines(self) -> list[MachineInfo]:
        return [_codec.decode(MachineInfo, m) for m in self._monitor("machines")]

    def queues(self) -> list[QueueInfo]:
        return [_codec.decode(QueueInfo, q) for q in self._monitor("queues")]

    # -- reservations -----------------------------------------------------------------------------------
    def _check_reservations(self) -> None:
        if Capability.ADVANCE_RESERVATION not in self.capabilities:
            raise UnsupportedOperationError(
                f"the server's {self.server_contact!r} tracker at {self.address} cannot reserve")

    def reserve(self, template: ReservationTemplate) -> ReservationInfo:
        self._check_reservations()
        # Reservation and job sessions share the server store's names: one of its own.
        name = f"{self.session}-reservations"
        self._json("POST", "/v1/reservation-sessions", "opening a reservation session",
                   json={"name": name, "contact": self.server_contact, "exist_ok": True})
        info = self._json("POST", f"/v1/reservation-sessions/{name}/reservations",
                          "reserving", json={"template": _codec.encode(template)})
        return _codec.decode(ReservationInfo, info)

    def reservation_info(self, reservation_id: str) -> ReservationInfo:
        self._check_reservations()
        for info in self.reservations():
            if info.reservation_id == reservation_id:
                return info
        raise InvalidArgumentError(
            f"reservation {reservation_id!r} is unknown to the drmaa2 server at {self.address}")

    def reservations(self) -> list[ReservationInfo]:
        self._check_reservations()
        return [_codec.decode(ReservationInfo, r) for r in self._monitor("reservations")]

    def cancel_reservation(self, reservation_id: str) -> None:
        self._check_reservations()
        self._request("DELETE", f"/v1/reservations/{reservation_id}", "cancelling a reservation")

    def close(self) -> None:
        with self._ended_lock:
            events, self._events, self._closed = self._events, None, True
        if events is not None:
            events.close()
        self._client.close()
        if self._wire is not None:
            self._wire.close()

