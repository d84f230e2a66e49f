"""Built-in models. Each module lists its classes in ``MODELS``; the hook collects them."""

import importlib

from harness import hookimpl

MODULES = ("vae", "mixup_vae", "smooth_encoder", "lc_vae", "beta_tcvae", "gan", "gmm_dae", "robust_dae")


@hookimpl
def latentbench_models():
    out = []
    for name in MODULES:
        out += importlib.import_module(f"plugins.models.{name}").MODELS
    return out
