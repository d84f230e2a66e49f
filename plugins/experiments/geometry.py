"""Reproductions of document Khan & Storkey (Khan & Storkey, local geometry of VAEs): Fig. 2, 3, 5 and 6.

Experiments registered here:

- ``beta_sweep`` (Khan & Storkey §4.2.1, Fig. 3 and 5): beta-VAEs over log-spaced beta; histograms and means of
  the spectral radius and von Neumann entropy of the stochastic pullback metric; reconstruction MSE
  vs step size along the top five eigendirections; latent change along the dominant one.
- ``mixup`` (Khan & Storkey §4.2.2, Fig. 6): latent-mixup VAE vs VAE, same scores and curves.
- ``eigen_attack_grid`` (Khan & Storkey §4.1, Fig. 2): originals, their corruptions x + delta * lambda_1 * v_1
  at delta_1 = 0.5233 and delta_2 = 0.7443, and the reconstructions of all three.

Everything is computed by the harness's plugins: models ``beta_vae`` / ``vae`` / ``mixup_vae``, the
generic trainer, :func:`latentbench.plugins._common.spectral.pullback_spectrum` for the scores and the
``eigendirection`` attack (mode ``paper``: x + s * delta * lambda_k * v_k, worse sign kept) for the
curves. Choices the document leaves open (stated in each result's notes):

- Data: Fashion-MNIST resized to 32x32 (the document used MNIST and Fashion-MNIST at 28x28), a
  fixed training subset and a few epochs (the document does not give its epoch count); ``smoke``
  uses the 8x8 digits with a one-layer MLP.
- Architecture: Khan & Storkey App. A's MLP (256-256-512, tanh, BatchNorm, latent 32, Adam 3e-3) with the
  Bernoulli likelihood of the VAE plugin.
- Entropy: both normalisations are reported. ``trace`` (docs/methods.md default, the von Neumann entropy of
  G / tr G: higher = more isotropic) and ``max`` (lambda / lambda_max, what the paper's figures
  used; the document reads a *lower* value as more isotropic).
- "Significant MSE change" (Fig. 5 row 2) is read as the smallest delta at which the mean MSE along
  lambda_1 reaches twice the clean reconstruction MSE (``MSE_RISE``).
- Seeds: every model is trained from ``seeds`` independent initialisations (and batch orders) on the
  same training subset and scored on the same test images, so scores are paired over images and
  seeds; findings go through :mod:`latentbench.stats` (trends: Spearman over (beta, seed) points;
  model comparisons: pigeonhole bootstrap over seeds x images with a permutation test over seeds).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from latentbench.data import Split
from latentbench.registry import get_registry
from latentbench import stats
from latentbench.experiment import (DataSize, Finding, ReproContext, ReproResult, experiment, save_figure,
                                    seed_matrix)
from latentbench.seeding import component_generator
from latentbench.training import TrainConfig, train
from latentbench.plugins._common.spectral import pullback_spectrum, von_neumann_entropy

#: Khan & Storkey §4.1: the two step sizes of Fig. 2
FIG2_DELTAS = (0.5233, 0.7443)
#: an MSE this many times the clean reconstruction MSE counts as "significant" (Fig. 5 row 2)
MSE_RISE = 2.0


@dataclass
class GeometrySize(DataSize):
    """Dataset, training and evaluation sizes of one run of the Khan & Storkey experiments."""

    hidden: list[int]
    latent_dim: int
    #: test images for the score histograms / means
    score_n: int
    #: test images attacked along the eigendirections (40 deltas x 5 directions x 2 signs each)
    attack_n: int
    num_deltas: int
    betas: list[float] = field(default_factory=list)
    grid_images: int = 6
    #: independently trained seeds per model
    seeds: int = 3


SIZES = {
    "smoke": GeometrySize(dataset="digits", image_size=None, train_n=300, epochs=1, batch_size=64, hidden=[32],
                          latent_dim=4, score_n=24, attack_n=8, num_deltas=6, betas=[0.01, 1.0, 10.0],
                          grid_images=3),
    "full": GeometrySize(dataset="fashion-mnist", image_size=32, train_n=4000, epochs=4, batch_size=128,
                         hidden=[256, 256, 512], latent_dim=32, score_n=500, attack_n=100, num_deltas=40,
                         betas=[float(b) for b in np.logspace(-2, 1, 8)]),
    # what 2 shared CPU cores finish in about 10-20 minutes per experiment with 3 seeds (stated in the notes)
    "reduced": GeometrySize(dataset="fashion-mnist", image_size=32, train_n=2000, epochs=3, batch_size=128,
                            hidden=[256, 256, 512], latent_dim=32, score_n=200, attack_n=50, num_deltas=20,
                            betas=[float(b) for b in np.logspace(-2, 1, 5)]),
}


def load_splits(ctx: ReproContext, size: GeometrySize) -> tuple[Split, Split]:
    """Training subset and test split of the run's dataset, through the dataset registry."""
    ds = size.load_dataset(ctx)
    train_split = ds.load("train").subset(size.train_n, ctx.seed, "repro-train")
    return train_split, ds.load("test")


