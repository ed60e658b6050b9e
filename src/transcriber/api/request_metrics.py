"""Counting HTTP requests by route, method and status, as a plain ASGI middleware.

Starlette's `BaseHTTPMiddleware` (`@app.middleware("http")`) hides the client's
disconnect from the route behind it: `request.is_disconnected()` never turned true, so
a waiting request (`/asr`, `/v1/audio/transcriptions`) never noticed its client had
gone. A plain middleware passes `receive` through untouched.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class CountRequests:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500  # unless a response starts: an error that escaped every handler

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        finally:
            path = getattr(scope.get("route"), "path", "unmatched")
            services = getattr(scope["app"].state, "services", None)
            if services is not None:
                services.metrics.http.labels(path, scope["method"], str(status)).inc()
