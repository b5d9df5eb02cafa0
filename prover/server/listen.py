"""The listening socket of `prover serve`, bound before anything slow starts.

Bound here, not by uvicorn: uvicorn logs a bind error and calls `sys.exit(1)`
(uvicorn/server.py, `Server.startup`), after the pool has started; here a bad `--host` or
`--port` is one line and exit 2 (UsageError) before any REPL or model loads, and the socket
is handed to `uvicorn.Server.run(sockets=[...])`, so nothing can take the port in between.
"""

from __future__ import annotations

import errno
import socket

from prover.errors import UsageError


def listening_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to `host:port`, as uvicorn binds one (`Config.bind_socket`: IPv6
    when the host has a `:`, SO_REUSEADDR); UsageError with one line when it cannot be."""
    if not 0 < port <= 65535:
        raise UsageError(f"--port {port}: not a TCP port (1-65535)")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except socket.gaierror as exc:
        sock.close()
        raise UsageError(f"--host {host}: cannot resolve it ({exc.strerror})") from None
    except OSError as exc:
        sock.close()
        why = exc.strerror or str(exc)
        if exc.errno == errno.EADDRINUSE:
            why = "the port is in use (another server is listening there)"
        elif exc.errno == errno.EACCES:
            why = "permission denied (ports below 1024 need privileges)"
        raise UsageError(f"cannot listen on {host}:{port}: {why}") from None
    sock.set_inheritable(True)
    return sock
