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
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from latentbench.data import Split
from latentbench.registry import get_registry
from latentbench.experiment import DataSize, Finding, ReproContext, ReproResult, experiment, save_figure, spearman
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


SIZES = {
    "smoke": GeometrySize(dataset="digits", image_size=None, train_n=300, epochs=1, batch_size=64, hidden=[32],
                          latent_dim=4, score_n=24, attack_n=8, num_deltas=6, betas=[0.01, 1.0, 10.0],
                          grid_images=3),
    "full": GeometrySize(dataset="fashion-mnist", image_size=32, train_n=4000, epochs=4, batch_size=128,
                         hidden=[256, 256, 512], latent_dim=32, score_n=500, attack_n=100, num_deltas=40,
                         betas=[float(b) for b in np.logspace(-2, 1, 8)]),
}


def load_splits(ctx: ReproContext, size: GeometrySize) -> tuple[Split, Split]:
    """Training subset and test split of the run's dataset, through the dataset registry."""
    ds = size.load_dataset(ctx)
    train_split = ds.load("train").subset(size.train_n, ctx.seed, "repro-train")
    return train_split, ds.load("test")


def train_model(name: str, train_split: Split, size: GeometrySize, ctx: ReproContext, **fields: Any):
    """Build model plugin ``name`` with App. A's MLP (overridable by ``fields``) and train it."""
    cls = get_registry().model(name)
    cfg = cls.config_class(input_shape=tuple(train_split.x.shape[1:]), latent_dim=size.latent_dim,
                           hidden=list(size.hidden), backbone="mlp", **fields)
    torch.manual_seed(ctx.seed)  # the weight initialisation, so each model of a run starts alike
    model = cls(cfg)
    res = train(model, train_split, TrainConfig(epochs=size.epochs, batch_size=size.batch_size, seed=ctx.seed,
                                                device=ctx.device, progress=False), desc=name)
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


def _model_summary(label: str, s: dict[str, np.ndarray]) -> dict[str, Any]:
    return {"model": label, "n": len(s["spectral_radius"]),
            "spectral_radius_mean": float(np.mean(s["spectral_radius"])),
            "spectral_radius_std": float(np.std(s["spectral_radius"])),
            "vn_entropy_max_mean": float(np.mean(s["vn_entropy_max"])),
            "vn_entropy_max_std": float(np.std(s["vn_entropy_max"])),
            "vn_entropy_trace_mean": float(np.mean(s["vn_entropy_trace"])),
            "vn_entropy_trace_std": float(np.std(s["vn_entropy_trace"]))}


def evaluate(model, test: Split, size: GeometrySize, ctx: ReproContext) -> dict[str, Any]:
    """Scores on ``score_n`` test images and the paper-mode attack curves on ``attack_n`` of them."""
    x = test.subset(size.score_n, ctx.seed, "repro-scores").x.to(ctx.device)
    xa = test.subset(size.attack_n, ctx.seed, "repro-attack").x.to(ctx.device)
    scores = geometry_scores(model, x)
    res = paper_attack(model, xa, size.num_deltas)
    deltas = res.extra["deltas"].numpy()
    mse = res.extra["recon_mse"].double().mean(dim=2).numpy()  # (D, r)
    change = res.extra["latent_change"][:, 0].double().mean(dim=1).numpy()  # dominant direction, (D,)
    clean = clean_recon_mse(model, xa)
    return {"scores": scores, "deltas": deltas, "mse": mse, "change": change, "clean_mse": clean,
            "delta_star": first_delta_reaching(deltas, mse[:, 0], MSE_RISE * clean)}


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


