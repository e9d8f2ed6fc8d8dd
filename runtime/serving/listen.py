"""The listening socket, bound before the model loads: a port in use or a host that cannot be bound
fails in a second with one line, instead of after the model load inside uvicorn."""

from __future__ import annotations

import ipaddress
import socket


class ListenError(Exception):
    """The socket could not be bound; `exit_code` 2 for an unusable --host, 1 for the system's refusal."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def _display(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def bind_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to (host, port), not yet listening (uvicorn starts listening on it)."""
    where = _display(host, port)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ListenError(
            f"--host {host!r} is not an address this machine can resolve ({exc.strerror})", 2
        ) from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn: rebind past TIME_WAIT
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise ListenError(f"cannot listen on {where}: {exc.strerror or exc}", 1) from None
    return sock


def is_loopback(sock: socket.socket) -> bool:
    """Whether the socket is bound to a loopback address (reachable from this machine only)."""
    host = str(sock.getsockname()[0]).split("%")[0]
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
