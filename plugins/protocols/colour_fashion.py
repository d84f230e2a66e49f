"""``colour-fashion-64-v1``: a colour protocol at 3x64x64 for convolutional and latent-diffusion-style VAEs.

Data: ``colour-fashion-mnist`` (docs/datasets.md): Cemgil et al.'s ColorMNIST construction
("Adversarially robust representations with smooth encoders", §5: objects coloured with corners of
the RGB cube) applied to Fashion-MNIST, with a random foreground and background colour per image
(colour_seed 0), resized to 64x64. Labels are the Fashion-MNIST classes. The structure is
fashion-mnist-32-v2's (headline robust reconstruction accuracy, docs/methods.md §7, plus the v1
measurements); what changed for 3x64x64 images, and why:

- ε grid {1.25, 2.5, 3.75} (L2, [0, 1] pixels over all 12,288 values). Measured distance from each
  of the 500 evaluation images to the nearest image of another class among all 70,000 (train + test):
  min 4.62, 1% quantile 6.98, median 13.5 (fashion-mnist-32-v2: 1.84, 2.20, 4.08). The grid is
  fashion-mnist-32-v2's times 2.5, which keeps its largest ε at the same share of the smallest such
  distance (0.81) and below it, so no budget reaches an image of another class. Mean image norm 71.5.
- 500 evaluation images (a fixed subset of the test split, seed 0): a 95% interval of at most ±0.044
  on an accuracy. Cost, one CPU thread, forward + backward per image at 3x64x64: the conv autoencoder
  of the conv entries (16-32-64-128 channels, k4 s2, 64 -> 4 px: the depth of LC-VAE's encoder at an
  eighth of its width) 2.3 ms, fashion-mnist-32-v2's 32-64-128 one 5.5 ms (1.6 ms on its 32x32 grey
  images), the reference classifier 1.6 ms; 1,000 images would put one entry past an hour of one core.
- The pair metrics draw 50 images x 4 trials, their attacks 50 steps x 1 restart; FID uses 2,000
  samples and the domain extractor; downstream accuracy as fashion-mnist-32-v2 (L-inf
  0.01/0.1/0.2/0.3, 20 steps x 2 restarts).
- Reference classifier ``colour-fashion-64-v1-advl2`` (below): the DomainNet CNN at width 16 (as
  fashion-mnist-32-v2-advl2; 4.1 ms per image at 64x64x3), adversarially trained with PGD-L2
  ε ~ U[0, 3.75] on 12,000 images. A first classifier at width 8 on 10,000 images for 3 epochs reached
  only 0.449 clean accuracy; no entry was made with it.
- Verify tolerances: not measured (an entry takes most of an hour on one thread); fashion-mnist-32's.
"""

from __future__ import annotations

from latentbench.plugins.protocols._headline import FASHION_TOLERANCES, RANK_BY, headline_metric, main_columns
from latentbench.protocol import Protocol

BUDGETS = [1.25, 2.5, 3.75]
SOLVER = {"steps": 50, "restarts": 1}
PAIRS = {"images_per_trial": 50, "trials": 4}
IMAGE_SIZE = 64
EVAL_SUBSET = 500
#: colour-fashion-64-v1-advl2: DomainNet CNN width 16, 4 epochs of PGD-L2 adversarial training (ε ~ U[0, 3.75],
#: 5 steps, half clean loss) on 12,000 training images (about 25 minutes of one core); test accuracy 0.535,
#: under PGD-L2 (50 steps x 2 restarts, 500 test images) 0.462 / 0.352 / 0.230 at ε 1.25 / 2.5 / 3.75
CLASSIFIER = {"classifier": "colour-fashion-64-v1-advl2",
              "classifier_sha256": "5d632b046fb0547ccabadf0094571615e3a65be124a2470d33c13bae58050e57"}

COLOUR_FASHION_64_V1 = Protocol(
    name="colour-fashion-64-v1",
    version="1",
    description=("Fashion-MNIST coloured as Cemgil et al.'s ColorMNIST (random RGB-cube foreground and background "
                 "colour per image, colour_seed 0) at 3x64x64, 500 test images (seed 0). Headline: robust "
                 "reconstruction accuracy (per-image worst case over reconstruction_ce (APGD), latent_space, "
                 "max_damage and random_search) at L2 ε 1.25/2.5/3.75, judged by the adversarially trained reference "
                 "classifier colour-fashion-64-v1-advl2; ranked by its mean over ε. Also: MS-SSIM and L2 pairs "
                 "(latent_space and max_damage, 50 steps, 50 images x 4 trials), spectra, FID (domain extractor, "
                 "2,000 samples) and linear-probe downstream accuracy (L-inf 0.01/0.1/0.2/0.3, 20 steps x 2 restarts)."),
    dataset={"name": "colour-fashion-mnist", "image_size": IMAGE_SIZE, "eval_split": "test",
             "eval_subset": EVAL_SUBSET, "options": {"colour_seed": 0}},
    attacks=(
        {"name": "latent_space", "plugin": "latent_space", "config": dict(SOLVER), "budgets": list(BUDGETS)},
        {"name": "max_damage", "plugin": "max_damage", "config": dict(SOLVER), "budgets": list(BUDGETS)},
    ),
    metrics=(
        headline_metric(CLASSIFIER, BUDGETS),
        {"plugin": "ms_ssim", "config": dict(PAIRS)},
        {"plugin": "l2_distance", "config": dict(PAIRS)},
        {"plugin": "spectral_radius"},
        {"plugin": "vn_entropy"},
        {"plugin": "fid", "config": {"n_samples": 2000, "feature_extractor": "domain"}},
        {"plugin": "downstream_adv_accuracy",
         "config": {"probe": "linear", "budgets": [0.01, 0.1, 0.2, 0.3], "steps": 20, "restarts": 2}},
    ),
    seed=0,
    trials=1,
    tolerances=FASHION_TOLERANCES,
    source="docs/datasets.md (colour construction); docs/methods.md §7 (headline score) and §4",
    rank_by=RANK_BY,
    main_columns=main_columns(BUDGETS),
)
