"""What both live WebSocket protocols share (`/ws/live`, `/v1/realtime`).

Who is calling, a place among the live sessions, the session itself, the pump that
feeds it frames in order with backpressure, the events sent back, and the saved task.
A protocol module only reads its messages into `Inbox` items and words the events.

Backpressure: the reader puts frames into a small queue; the pump joins whatever is
waiting and pushes it into the session, which waits while finals are behind. While
the queue is full the reader stops reading, the socket's buffers fill, and a client
that sends faster than real time is slowed down by TCP instead of losing audio.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace

from fastapi import WebSocket
from sqlalchemy.exc import OperationalError

from transcriber.api.auth import bearer, owner_for
from transcriber.api.errors import DATABASE_DOWN
from transcriber.api.services import Services
from transcriber.api.submit import check_quota
from transcriber.domain import Transcript
from transcriber.engines.base import Engine
from transcriber.engines.registry import EngineManager
from transcriber.errors import (
    AuthError,
    InputError,
    MediaError,
    OptionError,
    QuotaExceededError,
    TooManySessionsError,
    TranscriberError,
    UnavailableError,
    UploadTooLargeError,
)
from transcriber.jobs.metrics import Metrics
from transcriber.jobs.record import TaskRecord
from transcriber.live.events import Final, LiveEvent
from transcriber.live.save import save_session
from transcriber.live.session import LiveRequest, LiveSession, LiveTuning
from transcriber.media.vad import VadParams

log = logging.getLogger(__name__)

START_TIMEOUT_S = 30.0  # for the first message
IDLE_TIMEOUT_S = 60.0  # a session that hears nothing for this long is ended (and saved)
INBOX_FRAMES = 32
LIVE_PAD_MS = 300  # the VAD's padding around live speech (the files' 400 ms waits longer)


class ProtocolError(InputError):
    """A message the protocol does not allow here."""

    code = "bad_message"


# WebSocket close codes (RFC 6455 §7.4.1; 4401 as the other WebSockets of this service).
NORMAL, UNSUPPORTED, POLICY, TOO_BIG, INTERNAL, TRY_LATER, UNAUTHORIZED = (
    1000, 1003, 1008, 1009, 1011, 1013, 4401,
)  # fmt: skip


def close_code(error: BaseException) -> int:
    """The close code that goes with an error sent to a live client."""
    if isinstance(error, AuthError):
        return UNAUTHORIZED
    if isinstance(error, TooManySessionsError | QuotaExceededError | UnavailableError):
        return TRY_LATER
    if isinstance(error, UploadTooLargeError):
        return TOO_BIG
    if isinstance(error, MediaError | OptionError):
        return UNSUPPORTED
    if isinstance(error, InputError):
        return POLICY
    return INTERNAL


def error_body(error: BaseException) -> dict[str, str]:
    if isinstance(error, TranscriberError):
        return {"code": error.code, "message": error.message}
    log.error("live session failed", exc_info=error)
    return {"code": "internal_error", "message": "internal error; see the server log"}


def close_reason(message: str) -> str:
    """A close frame's reason holds at most 123 bytes of UTF-8."""
    raw = message.encode()
    return raw[:123].decode(errors="ignore") if len(raw) > 123 else message


async def caller(ws: WebSocket, services: Services, key: str | None = None) -> str:
    """The owner of the connection (AuthError when the key is missing or wrong): the key
    from `Authorization: Bearer KEY`, `?token=KEY`, or `key` (a protocol's own place)."""
    key = key or bearer(ws.headers.get("authorization")) or ws.query_params.get("token")
    settings = services.settings
    try:
        return await asyncio.to_thread(owner_for, services.jobs, settings.key_list(), key)
    except OperationalError as e:  # keys are in the job database
        raise UnavailableError(DATABASE_DOWN) from e


def live_tuning(services: Services) -> LiveTuning:
    s = services.settings
    vad = VadParams(
        threshold=s.vad_threshold,
        min_silence_ms=s.live_silence_ms,
        speech_pad_ms=min(s.vad_speech_pad_ms, LIVE_PAD_MS),
    )
    return LiveTuning(
        vad,
        s.live_step_s,
        s.live_max_buffer_s,
        s.max_duration_s,
        s.diarization_method,
        s.model_dir,
        diarization_step_s=s.diarization_step_s,
    )


class SessionEngine:
    """A live session's model, held (`EngineManager.use`) from its first use until
    `release`: live sessions and file tasks share the one loaded engine, and the idle
    timer never unloads it under a session. Callable from any thread."""

    def __init__(self, engines: EngineManager, model: str | None) -> None:
        self.model = model
        self._use = engines.use(model)
        self._engine: Engine | None = None
        self._lock = threading.Lock()

    def __call__(self) -> Engine:
        with self._lock:
            if self._engine is None:
                self._engine = self._use.__enter__()
            return self._engine

    def release(self) -> None:
        with self._lock:
            if self._engine is not None:
                self._engine = None
                self._use.__exit__(None, None, None)


