"""Subject vs reference timing that holds on a noisy shared machine.

pytest-benchmark times the subject (so ``--benchmark-autosave`` / ``--benchmark-compare-fail`` see it);
the reference runs in the benchmark's ``setup`` hook, i.e. right before every subject round,
including the warm-up rounds. Both sides are therefore warm, interleaved round by round, and slowed
alike by whatever else the machine is doing; the comparison is the ratio of the medians.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Any, Callable


@dataclass
class Versus:
    subject_s: float
    reference_s: float
    rounds: int

    @property
    def speedup(self) -> float:
        """reference median / subject median: > 1 when the subject is faster."""
        return self.reference_s / self.subject_s


def versus(benchmark, subject: Callable[[], Any], reference: Callable[[], Any], *, rounds: int = 5,
           warmup_rounds: int = 1) -> Versus:
    ref_times: list[float] = []

    def setup() -> None:
        t0 = time.perf_counter()
        reference()
        ref_times.append(time.perf_counter() - t0)

    benchmark.pedantic(subject, setup=setup, rounds=rounds, warmup_rounds=warmup_rounds, iterations=1)
    ref = statistics.median(ref_times[warmup_rounds:])
    out = Versus(benchmark.stats.stats.median, ref, rounds)
    benchmark.extra_info.update({"reference_median_s": ref, "subject_median_s": out.subject_s,
                                 "speedup_vs_reference": out.speedup, "rounds": rounds})
    return out
