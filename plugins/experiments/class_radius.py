"""Reproductions of document Manoj (Manoj, "Looser is worse"): Fig. 3.1 and Fig. 4.1.

- ``grid_gans`` (Manoj §3.1, Fig. 3.1, footnote 5): GANs on the 2D-grid task with different numbers of
  covered modes; class radius E_z r(z) (Manoj Def. 2.5) with the nearest-mode classifier against the
  number of modes covered.
- ``lc_vae`` (Manoj §4.2, Fig. 4.1): LC-VAE vs VAE with a 2-d latent: test codes coloured by class,
  class radius with the harness's domain classifier, and the size of the latent "holes".

Everything is computed by the harness's plugins: the ``gan``, ``vae`` and ``lc_vae`` models, the
``grid2d`` and image datasets, the generic trainer, the ``class_radius`` metric (DeepFool plus
bisection along random rays; censored z count at the search radius) and
:func:`latentbench.plugins.metrics._domain_classifier.domain_classifier`.

Choices the document leaves open (also in each result's notes):

- Generators of known coverage: the document trained GANs "on variants of the 2D-grid" and observed
  various degrees of collapse. We train PacGAN-2 generators (which cover the modes they see, see
  ``latentbench.plugins.models.gan``) on grids restricted to k modes (grid2d's ``modes`` option) and, as the
  naturally collapsing case, plain GANs (pack 1) on all modes.
- Covered modes (the document's "discretized support size"): 2,500 generated points; a point is of
  high quality within 3 data standard deviations (0.15) of its nearest mode; a mode is covered when
  at least ``COVER_MIN`` high-quality points fall on it (the 3-std rule is PacGAN/VEEGAN's; the
  count threshold is ours).
- Theorem 3.1's bound log(4 pi log(1/||p||^2)) / sqrt(2 log(1/||p||^2)) is evaluated with p the
  nearest-mode class frequencies of generated points; it applies only if every p_i <= 1/5.
- LC-VAE: the document trains on MNIST with Table 1's 128-256-512-1024 conv encoder for 20 epochs;
  we use Fashion-MNIST 32x32, a narrower conv encoder/decoder for both models (CPU) and fewer epochs.
- Holes: mean distance from a prior sample z ~ N(0, I) to its nearest test code (encoder mean).
- Seeds: every generator / model is trained from ``seeds`` independent initialisations; the grid
  trends are Spearman correlations over (generator, seed) points, the LC-VAE comparisons paired
  bootstraps over seeds x prior samples (or test images), both through :mod:`latentbench.stats`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from latentbench.data import DatasetConfig, Split
from latentbench.plugins.metrics._domain_classifier import CONFIG_FILE, DomainModelConfig, domain_classifier
from latentbench.metric import MetricContext
from latentbench.registry import get_registry
from latentbench import stats
from latentbench.experiment import (DataSize, Finding, ReproContext, ReproResult, experiment, save_figure,
                                    seed_matrix)
from latentbench.seeding import component_generator
from latentbench.training import TrainConfig, train

#: Manoj footnote 5: each grid mode is a Gaussian of variance 0.0025 (std 0.05)
GRID_STD = 0.05
#: a generated point is high quality within this many data stds of its nearest mode
QUALITY_STDS = 3.0
#: high-quality points a mode needs (out of ``coverage_samples``) to count as covered
COVER_MIN = 20


@dataclass
class GridSize:
    n: int  # grid of (2n+1)^2 modes
    modes: list[int]  # k of the PacGAN-2 generators trained on k-mode grids (plus one plain GAN on all modes)
    hidden: list[int]
    steps: int
    batch_size: int
    train_size: int
    coverage_samples: int
    radius_samples: int
    #: class-radius estimator effort (random rays, DeepFool steps); the metric's defaults are 16 and 50
    radius_directions: int = 16
    radius_attack_steps: int = 50
    #: independently trained seeds per generator
    seeds: int = 3


GRID_SIZES = {
    "smoke": GridSize(n=1, modes=[1, 3, 9], hidden=[32, 32], steps=60, batch_size=128,
                      train_size=1024, coverage_samples=500, radius_samples=16,
                      radius_directions=4, radius_attack_steps=5),
    "reduced": GridSize(n=2, modes=[1, 4, 10, 19, 25], hidden=[128, 128], steps=1500, batch_size=256,
                        train_size=25000, coverage_samples=2500, radius_samples=200),
    "full": GridSize(n=2, modes=[1, 2, 4, 7, 10, 14, 19, 25], hidden=[128, 128],
                     steps=3000, batch_size=256, train_size=25000, coverage_samples=2500, radius_samples=500),
}


@dataclass
class LCSize(DataSize):
    conv_channels: list[int]
    test_n: int
    radius_samples: int
    classifier: DomainModelConfig
    radius_directions: int = 16
    radius_attack_steps: int = 50
    seeds: int = 3


LC_SIZES = {
    "smoke": LCSize(dataset="digits", image_size=None, train_n=400, epochs=1, batch_size=100, conv_channels=[8, 16],
                    test_n=200, radius_samples=16,
                    classifier=DomainModelConfig(epochs=1, max_train=400, width=8, feature_dim=16),
                    radius_directions=4, radius_attack_steps=5),
    "reduced": LCSize(dataset="fashion-mnist", image_size=32, train_n=4000, epochs=3, batch_size=300,
                      conv_channels=[16, 32, 64], test_n=1000, radius_samples=100, classifier=DomainModelConfig(),
                      radius_directions=8, radius_attack_steps=25),
    "full": LCSize(dataset="fashion-mnist", image_size=32, train_n=8000, epochs=4, batch_size=300,
                   conv_channels=[32, 64, 128], test_n=2000, radius_samples=300, classifier=DomainModelConfig()),
}


def theorem31_bound(p: np.ndarray) -> tuple[float, bool]:
    """Manoj Thm 3.1's upper bound on E r(z) from class probabilities p, and whether its premise p_i <= 1/5 holds."""
    p = np.asarray(p, dtype=float)
    h2 = -math.log(float((p ** 2).sum()))  # collision entropy
    if h2 <= 0:
        return math.inf, False
    return math.log(4 * math.pi * h2) / math.sqrt(2 * h2), bool(p.max() <= 0.2)


