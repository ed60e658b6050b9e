"""`WS /ws/live`: live transcription in this service's own protocol.

The client's first message is JSON, `{"type": "start", "language": "ru", "sample_rate":
16000, "encoding": "pcm_s16le", "prompt": "…", "diarize": false}` (every field but
`type` optional); then binary frames of raw audio of any size, and `{"type": "stop"}`
at the end. The server answers `ready`, then `speech_started`, `partial`,
`speech_stopped` and `final` events as people speak, and after `stop` the last finals
and `done` with the whole transcript and the id of the saved task. A client that just
closes the socket still gets its audio saved. Anything wrong gets an `error` event
with a code and a reason, then a close frame (see docs/api.md, "Live transcription").
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Mapping
from typing import Any, Literal

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from transcriber.api.live_socket import (
    NORMAL,
    START_TIMEOUT_S,
    Gone,
    Inbox,
    ProtocolError,
    Refused,
    Stop,
    caller,
    close_code,
    close_reason,
    end_and_save,
    error_body,
    forward,
    leave,
    new_session,
    pump,
    reserve,
    stop_forwarding,
)
from transcriber.api.services import Services
from transcriber.errors import InputError, TranscriberError
from transcriber.formats.json_doc import segment_to_dict, to_dict
from transcriber.jobs.view import public
from transcriber.live.audio import AudioFormat, check_frame
from transcriber.live.events import Final, LiveEvent, Partial, SpeechStarted, SpeechStopped
from transcriber.live.session import LiveRequest, LiveSession
from transcriber.options import MAX_PROMPT_CHARS, request_options

router = APIRouter()


class LiveStart(BaseModel):
    """The first message of a `/ws/live` session."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["start"]
    language: str = Field("auto", max_length=16, description="auto, ru, en or a Whisper code")
    sample_rate: int = Field(16000, description="8000, 16000, 24000 or 48000")
    encoding: str = Field("pcm_s16le", description="pcm_s16le, mulaw or alaw")
    prompt: str | None = Field(None, max_length=MAX_PROMPT_CHARS)
    diarize: bool = False
    model: str | None = Field(None, max_length=64)


def start_request(message: Mapping[str, Any], services: Services) -> LiveRequest:
    """The session a start message asks for; ProtocolError or OptionError naming the fault."""
    text = message.get("text")
    if text is None:
        raise ProtocolError(
            'the first message must be JSON text: {"type": "start", "sample_rate": 16000, …};'
            " audio frames come after it"
        )
    try:
        start = LiveStart.model_validate_json(text)
    except ValidationError as e:
        parts = [
            f"{'.'.join(str(x) for x in err['loc']) or 'message'}: {err['msg']}"
            for err in e.errors()
        ]
        raise ProtocolError(f"bad start message: {'; '.join(parts)}") from None
    fmt = AudioFormat(start.encoding, start.sample_rate)
    options = request_options(
        services.settings,
        language=start.language,
        model=start.model,
        initial_prompt=start.prompt,
        model_paths=False,
    )
    return LiveRequest(
        format=fmt,
        language=options.language,
        prompt=options.initial_prompt,
        diarize=start.diarize,
        model=options.model,
        beam_size=options.beam_size,
        protocol="ws",
    )


def event_message(event: LiveEvent) -> dict[str, Any] | None:
    """An event as this protocol sends it (None: not sent here)."""
    if isinstance(event, SpeechStarted):
        return {"type": "speech_started", "utterance": event.utterance, "at": event.at}
    if isinstance(event, SpeechStopped):
        return {
            "type": "speech_stopped",
            "utterance": event.utterance,
            "at": event.at,
            "end": event.end,
        }
    if isinstance(event, Partial):
        return {
            "type": "partial",
            "utterance": event.utterance,
            "text": event.text,
            "stable": event.stable,
        }
    if isinstance(event, Final):
        return {"type": "final", "utterance": event.utterance} | segment_to_dict(event.segment)
    return None


