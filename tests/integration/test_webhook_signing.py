"""Signed webhooks (Standard Webhooks): each key's deliveries are signed with its own
secret, and a real receiver that checks them takes the real ones and refuses a wrong
signature, a replay, and a replayed (stale) timestamp."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np
import pytest
from standardwebhooks.webhooks import Webhook as ReferenceWebhook

from tests.integration.conftest import make_client
from tests.media_factory import write_audio
from tests.servers.receiver import Receiver
from transcriber.signing import WebhookVerificationError, sign, verify

# The test vector of the Standard Webhooks specification.
SPEC = ("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330,
        b'{"test": 2432232314}', "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")  # fmt: skip


def test_signatures_are_the_standards() -> None:
    secret, msg_id, timestamp, body, expected = SPEC
    headers = sign(secret, msg_id, body, now=timestamp)
    assert headers == {"webhook-id": msg_id, "webhook-timestamp": str(timestamp),
                       "webhook-signature": expected}  # fmt: skip
    verify(secret, headers, body, now=timestamp + 299)
    with pytest.raises(WebhookVerificationError, match="past 300 s"):
        verify(secret, headers, body, now=timestamp + 301)
    with pytest.raises(WebhookVerificationError, match="no signature matches"):
        verify(secret, headers, body + b" ", now=timestamp)
    rotated = headers | {"webhook-signature": f"v1,bm90IHRoaXM= {expected}"}
    verify(secret, rotated, body, now=timestamp)  # one of several, while a secret rotates
    with pytest.raises(WebhookVerificationError, match="webhook-id"):
        verify(secret, {"webhook-timestamp": str(timestamp)}, body, now=timestamp)


@pytest.mark.slow
def test_a_receiver_takes_real_deliveries_and_refuses_forgeries(
    tmp_path: Path, model_cache: Path, receiver: Receiver
) -> None:
    quiet = write_audio(tmp_path / "quiet.wav", np.zeros(16000, np.float32)).read_bytes()
    keys = {"Authorization": "Bearer key-a"}, {"Authorization": "Bearer key-b"}
    with make_client(tmp_path, model_cache, workers=1, api_keys="key-a,key-b",
                     allow_private_urls=True) as c:  # fmt: skip
        secret_a, secret_b = (c.get("/api/webhook-secret", headers=k).json()["secret"]
                              for k in keys)  # fmt: skip
        assert secret_a.startswith("whsec_") and secret_a != secret_b
        assert c.get("/api/webhook-secret", headers=keys[0]).json()["secret"] == secret_a
        receiver.secret = secret_a
        for key, path in ((keys[0], "/a"), (keys[1], "/b")):
            r = c.post("/api/tasks", files={"file": ("q.wav", quiet)},
                       data={"webhook": f"{receiver.url}{path}"}, headers=key)  # fmt: skip
            assert r.status_code == 202, r.text
        got = receiver.wait_for(2, limit_s=120)
        by_path = {g.path: g for g in got}
        real, other = by_path["/a"], by_path["/b"]
        assert real.answered == 200 and real.body["status"] == "completed"
        assert other.answered == 401  # key b's delivery is signed with b's secret, not a's
        verify(secret_b, other.headers, other.raw)
        # The reference implementation agrees with ours.
        assert ReferenceWebhook(secret_a).verify(real.raw, real.headers)["id"] == real.body["id"]
        deadline = time.monotonic() + 30
        while (
            c.get(f"/api/tasks/{real.body['id']}", headers=keys[0]).json()["webhook_status"] != 200
        ):
            assert time.monotonic() < deadline
            time.sleep(0.05)

    def post(body: bytes, headers: dict[str, str]) -> int:
        sent = {k: v for k, v in headers.items() if k.startswith("webhook-")}
        return httpx.post(f"{receiver.url}/a", content=body, headers=sent).status_code

    assert post(real.raw, real.headers) == 409  # replayed as it was: already taken
    forged = real.raw.replace(b'"completed"', b'"failed"')
    assert post(forged, real.headers) == 401  # the body changed: the signature does not fit
    stale = int(datetime.now(UTC).timestamp()) - 600
    old = sign(secret_a, "msg_new", real.raw, now=stale)  # right secret, replayed timestamp
    assert post(real.raw, old) == 401
    fresh = sign(secret_a, "msg_new", real.raw)
    assert post(real.raw, fresh) == 200
