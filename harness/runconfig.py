"""Run configuration (YAML): parsed and validated up front, errors name the key path."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from latentbench.errors import ConfigError, UnknownComponentError
from latentbench.training import TrainConfig
from latentbench.typed_config import build_dataclass, read_yaml_file


@dataclass
class DatasetSpec:
    name: str = "digits"
    image_size: Optional[int] = None
    data_root: Optional[str] = None
    options: dict = field(default_factory=dict)
    eval_split: str = "test"
    #: number of evaluation examples drawn deterministically from the seed; None = the whole split
    eval_subset: Optional[int] = None
    #: training examples used by training and probes; None = the whole split
    train_subset: Optional[int] = None


@dataclass
class ModelSpec:
    name: str  # label in results
    plugin: Optional[str] = None
    config: dict = field(default_factory=dict)
    train: Optional[TrainConfig] = None
    checkpoint: Optional[str] = None


@dataclass
class AttackSpec:
    name: str
    plugin: str
    config: dict = field(default_factory=dict)
    budgets: Optional[list[float]] = None


@dataclass
class MetricSpec:
    plugin: str
    name: Optional[str] = None
    config: dict = field(default_factory=dict)
    #: attack labels to cross this metric with (attack-based metrics); default all attacks
    attacks: Optional[list[str]] = None


@dataclass
class RunConfig:
    name: str = "run"
    seed: int = 0
    device: str = "cpu"
    output_dir: str = "runs/run"
    protocol: Optional[str] = None
    trials: int = 1
    dataset: DatasetSpec = field(default_factory=DatasetSpec)
    models: list[ModelSpec] = field(default_factory=list)
    attacks: list[AttackSpec] = field(default_factory=list)
    metrics: list[MetricSpec] = field(default_factory=list)
    #: where trained checkpoints and domain classifiers are cached (default: <output_dir>/cache)
    cache_dir: Optional[str] = None
    progress: bool = True


def _list_of(cls, raw: Any, path: str) -> list:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ConfigError(path, f"expected a list, got {type(raw).__name__}")
    out = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            raise ConfigError(f"{path}[{i}]", f"expected a mapping, got {type(item).__name__} {item!r}")
        out.append(build_dataclass(cls, item, f"{path}[{i}]"))
    return out


def parse_run_config(data: dict[str, Any], source: str = "config") -> RunConfig:
    if not isinstance(data, dict):
        raise ConfigError(source, "the run config must be a YAML mapping with keys such as dataset, models, attacks, metrics")
    data = dict(data)
    nested = {k: data.pop(k) for k in ("dataset", "models", "attacks", "metrics") if k in data}
    cfg = build_dataclass(RunConfig, data, source)
    cfg.dataset = build_dataclass(DatasetSpec, nested.get("dataset") or {}, f"{source}.dataset")
    cfg.models = _list_of(ModelSpec, nested.get("models"), f"{source}.models")
    for i, m in enumerate(cfg.models):
        if isinstance(m.train, dict):
            m.train = build_dataclass(TrainConfig, m.train, f"{source}.models[{i}].train")
    cfg.attacks = _list_of(AttackSpec, nested.get("attacks"), f"{source}.attacks")
    cfg.metrics = _list_of(MetricSpec, nested.get("metrics"), f"{source}.metrics")
    return cfg


def load_run_config(path: str | Path) -> RunConfig:
    data = read_yaml_file(path, "pass the path of a YAML run config (e.g. the shipped quickstart)")
    return parse_run_config(data, source=Path(path).name)


def apply_protocol(cfg: RunConfig, registry) -> RunConfig:
    """Fill dataset, attacks, metrics, seed and trials from a registered protocol."""
    if not cfg.protocol:
        return cfg
    proto = registry.protocol(cfg.protocol, path="protocol")
    d = build_dataclass(DatasetSpec, {**proto.dataset, **({"data_root": cfg.dataset.data_root} if cfg.dataset.data_root else {})},
                        f"protocol {proto.name}.dataset")
    cfg = dataclasses.replace(cfg, dataset=d, seed=proto.seed, trials=proto.trials,
                              attacks=_list_of(AttackSpec, [dict(a) for a in proto.attacks], f"protocol {proto.name}.attacks"),
                              metrics=_list_of(MetricSpec, [dict(m) for m in proto.metrics], f"protocol {proto.name}.metrics"))
    return cfg


def check_device(device: str, path: str) -> None:
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        raise ConfigError(path, f"'{device}' is not a torch device", "use cpu, cuda or cuda:<index>") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(path, f"device '{device}' requested but this machine has no usable CUDA device",
                          "use device: cpu (or --device cpu)")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ConfigError(path, f"device '{device}' does not exist: {torch.cuda.device_count()} CUDA device(s) visible")


def validate_run_config(cfg: RunConfig, registry) -> None:
    """Check every plugin name and plugin config before any work starts."""
    check_device(cfg.device, "device")
    registry.dataset(cfg.dataset.name, path="dataset.name")
    if not cfg.models:
        raise ConfigError("models", "no models given", "add at least one entry with 'plugin' (and 'train') or 'checkpoint'")
    labels = set()
    for i, m in enumerate(cfg.models):
        p = f"models[{i}]"
        if m.name in labels:
            raise ConfigError(f"{p}.name", f"duplicate model name '{m.name}'", "give every model a distinct name")
        labels.add(m.name)
        if bool(m.plugin) == bool(m.checkpoint):
            raise ConfigError(p, "give exactly one of 'plugin' (a model to build/train) or 'checkpoint' (a saved model folder)")
        if m.plugin:
            cls = registry.model(m.plugin, path=f"{p}.plugin")
            cls.config_class.from_dict(m.config, path=f"{p}.config")
            if m.train is None:
                m.train = TrainConfig()
        elif not Path(m.checkpoint).exists():
            raise ConfigError(f"{p}.checkpoint", f"checkpoint folder '{m.checkpoint}' does not exist")
    attack_labels = set()
    for i, a in enumerate(cfg.attacks):
        p = f"attacks[{i}]"
        if a.name in attack_labels:
            raise ConfigError(f"{p}.name", f"duplicate attack name '{a.name}'")
        attack_labels.add(a.name)
        cls = registry.attack(a.plugin, path=f"{p}.plugin")
        build_dataclass(cls.config_class, a.config, f"{p}.config")
    for i, m in enumerate(cfg.metrics):
        p = f"metrics[{i}]"
        cls = registry.metric(m.plugin, path=f"{p}.plugin")
        build_dataclass(cls.config_class, m.config, f"{p}.config")
        for j, a in enumerate(m.attacks or []):
            if a not in attack_labels:
                raise UnknownComponentError("attack", a, attack_labels, f"{p}.attacks[{j}]")
        if "attack" in cls.needs and not cfg.attacks:
            raise ConfigError(f"{p}.plugin", f"metric '{m.plugin}' needs an attack but the config has no attacks",
                              "add an entry under 'attacks' or remove this metric")