def train_model(name: str, train_split: Split, size: GeometrySize, ctx: ReproContext, seed: int, **fields: Any):
    """Build model plugin ``name`` with App. A's MLP (overridable by ``fields``) and train it from ``seed``."""
    cls = get_registry().model(name)
    cfg = cls.config_class(input_shape=tuple(train_split.x.shape[1:]), latent_dim=size.latent_dim,
                           hidden=list(size.hidden), backbone="mlp", **fields)
    torch.manual_seed(seed)  # the weight initialisation, so each model of a seed starts alike
    model = cls(cfg)
    res = train(model, train_split, TrainConfig(epochs=size.epochs, batch_size=size.batch_size, seed=seed,
                                                device=ctx.device, progress=False), desc=f"{name} seed {seed}")
    model.eval()
    return model, res


def geometry_scores(model, x: torch.Tensor) -> dict[str, np.ndarray]:
    """Per-sample spectral radius and von Neumann entropies (trace and max normalisation) of G_x."""
    sp = pullback_spectrum(model, x, chunk_size=64)
    ev = sp.eigenvalues.double()
    return {"spectral_radius": sp.spectral_radius.double().cpu().numpy(),
            "vn_entropy_trace": von_neumann_entropy(ev, "trace").cpu().numpy(),
            "vn_entropy_max": von_neumann_entropy(ev, "max").cpu().numpy()}


def paper_attack(model, x: torch.Tensor, num_deltas: int, top_k: int = 5,
                 delta_min: float = 0.01, delta_max: float = 10.0):
    """The eigendirection attack in paper mode; returns its AttackResult (deltas, latent_change, recon_mse)."""
    cls = get_registry().attack("eigendirection")
    cfg = cls.config_class(mode="paper", top_k=top_k, delta_min=delta_min, delta_max=delta_max,
                           num_deltas=num_deltas)
    return cls(model, cfg)(x)


@torch.no_grad()
def clean_recon_mse(model, x: torch.Tensor) -> float:
    return float((model.reconstruct(x) - x).pow(2).mean())


def first_delta_reaching(deltas: np.ndarray, curve: np.ndarray, level: float) -> float:
    """Smallest delta whose curve value reaches ``level``; inf if none does."""
    hit = np.nonzero(curve >= level)[0]
    return float(deltas[hit[0]]) if len(hit) else math.inf




def _figure(ncols: int, nrows: int = 1, w: float = 3.2, h: float = 2.6):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(nrows, ncols, figsize=(w * ncols, h * nrows), squeeze=False)
    return fig, axes




