"""A client of `WS /ws/live`: streams raw audio at a set pace and collects the events.

`transcriber live` prints with it; the tests and the benchmark measure with it. The
`websockets` package comes with uvicorn's standard extra, which the service needs anyway.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

FRAME_S = 0.1  # audio per frame sent


@dataclass
class LiveRun:
    """What one session saw: each message with the time it arrived, and each frame with
    the audio seconds sent up to it and the time it went (seconds since the start)."""

    messages: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    sent: list[tuple[float, float]] = field(default_factory=list)
    close_code: int | None = None
    close_reason: str = ""

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [m for _, m in self.messages if m.get("type") == kind]

    def sent_at(self, audio_s: float) -> float:
        """When the frame that carried stream second `audio_s` was sent."""
        for done, at in self.sent:
            if done >= audio_s - 1e-6:
                return at
        return self.sent[-1][1] if self.sent else 0.0


def live_url(base: str, token: str | None = None, path: str = "/ws/live") -> str:
    """`ws://host:port/ws/live` from a service's http(s) base URL (or a ws URL as it is)."""
    parts = urlsplit(base)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    base_path = parts.path.rstrip("/")
    path = base_path if base_path.endswith(path) else base_path + path
    query = urlencode({"token": token}) if token else ""
    return urlunsplit((scheme, parts.netloc, path, query, ""))


def frames(data: bytes, bytes_per_second: int, frame_s: float = FRAME_S) -> list[bytes]:
    size = max(2, int(bytes_per_second * frame_s) // 2 * 2)
    return [data[i : i + size] for i in range(0, len(data), size)]


async def stream(
    url: str,
    start: dict[str, Any],
    chunks: Iterable[bytes] | AsyncIterator[bytes],
    bytes_per_second: int,
    speed: float = 1.0,
    on_message: Callable[[dict[str, Any]], None] | None = None,
    headers: dict[str, str] | None = None,
    stop: bool = True,
    limit_s: float | None = 600.0,
) -> LiveRun:
    """Send `start`, then `chunks` paced at `speed` times real time (0: as fast as the
    server takes them), then `stop` (unless `stop` is False: the socket is just closed);
    collect every message until the server closes."""
    import websockets

    run = LiveRun()
    began = time.monotonic()

    async def receive(ws: Any) -> None:
        async for raw in ws:
            message = json.loads(raw)
            run.messages.append((time.monotonic() - began, message))
            if on_message is not None:
                on_message(message)

    async with websockets.connect(url, additional_headers=headers, max_size=None) as ws:
        receiver = asyncio.create_task(receive(ws))
        try:
            async with asyncio.timeout(limit_s):
                await ws.send(json.dumps(start))
                sent = 0
                async for chunk in _each(chunks):
                    sent += len(chunk)
                    audio_s = sent / bytes_per_second
                    if speed > 0:
                        delay = began + audio_s / speed - time.monotonic()
                        if delay > 0:
                            await asyncio.sleep(delay)
                    if receiver.done():
                        break  # the server ended the session
                    await ws.send(chunk)
                    run.sent.append((audio_s, time.monotonic() - began))
                if stop and not receiver.done():
                    await ws.send(json.dumps({"type": "stop"}))
                else:
                    await ws.close()
                await receiver
        except websockets.ConnectionClosed:
            pass
        finally:
            receiver.cancel()
        run.close_code = ws.close_code
        run.close_reason = ws.close_reason or ""
    return run


async def _each(chunks: Iterable[bytes] | AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    if isinstance(chunks, AsyncIterator):
        async for chunk in chunks:
            yield chunk
    else:
        for chunk in chunks:
            yield chunk