async def read_messages(ws: WebSocket, inbox: Inbox, fmt: AudioFormat) -> None:
    """Audio frames and control messages into the inbox, until stop, an error or the end."""
    try:
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                await inbox.put(Gone())
                return
            data, text = message.get("bytes"), message.get("text")
            if data is not None:
                check_frame(data, fmt)
                await inbox.put(data)
                continue
            kind = _control_type(text or "")
            if kind == "stop":
                await inbox.put(Stop())
                return
            raise ProtocolError(
                f"unknown message type {kind!r} during a session; send binary audio frames,"
                ' or {"type": "stop"} to end'
            )
    except InputError as e:
        await inbox.put(Refused(e))
    except (WebSocketDisconnect, RuntimeError):
        await inbox.put(Gone())


def _control_type(text: str) -> str:
    try:
        data = json.loads(text)
    except ValueError:
        raise ProtocolError('a text message must be JSON, such as {"type": "stop"}') from None
    kind = data.get("type") if isinstance(data, dict) else None
    return str(kind)


@router.websocket("/ws/live")
async def live(ws: WebSocket) -> None:
    services: Services = ws.app.state.services
    await ws.accept()
    try:
        owner = await caller(ws, services)
        first = await asyncio.wait_for(ws.receive(), START_TIMEOUT_S)
        if first["type"] == "websocket.disconnect":
            return
        request = start_request(first, services)
        place = await reserve(services, request.model, owner)
        try:
            session = new_session(services, request, place)
        except BaseException:
            await leave(services, place)
            raise
    except TimeoutError:
        await refuse(ws, ProtocolError(f"no start message within {START_TIMEOUT_S:.0f} s"))
        return
    except TranscriberError as e:
        await refuse(ws, e)
        return
    try:
        await run(ws, services, owner, session)
    finally:
        session.close()
        await leave(services, place)


async def refuse(ws: WebSocket, error: BaseException) -> None:
    body = error_body(error)
    try:
        await ws.send_json({"type": "error", "error": body})
        await ws.close(close_code(error), close_reason(body["message"]))
    except (WebSocketDisconnect, RuntimeError):
        pass


async def run(ws: WebSocket, services: Services, owner: str, session: LiveSession) -> None:
    lock = asyncio.Lock()

    async def send(message: dict[str, Any]) -> None:
        async with lock:
            await ws.send_json(message)

    async def send_event(event: LiveEvent) -> None:
        message = event_message(event)
        if message is not None:
            await send(message)

    r = session.request
    await send(
        {
            "type": "ready",
            "task_id": session.task_id,
            "sample_rate": r.format.sample_rate,
            "encoding": r.format.encoding,
            "language": r.language or "auto",
            "model": r.model,
            "diarize": r.diarize,
        }
    )
    sender = asyncio.create_task(forward(session, send_event, services.metrics))
    inbox = Inbox()
    reader = asyncio.create_task(read_messages(ws, inbox, r.format))
    outcome = await pump(inbox, session)
    reader.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await reader
    gone = isinstance(outcome, Gone)
    error = outcome if isinstance(outcome, BaseException) else None
    try:
        if error is not None:
            await send({"type": "error", "error": error_body(error)})
    except Exception:
        gone = True
    try:
        transcript, task = await end_and_save(services, session, owner)
    except Exception as e:  # the store or the database failed: say so, keep nothing half-done
        transcript, task, error = None, None, e
    finally:
        stop_forwarding(session)
        await sender
    if gone:
        return
    try:
        if transcript is None:
            await send({"type": "error", "error": error_body(error or RuntimeError())})
        else:
            await send(
                {
                    "type": "done",
                    "task_id": task.id if task else None,
                    "task": public(task) if task else None,
                    "transcript": to_dict(transcript),
                }
            )
        if error is not None:
            await ws.close(close_code(error), close_reason(error_body(error)["message"]))
        else:
            await ws.close(NORMAL)
    except (WebSocketDisconnect, RuntimeError):
        pass
