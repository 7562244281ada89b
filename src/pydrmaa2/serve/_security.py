"""What keeps ``drmaa2 serve`` one user's: the bearer token (its file, checked in constant
time), TLS on any address that is not loopback, and a Unix socket only its owner can open.
"""

from __future__ import annotations

import contextlib
import hmac
import ipaddress
import os
import secrets
import socket
import stat
from pathlib import Path

from starlette.types import ASGIApp, Receive, Scope, Send

from ..errors import InvalidArgumentError
from ..trackers.common import is_loopback
from ._wire import TokenError, refusal

#: Paths that need the token (the dashboard's page and files do not: they hold no data).
PROTECTED = ("/v1/", "/openapi.json")


def read_token(path: Path) -> str:
    """The token in ``path``; created (mode 0600, its directory 0700 if missing) with 32 random
    bytes on first use. A file others may read is refused (InvalidArgumentError naming it)."""
    if not path.parent.exists():
        path.parent.mkdir(mode=0o700, parents=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(32) + "\n")
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise InvalidArgumentError(
            f"the token file {path} is readable by others (mode {mode:04o}); "
            f"fix it with: chmod 600 {path}")
    token = path.read_text().strip()
    if not token:
        raise InvalidArgumentError(f"the token file {path} is empty")
    return token


def parse_listen(listen: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6; port 0: any free one) as (host, port)."""
    host, sep, port = listen.rpartition(":")
    if not sep or not host or not (port.isascii() and port.isdecimal()) or not 0 <= int(port) < 65536:
        raise InvalidArgumentError(f"--listen {listen!r} is not HOST:PORT")
    return host.removeprefix("[").removesuffix("]"), int(port)


def check_tls(host: str, tls_cert: str | None, tls_key: str | None) -> None:
    """Refuse to serve an address that is not loopback without TLS."""
    if bool(tls_cert) != bool(tls_key):
        raise InvalidArgumentError("--tls-cert and --tls-key go together")
    if not tls_cert and not is_loopback(host):
        raise InvalidArgumentError(
            f"refusing to listen on {host!r} without TLS: an address that is not loopback needs "
            "--tls-cert and --tls-key (or use --socket, or --listen 127.0.0.1:PORT)")


def check_bound(listen: str, address: str, tls: bool) -> None:
    """Refuse a socket bound without TLS to an address that is not loopback: a name such as
    ``localhost`` is checked for what it resolved to, not only for what it says."""
    if tls:
        return
    try:
        loopback = ipaddress.ip_address(address.split("%", 1)[0]).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise InvalidArgumentError(
            f"refusing to listen on {listen!r} without TLS: it is bound to {address}, which is "
            "not a loopback address (use --listen 127.0.0.1:PORT, or --tls-cert and --tls-key)")


def bind_unix(path: Path) -> socket.socket:
    """A listening Unix socket at ``path``, mode 0600 from its creation on. A stale socket
    file is replaced; one a server still answers on is refused."""
    if path.exists() or path.is_symlink():
        if not stat.S_ISSOCK(path.lstat().st_mode):
            raise InvalidArgumentError(f"--socket {path} exists and is not a socket")
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(str(path))
        except OSError:
            path.unlink()
        else:
            raise InvalidArgumentError(f"a server already listens on {path}")
        finally:
            probe.close()
    if not path.parent.exists():
        path.parent.mkdir(mode=0o700, parents=True)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)
    try:
        sock.bind(str(path))
    except OSError:
        sock.close()
        raise
    finally:
        os.umask(old)
    os.chmod(path, 0o600)
    sock.listen(2048)
    return sock


class BearerAuth:
    """ASGI middleware: a request to the API without ``Authorization: Bearer TOKEN`` (the
    right one, compared in constant time) is answered 401 before anything else is read."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self._token = token.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and _protected(scope["path"]):
            why = self._refused(scope)
            if why is not None:
                await refusal(TokenError(why))(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _refused(self, scope: Scope) -> str | None:
        values = [v for k, v in scope["headers"] if k == b"authorization"]
        if not values:
            return "no token: send Authorization: Bearer TOKEN"
        scheme, _, given = values[0].partition(b" ")
        if scheme.lower() != b"bearer":
            return "the token must be sent as Authorization: Bearer TOKEN"
        if not hmac.compare_digest(given.strip(), self._token):
            return "wrong token"
        return None


def _protected(path: str) -> bool:
    return path == "/v1" or any(path.startswith(p) or path == p for p in PROTECTED)


def remove_socket(path: Path, sock: socket.socket) -> None:
    """Remove the socket file the server bound (not one another server put there since)."""
    with contextlib.suppress(OSError):
        if path.exists() and os.stat(path).st_ino == os.fstat(sock.fileno()).st_ino:
            path.unlink()
    sock.close()