@torch.no_grad()
def mode_coverage(points: torch.Tensor, n: int) -> dict[str, Any]:
    """Covered modes, high-quality share and nearest-mode class frequencies of generated points."""
    from latentbench.plugins.datasets.grid2d import grid_means

    means = grid_means(n).to(points.device, points.dtype)
    dist = torch.cdist(points.reshape(len(points), -1)[:, :2], means)
    d, idx = dist.min(1)
    hq = d < QUALITY_STDS * GRID_STD
    counts = torch.bincount(idx[hq], minlength=len(means))
    p = torch.bincount(idx, minlength=len(means)).double() / len(points)
    hits = torch.bincount(idx, minlength=len(means))
    # support size under the classifier c alone (no quality threshold): what the class radius sees
    return {"covered": int((counts >= COVER_MIN).sum()), "classes_hit": int((hits >= COVER_MIN).sum()),
            "hq_share": float(hq.double().mean()), "p": p.cpu().numpy()}


def _grid_gan(size: GridSize, ctx: ReproContext, modes: int | None, pack: int, seed: int):
    reg = get_registry()
    ds = reg.dataset("grid2d")(DatasetConfig(options={"n": size.n, "modes": modes, "train_size": size.train_size,
                                                      "seed": seed}))
    data = ds.load("train")
    cls = reg.model("gan")
    torch.manual_seed(seed)
    model = cls(cls.config_class(hidden=list(size.hidden), disc_hidden=list(size.hidden), lr=1e-3, pack=pack))
    epochs = math.ceil(size.steps * size.batch_size / len(data))
    threads = torch.get_num_threads()
    # these MLPs are so small that intra-op threads cost more in synchronisation than they save
    torch.set_num_threads(1)
    try:
        train(model, data, TrainConfig(epochs=epochs, batch_size=size.batch_size, max_steps=size.steps, seed=seed,
                                       device=ctx.device, progress=False), desc=f"gan k={modes} pack={pack}")
    finally:
        torch.set_num_threads(threads)
    model.eval()
    return model


