"""pythae's autoencoders (VAE, beta-VAE, IWAE, RAE, WAE, ...) as models :func:`latentbench.evaluate` accepts.

``latentbench.evaluate(model, protocol)`` adapts a pythae model (a ``pythae.models.BaseAE``) with
the defaults below; :func:`load` reads a model folder written by pythae's ``model.save``.

- **Code**: ``model.encoder(x).embedding``, the encoder mean (with ``log_covariance``, when the
  encoder gives one, as the posterior's log variance); **images**: ``model.decoder(z).reconstruction``.
  The model's own ``forward`` is not used: it samples from the posterior (and, for the flow models
  VAE_IAF / VAE_LinNF, transforms the sample), while LatentBench attacks and measures the
  encoder mean decoded directly (docs/methods.md §0).
- **Pixel range**: pythae models take the data as they were trained on; ``input_range=(0, 1)``
  (default) or ``(-1, 1)`` says which.
- Vector-quantised models (VQVAE) are refused: their decoder takes quantised codes, so the
  encoder mean decoded directly is not the model's reconstruction.

**Loading a folder safely.** pythae's ``load_from_folder`` unpickles the networks of a model built
with custom encoder/decoder classes (``encoder.pkl``, ``decoder.pkl``, ... written with cloudpickle)
and reads ``model.pt`` with a full unpickler. Unpickling runs whatever code the file holds, so
:func:`load` never does either by default: the weights are read with
``torch.load(..., weights_only=True)`` (tensors only), default networks are rebuilt from
``model_config.json``, and a folder with pickled networks is refused with :class:`PickleRefusedError`
unless the caller passes the networks themselves (``load(folder, encoder=MyEncoder(cfg), ...)``) or
``allow_pickle=True`` (for a folder whose origin they trust).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Sequence

from torch import Tensor, nn

from latentbench.adapters import AdapterError, from_library, require

LIBRARY = "pythae"
EXTRA = "pythae"
CONFIG_FILE = "model_config.json"
WEIGHTS_FILE = "model.pt"


class PickleRefusedError(AdapterError):
    """A model folder whose networks are pickled, loaded without ``allow_pickle``."""


def matches(model: Any) -> bool:
    """A pythae model: an nn.Module from the pythae package with ``encoder`` and ``decoder`` networks."""
    return (isinstance(model, nn.Module) and from_library(model, LIBRARY)
            and all(isinstance(getattr(model, n, None), nn.Module) for n in ("encoder", "decoder")))


class PythaeAE(nn.Module):
    """``encode`` -> the encoder's embedding (and log covariance); ``decode`` -> the reconstruction."""

    def __init__(self, model: nn.Module):
        super().__init__()
        from latentbench.api import settings_tensor
        from latentbench.registry import source_digest

        lib = require(LIBRARY, EXTRA)
        self.model = model
        self.register_buffer("adapter_identity", settings_tensor({
            "library": LIBRARY, "version": getattr(lib, "__version__", "?"),
            "class": f"{type(model).__module__}.{type(model).__qualname__}",
            "networks": [source_digest(model.encoder) or "", source_digest(model.decoder) or ""]}))

    def encode(self, x: Tensor):
        out = self.model.encoder(x)
        mean, log_var = out["embedding"], out.get("log_covariance")
        return mean if log_var is None or log_var.shape != mean.shape else (mean, log_var)

    def decode(self, z: Tensor) -> Tensor:
        return self.model.decoder(z)["reconstruction"]


def adapt(model: nn.Module, *, input_range: Sequence[float] = (0, 1)):
    """``model`` (a pythae model) as a :func:`latentbench.wrap` result for :func:`latentbench.evaluate`."""
    if not matches(model):
        raise AdapterError(f"expected a pythae model (pythae.models.BaseAE), got {type(model).__module__}."
                           f"{type(model).__name__} -- use latentbench.wrap for other models")
    if isinstance(getattr(model, "quantizer", None), nn.Module):
        raise AdapterError(f"{type(model).__name__} is vector-quantised: its decoder takes quantised codes, so the "
                           f"encoder mean decoded directly is not its reconstruction -- wrap your own encode "
                           f"(quantised code) and decode with latentbench.wrap")
    from latentbench.api import wrap

    inner = PythaeAE(model)
    return wrap(inner.encode, inner.decode, input_range=input_range)


