"""``robust_accuracy``: the headline score (docs/methods.md §7).

For an autoencoder with deterministic reconstruction r(x) = decode(mean of encode(x)) and the
protocol's reference classifier c:

- clean reconstruction accuracy: fraction of evaluation images with c(r(x)) = y;
- robust reconstruction accuracy at ε: fraction of images for which c(r(x + δ)) = y for the
  adversarial δ of every attack of the ensemble (L2 ball of radius ε ∩ [0, 1] box, per image), and
  c(r(x)) = y. An image broken at ε' is broken at every ε >= ε' (the same δ is feasible there), so the
  curve never rises with ε; the headline is its mean over the protocol's ε grid;
- robust fidelity at ε: mean over attacked images of the worst MS-SSIM(r(x), r(x + δ)) over the
  ensemble's adversarial examples.

The ensemble ("AutoAttack for autoencoders") runs per image, each attack only on the images still
robust after the previous ones, every attack starting from the clean image: (1) ``reconstruction_ce``
(APGD-CE through the autoencoder), (2) ``latent_space`` towards the codes of the nearest evaluation
images of other classes (several targets), (3) ``max_damage``, (4) ``random_search`` (gradient-free,
fixed query budget). The robust flags are saved after every stage under the cache folder, so a killed
evaluation resumes where it stopped. The images are attacked in fixed chunks (``chunk``), each with its
own generator derived from (seed, ε, attack, image range), so a resumed run ends with the same numbers
and any few images can be recomputed alone, exactly as in the full run (:meth:`RobustAccuracy.images`;
`leaderboard verify` checks a random subset of an entry's per-image records this way). Sanity checks after Carlini et al. ("On evaluating adversarial
robustness") and AutoAttack's automatic checks are computed every time and stored as flags.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from latentbench import __version__
from latentbench.errors import LatentBenchError
from latentbench.metric import LeaderboardValue, Metric, MetricConfig, MetricContext, MetricResult
from latentbench.plugins.attacks.latent_space import LatentSpaceAttack, LatentSpaceConfig
from latentbench.plugins.attacks.max_damage import MaxDamageAttack, MaxDamageConfig
from latentbench.plugins.attacks.random_search import RandomSearch, RandomSearchConfig
from latentbench.plugins.attacks.reconstruction_ce import ReconstructionCE, ReconstructionCEConfig
from latentbench.plugins.metrics._msssim import ms_ssim_pairs, setup_for_size
from latentbench.plugins.metrics.downstream import encode_means
from latentbench.plugins.metrics._reference_classifier import load_reference_classifier
from latentbench.seeding import component_generator

#: bump when the ensemble's code changes what a stage computes: saved stages of other formats are not resumed
STATE_FORMAT = 2  # 2: one generator per chunk of images (per-image reproducible)

#: the ensemble, in the order it runs
ENSEMBLE = ("reconstruction_ce", "latent_space", "max_damage", "random_search")

#: the sanity flags every evaluation reports (value 1.0: raised), with the message shown for each
FLAGS = {
    "collapsed": "clean reconstruction accuracy is within noise of the largest class's share: the "
                 "reconstructions carry no class information (posterior collapse?)",
    "nonmonotone": "an image broken at a smaller ε survived a larger one: the attacks are too weak at the larger ε",
    "unbounded_not_broken": "an unbounded budget does not bring robust accuracy to chance level: attack too weak "
                            "or model ignores its input (see constant_output)",
    "constant_output": "the reconstruction does not depend on the input",
    "gradient_masking": "the gradient-free attack broke images the gradient attacks missed: possible gradient masking",
    "not_converged": "doubling the first attack's steps changes robust accuracy by more than the tolerance",
    "stochastic": "encode/decode give different outputs for the same input: the score assumes a deterministic r(x)",
    "vanishing_gradients": "input gradients are zero or non-finite on more than 10% of images",
    "budget_reaches_other_class": "an image of another class lies within the largest ε of an evaluation image",
}


@dataclass
class RobustAccuracyConfig(MetricConfig):
    """The ensemble's settings are fixed by the protocol version; none is tuned per model."""

    classifier: str = "digits-v2-advl2"
    #: sha256 of the classifier's weights the protocol was built with (None: not checked)
    classifier_sha256: Optional[str] = None
    budgets: list = field(default_factory=lambda: [0.25, 0.5, 1.0])
    ce_steps: int = 50
    ce_restarts: int = 2
    latent_targets: int = 3
    latent_steps: int = 50
    max_damage_steps: int = 50
    max_damage_restarts: int = 1
    random_queries: int = 300
    batch_size: int = 250
    #: images used by the unbounded-budget and doubled-steps checks
    check_subset: int = 100
    #: flag gradient masking when the gradient-free attack breaks more than this fraction of images
    masking_tolerance: float = 0.02
    #: flag non-convergence when doubling the first attack's steps moves robust accuracy by more
    convergence_tolerance: float = 0.03
    #: number of example images kept for the leaderboard's image grid
    examples: int = 8
    #: run each attack only on images the previous ones left robust (AutoAttack's schedule); False
    #: runs every attack on every clean-correct image (same robust flags, for benchmarks and audits)
    early_stop: bool = True
    #: images attacked together, with one generator derived from (seed, ε, attack, image range): an
    #: image's result depends only on its chunk, so one chunk can be recomputed alone, exactly
    #: (`leaderboard verify`). Smaller: cheaper checks, slower full runs (more, smaller batches;
    #: digits-v2's ensemble on 256 images, one CPU thread: chunk 256 16.2 s, 128 20.4 s, 64 30.6 s)
    chunk: int = 128

    def validate(self) -> None:
        if not self.classifier:
            raise ValueError("robust_accuracy needs the protocol's reference classifier: set classifier")
        b = [float(v) for v in self.budgets]
        if not b or any(v <= 0 for v in b) or b != sorted(set(b)):
            raise ValueError(f"budgets must be increasing positive numbers, got {self.budgets}")
        for k in ("ce_steps", "ce_restarts", "latent_targets", "latent_steps", "max_damage_steps",
                  "max_damage_restarts", "random_queries", "batch_size", "check_subset", "chunk"):
            if int(getattr(self, k)) < 1:
                raise ValueError(f"{k} must be >= 1")


