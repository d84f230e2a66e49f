"""beta-TCVAE with minibatch-weighted sampling (Chen et al. 2018; baseline of Saseendran (thesis) §5.4; docs/methods.md §1, §6).

The KL term of the ELBO, estimated per sample at z ~ q(z|x_i), splits into

    log q(z|x_i) - log p(z) =  [log q(z|x_i) - log q(z)]              index-code MI
                             + [log q(z) - sum_d log q(z_d)]            total correlation (TC)
                             + [sum_d log q(z_d) - sum_d log p(z_d)]    dimension-wise KL

and beta-TCVAE minimises  -log p(x|z) + alpha MI + beta TC + gamma DW-KL  with alpha = gamma = 1
and beta = 6 (docs/methods.md §1). The aggregate posterior q(z) and its marginals q(z_d) are estimated on the
minibatch {x_1..x_M} of a dataset of size N by minibatch-weighted sampling (MWS, Chen et al. eq. 7):

    log q(z_i)   ~ logsumexp_j  sum_d log q(z_id | x_j)  - log(N M)
    log q(z_id)  ~ logsumexp_j  log q(z_id | x_j)        - log(N M)

The log importance weight -log(N M) enters log q(z_i) once per sample, and each of the D marginal
estimates once: a popular implementation adds it to every latent dimension before summing, which
counts it D times in log q(z) (docs/methods.md §6).

Choices the papers leave open:
- Architecture, likelihood and optimiser are the VAE's (Saseendran (thesis) §5.4 uses the same architecture for
  all baselines); one reparameterised sample per input, as in Chen et al.
- N: ``dataset_size`` in the config, or (when null) the number of training images the trainer's
  loader yields, counted once in ``on_train_start`` (this draws one extra shuffle permutation).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import torch
from torch import Tensor

from latentbench.plugins.models.vae import VAE, VAEConfig

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


@dataclass
class BetaTCVAEConfig(VAEConfig):
    """VAE defaults (docs/methods.md §1) plus the weights of the three KL parts (beta = 6 on the TC)."""

    beta: float = 6.0
    #: weight of the index-code mutual information
    alpha: float = 1.0
    #: weight of the dimension-wise KL
    gamma: float = 1.0
    #: N of the MWS estimator; null = count the training set when training starts
    dataset_size: Optional[int] = None

    def validate(self) -> None:
        super().validate()
        for k in ("alpha", "beta", "gamma"):
            if not getattr(self, k) >= 0:
                raise ValueError(f"{k} must be >= 0, got {getattr(self, k)}")
        if self.dataset_size is not None and self.dataset_size < 1:
            raise ValueError(f"dataset_size must be a positive integer or null, got {self.dataset_size}")


def gaussian_log_density_matrix(z: Tensor, mean: Tensor, std: Tensor) -> Tensor:
    """(M, M, D) tensor of log N(z_id; mean_jd, std_jd^2): row i is sample i, column j is posterior j."""
    zi = z.unsqueeze(1)
    return -_HALF_LOG_2PI - torch.log(std).unsqueeze(0) - 0.5 * ((zi - mean.unsqueeze(0)) / std.unsqueeze(0)).pow(2)


def mws_log_qz(z: Tensor, mean: Tensor, std: Tensor, dataset_size: int) -> tuple[Tensor, Tensor]:
    """MWS estimates of log q(z_i) and sum_d log q(z_id) for each sample i of the minibatch."""
    m = z.shape[0]
    if dataset_size < m:
        raise ValueError(f"dataset_size N = {dataset_size} is smaller than the batch size M = {m}; "
                         f"N must be the size of the training set the batch is drawn from")
    mat = gaussian_log_density_matrix(z, mean, std)
    log_nm = math.log(dataset_size) + math.log(m)
    log_qz = torch.logsumexp(mat.sum(2), dim=1) - log_nm
    log_prod_qzi = (torch.logsumexp(mat, dim=1) - log_nm).sum(1)
    return log_qz, log_prod_qzi


def tc_decomposition(z: Tensor, mean: Tensor, std: Tensor, dataset_size: int) -> dict[str, Tensor]:
    """Per-sample index-code MI, TC and dimension-wise KL; they sum to log q(z|x) - log p(z)."""
    log_qz_x = (-_HALF_LOG_2PI - torch.log(std) - 0.5 * ((z - mean) / std).pow(2)).sum(1)
    log_pz = (-_HALF_LOG_2PI - 0.5 * z.pow(2)).sum(1)
    log_qz, log_prod_qzi = mws_log_qz(z, mean, std, dataset_size)
    return {"mi": log_qz_x - log_qz, "tc": log_qz - log_prod_qzi, "dwkl": log_prod_qzi - log_pz,
            "log_qz_x": log_qz_x, "log_pz": log_pz, "log_qz": log_qz, "log_prod_qzi": log_prod_qzi}


class BetaTCVAE(VAE):
    """beta-TCVAE: ELBO with the KL split into MI, TC and dimension-wise KL, beta on the TC."""

    name = "beta_tcvae"
    config_class = BetaTCVAEConfig
    source = "Saseendran (thesis) §5.4 (baseline); Chen et al. 2018, eq. (7) MWS"

    def __init__(self, config: BetaTCVAEConfig):
        super().__init__(config)
        self._counted_size: Optional[int] = None

    @property
    def dataset_size(self) -> Optional[int]:
        return self.config.dataset_size if self.config.dataset_size is not None else self._counted_size

    def on_train_start(self, loader) -> None:
        if self.config.dataset_size is None:
            self._counted_size = sum(int(xb.shape[0]) for xb, _ in loader)

    def loss(self, x: Tensor, y: Tensor | None = None) -> dict[str, Tensor]:
        n = self.dataset_size
        if n is None:
            raise ValueError("beta_tcvae needs the training-set size N for minibatch-weighted sampling: set "
                             "dataset_size in the model config, or train with latentbench.training.train, "
                             "which counts it in on_train_start")
        t = self.elbo_terms(x)
        d = tc_decomposition(t["z"], t["mean"], t["std"], n)
        nll, mi, tc, dwkl = t["nll"].mean(), d["mi"].mean(), d["tc"].mean(), d["dwkl"].mean()
        c = self.config
        loss = nll + c.alpha * mi + c.beta * tc + c.gamma * dwkl
        kl = t["kl"].mean()
        return {"loss": loss, "nll": nll, "kl": kl, "elbo": -(nll + kl), "mi": mi, "tc": tc, "dwkl": dwkl}
