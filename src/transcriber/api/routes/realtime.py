"""`WS /v1/realtime?intent=transcription`: OpenAI's Realtime API in transcription mode.

Clients written for OpenAI (the `openai` SDK's `client.realtime.connect`, or any
WebSocket code) work with the base URL changed. The session is a transcription
session: `session.update` with `"type": "transcription"` sets the input format
(`audio/pcm` at 24 kHz, `audio/pcmu`, `audio/pcma`), the language, the prompt and
the turn detection; `input_audio_buffer.append` carries base64 audio and
`input_audio_buffer.commit` ends an utterance. The server answers with
`session.created`/`session.updated`, `input_audio_buffer.speech_started`/
`speech_stopped`/`committed` from this service's VAD, and the text as
`conversation.item.input_audio_transcription.delta` (words two decodes agreed on) and
`.completed` (the utterance's final text, and its `usage`: the seconds of audio the
item holds). Closing the socket ends the session, which is saved as a task whose id is
the session's `id`.

Errors in a client event are `error` events and the session goes on, as OpenAI's
server does (a commit of less than 100 ms of audio, too, is OpenAI's
`input_audio_buffer_commit_empty` and commits nothing); only a refused connection (key,
capacity) is closed.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import uuid
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from transcriber.api.errors import openai_error
from transcriber.api.live_socket import (
    Commit,
    Gone,
    Inbox,
    Mark,
    Place,
    ProtocolError,
    SessionEngine,
    caller,
    close_code,
    close_reason,
    end_and_save,
    error_body,
    forward,
    leave,
    live_tuning,
    new_session,
    pump,
    reserve,
    stop_forwarding,
)
from transcriber.api.routes.compat import OPENAI_MODELS
from transcriber.api.services import Services
from transcriber.errors import InputError, OptionError, TranscriberError
from transcriber.live.audio import AudioFormat, check_frame
from transcriber.live.events import (
    Committed,
    LiveEvent,
    Marker,
    SpeechStarted,
    SpeechStopped,
    UtteranceDone,
)
from transcriber.live.session import LiveRequest, LiveSession
from transcriber.options import request_options

router = APIRouter()
MIN_COMMIT_S = 0.1  # OpenAI's server refuses to commit less audio than this
FORMATS = {
    "audio/pcm": ("pcm_s16le", 24000),
    "audio/pcmu": ("mulaw", 8000),
    "audio/pcma": ("alaw", 8000),
}
KEY_PROTOCOL = "openai-insecure-api-key."  # browsers pass the key as a subprotocol


def _id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:20]}"


class CommitEmptyError(ProtocolError):
    """`input_audio_buffer.commit` with (almost) no audio since the last commit."""

    code = "input_audio_buffer_commit_empty"


class RealtimeSession:
    """One connection: its configuration, its live session (made at the first audio) and
    the items (utterances) it has told the client about."""

    def __init__(self, ws: WebSocket, services: Services, place: Place) -> None:
        self.ws, self.services, self.owner = ws, services, place.owner
        self.place = place  # the default model, held since the connection was taken
        self.id = str(uuid.uuid4())
        self.format = "audio/pcm"
        self.language: str | None = None
        self.prompt = ""
        self.model = "whisper-1"
        self.turn_detection: dict[str, Any] | None = {"type": "server_vad"}
        self.live: LiveSession | None = None
        self.inbox = Inbox()
        self.pumping: asyncio.Task[Any] | None = None
        self.sender: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._items: dict[int, str] = {}  # utterance → item id
        self._said: dict[str, str] = {}  # item → the deltas sent so far
        self._last_item: str | None = None
        self._manual_item: str | None = None  # without turn detection: the item being filled
        self._manual_text: list[str] = []
        self._buffered = 0  # bytes of audio appended since the last commit
        self._speech_from: dict[int, float] = {}  # utterance → where its speech starts (s)
        self._seconds: dict[str, float] = {}  # item → the seconds of audio it holds

    # --- sending ---------------------------------------------------------------------
    async def send(self, event: dict[str, Any]) -> None:
        async with self._lock:
            await self.ws.send_json({"event_id": _id("event")} | event)

    async def send_error(self, error: BaseException, client_event: str | None = None) -> None:
        detail = realtime_error(error) | {"event_id": client_event}
        await self.send({"type": "error", "error": detail})

    def describe(self) -> dict[str, Any]:
        """The session as `session.created` and `session.updated` show it."""
        encoding = {"type": self.format} | ({"rate": 24000} if self.format == "audio/pcm" else {})
        detection = None
        if self.turn_detection is not None:
            s = self.services.settings
            detection = {
                "type": "server_vad",
                "threshold": s.vad_threshold,
                "prefix_padding_ms": live_tuning(self.services).vad.speech_pad_ms,
                "silence_duration_ms": s.live_silence_ms,
            }
        return {
            "type": "transcription",
            "id": self.id,
            "object": "realtime.transcription_session",
            "audio": {
                "input": {
                    "format": encoding,
                    "noise_reduction": None,
                    "transcription": {
                        "model": self.model,
                        "language": self.language,
                        "prompt": self.prompt,
                    },
                    "turn_detection": detection,
                }
            },
            "include": [],
        }

    # --- client events ----------------------------------------------------------------
    async def handle(self, text: str) -> None:
        try:
            event = json.loads(text)
        except ValueError:
            raise ProtocolError("a client event must be a JSON object") from None
        if not isinstance(event, dict):
            raise ProtocolError("a client event must be a JSON object")
        kind = event.get("type")
        if kind == "session.update":
            self.update(event.get("session"))
            await self.send({"type": "session.updated", "session": self.describe()})
        elif kind == "input_audio_buffer.append":
            await self.append(event.get("audio"))
        elif kind == "input_audio_buffer.commit":
            await self.commit()
        elif kind in ("input_audio_buffer.clear", "response.create", "conversation.item.create"):
            raise ProtocolError(f"{kind} is not supported: this server transcribes only")
        else:
            raise ProtocolError(f"unknown client event type {kind!r}")

    def update(self, session: Any) -> None:
        if not isinstance(session, dict):
            raise ProtocolError("session.update needs a session object")
        if session.get("type", "transcription") != "transcription":
            raise ProtocolError(
                f"session type {session.get('type')!r} is not served: this server runs"
                ' transcription sessions only ({"type": "transcription"})'
            )
        audio = _object(_object(session.get("audio"), "session.audio").get("input"),
                        "session.audio.input")  # fmt: skip
        fmt = audio.get("format")
        if fmt is not None:
            kind = fmt.get("type") if isinstance(fmt, dict) else None
            if kind not in FORMATS:
                raise OptionError(f"audio format {kind!r}: use audio/pcm, audio/pcmu or audio/pcma")
            if fmt.get("rate", 24000) != 24000 and kind == "audio/pcm":
                raise OptionError("audio/pcm is 24000 Hz in this API")
            if self.live is not None and kind != self.format:
                raise ProtocolError("the audio format cannot change once audio has come")
            self.format = kind
        if "transcription" in audio:
            transcription = _object(audio.get("transcription"), "transcription")
            model = _text(transcription, "model") or "whisper-1"
            language = _text(transcription, "language") or "auto"
            prompt = _text(transcription, "prompt") or ""
            request_options(
                self.services.settings,
                language=language,
                model=self._model(model),
                initial_prompt=prompt,
                model_paths=False,
            )
            if self.live is not None:
                raise ProtocolError("the transcription settings cannot change once audio has come")
            self.model, self.prompt = model, prompt
            self.language = None if language == "auto" else language
        if "turn_detection" in audio:
            detection = audio.get("turn_detection")
            if self.live is not None:
                raise ProtocolError("turn detection cannot change once audio has come")
            self.turn_detection = dict(detection) if isinstance(detection, dict) else None

    def _model(self, name: str) -> str | None:
        return None if name in OPENAI_MODELS else name  # OpenAI's names: the default model

    def request(self) -> LiveRequest:
        encoding, rate = FORMATS[self.format]
        options = request_options(
            self.services.settings,
            language=self.language or "auto",
            model=self._model(self.model),
            initial_prompt=self.prompt,
            model_paths=False,
        )
        return LiveRequest(
            format=AudioFormat(encoding, rate),
            language=options.language,
            prompt=options.initial_prompt,
            diarize=False,
            model=options.model,
            beam_size=options.beam_size,
            protocol="realtime",
        )

    async def append(self, audio: Any) -> None:
        if not isinstance(audio, str):
            raise ProtocolError("input_audio_buffer.append needs `audio`, base64 text")
        try:
            data = base64.b64decode(audio, validate=True)
        except (binascii.Error, ValueError):
            raise ProtocolError("`audio` is not base64") from None
        live = await self.start_live()
        check_frame(data, live.request.format)
        await self.inbox.put(data)
        self._buffered += len(data)

    async def commit(self) -> None:
        encoding, rate = FORMATS[self.format]
        seconds = self._buffered / (rate * AudioFormat(encoding, rate).bytes_per_sample)
        if seconds < MIN_COMMIT_S:
            raise CommitEmptyError(
                "Error committing input audio buffer: buffer too small. Expected at least"
                f" {MIN_COMMIT_S * 1000:.0f}ms of audio, but buffer only has"
                f" {seconds * 1000:.2f}ms of audio."
            )
        self._buffered = 0
        await self.start_live()
        await self.inbox.put(Commit())
        if self.turn_detection is None:  # the commit ends an item: tell it after its finals
            item = self._manual_item or _id("item")
            self._manual_item = None
            self._seconds[item] = seconds
            await self.inbox.put(Mark(item))

    async def start_live(self) -> LiveSession:
        if self.live is None:
            request = self.request()
            if request.model != self.place.engine.model:  # session.update named another
                other = SessionEngine(self.services.engines, request.model)
                await asyncio.to_thread(other)
                await asyncio.to_thread(self.place.engine.release)
                self.place.engine = other
            live = new_session(self.services, request, self.place)
            live.task_id = self.id
            self.live = live
            self.sender = asyncio.create_task(forward(live, self.on_event, self.services.metrics))
            self.pumping = asyncio.create_task(pump(self.inbox, live))
        return self.live

    # --- live events → OpenAI's events -------------------------------------------------
    async def on_event(self, event: LiveEvent) -> None:
        manual = self.turn_detection is None
        if isinstance(event, Marker):
            await self.complete(event.token, " ".join(self._manual_text))
            self._manual_text = []
            return
        if manual:
            if isinstance(event, Committed):
                item = self._manual_item = self._manual_item or _id("item")
                await self.delta(item, event.text)
            elif isinstance(event, UtteranceDone) and event.text:
                self._manual_text.append(event.text)
            return
        item = self._items.setdefault(event.utterance, _id("item"))
        if isinstance(event, SpeechStarted):
            self._speech_from[event.utterance] = event.at
            await self.send(
                {
                    "type": "input_audio_buffer.speech_started",
                    "item_id": item,
                    "audio_start_ms": round(event.at * 1000),
                }
            )
        elif isinstance(event, Committed):
            await self.delta(item, event.text)
        elif isinstance(event, SpeechStopped):
            start = self._speech_from.pop(event.utterance, event.end)
            self._seconds[item] = max(0.0, event.end - start)
            await self.send(
                {
                    "type": "input_audio_buffer.speech_stopped",
                    "item_id": item,
                    "audio_end_ms": round(event.at * 1000),
                }
            )
        elif isinstance(event, UtteranceDone):
            del self._items[event.utterance]
            await self.complete(item, event.text)

    async def delta(self, item: str, text: str) -> None:
        said = self._said.get(item, "")
        piece = f" {text}" if said else text
        self._said[item] = said + piece
        await self.send(
            {
                "type": "conversation.item.input_audio_transcription.delta",
                "item_id": item,
                "content_index": 0,
                "delta": piece,
            }
        )

    async def complete(self, item: str, transcript: str) -> None:
        await self.send(
            {
                "type": "input_audio_buffer.committed",
                "item_id": item,
                "previous_item_id": self._last_item,
            }
        )
        self._last_item = item
        said = self._said.pop(item, "")
        if transcript.startswith(said) and len(transcript) > len(said):
            await self.send(
                {
                    "type": "conversation.item.input_audio_transcription.delta",
                    "item_id": item,
                    "content_index": 0,
                    "delta": transcript[len(said) :],
                }
            )
        seconds = self._seconds.pop(item, 0.0)  # the item's own audio, as OpenAI counts it
        await self.send(
            {
                "type": "conversation.item.input_audio_transcription.completed",
                "item_id": item,
                "content_index": 0,
                "transcript": transcript,
                "usage": {"type": "duration", "seconds": round(seconds, 3)},
            }
        )


@router.websocket("/v1/realtime")
async def realtime(ws: WebSocket) -> None:
    services: Services = ws.app.state.services
    offered = ws.scope.get("subprotocols") or []
    key = next((p[len(KEY_PROTOCOL) :] for p in offered if p.startswith(KEY_PROTOCOL)), None)
    await ws.accept(subprotocol="realtime" if "realtime" in offered else None)
    intent = ws.query_params.get("intent")
    try:
        if intent not in (None, "transcription"):
            raise ProtocolError(
                f"intent {intent!r} is not served: this server runs transcription sessions"
                " only (?intent=transcription)"
            )
        owner = await caller(ws, services, key)
        place = await reserve(services, services.settings.model, owner)
    except TranscriberError as e:
        await refuse(ws, e)
        return
    connection = RealtimeSession(ws, services, place)
    try:
        await connection.send({"type": "session.created", "session": connection.describe()})
        await serve(connection)
    finally:
        if connection.live is not None:
            connection.live.close()
        await leave(services, connection.place)


def realtime_error(error: BaseException) -> dict[str, Any]:
    """An error event's `error`, in OpenAI's shape (api/errors.py)."""
    body = error_body(error)
    status = error.http_status if isinstance(error, TranscriberError) else 500
    param = error.param if isinstance(error, TranscriberError) else None
    return openai_error(status, body["code"], body["message"], param)


async def refuse(ws: WebSocket, error: TranscriberError) -> None:
    detail = realtime_error(error)
    try:
        await ws.send_json({"type": "error", "event_id": _id("event"), "error": detail})
        await ws.close(close_code(error), close_reason(detail["message"]))
    except (WebSocketDisconnect, RuntimeError):
        pass


async def serve(c: RealtimeSession) -> None:
    """Read client events until the client goes (or the session fails); then save."""
    fatal: BaseException | None = None
    while True:
        receiving = asyncio.create_task(c.ws.receive())
        waiting = {receiving} | ({c.pumping} if c.pumping is not None else set())
        await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        if c.pumping is not None and c.pumping.done() and not receiving.done():
            receiving.cancel()
            outcome = c.pumping.result()
            fatal = outcome if isinstance(outcome, BaseException) else None
            break
        try:
            message = receiving.result()
        except (WebSocketDisconnect, RuntimeError):
            break
        if message["type"] == "websocket.disconnect":
            break
        text = message.get("text")
        try:
            if text is None:
                raise ProtocolError("send client events as JSON text, audio inside them as base64")
            await c.handle(text)
        except InputError as e:
            await c.send_error(e, _client_event_id(text))
        except Exception as e:  # a fault here must not lose the audio that came (logged
            fatal = e  # by error_body when it is told)
            break
    live = c.live
    if live is None:
        await _end_with(c, fatal)
        return
    if c.pumping is not None and not c.pumping.done():
        await c.inbox.put(Gone())
        await c.pumping
    await _end_with(c, fatal)
    try:
        await end_and_save(c.services, live, c.owner)
    finally:
        stop_forwarding(live)
        if c.sender is not None:
            await c.sender


async def _end_with(c: RealtimeSession, fatal: BaseException | None) -> None:
    """Tell the client the error that ended its session, and close (nothing if none)."""
    if fatal is None:
        return
    try:
        await c.send_error(fatal)
        await c.ws.close(close_code(fatal), close_reason(error_body(fatal)["message"]))
    except (WebSocketDisconnect, RuntimeError):
        pass


def _object(value: Any, name: str) -> dict[str, Any]:
    """`value` if it is a JSON object, {} if absent; ProtocolError otherwise."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ProtocolError(f"{name} must be an object")
    return value


def _text(transcription: dict[str, Any], name: str) -> str | None:
    """A text field of `session.audio.input.transcription`; ProtocolError if it is not."""
    value = transcription.get(name)
    if value is not None and not isinstance(value, str):
        raise ProtocolError(
            f"session.audio.input.transcription.{name} must be a string, not {type(value).__name__}"
        )
    return value


def _client_event_id(text: str | None) -> str | None:
    try:
        event = json.loads(text or "")
    except ValueError:
        return None
    value = event.get("event_id") if isinstance(event, dict) else None
    return value if isinstance(value, str) else None