def _se(p: float, n: int) -> float:
    return math.sqrt(max(p * (1 - p), 0.0) / max(n, 1))


def _frac(mask: Tensor) -> float:
    """Share of True in a boolean tensor, as an exact count ratio (a float32 mean is off by ~1e-8)."""
    return int(mask.sum()) / max(mask.numel(), 1)


def _key(v: float) -> str:
    return f"{float(v):g}"


@dataclass
class _Setup:
    """What :meth:`RobustAccuracy._setup` computes once on all evaluation images."""

    model: Any
    clf: Any
    clf_meta: dict
    x: Tensor
    y: Tensor
    n: int
    K: int
    budgets: list
    r_clean: Tensor
    correct: Tensor
    targets: Tensor
    T: int
    ms_setup: Any


def robust_flags(records: dict[str, np.ndarray], budgets: list[float]) -> dict[str, np.ndarray]:
    """``robust@ε`` per image from the primary records: clean-correct and not broken at any ε' <= ε
    (the same δ is feasible at ε, so the curve never rises)."""
    correct = np.asarray(records["clean_correct"]).astype(bool)
    cum = np.zeros(len(correct), dtype=bool)
    out = {}
    for eps in budgets:
        cum |= ~correct | (np.asarray(records[f"first_breaking_attack@{_key(eps)}"]) >= 0)
        out[f"robust@{_key(eps)}"] = (~cum).astype(np.int8)
    return out