def plot_histograms(ctx: ReproContext, scores: dict[str, dict[str, np.ndarray]], fname: str) -> str:
    keys = [("spectral_radius", "spectral radius"), ("vn_entropy_max", "VN entropy (max-normalised, paper)"),
            ("vn_entropy_trace", "VN entropy (trace-normalised)")]
    fig, axes = _figure(len(keys))
    for ax, (k, title) in zip(axes[0], keys):
        allv = np.concatenate([s[k] for s in scores.values()])
        bins = np.linspace(np.nanmin(allv), np.nanmax(allv), 31) if np.ptp(allv) > 0 else 10
        for label, s in scores.items():
            ax.hist(s[k], bins=bins, alpha=0.5, label=label)
        ax.set_title(title, fontsize=9)
    axes[0][0].legend(fontsize=7)
    return save_figure(fig, ctx, fname)


def plot_mse_curves(ctx: ReproContext, curves: dict[str, tuple[np.ndarray, np.ndarray, float]], fname: str) -> str:
    """curves: label -> (deltas (D,), mean MSE (D, r), clean MSE); one panel per label, one line per lambda_k."""
    fig, axes = _figure(len(curves))
    for ax, (label, (deltas, mse, clean)) in zip(axes[0], curves.items()):
        for k in range(mse.shape[1]):
            ax.plot(deltas, mse[:, k], label=f"$\\lambda_{k + 1}$")
        ax.axhline(clean, color="k", ls=":", lw=1, label="clean")
        ax.set_xscale("log")
        ax.set_xlabel("step size $\\delta$")
        ax.set_title(label, fontsize=9)
    axes[0][0].set_ylabel("MSE(x, recon of $x_c$)")
    axes[0][0].legend(fontsize=7)
    return save_figure(fig, ctx, fname)


