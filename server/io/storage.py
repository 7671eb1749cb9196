"""Output storage: where generated files go, their public links, and temp expiry.

`OutputStore` is the interface; `LocalOutputStore` keeps files under <data>/generations and <data>/temp
and the server serves them; `S3OutputStore` (server/storage_s3.py) puts them in S3-compatible storage.

Names follow the hosted API: images `<index>-<uuid>.png`, base64 text `<uuid>-<index>.base64` (docs/API.md).
Only names matching those patterns are ever served, so no request can reach any other file.
"""

from __future__ import annotations

import logging
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

log = logging.getLogger(__name__)

_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
SERVABLE_NAME = re.compile(rf"^(\d+-{_UUID}\.png|{_UUID}-\d+\.base64)$")
AREAS = ("generations", "temp")


@dataclass(frozen=True)
class StoredOutput:
    image_name: str
    base64_name: str | None
    area: str


def png_name(stem: str, index: int) -> str:
    return f"{index}-{stem}.png"


def base64_name(stem: str, index: int) -> str:
    return f"{stem}-{index}.base64"


class OutputStore(Protocol):
    def save(self, stem: str, index: int, png: bytes, b64: str | None, temp: bool) -> StoredOutput: ...

    def url(self, area: str, name: str) -> str: ...

    def read_text(self, area: str, name: str) -> str: ...

    def path_for(self, area: str, name: str) -> Path | None: ...

    def sweep_temp(self, now: float | None = None) -> int: ...


class LocalOutputStore:
    """Writes outputs atomically (temp file + rename) so a link never serves a half-written file."""

    def __init__(self, data_dir: Path, base_url: str, temp_ttl: float) -> None:
        self.root = data_dir
        self.base_url = base_url.rstrip("/")
        self.temp_ttl = temp_ttl
        for area in AREAS:
            (self.root / area).mkdir(parents=True, exist_ok=True)

    def _write(self, area: str, name: str, data: bytes) -> None:
        final = self.root / area / name
        partial = final.with_name(f".{name}.partial")
        partial.write_bytes(data)
        os.replace(partial, final)

    def save(self, stem: str, index: int, png: bytes, b64: str | None, temp: bool) -> StoredOutput:
        area = "temp" if temp else "generations"
        image = png_name(stem, index)
        self._write(area, image, png)
        text_name = None
        if b64 is not None:
            text_name = base64_name(stem, index)
            self._write(area, text_name, b64.encode("ascii"))
        return StoredOutput(image, text_name, area)

    def url(self, area: str, name: str) -> str:
        return f"{self.base_url}/{area}/{name}"

    def read_text(self, area: str, name: str) -> str:
        return (self.root / area / name).read_text()

    def path_for(self, area: str, name: str) -> Path | None:
        """The file behind a public link, or None if it is not ours, does not exist, or has expired."""
        if area not in AREAS or not SERVABLE_NAME.match(name):
            return None
        path = self.root / area / name
        if not path.is_file():
            return None
        if area == "temp" and time.time() - path.stat().st_mtime > self.temp_ttl:
            return None
        return path

    def sweep_temp(self, now: float | None = None) -> int:
        """Delete temp files older than the TTL; returns how many went."""
        now = time.time() if now is None else now
        removed = 0
        for path in (self.root / "temp").iterdir():
            try:
                if now - path.stat().st_mtime > self.temp_ttl:
                    path.unlink()
                    removed += 1
            except FileNotFoundError:
                continue
        if removed:
            log.info("temp sweep removed %d files", removed)
        return removed

