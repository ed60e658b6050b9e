"""What a key can ask about itself: the secret its webhooks are signed with."""

from __future__ import annotations

from fastapi import APIRouter

from transcriber.api.deps import CurrentOwner, ServicesDep
from transcriber.api.schemas import WebhookSecret, responses_for

router = APIRouter(prefix="/api", tags=["account"])


@router.get("/webhook-secret", response_model=WebhookSecret, responses=responses_for(401, 503))
def webhook_secret(services: ServicesDep, owner: CurrentOwner) -> WebhookSecret:
    """The Standard Webhooks secret that signs this key's webhook deliveries
    (`webhook-signature`); check them with `transcriber.signing.verify`."""
    return WebhookSecret(secret=services.jobs.webhook_secret(owner))
