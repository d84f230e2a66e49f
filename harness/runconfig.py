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
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from latentbench.data import DatasetConfig, available_memory, data_memory, format_bytes
from latentbench.errors import CheckpointError, ConfigError, UnknownComponentError
from latentbench.training import TrainConfig, check_learning_rate
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
    """The dataset plugin a DatasetSpec names, configured and its settings checked (nothing is loaded yet)."""
    dataset = registry.dataset(spec.name, path=path)(
        DatasetConfig(image_size=spec.image_size, data_root=spec.data_root, options=dict(spec.options)))
    dataset.check_config(path.rsplit(".", 1)[0])
    return dataset


def _check_input_shape(shape: Any, dataset, path: str, source: str) -> None:
    """A model's input_shape against the dataset's examples, before any training or evaluation (the
    model would refuse them later, mid-run, with the same words)."""
    want = tuple(dataset.shape())
    if shape is not None and tuple(shape) != want:
        raise ConfigError(path, f"{source} expects inputs of shape (B, {', '.join(map(str, shape))}) but dataset "
                          f"'{dataset.name}' gives (B, {', '.join(map(str, want))})",
                          "set input_shape in the model config to the dataset's shape (or resize the data with "
                          "dataset.image_size)")


def validate_model_spec(m: ModelSpec, registry, dataset, path: str) -> None:
    """Check a model entry and build its typed config (``m.typed_config``) and train settings."""
    if bool(m.plugin) == bool(m.checkpoint):
        raise ConfigError(path, "give exactly one of 'plugin' (a model to build/train) or 'checkpoint' (a saved model folder)")
    if m.plugin:
        cls = registry.model(m.plugin, path=f"{path}.plugin")
        # input_shape follows the dataset unless the config pins it
        m.typed_config = cls.config_class.from_dict({"input_shape": list(dataset.shape()), **m.config}, path=f"{path}.config")
        _check_input_shape(getattr(m.typed_config, "input_shape", None), dataset, f"{path}.config.input_shape",
                           f"model '{m.plugin}'")
        if m.train is None:
            m.train = TrainConfig()
        lr = m.train.lr if m.train.lr is not None else getattr(m.typed_config, "lr", None)
        if isinstance(lr, (int, float)):
            try:
                check_learning_rate(lr, "the learning rate")
            except ValueError as e:
                where = "train.lr" if m.train.lr is not None else "config.lr"
                raise ConfigError(f"{path}.{where}", str(e)) from None
    elif not Path(m.checkpoint).exists():
        raise ConfigError(f"{path}.checkpoint", f"checkpoint folder '{m.checkpoint}' does not exist")
    else:
        _check_checkpoint(m, registry, dataset, path)


def _check_checkpoint(m: ModelSpec, registry, dataset, path: str) -> None:
    """Read a checkpoint's config.json (not its weights): the model it names is installed and takes
    the dataset's examples."""
    from latentbench.checkpoint import CONFIG_FILE, read_checkpoint_config

    data = read_checkpoint_config(m.checkpoint)
    name = data["model"]
    if not isinstance(name, str):
        raise CheckpointError(f"{Path(m.checkpoint) / CONFIG_FILE}: 'model' must be a model plugin name, got {name!r}")
    registry.model(name, path=f"{path}.checkpoint ({CONFIG_FILE}: model)")
    conf = data["config"] if isinstance(data["config"], dict) else {}
    shape = conf.get("input_shape")
    if isinstance(shape, list) and all(isinstance(v, int) for v in shape):
        _check_input_shape(shape, dataset, f"{path}.checkpoint", f"checkpoint '{m.checkpoint}' (model '{name}')")


