"""Built-in models: one module per model family, each class with its typed config beside it."""

from latentbench import hookimpl
from latentbench.plugins.models.beta_tcvae import BetaTCVAE
from latentbench.plugins.models.gan import GAN
from latentbench.plugins.models.gmm_dae import GMMDAE
from latentbench.plugins.models.lc_vae import LCVAE
from latentbench.plugins.models.mixup_vae import MixupVAE
from latentbench.plugins.models.reference import ConstantAutoencoder, IdentityAutoencoder
from latentbench.plugins.models.robust_dae import RobustDAE, RobustGMMDAE
from latentbench.plugins.models.smooth_encoder import SmoothEncoder
from latentbench.plugins.models.vae import VAE, BetaVAE

MODELS = [VAE, BetaVAE, MixupVAE, SmoothEncoder, LCVAE, BetaTCVAE, GAN, GMMDAE, RobustGMMDAE, RobustDAE,
          IdentityAutoencoder, ConstantAutoencoder]


@hookimpl
def latentbench_models():
    return list(MODELS)
