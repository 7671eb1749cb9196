"""The fleet simulation is deterministic for a seed, and model affinity cuts cold loads as it should."""

import importlib.util
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "simulate_fleet.py"
spec = importlib.util.spec_from_file_location("simulate_fleet", SCRIPT)
assert spec is not None and spec.loader is not None
simulate_fleet = importlib.util.module_from_spec(spec)
sys.modules["simulate_fleet"] = simulate_fleet  # dataclasses look their module up while the script runs
spec.loader.exec_module(simulate_fleet)


def test_affinity_beats_random_and_runs_are_reproducible() -> None:
    fleet = simulate_fleet.Fleet(gpus=6, models=12, resident=3, minutes=3, utilisation=0.5)
    random_run = simulate_fleet.simulate(fleet, "random")
    affinity = simulate_fleet.simulate(fleet, "affinity")
    assert affinity["cold_loads_per_gpu_hour"] < random_run["cold_loads_per_gpu_hour"] / 2
    assert affinity["p95_s"] < random_run["p95_s"]
    assert simulate_fleet.simulate(fleet, "affinity") == affinity
    assert random_run["jobs"] == affinity["jobs"] > 0  # the same arrivals for every policy


def test_a_fleet_with_every_model_resident_never_loads_after_warm_up() -> None:
    fleet = simulate_fleet.Fleet(gpus=4, models=2, resident=2, minutes=5, utilisation=0.5)
    result = simulate_fleet.simulate(fleet, "affinity")
    assert result["cold_loads_per_gpu_hour"] <= 2 * 4 / 4 * 12  # at most each model once per GPU in 5 minutes
    assert result["p50_s"] < fleet.generate_s * 3
