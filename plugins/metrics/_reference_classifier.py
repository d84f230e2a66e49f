"""The reference classifiers of the headline score (docs/methods.md §7), shipped as package data.

A protocol's robust reconstruction accuracy asks "does the reconstruction of the attacked image
still show the same class?", judged by one fixed classifier per protocol. It is trained once, with a
fixed seed, adversarially (PGD-L2 within the protocol's ε grid, Madry et al.) so that the score
measures whether an attacker can make the autoencoder reconstruct another class rather than how
fragile a standard classifier is; the identity reference row shows what the classifier alone
explains. Weights ship as ``reference_classifiers/<name>/model.safetensors`` with ``config.json``
(architecture, training settings, seed, clean and robust test accuracy, sha256); the protocol
records the sha256 and :func:`load_reference_classifier` refuses weights that do not match it.

Rebuild one with ``python scripts/train_reference_classifier.py <name>`` (deterministic on CPU).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import Tensor

from latentbench.errors import LatentBenchError
from latentbench.plugins.metrics._domain_classifier import DomainNet
from latentbench.seeding import component_generator, derive_seed
from latentbench.solvers import pgd

FOLDER = Path(__file__).parent / "reference_classifiers"
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"


@dataclass(frozen=True)
class ReferenceClassifierSpec:
    """Everything that determines a reference classifier's weights."""

    name: str
    dataset: str
    image_size: Optional[int] = None
    dataset_options: dict = field(default_factory=dict, hash=False)
    width: int = 32
    feature_dim: int = 128
    epochs: int = 30
    batch_size: int = 64
    lr: float = 1e-3
    max_train: Optional[int] = None
    #: PGD-L2 adversarial training: each batch's budget is drawn uniformly from [0, adv_eps]
    adv_eps: float = 1.0
    adv_steps: int = 7
    #: loss = (1 - adv_weight) * CE(clean) + adv_weight * CE(adversarial)
    adv_weight: float = 0.5
    seed: int = 0
    #: budgets at which the test accuracy under PGD-L2 is recorded
    eval_eps: tuple[float, ...] = (0.25, 0.5, 1.0)
    #: record the robust accuracy on this many test images (a seeded subset; None: all)
    eval_max: Optional[int] = None


SPECS = {
    s.name: s for s in (
        ReferenceClassifierSpec("digits-v2-advl2", "digits", None, {"test_fraction": 0.5}, width=32, feature_dim=128,
                                epochs=40, batch_size=64, adv_eps=1.0, adv_steps=7, eval_eps=(0.25, 0.5, 1.0)),
        ReferenceClassifierSpec("fashion-mnist-32-v2-advl2", "fashion-mnist", 32, {}, width=16, feature_dim=64,
                                epochs=4, batch_size=128, max_train=20000, adv_eps=1.5, adv_steps=5,
                                eval_eps=(0.5, 1.0, 1.5), eval_max=2000),
        ReferenceClassifierSpec("colour-fashion-64-v1-advl2", "colour-fashion-mnist", 64, {}, width=16, feature_dim=64,
                                epochs=4, batch_size=128, max_train=12000, adv_eps=3.75, adv_steps=5,
                                eval_eps=(1.25, 2.5, 3.75), eval_max=500),
    )
}


def _ce_objective(net):
    def objective(xa: Tensor, y: Tensor) -> Tensor:
        return F.cross_entropy(net(xa), y, reduction="none")
    return objective


def pgd_l2_accuracy(net, x: Tensor, y: Tensor, eps: float, steps: int = 20, restarts: int = 1,
                    seed: int = 0, batch_size: int = 500) -> float:
    """Accuracy of ``net`` under PGD-L2 on its cross-entropy (the classifier alone)."""
    g = torch.Generator().manual_seed(seed)
    correct = 0
    for i in range(0, len(x), batch_size):
        xb, yb = x[i:i + batch_size], y[i:i + batch_size]
        out = pgd(_ce_objective(net), xb, eps, "l2", steps, 2.5 * eps / steps, restarts=restarts, generator=g,
                  context=(yb,))
        with torch.no_grad():
            correct += int((net(out.x_adv).argmax(1) == yb).sum())
    return correct / max(len(x), 1)


