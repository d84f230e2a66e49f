"""Run configuration (YAML): one shape for a model, parsed once and validated once.

A model is described the same way wherever it comes from: a :class:`ModelSpec` mapping,
``{name, plugin, config, train}`` (a plugin to build and train) or ``{name, checkpoint}`` (a saved
model folder). A run config lists them under ``models:``, a train config (:class:`TrainRunConfig`)
holds one under ``model:``, and ``latentbench benchmark --config`` reads one on its own. Every file
goes through :func:`~latentbench.typed_config.read_yaml_file` and every mapping through
:func:`~latentbench.typed_config.build_dataclass`, so errors name the key path and the fix.

:func:`validate_run_config` checks every plugin name and builds every typed config exactly once:
the model config (input shape from the dataset unless pinned), the attack config of every budget
and the metric configs. They are kept on the specs (``typed_config``/``typed_configs``) and the
runner uses those objects; it never rebuilds a config from a dict. A cell key hashes
``to_plain`` of these same objects, so one config is one key.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from latentbench.data import DatasetConfig
from latentbench.errors import ConfigError, UnknownComponentError
from latentbench.training import TrainConfig
from latentbench.typed_config import build_dataclass, derived_field, read_yaml_file

#: how a model is written, quoted by the errors about old file shapes
MODEL_SPEC_SHAPE = ("{name: NAME, plugin: PLUGIN, config: {...model config fields...}, train: {epochs: N, ...}} "
                    "or {name: NAME, checkpoint: DIR}, as an entry of a run config's 'models:'")


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
    #: label in results; default: the plugin name, or the checkpoint folder's name
    name: Optional[str] = None
    plugin: Optional[str] = None
    config: dict = field(default_factory=dict)
    train: Optional[TrainConfig] = None
    checkpoint: Optional[str] = None
    #: the plugin's typed config (input_shape from the dataset unless ``config`` pins it)
    typed_config: Any = derived_field()

    def __post_init__(self) -> None:
        if self.name is None:
            self.name = self.plugin or (Path(self.checkpoint).name if self.checkpoint else None)


@dataclass(frozen=True)
class AttackBudget:
    """One attack configuration of a run: the budget and the typed config whose ``eps`` it sets."""

    budget: float
    config: Any


@dataclass
class AttackSpec:
    name: str
    plugin: str
    config: dict = field(default_factory=dict)
    budgets: Optional[list[float]] = None
    #: one typed config per budget (``eps`` = the budget; the config's own eps without budgets)
    typed_configs: list[AttackBudget] = derived_field(list)


@dataclass
class MetricSpec:
    plugin: str
    name: Optional[str] = None
    config: dict = field(default_factory=dict)
    #: attack labels to cross this metric with (attack-based metrics); default all attacks
    attacks: Optional[list[str]] = None
    typed_config: Any = derived_field()

    @property
    def label(self) -> str:
        return self.name or self.plugin


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


@dataclass
class TrainRunConfig:
    """``latentbench train CONFIG``: one model (a run config's model entry), the data it trains on
    (a run config's ``dataset:``) and the checkpoint folder to write."""

    model: ModelSpec = field(default_factory=ModelSpec)
    dataset: DatasetSpec = field(default_factory=DatasetSpec)
    #: checkpoint folder; default checkpoints/<model name>-<dataset>
    output: Optional[str] = None


# -- parsing: YAML mapping -> typed specs ------------------------------------------------------------
def _drop_nulls(data: dict, keys: tuple[str, ...]) -> dict:
    # `models:` with nothing under it reads as null in YAML: treat it as absent, not as a type error
    return {k: v for k, v in data.items() if not (k in keys and v is None)}


def parse_run_config(data: dict[str, Any], source: str = "config") -> RunConfig:
    if not isinstance(data, dict):
        raise ConfigError(source, "the run config must be a YAML mapping with keys such as dataset, models, attacks, metrics")
    return build_dataclass(RunConfig, _drop_nulls(data, ("dataset", "models", "attacks", "metrics")), source)


def load_run_config(path: str | Path) -> RunConfig:
    data = read_yaml_file(path, "pass the path of a YAML run config (e.g. the shipped quickstart)")
    return parse_run_config(data, source=Path(path).name)


def check_train_config_shape(data: dict[str, Any], source: str) -> None:
    """Refuse the train-config shape of earlier versions (``model: NAME`` with ``config:`` and
    ``train:`` beside it) with one line saying how to write it now."""
    model = data.get("model")
    if isinstance(model, str) or "config" in data or "train" in data:
        raise ConfigError(source, "this train config has the old shape (model: NAME with config:/train: beside it)",
                          "write 'model:' as a run config's model entry, e.g. model: {plugin: vae, config: "
                          "{latent_dim: 8}, train: {epochs: 30}}, with dataset: and output: beside it")
    if model is not None and not isinstance(model, dict):
        raise ConfigError(f"{source}.model", f"expected a mapping, got {type(model).__name__} {model!r}",
                          f"write it as {MODEL_SPEC_SHAPE}")


def read_train_config(path: str | Path) -> dict[str, Any]:
    """The raw mapping of a train config file, shape-checked (command-line overrides go in before
    :func:`parse_train_config` builds it)."""
    data = read_yaml_file(path, "pass the path of a YAML train config (e.g. the shipped train_vae_digits)",
                          "expected a mapping with keys model, dataset, output")
    check_train_config_shape(data, Path(path).name)
    return data


def parse_train_config(data: dict[str, Any], source: str = "train config") -> TrainRunConfig:
    check_train_config_shape(data, source)
    return build_dataclass(TrainRunConfig, _drop_nulls(data, ("model", "dataset")), source)


def load_train_config(path: str | Path) -> TrainRunConfig:
    return parse_train_config(read_train_config(path), Path(path).name)


_MODEL_SPEC_KEYS = frozenset(f.name for f in dataclasses.fields(ModelSpec) if f.init)


def check_model_spec_shape(data: dict[str, Any], source: str) -> None:
    """Refuse a bare mapping of model config fields (what ``benchmark --config`` read before) with one
    line saying how to write it now; a typo next to real ModelSpec keys gets build_dataclass's
    did-you-mean instead."""
    if data and not (set(data) & _MODEL_SPEC_KEYS):
        raise ConfigError(source, f"expected a model entry, got bare model config fields ({', '.join(sorted(data))})",
                          "put them under 'config:' (and training settings under 'train:'), e.g. "
                          "config: {latent_dim: 10}, train: {epochs: 40}")


def read_model_spec(path: str | Path) -> dict[str, Any]:
    """The raw mapping of a model entry file (``benchmark --config``), shape-checked."""
    data = read_yaml_file(path, "pass a YAML file holding one model entry",
                          f"expected a mapping: {MODEL_SPEC_SHAPE}")
    check_model_spec_shape(data, Path(path).name)
    return data


def parse_model_spec(data: dict[str, Any], source: str = "model") -> ModelSpec:
    check_model_spec_shape(data, source)
    return build_dataclass(ModelSpec, data, source)


def apply_protocol(cfg: RunConfig, registry) -> RunConfig:
    """Fill dataset, attacks, metrics, seed and trials from a registered protocol."""
    if not cfg.protocol:
        return cfg
    proto = registry.protocol(cfg.protocol, path="protocol")
    src = f"protocol {proto.name}"
    d = build_dataclass(DatasetSpec, {**proto.dataset, **({"data_root": cfg.dataset.data_root} if cfg.dataset.data_root else {})},
                        f"{src}.dataset")
    return dataclasses.replace(cfg, dataset=d, seed=proto.seed, trials=proto.trials,
                               attacks=[build_dataclass(AttackSpec, dict(a), f"{src}.attacks[{i}]") for i, a in enumerate(proto.attacks)],
                               metrics=[build_dataclass(MetricSpec, dict(m), f"{src}.metrics[{i}]") for i, m in enumerate(proto.metrics)])


# -- validation: plugin names and typed configs, once ---------------------------------------------
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


def open_dataset(spec: DatasetSpec, registry, path: str = "dataset.name"):
    """The dataset plugin a DatasetSpec names, configured (nothing is loaded yet)."""
    return registry.dataset(spec.name, path=path)(
        DatasetConfig(image_size=spec.image_size, data_root=spec.data_root, options=dict(spec.options)))


def validate_model_spec(m: ModelSpec, registry, input_shape: tuple[int, ...], path: str) -> None:
    """Check a model entry and build its typed config (``m.typed_config``) and train settings."""
    if bool(m.plugin) == bool(m.checkpoint):
        raise ConfigError(path, "give exactly one of 'plugin' (a model to build/train) or 'checkpoint' (a saved model folder)")
    if m.plugin:
        cls = registry.model(m.plugin, path=f"{path}.plugin")
        # input_shape follows the dataset unless the config pins it
        m.typed_config = cls.config_class.from_dict({"input_shape": list(input_shape), **m.config}, path=f"{path}.config")
        if m.train is None:
            m.train = TrainConfig()
    elif not Path(m.checkpoint).exists():
        raise ConfigError(f"{path}.checkpoint", f"checkpoint folder '{m.checkpoint}' does not exist")


def _attack_configs(cls, a: AttackSpec, path: str) -> list[AttackBudget]:
    out = []
    for b in (a.budgets or [None]):
        # each budget is the attack's eps: one typed config per budget, reused by every cell of it
        raw = dict(a.config) if b is None else {**a.config, "eps": float(b)}
        conf = build_dataclass(cls.config_class, raw, f"{path}.config")
        out.append(AttackBudget(float(conf.eps), conf))
    return out


def validate_run_config(cfg: RunConfig, registry) -> None:
    """Check every plugin name and build every plugin config before any work starts; the typed
    configs are stored on the specs for the runner."""
    check_device(cfg.device, "device")
    dataset = open_dataset(cfg.dataset, registry)
    if not cfg.models:
        raise ConfigError("models", "no models given", "add at least one entry with 'plugin' (and 'train') or 'checkpoint'")
    labels = set()
    for i, m in enumerate(cfg.models):
        p = f"models[{i}]"
        if m.name is not None and m.name in labels:
            raise ConfigError(f"{p}.name", f"duplicate model name '{m.name}'", "give every model a distinct name")
        labels.add(m.name)
        validate_model_spec(m, registry, dataset.shape(), p)
    attack_labels = set()
    for i, a in enumerate(cfg.attacks):
        p = f"attacks[{i}]"
        if a.name in attack_labels:
            raise ConfigError(f"{p}.name", f"duplicate attack name '{a.name}'")
        attack_labels.add(a.name)
        a.typed_configs = _attack_configs(registry.attack(a.plugin, path=f"{p}.plugin"), a, p)
    for i, m in enumerate(cfg.metrics):
        p = f"metrics[{i}]"
        cls = registry.metric(m.plugin, path=f"{p}.plugin")
        m.typed_config = build_dataclass(cls.config_class, m.config, f"{p}.config")
        for j, a in enumerate(m.attacks or []):
            if a not in attack_labels:
                raise UnknownComponentError("attack", a, attack_labels, f"{p}.attacks[{j}]")
        if "attack" in cls.needs and not cfg.attacks:
            raise ConfigError(f"{p}.plugin", f"metric '{m.plugin}' needs an attack but the config has no attacks",
                              "add an entry under 'attacks' or remove this metric")


def validate_train_config(tc: TrainRunConfig, registry):
    """Check a train config and build its typed model config; returns the dataset plugin."""
    if not tc.model.plugin and not tc.model.checkpoint:
        raise ConfigError("model", "no model given", "pass --model NAME or 'model: {plugin: NAME}' in the YAML")
    if tc.model.checkpoint:
        raise ConfigError("model.checkpoint", "train builds a model from a plugin; a checkpoint is trained already",
                          "give 'model.plugin' (evaluate a checkpoint with `latentbench run` or `benchmark --checkpoint`)")
    dataset = open_dataset(tc.dataset, registry)
    validate_model_spec(tc.model, registry, dataset.shape(), "model")
    check_device(tc.model.train.device, "model.train.device")
    return dataset
