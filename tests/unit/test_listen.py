"""The service's listening socket hands its keepalive settings to every connection."""

from __future__ import annotations

import socket

from transcriber.api.listen import KEEPALIVE_IDLE_S, KEEPALIVE_PROBES, keep_alive


def test_accepted_connections_keep_alive() -> None:
    with keep_alive(socket.socket()) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        with socket.create_connection(listener.getsockname()):
            conn, _ = listener.accept()
            with conn:
                assert conn.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
                if hasattr(socket, "TCP_KEEPIDLE"):  # Linux, as CI
                    idle = conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE)
                    probes = conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT)
                    assert (idle, probes) == (KEEPALIVE_IDLE_S, KEEPALIVE_PROBES)
