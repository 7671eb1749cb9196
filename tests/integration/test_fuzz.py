"""schemathesis against the app's own OpenAPI document: bounded generated bodies for img2img and fetch.

Every answer must be JSON in a documented shape with a documented status, and never a 5xx. The app
resolves every host name to loopback here and refuses private addresses, so no generated URL is fetched.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tests.integration.test_img2img_api import app_client

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


async def loopback_resolver(host: str, port: int) -> list[str]:
    return ["127.0.0.1"]


@pytest.fixture(scope="module")
def fuzz_app(tiny_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    with app_client(tiny_dir, tmp_path_factory.mktemp("fuzz"), allow_private_urls=False, max_queue=4,
                    sync_timeout=5) as client:
        client.app.state.sdgate.url_guard.resolver = loopback_resolver
        yield client


def test_generated_requests_get_documented_answers(fuzz_app: TestClient) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", fuzz_app.app).include(
        path_regex="^/api/v6/(images/(img2img|text2img|inpaint|fetch)|realtime/)")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} == {
        "/api/v6/images/img2img", "/api/v6/images/text2img", "/api/v6/images/inpaint", "/api/v6/realtime/text2img",
        "/api/v6/realtime/img2img", "/api/v6/realtime/inpaint", "/api/v6/images/fetch/{job_id}",
        "/api/v6/images/fetch"}
    calls: list[str] = []
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def answers_are_documented(case: schemathesis.Case) -> None:
            case.call_and_validate(checks=CHECKS)
            calls.append(case.operation.path)

        answers_are_documented()
    assert len(calls) >= 160, calls  # the generator really produced cases for every route
    assert fuzz_app.get("/health").json()["worker_alive"] is True
