"""Evaluate any autoencoder in one call: ``latentbench.evaluate(model, "digits-v2")`` (docs/api.md).

``model`` may be

1. a LatentBench :class:`~latentbench.model.Autoencoder`;
2. any ``nn.Module`` with ``encode`` and ``decode``, where ``encode`` returns a tensor (the code), a
   ``(mean, log_var)`` pair, or an object with ``.mean`` (and optionally ``.std``, ``.stddev`` or
   ``.logvar``: a :class:`LatentGaussian`, a ``torch.distributions.Normal``, diffusers'
   ``DiagonalGaussianDistribution``); ``decode`` returns the images;
3. :func:`wrap` ``(encode_fn, decode_fn, input_range=(0, 1) | (-1, 1), latent_shape=...)``;
4. a diffusers ``AutoencoderKL`` or a pythae model, which :func:`evaluate` turns into (3) with the
   library's adapter (:mod:`latentbench.adapters`; call the adapter's ``adapt`` for its options).

Cases 2 and 3 (and an Autoencoder whose class is not a registered plugin) are adapted by
:class:`WrappedAutoencoder`: inputs mapped from [0, 1] to the model's range (``x * 2 - 1`` for
(-1, 1)) and outputs back (``(y + 1) / 2``), the encoder's mean as the code, and a spatial code
(B, C, h, w) flattened to (B, C*h*w) (``decode`` reshapes it back). Every attack and metric works
on a latent vector, so flattening makes all of them apply unchanged to spatial latents; the
prior of ``sample`` (FID) is N(0, I) over the flattened code.

How the runner gets an in-memory model, without a second code path: the runner evaluates a
checkpoint folder (config.json + model.safetensors) whose model it rebuilds from the registry. The
adapter's weights (the wrapped module's ``state_dict`` plus a small identity buffer hashing the
module's class, the source file it comes from, the input range and the latent shape) are saved
as such a folder in the run's store, and the run's registry is a copy of the installed one in
which the model name ``wrapped`` is a subclass of :class:`WrappedAutoencoder` bound to this very
module: rebuilding "from the checkpoint" re-attaches the live module and loads the same weights
into it. So results are keyed by the sha256 of that weights file, exactly as for any checkpoint
(other weights, other code file or other adapter settings: other keys), resume and claims work
as in ``latentbench run``, and :meth:`EvaluationResult.to_entry` calls
:func:`latentbench.benchmark.evaluate` itself, which reuses every stored cell. The alternative,
a Runner subclass overriding ``prepare_models``, would have needed its own weights hash and would
not have reached ``benchmark.evaluate``'s entry building. A registered plugin's model (e.g. a
built-in ``vae``) is saved as its own checkpoint instead, so its entry is one that
`latentbench leaderboard verify` can rebuild; a wrapped module's entry names the ``wrapped``
model, which only the module's code can rebuild. Neither kind of in-memory model can go to Ray
workers (they never unpickle a model), so those run with the local executor.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import inspect
import json
import math
import os
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import torch
from torch import Tensor, nn

from latentbench.errors import ConfigError, LatentBenchError
from latentbench.model import Autoencoder, LatentGaussian, ModelConfig

#: the model name of adapted in-memory modules in the run's registry (and in their checkpoints)
WRAPPED = "wrapped"
INPUT_RANGES = ((0.0, 1.0), (-1.0, 1.0))
#: the evaluation folders' root when ``store`` is not given: one folder per (model, protocol, ...)
DEFAULT_STORE_ROOT = "~/.cache/latentbench/evaluate"
#: the accepted model shapes, as the error for a model that fits none lists them
SHAPES = ("a latentbench.Autoencoder",
          "an nn.Module with encode and decode (encode returning a tensor, a (mean, log_var) pair, or an object "
          "with .mean)",
          "latentbench.wrap(encode_fn, decode_fn, input_range=(0, 1) or (-1, 1), latent_shape=...)")


class ModelShapeError(LatentBenchError):
    """A model that fits none of the shapes :func:`evaluate` accepts."""


# -- wrap(): functions as a module -----------------------------------------------------------------
class Wrapped(nn.Module):
    """What :func:`wrap` returns: ``encode_fn``/``decode_fn`` with the adapter's settings. The
    modules the functions use (bound methods' owners, modules in their closures, and ``modules``)
    are registered as submodules, so their weights are saved, hashed and moved to the device."""

    def __init__(self, encode_fn: Callable, decode_fn: Callable, input_range: Sequence[float] = (0.0, 1.0),
                 latent_shape: Optional[Sequence[int]] = None, modules: Sequence[nn.Module] = ()):
        super().__init__()
        for what, fn in (("encode_fn", encode_fn), ("decode_fn", decode_fn)):
            if not callable(fn):
                raise ConfigError(f"wrap({what})", f"expected a function, got {type(fn).__name__}",
                                  "pass the model's encode and decode functions (or bound methods)")
        self.encode_fn, self.decode_fn = encode_fn, decode_fn
        self.input_range = _check_range(input_range, "wrap(input_range)")
        self.latent_shape = None if latent_shape is None else _check_latent_shape(latent_shape, "wrap(latent_shape)")
        found = list(modules) + [m for fn in (encode_fn, decode_fn) for m in _modules_of(fn)]
        # one entry per module (a shared module would otherwise be saved twice)
        self.parts = nn.ModuleList(list({id(m): m for m in found}.values()))

    def encode(self, x: Tensor):
        return self.encode_fn(x)

    def decode(self, z: Tensor):
        return self.decode_fn(z)


def wrap(encode_fn: Callable, decode_fn: Callable, *, input_range: Sequence[float] = (0, 1),
         latent_shape: Optional[Sequence[int]] = None, modules: Sequence[nn.Module] = ()) -> Wrapped:
    """An autoencoder made of two functions, for :func:`evaluate`. ``input_range``: the pixel range
    the functions take and return, (0, 1) or (-1, 1). ``latent_shape``: the code's shape per image
    (e.g. ``(4, 8, 8)``), checked against what ``encode_fn`` returns (default: whatever it returns).
    ``modules``: modules whose weights the functions use and that are not bound methods' owners or
    in their closures (their weights key the stored results)."""
    return Wrapped(encode_fn, decode_fn, input_range, latent_shape, modules)


def _modules_of(fn: Callable) -> list[nn.Module]:
    owner = getattr(fn, "__self__", None)
    found = [owner] if isinstance(owner, nn.Module) else []
    for cell in getattr(getattr(fn, "__func__", fn), "__closure__", None) or ():
        try:
            v = cell.cell_contents
        except ValueError:  # an empty cell
            continue
        if isinstance(v, nn.Module):
            found.append(v)
    return found


def _check_range(r: Any, where: str) -> tuple[float, float]:
    try:
        pair = tuple(float(v) for v in r)
    except (TypeError, ValueError):
        pair = None
    if pair not in INPUT_RANGES:
        raise ConfigError(where, f"unsupported input range {r!r}", "use (0, 1) or (-1, 1)")
    return pair


def _check_latent_shape(shape: Any, where: str) -> tuple[int, ...]:
    if isinstance(shape, int):
        shape = (shape,)
    try:
        out = tuple(int(v) for v in shape)
    except (TypeError, ValueError):
        out = ()
    if not out or any(v < 1 for v in out):
        raise ConfigError(where, f"expected the code's shape per image as positive integers, got {shape!r}",
                          "e.g. latent_shape=(4, 8, 8) for a spatial code, or (16,) for a vector")
    return out


# -- the adapter ----------------------------------------------------------------------------------
@dataclass
class WrappedConfig(ModelConfig):
    """What a wrapped model's checkpoint records (config.json): its adapter settings and where its
    code comes from. The module itself is not in it: only this process can rebuild it."""

    input_range: list = field(default_factory=lambda: [0.0, 1.0])
    #: the code's shape per image; latent_dim is its product
    latent_shape: list = field(default_factory=list)
    #: module:qualname of the wrapped module's class (or of wrap()'s functions)
    module: str = ""
    #: sha256 of the source file of that code (empty: none found, e.g. a notebook cell)
    code_sha256: str = ""
    #: the most images passed to encode/decode at once (0: as the caller batches them)
    batch_size: int = 0


def _qualname(obj: Any) -> str:
    fn = getattr(obj, "__func__", obj)
    target = fn if inspect.isfunction(fn) or inspect.isclass(fn) else type(obj)
    return f"{getattr(target, '__module__', '?')}:{getattr(target, '__qualname__', type(target).__name__)}"


def _code_digest(obj: Any) -> str:
    """sha256 of the source file defining ``obj`` (a module instance's class, or a function); for a
    function without a file (a notebook cell), of its bytecode."""
    from latentbench.registry import source_digest

    fn = getattr(obj, "__func__", obj)
    digest = source_digest(fn)
    if digest is None and inspect.isfunction(fn):
        digest = hashlib.sha256(fn.__code__.co_code).hexdigest()
    return digest or ""


def _origin(model: Any) -> tuple[str, str]:
    """(module:qualname, code sha256) of the code behind ``model``: its class, or wrap()'s functions."""
    if isinstance(model, Wrapped):
        fns = (model.encode_fn, model.decode_fn)
        names, digests = [_qualname(f) for f in fns], [_code_digest(f) for f in fns]
        joined = digests[0] if digests[0] == digests[1] else hashlib.sha256("".join(digests).encode()).hexdigest()
        return ",".join(dict.fromkeys(names)), joined
    return _qualname(model), _code_digest(model)


class WrappedAutoencoder(Autoencoder):
    """An in-memory module as a LatentBench Autoencoder (the module docstring says how). Subclasses
    made by :func:`adapt` set ``inner``; the runner rebuilds the model from its checkpoint through them."""

    name = WRAPPED
    config_class = WrappedConfig
    source = "latentbench.evaluate: an in-memory module (docs/api.md)"
    generative = True
    #: the live module this class stands for (set on the subclass :func:`adapt` makes)
    inner: Optional[nn.Module] = None

    def __init__(self, config: WrappedConfig):
        super().__init__(config)
        inner = type(self).inner
        if inner is None:
            raise LatentBenchError(
                f"a '{WRAPPED}' checkpoint holds the weights of an in-memory module ({config.module}), which only its "
                f"code can rebuild -- build the module in Python and pass it to latentbench.evaluate")
        self.inner = inner
        self.signed = float(config.input_range[0]) < 0  # a (-1, 1) model
        self.register_buffer("latentbench_identity", _identity_tensor(config))

    # ranges: the attacks' [0, 1] box outside, the module's own range inside
    def _to_model(self, x: Tensor) -> Tensor:
        x = x * 2 - 1 if self.signed else x
        dtype = _float_dtype(self.inner)
        return x if dtype is None else x.to(dtype)

    def _from_model(self, y: Tensor, like: Tensor) -> Tensor:
        y = y.to(like.dtype)
        return (y + 1) / 2 if self.signed else y

    def _batches(self, x: Tensor):
        bs = int(self.config.batch_size) or len(x) or 1
        return [x[i:i + bs] for i in range(0, len(x), bs)] or [x]

    def encode(self, x: Tensor) -> LatentGaussian:
        parts = [interpret_code(self.inner.encode(self._to_model(xb)), "encode") for xb in self._batches(x)]
        mean = torch.cat([m for m, _ in parts]).flatten(1).to(x.dtype)
        std = None if parts[0][1] is None else torch.cat([s for _, s in parts]).flatten(1).to(x.dtype)
        return LatentGaussian(mean, std)

    def decode(self, z: Tensor) -> Tensor:
        shape = tuple(self.config.latent_shape)
        outs = []
        for zb in self._batches(z):
            zm = zb.reshape(len(zb), *shape)
            dtype = _float_dtype(self.inner)
            out = self.inner.decode(zm if dtype is None else zm.to(dtype))
            if not isinstance(out, Tensor):
                raise ModelShapeError(f"decode returned {_describe(out)}; expected a tensor of images (B, C, H, W)")
            outs.append(out)
        return self._from_model(outs[0] if len(outs) == 1 else torch.cat(outs), z)

    def loss(self, x: Tensor, y: Tensor | None = None) -> dict[str, Tensor]:
        raise LatentBenchError("a wrapped module is evaluated, not trained by LatentBench -- train it with its own "
                               "code")


def _float_dtype(module: nn.Module) -> Optional[torch.dtype]:
    for p in module.parameters():
        if p.is_floating_point():
            return p.dtype
    return None


def settings_tensor(settings: dict[str, Any]) -> Tensor:
    """32 bytes (uint8) hashing ``settings`` (JSON-able): registered as a buffer, they become part
    of the weights file whose sha256 keys the results, so the same weights under other settings get
    other keys. Also used by the library adapters (latentbench.adapters) for their own settings."""
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True, default=list).encode()).digest()
    return torch.tensor(list(digest), dtype=torch.uint8)


