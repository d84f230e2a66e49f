"""Built-in attacks (docs/methods.md §2). Each module holds one attack: its typed config and its
objective (or, for attacks that are not one objective optimisation, its ``perturb``). Starts,
restarts, projection, step sizes and the PGD / L-BFGS-B solvers come from the base class
:class:`latentbench.attack.Attack`, as they do for third-party attacks."""

from latentbench import hookimpl
from latentbench.plugins.attacks.downstream_pgd import DownstreamPGD, DownstreamPGDConfig
from latentbench.plugins.attacks.eigendirection import EigendirectionAttack, EigendirectionConfig
from latentbench.plugins.attacks.fgsm_latent import FGSMLatent, FGSMLatentConfig, fgsm_latent_perturb
from latentbench.plugins.attacks.latent_space import LatentSpaceAttack, LatentSpaceConfig
from latentbench.plugins.attacks.max_damage import MaxDamageAttack, MaxDamageConfig
from latentbench.plugins.attacks.photoguard_encoder import PhotoGuardEncoder, PhotoGuardEncoderConfig
from latentbench.plugins.attacks.pgd_wasserstein import PGDWasserstein, PGDWassersteinConfig
from latentbench.plugins.attacks.random_search import RandomSearch, RandomSearchConfig
from latentbench.plugins.attacks.reconstruction_ce import ReconstructionCE, ReconstructionCEConfig

ATTACKS = [PGDWasserstein, FGSMLatent, LatentSpaceAttack, MaxDamageAttack, DownstreamPGD, EigendirectionAttack,
           ReconstructionCE, RandomSearch, PhotoGuardEncoder]

__all__ = [
    "ATTACKS",
    "DownstreamPGD", "DownstreamPGDConfig",
    "EigendirectionAttack", "EigendirectionConfig",
    "FGSMLatent", "FGSMLatentConfig", "fgsm_latent_perturb",
    "LatentSpaceAttack", "LatentSpaceConfig",
    "MaxDamageAttack", "MaxDamageConfig",
    "PGDWasserstein", "PGDWassersteinConfig",
    "PhotoGuardEncoder", "PhotoGuardEncoderConfig",
    "RandomSearch", "RandomSearchConfig",
    "ReconstructionCE", "ReconstructionCEConfig",
]


@hookimpl
def latentbench_attacks():
    return list(ATTACKS)
