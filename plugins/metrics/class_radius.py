"""Class radius E_{z ~ N(0, I)} r(z) of a decoder / generator (Manoj Def. 2.5; docs/methods.md §3
``class_radius``).

r(z) is the distance from z to the nearest z' whose decoded image gets another class than g(z)
from a classifier c. Every point z' with c(g(z')) != c(g(z)) bounds r(z) from above, so the
estimate is the smaller of two such bounds:

(a) a minimal-norm gradient attack in latent space: multi-class DeepFool (Moosavi-Dezfooli et al.
    2016) on the classifier logits of g(z), which steps to the nearest linearised class boundary
    and is exact in one step when logits are affine in z; the point it finds is then pulled back
    to the first class change along the segment from z by the bisection of (b);
(b) bisection along ``directions`` random unit directions: a scan at ``scan_points`` equally spaced
    radii up to ``search_radius`` brackets the first class change along each ray, then
    ``bisection_steps`` halvings narrow it; the end of the bracket with the other class is used, so
    the reported value is never below a true boundary point's distance by more than round-off.

What the estimate bounds. Per sample the estimator returns r^(z) = min(r_found(z), R), R =
``search_radius``, where r_found(z) is the distance to the nearest class change it found (inf if
none). Every found point is a true class change, so an uncensored term r_found(z) >= r(z) is an
UPPER bound of r(z) (up to the bisection's tolerance). A censored term (no change found within R)
counts at R; it is a LOWER bound only of r_found(z), not of r(z): a boundary the random directions
missed can lie closer than R. Hence the reported mean estimates E min(r_found, R), which is
>= E min(r, R) (the class radius truncated at R) and, when censoring occurs, <= E r_found. Without
censoring it is an upper bound of the class radius E r(z) (up to Monte Carlo error, see
``class_radius_se``); with censoring it is neither an upper nor a lower bound of E r(z), and
``censored_fraction`` says how much of it rests on R.

Classifier: a callable given to the constructor (``ClassRadius(classifier=f)``), else the
nearest-mode rule for ``grid2d`` (Manoj footnote 5; as logits -||x - m_k||^2, whose argmax is the
nearest mode), else ``ctx.classifier()`` (the harness's per-dataset classifier). A callable may
return logits (B, K) or integer labels (B,); with labels only, (a) is skipped (no gradient), and
only (b) searches: the nearest boundary is then found only along the random directions, so the
radius comes out too large. For one flat boundary at distance r the ray along unit u meets it at
r / cos theta (only rays with cos theta > 0, towards it, meet it at all), so 16 random rays find
r * E[1 / max_i cos theta_i]: x1.3 in 4 latent dimensions, x1.8 in 8, x2.5 in 16. Such a run says so: ``info["labels_only_classifier"]`` is true,
``info["warnings"]`` names the classifier and a ``RuntimeWarning`` is issued.
The decoder is ``model.decode`` (GAN plugins implement ``decode`` as their generator).
Randomness: z = randn((n_samples, d), generator=ctx.generator) is drawn first, then the directions.

Leaderboard: a column without a direction. A larger radius means more latent room before the class
changes, yet Manoj §3.1 finds that GANs covering more modes have a lower class radius, so neither
direction is "better" on its own. Ranges: radius and its standard error >= 0, the censored share in
[0, 1].
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np
import torch
from torch import Tensor

from latentbench.errors import LatentBenchError
from latentbench.metric import LeaderboardValue, Metric, MetricConfig, MetricContext, MetricResult


@dataclass
class ClassRadiusConfig(MetricConfig):
    n_samples: int = 1000
    #: largest latent distance searched; z without a boundary inside count at this radius
    search_radius: float = 5.0
    directions: int = 16
    scan_points: int = 16
    bisection_steps: int = 20
    #: DeepFool iterations (0 disables the gradient attack)
    attack_steps: int = 50
    overshoot: float = 0.02
    #: latent points per chunk
    batch_size: int = 256

    def validate(self) -> None:
        if self.n_samples < 2:
            raise ValueError(f"n_samples must be >= 2 (a standard error needs two samples), got {self.n_samples}")
        if not self.search_radius > 0:
            raise ValueError(f"search_radius must be > 0, got {self.search_radius}")
        if self.directions < 0 or self.scan_points < 1 or self.bisection_steps < 0 or self.attack_steps < 0:
            raise ValueError("directions, bisection_steps and attack_steps must be >= 0 and scan_points >= 1")
        if self.directions == 0 and self.attack_steps == 0:
            raise ValueError("directions and attack_steps are both 0: enable at least one estimator")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")


def _labels(out: Tensor) -> Tensor:
    return out.argmax(1) if out.dim() == 2 else out.long()


def ray_boundary(label_of: Callable[[Tensor], Tensor], z: Tensor, y0: Tensor, dirs: Tensor, radius: Tensor,
                 scan_points: int, bisection_steps: int) -> Tensor:
    """Distance along each ray z + t u (t in (0, radius]) to the first class change; inf if none.

    z (B, d), y0 (B,), dirs (B, M, d) unit vectors, radius (B, M). Returns (B, M).
    """
    B, M, d = dirs.shape
    t_grid = torch.arange(1, scan_points + 1, dtype=z.dtype, device=z.device) / scan_points  # fractions
    t = radius.unsqueeze(-1) * t_grid  # (B, M, S)
    pts = z[:, None, None, :] + t.unsqueeze(-1) * dirs[:, :, None, :]
    lab = label_of(pts.reshape(-1, d)).reshape(B, M, scan_points)
    changed = lab != y0[:, None, None]
    found = changed.any(-1)
    first = changed.float().argmax(-1)  # index of the first changed scan point
    hi = t.gather(-1, first.unsqueeze(-1)).squeeze(-1)
    lo = torch.where(first > 0, t.gather(-1, (first - 1).clamp_min(0).unsqueeze(-1)).squeeze(-1), torch.zeros_like(hi))
    yrep = y0[:, None].expand(B, M)
    for _ in range(bisection_steps):
        mid = 0.5 * (lo + hi)
        lab_mid = label_of((z[:, None, :] + mid.unsqueeze(-1) * dirs).reshape(-1, d)).reshape(B, M)
        other = lab_mid != yrep
        hi = torch.where(other, mid, hi)
        lo = torch.where(other, lo, mid)
    return torch.where(found, hi, torch.full_like(hi, math.inf))


def deepfool_latent(logits_of: Callable[[Tensor], Tensor], z: Tensor, y0: Tensor, steps: int,
                    overshoot: float) -> tuple[Tensor, Tensor]:
    """Multi-class DeepFool in latent space: (z_adv (B, d), found (B,) bool)."""
    zc = z.detach().clone()
    K = None
    for _ in range(steps):
        zc.requires_grad_(True)
        logits = logits_of(zc)
        K = logits.shape[1]
        active = logits.argmax(1) == y0
        if not bool(active.any()):
            break
        f = logits - logits.gather(1, y0[:, None])  # f_k > 0 means class k beats the original
        grads = torch.stack([torch.autograd.grad(f[:, k].sum(), zc, retain_graph=k < K - 1)[0] for k in range(K)], 1)
        with torch.no_grad():
            wn = grads.norm(dim=2)  # (B, K)
            dist = f.abs() / wn.clamp_min(1e-12)
            dist.scatter_(1, y0[:, None], math.inf)
            dist = torch.where(wn > 0, dist, torch.full_like(dist, math.inf))
            k = dist.argmin(1)
            fk = f.gather(1, k[:, None]).abs()
            wk = grads[torch.arange(len(k)), k]
            step = (fk + 1e-9) / wn.gather(1, k[:, None]).clamp_min(1e-12) ** 2 * wk
            step = torch.where(torch.isfinite(step) & active[:, None], step, torch.zeros_like(step))
            zc = zc.detach() + (1 + overshoot) * step
    with torch.no_grad():
        found = logits_of(zc).argmax(1) != y0
    return zc.detach(), found


def class_radius_per_sample(decode: Callable[[Tensor], Tensor], classify: Callable[[Tensor], Tensor], z: Tensor,
                            cfg: ClassRadiusConfig, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor, dict]:
    """r(z) estimates (B,) clipped at the search radius, censored mask (B,), and which estimator won."""
    def out_of(zz: Tensor) -> Tensor:
        return classify(decode(zz))

    with torch.no_grad():
        first = out_of(z)
    y0 = _labels(first)
    has_logits = first.dim() == 2 and first.is_floating_point()

    def label_of(zz: Tensor) -> Tensor:
        with torch.no_grad():
            return _labels(out_of(zz))

    B, d = z.shape
    r_dir = torch.full((B,), math.inf, dtype=z.dtype, device=z.device)
    if cfg.directions:
        dirs = torch.randn((B, cfg.directions, d), generator=generator, dtype=torch.float64).to(z.device, z.dtype)
        dirs = dirs / dirs.norm(dim=-1, keepdim=True)
        radius = torch.full((B, cfg.directions), cfg.search_radius, dtype=z.dtype, device=z.device)
        r_dir = ray_boundary(label_of, z, y0, dirs, radius, cfg.scan_points, cfg.bisection_steps).amin(1)
    r_att = torch.full((B,), math.inf, dtype=z.dtype, device=z.device)
    if cfg.attack_steps and has_logits:
        z_adv, found = deepfool_latent(out_of, z, y0, cfg.attack_steps, cfg.overshoot)
        delta = z_adv - z
        dist = delta.norm(dim=1)
        ok = found & (dist > 0)
        if bool(ok.any()):
            u = (delta / dist.clamp_min(1e-30)[:, None]).unsqueeze(1)
            # one ray towards the attack point; the scan brackets the first class change on the segment
            seg = ray_boundary(label_of, z, y0, u, dist.unsqueeze(1), cfg.scan_points, cfg.bisection_steps)[:, 0]
            r_att = torch.where(ok, torch.minimum(seg, dist), r_att)
    r = torch.minimum(r_dir, r_att)
    censored = ~(r <= cfg.search_radius)
    r = torch.where(censored, torch.full_like(r, cfg.search_radius), r)
    stats = {"attack_wins": int(((r_att < r_dir) & ~censored).sum()), "gradient_attack_used": bool(cfg.attack_steps and has_logits)}
    return r, censored, stats


def labels_only_warning(classifier: str, directions: int) -> str:
    return (f"class_radius: classifier '{classifier}' returns labels, not logits, so the gradient attack is skipped "
            f"and only {directions} random directions search for the boundary; the radius is overestimated (x1.8 "
            f"for one flat boundary in 8 latent dimensions, more in higher ones) -- give a classifier that returns "
            f"logits (B, K)")


def grid_logits(n: int) -> Callable[[Tensor], Tensor]:
    """Nearest-mode rule of the 2D grid as logits -||x - m_k||^2 (argmax = nearest mode, differentiable)."""
    from latentbench.plugins.datasets.grid2d import grid_means

    def f(x: Tensor) -> Tensor:
        m = grid_means(n).to(x.device, x.dtype)
        p = x.reshape(x.shape[0], -1)[:, :2]
        return -((p[:, None, :] - m[None]) ** 2).sum(-1)

    return f


class ClassRadius(Metric):
    """E_z r(z): distance from a prior sample to the nearest class change of its decoded image."""

    name = "class_radius"
    config_class = ClassRadiusConfig
    needs = frozenset({"model", "classifier"})
    source = "Manoj Def. 2.5, §3"
    requires_generative = True
    leaderboard = (
        LeaderboardValue("class_radius", "class radius", range=(0.0, math.inf)),
        LeaderboardValue("class_radius_se", range=(0.0, math.inf)),
        LeaderboardValue("censored_fraction", range=(0.0, 1.0)),
    )

    def __init__(self, config: ClassRadiusConfig | None = None, classifier: Optional[Callable] = None, **overrides):
        super().__init__(config, **overrides)
        self.classifier = classifier

    def _classifier(self, ctx: MetricContext) -> tuple[Callable, str]:
        if self.classifier is not None:
            return self.classifier, "given callable"
        if ctx.dataset == "grid2d":
            k = ctx.num_classes or 25
            n = int(round((math.sqrt(k) - 1) / 2))
            if (2 * n + 1) ** 2 != k:
                raise LatentBenchError(f"grid2d has (2n+1)^2 classes; num_classes={k} is not of that form")
            return grid_logits(n), f"grid2d nearest-mode rule (n={n})"
        if ctx.classifier is not None:
            clf = ctx.classifier()
        elif ctx.train_x is not None and ctx.train_y is not None and ctx.num_classes:
            from latentbench.data import Split
            from latentbench.plugins.metrics._domain_classifier import domain_classifier

            clf = domain_classifier(ctx.dataset, Split(ctx.train_x, ctx.train_y), ctx.num_classes, ctx.cache_dir,
                                    ctx.seed, ctx.device)
        else:
            raise LatentBenchError(
                f"class_radius needs a classifier for dataset '{ctx.dataset}': run it through the runner (which gives "
                f"it the labelled training split for the domain classifier) or pass ClassRadius(classifier=callable)")
        if hasattr(clf, "eval"):
            clf.eval()
        return clf, getattr(clf, "latentbench_name", type(clf).__name__)

    def compute(self, ctx: MetricContext) -> MetricResult:
        cfg = self.config
        model = ctx.model
        model.eval()
        clf, clf_name = self._classifier(ctx)
        d = model.latent_dim
        z_all = torch.randn((cfg.n_samples, d), generator=ctx.generator).to(ctx.device)
        rs, cens, wins = [], [], 0
        used = False
        for i in range(0, cfg.n_samples, cfg.batch_size):
            r, c, st = class_radius_per_sample(model.decode, clf, z_all[i:i + cfg.batch_size], cfg, ctx.generator)
            rs.append(r.detach().cpu())
            cens.append(c.cpu())
            wins += st["attack_wins"]
            used = st["gradient_attack_used"]
        r = torch.cat(rs).double().numpy()
        c = torch.cat(cens).numpy()
        values = {"class_radius": float(r.mean()), "class_radius_se": float(r.std(ddof=1) / np.sqrt(len(r))),
                  "censored_fraction": float(c.mean())}
        labels_only = bool(cfg.attack_steps) and not used
        notes = [labels_only_warning(clf_name, cfg.directions)] if labels_only else []
        for note in notes:
            warnings.warn(f"latentbench: {note}", RuntimeWarning, stacklevel=2)
        info = {"classifier": clf_name, "gradient_attack_used": used, "gradient_attack_wins": wins,
                "search_radius": cfg.search_radius, "labels_only_classifier": labels_only, "warnings": notes,
                "note": ("uncensored samples are upper bounds of r(z); censored ones count at search_radius, a lower "
                         "bound only of the searched distance: with censoring the mean bounds the class radius "
                         "neither way")}
        return MetricResult(values=values, per_sample={"radius": r, "censored": c.astype(np.float64)}, info=info)
