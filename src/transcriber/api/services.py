"""Everything a request or a worker needs, built once per app from Settings."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlparse

from transcriber.config import Settings
from transcriber.engines.registry import EngineManager
from transcriber.errors import OptionError
from transcriber.jobs.events import EventBus
from transcriber.jobs.events_redis import RedisEventBus
from transcriber.jobs.metrics import Metrics
from transcriber.jobs.queue.base import JobQueue
from transcriber.jobs.queue.celery import CeleryQueue
from transcriber.jobs.queue.embedded import EmbeddedQueue
from transcriber.jobs.store import SqlJobStore
from transcriber.jobs.webhooks import WebhookSender
from transcriber.jobs.worker import FetchPolicy, Worker
from transcriber.live.sessions import LiveSessions
from transcriber.pipeline import Pipeline
from transcriber.storage import Store, from_url


@dataclass
class Services:
    settings: Settings
    jobs: SqlJobStore
    store: Store
    engines: EngineManager
    pipeline: Pipeline
    events: EventBus
    metrics: Metrics
    queue: JobQueue
    worker: Worker
    webhooks: WebhookSender
    live: LiveSessions

    @classmethod
    def build(cls, settings: Settings, listen: bool = True) -> Services:
        """`listen=False` for worker processes, which publish events but serve none."""
        url = settings.db_url()
        if url.startswith("sqlite:///"):
            settings.data_dir.mkdir(parents=True, exist_ok=True)
        jobs = SqlJobStore(url, max_attempts=settings.max_attempts)
        store = from_url(settings.storage_url, settings.s3_endpoint_url)
        engines = EngineManager(settings)
        pipeline = Pipeline(settings, engines)
        metrics = Metrics()
        scheme = urlparse(settings.queue_url).scheme
        embedded = scheme == "embedded"
        if not embedded and scheme not in ("redis", "rediss"):
            raise OptionError(
                f"unsupported queue URL {settings.queue_url!r};"
                " use embedded:// or redis://host:6379/0 (Celery)"
            )
        events = EventBus() if embedded else RedisEventBus(settings.queue_url, listen=listen)
        webhooks = WebhookSender(jobs, settings.allow_private_urls)
        fetch = FetchPolicy(
            int(settings.max_upload_mb * 1e6), settings.max_duration_s, settings.allow_private_urls
        )
        worker = Worker(jobs, store, pipeline, events, metrics, webhooks, fetch)
        queue: JobQueue = (
            EmbeddedQueue(jobs, worker, settings.workers)
            if embedded
            else CeleryQueue(settings.queue_url)
        )
        live = LiveSessions(settings.max_live_sessions, metrics.live_sessions)
        return cls(
            settings, jobs, store, engines, pipeline, events, metrics, queue, worker, webhooks, live
        )

    def close(self) -> None:
        self.live.close()
        self.queue.stop()
        self.webhooks.drain(timeout_s=10.0)
        self.events.close()
        self.engines.close()
        self.jobs.close()