def _identity_tensor(config: WrappedConfig) -> Tensor:
    """The adapter's settings and the code's origin as a :func:`settings_tensor`."""
    return settings_tensor({k: getattr(config, k)
                            for k in ("input_range", "latent_shape", "module", "code_sha256", "input_shape")})


def _describe(v: Any) -> str:
    if isinstance(v, Tensor):
        return f"a tensor of shape {tuple(v.shape)}"
    if isinstance(v, dict):
        return f"a dict with keys {sorted(map(str, v))[:6]}"
    if isinstance(v, (tuple, list)):
        return f"a {type(v).__name__} of {len(v)} ({', '.join(type(i).__name__ for i in v[:4])})"
    return f"a {type(v).__name__}"


def interpret_code(out: Any, where: str = "encode") -> tuple[Tensor, Optional[Tensor]]:
    """(mean, std or None) of what an encoder returned: a tensor, a (mean, log_var) pair, or an
    object with ``.mean`` (std from ``.std``, ``.stddev`` or ``.logvar``)."""
    expected = "expected a tensor, a (mean, log_var) pair, or an object with .mean"
    if isinstance(out, Tensor):
        return out, None
    if isinstance(out, (tuple, list)):
        if len(out) == 2 and all(isinstance(v, Tensor) for v in out):
            if out[0].shape != out[1].shape:
                raise ModelShapeError(f"{where} returned a pair of tensors of shapes {tuple(out[0].shape)} and "
                                      f"{tuple(out[1].shape)}; a (mean, log_var) pair has one shape")
            return out[0], torch.exp(0.5 * out[1])
        raise ModelShapeError(f"{where} returned {_describe(out)}; {expected}")
    mean = getattr(out, "mean", None)
    if isinstance(mean, Tensor):
        for attr in ("std", "stddev"):
            v = getattr(out, attr, None)
            if isinstance(v, Tensor):
                return mean, v
        logvar = getattr(out, "logvar", None)
        return mean, torch.exp(0.5 * logvar) if isinstance(logvar, Tensor) else None
    raise ModelShapeError(f"{where} returned {_describe(out)}; {expected}")


