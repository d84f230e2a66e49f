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
from latentbench.experiment import DataSize, Finding, ReproContext, ReproResult, experiment, save_figure, spearman
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
    modes: list[int]  # k of the PacGAN-2 generators trained on k-mode grids
    plain_seeds: list[int]  # seeds of the plain GANs (pack 1) on all modes
    hidden: list[int]
    steps: int
    batch_size: int
    train_size: int
    coverage_samples: int
    radius_samples: int
    #: class-radius estimator effort (random rays, DeepFool steps); the metric's defaults are 16 and 50
    radius_directions: int = 16
    radius_attack_steps: int = 50


GRID_SIZES = {
    "smoke": GridSize(n=1, modes=[1, 3, 9], plain_seeds=[0], hidden=[32, 32], steps=60, batch_size=128,
                      train_size=1024, coverage_samples=500, radius_samples=16,
                      radius_directions=4, radius_attack_steps=5),
    "full": GridSize(n=2, modes=[1, 2, 4, 7, 10, 14, 19, 25], plain_seeds=[0, 1], hidden=[128, 128],
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


LC_SIZES = {
    "smoke": LCSize(dataset="digits", image_size=None, train_n=400, epochs=1, batch_size=100, conv_channels=[8, 16],
                    test_n=200, radius_samples=16,
                    classifier=DomainModelConfig(epochs=1, max_train=400, width=8, feature_dim=16),
                    radius_directions=4, radius_attack_steps=5),
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
    return {**res.values, "classifier": res.info["classifier"]}






@experiment("grid_gans", "class radius of 2D-grid GANs vs covered modes", "Manoj §3.1, Fig. 3.1")
def grid_gans(ctx: ReproContext) -> ReproResult:
    import matplotlib.pyplot as plt

    size = GRID_SIZES[ctx.size]
    K = (2 * size.n + 1) ** 2
    runs = [(f"PacGAN-2, {k} modes", k, 2, ctx.seed) for k in size.modes]
    runs += [(f"GAN, all modes, seed {s}", None, 1, ctx.seed + s) for s in size.plain_seeds]
    rows, samples = [], {}
    for label, modes, pack, seed in runs:
        model = _grid_gan(size, ctx, modes, pack, seed)
        with torch.no_grad():
            pts = model.sample(size.coverage_samples, component_generator(ctx.seed, "repro", "grid", label)).cpu()
        cov = mode_coverage(pts, size.n)
        cr = _class_radius(model, ctx, size, label, "grid2d", K)
        bound, premise = theorem31_bound(cov["p"])
        samples[label] = pts
        rows.append({"generator": label, "train_modes": modes or K, "pack": pack, "covered_modes": cov["covered"],
                     "classes_hit": cov["classes_hit"],
                     "hq_share": cov["hq_share"], "class_radius": cr["class_radius"], "class_radius_se": cr["class_radius_se"],
                     "censored_fraction": cr["censored_fraction"], "thm31_bound": bound, "thm31_premise": premise})
    fig, ax = plt.subplots(figsize=(4.2, 3.2))
    for pack, marker in [(2, "o"), (1, "s")]:
        sel = [r for r in rows if r["pack"] == pack]
        if sel:
            ax.errorbar([r["covered_modes"] for r in sel], [r["class_radius"] for r in sel],
                        yerr=[r["class_radius_se"] for r in sel], fmt=marker, capsize=2,
                        label="PacGAN-2 on k-mode grids" if pack == 2 else "plain GAN on all modes")
    ax.set_xlabel("covered modes (discretized support size)")
    ax.set_ylabel("class radius E r(z)")
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

    cov = [r["covered_modes"] for r in rows]
    rad = [r["class_radius"] for r in rows]
    rho = spearman(cov, rad)
    rho_hit = spearman([r["classes_hit"] for r in rows], rad)
    applicable = [r for r in rows if r["thm31_premise"]]
    findings = [
        Finding("GANs that capture more modes have a lower class radius (Fig. 3.1)",
                None if math.isnan(rho) else bool(rho < 0),
                f"Spearman(covered modes, class radius) = {rho:.3g} over {len(rows)} generators; "
                + ", ".join(f"{r['covered_modes']} modes: {r['class_radius']:.3g}" for r in sorted(rows, key=lambda r: r["covered_modes"]))),
        Finding("the class radius falls as the generator's support under the nearest-mode classifier grows (classes "
                f"with >= {COVER_MIN} generated points, no quality threshold)",
                None if math.isnan(rho_hit) else bool(rho_hit < 0),
                f"Spearman(classes hit, class radius) = {rho_hit:.3g}; "
                + ", ".join(f"{r['classes_hit']}: {r['class_radius']:.3g}" for r in sorted(rows, key=lambda r: r["classes_hit"]))),
        Finding("Theorem 3.1: E r(z) <= log(4 pi H2) / sqrt(2 H2) (H2 the collision entropy of the class frequencies) "
                "where every class has probability <= 1/5",
                None if not applicable else all(r["class_radius"] <= r["thm31_bound"] for r in applicable),
                f"{len(applicable)} of {len(rows)} generators meet the premise; " + ", ".join(
                    f"{r['generator']}: {r['class_radius']:.3g} <= {r['thm31_bound']:.3g}" for r in applicable)),
    ]
    return ReproResult(tables={"generators": rows}, figures=figs, findings=findings, notes=[
        f"2D grid with n = {size.n} ({K} modes, std {GRID_STD}); generators: MLP {size.hidden} ReLU (G and D), "
        f"Adam 1e-3, {size.steps} steps of batch {size.batch_size}, latent 2",
        "coverage of known degree: PacGAN-2 on grids restricted to k modes, plus plain GANs on all modes (the "
        "document does not say how its GANs came to collapse to different degrees)",
        f"covered mode: >= {COVER_MIN} of {size.coverage_samples} generated points within {QUALITY_STDS:g} std of it",
        f"class radius: {size.radius_samples} prior samples, DeepFool + 16 random rays, search radius 5 (censored "
        "samples count at 5; see censored_fraction)"])


def _lc_splits(ctx: ReproContext, size: LCSize) -> tuple[Split, Split, Any]:
    ds = size.load_dataset(ctx)
    full_train = ds.load("train")
    return full_train, ds.load("test"), ds


def _lc_model(name: str, train_split: Split, size: LCSize, ctx: ReproContext):
    cls = get_registry().model(name)
    cfg = cls.config_class(input_shape=tuple(train_split.x.shape[1:]), latent_dim=2, backbone="conv",
                           activation="relu", batchnorm=True, conv_channels=list(size.conv_channels), lr=1e-3)
    torch.manual_seed(ctx.seed)
    model = cls(cfg)
    tr = train(model, train_split, TrainConfig(epochs=size.epochs, batch_size=size.batch_size, seed=ctx.seed,
                                               device=ctx.device, progress=False), desc=name)
    model.eval()
    return model, tr


@experiment("lc_vae", "LC-VAE vs VAE: 2-d latent space and class radius", "Manoj §4.2, Fig. 4.1")
def lc_vae(ctx: ReproContext) -> ReproResult:
    import matplotlib.pyplot as plt

    size = LC_SIZES[ctx.size]
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
    rows, codes = [], {}
    for label, name in [("VAE", "vae"), ("LC-VAE", "lc_vae")]:
        model, tr = _lc_model(name, train_split, size, ctx)
        x = test.x.to(ctx.device)
        with torch.no_grad():
            mu = model.encode(x).mean
            rec_mse = float((model.decode(mu) - x).pow(2).mean())
            hole = torch.cdist(z_prior, mu).min(1).values
            probs = torch.softmax(clf(model.decode(z_prior)), 1).max(1).values
        codes[label] = mu.cpu()
        cr = _class_radius(model, ctx, size, label, size.dataset, ds.num_classes, classifier=clf)
        rows.append({"model": label, "test_recon_mse": rec_mse, "final_nll": float(tr.final.get("nll", math.nan)),
                     "final_kl": float(tr.final.get("kl", math.nan)), "code_norm_mean": float(mu.norm(dim=1).mean()),
                     "hole_dist_mean": float(hole.mean()), "hole_dist_p90": float(hole.quantile(0.9)),
                     "unsure_prior_share": float((probs < 0.5).double().mean()),
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
        ax.set_title(f"{label}: test codes (dotted: 1-3 prior std)", fontsize=8)
    fig.colorbar(sc, ax=axes, ticks=range(10), shrink=0.8, label="class")
    # no tight_layout: it does not handle a colorbar shared by two axes
    figs = [save_figure(fig, ctx, "latent_space.png", tight=False)]
    v, lc = rows
    findings = [
        Finding("LC-VAE tightens the latent space: the VAE leaves larger holes (Fig. 4.1); measured as the mean "
                "distance from a prior sample to its nearest test code",
                bool(lc["hole_dist_mean"] < v["hole_dist_mean"]),
                f"VAE {v['hole_dist_mean']:.3g} (90th pct {v['hole_dist_p90']:.3g}) vs LC-VAE {lc['hole_dist_mean']:.3g} "
                f"(90th pct {lc['hole_dist_p90']:.3g})"),
        Finding("LC-VAE lowers the class radius (the regulariser's motivation, Manoj §4.1; not measured in the document)",
                bool(lc["class_radius"] < v["class_radius"]),
                f"class radius VAE {v['class_radius']:.3g} +- {v['class_radius_se']:.2g} vs LC-VAE "
                f"{lc['class_radius']:.3g} +- {lc['class_radius_se']:.2g} (censored {v['censored_fraction']:.2g} / "
                f"{lc['censored_fraction']:.2g})"),
        Finding("LC-VAE does not impact sample / reconstruction quality (Fig. 4.2-4.3; read as test reconstruction "
                "MSE within 10% of the VAE's)",
                bool(abs(lc["test_recon_mse"] - v["test_recon_mse"]) <= 0.1 * v["test_recon_mse"]),
                f"test recon MSE VAE {v['test_recon_mse']:.4g} vs LC-VAE {lc['test_recon_mse']:.4g}"),
        Finding("more prior mass decodes to no clear class under LC-VAE (§4.2; proxy: classifier max-probability < 0.5 "
                "on decoded prior samples)",
                bool(lc["unsure_prior_share"] > v["unsure_prior_share"]),
                f"share VAE {v['unsure_prior_share']:.3g} vs LC-VAE {lc['unsure_prior_share']:.3g}"),
        Finding("the encoder may 'cheat' by shrinking the codes (the document's speculation, §4.2)",
                bool(lc["code_norm_mean"] < v["code_norm_mean"]),
                f"mean code norm VAE {v['code_norm_mean']:.3g} vs LC-VAE {lc['code_norm_mean']:.3g}"),
    ]
    data = "Fashion-MNIST 32x32" if size.dataset == "fashion-mnist" else size.dataset
    return ReproResult(tables={"models": rows}, figures=figs, findings=findings, notes=[
        f"data: {data} instead of MNIST; {size.train_n} training images, {size.epochs} epochs (document: 20), batch "
        f"{size.batch_size}, Adam 1e-3, latent 2 (Fig. 4.1), lambda 30, c 0.3",
        f"both models: conv encoder/decoder {size.conv_channels} k4 s2 BN ReLU (document: 128-256-512-1024 encoder, "
        "Table 1; narrowed for CPU), Bernoulli likelihood",
        f"classifier for the class radius: {clf.latentbench_name} (train accuracy "
        f"{clf_meta.get('train_accuracy', float('nan')):.3f}, accuracy on the {len(test)} test images {clf_test_acc:.3f})",
        f"class radius: {size.radius_samples} prior samples, search radius 5; holes and 'unsure' share from 2000 prior "
        f"samples against {len(test)} test codes"])