def _class_radius(model, ctx: ReproContext, size, name: str, dataset: str, num_classes: int,
                  classifier=None, search_radius: float = 5.0) -> dict[str, Any]:
    cls = get_registry().metric("class_radius")
    cfg = cls.config_class(n_samples=size.radius_samples, search_radius=search_radius,
                           directions=size.radius_directions, attack_steps=size.radius_attack_steps)
    metric = cls(cfg, classifier=classifier)
    mctx = MetricContext(model=model, x=torch.empty(0), y=None, dataset=dataset, device=torch.device(ctx.device),
                         generator=component_generator(ctx.seed, "repro", "class_radius", name), seed=ctx.seed,
                         num_classes=num_classes)
    res = metric.compute(mctx)
    return {**res.values, "classifier": res.info["classifier"], "radius": np.asarray(res.per_sample["radius"])}






def _grid_trend(per_seed: dict[str, Any], key: str) -> stats.Estimate:
    """Spearman of a per-seed coverage count against the per-seed mean class radius over (generator, seed)."""
    xs, ys, n_img = [], [], 0
    for g in per_seed["generators"].values():
        for cnt, r in zip(g[key], g["radius"]):
            xs.append(cnt)
            ys.append(float(np.mean(r)))
            n_img = len(r)
    return stats.spearman_test(xs, ys, seeds=per_seed["meta"]["seeds"], images=n_img)


def grid_gans_findings(per_seed: dict[str, Any]) -> list[Finding]:
    """Verdicts of Fig. 3.1 and Theorem 3.1 from the stored per-seed coverage and per-sample class radii."""
    gens = per_seed["generators"]
    cover_min = per_seed["meta"]["cover_min"]

    def listing(key: str) -> str:
        pts = sorted((c, float(np.mean(r))) for g in gens.values() for c, r in zip(g[key], g["radius"]))
        return ", ".join(f"{c}: {r:.3g}" for c, r in pts)

    bound_parts = []
    for label, g in gens.items():
        for seed, r, bound, premise in zip(per_seed["meta"]["seed_list"], g["radius"], g["thm31_bound"],
                                           g["thm31_premise"]):
            if premise:
                est = stats.bootstrap_mean(np.asarray(r) - bound)
                bound_parts.append(Finding.of(f"{label}, seed {seed}", est, -1,
                                              f"{label} seed {seed}: {np.mean(r):.3g} vs bound {bound:.3g}"))
    claim31 = ("Theorem 3.1: E r(z) <= log(4 pi H2) / sqrt(2 H2) (H2 the collision entropy of the class frequencies) "
               "where every class has probability <= 1/5; effect = E r(z) - bound per generator and seed")
    if bound_parts:
        thm = Finding.every(claim31, bound_parts)
    else:
        thm = Finding.of(claim31, stats.Estimate("none: no generator meets the premise", math.nan, math.nan,
                                                 math.nan, 0, 0), -1, "no generator meets the premise p_i <= 1/5")
    return [
        Finding.of("GANs that capture more modes have a lower class radius (Fig. 3.1)", _grid_trend(per_seed, "covered"),
                   -1, "(covered modes: mean class radius) per generator and seed: " + listing("covered")),
        Finding.of("the class radius falls as the generator's support under the nearest-mode classifier grows (classes "
                   f"with >= {cover_min} generated points, no quality threshold)", _grid_trend(per_seed, "classes_hit"),
                   -1, "(classes hit: mean class radius): " + listing("classes_hit")),
        thm,
    ]


@experiment("grid_gans", "class radius of 2D-grid GANs vs covered modes", "Manoj §3.1, Fig. 3.1",
            findings=grid_gans_findings)