def _registered(model: Any, registry) -> bool:
    """A model whose class is the registered plugin of its name: saved as its own checkpoint."""
    name = getattr(type(model), "name", None)
    return isinstance(model, Autoencoder) and registry.components["model"].get(name) is type(model)


def adapt(model: Any, input_shape: Sequence[int], device: torch.device,
          batch_size: Optional[int] = None) -> WrappedAutoencoder:
    """``model`` as a :class:`WrappedAutoencoder` on ``device``, checked on a probe batch of the
    protocol's input shape; a model that fits none of the accepted shapes gets one
    :class:`ModelShapeError` saying why for each."""
    if isinstance(model, Wrapped):
        inner, rng, lshape = model, model.input_range, model.latent_shape
    elif isinstance(model, nn.Module) and all(callable(getattr(model, m, None)) for m in ("encode", "decode")):
        inner, rng, lshape = model, (0.0, 1.0), None
    else:
        missing = [m for m in ("encode", "decode") if not callable(getattr(model, m, None))]
        why = ("it is not an nn.Module" if not isinstance(model, nn.Module)
               else f"it has no {' and no '.join(missing)} method")
        raise _shape_error(model, why)
    cls = type(f"Wrapped_{type(inner).__name__}", (WrappedAutoencoder,), {"inner": inner})
    module, code = _origin(model)
    config = WrappedConfig(input_shape=tuple(input_shape), latent_dim=1, input_range=list(rng),
                           latent_shape=list(lshape or ()), module=module, code_sha256=code,
                           batch_size=int(batch_size or 0))
    return cls(_probed(model, cls, config, device, lshape)).to(device).eval()


