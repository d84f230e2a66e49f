"""``latentbench train``: train one model and save a safetensors checkpoint.

The YAML file is a train config (:class:`latentbench.runconfig.TrainRunConfig`): the model as a run
config's model entry, the dataset as a run config's ``dataset:``, and the checkpoint folder::

    model: {plugin: vae, config: {latent_dim: 8}, train: {epochs: 30, batch_size: 64}}
    dataset: {name: digits}
    output: checkpoints/vae-digits

Flags override the file: they are merged into its mapping before it is built, so a bad flag value
gets the same key-path error as a bad YAML value.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from latentbench.cli.options import add_shared_options, device_from, merged, parse_set, registry_for

#: train flags that override model.train (argparse dest = TrainConfig field)
TRAIN_FLAGS = ("epochs", "batch_size", "lr", "seed", "max_steps")


def _with_overrides(raw: dict[str, Any], args) -> dict[str, Any]:
    model = dict(raw.get("model") or {})
    if args.model:
        model["plugin"] = args.model
    model["config"] = merged(model, "config", parse_set(args.set))
    train = {k: getattr(args, k) for k in TRAIN_FLAGS if getattr(args, k) is not None}
    if args.no_progress:
        train["progress"] = False
    train = merged(model, "train", train)
    if isinstance(train, dict):
        train["device"] = device_from(args, train.get("device"))
    model["train"] = train
    dataset = {k: v for k, v in (("name", args.dataset), ("data_root", args.data_root)) if v}
    return {**raw, "model": model, "dataset": merged(raw, "dataset", dataset),
            "output": args.work_dir or raw.get("output")}


def cmd_train(args) -> int:
    import torch

    from latentbench.checkpoint import save_checkpoint
    from latentbench.runconfig import parse_train_config, read_train_config, validate_train_config
    from latentbench.training import train, training_metadata

    raw = read_train_config(args.config) if args.config else {}
    tc = parse_train_config(_with_overrides(raw, args), Path(args.config).name if args.config else "train")
    reg = registry_for(args)
    dplug = validate_train_config(tc, reg)
    spec, ds, tcfg = tc.model, tc.dataset, tc.model.train
    data = dplug.load_subset("train", ds.train_subset, tcfg.seed, f"{ds.name}/train")
    out = Path(tc.output or f"checkpoints/{spec.name}-{ds.name}")
    torch.manual_seed(tcfg.seed)
    model = reg.model(spec.plugin)(spec.typed_config)
    res = train(model, data, tcfg)
    save_checkpoint(model, out, training_metadata(model, ds.name, tcfg, res))
    label = spec.plugin if spec.name == spec.plugin else f"{spec.name} ({spec.plugin})"
    print(f"trained {label} on {ds.name} ({len(data)} examples) for {res.steps} steps in {res.seconds:.1f}s; "
          f"final losses {json.dumps({k: round(v, 5) for k, v in res.final.items()})}")
    print(f"checkpoint: {out}/ (config.json, model.safetensors, metadata.json)")
    return 0


def add_commands(sub) -> None:
    p = sub.add_parser("train", help="train a model and save a safetensors checkpoint",
                       description="Train any installed model. Settings come from an optional YAML train config "
                                   "(model: a run config's model entry {plugin, config, train}; dataset; output) "
                                   "and are overridden by flags.")
    p.add_argument("config", nargs="?", help="YAML train config, or the name of a shipped one (train_vae_digits); optional")
    p.add_argument("--model", help="model plugin name, e.g. vae (sets model.plugin)")
    p.add_argument("--dataset", help="dataset name (default digits)")
    add_shared_options(p, "train", "device", "data_root", "set", "work_dir", "no_progress",
                       work_dir_aliases=("--output", "-o"))
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", dest="batch_size", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--seed", type=int)
    p.add_argument("--max-steps", dest="max_steps", type=int)
    p.set_defaults(func=cmd_train)