def grid_gans(ctx: ReproContext) -> ReproResult:
    import matplotlib.pyplot as plt

    size = GRID_SIZES[ctx.size]
    seeds = ctx.seed_list(size.seeds)
    K = (2 * size.n + 1) ** 2
    configs = [(f"PacGAN-2, {k} modes", k, 2) for k in size.modes] + [("GAN, all modes", None, 1)]
    rows, samples, gens = [], {}, {}
    for label, modes, pack in configs:
        g = gens[label] = {"train_modes": modes or K, "pack": pack, "covered": [], "classes_hit": [], "hq_share": [],
                           "radius": [], "censored_fraction": [], "thm31_bound": [], "thm31_premise": []}
        for seed in seeds:
            model = _grid_gan(size, ctx, modes, pack, seed)
            with torch.no_grad():
                pts = model.sample(size.coverage_samples,
                                   component_generator(seed, "repro", "grid", label)).cpu()
            cov = mode_coverage(pts, size.n)
            cr = _class_radius(model, ctx, size, f"{label} seed {seed}", "grid2d", K)
            bound, premise = theorem31_bound(cov["p"])
            samples.setdefault(label, pts)
            for k, v in (("covered", cov["covered"]), ("classes_hit", cov["classes_hit"]), ("hq_share", cov["hq_share"]),
                         ("radius", cr["radius"]), ("censored_fraction", cr["censored_fraction"]),
                         ("thm31_bound", bound), ("thm31_premise", premise)):
                g[k].append(v)
            rows.append({"generator": label, "seed": seed, "train_modes": modes or K, "pack": pack,
                         "covered_modes": cov["covered"], "classes_hit": cov["classes_hit"], "hq_share": cov["hq_share"],
                         "class_radius": cr["class_radius"], "class_radius_se": cr["class_radius_se"],
                         "censored_fraction": cr["censored_fraction"], "thm31_bound": bound, "thm31_premise": premise})
    fig, ax = plt.subplots(figsize=(4.2, 3.2))
    for pack, marker in [(2, "o"), (1, "s")]:
        sel = [r for r in rows if r["pack"] == pack]
        if sel:
            ax.errorbar([r["covered_modes"] for r in sel], [r["class_radius"] for r in sel],
                        yerr=[r["class_radius_se"] for r in sel], fmt=marker, capsize=2,
                        label="PacGAN-2 on k-mode grids" if pack == 2 else "plain GAN on all modes")
    ax.set_xlabel("covered modes (discretized support size)")
    ax.set_ylabel("class radius E r(z) (one point per seed)")
    ax.legend(fontsize=7)
    figs = [save_figure(fig, ctx, "class_radius_vs_modes.png")]

    from latentbench.plugins.datasets.grid2d import grid_means

    fig, axes = plt.subplots(1, len(samples), figsize=(1.8 * len(samples), 2.0), squeeze=False)
    m = grid_means(size.n)
    for ax, (label, pts) in zip(axes[0], samples.items()):
        ax.scatter(pts[:, 0], pts[:, 1], s=1, alpha=0.3)
        ax.scatter(m[:, 0], m[:, 1], s=6, c="r", marker="x")
        ax.set_xlim(-2 * size.n - 1, 2 * size.n + 1)
        ax.set_ylim(-2 * size.n - 1, 2 * size.n + 1)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(label, fontsize=6)
    figs.append(save_figure(fig, ctx, "generated_samples.png"))
    per_seed = {"meta": {"seeds": len(seeds), "seed_list": seeds, "cover_min": COVER_MIN, "K": K}, "generators": gens}
    return ReproResult(tables={"generators": rows}, figures=figs, per_seed=per_seed, notes=[
        f"2D grid with n = {size.n} ({K} modes, std {GRID_STD}); generators: MLP {size.hidden} ReLU (G and D), "
        f"Adam 1e-3, {size.steps} steps of batch {size.batch_size}, latent 2",
        "coverage of known degree: PacGAN-2 on grids restricted to k modes, plus a plain GAN on all modes (the "
        "document does not say how its GANs came to collapse to different degrees)",
        f"covered mode: >= {COVER_MIN} of {size.coverage_samples} generated points within {QUALITY_STDS:g} std of it",
        f"class radius: {size.radius_samples} prior samples, DeepFool + {size.radius_directions} random rays, search "
        "radius 5 (censored samples count at 5; see censored_fraction)",
        f"{len(seeds)} independently trained seeds per generator; sample figure from seed {seeds[0]}"])


def _lc_splits(ctx: ReproContext, size: LCSize) -> tuple[Split, Split, Any]:
    ds = size.load_dataset(ctx)
    full_train = ds.load("train")
    return full_train, ds.load("test"), ds


