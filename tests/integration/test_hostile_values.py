"""Arbitrary JSON values, huge numbers and invalid Unicode in every field of every generation endpoint get
the error envelope (or an accepted job), never a 500, and the server keeps serving."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.http.endpoints import ENDPOINTS
from tests.conftest import b64_png
from tests.integration.test_img2img_api import app_client

JSON_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(min_value=10**300, max_value=10**400),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=30),
    st.sampled_from(["\ud800", "a\udfffb", "yes", "", " ", "1e999", "-0", "NaN", "0x10", "٣"]),
)
JSON_VALUES = st.recursive(JSON_SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
    st.text(max_size=5), inner, max_size=3), max_leaves=6)
BASE = {"key": "k", "model_id": "tiny-sd15", "prompt": "a cat", "init_image": b64_png(), "mask_image": b64_png(),
        "base64": "yes", "width": 64, "height": 64, "steps": 2, "safety_checker": "no"}


@pytest.fixture(scope="module")
def hostile_app(tiny_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    # Small outputs and no waiting: accepted jobs stay cheap while the generator throws values at the door.
    with app_client(tiny_dir, tmp_path_factory.mktemp("hostile"), sync_timeout=0, max_queue=3, max_side=64,
                    max_request_pixels=64 * 64 * 2) as client:
        yield client


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.paths[0])
def test_every_field_takes_any_json_value_without_a_500(hostile_app: TestClient, endpoint: object) -> None:
    path = endpoint.paths[0]  # type: ignore[attr-defined]
    names = sorted({*endpoint.request.model_fields, "steps", "lora", "embeddings", "model"})  # type: ignore[attr-defined]

    @given(name=st.sampled_from(names), value=JSON_VALUES)
    @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def answers_in_the_envelope(name: str, value: object) -> None:
        body = json.dumps({**BASE, name: value}, allow_nan=False).encode("utf-8", "surrogatepass")
        response = hostile_app.post(path, content=body, headers={"content-type": "application/json"})
        assert response.status_code in (200, 429), (name, value, response.text)
        assert response.json()["status"] in ("success", "processing", "error"), (name, value, response.text)

    answers_in_the_envelope()
    assert hostile_app.get("/health").json()["worker_alive"] is True
