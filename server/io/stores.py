"""The output store a server's settings ask for: local files, or S3-compatible object storage."""

from __future__ import annotations

from server.io.storage import LocalOutputStore, OutputStore
from server.ops.settings import Settings


def make_store(settings: Settings) -> OutputStore:
    if settings.storage == "s3":
        from server.io.storage_s3 import S3OutputStore  # boto3 is only needed for this backend

        assert settings.s3_bucket is not None  # validate_startup checked it
        return S3OutputStore(settings.s3_bucket, settings.s3_prefix, settings.s3_endpoint_url, settings.s3_region,
                             settings.s3_public_url, settings.temp_ttl)
    return LocalOutputStore(settings.data_dir, settings.base_url(), settings.temp_ttl)