def aggregate_images(records: dict[str, np.ndarray], budgets: list[float]) -> dict[str, float]:
    """Every value derived from the per-image records alone, computed the same way from the
    metric's own tensors and from an entry's stored records (exact counts and a correctly rounded
    sum, so `leaderboard verify` can compare with ==)."""
    correct = np.asarray(records["clean_correct"]).astype(bool)
    n = len(correct)
    values: dict[str, float] = {"n_images": float(n)}
    cum = np.zeros(n, dtype=bool)
    nonmono = np.zeros(n, dtype=bool)
    accs, robust = [], []
    for eps in budgets:
        k = _key(eps)
        first = np.asarray(records[f"first_breaking_attack@{k}"]).astype(np.int64)
        broken = ~correct | (first >= 0)
        nonmono |= cum & ~broken
        cum |= broken
        acc = int((~cum).sum()) / n
        accs.append(acc)
        robust.append(~cum)
        values[f"robust_accuracy@{k}"] = acc
        values[f"robust_accuracy@{k}_se"] = _se(acc, n)
        worst = np.asarray(records[f"worst_fidelity@{k}"], dtype=np.float64)
        attacked = correct  # every clean-correct image meets the first attack
        # no image attacked (every clean reconstruction misclassified): the worst fidelity, 0
        values[f"robust_fidelity@{k}"] = math.fsum(worst[attacked].tolist()) / int(attacked.sum()) \
            if attacked.any() else 0.0
        for ai, name in enumerate(ENSEMBLE):
            values[f"broken_first_by_{name}@{k}"] = float((first == ai).sum())
    clean = int(correct.sum()) / n
    values["clean_accuracy"] = clean
    values["clean_accuracy_se"] = _se(clean, n)
    values["robust_accuracy_mean"] = float(np.mean(accs))
    # images are shared between budgets, so the SE of the mean is that of the per-image mean score
    per_image = np.stack(robust).astype(np.float64).mean(0)
    values["robust_accuracy_mean_se"] = float(per_image.std(ddof=1) / math.sqrt(n)) if n > 1 else 0.0
    values["nonmonotone_fraction"] = int(nonmono.sum()) / n
    values["gradient_free_fraction"] = values[f"broken_first_by_random_search@{_key(budgets[-1])}"] / n
    return values


class _State:
    """Per-stage progress, written atomically after every stage (a killed run resumes from it)."""

    def __init__(self, path: Optional[Path]):
        self.path = path
        self.data: dict[str, Any] = {"stages": {}}
        if path is not None and path.exists():
            self.data = json.loads(path.read_text())

    def get(self, stage: str) -> Optional[dict]:
        return self.data["stages"].get(stage)

    def put(self, stage: str, value: dict) -> None:
        self.data["stages"][stage] = value
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps(self.data))
        os.replace(tmp, self.path)


