"""Everything a request or a worker needs, built once per app from Settings."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlparse

from transcriber.config import Settings
from transcriber.engines.registry import EngineManager
from transcriber.errors import OptionError
from transcriber.jobs.events import EventBus
from transcriber.jobs.metrics import Metrics
from transcriber.jobs.queue.base import JobQueue
from transcriber.jobs.queue.embedded import EmbeddedQueue
from transcriber.jobs.store import SqlJobStore
from transcriber.jobs.worker import Worker
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

    @classmethod
    def build(cls, settings: Settings) -> Services:
        url = settings.db_url()
        if url.startswith("sqlite:///"):
            settings.data_dir.mkdir(parents=True, exist_ok=True)
        jobs = SqlJobStore(url)
        store = from_url(settings.storage_url)
        engines = EngineManager(settings)
        pipeline = Pipeline(settings, engines)
        events, metrics = EventBus(), Metrics()
        worker = Worker(jobs, store, pipeline, events, metrics)
        scheme = urlparse(settings.queue_url).scheme
        if scheme != "embedded":
            raise OptionError(f"unsupported queue URL {settings.queue_url!r}; use embedded://")
        queue = EmbeddedQueue(jobs, worker, settings.workers)
        return cls(settings, jobs, store, engines, pipeline, events, metrics, queue)

    def close(self) -> None:
        self.queue.stop()
        self.jobs.close()