def _probed(model: Any, cls, config: WrappedConfig, device: torch.device, lshape) -> WrappedConfig:
    """Run encode and decode on two random images of the protocol's shape: the code's shape (and
    latent_dim) comes from what encode returns; decode must give images of the input shape."""
    inner = cls.inner.to(device).eval()
    x = torch.rand((2, *config.input_shape), generator=torch.Generator().manual_seed(0)).to(device)
    probe = cls(dataclasses.replace(config, latent_shape=[1]))
    try:
        with torch.no_grad():
            mean, _ = interpret_code(inner.encode(probe._to_model(x)), "encode")
            if mean.dim() < 2 or mean.shape[0] != 2:
                raise ModelShapeError(f"encode returned codes of shape {tuple(mean.shape)} for 2 images; expected "
                                      f"(2, ...) (a batch of codes)")
            got = tuple(mean.shape[1:])
            if lshape is not None and math.prod(lshape) != math.prod(got):
                raise ModelShapeError(f"encode returned codes of shape {got} per image, wrap() was told "
                                      f"latent_shape={tuple(lshape)}")
            config = dataclasses.replace(config, latent_shape=list(lshape or got), latent_dim=math.prod(got))
            out = cls(config).decode(mean.flatten(1).float())
            if tuple(out.shape) != (2, *config.input_shape):
                raise ModelShapeError(f"decode returned images of shape {tuple(out.shape[1:])}, the protocol's "
                                      f"images are {tuple(config.input_shape)}")
    except ModelShapeError as e:
        raise _shape_error(model, str(e)) from None
    except Exception as e:  # the module's own error, on the protocol's input shape
        first = str(e).splitlines()[0] if str(e) else ""
        raise _shape_error(model, f"encode/decode raised {type(e).__name__}: {first} on a batch of shape "
                                  f"(2, {', '.join(map(str, config.input_shape))})") from None
    return config


