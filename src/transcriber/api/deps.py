"""Named dependencies for routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Query, Request

from transcriber.api.auth import bearer, owner_for
from transcriber.api.services import Services


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


def current_owner(
    request: Request,
    services: ServicesDep,
    authorization: Annotated[str | None, Header()] = None,
) -> str:
    early: str | None = getattr(request.state, "owner", None)  # an upload route's, before
    if early is not None:  # its body was read (api/uploads.py)
        return early
    return owner_for(services.jobs, services.settings.key_list(), bearer(authorization))


CurrentOwner = Annotated[str, Depends(current_owner)]


def media_owner(
    services: ServicesDep,
    authorization: Annotated[str | None, Header()] = None,
    token: Annotated[
        str | None, Query(description="The API key, for players that cannot send headers")
    ] = None,
) -> str:
    """The owner of a media request: a `<video>` element cannot send an Authorization
    header, so the key may come as `?token=KEY`, as it may for the WebSocket."""
    return owner_for(services.jobs, services.settings.key_list(), bearer(authorization) or token)


MediaOwner = Annotated[str, Depends(media_owner)]
