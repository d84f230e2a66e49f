"""Spectral radius and von Neumann entropy of the encoder's pullback metric (Khan & Storkey §3.2,
App. B; docs/methods.md §3 ``spectral_radius``, ``vn_entropy``).

Both metrics take ``curved`` in their config: False uses the flat latent metric G_z = I (Khan &
Storkey eq. 4, the paper's main results), True the decoder-curved G_z = J_g^T J_g of App. B. We
chose one config flag over separate ``decoder_curved_*`` names so one plugin owns each score; the
flag is part of the result's config and of its value names (``spectral_radius`` vs
``curved_spectral_radius``).
The eigenvalues come from :func:`latentbench.plugins._common.spectral.pullback_spectrum` (Gram trick, never the
N x N matrix) or, for large inputs, from
:func:`latentbench.plugins._common.spectral_matfree.matfree_spectrum` (Lanczos on Jacobian-vector
products, never the 2d x N Jacobian): config ``method`` (``dense``, ``matfree``, ``auto``). ``auto``
takes the matrix-free path above ``AUTO_MATFREE_ABOVE`` = 4096 input elements: the built-in
protocols (1x28x28, 1x32x32, up to 64x64 grey) keep the dense path, which is exact and several
times faster on CPU, and 3x64x64 colour inputs (12288) go matrix-free, where ``vmap(jacrev)`` holds 2d
copies of every activation per sample (docs/methods.md §3 "matrix-free spectrum" has the
measurements). Every result records the method used and, for ``matfree``, its Lanczos steps, probes,
and error bounds in ``info``.

Leaderboard directions: a small spectral radius means no input direction moves the latent code
much, so lower is more robust. The von Neumann entropy under ``trace`` normalisation is largest for
an isotropic spectrum (no weak direction stands out), so higher is more robust; under ``max``
normalisation an isotropic spectrum scores 0, Khan & Storkey §3.2's "low S = robust", so lower is.
The two normalisations order models differently, so they never share a column (docs/methods.md §3
``vn_entropy``). Every value is >= 0 (eigenvalues of a Gram matrix, entropies of p in [0, 1]).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import torch

from latentbench.metric import LeaderboardValue, Metric, MetricConfig, MetricContext, MetricResult
from latentbench.plugins._common.spectral import pullback_spectrum, von_neumann_entropy
from latentbench.plugins._common.spectral_matfree import DEFAULT_PROBES, MatfreeSpectrum, matfree_spectrum
from latentbench.plugins.metrics._summary import as_numpy, describe

NORMALIZATIONS = ("trace", "max")
METHODS = ("auto", "dense", "matfree")
#: ``auto`` goes matrix-free above this many input elements (module docstring)
AUTO_MATFREE_ABOVE = 4096


@dataclass
class SpectralConfig(MetricConfig):
    #: decoder-curved metric of Khan & Storkey App. B instead of the flat latent
    curved: bool = False
    #: samples per Jacobian chunk (bounds memory: chunk * 2d * N floats)
    chunk_size: Optional[int] = 64
    #: histogram bins stored in the result
    bins: int = 30
    #: ``dense`` (Gram trick), ``matfree`` (Lanczos), ``auto``: matfree above AUTO_MATFREE_ABOVE input elements
    method: str = "auto"
    #: matfree: Lanczos steps (None: rank bound + 1, at most 128: exact below rank 128)
    lanczos_steps: Optional[int] = None
    #: matfree: Hutchinson probes for the trace outside the Krylov basis (entropy estimator)
    trace_probes: int = DEFAULT_PROBES

    def validate(self) -> None:
        if self.chunk_size is not None and self.chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1 or None, got {self.chunk_size}")
        if self.bins < 0:
            raise ValueError(f"bins must be >= 0, got {self.bins}")
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, got '{self.method}'")
        if self.lanczos_steps is not None and self.lanczos_steps < 1:
            raise ValueError(f"lanczos_steps must be >= 1 or None (rank + 1), got {self.lanczos_steps}")
        if self.trace_probes < 0:
            raise ValueError(f"trace_probes must be >= 0, got {self.trace_probes}")


@dataclass
class SpectralRadiusConfig(SpectralConfig):
    pass


@dataclass
class VNEntropyConfig(SpectralConfig):
    #: ``trace``: p = lambda / sum lambda (von Neumann entropy, the default); ``max``: lambda / max
    #: lambda as in the paper's figures
    normalization: str = "trace"

    def validate(self) -> None:
        super().validate()
        if self.normalization not in NORMALIZATIONS:
            raise ValueError(f"normalization must be one of {', '.join(NORMALIZATIONS)}, got '{self.normalization}'")


def resolved_method(cfg: SpectralConfig, input_numel: int) -> str:
    if cfg.method != "auto":
        return cfg.method
    return "matfree" if input_numel > AUTO_MATFREE_ABOVE else "dense"


def _spectrum(ctx: MetricContext, cfg: SpectralConfig):
    # spectral_radius and vn_entropy of one model need the same spectrum: the runner shares ctx.extra
    # between a model's cells, so the Jacobians are computed once for both
    method = resolved_method(cfg, ctx.x[0].numel())
    params = (cfg.lanczos_steps, cfg.trace_probes, ctx.seed) if method == "matfree" else ()
    key = ("pullback_spectrum", cfg.curved, tuple(ctx.x.shape), method, params)
    if key not in ctx.extra:
        x = ctx.x.to(ctx.device)
        if method == "matfree":
            ctx.extra[key] = matfree_spectrum(ctx.model, x, curved=cfg.curved, steps=cfg.lanczos_steps,
                                              probes=cfg.trace_probes, chunk_size=cfg.chunk_size, seed=ctx.seed)
        else:
            ctx.extra[key] = pullback_spectrum(ctx.model, x, curved=cfg.curved, chunk_size=cfg.chunk_size)
    return ctx.extra[key]


def _method_info(sp) -> dict:
    """How the spectrum was computed, for the result's info (provenance of the numbers)."""
    if not isinstance(sp, MatfreeSpectrum):
        return {"method": "dense", "rank_bound": int(sp.eigenvalues.shape[1])}
    h = sp.converged()
    return {"method": "matfree", "rank_bound": sp.rank_bound, "lanczos_steps": sp.steps, "trace_probes": sp.probes,
            "lanczos_space": sp.side, "converged_eigenvalues_min": int(h.min()),
            "spectral_radius_residual_max": float(sp.residuals[:, 0].max())}


