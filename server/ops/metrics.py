"""Prometheus metrics for one app instance (its own registry, so several apps can live in one process)."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

_SECONDS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300)


class Metrics:
    """Collectors: jobs by final status, queue depth, queue wait, generation and model-load seconds, webhooks."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.jobs = Counter("sdgate_jobs_total", "Jobs ended, by status", ["status"], registry=self.registry)
        self.queue_depth = Gauge("sdgate_queue_depth", "Jobs queued or running", registry=self.registry)
        self.queue_wait = Histogram("sdgate_queue_wait_seconds", "Accepted to started", buckets=_SECONDS,
                                    registry=self.registry)
        self.generation = Histogram("sdgate_generation_seconds", "Started to stored (load + generate + encode)",
                                    buckets=_SECONDS, registry=self.registry)
        self.model_load = Histogram("sdgate_model_load_seconds", "Model loads from disk", buckets=_SECONDS,
                                    registry=self.registry)
        self.model_cache = Counter("sdgate_model_cache_total", "Model lookups and evictions, by event "
                                   "(hit_device, hit_host, miss, evict_to_host, evict_to_disk)", ["event"],
                                   registry=self.registry)
        self.webhook_attempts = Counter("sdgate_webhook_attempts_total", "Webhook POST attempts, by outcome",
                                        ["outcome"], registry=self.registry)

    def watch_queue(self, depth: Callable[[], int]) -> None:
        self.queue_depth.set_function(depth)

    def render(self) -> bytes:
        return generate_latest(self.registry)
