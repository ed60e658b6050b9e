"""The HTTP and WebSocket API."""

from transcriber.api.app import create_app

__all__ = ["create_app"]
