"""Settings from the environment (prefix `TRANSCRIBER_`, `__` for nesting) and `.env`.

Every field has a docstring; `docs/configuration.md` lists them all and a test
keeps the two in step.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal
from urllib.parse import urlparse

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity, which a container's CPU
    set narrows), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - non-Linux
        return max(1, os.cpu_count() or 1)


def _default_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "video-transcriber"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="TRANSCRIBER_",
        env_nested_delimiter="__",
        env_file=".env",
        extra="ignore",
        use_attribute_docstrings=True,
        populate_by_name=True,
    )

    model: str = "base"
    """Default model: a name (`base`, `tiny.en`, or any faster-whisper name) or a folder path."""

    model_dir: Path = Field(default_factory=lambda: _default_cache() / "models")
    """Cache folder where installed model packs are assembled and downloads are kept."""

    device: str = "cpu"
    """CTranslate2 device: `cpu`, `cuda` or `auto`."""

    compute_type: str = "int8"
    """CTranslate2 compute type, e.g. `int8`, `int8_float16`, `float16`, `float32`."""

    cpu_threads: int = Field(default=0, ge=0)
    """Threads for inference; 0 means one per CPU core available to the process."""

    replicas: int = Field(default=0, ge=0, le=64)
    """Copies of the model that decode batches at the same time, sharing `cpu_threads`
    between them (weights are shared, working memory is not); 0 picks one per CPU core
    up to 2 on a CPU, which is faster there than one copy using every thread, and 1 on
    a GPU (docs/performance.md)."""

    batch_size: int = Field(default=2, ge=1, le=64)
    """How many ~30 s speech windows one model copy decodes together in one batch."""

    beam_size: int = Field(default=5, ge=1, le=10)
    """Default beam width when a request does not set one."""

    decoding: Literal["beam", "gated"] = "beam"
    """`beam`: beam-search every window; `gated`: decode every window greedily, and again
    with the beam only the windows whose words the model was unsure of (engines/gate.py).
    On the dev set the gate lost accuracy wherever it saved time (docs/performance.md),
    so full beam is the default. A beam width of 1 is greedy either way."""

    vad_threshold: float = Field(default=0.5, gt=0.0, lt=1.0)
    """Silero VAD speech probability above which a 32 ms frame counts as speech."""

    vad_min_silence_ms: int = Field(default=1000, ge=0)
    """Silence shorter than this does not end a speech region."""

    vad_speech_pad_ms: int = Field(default=400, ge=0)
    """Padding added on each side of a speech region."""

    tune_runtime: bool = True
    """Tune the process for CPU inference at start-up: glibc keeps large freed blocks
    for reuse and OpenMP threads sleep instead of spinning (docs/performance.md)."""

    model_idle_ttl_s: float = Field(default=600.0, ge=0)
    """Unload a loaded model after this many idle seconds (0 keeps it loaded)."""

    # --- service -----------------------------------------------------------------
    host: str = Field(default="0.0.0.0", validation_alias=AliasChoices("TRANSCRIBER_HOST", "HOST"))
    """Address to bind. With no API keys (neither `api_keys` nor keys made with
    `transcriber keys create`) and HOST unset, the service binds 127.0.0.1."""

    port: int = Field(
        default=8086, ge=1, le=65535, validation_alias=AliasChoices("TRANSCRIBER_PORT", "PORT")
    )
    """TCP port of the service (8086, as in the deployment guide)."""

    data_dir: Path = Path("./data")
    """Folder for the SQLite database and other service state."""

    database_url: str = ""
    """SQLAlchemy URL of the job store; empty means `sqlite:///<data_dir>/transcriber.db`.
    `postgresql://user:pass@host:5432/db` (psycopg 3: `pip install 'video-transcriber[postgres]'`)
    puts it on PostgreSQL, which several API nodes and workers can share."""

    queue_url: str = "embedded://"
    """Job queue: `embedded://` runs workers in the service process; `redis://host:6379/0`
    sends tasks to Celery workers (`transcriber worker`) and relays their progress to
    every API node through Redis pub/sub (extra `[celery]`)."""

    storage_url: str = "file://./transcriptions"
    """Where uploads, checkpoints and results are kept: `file://<folder>`, or
    `s3://<bucket>/<prefix>?endpoint_url=<url>&region=<region>` (prefix and query optional;
    without `endpoint_url`, `s3_endpoint_url` applies). S3 needs the `s3` extra; credentials
    come from the usual AWS variables."""

    workers: int = Field(default=1, ge=0, le=64)
    """Tasks run at once: worker threads of the embedded queue (0: accept tasks but run
    none), or of each `transcriber worker` process."""

    lease_s: float = Field(default=60.0, ge=2.0)
    """With the Celery queue: a running task whose worker has not renewed its lease for
    this long (the process died) goes back to the queue and resumes from its checkpoint."""

    worker_metrics_port: int = Field(default=0, ge=0, le=65535)
    """`transcriber worker` serves Prometheus metrics (audio seconds, real-time factor,
    stage times of the tasks it ran) on this port, at the service's bind address; 0: off.
    An API node's `/metrics` counts only the work done in its own process."""

    api_keys: str = ""
    """Comma-separated API keys accepted as `Authorization: Bearer KEY` (plus keys made
    with `transcriber keys create`). Empty and no stored keys: no authentication."""

    max_upload_mb: float = Field(default=2048.0, gt=0)
    """Largest upload accepted, in MB; larger ones get 413. The serverless worker gives a
    larger S3 object a failed result, before downloading it."""

    max_attempts: int = Field(default=3, ge=1, le=100)
    """Runs a task may start: one whose process dies under it this many times (a file
    that crashes the service, say) fails with a reason saying so instead of running
    again; it stays in the task list and can be retried. A shutdown does not count."""

    upload_stall_s: float = Field(default=60.0, gt=0)
    """A request body that sends nothing for this many seconds before it is complete is
    given up with 408, so that a stalled client does not hold a connection and a file."""

    max_duration_s: float = Field(default=6 * 3600.0, gt=0)
    """Longest media accepted, in seconds; longer ones get 413."""

    max_queue: int = Field(default=100, ge=1)
    """Queued tasks beyond this get 429 with Retry-After."""

    max_live_sessions: int = Field(default=2, ge=0, le=256)
    """Live transcription sessions (`/ws/live`, `/v1/realtime`) this process runs at once;
    one more is refused with WebSocket close code 1013 (try again later). 0 turns live
    transcription off. How many real-time sessions a box holds is measured by
    `make bench-live` (docs/performance.md)."""

    live_silence_ms: int = Field(default=600, ge=100, le=5000)
    """In live sessions, silence this long ends an utterance and makes its text final.
    Shorter gives finals sooner but cuts sentences at pauses, which costs accuracy."""

    live_step_s: float = Field(default=1.0, ge=0.2, le=10.0)
    """In live sessions, an utterance is decoded again (for partial text) each time this
    much more audio has arrived and the previous decode is done."""

    live_max_buffer_s: float = Field(default=15.0, ge=4.0, le=28.0)
    """In live sessions, an utterance longer than this without a pause has its settled
    words made final and its audio buffer cut behind them, so a long monologue keeps
    latency and memory bounded."""

    allow_private_urls: bool = False
    """Let client-given URLs (AssemblyAI-style `audio_url` downloads, webhooks) reach
    loopback and private addresses. Off by default, so that a client cannot make the
    service call into its own network; turn on when media sits on an internal server."""

    s3_endpoint_url: str = ""
    """S3 endpoint of the serverless worker and of `s3://` storage URLs that name none, e.g.
    `http://127.0.0.1:8333` for SeaweedFS or MinIO; empty means AWS (credentials and region
    come from the usual AWS variables)."""

    s3_result_prefix: str = Field(default="results/", min_length=1)
    """The serverless worker writes `<prefix><file_id>.json` beside the media (the file_id
    of an S3 notification is the object's key: `results/calls/jan/rec.flac.json`); objects
    under this prefix never start a transcription, so a bucket-wide trigger cannot loop."""

    serverless_diarize: bool = True
    """Label speakers in the serverless worker's results, as its S3-event contract expects
    (an event can say `"diarize": false`)."""

    diarization_method: Literal["pyannote", "dvector"] = "pyannote"
    """`pyannote`: segmentation-3.0 and CAM++, overlapping speech found. `dvector`: the
    earlier resemblyzer method, one speaker at a time (needs `pip install --no-deps
    resemblyzer==0.1.4`; see docs/diarization.md for where it still wins)."""

    diarization_step_s: float = Field(default=0.0, ge=0.0, le=10.0)
    """Seconds between the starts of the speaker pass's 10 s chunks. 0: chosen by length,
    2.5 s for short files up to 10 s from 2 minutes on (the fastest). Smaller steps hear
    every moment in more chunks: on long meetings 2.5 s gave clearly better labels, at
    about 3.5 times the speaker pass's cost (docs/diarization.md). Values under 2.5
    are raised to it."""

    log_format: str = "text"
    """`text` for people, `json` for log collectors."""

    log_file: Path | None = None
    """Also write logs to this file, rotated at 10 MB with 10 backups."""

    @field_validator("log_format")
    @classmethod
    def _check_log_format(cls, v: str) -> str:
        if v not in {"text", "json"}:
            raise ValueError("log_format must be text or json")
        return v

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, v: str) -> str:
        if not v:
            return v
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            backend = make_url(v).get_backend_name()
        except ArgumentError:
            backend = ""
        if backend not in {"sqlite", "postgresql", "postgres"}:
            raise ValueError(
                "the job store is SQLite or PostgreSQL: use sqlite:///path/to/jobs.db or"
                " postgresql://user:password@host:5432/database (or leave it empty)"
            )
        return v

    @field_validator("queue_url")
    @classmethod
    def _check_queue_url(cls, v: str) -> str:
        if urlparse(v).scheme not in {"embedded", "redis", "rediss"}:
            raise ValueError("use embedded:// or redis://host:6379/0 (Celery)")
        return v

    @field_validator("storage_url")
    @classmethod
    def _check_storage_url(cls, v: str) -> str:
        if urlparse(v).scheme not in {"file", "", "s3"}:
            raise ValueError("use file:///path/to/folder or s3://bucket/prefix")
        return v

    @field_validator("device")
    @classmethod
    def _check_device(cls, v: str) -> str:
        if v not in {"cpu", "cuda", "auto"}:
            raise ValueError("device must be cpu, cuda or auto")
        return v

    def bind_host(self, stored_keys: bool = False) -> str:
        """Where to listen: never beyond localhost by default while no key protects the API,
        from the settings or made with `transcriber keys create` (`stored_keys`)."""
        if "host" in self.model_fields_set or self.key_list() or stored_keys:
            return self.host
        return "127.0.0.1"

    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'transcriber.db'}"

    def key_list(self) -> list[str]:
        return [k.strip() for k in self.api_keys.split(",") if k.strip()]

    def replicas_count(self) -> int:
        """Model copies to load: `replicas`, or the automatic choice for the device."""
        if self.replicas:
            return self.replicas
        return min(2, self.threads()) if self.device == "cpu" else 1

    def threads_per_replica(self) -> int:
        return max(1, self.threads() // self.replicas_count())

    def threads(self) -> int:
        if self.cpu_threads:
            return self.cpu_threads
        return available_cores()