def _shape_error(model: Any, why: str) -> ModelShapeError:
    """One error naming, for each accepted shape, why ``model`` does not fit it (``why``: the
    reason of the shape it was taken for, a wrap() result or an nn.Module with encode/decode)."""
    wrapped = isinstance(model, Wrapped)
    first = "it is one, but not a registered plugin, so it is adapted as (2)" if isinstance(model, Autoencoder) \
        else "it is not one"
    err = ModelShapeError(
        f"model {type(model).__name__} fits none of the accepted shapes: (1) {SHAPES[0]}: {first}; (2) {SHAPES[1]}: "
        f"{'it is a wrap() result, see (3)' if wrapped else why}; (3) {SHAPES[2]}: "
        f"{why if wrapped else 'not a wrap() result'} -- make encode return a tensor, a (mean, log_var) pair or an "
        f"object with .mean and decode return images of the protocol's shape, or wrap your functions with "
        f"latentbench.wrap")
    err.why = why  # the reason alone, for a caller that knows which shape the model was taken for
    return err


# -- the run's registry ---------------------------------------------------------------------------
def run_registry(registry, protocol, model_cls: Optional[type] = None):
    """A copy of ``registry`` whose protocol of ``protocol.name`` is ``protocol`` (e.g. with a
    smaller evaluation subset) and, with ``model_cls``, whose model ``wrapped`` is that class."""
    view = copy.copy(registry)
    view.components = {k: dict(v) for k, v in registry.components.items()}
    view.provider = dict(registry.provider)
    view.components["protocol"][protocol.name] = protocol
    if model_cls is not None:
        view.components["model"][WRAPPED] = model_cls
        view.provider[("model", WRAPPED)] = "latentbench.api"
    return view


# -- results --------------------------------------------------------------------------------------
#: half-width of a normal 95% interval in standard errors (as the leaderboard prints them)
Z95 = 1.96


@dataclass
class Number:
    """One headline number with its standard error (None: the metric reports none)."""

    name: str
    value: Optional[float]
    se: Optional[float] = None

    @property
    def ci95(self) -> Optional[tuple[float, float]]:
        if self.value is None or self.se is None:
            return None
        return (self.value - Z95 * self.se, self.value + Z95 * self.se)

    def text(self) -> str:
        from latentbench.leaderboard.render import fmt_ci

        return fmt_ci(self.value, self.se)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "value": self.value, "se": self.se, "ci95": list(self.ci95) if self.ci95 else None}


