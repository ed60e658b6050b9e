"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from transcriber import __version__
from transcriber.api.deps import ServicesDep
from transcriber.api.schemas import Health, Ready, content
from transcriber.errors import TranscriberError
from transcriber.jobs.status import TaskStatus
from transcriber.models import resolve

router = APIRouter(tags=["health"])


@router.get("/health", response_model=Health)
async def health() -> dict[str, Any]:  # nothing to wait for: answered on the loop itself
    return {"status": "ok", "version": __version__}


@router.get(
    "/ready",
    response_model=Ready,
    responses={503: {"model": Ready, "description": "A check failed; it says why"}},
)
def ready(services: ServicesDep) -> JSONResponse:
    checks: dict[str, str] = {}
    for name, check in (
        ("database", services.jobs.ping),
        ("storage", services.store.check),
        ("queue", services.queue.check),
        ("model", lambda: resolve(services.settings.model, services.settings.model_dir)),
    ):
        try:
            check()
            checks[name] = "ok"
        except (TranscriberError, OSError, Exception) as e:  # report, never raise
            checks[name] = getattr(e, "message", None) or f"{type(e).__name__}: {e}"
    ok = all(v == "ok" for v in checks.values())
    return JSONResponse({"status": "ok" if ok else "unavailable", "checks": checks},
                        status_code=200 if ok else 503)  # fmt: skip


@router.get(
    "/metrics",
    response_class=PlainTextResponse,
    responses={200: {**content("text/plain"), "description": "Prometheus text format"}},
)
def metrics(services: ServicesDep) -> Response:
    m = services.metrics
    counts = services.jobs.counts()
    for status in TaskStatus:
        m.tasks.labels(status=status.value).set(counts.get(status.value, 0))
    m.queue_depth.set(counts.get(TaskStatus.queued.value, 0))
    for key_id, name, used in services.jobs.usage_by_key():
        m.key_audio_today.labels(key_id, name).set(used.seconds_today)
        m.key_active.labels(key_id, name).set(used.running)
    return Response(generate_latest(m.registry), media_type=CONTENT_TYPE_LATEST)
