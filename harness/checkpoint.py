"""Checkpoints: a folder with ``config.json`` (model name + typed config), ``model.safetensors`` and
``metadata.json``. Loading never unpickles: only safetensors are read.

Saving writes each file whole (temporary name, then rename) and ``config.json`` last, after removing
an older one: a folder with ``config.json`` is complete, and a save killed part-way leaves a folder
that fails to load with a :class:`CheckpointError` (which the runner answers by retraining). The
weights file records the model's name in its safetensors header, so a ``config.json`` relabelled to
another model with the same tensors (``vae`` weights as ``beta_vae``) is refused at load time.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save

from latentbench import __version__
from latentbench.atomic import atomic_write_bytes, atomic_write_text
from latentbench.errors import CheckpointError, ConfigError
from latentbench.model import Autoencoder

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
METADATA_FILE = "metadata.json"
PICKLE_SUFFIXES = (".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".bin")
#: key of the model's registered name in the safetensors header (checkpoints saved before it lack it)
MODEL_NAME_KEY = "latentbench_model"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def state_hash(model: torch.nn.Module) -> str:
    """Hash of the weights and the config: identifies a model in the results store."""
    h = hashlib.sha256()
    h.update(json.dumps({"model": getattr(model, "name", ""), "config": model.config.to_dict()}, sort_keys=True).encode())
    for k, v in sorted(model.state_dict().items()):
        h.update(k.encode())
        # raw bytes (numpy has no bfloat16, e.g. a half-precision diffusers VAE)
        h.update(v.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def save_checkpoint(model: Autoencoder, folder: str | Path, metadata: dict[str, Any] | None = None) -> Path:
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise CheckpointError(f"cannot save a checkpoint to {folder}: it is a file -- pass a folder path "
                              f"(it is created when missing), or move the file away")
    folder.mkdir(parents=True, exist_ok=True)
    # from here until config.json is back the folder reads as incomplete, never as old config + new weights
    (folder / CONFIG_FILE).unlink(missing_ok=True)
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    weights = save(tensors, metadata={MODEL_NAME_KEY: model.name})
    atomic_write_bytes(folder / WEIGHTS_FILE, weights)
    meta = {"latentbench_version": __version__, "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "weights_sha256": hashlib.sha256(weights).hexdigest()}
    meta.update(metadata or {})
    atomic_write_text(folder / METADATA_FILE, json.dumps(meta, indent=2, default=str))
    atomic_write_text(folder / CONFIG_FILE, json.dumps({"model": model.name, "config": model.config.to_dict()}, indent=2))
    return folder


def _recorded_model_name(weights: Path) -> str | None:
    """The model name saved in the safetensors header; None for checkpoints saved before it was."""
    try:
        with safe_open(str(weights), framework="pt") as f:
            return (f.metadata() or {}).get(MODEL_NAME_KEY)
    except (SafetensorError, OSError, Exception) as e:
        raise CheckpointError(f"{weights} is not a readable safetensors file: {e}") from None


def read_checkpoint_config(folder: str | Path) -> dict[str, Any]:
    folder = Path(folder)
    if folder.is_file():
        if folder.suffix in PICKLE_SUFFIXES:
            raise CheckpointError(
                f"{folder} looks like a pickled PyTorch file; LatentBench never unpickles files it is given. "
                f"Save the model with latentbench.checkpoint.save_checkpoint (safetensors + config.json) instead.")
        raise CheckpointError(f"{folder} is a file; a checkpoint is a folder with {CONFIG_FILE} and {WEIGHTS_FILE}")
    if not folder.is_dir():
        raise CheckpointError(f"checkpoint folder {folder} does not exist")
    cfg_path = folder / CONFIG_FILE
    if not (folder / WEIGHTS_FILE).exists():
        pickles = [p.name for p in folder.iterdir() if p.suffix in PICKLE_SUFFIXES]
        hint = (f" It holds {', '.join(pickles)}, which would need unpickling; LatentBench never unpickles. "
                f"Convert the weights to safetensors (safetensors.torch.save_file(model.state_dict(), ...)).") if pickles else ""
        raise CheckpointError(f"checkpoint {folder} has no {WEIGHTS_FILE}.{hint}")
    if not cfg_path.exists():
        raise CheckpointError(f"checkpoint {folder} has no {CONFIG_FILE} naming the model and its config")
    try:
        data = json.loads(cfg_path.read_text())
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{cfg_path} is not valid JSON: {e}") from None
    if not isinstance(data, dict) or "model" not in data or "config" not in data:
        raise CheckpointError(f"{cfg_path} must hold {{'model': <plugin name>, 'config': {{...}}}}")
    return data


def load_checkpoint(folder: str | Path, registry=None, device: str | torch.device = "cpu") -> Autoencoder:
    """Rebuild the model from its registry entry and typed config, then load and check the weights."""
    from latentbench.registry import get_registry

    folder = Path(folder)
    registry = registry or get_registry()
    data = read_checkpoint_config(folder)
    recorded = _recorded_model_name(folder / WEIGHTS_FILE)
    if recorded is not None and recorded != data["model"]:
        raise CheckpointError(
            f"{folder / CONFIG_FILE} names model '{data['model']}' but {WEIGHTS_FILE} was saved from model "
            f"'{recorded}' -- set \"model\": \"{recorded}\" in {CONFIG_FILE} (or load the weights of a "
            f"'{data['model']}' model)")
    cls = registry.model(data["model"], path=f"{folder / CONFIG_FILE}:model")
    try:
        config = cls.config_class.from_dict(data["config"], path=f"{folder / CONFIG_FILE}:config")
    except ConfigError as e:
        raise CheckpointError(f"checkpoint config does not match model '{cls.name}': {e}") from None
    model = cls(config)
    try:
        tensors = load_file(str(folder / WEIGHTS_FILE))
    except (SafetensorError, OSError, Exception) as e:
        raise CheckpointError(f"{folder / WEIGHTS_FILE} is not a readable safetensors file: {e}") from None
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    wrong = [f"{k}: checkpoint {tuple(tensors[k].shape)} vs model {tuple(expected[k].shape)}"
             for k in expected if k in tensors and tensors[k].shape != expected[k].shape]
    if missing or unexpected or wrong:
        parts = []
        if wrong:
            parts.append("shape mismatch " + "; ".join(wrong[:5]))
        if missing:
            parts.append(f"missing tensors {missing[:5]}")
        if unexpected:
            parts.append(f"unexpected tensors {unexpected[:5]}")
        raise CheckpointError(
            f"checkpoint {folder} does not fit model '{cls.name}' with config {config.to_dict()}: " + "; ".join(parts)
            + ". The weights were saved from a different architecture: check input_shape, latent_dim and backbone in config.json.")
    model.load_state_dict(tensors, strict=True)
    return model.to(device).eval()


def read_metadata(folder: str | Path) -> dict[str, Any]:
    p = Path(folder) / METADATA_FILE
    return json.loads(p.read_text()) if p.exists() else {}
