"""``nexus serve --max-connections``: connections that hold requests open (before any
key is known) are bounded; past the cap a new request is answered 503 at once, and the
server serves again as soon as they close."""

from __future__ import annotations

import selectors
import socket
import time
from pathlib import Path

import httpx

from tests.serving import NexusProcess

CAP = 3
OPENED = 10


def _held_request(port: int) -> socket.socket:
    """A connection whose request declared a body and sends none: it holds its slot."""
    held = socket.create_connection(("127.0.0.1", port), timeout=10)
    held.sendall(b"POST /api/nfs/stat HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                 b"\r\nContent-Length: 100\r\n\r\n{")
    return held


def _answers(connections: list[socket.socket], within: float) -> dict[socket.socket, bytes]:
    """The first bytes each connection received within ``within`` seconds (the held
    ones receive nothing: their requests wait for the rest of their bodies)."""
    answered: dict[socket.socket, bytes] = {}
    with selectors.DefaultSelector() as selector:
        for connection in connections:
            selector.register(connection, selectors.EVENT_READ)
        deadline = time.monotonic() + within
        while len(answered) < len(connections) and (left := deadline - time.monotonic()) > 0:
            for key, _ in selector.select(left):
                answered[key.fileobj] = key.fileobj.recv(200)  # type: ignore[union-attr]
                selector.unregister(key.fileobj)
    return answered


def test_connections_past_the_cap_get_503_and_the_server_recovers(tmp_path: Path) -> None:
    server = NexusProcess(tmp_path / "data", extra_args=["--max-connections", str(CAP)])
    try:
        held = [_held_request(server.port) for _ in range(OPENED)]
        try:
            answers = _answers(held, within=3.0)
        finally:
            for connection in held:
                connection.close()
        refused = [a for a in answers.values() if a.startswith(b"HTTP/1.1 503")]
        # Past the cap every request is refused at once; under it they wait for bodies.
        assert len(refused) >= OPENED - CAP, answers
        assert len(answers) == len(refused), answers
        for _ in range(100):  # the closed connections give their slots back
            if httpx.get(server.url + "/health", timeout=10).status_code == 200:
                break
        else:
            raise AssertionError("the server did not serve again after the connections closed")
    finally:
        server.stop()
    assert "Traceback" not in server.output()
