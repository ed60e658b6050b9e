"""Prometheus metrics, one registry per app so tests do not share counters."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from transcriber.domain import Transcript


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.tasks = Gauge("transcriber_tasks", "Tasks by status", ["status"], registry=r)
        self.queue_depth = Gauge("transcriber_queue_depth", "Queued tasks", registry=r)
        self.audio_seconds = Counter(
            "transcriber_audio_seconds", "Audio seconds transcribed", registry=r
        )
        self.rtf = Histogram(
            "transcriber_real_time_factor",
            "Processing time over audio duration",
            buckets=(0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.0, 5.0),
            registry=r,
        )
        self.stage_seconds = Histogram(
            "transcriber_stage_seconds", "Time spent per pipeline stage", ["stage"], registry=r
        )
        self.reused = Counter(
            "transcriber_reused_results",
            "Waiting requests answered by the task of an identical earlier request (/asr)",
            registry=r,
        )
        self.live_sessions = Gauge(
            "transcriber_live_sessions", "Live transcription sessions open", registry=r
        )
        self.live_final_delay = Histogram(
            "transcriber_live_final_delay_seconds",
            "Live sessions: from the VAD's end of speech to the final text",
            buckets=(0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0),
            registry=r,
        )
        self.checkpoint_bytes = Counter(
            "transcriber_checkpoint_bytes",
            "Bytes of checkpoint steps written to the job store",
            registry=r,
        )
        # Per API key by its id (a hash's first 16 hex digits) and name, never the key.
        self.key_audio_today = Gauge(
            "transcriber_key_audio_seconds_today",
            "Audio seconds a key submitted today (UTC), failed and cancelled tasks aside",
            ["key_id", "name"],
            registry=r,
        )
        self.key_active = Gauge(
            "transcriber_key_tasks_active",
            "A key's tasks queued or running",
            ["key_id", "name"],
            registry=r,
        )
        self.http = Counter(
            "transcriber_http_requests", "HTTP requests", ["route", "method", "status"], registry=r
        )

    def observe_transcript(self, t: Transcript) -> None:
        self.audio_seconds.inc(t.duration)
        if t.duration > 0:
            self.rtf.observe(t.processing_time / t.duration)
        for stage, seconds in t.timings.items():
            self.stage_seconds.labels(stage=stage).observe(seconds)