@dataclass(slots=True)
class Place:
    """What `reserve` took for one live session: a place among the sessions, held by
    `owner`, the model (`engine`, which a protocol may swap for another), and the audio
    seconds the key's daily quota leaves it (None: no daily limit)."""

    owner: str
    engine: SessionEngine
    quota_s: float | None


async def reserve(services: Services, model: str | None, owner: str) -> Place:
    """Take a place among the live sessions and hold the model, loaded
    (TooManySessionsError, QuotaExceededError, ModelError); `leave` when the session
    ends. The key's live sessions open now count as its running tasks."""
    services.live.acquire(owner)  # first: two sessions opened at once see each other
    try:
        others = services.live.open_for(owner) - 1
        quota_s = await asyncio.to_thread(check_quota, services.jobs, owner, 0.0, others)
        engine = SessionEngine(services.engines, model)
        await asyncio.to_thread(engine)
    except BaseException:
        services.live.release(owner)
        raise
    return Place(owner, engine, quota_s)


async def leave(services: Services, place: Place) -> None:
    """Give back what `reserve` took. The model is released from a thread: its manager's
    lock is held while any model loads."""
    services.live.release(place.owner)
    await asyncio.to_thread(place.engine.release)


def new_session(services: Services, request: LiveRequest, place: Place) -> LiveSession:
    """A session on the shared engine and the live threads (after `reserve`; the caller
    still `leave`s when this raises)."""
    tuning = replace(live_tuning(services), quota_s=place.quota_s)
    try:
        return LiveSession(request, tuning, place.engine, services.live.executor)
    except OSError as e:  # the temporary folder is gone, full or not writable
        raise UnavailableError(
            f"the live recording cannot be written on this server: {e.strerror or e}"
        ) from e


# --- the inbox between a protocol's reader and the pump -----------------------------------
@dataclass(frozen=True, slots=True)
class Commit:
    """End the open utterance now."""


@dataclass(frozen=True, slots=True)
class Mark:
    """Pass a marker on after the finals of the audio before it (`LiveStream.mark`)."""

    token: str


@dataclass(frozen=True, slots=True)
class Stop:
    """The client asked to end the session."""


@dataclass(frozen=True, slots=True)
class Gone:
    """The client closed the socket or vanished."""


@dataclass(frozen=True, slots=True)
class Refused:
    """The client sent something the protocol cannot take: end with this error."""

    error: InputError


InboxItem = bytes | Commit | Mark | Stop | Gone | Refused


class Inbox:
    def __init__(self) -> None:
        self.queue: asyncio.Queue[InboxItem] = asyncio.Queue(maxsize=INBOX_FRAMES)

    async def put(self, item: InboxItem) -> None:
        await self.queue.put(item)


async def pump(inbox: Inbox, session: LiveSession) -> Stop | Gone | BaseException:
    """Feed the session until the client stops, goes, or fails; return which (an error
    is returned, not raised: the session is still saved)."""
    held: InboxItem | None = None
    while True:
        item = held if held is not None else await _next(inbox)
        held = None
        try:
            if isinstance(item, bytes):
                parts = [item]
                while not inbox.queue.empty():  # frames that waited: one push for all
                    after = inbox.queue.get_nowait()
                    if not isinstance(after, bytes):
                        held = after
                        break
                    parts.append(after)
                await session.push(b"".join(parts))
            elif isinstance(item, Commit):
                await session.commit()
            elif isinstance(item, Mark):
                await session.mark(item.token)
            elif isinstance(item, Refused):
                return item.error
            else:
                return item
        except Exception as e:  # told to the client; the session is still saved
            return e
        if session.stream.failure is not None:
            return session.stream.failure


async def _next(inbox: Inbox) -> InboxItem:
    try:
        return await asyncio.wait_for(inbox.queue.get(), IDLE_TIMEOUT_S)
    except TimeoutError:
        return Refused(
            ProtocolError(f"no audio came for {IDLE_TIMEOUT_S:.0f} s; the session was ended")
        )


async def forward(
    session: LiveSession,
    send: Callable[[LiveEvent], Awaitable[None]],
    metrics: Metrics | None = None,
) -> None:
    """Send the session's events as they come until `stop_forwarding`; a client that has
    gone only stops the sending, never the session."""
    sending = True
    while (event := await session.stream.events.get()) is not None:
        if metrics is not None and isinstance(event, Final) and event.delay is not None:
            metrics.live_final_delay.observe(event.delay)
        if not sending:
            continue
        try:
            await send(event)
        except Exception:  # the client went away: keep draining, the session still saves
            sending = False


def stop_forwarding(session: LiveSession) -> None:
    session.stream.events.put_nowait(None)


async def end_and_save(
    services: Services, session: LiveSession, owner: str
) -> tuple[Transcript, TaskRecord | None]:
    """Finish the session (its last final decoded) and store it as a completed task
    (None when no audio came at all)."""
    await session.finish()
    transcript = await asyncio.to_thread(session.transcript)
    s = services.settings
    task = await save_session(
        session,
        transcript,
        owner,
        services.jobs,
        services.store,
        services.events,
        int(s.max_upload_mb * 1e6),
    )
    return transcript, task
