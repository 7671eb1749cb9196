"""`sdgate bench --quick` runs its CPU suite end to end and its output parses."""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path

from tests.conftest import sdgate_command

KEYS = ("generation_s", "http_over_direct", "ram_switch_over_generation", "disk_switch_over_generation",
        "lora_cached_switch_over_generation", "batching_throughput_on_over_off", "codec_share_of_request",
        "realtime_over_ordinary_text2img")


def test_quick_cpu_bench_runs_and_parses(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    result = subprocess.run([sdgate_command(), "bench", "--quick", "--no-gpu", "--out", str(out)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    figures = json.loads(out.read_text())
    for key in KEYS:
        # Well-formed, never a timing bound: a busy machine may round a tiny share to 0.
        assert isinstance(figures[key], float) and math.isfinite(figures[key]) and figures[key] >= 0, key
        assert key in result.stdout
    assert "<= 1.05" in result.stdout and figures["machine"]