@dataclass
class EvaluationResult:
    """What :func:`evaluate` returns: the protocol's headline numbers (its main table's columns, or
    its ranking column), every cell's values, and how the run went."""

    model: str
    protocol: str
    protocol_version: str
    device: str
    #: the evaluation images used: the protocol's subset, or the first ``n_examples`` of a draw
    n_images: int
    #: None: the protocol's own evaluation subset; else the smaller subset evaluated
    n_examples: Optional[int]
    #: False when ``n_examples`` shrank the subset: not comparable with the leaderboard
    comparable: bool
    store: str
    #: the main table's columns (v2 protocols) or the ranking column (v1), in the protocol's order
    headline: list[Number]
    rank_by: Optional[Number]
    #: per curve of the ranking metric (e.g. robust_accuracy): [(ε, value, se), ...]
    curves: dict[str, list[tuple[float, float, float]]]
    clean: dict[str, float]
    #: sanity flags the metrics raised (e.g. robust_accuracy's collapsed, gradient_masking)
    flags: list[str]
    cells: list[dict[str, Any]]
    computed: int = 0
    reused: int = 0
    failures: list[str] = field(default_factory=list)
    _rows: list = field(default_factory=list, repr=False)
    _source: dict = field(default_factory=dict, repr=False)

    # -- the headline score, when the protocol has it (docs/methods.md §7) --------------------------
    def _value(self, key: str) -> Optional[Number]:
        from latentbench.report import HEADLINE_METRIC

        for c in self.cells:
            if c["metric"] == HEADLINE_METRIC and c["values"] and key in c["values"]:
                return Number(key, c["values"][key], c["values"].get(f"{key}_se"))
        return None

    @property
    def clean_accuracy(self) -> Optional[Number]:
        return self._value("clean_accuracy")

    @property
    def robust_accuracy(self) -> Optional[Number]:
        """Mean robust reconstruction accuracy over the protocol's ε grid (v2 protocols)."""
        return self._value("robust_accuracy_mean")

    @property
    def curve(self) -> list[tuple[float, float, float]]:
        """Robust reconstruction accuracy per ε, [(ε, value, se), ...] (empty for v1 protocols)."""
        return self.curves.get("robust_accuracy", [])

    # -- output -------------------------------------------------------------------------------------
    def table(self, full: bool = False) -> str:
        """The headline numbers with their 95% intervals (``full``: then every cell's values)."""
        from tabulate import tabulate

        rows = [[n.name, n.text()] for n in self.headline]
        head = f"{self.model} under {self.protocol} ({self.n_images} images, {self.device})"
        lines = [head, tabulate(rows, headers=["", "value ± 95%"], tablefmt="github", disable_numparse=True)]
        if self.flags:
            lines.append("flags raised: " + ", ".join(self.flags))
        if not self.comparable:
            lines.append(f"n_examples={self.n_examples}: a smaller evaluation subset than the protocol's; not "
                         f"comparable with the leaderboard")
        lines += self.failures
        if full:
            from latentbench.report import run_report

            lines.append(run_report(self._rows, full=True))
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()

    def to_json(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if not f.name.startswith("_")}
        out["headline"] = [n.to_json() for n in self.headline]
        out["rank_by"] = self.rank_by.to_json() if self.rank_by else None
        out["curves"] = {k: [list(p) for p in v] for k, v in self.curves.items()}
        return out

    def to_entry(self, path: str | os.PathLike, name: Optional[str] = None, paper: Optional[str] = None,
                 checkpoint_dir: Optional[str | os.PathLike] = None) -> Path:
        """Write this result as the leaderboard entry ``path`` (``<repo>/leaderboard/<protocol>/<name>.json``)
        and its checkpoint (safetensors + config.json) to ``checkpoint_dir`` (default
        ``<repo>/runs/leaderboard-checkpoints/<protocol>/<name>``), through
        :func:`latentbench.benchmark.evaluate`, which reuses every cell of this run from its store."""
        from latentbench.benchmark import BenchmarkRequest, evaluate as benchmark_evaluate
        from latentbench.leaderboard.validate import checkpoint_path_problem, entry_file, path_rule

        name = name or self.model
        if not self.comparable:
            raise LatentBenchError(
                f"this result was computed on n_examples={self.n_examples} images, not on protocol {self.protocol}'s "
                f"evaluation subset, so it cannot be a leaderboard entry -- re-run latentbench.evaluate(model, "
                f"'{self.protocol}') without n_examples")
        if name != self.model:
            raise LatentBenchError(
                f"entry name '{name}' differs from the name '{self.model}' the numbers were computed under (seeds "
                f"derive from it, and `leaderboard verify` re-runs under the entry's name) -- call to_entry with "
                f"name='{self.model}', or re-run evaluate(..., name='{name}')")
        if self.failures:
            raise LatentBenchError(f"{len(self.failures)} cell(s) failed, so the entry would be incomplete -- fix the "
                                   f"model and re-run evaluate (finished cells are reused): {self.failures[0]}")
        out = entry_file(path, self.protocol, name, "to_entry(path)",
                         f"pass e.g. leaderboard/{self.protocol}/{name}.json (validate looks there)")
        root = out.parent.parent.parent
        dest = Path(checkpoint_dir).resolve() if checkpoint_dir else \
            root / "runs" / "leaderboard-checkpoints" / self.protocol / name
        try:
            rel = str(dest.relative_to(root))
        except ValueError:
            rel = None
        lb_name = out.parent.parent.name
        problem = "is outside the repository" if rel is None else checkpoint_path_problem(rel, root, lb_name)
        if problem:
            raise ConfigError("to_entry(checkpoint_dir)", f"'{dest}' {problem}", path_rule(lb_name))
        src = self._source
        regenerate = (f"latentbench benchmark --protocol {shlex.quote(self.protocol)} --checkpoint {shlex.quote(rel)} "
                      f"--name {shlex.quote(name)}") if src["plugin"] else (
            f"python: latentbench.evaluate(<{src['module']}>, '{self.protocol}', name='{name}') -- an in-memory "
            f"module, rebuilt by its own code")
        req = BenchmarkRequest(protocol=self.protocol, checkpoint=src["checkpoint"], name=name, paper=paper,
                               device=self.device, work_dir=self.store, save_checkpoint_to=str(dest),
                               regenerate=regenerate)
        entry = benchmark_evaluate(req, src["registry"], repo_root=root)
        out.parent.mkdir(parents=True, exist_ok=True)
        from latentbench.atomic import atomic_write_text

        atomic_write_text(out, json.dumps(entry, indent=1) + "\n")
        return out