@experiment("beta_sweep", "beta-VAE sweep: pullback-metric scores and eigendirection attack", "Khan & Storkey §4.2.1, Fig. 3, 5")
def beta_sweep(ctx: ReproContext) -> ReproResult:
    size = SIZES[ctx.size]
    train_split, test = load_splits(ctx, size)
    out: dict[float, dict[str, Any]] = {}
    rows = []
    for beta in size.betas:
        model, tr = train_model("beta_vae", train_split, size, ctx, beta=float(beta))
        ev = evaluate(model, test, size, ctx)
        out[beta] = ev
        row = _model_summary(f"beta={beta:.3g}", ev["scores"])
        row.update(beta=float(beta), final_loss=float(tr.final.get("loss", math.nan)),
                   final_kl=float(tr.final.get("kl", math.nan)), clean_recon_mse=ev["clean_mse"],
                   delta_mse_x2=ev["delta_star"], latent_change_at_delta1=float(np.interp(0.0, np.log10(ev["deltas"]), ev["change"])))
        rows.append(row)
    betas = np.array(size.betas)
    pick = sorted({0, len(betas) // 3, (2 * len(betas)) // 3, len(betas) - 1})
    hist_betas = [size.betas[i] for i in pick]
    figs = [plot_histograms(ctx, {f"beta={b:.3g}": out[b]["scores"] for b in hist_betas}, "histograms.png")]

    fig, axes = _figure(3)
    for ax, key, title in zip(axes[0], ["spectral_radius", "vn_entropy_max", "vn_entropy_trace"],
                              ["spectral radius", "VN entropy (max-norm.)", "VN entropy (trace-norm.)"]):
        m = np.array([r[f"{key}_mean"] for r in rows])
        s = np.array([r[f"{key}_std"] for r in rows])
        ax.errorbar(betas, m, yerr=s, marker="o", capsize=2)
        ax.set_xscale("log")
        ax.set_xlabel("beta")
        ax.set_title(title, fontsize=9)
    figs.append(save_figure(fig, ctx, "scores_vs_beta.png"))
    figs.append(plot_mse_curves(ctx, {f"beta={b:.3g}": (out[b]["deltas"], out[b]["mse"], out[b]["clean_mse"])
                                      for b in hist_betas}, "mse_vs_step.png"))
    figs.append(plot_latent_change(ctx, {f"beta={b:.3g}": (out[b]["deltas"], out[b]["change"]) for b in size.betas},
                                   "latent_change_vs_step.png"))

    radius = np.array([r["spectral_radius_mean"] for r in rows])
    ent_max = np.array([r["vn_entropy_max_mean"] for r in rows])
    ent_tr = np.array([r["vn_entropy_trace_mean"] for r in rows])
    dstar = np.array([r["delta_mse_x2"] for r in rows])
    change1 = np.array([r["latent_change_at_delta1"] for r in rows])
    rho = {k: spearman(betas, v) for k, v in [("radius", radius), ("ent_max", ent_max), ("ent_tr", ent_tr),
                                             ("dstar", dstar), ("change", change1)]}
    lo, hi = rows[0], rows[-1]
    findings = [
        Finding("higher beta suppresses the spectral radius (Fig. 5 cols 1, 3)",
                bool(rho["radius"] < 0 and hi["spectral_radius_mean"] < lo["spectral_radius_mean"]),
                f"Spearman(beta, mean radius) = {_fmt(rho['radius'])}; mean radius {_fmt(lo['spectral_radius_mean'])} "
                f"at beta={lo['beta']:.3g} vs {_fmt(hi['spectral_radius_mean'])} at beta={hi['beta']:.3g}"),
        Finding("higher beta decreases the von Neumann entropy as the paper computes it (max-normalised; Fig. 5 cols 2, 4)",
                bool(rho["ent_max"] < 0 and hi["vn_entropy_max_mean"] < lo["vn_entropy_max_mean"]),
                f"Spearman(beta, mean max-normalised entropy) = {_fmt(rho['ent_max'])}; "
                f"{_fmt(lo['vn_entropy_max_mean'])} -> {_fmt(hi['vn_entropy_max_mean'])}"),
        Finding("higher beta makes the local spectrum more isotropic (trace-normalised entropy rises)",
                bool(rho["ent_tr"] > 0 and hi["vn_entropy_trace_mean"] > lo["vn_entropy_trace_mean"]),
                f"Spearman(beta, mean trace-normalised entropy) = {_fmt(rho['ent_tr'])}; "
                f"{_fmt(lo['vn_entropy_trace_mean'])} -> {_fmt(hi['vn_entropy_trace_mean'])} (max log(2d) = "
                f"{_fmt(math.log(2 * size.latent_dim))})"),
        Finding(f"larger beta needs a larger step to change the MSE significantly (Fig. 5 row 2; first delta with "
                f"MSE >= {MSE_RISE:g} x clean along lambda_1)",
                None if not np.isfinite(dstar).any() else bool(rho["dstar"] > 0),
                "delta per beta: " + ", ".join(f"{b:.3g}: {_fmt(d)}" for b, d in zip(betas, dstar))
                + f"; Spearman = {_fmt(rho['dstar'])} (inf = never reached; steps are delta * lambda_1, so a smaller "
                "lambda_1 alone makes the step shorter)"),
        Finding("small beta: much larger latent change along the dominant eigendirection (Fig. 3)",
                bool(rho["change"] < 0 and change1[0] > change1[-1]),
                "mean ||mu(x_c) - mu(x)|| at delta = 1: " + ", ".join(f"{b:.3g}: {_fmt(c)}" for b, c in zip(betas, change1))
                + f"; Spearman = {_fmt(rho['change'])}"),
    ]
    return ReproResult(tables={"scores_per_beta": rows}, figures=figs, findings=findings,
                       notes=_common_notes(size) + [
                           f"{len(betas)} beta values log-spaced in [0.01, 10] (the document used 50); histograms for "
                           f"beta in {[round(b, 3) for b in hist_betas]}",
                           "one model per beta, one seed; latent change = worse sign, mean over attacked images"])


@experiment("mixup", "latent-mixup VAE vs VAE: pullback-metric scores", "Khan & Storkey §4.2.2, Fig. 6")
def mixup(ctx: ReproContext) -> ReproResult:
    size = SIZES[ctx.size]
    train_split, test = load_splits(ctx, size)
    out, rows = {}, []
    for label, name in [("VAE", "vae"), ("mixup VAE", "mixup_vae")]:
        model, tr = train_model(name, train_split, size, ctx)
        ev = evaluate(model, test, size, ctx)
        out[label] = ev
        row = _model_summary(label, ev["scores"])
        row.update(final_nll=float(tr.final.get("nll", math.nan)), final_kl=float(tr.final.get("kl", math.nan)),
                   clean_recon_mse=ev["clean_mse"], delta_mse_x2=ev["delta_star"],
                   latent_change_at_delta1=float(np.interp(0.0, np.log10(ev["deltas"]), ev["change"])))
        rows.append(row)
    figs = [plot_histograms(ctx, {k: v["scores"] for k, v in out.items()}, "histograms.png"),
            plot_mse_curves(ctx, {k: (v["deltas"], v["mse"], v["clean_mse"]) for k, v in out.items()},
                            "mse_vs_step.png"),
            plot_latent_change(ctx, {k: (v["deltas"], v["change"]) for k, v in out.items()},
                               "latent_change_vs_step.png")]
    v, m = rows
    findings = [
        Finding("mixup suppresses the spectral radius (Fig. 6 row 1)",
                bool(m["spectral_radius_mean"] < v["spectral_radius_mean"]),
                f"mean radius VAE {_fmt(v['spectral_radius_mean'])} +- {_fmt(v['spectral_radius_std'])} vs mixup "
                f"{_fmt(m['spectral_radius_mean'])} +- {_fmt(m['spectral_radius_std'])}"),
        Finding("mixup makes the eigenspectrum more isotropic (Fig. 6 caption): lower max-normalised entropy",
                bool(m["vn_entropy_max_mean"] < v["vn_entropy_max_mean"]),
                f"max-normalised entropy VAE {_fmt(v['vn_entropy_max_mean'])} vs mixup {_fmt(m['vn_entropy_max_mean'])}"),
        Finding("mixup makes the eigenspectrum more isotropic: higher trace-normalised (von Neumann) entropy",
                bool(m["vn_entropy_trace_mean"] > v["vn_entropy_trace_mean"]),
                f"trace-normalised entropy VAE {_fmt(v['vn_entropy_trace_mean'])} vs mixup {_fmt(m['vn_entropy_trace_mean'])}"),
        Finding("mixup reduces the latent change along the dominant eigendirection (robustness, Fig. 6 row 2)",
                bool(m["latent_change_at_delta1"] < v["latent_change_at_delta1"]),
                f"mean latent change at delta = 1: VAE {_fmt(v['latent_change_at_delta1'])} vs mixup "
                f"{_fmt(m['latent_change_at_delta1'])}; first delta with MSE >= {MSE_RISE:g} x clean: VAE "
                f"{_fmt(v['delta_mse_x2'])} vs mixup {_fmt(m['delta_mse_x2'])}"),
    ]
    return ReproResult(tables={"scores": rows}, figures=figs, findings=findings,
                       notes=_common_notes(size) + ["mixup: alpha ~ Beta(0.5, 0.5), penalty weight 1, pairs mixed "
                                                    "with the same pair and alpha in x and z (docs/methods.md §1, not the public "
                                                    "code's independent draws)"])


def _random_unit(shape: torch.Size, generator: torch.Generator, device, dtype) -> torch.Tensor:
    r = torch.randn(shape, generator=generator, dtype=torch.float64)
    r = r / r.reshape(shape[0], -1).norm(dim=1).reshape(-1, *([1] * (len(shape) - 1)))
    return r.to(device=device, dtype=dtype)


@experiment("eigen_attack_grid", "eigendirection attack: corrupted images and reconstructions", "Khan & Storkey §4.1, Fig. 2")
def eigen_attack_grid(ctx: ReproContext) -> ReproResult:
    size = SIZES[ctx.size]
    train_split, test = load_splits(ctx, size)
    model, _ = train_model("vae", train_split, size, ctx)
    x = test.subset(size.attack_n, ctx.seed, "repro-attack").x.to(ctx.device)
    g = component_generator(ctx.seed, "repro", "eigen_attack_grid", "random")
    rows, corrupted = [], {}
    with torch.no_grad():
        mu0 = model.encode(x).mean
        rec0 = model.decode(mu0)
    rows.append({"input": "original", "delta": 0.0, "step_l2_mean": 0.0, "recon_mse_mean": float((rec0 - x).pow(2).mean()),
                 "latent_change_mean": 0.0, "random_dir_latent_change_mean": 0.0, "random_dir_recon_mse_mean":
                 float((rec0 - x).pow(2).mean())})
    for delta in FIG2_DELTAS:
        res = paper_attack(model, x, num_deltas=1, top_k=1, delta_min=delta, delta_max=delta)
        xc = res.x_adv
        lam1 = res.extra["eigenvalues"][:, 0].to(x.device, x.dtype)
        step = (xc - x).reshape(len(x), -1).norm(dim=1)
        # control: a random direction with the same (pre-clamp) length delta * lambda_1
        xr = (x + _random_unit(x.shape, g, x.device, x.dtype) * (delta * lam1).reshape(-1, 1, 1, 1)).clamp(0, 1)
        with torch.no_grad():
            mu_c, mu_r = model.encode(xc).mean, model.encode(xr).mean
            rec_c, rec_r = model.decode(mu_c), model.decode(mu_r)
        corrupted[delta] = (xc, rec_c)
        rows.append({"input": f"corrupted delta={delta}", "delta": delta, "step_l2_mean": float(step.mean()),
                     "recon_mse_mean": float((rec_c - x).pow(2).mean()),
                     "latent_change_mean": float((mu_c - mu0).norm(dim=1).mean()),
                     "random_dir_latent_change_mean": float((mu_r - mu0).norm(dim=1).mean()),
                     "random_dir_recon_mse_mean": float((rec_r - x).pow(2).mean())})

    n = min(size.grid_images, len(x))
    fig, axes = _figure(6, n, w=1.1, h=1.1)
    cols = [("original", x, None), ("recon", rec0, None)]
    for delta in FIG2_DELTAS:
        cols += [(f"x_c d={delta}", corrupted[delta][0], None), (f"recon d={delta}", corrupted[delta][1], None)]
    for i in range(n):
        for j, (title, imgs, _) in enumerate(cols):
            ax = axes[i][j]
            img = imgs[i].detach().cpu()
            ax.imshow(img.permute(1, 2, 0).squeeze(-1).numpy(), cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(title, fontsize=6)
    figs = [save_figure(fig, ctx, "eigen_attack_grid.png")]
    o, d1, d2 = rows
    findings = [
        Finding("at delta_1 = 0.5233 the reconstruction differs significantly from the original's "
                f"(read as recon MSE >= {MSE_RISE:g} x the clean one)",
                bool(d1["recon_mse_mean"] >= MSE_RISE * o["recon_mse_mean"]),
                f"recon MSE clean {_fmt(o['recon_mse_mean'])} vs delta_1 {_fmt(d1['recon_mse_mean'])} "
                f"(ratio {_fmt(d1['recon_mse_mean'] / o['recon_mse_mean'])})"),
        Finding("at delta_2 = 0.7443 the damage is more severe than at delta_1",
                bool(d2["recon_mse_mean"] > d1["recon_mse_mean"]),
                f"recon MSE {_fmt(d1['recon_mse_mean'])} -> {_fmt(d2['recon_mse_mean'])}"),
        Finding("the eigendirection is a worse direction than a random one of the same length (control, not in the "
                "document)",
                bool(d1["latent_change_mean"] > d1["random_dir_latent_change_mean"]
                     and d2["latent_change_mean"] > d2["random_dir_latent_change_mean"]),
                f"latent change eigen vs random: delta_1 {_fmt(d1['latent_change_mean'])} vs "
                f"{_fmt(d1['random_dir_latent_change_mean'])}, delta_2 {_fmt(d2['latent_change_mean'])} vs "
                f"{_fmt(d2['random_dir_latent_change_mean'])}"),
        Finding("the corruption hardly changes the input image (judged from the figure; L2 step given)", None,
                f"mean ||x_c - x||_2 = {_fmt(d1['step_l2_mean'])} (delta_1), {_fmt(d2['step_l2_mean'])} (delta_2) "
                f"on {int(np.prod(x.shape[1:]))} pixels in [0, 1]; whether that is visible is a judgement, see the figure"),
    ]
    return ReproResult(tables={"attack": rows}, figures=figs, findings=findings,
                       notes=_common_notes(size)[:2] + [
                           f"beta = 1 VAE; {len(x)} test images attacked, {n} shown; x_c = clamp(x +- delta * lambda_1 "
                           "* v_1, 0, 1) with the sign that moves mu(x) more"])
