"""Discrete-event simulation of N GPUs serving M models, to compare routing policies before building them.

    .venv/bin/python scripts/simulate_fleet.py                 # the table in docs/SCALING.md
    .venv/bin/python scripts/simulate_fleet.py --gpus 10 100 --minutes 5

Each GPU keeps up to K models resident (LRU) and runs one job at a time (FIFO). Jobs arrive as a Poisson
process at a target utilisation; model popularity is Zipf-skewed. A job on a GPU without its model first
pays the load time. Policies:
  random          any GPU
  least-loaded    the GPU with the shortest queue
  affinity        the least-loaded GPU that already holds the model, unless its queue is `spill` jobs
                  longer than the least-loaded GPU's, in which case the least-loaded GPU (a cold load)
Written here (no simulation library) because it is a 150-line heap loop and must run anywhere CI runs.
"""

from __future__ import annotations

import argparse
import heapq
import json
import random
import statistics
from collections import OrderedDict
from dataclasses import dataclass, field

POLICIES = ("random", "least-loaded", "affinity")


@dataclass
class Fleet:
    """Defaults are GPU-realistic for SD1.5 512² on a datacentre card (BENCHMARKS.md)."""

    gpus: int = 10
    models: int = 50
    resident: int = 3  # models a GPU keeps loaded (K)
    generate_s: float = 0.6  # one img2img request, fast path
    load_s: float = 4.0  # model switch from disk (safetensors, warm page cache, to GPU)
    utilisation: float = 0.7  # offered load / capacity without any loads
    zipf: float = 1.1
    spill: int = 3
    minutes: float = 10.0
    seed: int = 0


@dataclass
class Gpu:
    loaded: OrderedDict[int, None] = field(default_factory=OrderedDict)
    busy_until: float = 0.0
    queue: int = 0  # jobs assigned and not finished
    busy_s: float = 0.0


def _popularity(fleet: Fleet, rng: random.Random) -> list[float]:
    weights = [1 / (rank + 1) ** fleet.zipf for rank in range(fleet.models)]
    rng.shuffle(weights)
    total = sum(weights)
    return [w / total for w in weights]


def _route(policy: str, gpus: list[Gpu], model: int, fleet: Fleet, rng: random.Random) -> int:
    if policy == "random":
        return rng.randrange(len(gpus))
    least = min(range(len(gpus)), key=lambda i: (gpus[i].queue, rng.random()))
    if policy == "least-loaded":
        return least
    holders = [i for i, gpu in enumerate(gpus) if model in gpu.loaded]
    if holders:
        best = min(holders, key=lambda i: (gpus[i].queue, rng.random()))
        if gpus[best].queue - gpus[least].queue < fleet.spill:
            return best
    return least


def simulate(fleet: Fleet, policy: str) -> dict[str, float]:
    rng = random.Random(fleet.seed)  # arrivals and models: the same stream for every policy
    routing = random.Random(fleet.seed + 1)  # tie-breaks and random routing draw from their own stream
    popularity = _popularity(fleet, rng)
    rate = fleet.utilisation * fleet.gpus / fleet.generate_s  # jobs per second
    horizon = fleet.minutes * 60
    gpus = [Gpu() for _ in range(fleet.gpus)]
    events: list[tuple[float, int, str, int]] = []  # (time, sequence, kind, gpu)
    latencies: list[float] = []
    loads = sequence = 0
    clock = 0.0
    while True:
        clock += rng.expovariate(rate)
        if clock > horizon:
            break
        # Finish the jobs that ended before this arrival, so queue lengths are current when routing.
        while events and events[0][0] <= clock:
            _, _, _, index = heapq.heappop(events)
            gpus[index].queue -= 1
        model = rng.choices(range(fleet.models), popularity)[0]
        index = _route(policy, gpus, model, fleet, routing)
        gpu = gpus[index]
        start = max(clock, gpu.busy_until)
        service = fleet.generate_s
        if model in gpu.loaded:
            gpu.loaded.move_to_end(model)
        else:
            loads += 1
            service += fleet.load_s
            gpu.loaded[model] = None
            if len(gpu.loaded) > fleet.resident:
                gpu.loaded.popitem(last=False)
        gpu.busy_until = start + service
        gpu.busy_s += service
        gpu.queue += 1
        latencies.append(gpu.busy_until - clock)
        sequence += 1
        heapq.heappush(events, (gpu.busy_until, sequence, "done", index))
    latencies.sort()
    end = max(horizon, max(g.busy_until for g in gpus))
    return {
        "jobs": len(latencies),
        "p50_s": round(statistics.median(latencies), 2),
        "p95_s": round(latencies[int(0.95 * (len(latencies) - 1))], 2),
        "cold_loads_per_gpu_hour": round(loads / fleet.gpus / (horizon / 3600), 1),
        "gpu_busy": round(sum(g.busy_s for g in gpus) / (fleet.gpus * end), 3),
        "loading_share_of_busy": round(loads * fleet.load_s / max(1e-9, sum(g.busy_s for g in gpus)), 3),
    }


def table(gpu_counts: list[int], base: Fleet) -> list[dict[str, object]]:
    rows = []
    for gpus in gpu_counts:
        # Bigger fleets serve more models; the simulated time shrinks so every row runs in seconds.
        fleet = Fleet(**{**base.__dict__, "gpus": gpus, "models": max(base.models, gpus * 2),
                         "minutes": min(base.minutes, max(1.0, 600 / gpus))})
        for policy in POLICIES:
            rows.append({"gpus": gpus, "models": fleet.models, "policy": policy, **simulate(fleet, policy)})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gpus", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--json", action="store_true", help="print JSON rows instead of a table")
    for name in ("models", "resident", "spill", "seed"):
        parser.add_argument(f"--{name}", type=int, default=getattr(Fleet, name))
    for name in ("generate_s", "load_s", "utilisation", "zipf"):
        parser.add_argument(f"--{name.replace('_', '-')}", dest=name, type=float, default=getattr(Fleet, name))
    args = parser.parse_args()
    base = Fleet(models=args.models, resident=args.resident, generate_s=args.generate_s, load_s=args.load_s,
                 utilisation=args.utilisation, zipf=args.zipf, spill=args.spill, minutes=args.minutes, seed=args.seed)
    rows = table(args.gpus, base)
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print("| GPUs | models | policy | p50 s | p95 s | cold loads / GPU-hour | GPU busy | of which loading |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['gpus']} | {r['models']} | {r['policy']} | {r['p50_s']} | {r['p95_s']} | "
              f"{r['cold_loads_per_gpu_hour']} | {r['gpu_busy']} | {r['loading_share_of_busy']} |")


if __name__ == "__main__":
    main()