# -- evaluate -------------------------------------------------------------------------------------
_LABEL = re.compile(r"[^A-Za-z0-9_.+-]+")


def _default_device(model: Any) -> str:
    for p in (model.parameters() if isinstance(model, nn.Module) else ()):
        return str(p.device)
    return "cpu"


def _store_for(store, key: dict[str, Any]) -> Path:
    if store is not None:
        return Path(store).expanduser()
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    return Path(DEFAULT_STORE_ROOT).expanduser() / digest


def evaluate(model: Any, protocol: str, *, device: Optional[str] = None, batch_size: Optional[int] = None,
             n_examples: Optional[int] = None, progress: bool = True, store: Optional[str | os.PathLike] = None,
             executor: str = "local", name: Optional[str] = None) -> EvaluationResult:
    """Evaluate ``model`` under the registered ``protocol`` with the runner the CLI uses (same
    store, resume, claims and provenance) and return its headline numbers (docs/api.md).

    ``device``: default the model's (cpu for a model without parameters). ``batch_size``: the most
    images a wrapped module's encode/decode get at once (memory; a registered plugin's model is
    batched as the protocol's metrics batch it). ``n_examples``: evaluate only that many of the
    protocol's images (a quick look; not comparable with the leaderboard, and ``to_entry`` refuses
    it). ``store``: the run folder (results store, cached work); default a folder under
    ~/.cache/latentbench/evaluate/ named by a hash of the model's weights and these settings, so a
    second call reuses or resumes. ``name``: the model's label (default its plugin or class name;
    seeds derive from it)."""
    from latentbench.benchmark import protocol_runner
    from latentbench.checkpoint import CONFIG_FILE, save_checkpoint, state_hash
    from latentbench.executors import EXECUTORS
    from latentbench.registry import get_registry
    from latentbench.runconfig import DatasetSpec, check_device, open_dataset
    from latentbench.typed_config import build_dataclass

    registry = get_registry()
    proto = registry.protocol(protocol, path="protocol")
    if executor not in EXECUTORS:
        raise ConfigError("executor", f"unknown executor '{executor}'", f"use one of: {', '.join(EXECUTORS)}")
    device = str(device or _default_device(model))
    check_device(device, "device")
    dev = torch.device(device)
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1):
        raise ConfigError("batch_size", f"expected a positive integer, got {batch_size!r}", "e.g. batch_size=64")
    spec = build_dataclass(DatasetSpec, dict(proto.dataset), f"protocol {proto.name}.dataset")
    dataset = open_dataset(spec, registry)
    if n_examples is not None:
        # the first n of the same seeded draw: a subset of the protocol's own evaluation images
        full = spec.eval_subset or dataset.check_split(spec.eval_split)
        if isinstance(n_examples, bool) or not isinstance(n_examples, int) or n_examples < 1 or (
                full is not None and n_examples >= full):
            raise ConfigError("n_examples", f"expected a positive integer below the protocol's {full} evaluation "
                                            f"images, got {n_examples!r}", "leave it out for the protocol's subset")
        proto = dataclasses.replace(proto, dataset={**proto.dataset, "eval_subset": n_examples})

    # a diffusers AutoencoderKL or a pythae model: presented through its library's adapter
    # (latentbench.adapters; call the adapter's adapt() yourself for its options)
    from latentbench.adapters import auto_adapt

    given, model = model, auto_adapt(model)
    plugin = _registered(model, registry)
    if plugin:
        if batch_size is not None:
            raise ConfigError("batch_size", f"model '{type(model).name}' is a registered plugin, evaluated exactly as "
                                            f"`latentbench benchmark` evaluates it", "leave batch_size out")
        adapted, view = model, run_registry(registry, proto)
    else:
        try:
            adapted = adapt(model, dataset.shape(), dev, batch_size)
        except ModelShapeError as e:
            if given is model:
                raise
            # a library's model: the adapter has taken care of the shapes, so the images are what differs
            raise ModelShapeError(
                f"{type(given).__name__} (through latentbench.adapters) does not work on protocol {proto.name}'s "
                f"images of shape {tuple(dataset.shape())}: {getattr(e, 'why', e)} -- evaluate it under a protocol "
                f"whose images it takes (`latentbench plugins` lists the protocols)") from None
        view = run_registry(registry, proto, type(adapted))
        if executor != "local":
            raise ConfigError("executor", f"model {type(model).__name__} lives in this process and Ray workers never "
                                          f"unpickle a model", "use executor='local', or evaluate a registered "
                                          "plugin's checkpoint with `latentbench benchmark --executor ray`")
    default = (type(model).name if plugin else type(given).__name__ if given is not model
               else WRAPPED if isinstance(model, Wrapped) else type(model).__name__)
    label = _LABEL.sub("-", name or default).strip("-") or WRAPPED
    weights = state_hash(adapted)
    folder = _store_for(store, {"protocol": proto.name, "n_examples": n_examples, "model": label,
                                          "weights": weights, "device": device})
    checkpoint = folder / "models" / weights[:16]
    if not (checkpoint / CONFIG_FILE).exists():
        save_checkpoint(adapted, checkpoint, {"source": "latentbench.evaluate", "module": _origin(model)[0]})
    runner = protocol_runner(proto.name, label, str(checkpoint), device, str(folder), None, view, progress,
                             executor={"executor": executor})
    summary = runner.run()
    return _result(runner, summary, view, proto, label, n_examples, folder, plugin, checkpoint, model)