# -- loading a model folder -------------------------------------------------------------------------
def _networks(config: dict) -> list[str]:
    """The networks the config says are custom (``uses_default_<name>: false``), pickled by pythae."""
    return sorted(k[len("uses_default_"):] for k, v in config.items() if k.startswith("uses_default_") and v is False)


def _model_class(name: str):
    """The pythae model class of a config name: ``VAEConfig`` -> ``VAE``, ``RAE_GP_Config`` -> ``RAE_GP``."""
    models = require(LIBRARY, EXTRA).models
    cls = getattr(models, re.sub(r"_?Config$", "", str(name)), None)
    if not isinstance(cls, type) or not issubclass(cls, nn.Module):
        raise AdapterError(f"{CONFIG_FILE} names config '{name}', which is no model of this pythae version -- check "
                           f"the folder is a pythae model folder, or update pythae")
    return cls


def _weights(folder: Path) -> dict:
    import pickle

    import torch

    path = folder / WEIGHTS_FILE
    try:
        # tensors only: a model.pt that needs a full unpickler is refused, not run
        data = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, OSError, EOFError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise AdapterError(f"cannot read '{path}' as tensors only ({first}) -- LatentBench reads pythae weights with "
                           f"torch.load(weights_only=True); re-save them with pythae's model.save") from None
    if not isinstance(data, dict) or "model_state_dict" not in data:
        raise AdapterError(f"'{path}' holds no 'model_state_dict' -- it is not a pythae model.save file")
    return data["model_state_dict"]


def load(folder: str | Path, *, allow_pickle: bool = False, **networks: nn.Module) -> nn.Module:
    """The pythae model saved in ``folder`` (``model_config.json`` + ``model.pt``, plus ``encoder.pkl``,
    ``decoder.pkl``, ... for custom networks), on the CPU, in eval mode.

    ``networks``: the model's custom networks built in Python (``encoder=``, ``decoder=``,
    ``discriminator=``, ``metric=``); their weights still come from ``model.pt``. A custom network
    not given is unpickled from the folder only with ``allow_pickle=True`` (see the module docstring)."""
    folder = Path(folder).expanduser()
    missing = [f for f in (CONFIG_FILE, WEIGHTS_FILE) if not (folder / f).is_file()]
    if missing:
        raise AdapterError(f"'{folder}' has no {' and no '.join(missing)} -- pass a folder written by pythae's "
                           f"model.save(folder)")
    try:
        config_dict = json.loads((folder / CONFIG_FILE).read_text())
    except (OSError, ValueError) as e:
        raise AdapterError(f"cannot read '{folder / CONFIG_FILE}' as JSON ({e}) -- re-save the model with pythae's "
                           f"model.save") from None
    custom = _networks(config_dict)
    unknown = sorted(set(networks) - set(custom) - {"encoder", "decoder"})
    if unknown:
        raise AdapterError(f"networks {unknown} are not networks of this model -- pass only {custom or ['encoder', 'decoder']}")
    to_unpickle = [n for n in custom if n not in networks]
    pickled = sorted(p.name for p in folder.glob("*.pkl"))
    if to_unpickle and not allow_pickle:
        raise PickleRefusedError(
            f"pythae model folder '{folder}' stores its custom {', '.join(to_unpickle)} network(s) pickled "
            f"({', '.join(pickled) or 'files missing'}); unpickling them runs whatever code the files hold "
            f"(arbitrary code execution), so LatentBench does not -- pass allow_pickle=True only if you trust where "
            f"the folder comes from, or build the network(s) in Python and pass them "
            f"(load(folder, {', '.join(f'{n}=...' for n in to_unpickle)})); the weights come from {WEIGHTS_FILE}")
    cls = _model_class(config_dict.get("name"))
    from pythae.models.auto_model import AutoConfig

    model_config = AutoConfig.from_json_file(str(folder / CONFIG_FILE))
    built = dict(networks)
    for n in to_unpickle:  # allow_pickle=True: the caller trusts the folder
        built[n] = getattr(cls, f"_load_custom_{n}_from_folder")(str(folder))
    model = cls(model_config, **built)
    try:
        model.load_state_dict(_weights(folder))
    except RuntimeError as e:
        raise AdapterError(f"the weights in '{folder / WEIGHTS_FILE}' do not fit the model built from "
                           f"{CONFIG_FILE} ({str(e).splitlines()[0]}) -- pass the networks the model was trained "
                           f"with") from None
    return model.eval()
