"""Starting ``drmaa2 serve``: the token, the listening socket (Unix, or TCP with TLS off
loopback), uvicorn until Ctrl-C or SIGTERM, and the socket file removed after.
"""

from __future__ import annotations

import asyncio
import contextlib
import resource
import signal
import socket
import ssl
import threading
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import uvicorn

from .._store import default_home
from ..errors import InvalidArgumentError
from ._security import bind_unix, check_bound, check_tls, parse_listen, read_token
from .app import serve_app

__all__ = ["run", "SOCKET_NAME", "TOKEN_NAME", "GRACE"]

#: The default socket and token file, in the store's home.
SOCKET_NAME = "serve.sock"
TOKEN_NAME = "serve.token"
#: Seconds the connections still open (event streams, long polls) get to end at shutdown.
GRACE = 2
#: Seconds an idle client connection is kept open: longer than a client keeps one for reuse
#: (the remote tracker: KEEP_ALIVE there), so a request is never sent on a connection the
#: server is closing.
KEEP_ALIVE = 65


def run(listen: str | None = None, socket_path: str | Path | None = None,
        tls_cert: str | Path | None = None, tls_key: str | Path | None = None,
        token_file: str | Path | None = None, home: str | Path | None = None,
        announce: Callable[[str], None] | None = None) -> None:
    """Serve the store at ``home`` (default: ``$PYDRMAA2_HOME``) on the Unix socket
    ``socket_path`` (default ``HOME/serve.sock``, mode 0600) or on ``listen`` (``HOST:PORT``;
    an address that is not loopback needs ``tls_cert`` and ``tls_key``) until Ctrl-C or
    SIGTERM. ``announce`` is told where it listens and where the token is. Refusals to start
    are InvalidArgumentError with what to do."""
    home = Path(home) if home is not None else default_home()
    if listen is not None and socket_path is not None:
        raise InvalidArgumentError("give --listen or --socket, not both")
    cert = str(tls_cert) if tls_cert else None
    key = str(tls_key) if tls_key else None
    if listen is not None:
        host, port = parse_listen(listen)
        check_tls(host, cert, key)
    elif cert or key:
        raise InvalidArgumentError("--tls-cert and --tls-key are for --listen")
    if cert and key:
        _check_tls_files(cert, key)
    token_path = Path(token_file) if token_file is not None else home / TOKEN_NAME
    app = serve_app(home, read_token(token_path))  # created, or refused if others may read it
    config = uvicorn.Config(app, ssl_certfile=cert, ssl_keyfile=key, log_level="warning",
                            access_log=False, server_header=False, proxy_headers=False,
                            timeout_graceful_shutdown=GRACE, lifespan="on",
                            timeout_keep_alive=KEEP_ALIVE)
    unix = None
    if listen is not None:
        try:
            sock = socket.create_server((host, port), reuse_port=False,
                                        family=socket.AF_INET6 if ":" in host else socket.AF_INET)
        except OSError as e:
            raise InvalidArgumentError(f"cannot listen on {listen}: {e}") from None
        bound = sock.getsockname()
        try:
            check_bound(listen, bound[0], bool(cert))
        except InvalidArgumentError:
            sock.close()
            raise
        where = f"{'https' if cert else 'http'}://{_host(host)}:{bound[1]}"
    else:
        unix = Path(socket_path) if socket_path is not None else home / SOCKET_NAME
        try:
            sock = bind_unix(unix)
        except OSError as e:
            raise InvalidArgumentError(f"cannot listen on {unix}: {e}") from None
        where = f"unix:{unix}"
    inode = unix.stat().st_ino if unix is not None else None
    if announce is not None:
        announce(f"drmaa2 serve: listening on {where}")
        announce(f"drmaa2 serve: token in {token_path}")
    _raise_nofile()
    try:
        with _sigterm_interrupts():
            _runner()(uvicorn.Server(config).serve(sockets=[sock]))
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
        if unix is not None:
            with contextlib.suppress(OSError):
                if unix.stat().st_ino == inode:  # not another server's since
                    unix.unlink()


def _runner() -> Callable[[Coroutine[Any, Any, None]], None]:
    """uvloop's ``run`` where it is installed (the serve extra brings it; a request costs the
    server less on its event loop), else asyncio's."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run
    run: Callable[[Coroutine[Any, Any, None]], None] = uvloop.run
    return run


def _raise_nofile() -> None:
    """The soft limit of open files raised to the hard one: each held connection (a long
    poll, an event stream) is a descriptor, and 1,000 of them pass the usual soft 1024."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and (hard == resource.RLIM_INFINITY or soft < hard):
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _check_tls_files(cert: str, key: str) -> None:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        ctx.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as e:
        raise InvalidArgumentError(
            f"cannot use --tls-cert {cert} with --tls-key {key}: {e}") from None


@contextlib.contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """SIGTERM as Ctrl-C while serving: uvicorn shuts down, then re-raises the signal, which
    then ends ``run`` through its cleanup instead of killing the process."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)
