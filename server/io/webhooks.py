"""Webhook delivery from the outbox: POST the job's final body, retry with backoff and jitter, sign it.

Runs as one asyncio task in the server process. Deliveries are rows (server/jobs.py), so retries
survive restarts; a receiver may see a delivery more than once and should dedupe on id / track_id.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import random
import time
from collections.abc import Callable
from typing import Any

from server.io.url_guard import UrlFetchFailed, UrlGuard, UrlRefused
from server.jobs.store import Delivery, JobRow, JobStore
from server.ops.metrics import Metrics
from server.ops.settings import Settings

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Sdgate-Signature"
TIMESTAMP_HEADER = "X-Sdgate-Timestamp"


def sign(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def backoff_seconds(attempt: int, base: float, jitter: float = 0.25) -> float:
    """base, 2*base, 4*base, ... after attempts 1, 2, 3; jitter spreads retries of many failed deliveries."""
    return base * 2 ** (attempt - 1) * (1 + random.uniform(0, jitter))


class WebhookSender:
    def __init__(self, jobs: JobStore, body_for: Callable[[JobRow], dict[str, Any]], settings: Settings,
                 metrics: Metrics, guard: UrlGuard) -> None:
        self.guard = guard
        self.jobs = jobs
        self.body_for = body_for
        self.settings = settings
        self.metrics = metrics

    async def run_forever(self, poll_seconds: float = 0.25) -> None:
        while True:
            try:
                await self.deliver_due()
            except Exception:  # the sender must outlive any single bad delivery or DB hiccup
                log.exception("webhook sender pass failed")
            await asyncio.sleep(poll_seconds)

    async def deliver_due(self) -> int:
        due = await asyncio.to_thread(self.jobs.due_deliveries, time.time())
        for delivery in due:
            await self._attempt(delivery)
        return len(due)

    async def _attempt(self, delivery: Delivery) -> None:
        row = await asyncio.to_thread(self.jobs.get, delivery.job_id)
        assert row is not None
        body = json.dumps(self.body_for(row)).encode()
        headers = {"Content-Type": "application/json", TIMESTAMP_HEADER: str(int(time.time()))}
        if self.settings.webhook_secret is not None:
            headers[SIGNATURE_HEADER] = sign(body, self.settings.webhook_secret.get_secret_value())
        attempt = delivery.attempts + 1
        status_code, error, final = None, None, attempt >= self.settings.webhook_max_attempts
        try:
            status_code = await self.guard.post(delivery.url, body, headers)
            if not 200 <= status_code < 300:
                error = f"HTTP {status_code}"
        except UrlRefused as exc:
            error, final = exc.reason, True  # a refused address will not become acceptable by retrying
        except UrlFetchFailed as exc:
            error = str(exc)
        next_at = None if error is None or final else time.time() + backoff_seconds(attempt, self.settings.webhook_backoff)
        outcome = "delivered" if error is None else "failed" if final else "retry"
        self.metrics.webhook_attempts.labels(outcome).inc()
        log.info("webhook job=%s attempt=%d outcome=%s %s", delivery.job_id, attempt, outcome, error or "")
        await asyncio.to_thread(self.jobs.record_attempt, delivery, status_code, error, next_at, final)
