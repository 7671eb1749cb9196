"""S3OutputStore: generated files in S3-compatible storage (AWS S3, MinIO, R2, ...), through boto3.

Links are either `<public base>/<key>` (a public bucket or a CDN in front of it) or presigned GET URLs;
temp=yes files get presigned links that expire with the temp TTL. Keys mirror the local layout,
`<prefix>generations/<name>` and `<prefix>temp/<name>`, so links keep the hosted API's naming.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import boto3

from server.io.storage import StoredOutput, base64_name, png_name

# SigV4 presigned URLs live at most 7 days.
MAX_PRESIGN_SECONDS = 7 * 24 * 3600


class S3OutputStore:
    def __init__(self, bucket: str, prefix: str = "", endpoint_url: str | None = None, region: str | None = None,
                 public_url: str | None = None, temp_ttl: float = 24 * 3600, client: Any = None) -> None:
        self.bucket = bucket
        self.prefix = prefix
        self.public_url = public_url.rstrip("/") if public_url else None
        self.temp_ttl = temp_ttl
        self.client = client or boto3.client("s3", endpoint_url=endpoint_url, region_name=region)

    def _key(self, area: str, name: str) -> str:
        return f"{self.prefix}{area}/{name}"

    def save(self, stem: str, index: int, png: bytes, b64: str | None, temp: bool) -> StoredOutput:
        area = "temp" if temp else "generations"
        image = png_name(stem, index)
        self.client.put_object(Bucket=self.bucket, Key=self._key(area, image), Body=png, ContentType="image/png")
        text_name = None
        if b64 is not None:
            text_name = base64_name(stem, index)
            self.client.put_object(Bucket=self.bucket, Key=self._key(area, text_name), Body=b64.encode("ascii"),
                                   ContentType="text/plain")
        return StoredOutput(image, text_name, area)

    def url(self, area: str, name: str) -> str:
        if self.public_url and area != "temp":
            return f"{self.public_url}/{self._key(area, name)}"
        expires = int(self.temp_ttl) if area == "temp" else MAX_PRESIGN_SECONDS
        return self.client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": self._key(area, name)},
            ExpiresIn=min(expires, MAX_PRESIGN_SECONDS),
        )

    def read_text(self, area: str, name: str) -> str:
        return self.client.get_object(Bucket=self.bucket, Key=self._key(area, name))["Body"].read().decode("ascii")

    def path_for(self, area: str, name: str) -> Path | None:
        return None  # never served by sdgate: links point at the bucket

    def sweep_temp(self, now: float | None = None) -> int:
        """Delete temp objects older than the TTL (a bucket lifecycle rule does the same without us)."""
        now = time.time() if now is None else now
        removed = 0
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self._key("temp", ""))
        for page in pages:
            for item in page.get("Contents", []):
                if now - item["LastModified"].timestamp() > self.temp_ttl:
                    self.client.delete_object(Bucket=self.bucket, Key=item["Key"])
                    removed += 1
        return removed