def sha256_bytes(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def train_reference_classifier(spec: ReferenceClassifierSpec, train_x: Tensor, train_y: Tensor, test_x: Tensor,
                               test_y: Tensor, num_classes: int, out_dir: Path | None = None) -> dict[str, Any]:
    """Train ``spec`` adversarially on CPU and write weights and ``config.json`` to ``out_dir``."""
    g = component_generator(spec.seed, "reference_classifier", spec.name)
    x, y = train_x, train_y
    if spec.max_train is not None and len(x) > spec.max_train:
        idx = torch.randperm(len(x), generator=g)[:spec.max_train]
        x, y = x[idx], y[idx]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(spec.seed, "reference_classifier", spec.name, "init"))
        net = DomainNet(tuple(x.shape[1:]), num_classes, spec.width, spec.feature_dim)
    opt = torch.optim.Adam(net.parameters(), lr=spec.lr)
    for _ in range(spec.epochs):
        perm = torch.randperm(len(x), generator=g)
        for i in range(0, len(x), spec.batch_size):
            idx = perm[i:i + spec.batch_size]
            xb, yb = x[idx], y[idx]
            eps = float(torch.rand((), generator=g)) * spec.adv_eps
            net.eval()
            for p in net.parameters():
                p.requires_grad_(False)
            adv = pgd(_ce_objective(net), xb, eps, "l2", spec.adv_steps, 2.5 * eps / spec.adv_steps,
                      generator=g, context=(yb,)).x_adv if eps > 0 else xb
            for p in net.parameters():
                p.requires_grad_(True)
            net.train()
            loss = ((1 - spec.adv_weight) * F.cross_entropy(net(xb), yb)
                    + spec.adv_weight * F.cross_entropy(net(adv), yb))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)
    with torch.no_grad():
        clean = float((net(test_x).argmax(1) == test_y).float().mean())
    if spec.eval_max is not None and len(test_x) > spec.eval_max:
        idx = torch.randperm(len(test_x), generator=torch.Generator().manual_seed(spec.seed))[:spec.eval_max]
        test_x, test_y = test_x[idx], test_y[idx]
    robust = {f"{e:g}": pgd_l2_accuracy(net, test_x, test_y, e, steps=50, restarts=2, seed=spec.seed)
              for e in spec.eval_eps}
    meta = {"name": spec.name, "spec": asdict(spec), "architecture": "latentbench DomainNet (CNN)",
            "input_shape": list(x.shape[1:]), "num_classes": int(num_classes), "n_train": int(len(x)),
            "test_accuracy": clean, "test_robust_accuracy_pgd_l2_50x2": robust, "n_test_robust": int(len(test_x)),
            "torch_version": torch.__version__}
    out = Path(out_dir) if out_dir is not None else FOLDER / spec.name
    out.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}, str(out / WEIGHTS_FILE))
    meta["sha256"] = sha256_bytes(out / WEIGHTS_FILE)
    (out / CONFIG_FILE).write_text(json.dumps(meta, indent=2) + "\n")
    return meta


def load_reference_classifier(name: str, sha256: Optional[str], device: str | torch.device = "cpu",
                              folder: Path | None = None):
    """The frozen reference classifier ``name`` (eval mode, on ``device``) and its ``config.json``.

    Raises a one-line :class:`LatentBenchError` when the weights are missing or their sha256 is not
    the one the protocol records (a retrained or tampered file would change every score)."""
    base = Path(folder) if folder is not None else FOLDER
    d = base / name
    if not (d / WEIGHTS_FILE).exists() or not (d / CONFIG_FILE).exists():
        known = sorted(p.name for p in base.iterdir() if p.is_dir()) if base.exists() else []
        raise LatentBenchError(f"reference classifier '{name}' is not shipped (known: {', '.join(known) or 'none'}); "
                               f"build it with `python scripts/train_reference_classifier.py {name}`")
    digest = sha256_bytes(d / WEIGHTS_FILE)
    if sha256 is not None and digest != sha256:
        raise LatentBenchError(f"reference classifier '{name}' has sha256 {digest[:12]}…, the protocol expects "
                               f"{sha256[:12]}…; reinstall latentbench or rebuild it with the protocol's settings")
    meta = json.loads((d / CONFIG_FILE).read_text())
    net = DomainNet(tuple(meta["input_shape"]), int(meta["num_classes"]), int(meta["spec"]["width"]),
                    int(meta["spec"]["feature_dim"]))
    net.load_state_dict(load_file(str(d / WEIGHTS_FILE)), strict=True)
    net.to(device).eval()
    for p in net.parameters():
        p.requires_grad_(False)
    net.latentbench_name = name
    return net, {**meta, "sha256": digest}
