"""``fashion-mnist-32-v1``: docs/methods.md §4 (Saseendran (thesis) §5.4.7, Robust-DAE appendix A.4,
Cemgil et al. Table 2).

- Fashion-MNIST test split, images resized from 28x28 to 32x32.
- latent_space and max_damage attacks, PGD-L2 with 200 steps and 10 restarts, lambda in {1, 3, 5};
  MS-SSIM and L2 pairs over 100 images x 10 trials (each trial draws new images and new targets).
- Geometry scores (spectral radius, von Neumann entropy) on the whole 10,000-image test split
  (the whole test split or a fixed subset of >= 1000 images would do; the harness has one
  evaluation set per run, and FID needs the whole test split, so the whole split it is).
- FID: 10,000 generated images against the test split. Feature extractor ``auto``: Inception when
  local weights are configured, else the harness's domain extractor; the extractor's name is stored
  in the result and entries with different extractors are never ranked together.
- Downstream: linear probe, L-inf eps {0.01, 0.1, 0.2, 0.3}, 100 steps, 10 restarts.
- Ranking: by max-damage MS-SSIM(x~_r, x~_a) at lambda 5, the headline number of Saseendran
  (thesis) §5.4 and the Robust-DAE appendix (higher: the attack moved the reconstruction less).
"""

from __future__ import annotations

from latentbench.protocol import Protocol

SOLVER = {"steps": 200, "restarts": 10}
BUDGETS = [1.0, 3.0, 5.0]
PAIRS = {"images_per_trial": 100, "trials": 10}

FASHION_MNIST_32_V1 = Protocol(
    name="fashion-mnist-32-v1",
    version="1",
    description=("Fashion-MNIST resized to 32x32, whole test split (10,000 images, seed 0); latent_space and "
                 "max_damage PGD-L2 (200 steps, 10 restarts) at lambda 1/3/5 with MS-SSIM and L2 pairs over "
                 "100 images x 10 trials; spectral radius and von Neumann entropy on the test split; FID of "
                 "10,000 samples vs the test split; linear-probe downstream accuracy under L-inf PGD "
                 "eps 0.01/0.1/0.2/0.3 (100 steps, 10 restarts). See docs/methods.md §4."),
    dataset={"name": "fashion-mnist", "image_size": 32, "eval_split": "test", "eval_subset": None},
    attacks=(
        {"name": "latent_space", "plugin": "latent_space", "config": dict(SOLVER), "budgets": list(BUDGETS)},
        {"name": "max_damage", "plugin": "max_damage", "config": dict(SOLVER), "budgets": list(BUDGETS)},
    ),
    metrics=(
        {"plugin": "ms_ssim", "config": dict(PAIRS)},
        {"plugin": "l2_distance", "config": dict(PAIRS)},
        {"plugin": "spectral_radius"},
        {"plugin": "vn_entropy"},
        {"plugin": "fid", "config": {"n_samples": 10000}},
        {"plugin": "downstream_adv_accuracy",
         "config": {"probe": "linear", "budgets": [0.01, 0.1, 0.2, 0.3], "steps": 100, "restarts": 10}},
    ),
    seed=0,
    trials=1,
    tolerances={"rel": 0.05, "abs": 0.02},
    source="docs/methods.md §4; Saseendran (thesis) §5.4.7; Robust-DAE appendix A.4; Cemgil et al. Table 2",
    rank_by={"metric": "ms_ssim", "value": "recon_vs_adv_recon_mean", "attack": "max_damage", "budget": max(BUDGETS)},
)