def _attack_configs(cls, a: AttackSpec, path: str) -> list[AttackBudget]:
    if a.budgets is not None and not a.budgets:
        raise ConfigError(f"{path}.budgets", "empty list of budgets",
                          "give at least one budget (e.g. budgets: [0.5, 1.0]) or remove 'budgets' to use the attack config's eps")
    out = []
    for i, b in enumerate(a.budgets or [None]):
        # each budget is the attack's eps: one typed config per budget, reused by every cell of it
        raw = dict(a.config) if b is None else {**a.config, "eps": float(b)}
        conf = build_dataclass(cls.config_class, raw, f"{path}.config")
        eps = getattr(conf, "eps", None)
        if not isinstance(eps, (int, float)) or isinstance(eps, bool):
            raise ConfigError(f"{path}.plugin", f"attack '{a.plugin}' has no numeric 'eps' in its config, so it takes no budget",
                              "check the attack plugin's config_class")
        # NaN and inf never get here (float fields refuse them); this catches an attack config that
        # does not check its own eps
        _check_budget(eps, f"{path}.budgets[{i}]" if b is not None else f"{path}.config.eps")
        out.append(AttackBudget(float(eps), conf))
    return out


def _check_budget(b: float, path: str) -> None:
    if not (math.isfinite(b) and b >= 0):
        raise ConfigError(path, f"budget {b} is not a finite number >= 0", "give budgets as finite numbers >= 0, e.g. [0.5, 1.0]")


# -- data: what a run loads, checked before any work ----------------------------------------------
@dataclass(frozen=True)
class SplitPlan:
    """One split a run loads: its size (None: known only once loaded) and the examples taken (None: all)."""

    split: str
    size: Optional[int]
    taken: Optional[int]

    @property
    def n(self) -> Optional[int]:
        return self.taken if self.taken is not None else self.size


@dataclass(frozen=True)
class DataPlan:
    dataset: str
    shape: tuple[int, ...]
    splits: tuple[SplitPlan, ...]
    #: estimated bytes of the loaded examples (float32); splits of unknown size are not counted
    bytes: int
    available: Optional[int]

    def describe(self) -> str:
        parts = [f"{p.split} {p.n if p.n is not None else '?'}" + (f" of {p.size}" if p.taken is not None and p.size else "")
                 for p in self.splits]
        mem = f"about {format_bytes(self.bytes)} of data"
        if self.available is not None:
            mem += f" ({format_bytes(self.available)} available)"
        return f"dataset {self.dataset} {'x'.join(map(str, self.shape))}: {', '.join(parts)} examples; {mem}"


def check_data(spec: DatasetSpec, dataset, takes: dict[str, Optional[int]], files_required: bool = False,
               path: str = "dataset") -> DataPlan:
    """Check the dataset settings and the splits a run loads (``takes``: split -> examples taken,
    None = all) before any work: image size and options, split names, files present and readable,
    subset sizes against the split sizes, and the memory the examples take against what the machine
    has. ``files_required``: files that a load would download count as missing."""
    plans = []
    for split, taken in takes.items():
        key = "eval_subset" if split == spec.eval_split else "train_subset"
        if split not in dataset.splits:
            why = "" if split == spec.eval_split else " (training and training-data metrics read it)"
            raise ConfigError(f"{path}.eval_split" if split == spec.eval_split else f"{path}.name",
                              f"dataset '{spec.name}' has no split '{split}'{why}",
                              f"use one of {', '.join(dataset.splits)}")
        if taken is not None and taken < 1:
            raise ConfigError(f"{path}.{key}", f"must be >= 1, got {taken}", "leave it out (null) for the whole split")
        size = dataset.check_split(split, download=not files_required)
        if size is not None and taken is not None and taken > size:
            raise ConfigError(f"{path}.{key}", f"{taken} examples asked but the '{split}' split of {spec.name} has {size}",
                              f"set {key} to at most {size}, or leave it out for the whole split")
        plans.append(SplitPlan(split, size, taken))
    shape = tuple(dataset.shape())
    total = sum(data_memory(p.n, shape) for p in plans if p.n is not None)
    avail = available_memory()
    if avail is not None and total > avail:
        detail = "; ".join(f"{p.split}: {p.n} x {'x'.join(map(str, shape))} x 4 bytes" for p in plans if p.n is not None)
        raise ConfigError(f"{path}.image_size" if spec.image_size else path,
                          f"the data needs about {format_bytes(total)} in memory ({detail}) but this machine has "
                          f"{format_bytes(avail)} available",
                          "lower dataset.image_size or set eval_subset/train_subset")
    return DataPlan(spec.name, shape, tuple(plans), total, avail)