def plot_latent_change(ctx: ReproContext, curves: dict[str, tuple[np.ndarray, np.ndarray]], fname: str) -> str:
    fig, axes = _figure(1, w=4.2, h=3.0)
    ax = axes[0][0]
    for label, (deltas, change) in curves.items():
        ax.plot(deltas, change, label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("step size $\\delta$ (dominant eigendirection)")
    ax.set_ylabel("mean $\\|\\mu(x_c) - \\mu(x)\\|_2$")
    ax.legend(fontsize=7)
    return save_figure(fig, ctx, fname)


def _model_summary(label: str, ev: dict[str, list]) -> dict[str, Any]:
    """Table row of one model: scores pooled over seeds and images, and the spread of the per-seed means."""
    row: dict[str, Any] = {"model": label, "seeds": len(ev["spectral_radius"]), "n": len(ev["spectral_radius"][0])}
    for k in ("spectral_radius", "vn_entropy_max", "vn_entropy_trace", "latent_change_at_delta1"):
        m = _pooled(ev, k)
        row[f"{k}_mean"] = float(m.mean())
        row[f"{k}_std"] = float(m.std())
        row[f"{k}_seed_sd"] = float(m.mean(axis=1).std(ddof=1)) if len(m) > 1 else math.nan
    row["clean_recon_mse"] = float(np.mean(ev["clean_mse"]))
    row["delta_mse_x2"] = ", ".join(_fmt(d) for d in ev["delta_star"])
    return row


def evaluate(model, test: Split, size: GeometrySize, ctx: ReproContext) -> dict[str, Any]:
    """Scores on ``score_n`` test images and the paper-mode attack curves on ``attack_n`` of them."""
    x = test.subset(size.score_n, ctx.seed, "repro-scores").x.to(ctx.device)
    xa = test.subset(size.attack_n, ctx.seed, "repro-attack").x.to(ctx.device)
    scores = geometry_scores(model, x)
    res = paper_attack(model, xa, size.num_deltas)
    deltas = res.extra["deltas"].numpy()
    mse = res.extra["recon_mse"].double().mean(dim=2).numpy()  # (D, r)
    per_image_change = res.extra["latent_change"][:, 0].double().numpy()  # dominant direction, (D, N)
    change = per_image_change.mean(axis=1)
    # per image, interpolated in log delta at delta = 1 (the grid need not contain 1)
    change1 = np.array([np.interp(0.0, np.log10(deltas), c) for c in per_image_change.T])
    clean = clean_recon_mse(model, xa)
    return {"scores": scores, "deltas": deltas, "mse": mse, "change": change, "clean_mse": clean,
            "latent_change_at_delta1": change1,
            "delta_star": first_delta_reaching(deltas, mse[:, 0], MSE_RISE * clean)}


#: per-image scores stored per seed, and per-seed scalars
IMAGE_KEYS = ("spectral_radius", "vn_entropy_max", "vn_entropy_trace", "latent_change_at_delta1")
SEED_KEYS = ("clean_mse", "delta_star")


def stored_evaluations(evals: list[dict[str, Any]]) -> dict[str, list]:
    """One model's evaluations over its seeds as stored: per-image lists per seed, per-seed scalars."""
    out = {k: [ev["scores"][k] if k in ev["scores"] else ev[k] for ev in evals] for k in IMAGE_KEYS}
    out.update({k: [float(ev[k]) for ev in evals] for k in SEED_KEYS})
    return out


def _pooled(ev: dict[str, list], key: str) -> np.ndarray:
    return seed_matrix(ev[key])


def _fmt(x: float) -> str:
    return f"{x:.3g}"


def _common_notes(size: GeometrySize) -> list[str]:
    data = ("Fashion-MNIST resized to 32x32 (bilinear, antialiased)" if size.dataset == "fashion-mnist"
            else f"{size.dataset} ({size.image_size or 'native'} px)")
    return [f"data: {data}; training subset of {size.train_n} images, {size.epochs} epochs, batch {size.batch_size} "
            "(the document trained on full MNIST / Fashion-MNIST at 28x28 for an unstated number of epochs)",
            f"model: MLP {size.hidden} tanh + BatchNorm, latent {size.latent_dim}, Bernoulli likelihood, Adam 3e-3 "
            "(Khan & Storkey App. A)",
            f"scores on {size.score_n} test images, eigendirection curves on {size.attack_n} test images "
            f"({size.num_deltas} log-spaced deltas in [0.01, 10], top 5 directions, worse sign kept)",
            "entropy: 'max' = lambda/lambda_max as the paper's figures (lower read as more isotropic by the paper); "
            "'trace' = von Neumann entropy of G/tr G (docs/methods.md default; higher = more isotropic)"]


def _trend(per_seed: dict[str, Any], key: str, per_image: bool = True):
    """(beta, per-seed value) points of one score over the sweep, and its Spearman estimate."""
    xs, ys = [], []
    for beta, label in zip(per_seed["meta"]["betas"], per_seed["meta"]["labels"]):
        vals = per_seed["models"][label][key]
        for v in vals:
            xs.append(beta)
            ys.append(float(np.mean(v)) if per_image else float(v))
    images = len(vals[0]) if per_image else 0
    return stats.spearman_test(xs, ys, seeds=len(vals), images=images), np.array(xs), np.array(ys)


def _ends(per_seed: dict[str, Any], key: str) -> str:
    labels = per_seed["meta"]["labels"]
    lo, hi = (float(_pooled(per_seed["models"][l], key).mean()) for l in (labels[0], labels[-1]))
    return f"mean {_fmt(lo)} at {labels[0]} vs {_fmt(hi)} at {labels[-1]}"


def beta_sweep_findings(per_seed: dict[str, Any]) -> list[Finding]:
    """Verdicts of the beta sweep from its stored per-seed results (trends as Spearman over (beta, seed))."""
    r_rad, *_ = _trend(per_seed, "spectral_radius")
    r_chg, *_ = _trend(per_seed, "latent_change_at_delta1")
    r_max, *_ = _trend(per_seed, "vn_entropy_max")
    r_tr, *_ = _trend(per_seed, "vn_entropy_trace")
    r_star, _, dstar = _trend(per_seed, "delta_star", per_image=False)
    rise = per_seed["meta"]["mse_rise"]
    return [
        Finding.of("higher beta suppresses the spectral radius lambda_1 (Fig. 5 cols 1, 3); Fig. 3's smaller latent "
                   "change along v_1 at fixed delta is the same effect, not a separate finding: the step is "
                   "delta * lambda_1, so a smaller lambda_1 alone shortens it", r_rad, -1,
                   f"spectral radius {_ends(per_seed, 'spectral_radius')}; dependent consequence (Fig. 3): "
                   f"Spearman(beta, latent change at delta = 1) = {_fmt(r_chg.effect)} [{_fmt(r_chg.low)}, "
                   f"{_fmt(r_chg.high)}], {_ends(per_seed, 'latent_change_at_delta1')}"),
        Finding.of("higher beta decreases the von Neumann entropy as the paper computes it (max-normalised, "
                   "lambda / lambda_max; Fig. 5 cols 2, 4)", r_max, -1, _ends(per_seed, "vn_entropy_max")),
        Finding.of("higher beta makes the local spectrum more isotropic (trace-normalised entropy, G / tr G, rises)",
                   r_tr, +1, _ends(per_seed, "vn_entropy_trace")),
        Finding.of(f"larger beta needs a larger step to change the MSE significantly (Fig. 5 row 2; first delta with "
                   f"MSE >= {rise:g} x clean along lambda_1, one value per seed)", r_star, +1,
                   "per (beta, seed): " + ", ".join(_fmt(d) for d in dstar) + " (inf = never reached; the step is "
                   "delta * lambda_1, so this finding too depends on the radius)"),
    ]


def _seed_note(n: int) -> str:
    return (f"{n} independently trained seeds per model (initialisation and batch order; same training subset and "
            "test images), findings through latentbench.stats")


@experiment("beta_sweep", "beta-VAE sweep: pullback-metric scores and eigendirection attack",
            "Khan & Storkey §4.2.1, Fig. 3, 5", findings=beta_sweep_findings)
def beta_sweep(ctx: ReproContext) -> ReproResult:
    size = SIZES[ctx.size]
    seeds = ctx.seed_list(size.seeds)
    train_split, test = load_splits(ctx, size)
    first: dict[float, dict[str, Any]] = {}
    models: dict[str, dict[str, list]] = {}
    labels = [f"beta={b:.3g}" for b in size.betas]
    rows = []
    for beta, label in zip(size.betas, labels):
        evals = []
        for seed in seeds:
            model, tr = train_model("beta_vae", train_split, size, ctx, seed, beta=float(beta))
            evals.append(evaluate(model, test, size, ctx))
        first[beta] = evals[0]
        models[label] = stored_evaluations(evals)
        rows.append({"beta": float(beta), **_model_summary(label, models[label])})
    betas = np.array(size.betas)
    pick = sorted({0, len(betas) // 3, (2 * len(betas)) // 3, len(betas) - 1})
    hist_betas = [size.betas[i] for i in pick]
    figs = [plot_histograms(ctx, {f"beta={b:.3g}": first[b]["scores"] for b in hist_betas}, "histograms.png")]

    fig, axes = _figure(3)
    for ax, key, title in zip(axes[0], ["spectral_radius", "vn_entropy_max", "vn_entropy_trace"],
                              ["spectral radius", "VN entropy (max-norm.)", "VN entropy (trace-norm.)"]):
        for k in range(len(seeds)):
            ax.plot(betas, [float(np.mean(models[l][key][k])) for l in labels], marker="o", lw=0.8,
                    label=f"seed {seeds[k]}")
        ax.set_xscale("log")
        ax.set_xlabel("beta")
        ax.set_title(title + " (per-seed means)", fontsize=9)
    axes[0][0].legend(fontsize=7)
    figs.append(save_figure(fig, ctx, "scores_vs_beta.png"))
    figs.append(plot_mse_curves(ctx, {f"beta={b:.3g}": (first[b]["deltas"], first[b]["mse"], first[b]["clean_mse"])
                                      for b in hist_betas}, "mse_vs_step.png"))
    figs.append(plot_latent_change(ctx, {f"beta={b:.3g}": (first[b]["deltas"], first[b]["change"]) for b in size.betas},
                                   "latent_change_vs_step.png"))
    per_seed = {"meta": {"betas": list(size.betas), "labels": labels, "seeds": seeds, "mse_rise": MSE_RISE},
                "models": models}
    return ReproResult(tables={"scores_per_beta": rows}, figures=figs, per_seed=per_seed,
                       notes=_common_notes(size) + [
                           f"{len(betas)} beta values log-spaced in [0.01, 10] (the document used 50); histograms and "
                           f"curves for beta in {[round(b, 3) for b in hist_betas]} from seed {seeds[0]}",
                           _seed_note(len(seeds)) + "; latent change = worse sign, per image at delta = 1"])


def mixup_findings(per_seed: dict[str, Any]) -> list[Finding]:
    """Verdicts of mixup vs VAE from the stored per-seed, per-image scores (mixup minus VAE)."""
    v, m = per_seed["models"]["VAE"], per_seed["models"]["mixup VAE"]

    def diff(key: str) -> tuple[stats.Estimate, str]:
        a, b = _pooled(m, key), _pooled(v, key)
        return stats.paired_bootstrap(a, b), f"mean VAE {_fmt(b.mean())} vs mixup {_fmt(a.mean())}"

    rad, ent_max, ent_tr, chg = (diff(k) for k in ("spectral_radius", "vn_entropy_max", "vn_entropy_trace",
                                                    "latent_change_at_delta1"))
    star = stats.welch_interval(m["delta_star"], v["delta_star"])
    return [
        Finding.of("mixup suppresses the spectral radius (Fig. 6 row 1); effect = mixup - VAE", rad[0], -1, rad[1]),
        Finding.of("mixup makes the eigenspectrum more isotropic (Fig. 6 caption), read as the paper computes entropy: "
                   "lower max-normalised entropy", ent_max[0], -1, ent_max[1]),
        Finding.of("mixup makes the eigenspectrum more isotropic: higher trace-normalised (von Neumann) entropy",
                   ent_tr[0], +1, ent_tr[1]),
        Finding.of("mixup reduces the latent change along the dominant eigendirection at delta = 1 (robustness, "
                   "Fig. 6 row 2)", chg[0], -1,
                   chg[1] + f"; first delta with MSE >= {per_seed['meta']['mse_rise']:g} x clean, mixup - VAE: "
                   f"{_fmt(star.effect)} [{_fmt(star.low)}, {_fmt(star.high)}] (Welch over seeds)"),
    ]


@experiment("mixup", "latent-mixup VAE vs VAE: pullback-metric scores", "Khan & Storkey §4.2.2, Fig. 6",
            findings=mixup_findings)
def mixup(ctx: ReproContext) -> ReproResult:
    size = SIZES[ctx.size]
    seeds = ctx.seed_list(size.seeds)
    train_split, test = load_splits(ctx, size)
    first, models, rows = {}, {}, []
    for label, name in [("VAE", "vae"), ("mixup VAE", "mixup_vae")]:
        evals = [evaluate(train_model(name, train_split, size, ctx, seed)[0], test, size, ctx) for seed in seeds]
        first[label] = evals[0]
        models[label] = stored_evaluations(evals)
        rows.append(_model_summary(label, models[label]))
    figs = [plot_histograms(ctx, {k: v["scores"] for k, v in first.items()}, "histograms.png"),
            plot_mse_curves(ctx, {k: (v["deltas"], v["mse"], v["clean_mse"]) for k, v in first.items()},
                            "mse_vs_step.png"),
            plot_latent_change(ctx, {k: (v["deltas"], v["change"]) for k, v in first.items()},
                               "latent_change_vs_step.png")]
    per_seed = {"meta": {"seeds": seeds, "mse_rise": MSE_RISE}, "models": models}
    return ReproResult(tables={"scores": rows}, figures=figs, per_seed=per_seed,
                       notes=_common_notes(size) + [
                           "mixup: alpha ~ Beta(0.5, 0.5), penalty weight 1, pairs mixed with the same pair and alpha "
                           "in x and z (docs/methods.md §1, not the public code's independent draws)",
                           _seed_note(len(seeds)) + f"; figures from seed {seeds[0]}"])


def _random_unit(shape: torch.Size, generator: torch.Generator, device, dtype) -> torch.Tensor:
    r = torch.randn(shape, generator=generator, dtype=torch.float64)
    r = r / r.reshape(shape[0], -1).norm(dim=1).reshape(-1, *([1] * (len(shape) - 1)))
    return r.to(device=device, dtype=dtype)


def _per_image_mse(a: torch.Tensor, b: torch.Tensor) -> np.ndarray:
    return (a - b).pow(2).reshape(len(a), -1).mean(1).double().cpu().numpy()


def attack_grid_scores(model, x: torch.Tensor, generator: torch.Generator) -> tuple[dict[str, np.ndarray], dict]:
    """Per-image recon MSE (clean and at each Fig. 2 delta), L2 step, and latent change along v_1 and along
    a random direction of the same length; plus the corrupted images and reconstructions for the figure."""
    with torch.no_grad():
        mu0 = model.encode(x).mean
        rec0 = model.decode(mu0)
    out = {"recon_mse_clean": _per_image_mse(rec0, x)}
    images = {"rec0": rec0}
    for k, delta in enumerate(FIG2_DELTAS, 1):
        res = paper_attack(model, x, num_deltas=1, top_k=1, delta_min=delta, delta_max=delta)
        xc = res.x_adv
        lam1 = res.extra["eigenvalues"][:, 0].to(x.device, x.dtype)
        # control: a random direction with the same (pre-clamp) length delta * lambda_1
        xr = (x + _random_unit(x.shape, generator, x.device, x.dtype) * (delta * lam1).reshape(-1, 1, 1, 1)).clamp(0, 1)
        with torch.no_grad():
            mu_c, mu_r = model.encode(xc).mean, model.encode(xr).mean
            rec_c, rec_r = model.decode(mu_c), model.decode(mu_r)
        images[delta] = (xc, rec_c)
        out[f"step_l2_d{k}"] = (xc - x).reshape(len(x), -1).norm(dim=1).double().cpu().numpy()
        out[f"recon_mse_d{k}"] = _per_image_mse(rec_c, x)
        out[f"random_recon_mse_d{k}"] = _per_image_mse(rec_r, x)
        out[f"latent_change_d{k}"] = (mu_c - mu0).norm(dim=1).double().cpu().numpy()
        out[f"random_latent_change_d{k}"] = (mu_r - mu0).norm(dim=1).double().cpu().numpy()
    return out, images


def eigen_attack_grid_findings(per_seed: dict[str, Any]) -> list[Finding]:
    """Verdicts of Fig. 2 from the stored per-seed, per-image reconstruction errors and latent changes."""
    m = {k: seed_matrix(v) for k, v in per_seed["models"]["VAE"].items()}
    rise = per_seed["meta"]["mse_rise"]
    d1, d2 = per_seed["meta"]["deltas"]
    ratio = m["recon_mse_d1"].mean() / m["recon_mse_clean"].mean()
    worse = [Finding.of(f"delta_{k}", stats.paired_bootstrap(m[f"latent_change_d{k}"], m[f"random_latent_change_d{k}"],
                                                                  with_permutation=False),
                        +1, f"delta_{k}: eigen {_fmt(m[f'latent_change_d{k}'].mean())} vs random "
                            f"{_fmt(m[f'random_latent_change_d{k}'].mean())}") for k in (1, 2)]
    return [
        Finding.of(f"at delta_1 = {d1} the reconstruction differs significantly from the original's (read as recon "
                   f"MSE >= {rise:g} x the clean one; effect = MSE(delta_1) - {rise:g} MSE(clean) per image)",
                   stats.paired_bootstrap(m["recon_mse_d1"], rise * m["recon_mse_clean"], with_permutation=False), +1,
                   f"recon MSE clean {_fmt(m['recon_mse_clean'].mean())} vs delta_1 {_fmt(m['recon_mse_d1'].mean())} "
                   f"(ratio of means {_fmt(ratio)})"),
        Finding.of(f"at delta_2 = {d2} the damage is more severe than at delta_1 (effect = MSE(delta_2) - MSE(delta_1))",
                   stats.paired_bootstrap(m["recon_mse_d2"], m["recon_mse_d1"], with_permutation=False), +1,
                   f"recon MSE {_fmt(m['recon_mse_d1'].mean())} -> {_fmt(m['recon_mse_d2'].mean())}"),
        Finding.every("the eigendirection moves the code more than a random direction of the same length, at both "
                      "deltas (control, not in the document; effect = eigen - random latent change)", worse),
    ]


@experiment("eigen_attack_grid", "eigendirection attack: corrupted images and reconstructions",
            "Khan & Storkey §4.1, Fig. 2", findings=eigen_attack_grid_findings)
def eigen_attack_grid(ctx: ReproContext) -> ReproResult:
    size = SIZES[ctx.size]
    seeds = ctx.seed_list(size.seeds)
    train_split, test = load_splits(ctx, size)
    x = test.subset(size.attack_n, ctx.seed, "repro-attack").x.to(ctx.device)
    per_seed_scores, shown = [], None
    for seed in seeds:
        model, _ = train_model("vae", train_split, size, ctx, seed)
        g = component_generator(seed, "repro", "eigen_attack_grid", "random")
        scores, images = attack_grid_scores(model, x, g)
        per_seed_scores.append(scores)
        if shown is None:  # the figure shows the first seed
            shown = images
    stored = {k: [s[k] for s in per_seed_scores] for k in per_seed_scores[0]}
    rows = [{"input": "original", "delta": 0.0, "recon_mse_mean": float(np.mean(stored["recon_mse_clean"]))}]
    for k, delta in enumerate(FIG2_DELTAS, 1):
        rows.append({"input": f"corrupted delta={delta}", "delta": delta,
                     "step_l2_mean": float(np.mean(stored[f"step_l2_d{k}"])),
                     "recon_mse_mean": float(np.mean(stored[f"recon_mse_d{k}"])),
                     "latent_change_mean": float(np.mean(stored[f"latent_change_d{k}"])),
                     "random_dir_latent_change_mean": float(np.mean(stored[f"random_latent_change_d{k}"])),
                     "random_dir_recon_mse_mean": float(np.mean(stored[f"random_recon_mse_d{k}"]))})

    n = min(size.grid_images, len(x))
    fig, axes = _figure(6, n, w=1.1, h=1.1)
    cols = [("original", x), ("recon", shown["rec0"])]
    for delta in FIG2_DELTAS:
        cols += [(f"x_c d={delta}", shown[delta][0]), (f"recon d={delta}", shown[delta][1])]
    for i in range(n):
        for j, (title, imgs) in enumerate(cols):
            ax = axes[i][j]
            img = imgs[i].detach().cpu()
            ax.imshow(img.permute(1, 2, 0).squeeze(-1).numpy(), cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(title, fontsize=6)
    figs = [save_figure(fig, ctx, "eigen_attack_grid.png")]
    _, r1, r2 = rows
    per_seed = {"meta": {"seeds": seeds, "mse_rise": MSE_RISE, "deltas": list(FIG2_DELTAS)}, "models": {"VAE": stored}}
    return ReproResult(tables={"attack": rows}, figures=figs, per_seed=per_seed,
                       notes=_common_notes(size)[:2] + [
                           f"beta = 1 VAE; {len(x)} test images attacked, {n} shown (seed {seeds[0]}); x_c = clamp(x +- "
                           "delta * lambda_1 * v_1, 0, 1) with the sign that moves mu(x) more",
                           _seed_note(len(seeds)),
                           "'the corruption hardly changes the input image' (Fig. 2) is a visual judgement, not tested: "
                           f"mean ||x_c - x||_2 = {_fmt(r1['step_l2_mean'])} (delta_1), {_fmt(r2['step_l2_mean'])} "
                           f"(delta_2) on {int(np.prod(x.shape[1:]))} pixels in [0, 1]; see the figure"])
