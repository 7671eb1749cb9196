"""Where a registered source's files are on this machine. No torch or diffusers here: the CLI's `models`
and `pull` commands use it before anything heavy is imported."""

from __future__ import annotations

from pathlib import Path

from huggingface_hub import hf_hub_download

from pipelines.config import SourceEntry


def downloads_dir(data_dir: Path) -> Path:
    """Where `sdgate pull` puts plain-URL downloads (Hugging Face files live in the HF cache)."""
    return data_dir / "downloads"


def url_download_path(data_dir: Path, entry_id: str, url: str) -> Path:
    return downloads_dir(data_dir) / entry_id / url.rsplit("/", 1)[-1]


def single_file_path(entry_id: str, entry: SourceEntry, data_dir: Path) -> Path:
    """Where a single-file source (model, LoRA, VAE, embedding) is on this machine; existence not checked.

    A Hugging Face file not in the local cache raises (OSError / LocalEntryNotFoundError): nothing downloads.
    """
    if entry.file is not None:
        return entry.file
    if entry.repo is not None and entry.filename is not None:
        return Path(hf_hub_download(entry.repo, entry.filename, revision=entry.revision, local_files_only=True))
    if entry.url is not None:
        return url_download_path(data_dir, entry_id, entry.url)
    raise ValueError(f"{entry_id}: expected a file, a repo with a filename, or a url source")
