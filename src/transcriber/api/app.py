"""`create_app(settings)`: the FastAPI app, with a lifespan that wires the services."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from transcriber import __version__
from transcriber.api import errors, schemas
from transcriber.api.routes import (
    account,
    assemblyai,
    compat,
    export,
    health,
    live,
    realtime,
    tasks,
    transcript,
    versions,
    web,
    ws,
)
from transcriber.api.services import Services
from transcriber.config import Settings

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services = Services.build(settings)
        app.state.services = services
        if not settings.key_list() and not services.jobs.has_keys():
            log.warning("no API keys configured: the API is open to anyone who can reach it")
        services.queue.start()
        try:
            yield
        finally:
            services.close()

    app = FastAPI(
        title="Video Transcriber",
        version=__version__,
        description="Offline transcription of video and audio: tasks, progress, results.",
        lifespan=lifespan,
    )
    app.openapi = lambda: schemas.honest_openapi(app)  # type: ignore[method-assign]
    errors.install(app)
    app.include_router(tasks.router)
    app.include_router(ws.router)
    app.include_router(live.router)
    app.include_router(realtime.router)
    app.include_router(health.router)
    app.include_router(export.router)
    app.include_router(transcript.router)
    app.include_router(versions.router)
    app.include_router(account.router)
    app.include_router(compat.router)
    app.include_router(assemblyai.router)
    app.include_router(web.router)
    app.mount("/static", StaticFiles(directory=web.STATIC_DIR), name="static")

    app.add_middleware(CountRequests)
    return app


class CountRequests:
    """`transcriber_http_requests_total{route, method, status}`, as plain ASGI: no task or
    body buffering per request, as `@app.middleware("http")` would add."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = [500]

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            services: Services | None = getattr(scope["app"].state, "services", None)
            if services is not None:
                path = getattr(scope.get("route"), "path", "unmatched")
                services.metrics.http.labels(path, scope["method"], str(status[0])).inc()
