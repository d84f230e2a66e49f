"""Provenance recorded with every result: package versions, hardware, seed."""

from __future__ import annotations

import platform
from functools import lru_cache
from typing import Any

import torch

from latentbench import __version__


@lru_cache(maxsize=None)
def _machine(device: str) -> dict[str, Any]:
    hw: dict[str, Any] = {"machine": platform.machine(), "processor": platform.processor() or platform.machine(),
                          "cpu_count": __import__("os").cpu_count(), "device": device}
    if device.startswith("cuda") and torch.cuda.is_available():
        hw["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return hw


def _hardware(device: str) -> dict[str, Any]:
    # the thread count is read at each call, not cached with the machine: `leaderboard verify` and Ray
    # workers change it within a process, and float sums (so the numbers) depend on it
    hw = dict(_machine(device))
    hw["torch_threads"] = torch.get_num_threads()
    return hw


def provenance(seed: int | None = None, device: str = "cpu", **extra: Any) -> dict[str, Any]:
    return {
        "latentbench_version": __version__,
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        "platform": platform.platform(),
        "hardware": _hardware(str(device)),
        "seed": seed,
        **extra,
    }
