"""TieredCache: which models live on the device, which wait in host RAM, and which go back to disk.

Pure bookkeeping (ids and byte sizes), so the policy is testable without loading anything: the most
recently used models stay on the device within the VRAM budget, the next ones stay in host RAM within
the RAM budget (a switch back from RAM never re-reads disk), the rest are dropped. Pinned models are
never evicted. The registry applies the moves this returns.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Literal

Tier = Literal["device", "host"]


@dataclass(frozen=True)
class Move:
    model_id: str
    to: Literal["host", "disk"]


@dataclass
class TieredCache:
    device_budget: int  # bytes on the accelerator
    host_budget: int  # bytes of host RAM for models parked off the device
    max_on_device: int = 1_000_000
    pinned: frozenset[str] = frozenset()
    device: OrderedDict[str, int] = field(default_factory=OrderedDict)  # least recently used first
    host: OrderedDict[str, int] = field(default_factory=OrderedDict)

    def tier_of(self, model_id: str) -> Tier | None:
        if model_id in self.device:
            return "device"
        if model_id in self.host:
            return "host"
        return None

    def place_on_device(self, model_id: str, size: int) -> list[Move]:
        """Record model_id as in use on the device; return the evictions that keep both budgets."""
        self.host.pop(model_id, None)
        self.device[model_id] = size
        self.device.move_to_end(model_id)
        moves: list[Move] = []
        while self._device_over():
            victim = self._oldest(self.device, keep=model_id)
            if victim is None:
                break  # everything left is pinned or in use: over budget beats failing the job
            self.host[victim] = self.device.pop(victim)
            moves.append(Move(victim, "host"))
        while sum(self.host.values()) > self.host_budget:
            victim = self._oldest(self.host, keep=None)
            if victim is None:
                break
            del self.host[victim]
            moves.append(Move(victim, "disk"))
        return moves

    def forget(self, model_id: str) -> None:
        self.device.pop(model_id, None)
        self.host.pop(model_id, None)

    def _device_over(self) -> bool:
        return sum(self.device.values()) > self.device_budget or len(self.device) > self.max_on_device

    def _oldest(self, tier: OrderedDict[str, int], keep: str | None) -> str | None:
        return next((m for m in tier if m != keep and m not in self.pinned), None)
