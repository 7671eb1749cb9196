"""`sdgate pull`: the only code that downloads weights. Hugging Face sources go through huggingface_hub's
cache (resumable, with its own progress bars); plain URLs are streamed into <data>/downloads with a
sha256 check, and a partial or mismatching file is never left where the loader would use it.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import httpx
from huggingface_hub import hf_hub_download, snapshot_download
from tqdm import tqdm

from pipelines.config import IpAdapterEntry, RegistryConfig, SourceEntry
from pipelines.sources import single_file_path, url_download_path

log = logging.getLogger(__name__)

# Only the diffusers folders: many model repos also carry a root single-file checkpoint, fp16 copies,
# .bin / .ckpt / onnx duplicates, several GB each, that the loader never reads.
DIFFUSERS_PATTERNS = ["model_index.json", "*/*.json", "*/*.txt", "*/*.safetensors"]
SKIP_PATTERNS = ["*.fp16.*", "*non_ema*", "*.onnx*"]


class PullError(RuntimeError):
    pass


def download_url(url: str, target: Path, sha256: str | None) -> Path:
    """Stream url to target via target.partial, resuming a partial file with a Range request."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    have = partial.stat().st_size if partial.exists() else 0
    headers = {"Range": f"bytes={have}-"} if have else {}
    with httpx.stream("GET", url, follow_redirects=True, timeout=60, headers=headers) as response:
        if response.status_code == 200:
            have = 0  # the server ignored the Range header: start over
        elif response.status_code != 206:
            raise PullError(f"{url}: HTTP {response.status_code}")
        length = int(response.headers.get("content-length", 0))
        with partial.open("ab" if have else "wb") as out, tqdm(
            total=have + length or None, initial=have, unit="B", unit_scale=True, desc=target.name
        ) as bar:
            for chunk in response.iter_bytes():
                out.write(chunk)
                bar.update(len(chunk))
    digest = _sha256(partial)
    if sha256 and digest != sha256.lower():
        partial.unlink()
        raise PullError(f"{url}: checksum mismatch (expected {sha256}, got {digest})")
    partial.replace(target)
    return target


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def pull_entry(entry_id: str, entry: SourceEntry, data_dir: Path) -> str:
    if entry.path is not None or entry.file is not None:
        local = entry.path if entry.path is not None else entry.file
        if local is None or not local.exists():
            raise PullError(f"{entry_id}: local source {local} does not exist")
        return f"{entry_id}: local"
    if isinstance(entry, IpAdapterEntry) and entry.repo is not None:
        patterns = [f"{entry.subfolder}/{entry.weight}".lstrip("/"), f"{entry.image_encoder}/*"]
        snapshot_download(entry.repo, revision=entry.revision, allow_patterns=patterns)
        return f"{entry_id}: {entry.repo} ({', '.join(patterns)})"
    if entry.repo is not None and entry.filename is not None:
        hf_hub_download(entry.repo, entry.filename, revision=entry.revision)
        return f"{entry_id}: {entry.repo}/{entry.filename}"
    if entry.repo is not None:
        snapshot_download(
            entry.repo, revision=entry.revision, allow_patterns=DIFFUSERS_PATTERNS, ignore_patterns=SKIP_PATTERNS
        )
        return f"{entry_id}: {entry.repo}"
    assert entry.url is not None
    target = url_download_path(data_dir, entry_id, entry.url)
    if target.is_file():
        return f"{entry_id}: already downloaded"
    download_url(entry.url, target, entry.sha256)
    return f"{entry_id}: {target}"


def pull(config: RegistryConfig, data_dir: Path, ids: list[str]) -> int:
    """Fetch the given ids (all models when none are given); returns a process exit code."""
    sections = [config.models, config.loras, config.vaes, config.embeddings, config.ip_adapters]
    everything = {k: v for section in sections for k, v in section.items()}
    wanted = ids or list(config.models)
    failed = 0
    for entry_id in wanted:
        if entry_id not in everything:
            print(f"{entry_id}: not registered in models.yaml")
            failed += 1
            continue
        try:
            print(pull_entry(entry_id, everything[entry_id], data_dir))
        except Exception as exc:  # report every id, then exit non-zero
            print(f"{entry_id}: FAILED: {exc}")
            failed += 1
    return 1 if failed else 0


def _files_size(paths: list[Path]) -> int:
    return sum(p.stat().st_size for p in paths if p.is_file())


def local_status(entry_id: str, entry: SourceEntry, data_dir: Path) -> tuple[bool, int]:
    """(present on this machine, bytes on disk), without any network access."""
    try:
        if entry.path is not None:
            return entry.path.exists(), _files_size(list(entry.path.rglob("*"))) if entry.path.exists() else 0
        if entry.file is not None:
            return entry.file.is_file(), _files_size([entry.file])
        if entry.repo is not None and entry.filename is not None:
            return True, _files_size([single_file_path(entry_id, entry, data_dir)])
        if entry.repo is not None:
            patterns = DIFFUSERS_PATTERNS
            if isinstance(entry, IpAdapterEntry):
                patterns = [f"{entry.subfolder}/{entry.weight}".lstrip("/"), f"{entry.image_encoder}/*"]
            folder = Path(snapshot_download(entry.repo, revision=entry.revision, allow_patterns=patterns,
                                            local_files_only=True))
            return True, _files_size([p.resolve() for p in folder.rglob("*")])
    except (OSError, ValueError):
        return False, 0
    target = single_file_path(entry_id, entry, data_dir)
    return target.is_file(), _files_size([target])


def list_models(config: RegistryConfig, data_dir: Path) -> list[dict[str, object]]:
    """Every registry entry with its kind, family, source and local status (for `sdgate models`)."""
    rows = []
    for kind in ("models", "loras", "vaes", "embeddings", "ip_adapters"):
        for entry_id, entry in getattr(config, kind).items():
            present, size = local_status(entry_id, entry, data_dir)
            source = entry.repo or entry.url or str(entry.path or entry.file)
            rows.append({"id": entry_id, "kind": kind, "family": entry.family, "source": source,
                         "local": present, "bytes": size})
    return rows
