"""WebSocket progress: the current state first, then every event, until the task ends."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from sqlalchemy.exc import OperationalError

from transcriber.api import transcripts
from transcriber.api.auth import bearer, owner_for
from transcriber.api.errors import DATABASE_DOWN
from transcriber.api.services import Services
from transcriber.errors import AuthError
from transcriber.jobs.events import FINAL_KINDS, WEBSOCKET_KINDS
from transcriber.jobs.status import TERMINAL_STATUSES, TaskStatus
from transcriber.jobs.view import public

router = APIRouter()


async def _owner(ws: WebSocket, services: Services) -> str | None:
    key = bearer(ws.headers.get("authorization")) or ws.query_params.get("token")
    try:
        return await asyncio.to_thread(owner_for, services.jobs, services.settings.key_list(), key)
    except AuthError as e:
        await ws.close(code=4401, reason=e.message)
        return None
    except OperationalError:  # keys are in the job database: say so, and try again later
        await ws.close(code=1013, reason=DATABASE_DOWN)
        return None


def _summary(services: Services, data: dict[str, Any]) -> dict[str, Any]:
    """The completed event carries a short transcript summary (read from the store: call
    it from a thread)."""
    task = services.jobs.get(data["id"])
    if task is None or task.status != TaskStatus.completed or not task.result_key:
        return data
    import json

    doc = json.loads(transcripts.document(services, task))  # as edited, when it was
    text = doc.get("text", "")
    return data | {"transcript": {"text": text[:2000], "language": doc.get("language"),
                                  "segments": len(doc.get("segments", [])),
                                  "duration": doc.get("duration")}}  # fmt: skip


@router.websocket("/ws/tasks/{task_id}")
async def task_events(ws: WebSocket, task_id: str) -> None:
    services: Services = ws.app.state.services
    await ws.accept()
    owner = await _owner(ws, services)
    if owner is None:
        return
    async with services.events.subscribe(task_id=task_id) as queue:
        task = await asyncio.to_thread(services.jobs.get, task_id, owner)
        if task is None:
            await ws.send_json({"event": "error", "error": {"code": "not_found",
                                "message": f"task {task_id} not found"}})  # fmt: skip
            await ws.close(code=4404)
            return
        position = await asyncio.to_thread(services.jobs.queue_position, task)
        state = public(task, position)
        if task.status in TERMINAL_STATUSES:
            kind = task.status.value
            data = (
                await asyncio.to_thread(_summary, services, state) if kind == "completed" else state
            )
            await ws.send_json({"event": kind, "task": data})
            await ws.close()
            return
        await ws.send_json({"event": "state", "task": state})
        await _pump(ws, services, queue, single=True)


@router.websocket("/ws/tasks")
async def all_events(ws: WebSocket) -> None:
    services: Services = ws.app.state.services
    await ws.accept()
    owner = await _owner(ws, services)
    if owner is None:
        return
    async with services.events.subscribe(owner=owner or None) as queue:
        await _pump(ws, services, queue, single=False)


async def _pump(ws: WebSocket, services: Services, queue: asyncio.Queue[Any], single: bool) -> None:
    receiver = asyncio.create_task(_drain(ws))
    try:
        while not receiver.done():
            getter = asyncio.create_task(queue.get())
            done, _ = await asyncio.wait({getter, receiver}, return_when=asyncio.FIRST_COMPLETED)
            if getter not in done:
                getter.cancel()
                break
            event = getter.result()
            if event.kind not in WEBSOCKET_KINDS:
                continue
            data = event.data
            if event.kind == "completed":
                data = await asyncio.to_thread(_summary, services, data)
            await ws.send_json({"event": event.kind, "task": data})
            if single and event.kind in FINAL_KINDS:
                await ws.close()
                break
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        receiver.cancel()


async def _drain(ws: WebSocket) -> None:
    """Read (and ignore) client messages so a disconnect is noticed."""
    try:
        while True:
            await ws.receive_text()
    except (WebSocketDisconnect, RuntimeError):
        return
