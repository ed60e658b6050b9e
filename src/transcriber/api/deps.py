"""Named dependencies for routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

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
