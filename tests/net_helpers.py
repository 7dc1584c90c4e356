"""The one home of the tests' network helpers: free local ports and waiting for a server to listen."""

from __future__ import annotations

import socket
import time


def free_ports(count: int) -> list[int]:
    """`count` distinct TCP ports on 127.0.0.1 that were free a moment ago (all bound at once, so distinct)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def free_port() -> int:
    """One TCP port on 127.0.0.1 that was free a moment ago."""
    return free_ports(1)[0]


def wait_for_port(port: int, host: str = "127.0.0.1", timeout: float = 60.0, alive=lambda: True) -> None:
    """Returns once `host:port` accepts a TCP connection; `TimeoutError` after `timeout` seconds, or
    `RuntimeError` as soon as `alive()` is false (e.g. the server process exited)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive():
            raise RuntimeError(f"the server on port {port} stopped before it listened")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"nothing listened on {host}:{port} within {timeout} s")