class RobustAccuracy(Metric):
    name = "robust_accuracy"
    config_class = RobustAccuracyConfig
    needs = frozenset({"model", "data", "train_data"})
    source = "docs/methods.md §7 (headline score; after RobustBench/AutoAttack)"
    leaderboard = (
        LeaderboardValue("*_se", "", None, (0.0, 1.0)),
        LeaderboardValue("flag_*", "", None, (0.0, 1.0)),
        LeaderboardValue("robust_accuracy_mean", "robust rec. acc. (mean over ε)", "higher", (0.0, 1.0)),
        LeaderboardValue("clean_accuracy", "clean rec. acc.", "higher", (0.0, 1.0)),
        LeaderboardValue("robust_accuracy@*", "robust rec. acc. ε={}", "higher", (0.0, 1.0)),
        LeaderboardValue("robust_fidelity@*", "robust fidelity ε={}", "higher", (0.0, 1.0)),
        LeaderboardValue("*fraction*", "", None, (0.0, 1.0)),
        LeaderboardValue("*accuracy*", "", None, (0.0, 1.0)),
    )

    # -- pieces -------------------------------------------------------------------------------------
    def _batches(self, n: int):
        bs = int(self.config.batch_size)
        for i in range(0, n, bs):
            yield slice(i, min(i + bs, n))

    @torch.no_grad()
    def _recon(self, model, x: Tensor) -> Tensor:
        return torch.cat([model.decode(model.encode(x[s]).mean) for s in self._batches(len(x))]) if len(x) else x

    @torch.no_grad()
    def _pred(self, clf, r: Tensor) -> Tensor:
        return torch.cat([clf(r[s]).argmax(1) for s in self._batches(len(r))]) if len(r) else r.new_zeros(0).long()

    def _attack(self, name: str, model, clf, eps: float, gen, steps_scale: int = 1):
        c = self.config
        if name == "reconstruction_ce":
            return ReconstructionCE(model, ReconstructionCEConfig(eps=eps, steps=c.ce_steps * steps_scale,
                                                                  restarts=c.ce_restarts), generator=gen, classifier=clf)
        if name == "latent_space":
            return LatentSpaceAttack(model, LatentSpaceConfig(eps=eps, steps=c.latent_steps, restarts=1), generator=gen)
        if name == "max_damage":
            return MaxDamageAttack(model, MaxDamageConfig(eps=eps, steps=c.max_damage_steps,
                                                          restarts=c.max_damage_restarts), generator=gen)
        if name == "random_search":
            return RandomSearch(model, RandomSearchConfig(eps=eps, steps=c.random_queries), generator=gen, classifier=clf)
        raise LatentBenchError(f"unknown ensemble attack '{name}'")

    def _run_attack(self, atk, x: Tensor, y: Tensor, target: Optional[Tensor] = None) -> Tensor:
        outs = []
        for s in self._batches(len(x)):
            res = atk(x[s], y=y[s], target=None if target is None else target[s])
            outs.append(res.x_adv)
        return torch.cat(outs)

    @staticmethod
    def _state_path(ctx: MetricContext, model, clf, cfg_plain: dict) -> Path:
        h = hashlib.sha256()
        # the classifier too: a caller-supplied one is not named by the config
        for prefix, module in (("model.", model), ("classifier.", clf)):
            for k, v in sorted(getattr(module, "state_dict", dict)().items()):
                h.update((prefix + k).encode())
                h.update(v.detach().cpu().contiguous().numpy().tobytes())
        h.update(ctx.x.detach().cpu().contiguous().numpy().tobytes())
        h.update(ctx.y.detach().cpu().numpy().tobytes())
        # the code's version too: a state saved by an older ensemble must not be resumed by a newer one
        h.update(json.dumps({"config": cfg_plain, "seed": ctx.seed, "model": type(model).__name__,
                             "latentbench": __version__, "state_format": STATE_FORMAT}, sort_keys=True).encode())
        return Path(ctx.cache_dir) / "robust_accuracy" / f"{h.hexdigest()[:24]}.json"

    # -- the evaluation ------------------------------------------------------------------------------
    def _setup(self, ctx: MetricContext) -> "_Setup":
        """What every image's attacks depend on, computed on all evaluation images (cheap, and the
        same whether all images or a few are then attacked): clean reconstructions and predictions,
        and the latent targets (nearest codes of other classes among all images)."""
        c = self.config
        if ctx.y is None:
            raise LatentBenchError(f"robust_accuracy needs labelled evaluation data; dataset '{ctx.dataset}' has none")
        model, dev = ctx.model, ctx.device
        if ctx.classifier is not None:  # a caller's own classifier (tests, audits): recorded as such
            clf = ctx.classifier()
            clf_meta = {"name": getattr(clf, "latentbench_name", "caller-supplied"), "sha256": None,
                        "num_classes": ctx.num_classes}
        else:
            clf, clf_meta = load_reference_classifier(c.classifier, c.classifier_sha256, dev)
        n, K = len(ctx.x), int(ctx.num_classes or clf_meta["num_classes"])
        self._check_inputs(ctx, K)
        x, y = ctx.x.to(dev), ctx.y.to(dev).long()
        r_clean = self._recon(model, x)
        correct = self._pred(clf, r_clean) == y
        with torch.no_grad():
            codes = encode_means(model, x, int(c.batch_size))
            dist = torch.cdist(codes, codes)
            dist[y[:, None] == y[None, :]] = float("inf")
            T = min(int(c.latent_targets), max(n - int(torch.bincount(y).max()), 1))
            targets = dist.topk(T, dim=1, largest=False).indices  # (n, T)
        return _Setup(model, clf, clf_meta, x, y, n, K, [float(b) for b in c.budgets], r_clean, correct, targets, T,
                      setup_for_size(x.shape[-2], x.shape[-1]))

    def _chunks(self, n: int, images: Optional[Tensor] = None) -> list[tuple[int, int]]:
        """The [lo, hi) image ranges attacked together (all of them, or those holding ``images``)."""
        size = int(self.config.chunk)
        ids = range(-(-n // size)) if images is None else sorted({int(i) // size for i in images.tolist()})
        return [(i * size, min((i + 1) * size, n)) for i in ids]

    def _ensemble(self, ctx: MetricContext, s: "_Setup", chunks: list[tuple[int, int]], state: "_State",
                  examples: int) -> tuple[dict[float, Tensor], ...]:
        """Run the ensemble on the images of ``chunks``; per ε: the raw broken flags, the index of
        the first breaking attack (-1: none) and the worst MS-SSIM (NaN: not attacked), each (n,), and
        the example grid's adversarial inputs.

        Each chunk of images is attacked with its own generator, derived from (seed, ε, attack,
        image range), and as its own batch: an image's result depends only on its chunk, so the
        chunks holding a few images reproduce the full run's results for them exactly (`leaderboard
        verify` recomputes a random subset of images this way)."""
        c, x, y, n, dev = self.config, s.x, s.y, s.n, s.x.device
        ex_idx = torch.arange(min(examples, n), device=dev)
        broken_raw, firsts, worsts, ex_advs = {}, {}, {}, {}
        for eps in s.budgets:
            broken = ~s.correct
            first = torch.full((n,), -1, dtype=torch.long, device=dev)
            worst = torch.full((n,), float("nan"), dtype=x.dtype, device=dev)
            ex_adv = x[ex_idx].clone()
            for ai, name in enumerate(ENSEMBLE):
                stage = f"{_key(eps)}/{name}"
                saved = state.get(stage)
                if saved is not None:
                    broken = torch.tensor(saved["broken"], dtype=torch.bool, device=dev)
                    first = torch.tensor(saved["first"], dtype=torch.long, device=dev)
                    # JSON has no NaN: images not attacked (yet) were saved as None
                    worst = torch.tensor([math.nan if v is None else v for v in saved["worst"]], dtype=x.dtype,
                                         device=dev)
                    ex_adv = torch.tensor(saved["ex_adv"], dtype=x.dtype, device=dev).view_as(ex_adv)
                    continue
                for lo, hi in chunks:
                    idx = torch.arange(lo, hi, device=dev)
                    todo = idx[~broken[idx]] if c.early_stop else idx[s.correct[idx]]
                    gen = component_generator(ctx.seed, "robust_accuracy", _key(eps), name, f"images {lo}-{hi}")
                    self._attack_chunk(s, name, ai, eps, gen, todo, broken, first, worst, ex_adv)
                state.put(stage, {"broken": broken.tolist(), "first": first.tolist(),
                                  "worst": [None if math.isnan(v) else v for v in worst.tolist()],
                                  "ex_adv": ex_adv.flatten().tolist()})
            broken_raw[eps], firsts[eps], worsts[eps], ex_advs[eps] = broken.clone(), first, worst, ex_adv
        return broken_raw, firsts, worsts, ex_advs

    def _attack_chunk(self, s: "_Setup", name: str, ai: int, eps: float, gen, todo: Tensor, broken: Tensor,
                      first: Tensor, worst: Tensor, ex_adv: Tensor) -> None:
        """One attack of the ensemble on the images ``todo`` of one chunk; updates the flags in place."""
        x, y = s.x, s.y
        atk = self._attack(name, s.model, s.clf, eps, gen)
        for t in range(s.T) if name == "latent_space" else range(1):
            if todo.numel() == 0:
                break
            tgt = x[s.targets[todo, t]] if name == "latent_space" else None
            xa = self._run_attack(atk, x[todo], y[todo], tgt)
            ra = self._recon(s.model, xa)
            fooled = self._pred(s.clf, ra) != y[todo]
            ms = ms_ssim_pairs(s.r_clean[todo], ra, s.ms_setup).to(x.dtype)
            worst[todo] = torch.fmin(worst[todo], ms)
            newly = todo[fooled & ~broken[todo]]
            broken[newly] = True
            first[newly] = ai
            # the grid shows, per example image, the first breaking input (else the last attempt)
            for j, i in enumerate(todo.tolist()):
                if i < len(ex_adv):
                    ex_adv[i] = xa[j]
            todo = todo[~fooled]

    def images(self, ctx: MetricContext, indices) -> dict[str, np.ndarray]:
        """The per-image records (``per_sample``) of the evaluation images ``indices`` only, exactly
        as the full :meth:`compute` reports them: only the chunks holding these images are attacked.
        What `leaderboard verify` recomputes for a random subset of an entry's images."""
        s = self._setup(ctx)
        idx = torch.as_tensor(list(indices), dtype=torch.long)
        if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= s.n):
            raise LatentBenchError(f"robust_accuracy: image indices must lie in [0, {s.n}), got {idx.tolist()[:5]}...")
        _, firsts, worsts, _ = self._ensemble(ctx, s, self._chunks(s.n, idx), _State(None), 0)
        full = self._records(s.correct, firsts, worsts)
        return {k: v[idx.numpy()] for k, v in full.items()}

    @classmethod
    def sample_images(cls, config: dict[str, Any], n: int, k: int, rng: np.random.Generator) -> np.ndarray:
        """At least ``k`` of ``n`` images for `leaderboard verify` to recompute: whole chunks drawn at
        random, so the check costs about ``k`` images (each chunk is attacked as a whole anyway)."""
        size = int(config.get("chunk", cls.config_class().chunk))
        picked: list[int] = []
        for c in rng.permutation(-(-n // size)).tolist():
            if len(picked) >= k:
                break
            picked += range(c * size, min((c + 1) * size, n))
        return np.array(sorted(picked), dtype=np.int64)

    @staticmethod
    def _records(correct: Tensor, firsts: dict[float, Tensor], worsts: dict[float, Tensor]) -> dict[str, np.ndarray]:
        """Per-image records: clean correctness, per ε the first breaking attack (-1: none) and the
        worst MS-SSIM over the ensemble (0: not attacked), and the robust flags they imply."""
        rec: dict[str, np.ndarray] = {"clean_correct": correct.cpu().numpy().astype(np.int8)}
        for eps in firsts:
            rec[f"first_breaking_attack@{_key(eps)}"] = firsts[eps].cpu().numpy().astype(np.int8)
            # 0 where not attacked (clean reconstruction misclassified): NaN would not compare equal
            rec[f"worst_fidelity@{_key(eps)}"] = torch.where(correct, worsts[eps], 0.0).cpu().numpy().astype(np.float32)
        rec.update(robust_flags(rec, list(firsts)))
        return rec

    def compute(self, ctx: MetricContext) -> MetricResult:
        c = self.config
        s = self._setup(ctx)
        model, clf, x, y, n, K, budgets = s.model, s.clf, s.x, s.y, s.n, s.K, s.budgets
        state = _State(self._state_path(ctx, model, clf, self.config.to_dict()))
        _, firsts, worsts, ex_advs = self._ensemble(ctx, s, self._chunks(n), state, int(c.examples))
        per_sample = self._records(s.correct, firsts, worsts)
        values = aggregate_images(per_sample, budgets)
        flags: dict[str, bool] = {"nonmonotone": values["nonmonotone_fraction"] > 0.01}
        mid = budgets[len(budgets) // 2]
        ex_idx = torch.arange(min(int(c.examples), n), device=x.device)
        ex_adv = ex_advs[mid]
        with torch.no_grad():
            examples = {"eps": mid, "index": ex_idx.tolist(), "label": y[ex_idx].tolist(),
                        "x": x[ex_idx].cpu().numpy().round(4).tolist(),
                        "r_x": s.r_clean[ex_idx].cpu().numpy().round(4).tolist(),
                        "x_adv": ex_adv.cpu().numpy().round(4).tolist(),
                        "r_x_adv": self._recon(model, ex_adv).cpu().numpy().round(4).tolist(),
                        "pred_clean": self._pred(clf, s.r_clean[ex_idx]).tolist(),
                        "pred_adv": self._pred(clf, self._recon(model, ex_adv)).tolist()}

        # -- sanity checks ------------------------------------------------------------------------
        share = float(torch.bincount(y, minlength=K).max()) / n
        values["largest_class_share"] = share
        flags["collapsed"] = values["clean_accuracy"] <= share + 2 * _se(share, n)
        values.update(self._checks(ctx, model, clf, x, y, s.correct, s.r_clean, budgets, K, state, flags))
        flags["gradient_masking"] = values["gradient_free_fraction"] > c.masking_tolerance
        dists = self._other_class_distances(ctx, x, y)
        if dists is not None:
            values["nearest_other_class_min"] = float(dists.min())
            values["nearest_other_class_median"] = float(dists.median())
            flags["budget_reaches_other_class"] = bool(float(dists.min()) <= budgets[-1])
        for k, v in flags.items():
            values[f"flag_{k}"] = float(bool(v))
        raised = [k for k, v in flags.items() if v]
        info = {"classifier": {k: s.clf_meta.get(k) for k in ("name", "sha256", "test_accuracy",
                                                                     "test_robust_accuracy_pgd_l2_50x2")},
                "ensemble": list(ENSEMBLE), "flags": raised, "flag_messages": {k: FLAGS[k] for k in raised},
                "examples": examples}
        return MetricResult(values=values, per_sample=per_sample, info=info)

    @classmethod
    def aggregate_images(cls, per_sample: dict[str, np.ndarray], config: dict[str, Any]) -> dict[str, float]:
        """The values this metric derives from its per-image records alone (`leaderboard verify`
        recomputes them from an entry's stored records and compares exactly)."""
        return aggregate_images(per_sample, [float(b) for b in config.get("budgets", cls.config_class().budgets)])

    @staticmethod
    def _check_inputs(ctx: MetricContext, K: int) -> None:
        """The threat model is a ball in [0, 1] images with integer labels: refuse anything else by name
        (otherwise NaN reads as an attack failure, and out-of-box images as an attack leaving the box)."""
        x, y, where = ctx.x, ctx.y, f"robust_accuracy on dataset '{ctx.dataset}'"
        if x.dim() != 4 or len(x) == 0:
            raise LatentBenchError(f"{where} needs a non-empty batch of images (N, C, H, W), got shape {tuple(x.shape)}")
        if y.shape != (len(x),):
            raise LatentBenchError(f"{where} needs one label per image: labels of shape {tuple(y.shape)} for "
                                   f"{len(x)} images")
        if not bool(torch.isfinite(x).all()):
            raise LatentBenchError(f"{where}: the evaluation images contain NaN or inf values")
        lo, hi = float(x.min()), float(x.max())
        if lo < 0 or hi > 1:
            raise LatentBenchError(f"{where}: images must lie in [0, 1] (the attack box), got range [{lo:g}, {hi:g}]")
        if y.is_floating_point() and not bool((y == y.round()).all()):
            raise LatentBenchError(f"{where}: labels must be integers (class indices), got non-integer values")
        ymin, ymax = int(y.min()), int(y.max())
        if ymin < 0 or ymax >= K:
            raise LatentBenchError(f"{where}: labels must be class indices in [0, {K}), got range [{ymin}, {ymax}]; "
                                   f"check num_classes and the classifier")

    def _checks(self, ctx, model, clf, x, y, correct, r_clean, budgets, K, state, flags) -> dict[str, float]:
        c, out = self.config, {}
        saved = state.get("checks")
        if saved is not None:
            flags.update({k: bool(v) for k, v in saved["flags"].items()})
            return saved["values"]
        sub = torch.nonzero(correct).flatten()[: int(c.check_subset)]
        m = len(sub)
        # determinism: the same input twice must give the same code and reconstruction
        with torch.no_grad():
            xs = x[: min(64, len(x))]
            q1, q2 = model.encode(xs), model.encode(xs)
            stochastic = not torch.equal(q1.mean, q2.mean) or not torch.equal(model.decode(q1.mean), model.decode(q1.mean))
        flags["stochastic"] = stochastic
        # constant output: reconstructions of different images do not differ
        spread = float((r_clean - r_clean.mean(0, keepdim=True)).abs().amax())
        out["output_spread"] = spread
        flags["constant_output"] = spread < 1e-6
        # input gradients of the classifier's loss through the autoencoder
        zero = nonfinite = 0
        for s in self._batches(len(x)):
            xb = x[s].detach().requires_grad_(True)
            loss = F.cross_entropy(clf(model.decode(model.encode(xb).mean)), y[s], reduction="sum")
            (g,) = torch.autograd.grad(loss, xb, allow_unused=True)
            if g is None:
                zero += len(xb)
                continue
            gn = g.flatten(1).norm(dim=1)
            nonfinite += int((~torch.isfinite(gn)).sum())
            zero += int((gn == 0).sum())
        out["zero_gradient_fraction"] = zero / len(x)
        out["nonfinite_gradient_fraction"] = nonfinite / len(x)
        flags["vanishing_gradients"] = (zero + nonfinite) / len(x) > 0.1
        if m:
            # an unbounded budget (the box's diameter) must break down to chance level
            diam = math.sqrt(float(x[0].numel()))
            atk = self._attack("reconstruction_ce", model, clf, diam, component_generator(ctx.seed, "robust_accuracy", "unbounded"))
            xa = self._run_attack(atk, x[sub], y[sub])
            acc_unb = _frac(self._pred(clf, self._recon(model, xa)) == y[sub])
            out["unbounded_accuracy"] = acc_unb
            flags["unbounded_not_broken"] = acc_unb > 1.0 / K + 2 * _se(1.0 / K, m)
            # convergence: the first attack with twice the steps, at the largest budget
            accs = []
            for scale in (1, 2):
                atk = self._attack("reconstruction_ce", model, clf, budgets[-1],
                                   component_generator(ctx.seed, "robust_accuracy", "convergence"), steps_scale=scale)
                xa = self._run_attack(atk, x[sub], y[sub])
                accs.append(_frac(self._pred(clf, self._recon(model, xa)) == y[sub]))
            out["double_steps_change"] = abs(accs[1] - accs[0])
            flags["not_converged"] = out["double_steps_change"] > c.convergence_tolerance
        else:
            out["unbounded_accuracy"] = 0.0
            out["double_steps_change"] = 0.0
            flags["unbounded_not_broken"] = flags["not_converged"] = False
        out["check_subset"] = float(m)
        state.put("checks", {"values": out, "flags": {k: flags[k] for k in
                                                      ("stochastic", "constant_output", "vanishing_gradients",
                                                       "unbounded_not_broken", "not_converged")}})
        return out

    def _other_class_distances(self, ctx, x, y) -> Optional[Tensor]:
        """L2 distance from each evaluation image to the nearest image of another class (evaluation
        and training images): the ε grid must stay below it (docs/methods.md §7)."""
        if ctx.train_x is None or ctx.train_y is None:
            return None
        ref_x = torch.cat([ctx.train_x.to(device=x.device, dtype=x.dtype).flatten(1), x.flatten(1)])
        ref_y = torch.cat([ctx.train_y.to(x.device).long(), y])
        best = []
        for s in self._batches(len(x)):
            d = torch.cdist(x[s].flatten(1), ref_x)
            d[y[s][:, None] == ref_y[None, :]] = float("inf")
            best.append(d.min(1).values)
        return torch.cat(best)
