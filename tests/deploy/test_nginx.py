"""deploy/nginx: `nginx -t` on both sites, then real requests through nginx to a live service.

The TLS site runs with a throwaway self-signed certificate in place of certbot's;
an upload through it is transcribed and its progress arrives over a WebSocket
upgraded through nginx (wss).
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import ssl
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import websockets

from tests.deploy.conftest import tool
from tests.integration.live_api import Server, free_port
from tests.integration.test_api import JFK
from tests.servers import nginx as ng
from transcriber.config import Settings

pytestmark = pytest.mark.slow

LETSENCRYPT = "/etc/letsencrypt/live/transcriber.example.com"


def self_signed(folder: Path) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    cert, key = folder / "fullchain.pem", folder / "privkey.pem"
    subprocess.run(
        [tool("openssl", "apt install openssl"), "req", "-x509", "-newkey", "rsa:2048",
         "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


@pytest.fixture
def webroot() -> Iterator[Path]:
    """certbot's webroot with one challenge, readable by nginx's unprivileged workers
    (pytest's own temporary folders are private to their owner)."""
    folder = Path(tempfile.mkdtemp(prefix="transcriber-certbot-"))
    folder.chmod(0o755)
    challenge = folder / ".well-known/acme-challenge/token-1"
    challenge.parent.mkdir(parents=True)
    challenge.write_text("token-1.thumbprint")
    challenge.chmod(0o644)
    yield folder
    shutil.rmtree(folder)


def tls_site(tmp: Path, http_port: int, https_port: int, webroot: Path) -> dict[str, str]:
    """Edits that put sites/transcriber-tls.conf on local ports with a throwaway cert."""
    cert, key = self_signed(tmp / "cert")
    return {
        r"listen 80;": f"listen 127.0.0.1:{http_port};",
        r"listen 443 ssl;": f"listen 127.0.0.1:{https_port} ssl;",
        r"\n *listen \[::\]:(80|443 ssl);": "",
        re.escape(f"{LETSENCRYPT}/fullchain.pem"): str(cert),
        re.escape(f"{LETSENCRYPT}/privkey.pem"): str(key),
        r"/var/www/certbot": str(webroot),
    }


def assert_checks(conf: Path) -> None:
    done = ng.check(conf)
    assert done.returncode == 0, done.stderr
    assert "[warn]" not in done.stderr and "[emerg]" not in done.stderr, done.stderr


def test_both_sites_pass_nginx_t(tmp_path: Path, webroot: Path) -> None:
    plain = ng.lay_out(tmp_path / "plain", "transcriber.conf", [8086, 8087], ng.plain_site(8080))
    assert_checks(plain)
    edits = tls_site(tmp_path, 8080, 8443, webroot)
    assert_checks(ng.lay_out(tmp_path / "tls", "transcriber-tls.conf", [8086], edits))


def test_body_limit_follows_the_upload_limit() -> None:
    snippet = (ng.DEPLOY / "snippets/transcriber-proxy.conf").read_text()
    size = re.search(r"client_max_body_size (\d+)m;", snippet)
    assert size is not None
    limit_mb = Settings.model_fields["max_upload_mb"].default
    # nginx counts MiB, the service MB: nginx lets through every upload the service
    # takes, and the service refuses a bigger one with its own message.
    assert int(size.group(1)) == limit_mb, "keep client_max_body_size = TRANSCRIBER_MAX_UPLOAD_MB"


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, model_cache: Path) -> Iterator[Server]:
    s = Server(tmp_path_factory.mktemp("service"), model_cache)
    s.start()
    yield s
    s.kill()


def test_plain_site_proxies_api_static_and_websocket(service: Server, tmp_path: Path) -> None:
    port = free_port()
    conf = ng.lay_out(tmp_path, "transcriber.conf", [service.port], ng.plain_site(port))
    with ng.serve(conf, [port]):
        base = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{base}/health").json()["status"] == "ok"
        # Versioned entry points are kept a year; unversioned modules are revalidated.
        versioned = httpx.get(f"{base}/static/js/app.js", params={"v": "1"})
        assert versioned.status_code == 200
        assert versioned.headers["cache-control"] == "max-age=31536000"
        module = httpx.get(f"{base}/static/js/api.js")
        assert module.status_code == 200 and module.headers["cache-control"] == "no-cache"
        assert "etag" in module.headers
        # The operator's metrics answer from 127.0.0.1, the address the test comes from.
        assert "transcriber_" in httpx.get(f"{base}/metrics").text

        async def unknown_task() -> dict[str, object]:
            async with websockets.connect(f"ws://127.0.0.1:{port}/ws/tasks/nope") as ws:
                message: dict[str, object] = json.loads(await ws.recv())
                return message

        reply = asyncio.run(unknown_task())
        assert reply["event"] == "error", reply


def test_tls_site_transcribes_with_progress_over_wss(
    service: Server, eval_root: Path, tmp_path: Path, webroot: Path
) -> None:
    http_port, https_port = free_port(), free_port()
    edits = tls_site(tmp_path, http_port, https_port, webroot)
    conf = ng.lay_out(tmp_path / "prefix", "transcriber-tls.conf", [service.port], edits)
    with ng.serve(conf, [http_port, https_port]):
        plain = f"http://127.0.0.1:{http_port}"
        moved = httpx.get(f"{plain}/api/tasks?limit=1")
        assert moved.status_code == 301
        assert moved.headers["location"] == "https://127.0.0.1/api/tasks?limit=1"
        challenge = httpx.get(f"{plain}/.well-known/acme-challenge/token-1")
        assert challenge.status_code == 200 and challenge.text == "token-1.thumbprint"

        cert = tmp_path / "cert" / "fullchain.pem"
        base = f"https://127.0.0.1:{https_port}"
        with httpx.Client(verify=ssl.create_default_context(cafile=cert)) as client:
            health = client.get(f"{base}/health")
            assert health.status_code == 200
            assert health.headers["strict-transport-security"] == "max-age=63072000"
            with (eval_root / JFK).open("rb") as f:
                r = client.post(f"{base}/api/tasks", files={"file": ("jfk.flac", f)},
                                data={"language": "en"})  # fmt: skip
            assert r.status_code == 202, r.text
            task_id = r.json()["id"]

        async def events() -> list[dict[str, object]]:
            ctx = ssl.create_default_context(cafile=cert)
            got = []
            async with websockets.connect(f"wss://127.0.0.1:{https_port}/ws/tasks/{task_id}",
                                          ssl=ctx) as ws:  # fmt: skip
                async with asyncio.timeout(300):
                    async for raw in ws:
                        got.append(json.loads(raw))
            return got

        got = asyncio.run(events())
        assert got[-1]["event"] == "completed", got[-3:]
        task = got[-1]["task"]
        assert isinstance(task, dict) and "country" in task["transcript"]["text"]
