"""diffusers ``AutoencoderKL`` (the Stable Diffusion VAE) as a model :func:`latentbench.evaluate` accepts.

``latentbench.evaluate(vae, protocol)`` adapts the VAE with the defaults below;
``latentbench.evaluate(latentbench.adapters.diffusers.adapt(vae, tiling=True), protocol)`` sets options.

- **Code**: the mean of ``vae.encode(x).latent_dist`` (its ``logvar`` gives the std the
  Wasserstein-type attacks read). The spatial code (B, C, h, w) is flattened to (B, C*h*w) by
  :class:`latentbench.api.WrappedAutoencoder` and reshaped for ``decode``, so every attack and
  metric that takes latent vectors applies unchanged.
- **Units of the code** (``scaled=True``): ``(mean - shift_factor) * scaling_factor``, the latents
  a latent diffusion model is trained on (diffusers' pipelines scale the same way), so latent
  distances are in the diffusion model's units; ``decode`` divides by ``scaling_factor`` and adds
  ``shift_factor`` back before ``vae.decode``. ``scaled=False``: the raw posterior mean.
- **Pixel range**: attacks and metrics work on [0, 1]; the VAE gets ``x * 2 - 1`` and its output
  ``y`` is returned as ``(y + 1) / 2`` (``wrap(..., input_range=(-1, 1))``).
- **Precision**: a float16 / bfloat16 VAE is **upcast on a copy** to float32 (the caller's model is
  left as it is), so attack gradients and metrics are float32. Not autocast: autocast keeps
  convolutions in half precision, where the gradients of a 200-step attack underflow or overflow
  (diffusers' own ``force_upcast`` does the same for decoding), and CPU autocast has no float16.
  The copy costs the float32 weights' memory (335 MB for the Stable Diffusion VAE).
- **Memory**: ``slicing`` / ``tiling`` set the VAE's ``use_slicing`` / ``use_tiling`` for the
  adapter's calls only (None: as the VAE has them). Slicing encodes and decodes one image at a
  time; tiling works on overlapping tiles of large images (its blending changes the numbers a
  little, so it is part of the stored results' key).
"""

from __future__ import annotations

import contextlib
import copy
import math
from typing import Any, Optional

import torch
from torch import Tensor, nn

from latentbench.adapters import AdapterError, from_library, require

LIBRARY = "diffusers"
EXTRA = "diffusers"
#: the VAE switches ``slicing`` and ``tiling`` set (attribute names of diffusers' AutoencoderKL)
SWITCHES = {"slicing": "use_slicing", "tiling": "use_tiling"}


def matches(model: Any) -> bool:
    """A diffusers model whose ``encode`` returns a ``latent_dist`` (AutoencoderKL and its kin)."""
    return isinstance(model, nn.Module) and from_library(model, LIBRARY) and "AutoencoderKL" in type(model).__name__


class DiffusersVAE(nn.Module):
    """``encode`` -> (code, log variance) in the units :func:`adapt` chose; ``decode`` -> images in [-1, 1]."""

    def __init__(self, vae: nn.Module, scaled: bool = True, slicing: Optional[bool] = None,
                 tiling: Optional[bool] = None):
        super().__init__()
        from latentbench.api import settings_tensor
        from latentbench.registry import source_digest

        cfg = vae.config
        self.vae = vae
        self.scale = float(cfg.scaling_factor) if scaled else 1.0
        self.shift = float(getattr(cfg, "shift_factor", None) or 0.0) if scaled else 0.0
        self.switches = {SWITCHES[opt]: bool(v) for opt, v in (("slicing", slicing), ("tiling", tiling))
                         if v is not None}
        for attr in self.switches:
            if not hasattr(vae, attr):
                raise AdapterError(f"{type(vae).__name__} has no '{attr}' switch in this diffusers version -- leave "
                                   f"slicing/tiling as None, or upgrade diffusers")
        lib = require(LIBRARY, EXTRA)
        self.register_buffer("adapter_identity", settings_tensor({
            "library": LIBRARY, "version": getattr(lib, "__version__", "?"),
            "class": f"{type(vae).__module__}.{type(vae).__qualname__}", "class_sha256": source_digest(vae) or "",
            "scale": self.scale, "shift": self.shift, "switches": self.switches}))

    @contextlib.contextmanager
    def _switched(self):
        before = {a: getattr(self.vae, a) for a in self.switches}
        for a, v in self.switches.items():
            setattr(self.vae, a, v)
        try:
            yield
        finally:
            for a, v in before.items():
                setattr(self.vae, a, v)

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        with self._switched():
            dist = self.vae.encode(x).latent_dist
        # std scales with the code: log var + 2 log(scale)
        return (dist.mean - self.shift) * self.scale, dist.logvar + 2 * math.log(self.scale)

    def decode(self, z: Tensor) -> Tensor:
        with self._switched():
            return self.vae.decode(z / self.scale + self.shift).sample


def _upcast(vae: nn.Module) -> nn.Module:
    """``vae`` itself when its weights are float32, else a float32 copy (the module docstring says why)."""
    if all(p.dtype == torch.float32 for p in vae.parameters() if p.is_floating_point()):
        return vae
    if getattr(vae, "is_quantized", False):
        raise AdapterError(f"{type(vae).__name__} is quantized, and its weights cannot be upcast to float32 for the "
                           f"attacks' gradients -- load the VAE unquantized (torch_dtype=torch.float32 or float16)")
    # .float(), not .to(dtype): diffusers' to() warns about modules kept in float32, moot when all are
    return copy.deepcopy(vae).float()


def adapt(vae: nn.Module, *, scaled: bool = True, slicing: Optional[bool] = None, tiling: Optional[bool] = None):
    """``vae`` (a diffusers AutoencoderKL, any dtype) as a :func:`latentbench.wrap` result for
    :func:`latentbench.evaluate`; the options are the module docstring's."""
    if not matches(vae):
        raise AdapterError(f"expected a diffusers AutoencoderKL, got {type(vae).__module__}.{type(vae).__name__} -- "
                           f"pass the pipeline's VAE (pipe.vae), or use latentbench.wrap for other models")
    from latentbench.api import wrap

    inner = DiffusersVAE(_upcast(vae), scaled=scaled, slicing=slicing, tiling=tiling)
    return wrap(inner.encode, inner.decode, input_range=(-1, 1))