def _result(key: str, per_sample: torch.Tensor, cfg: SpectralConfig, sp, extra_info: dict) -> MetricResult:
    values, info = describe(key, per_sample, cfg.bins)
    info.update({"stochastic_metric": sp.stochastic, "curved": sp.curved, "n_samples": int(per_sample.shape[0]),
                 **_method_info(sp), **extra_info})
    return MetricResult(values=values, per_sample={key: as_numpy(per_sample)}, info=info)


class SpectralRadius(Metric):
    """Largest eigenvalue of G_x per sample (Khan & Storkey eq. 8); lower is more robust."""

    name = "spectral_radius"
    config_class = SpectralRadiusConfig
    needs = frozenset({"model", "data"})
    source = "Khan & Storkey §3.2 eq. 8 (decoder-curved: App. B eq. 11)"
    leaderboard = (
        LeaderboardValue("spectral_radius_mean", "spectral radius", better="lower", range=(0.0, math.inf)),
        LeaderboardValue("curved_spectral_radius_mean", "curved spectral radius", better="lower",
                         range=(0.0, math.inf)),
        LeaderboardValue("*_std", range=(0.0, math.inf)),
    )

    def compute(self, ctx: MetricContext) -> MetricResult:
        sp = _spectrum(ctx, self.config)
        key = "curved_spectral_radius" if self.config.curved else "spectral_radius"
        return _result(key, sp.spectral_radius, self.config, sp, {})


class VNEntropy(Metric):
    """Von Neumann entropy -sum p log p of the eigenvalues of G_x per sample (Khan & Storkey §3.2)."""

    name = "vn_entropy"
    config_class = VNEntropyConfig
    needs = frozenset({"model", "data"})
    source = "Khan & Storkey §3.2 (decoder-curved: App. B eq. 11)"
    # the direction depends on the normalisation (module docstring): one declaration per normalisation
    leaderboard = (
        LeaderboardValue("vn_entropy_mean", "VN entropy", better="higher", range=(0.0, math.inf),
                         when={"normalization": "trace"}),
        LeaderboardValue("curved_vn_entropy_mean", "curved VN entropy", better="higher", range=(0.0, math.inf),
                         when={"normalization": "trace"}),
        # max-normalised: 0 for an isotropic spectrum and for a rank-1 one alike, so no direction is
        # more robust (docs/methods.md, vn_entropy)
        LeaderboardValue("vn_entropy_mean", "VN entropy (max-normalised)", range=(0.0, math.inf),
                         when={"normalization": "max"}),
        LeaderboardValue("curved_vn_entropy_mean", "curved VN entropy (max-normalised)",
                         range=(0.0, math.inf), when={"normalization": "max"}),
        LeaderboardValue("*_std", range=(0.0, math.inf)),
    )

    def compute(self, ctx: MetricContext) -> MetricResult:
        sp = _spectrum(ctx, self.config)
        extra = {"normalization": self.config.normalization}
        if isinstance(sp, MatfreeSpectrum):  # an estimate: its stated error bound goes with it
            s, err = sp.entropy(self.config.normalization)
            extra.update({"entropy_error_bound_max": float(err.max()), "entropy_error_bound_mean": float(err.mean())})
        else:
            s = von_neumann_entropy(sp.eigenvalues, self.config.normalization)
        key = "curved_vn_entropy" if self.config.curved else "vn_entropy"
        return _result(key, s, self.config, sp, extra)
