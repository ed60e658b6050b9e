"""Standard Webhooks signatures (https://www.standardwebhooks.com): sign a delivery, and
check one. Standard library only, so a receiver can use this module as it is.

A delivery carries three headers:
- `webhook-id`: the message's id, the same in every retry of one delivery (a receiver
  that has seen it can drop the repeat);
- `webhook-timestamp`: when it was sent, in whole seconds since the epoch;
- `webhook-signature`: `v1,` and the base64 HMAC-SHA256 of `{id}.{timestamp}.{body}`,
  keyed with the secret's bytes (the secret is `whsec_` and their base64).

A receiver checks the signature against the exact bytes of the body and refuses a
timestamp more than `tolerance_s` away from its clock, so a captured delivery cannot
be replayed later:

    from transcriber.signing import verify, WebhookVerificationError
    try:
        verify(SECRET, request_headers, raw_body)
    except WebhookVerificationError:
        return 401
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Mapping

PREFIX = "whsec_"
TOLERANCE_S = 300


class WebhookVerificationError(ValueError):
    """The delivery is not signed with the secret, or was sent too long ago."""


def new_secret() -> str:
    return PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


def _key(secret: str) -> bytes:
    try:
        return base64.b64decode(secret.removeprefix(PREFIX), validate=True)
    except ValueError:
        raise WebhookVerificationError("the secret is not whsec_ and base64") from None


def signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """`v1,` and the base64 HMAC-SHA256 of `{msg_id}.{timestamp}.{body}`."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def sign(secret: str, msg_id: str, body: bytes, now: float | None = None) -> dict[str, str]:
    """The three headers of a delivery of `body`, sent now (or at `now`)."""
    timestamp = int(time.time() if now is None else now)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(secret, msg_id, timestamp, body),
    }


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    tolerance_s: float = TOLERANCE_S,
    now: float | None = None,
) -> None:
    """Raise WebhookVerificationError unless `body` was signed with `secret` less than
    `tolerance_s` seconds from now. Header names are matched in any case."""
    lower = {k.lower(): v for k, v in headers.items()}
    msg_id = lower.get("webhook-id")
    stamp = lower.get("webhook-timestamp")
    given = lower.get("webhook-signature")
    if not (msg_id and stamp and given):
        raise WebhookVerificationError("webhook-id, webhook-timestamp and webhook-signature")
    try:
        timestamp = int(stamp)
    except ValueError:
        raise WebhookVerificationError(f"webhook-timestamp {stamp!r} is not a number") from None
    clock = time.time() if now is None else now
    if abs(clock - timestamp) > tolerance_s:
        raise WebhookVerificationError(
            f"webhook-timestamp is {clock - timestamp:+.0f} s from now, past {tolerance_s:g} s"
        )
    expected = signature(secret, msg_id, timestamp, body)
    # Several signatures, space separated, while a secret is being rotated.
    if not any(hmac.compare_digest(expected, s) for s in given.split()):
        raise WebhookVerificationError("no signature matches the secret")
