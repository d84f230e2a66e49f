"""Matrix-free (Lanczos) pullback spectrum vs the dense Gram-trick path: time, peak memory, eigenvalue error.

Run with ``python -m pytest tests/benchmarks/test_bench_spectral_large.py --benchmark-only -s``.

Peak memory is the peak resident set size (``resource.getrusage(RUSAGE_SELF).ru_maxrss``) of a fresh
Python process per method: torch allocates its tensors outside Python's allocator, so ``tracemalloc``
sees none of them, and a process's ru_maxrss only ever grows, so each method needs its own process.
The RSS of a process that only imports torch and builds the model and data (``baseline``) is
measured the same way; the numbers reported are peaks above it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

from latentbench.plugins._common.spectral import pullback_spectrum
from latentbench.plugins._common.spectral_matfree import matfree_spectrum
from tests.benchmarks._versus import versus
from tests.benchmarks.test_bench_metrics import ConvEncoderVAE, MLPEncoderVAE

ROOT = Path(__file__).resolve().parents[2]


def _setup(case: str, batch: int):
    torch.manual_seed(0)
    if case == "mlp32":
        return MLPEncoderVAE(input_shape=(1, 32, 32)).eval(), torch.rand(batch, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    return ConvEncoderVAE().eval(), torch.rand(batch, 3, 64, 64, generator=torch.Generator().manual_seed(0))


def _run(method: str, model, x):
    if method == "matfree":
        return matfree_spectrum(model, x, chunk_size=x.shape[0]).eigenvalues
    return pullback_spectrum(model, x, chunk_size=x.shape[0]).eigenvalues


def measure(case: str, method: str, batch: int) -> None:
    """Entry point of the child process: prints {"maxrss_mib": ...} for one method (or the baseline)."""
    import resource

    torch.set_num_threads(1)
    model, x = _setup(case, batch)
    if method != "baseline":
        _run(method, model, x)
    print(json.dumps({"maxrss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def peak_rss_mib(case: str, method: str, batch: int) -> float:
    code = f"from tests.benchmarks.test_bench_spectral_large import measure; measure({case!r}, {method!r}, {batch})"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["maxrss_mib"]


def test_bench_matfree_vs_dense_32x32(benchmark):
    batch = 8
    model, x = _setup("mlp32", batch)
    cmp = versus(benchmark, lambda: _run("matfree", model, x), lambda: _run("dense", model, x), rounds=3)
    dense, mf = _run("dense", model, x), _run("matfree", model, x)
    r = dense.shape[1]
    rel_err = float(((mf[:, :r] - dense) / dense[:, :1]).abs().max())
    # memory at a whole chunk (64 samples, the metrics' default chunk_size); the increments are
    # floored at 1 MiB, the resolution of a comparison of two processes' peaks
    rss_batch = 64
    base = peak_rss_mib("mlp32", "baseline", rss_batch)
    rss = {m: max(peak_rss_mib("mlp32", m, rss_batch) - base, 1.0) for m in ("dense", "matfree")}
    benchmark.extra_info.update({"input": "1x32x32", "latent_dim": 32, "batch": batch, "time_ratio_matfree_over_dense":
                                 1 / cmp.speedup, "rss_batch": rss_batch, "baseline_rss_mib": base,
                                 "peak_rss_above_baseline_mib": rss,
                                 "peak_rss_ratio_matfree_over_dense": rss["matfree"] / rss["dense"],
                                 "eigenvalue_max_rel_error": rel_err})
    print(f"\n1x32x32 MLP, d=32 (64 eigenvalues): time matfree/dense {1 / cmp.speedup:.2f}x (batch {batch}); "
          f"peak RSS above baseline ({base:.0f} MiB), batch {rss_batch}: dense {rss['dense']:.0f} MiB, matfree "
          f"{rss['matfree']:.0f} MiB (ratio {rss['matfree'] / rss['dense']:.2f}); max eigenvalue error "
          f"{rel_err:.1e} of lambda_max")
    # float32: the Lanczos basis spans all 64 rows, so the spectrum is the dense one to round-off
    assert rel_err < 1e-5


def test_bench_matfree_3x64x64_bounded_memory(benchmark):
    batch = 16
    base = peak_rss_mib("conv64", "baseline", batch)
    rss = benchmark.pedantic(lambda: peak_rss_mib("conv64", "matfree", batch) - base, rounds=1, iterations=1)
    dense = peak_rss_mib("conv64", "dense", batch) - base
    benchmark.extra_info.update({"input": "3x64x64", "latent_dim": 32, "batch": batch, "baseline_rss_mib": base,
                                 "matfree_peak_rss_above_baseline_mib": rss, "dense_peak_rss_above_baseline_mib": dense})
    print(f"\n3x64x64 conv, d=32, batch {batch}: peak RSS above baseline ({base:.0f} MiB) matfree {rss:.0f} MiB, "
          f"dense {dense:.0f} MiB")
    # the Krylov basis (16 x 64 x 12288 float32 = 48 MiB) plus one forward graph: bounded well below the dense path
    assert rss < dense / 2