def _loaded_splits(cfg: RunConfig, registry) -> dict[str, Optional[int]]:
    """The splits a run loads and the examples it takes of each, as the runner does: the evaluation
    split always; the training split when a model is trained or a metric needs training data."""
    d = cfg.dataset
    takes = {d.eval_split: d.eval_subset}
    trains = any(m.plugin for m in cfg.models) or any(
        {"train_data", "classifier"} & registry.metric(m.plugin).needs for m in cfg.metrics)
    if trains and "train" not in takes:
        takes["train"] = d.train_subset
    return takes


def _check_run_numbers(cfg: RunConfig) -> None:
    if not 0 <= cfg.seed < 2**63:
        raise ConfigError("seed", f"must be from 0 to 2**63 - 1, got {cfg.seed}", "use e.g. seed: 0")
    if cfg.trials < 1:
        raise ConfigError("trials", f"must be >= 1, got {cfg.trials}", "use e.g. trials: 1")


def validate_run_config(cfg: RunConfig, registry, files_required: bool = False) -> DataPlan:
    """Check every plugin name, number and dataset setting, and build every plugin config, before any
    work starts; the typed configs are stored on the specs for the runner. Returns what the run will
    load. ``files_required`` (``run --check``): dataset files must be on disk, not downloadable."""
    check_device(cfg.device, "device")
    _check_run_numbers(cfg)
    dataset = open_dataset(cfg.dataset, registry)
    if not cfg.models:
        raise ConfigError("models", "no models given", "add at least one entry with 'plugin' (and 'train') or 'checkpoint'")
    labels = set()
    for i, m in enumerate(cfg.models):
        p = f"models[{i}]"
        if m.name is not None and m.name in labels:
            raise ConfigError(f"{p}.name", f"duplicate model name '{m.name}'", "give every model a distinct name")
        labels.add(m.name)
        validate_model_spec(m, registry, dataset, p)
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
    return check_data(cfg.dataset, dataset, _loaded_splits(cfg, registry), files_required)


def count_cells(cfg: RunConfig, registry) -> int:
    """The number of cells a validated run config has, as :meth:`Runner.cells` builds them, without
    building any model (a checkpoint's model is read from its config.json)."""
    from latentbench.checkpoint import read_checkpoint_config

    n = 0
    for m in cfg.models:
        plugin = m.plugin or read_checkpoint_config(m.checkpoint)["model"]
        generative = getattr(registry.model(plugin), "generative", True)
        for met in cfg.metrics:
            mcls = registry.metric(met.plugin)
            if mcls.requires_generative and not generative:
                continue
            if "attack" not in mcls.needs:
                n += 1
                continue
            n += sum(len(a.typed_configs) for a in cfg.attacks if met.attacks is None or a.name in met.attacks)
    return n


def validate_train_config(tc: TrainRunConfig, registry, files_required: bool = False):
    """Check a train config and build its typed model config; returns the dataset plugin."""
    if not tc.model.plugin and not tc.model.checkpoint:
        raise ConfigError("model", "no model given", "pass --model NAME or 'model: {plugin: NAME}' in the YAML")
    if tc.model.checkpoint:
        raise ConfigError("model.checkpoint", "train builds a model from a plugin; a checkpoint is trained already",
                          "give 'model.plugin' (evaluate a checkpoint with `latentbench run` or `benchmark --checkpoint`)")
    dataset = open_dataset(tc.dataset, registry)
    validate_model_spec(tc.model, registry, dataset, "model")
    check_device(tc.model.train.device, "model.train.device")
    check_data(tc.dataset, dataset, {"train": tc.dataset.train_subset}, files_required)
    return dataset
