"""Outputs in S3-compatible storage, against moto's S3 server on loopback."""

from __future__ import annotations

import base64
import io
import json
import time
from pathlib import Path

import boto3
import httpx
import pytest
from PIL import Image

from server.io.storage_s3 import S3OutputStore
from tests.integration.test_img2img_api import app_client

API = "/api/v6/images/img2img"


def test_outputs_go_to_the_bucket_with_presigned_links(tiny_dir: Path, tmp_path: Path, body: dict,
                                                       s3_endpoint: str, bucket: str) -> None:
    with app_client(tiny_dir, tmp_path, storage="s3", s3_bucket=bucket, s3_prefix="sdgate/",
                    s3_endpoint_url=s3_endpoint) as app:
        answer = app.post(API, json={**body, "samples": 2}).json()
        assert answer["status"] == "success", answer
        for index, url in enumerate(answer["output"]):
            assert url.startswith(f"{s3_endpoint}/{bucket}/sdgate/generations/{index}-") and "Signature" in url
            image = httpx.get(url)
            assert image.status_code == 200 and Image.open(io.BytesIO(image.content)).size == (32, 32)
        inline = app.post(API, json={**body, "base64": "yes"}).json()
        text = httpx.get(inline["output"][0]).text
        assert Image.open(io.BytesIO(base64.b64decode(text))).size == (32, 32)
        # The server does not serve these names itself.
        assert app.get("/generations/" + answer["output"][0].split("/")[-1].split("?")[0]).status_code == 404


def test_public_base_url_and_temp_expiry(tiny_dir: Path, tmp_path: Path, body: dict, s3_endpoint: str,
                                         bucket: str) -> None:
    public = f"{s3_endpoint}/{bucket}"
    # A public bucket (or a CDN in front of it) is the operator's set-up; here, a read-only policy.
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                                                       "Resource": f"arn:aws:s3:::{bucket}/generations/*"}]}
    boto3.client("s3", endpoint_url=s3_endpoint).put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
    with app_client(tiny_dir, tmp_path, storage="s3", s3_bucket=bucket, s3_endpoint_url=s3_endpoint,
                    s3_public_url=public, temp_ttl=60) as app:
        kept = app.post(API, json=body).json()
        assert kept["output"][0].startswith(f"{public}/generations/") and "Signature" not in kept["output"][0]
        assert httpx.get(kept["output"][0]).status_code == 200
        temp = app.post(API, json={**body, "temp": "yes"}).json()
        link = httpx.URL(temp["output"][0])
        assert "/temp/" in link.path
        expires = link.params.get("Expires") or link.params.get("X-Amz-Expires")
        # An absolute time (SigV2 style) or a duration (SigV4): either way, the temp TTL.
        assert abs(int(expires) - time.time() - 60) < 10 if int(expires) > 10**9 else int(expires) == 60
        store: S3OutputStore = app.app.state.sdgate.store
        assert store.sweep_temp() == 0
        assert store.sweep_temp(now=time.time() + 120) == 1
        assert httpx.get(temp["output"][0]).status_code == 404
        assert httpx.get(kept["output"][0]).status_code == 200


def test_s3_without_a_bucket_stops_start_up(tiny_dir: Path, tmp_path: Path) -> None:
    from pipelines.config import ConfigError

    with pytest.raises(ConfigError, match="SDGATE_S3_BUCKET"):
        with app_client(tiny_dir, tmp_path, storage="s3"):
            pass
