"""``latentbench benchmark``: evaluate one model under a protocol and write a leaderboard entry.

The model is a run config's model entry (:class:`latentbench.runconfig.ModelSpec`): ``--config``
reads one from YAML (``{plugin, config, train}`` or ``{checkpoint}``), and the flags fill or
override it (``--model`` = plugin, ``--checkpoint``, ``--name``, ``--set`` = config fields,
``--train-epochs``/``--batch-size`` = train settings).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from latentbench.cli.options import add_shared_options, device_from, executor_from, merged, parse_set, registry_for
from latentbench.errors import ConfigError

#: where entries go (``leaderboard/<protocol>/<name>.json``)
LEADERBOARD_DIR = "leaderboard"


def cmd_benchmark(args) -> int:
    from latentbench.benchmark import BenchmarkRequest, evaluate
    from latentbench.runconfig import parse_model_spec, read_model_spec
    from latentbench.training import TrainConfig

    raw = read_model_spec(args.config) if args.config else {}
    config = parse_set(args.set)
    train = {k: v for k, v in (("epochs", args.train_epochs), ("batch_size", args.batch_size)) if v is not None}
    model = dict(raw)
    for key, flag in (("plugin", args.model), ("checkpoint", args.checkpoint), ("name", args.name)):
        if flag:
            model[key] = flag
    if config:
        model["config"] = merged(model, "config", config)
    if train:
        model["train"] = merged(model, "train", train)
    spec = parse_model_spec(model, Path(args.config).name if args.config else "benchmark")
    if spec.checkpoint and (spec.config or spec.train is not None):
        raise ConfigError("--checkpoint", "--config/--set/--train-epochs apply to a model being trained, not to a saved "
                                          "checkpoint; drop them or use --model")
    if not spec.plugin and not spec.checkpoint:
        raise ConfigError("benchmark", "no model given",
                          "pass --model NAME, --checkpoint DIR, or --config with a model entry ('plugin:' or 'checkpoint:')")
    req = BenchmarkRequest(protocol=args.protocol, model=spec.plugin, config=dict(spec.config),
                           train=spec.train or TrainConfig(), checkpoint=spec.checkpoint, name=spec.name,
                           paper=args.paper, device=device_from(args, (raw.get("train") or {}).get("device")),
                           data_root=args.data_root, work_dir=args.work_dir, save_checkpoint_to=args.save_checkpoint,
                           regenerate=args.regenerate, progress=not args.no_progress, **executor_from(args))
    from latentbench.leaderboard.validate import entry_file

    out = Path(args.out or Path(LEADERBOARD_DIR) / args.protocol / f"{req.label}.json")
    entry_file(out, args.protocol, req.label, "--out",  # refused before any work
               f"pass e.g. --out leaderboard/{args.protocol}/{req.label}.json, or --name to change the entry's name")
    # the entry's checkpoint path is relative to the repository root, the leaderboard folder's parent
    # (where `leaderboard validate/verify` look), and must keep the path rule
    root = out.resolve().parent.parent.parent
    if not req.save_checkpoint_to:
        req.save_checkpoint_to = os.path.relpath(root / "runs" / "leaderboard-checkpoints" / args.protocol / req.label)
    _check_checkpoint_path(req.save_checkpoint_to, root, out.resolve().parent.parent.name)
    entry = evaluate(req, registry_for(args), repo_root=root)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(entry, indent=1) + "\n")
    print(f"{req.label} under {args.protocol}: clean MSE {entry['reported']['clean']['mse']:.5f}, "
          f"{len(entry['reported']['results'])} results in {entry['provenance']['run_seconds']:.1f}s")
    print(f"entry: {out}\ncheckpoint: {entry['checkpoint']['path']} (sha256 {entry['checkpoint']['sha256'][:16]}...)")
    return 0


def _check_checkpoint_path(dest: str, root: Path, leaderboard_name: str) -> None:
    """Refuse, before any work, a --save-checkpoint folder the entry could not name (path rule)."""
    from latentbench.leaderboard.validate import checkpoint_path_problem, path_rule

    try:
        rel = str(Path(dest).resolve().relative_to(root.resolve()))
    except ValueError:
        rel = None
    problem = "is outside the repository" if rel is None else checkpoint_path_problem(rel, root, leaderboard_name)
    if problem:
        raise ConfigError("--save-checkpoint", f"'{dest}' {problem}", path_rule(leaderboard_name))


def add_commands(sub) -> None:
    p = sub.add_parser("benchmark", help="evaluate one model under a protocol and write a leaderboard entry",
                       description="Train a model plugin (or load a checkpoint folder), run a registered protocol "
                                   "through the runner and write a leaderboard entry JSON.")
    p.add_argument("--protocol", required=True, help="registered protocol, e.g. digits-v1 or fashion-mnist-32-v1")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--model", help="model plugin to train, e.g. vae")
    src.add_argument("--checkpoint", help="saved checkpoint folder (config.json + model.safetensors)")
    p.add_argument("--config", help="YAML with one model entry, as in a run config's 'models:' "
                                    "({plugin, config: {...}, train: {...}} or {checkpoint}); flags override it")
    add_shared_options(p, "benchmark", "device", "data_root", "set", "work_dir", "no_progress", "executor", "ray_address")
    p.add_argument("--train-epochs", type=int, help="training epochs (default 10)")
    p.add_argument("--batch-size", type=int, help="training batch size (default 128)")
    p.add_argument("--out", help="entry file (default leaderboard/<protocol>/<name>.json)")
    p.add_argument("--paper", help="link to the paper describing the model")
    p.add_argument("--name", help="label of the entry (default: the model plugin or checkpoint folder name)")
    p.add_argument("--save-checkpoint", help="copy the evaluated checkpoint to this folder (recorded in the entry); "
                                             "it must lie in leaderboard/checkpoints/ or "
                                             "runs/leaderboard-checkpoints/ (default: "
                                             "runs/leaderboard-checkpoints/<protocol>/<name>)")
    p.add_argument("--regenerate", help="command that rebuilds the checkpoint, stored in the entry "
                                        "(default: the benchmark command itself)")
    p.set_defaults(func=cmd_benchmark)