def _lc_model(name: str, train_split: Split, size: LCSize, ctx: ReproContext, seed: int):
    cls = get_registry().model(name)
    cfg = cls.config_class(input_shape=tuple(train_split.x.shape[1:]), latent_dim=2, backbone="conv",
                           activation="relu", batchnorm=True, conv_channels=list(size.conv_channels), lr=1e-3)
    torch.manual_seed(seed)
    model = cls(cfg)
    tr = train(model, train_split, TrainConfig(epochs=size.epochs, batch_size=size.batch_size, seed=seed,
                                               device=ctx.device, progress=False), desc=f"{name} seed {seed}")
    model.eval()
    return model, tr


#: per-seed LC-VAE scores: per prior sample (holes, unsure, class radius) or per test image (recon MSE, code norm)
LC_KEYS = ("hole_dist", "unsure", "class_radius", "recon_mse", "code_norm")


def lc_vae_findings(per_seed: dict[str, Any]) -> list[Finding]:
    """Verdicts of Fig. 4.1 from the stored per-seed scores; effects are LC-VAE minus VAE on the same prior
    samples or test images."""
    v, lc = ({k: seed_matrix(per_seed["models"][m][k]) for k in LC_KEYS} for m in ("VAE", "LC-VAE"))

    def cmp(key: str, fmt: str = ".3g") -> tuple[stats.Estimate, str]:
        return stats.paired_bootstrap(lc[key], v[key]), f"mean VAE {v[key].mean():{fmt}} vs LC-VAE {lc[key].mean():{fmt}}"

    hole, radius, rec, unsure, norm = (cmp(k) for k in ("hole_dist", "class_radius", "recon_mse", "unsure", "code_norm"))
    margin = 0.1 * float(v["recon_mse"].mean())
    return [
        Finding.of("LC-VAE tightens the latent space: the VAE leaves larger holes (Fig. 4.1); measured as the distance "
                   "from a prior sample to its nearest test code", hole[0], -1, hole[1]),
        Finding.of("LC-VAE lowers the class radius (the regulariser's motivation, Manoj §4.1; not measured in the "
                   "document); same prior samples for both models", radius[0], -1,
                   radius[1] + " (censored samples count at the search radius)"),
        Finding.of("LC-VAE does not impact sample / reconstruction quality (Fig. 4.2-4.3; read as test reconstruction "
                   "MSE within 10% of the VAE's: margin 0.1 x the VAE's mean)", rec[0], 0, rec[1], margin=margin),
        Finding.of("more prior mass decodes to no clear class under LC-VAE (§4.2; proxy: classifier max-probability "
                   "< 0.5 on decoded prior samples; effect = difference of shares)", unsure[0], +1, unsure[1]),
        Finding.of("the encoder may 'cheat' by shrinking the codes (the document's speculation, §4.2)", norm[0], -1,
                   norm[1]),
    ]


@experiment("lc_vae", "LC-VAE vs VAE: 2-d latent space and class radius", "Manoj §4.2, Fig. 4.1",
            findings=lc_vae_findings)
