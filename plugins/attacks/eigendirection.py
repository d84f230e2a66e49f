"""``eigendirection``: one step along the top eigenvectors of the pullback metric (Khan & Storkey §3.1, App. B)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch
from torch import Tensor

from latentbench.attack import Attack, AttackConfig, AttackResult
from latentbench.plugins._common.spectral import pullback_spectrum

MODES = ("budget", "paper")


@dataclass
class EigendirectionConfig(AttackConfig):
    """Khan & Storkey §3.1 (Thm 3.2) and App. B, docs/methods.md §2 `eigendirection`.

    ``mode: budget``: x + s * eps * v_k, an L2 step of exactly ``eps`` before clamping to [0, 1]
    (comparable with the other L2 attacks). ``mode: paper``: x + s * delta * lambda_k * v_k over
    ``num_deltas`` log-spaced deltas in [``delta_min``, ``delta_max``] (Khan & Storkey §4: 40 steps
    in [0.01, 10]); its steps are not budgeted (``eps`` is unused). In both modes k runs over the
    ``top_k`` largest eigenpairs (Khan & Storkey Fig. 5 uses 5), s over {+1, -1}, and the worse
    candidate (largest ||mu(x_adv) - mu(x)||_2) is kept. ``curved`` uses App. B's decoder-curved metric
    (eq. 11) instead of the flat latent metric (eq. 4). ``steps``, ``step_size``, ``restarts`` and
    ``random_start`` do not apply to this one-shot attack.
    """

    eps: float = 1.0
    norm: str = "l2"
    steps: int = 0
    restarts: int = 1
    random_start: bool = False
    mode: str = "budget"
    top_k: int = 1
    curved: bool = False
    delta_min: float = 0.01
    delta_max: float = 10.0
    num_deltas: int = 40

    def validate(self) -> None:
        super().validate()
        if self.norm != "l2":
            raise ValueError(f"eigendirection steps are L2 steps (Khan & Storkey Thm 3.2), got norm '{self.norm}'; set norm: l2")
        if self.mode not in MODES:
            raise ValueError(f"unknown mode '{self.mode}': use one of {', '.join(MODES)}")
        if self.top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {self.top_k}")
        if not (0 < self.delta_min <= self.delta_max) or self.num_deltas < 1:
            raise ValueError("paper-mode grid needs 0 < delta_min <= delta_max and num_deltas >= 1, got "
                             f"{self.delta_min}, {self.delta_max}, {self.num_deltas}")

    def deltas(self) -> Tensor:
        return torch.logspace(math.log10(self.delta_min), math.log10(self.delta_max), self.num_deltas,
                              dtype=torch.float64)


class EigendirectionAttack(Attack):
    """Step along +-v_k, the top eigenvectors of G_x from :func:`latentbench.plugins._common.spectral.pullback_spectrum`.

    Objective reported (maximised): the latent change ||mu(x_adv) - mu(x)||_2 of the kept candidate.
    ``extra``: ``eigenvalues`` (B, r); ``direction`` (B,) index k and ``sign`` (B,) of the kept step.
    Paper mode adds ``deltas`` (D,), ``latent_change`` (D, r, B) (worse sign per delta and k) and
    ``recon_mse`` (D, r, B), the mean squared error between x and the reconstruction of that
    candidate (Khan & Storkey Fig. 5); its ``x_adv`` is the worst candidate over the whole grid and
    its ``budget`` the largest step length delta * lambda_k the grid takes (paper mode has no budget).
    Pass counts: the Jacobian costs one forward and one backward pass per encoder output row (d, or
    2d with sigma), plus d decoder forward-mode passes when curved; each candidate costs one forward.
    """

    name = "eigendirection"
    config_class = EigendirectionConfig
    source = "Khan & Storkey §3.1 Thm 3.2, §4 (eigendirection attack); App. B eq. 11 (curved)"

    def sweep(self, x: Tensor, budgets: Sequence[float], y: Tensor | None = None,
              target: Tensor | None = None) -> dict[float, AttackResult]:
        if self.config.mode == "paper":
            raise ValueError("eigendirection in mode 'paper' has no budget to sweep: its delta grid is in "
                             "extra['deltas']; use mode='budget' for a budget sweep")
        return super().sweep(x, budgets, y=y, target=target)

    def _candidates(self, x: Tensor, steps: Tensor) -> Tensor:
        """steps (r, B, *shape) -> clamped candidates (2, r, B, *shape) for signs +1, -1."""
        return torch.stack([(x + steps).clamp(0.0, 1.0), (x - steps).clamp(0.0, 1.0)])

    def perturb(self, x: Tensor, y: Tensor | None = None, target: Tensor | None = None) -> AttackResult:
        # one-shot candidates, no optimisation: nothing for the base class's solvers to do. A step of
        # L2 length eps clamped to [0, 1] only gets shorter, so the clamp is the whole projection.
        cfg = self.config
        B, shape = x.shape[0], x.shape[1:]
        spec = pullback_spectrum(self.model, x.detach(), curved=cfg.curved, eigenvectors=True, top_k=cfg.top_k)
        lam, vecs = spec.eigenvalues.to(x.device), spec.eigenvectors.to(device=x.device, dtype=x.dtype)
        r = lam.shape[1]
        with torch.no_grad():
            mu0 = self.encode_mean(x)
        d = mu0.shape[1]
        rows = 2 * d if spec.stochastic else d
        fwd, bwd = 1 + rows + (d + 1 if cfg.curved else 0), rows
        v = vecs.transpose(0, 1)  # (r, B, *shape)

        def evaluate(step: Tensor, with_recon: bool):
            cand = self._candidates(x, step)  # (2, r, B, *shape)
            flat = cand.reshape(-1, *shape)
            with torch.no_grad():
                post_mu = self.model.encode(flat).mean
                change = (post_mu.reshape(flat.shape[0], -1) - mu0.repeat(2 * r, 1)).norm(dim=1).view(2, r, B)
                mse = None
                if with_recon:
                    rec = self.model.decode(post_mu).reshape(2, r, B, -1)
                    mse = (rec - x.reshape(1, 1, B, -1)).pow(2).mean(dim=3)
            self.check_finite(change)
            return cand, change, mse

        if cfg.mode == "budget":
            cand, change, _ = evaluate(cfg.eps * v, with_recon=False)
            fwd += 2 * r
            best_change, x_adv, direction, sign = self._pick(cand, change)
            return self.make_result(x, x_adv, best_change, fwd, bwd, eigenvalues=lam.cpu(),
                                    direction=direction.cpu(), sign=sign.cpu())

        deltas = cfg.deltas()
        lam_b = lam.transpose(0, 1).reshape(r, B, *([1] * len(shape)))
        per_delta, mses = [], []
        best_change = torch.full((B,), -1.0, dtype=x.dtype, device=x.device)
        x_adv = x.clone()
        direction = torch.zeros(B, dtype=torch.long)
        sign = torch.ones(B, dtype=torch.long)
        for delta in deltas.tolist():
            cand, change, mse = evaluate(delta * lam_b * v, with_recon=True)
            fwd += 2 * r
            worse = change.argmax(dim=0)  # (r, B): sign index per direction
            per_delta.append(change.max(dim=0).values)
            mses.append(mse.gather(0, worse.unsqueeze(0)).squeeze(0))
            c, xa, k, s = self._pick(cand, change)
            better = c > best_change
            best_change = torch.where(better, c, best_change)
            x_adv[better] = xa[better]
            direction[better.cpu()] = k[better.cpu()]
            sign[better.cpu()] = s[better.cpu()]
        res = self.make_result(x, x_adv, best_change, fwd, bwd, eigenvalues=lam.cpu(), direction=direction,
                               sign=sign, deltas=deltas, latent_change=torch.stack(per_delta).cpu(),
                               recon_mse=torch.stack(mses).cpu())
        res.budget = float(deltas.max()) * float(lam.max()) if lam.numel() else 0.0
        return res

    @staticmethod
    def _pick(cand: Tensor, change: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Worst candidate per input from (2, r, B) changes: (change, x_adv, k, sign)."""
        two, r, B = change.shape
        flat = change.reshape(two * r, B)
        idx = flat.argmax(dim=0)
        best = flat.gather(0, idx.unsqueeze(0)).squeeze(0)
        x_adv = cand.reshape(two * r, B, *cand.shape[3:])[idx, torch.arange(B, device=cand.device)]
        k = (idx % r).cpu()
        s = torch.where(idx < r, 1, -1).cpu()
        return best, x_adv, k, s
