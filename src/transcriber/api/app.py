"""`create_app(settings)`: the FastAPI app, with a lifespan that wires the services."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from fastapi.staticfiles import StaticFiles

from transcriber import __version__
from transcriber.api import errors
from transcriber.api.routes import assemblyai, compat, export, health, tasks, transcript, web, ws
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
    errors.install(app)
    app.include_router(tasks.router)
    app.include_router(ws.router)
    app.include_router(health.router)
    app.include_router(export.router)
    app.include_router(transcript.router)
    app.include_router(compat.router)
    app.include_router(assemblyai.router)
    app.include_router(web.router)
    app.mount("/static", StaticFiles(directory=web.STATIC_DIR), name="static")

    @app.middleware("http")
    async def count_requests(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        route = request.scope.get("route")
        path = getattr(route, "path", "unmatched")
        services: Services | None = getattr(request.app.state, "services", None)
        if services is not None:
            services.metrics.http.labels(path, request.method, str(response.status_code)).inc()
        return response

    return app