def lc_vae(ctx: ReproContext) -> ReproResult:
    import matplotlib.pyplot as plt

    size = LC_SIZES[ctx.size]
    seeds = ctx.seed_list(size.seeds)
    full_train, test, ds = _lc_splits(ctx, size)
    train_split = full_train.subset(size.train_n, ctx.seed, "repro-train")
    test = test.subset(size.test_n, ctx.seed, "repro-test")
    cache = Path(ctx.out_dir).parent / ".latentbench_cache"
    clf = domain_classifier(size.dataset, full_train, ds.num_classes, cache_dir=cache, seed=ctx.seed,
                            device=ctx.device, config=size.classifier)
    clf_meta = json.loads((cache / clf.latentbench_name / CONFIG_FILE).read_text())
    with torch.no_grad():
        clf_test_acc = float((clf(test.x.to(ctx.device)).argmax(1).cpu() == test.y).double().mean())
    g = component_generator(ctx.seed, "repro", "lc_vae", "prior")
    z_prior = torch.randn(2000, 2, generator=g).to(ctx.device)
    x = test.x.to(ctx.device)
    rows, codes, models = [], {}, {}
    for label, name in [("VAE", "vae"), ("LC-VAE", "lc_vae")]:
        store = models[label] = {k: [] for k in LC_KEYS}
        for seed in seeds:
            model, tr = _lc_model(name, train_split, size, ctx, seed)
            with torch.no_grad():
                mu = model.encode(x).mean
                rec = (model.decode(mu) - x).pow(2).reshape(len(x), -1).mean(1)
                hole = torch.cdist(z_prior, mu).min(1).values
                probs = torch.softmax(clf(model.decode(z_prior)), 1).max(1).values
            codes.setdefault(label, mu.cpu())
            # one generator name for both models: the class radius is measured at the same prior samples
            cr = _class_radius(model, ctx, size, f"seed {seed}", size.dataset, ds.num_classes, classifier=clf)
            for k, val in (("hole_dist", hole), ("unsure", (probs < 0.5).double()), ("class_radius", cr["radius"]),
                           ("recon_mse", rec), ("code_norm", mu.norm(dim=1))):
                store[k].append(val.double().cpu().numpy() if isinstance(val, torch.Tensor) else val)
            rows.append({"model": label, "seed": seed, "test_recon_mse": float(rec.mean()),
                         "final_nll": float(tr.final.get("nll", math.nan)), "final_kl": float(tr.final.get("kl", math.nan)),
                         "code_norm_mean": float(mu.norm(dim=1).mean()), "hole_dist_mean": float(hole.mean()),
                         "hole_dist_p90": float(hole.quantile(0.9)), "unsure_prior_share": float((probs < 0.5).double().mean()),
                         "class_radius": cr["class_radius"], "class_radius_se": cr["class_radius_se"],
                         "censored_fraction": cr["censored_fraction"]})
    lim = float(max(c.abs().max() for c in codes.values())) * 1.05
    fig, axes = plt.subplots(1, 2, figsize=(7.0, 3.4))
    for ax, (label, mu) in zip(axes, codes.items()):
        sc = ax.scatter(mu[:, 0], mu[:, 1], c=test.y.numpy(), cmap="tab10", s=3, vmin=-0.5, vmax=9.5)
        for r in (1, 2, 3):
            ax.add_patch(plt.Circle((0, 0), r, fill=False, ls=":", lw=0.7, color="k"))
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
        ax.set_aspect("equal")
        ax.set_title(f"{label}: test codes, seed {seeds[0]} (dotted: 1-3 prior std)", fontsize=8)
    fig.colorbar(sc, ax=axes, ticks=range(10), shrink=0.8, label="class")
    # no tight_layout: it does not handle a colorbar shared by two axes
    figs = [save_figure(fig, ctx, "latent_space.png", tight=False)]
    per_seed = {"meta": {"seeds": seeds}, "models": models}
    data = "Fashion-MNIST 32x32" if size.dataset == "fashion-mnist" else size.dataset
    return ReproResult(tables={"models": rows}, figures=figs, per_seed=per_seed, notes=[
        f"data: {data} instead of MNIST; {size.train_n} training images, {size.epochs} epochs (document: 20), batch "
        f"{size.batch_size}, Adam 1e-3, latent 2 (Fig. 4.1), lambda 30, c 0.3",
        f"both models: conv encoder/decoder {size.conv_channels} k4 s2 BN ReLU (document: 128-256-512-1024 encoder, "
        "Table 1; narrowed for CPU), Bernoulli likelihood",
        f"classifier for the class radius: {clf.latentbench_name} (train accuracy "
        f"{clf_meta.get('train_accuracy', float('nan')):.3f}, accuracy on the {len(test)} test images {clf_test_acc:.3f})",
        f"class radius: {size.radius_samples} prior samples (the same for both models), search radius 5, "
        f"{size.radius_directions} rays, {size.radius_attack_steps} DeepFool steps; holes and 'unsure' share from 2000 "
        f"prior samples against {len(test)} test codes",
        f"{len(seeds)} independently trained seeds per model (same data, classifier and prior samples)"])