def _result(runner, summary, registry, proto, label, n_examples, folder, plugin, checkpoint, model) -> EvaluationResult:
    from latentbench.benchmark import _result_records, clean_reconstruction
    from latentbench.checkpoint import load_checkpoint
    from latentbench.leaderboard.render import columns_for, curve_series, main_columns, rank_column

    ok = [r for r in summary.rows if r["status"] == "ok"]
    ev = runner.split(runner.cfg.dataset.eval_split).to(runner.device)
    loaded = load_checkpoint(checkpoint, registry, runner.device)
    clean = clean_reconstruction(loaded, ev.x)
    entry = {"reported": {"clean": clean, "results": _result_records(ok)}}
    cols = columns_for(proto, [entry], registry)
    headline, rank, curves = [], None, {}
    try:
        rc = rank_column(proto, cols)
        rank = Number(rc.header, rc.get(entry), rc.se(entry))
        curves = curve_series(rc, entry)
        headline = [Number(c.header, c.get(entry), c.se(entry)) for c in (main_columns(proto, cols) or [rc])]
    except LatentBenchError:  # the ranking metric's cell failed: its failure is listed
        headline = [Number(cols[0].header, cols[0].get(entry), None)]
    flags = sorted({k[5:] for r in ok for k, v in r["values"].items() if k.startswith("flag_") and v >= 0.5})
    cells = [{"metric": r["metric"], "attack": r.get("attack"), "budget": r.get("budget"), "status": r["status"],
              "values": r["values"], "error": r.get("error")} for r in summary.rows]
    return EvaluationResult(
        model=label, protocol=proto.name, protocol_version=proto.version, device=str(runner.device),
        n_images=int(len(ev.x)), n_examples=n_examples, comparable=n_examples is None, store=str(folder),
        headline=headline, rank_by=rank, curves=curves, clean=clean, flags=flags, cells=cells,
        computed=summary.computed, reused=summary.reused, failures=summary.failure_lines(), _rows=summary.rows,
        _source={"plugin": plugin, "checkpoint": str(checkpoint), "registry": registry, "module": _origin(model)[0],
                 "model": model})
