"""The service's listening socket: TCP keepalive on every connection it accepts.

A waiting request (`/asr`, `/v1/audio/transcriptions`) sends nothing until its
transcript is done, which for a film can take longer than the idle timeout of a NAT
gateway, a firewall or a container network on the way, which then drops the
connection silently. With keepalive the kernel probes an idle connection every
minute, which keeps that state fresh without sending the client a byte, and a client
that vanished without closing is noticed within a few minutes. (A proxy in front
still needs a read timeout as long as the longest wait: the drop-in endpoints have
three hours in deploy/nginx/snippets/transcriber-proxy.conf, more than Bazarr's own
default of one.) On Linux an accepted connection inherits these options from
the listening socket.
"""

from __future__ import annotations

import socket

KEEPALIVE_IDLE_S = 60  # idle time before the first probe
KEEPALIVE_INTERVAL_S = 20  # between probes that get no answer
KEEPALIVE_PROBES = 6  # unanswered probes before the connection counts as dead


def keep_alive(sock: socket.socket) -> socket.socket:
    """Turn on TCP keepalive on `sock` with this module's timings; `sock`."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    timings = (
        ("TCP_KEEPIDLE", KEEPALIVE_IDLE_S),
        ("TCP_KEEPINTVL", KEEPALIVE_INTERVAL_S),
        ("TCP_KEEPCNT", KEEPALIVE_PROBES),
    )
    for option, value in timings:
        if hasattr(socket, option):  # Linux; elsewhere the system's timings apply
            sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, option), value)
    return sock
