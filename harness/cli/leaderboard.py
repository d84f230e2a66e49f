"""``latentbench benchmark`` and ``latentbench leaderboard validate|render|verify``."""

from __future__ import annotations

import json
from pathlib import Path

from latentbench.errors import ConfigError
from latentbench.typed_config import read_yaml_file

DEFAULT_DIR = "leaderboard"


def _model_yaml(path: str) -> tuple[dict, dict]:
    raw = read_yaml_file(path, "pass a YAML file with the model config (and optionally 'train:')",
                         "expected a mapping of model config fields (optionally with 'config:' and 'train:')")
    if "config" in raw or "train" in raw:
        return dict(raw.get("config") or {}), dict(raw.get("train") or {})
    return raw, {}


def cmd_benchmark(args) -> int:
    from latentbench.benchmark import BenchmarkRequest, evaluate
    from latentbench.cli import _parse_set
    from latentbench.training import TrainConfig
    from latentbench.typed_config import build_dataclass

    config, train = _model_yaml(args.config) if args.config else ({}, {})
    config.update(_parse_set(args.set))
    if args.train_epochs is not None:
        train["epochs"] = args.train_epochs
    if args.batch_size is not None:
        train["batch_size"] = args.batch_size
    if args.checkpoint and (config or train):
        raise ConfigError("--checkpoint", "--config/--set/--train-epochs apply to a model being trained, not to a saved "
                                          "checkpoint; drop them or use --model")
    name = args.name or args.model or (Path(args.checkpoint).name if args.checkpoint else None)
    req = BenchmarkRequest(protocol=args.protocol, model=args.model, config=config,
                           train=build_dataclass(TrainConfig, train, "train"), checkpoint=args.checkpoint, name=name,
                           paper=args.paper, device=args.device, work_dir=args.work_dir,
                           save_checkpoint_to=args.save_checkpoint, regenerate=args.regenerate,
                           progress=not args.no_progress)
    entry = evaluate(req)
    out = Path(args.out or Path(DEFAULT_DIR) / args.protocol / f"{req.label}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(entry, indent=1) + "\n")
    print(f"{req.label} under {args.protocol}: clean MSE {entry['reported']['clean']['mse']:.5f}, "
          f"{len(entry['reported']['results'])} results in {entry['provenance']['run_seconds']:.1f}s")
    print(f"entry: {out}\ncheckpoint: {entry['checkpoint']['path']} (sha256 {entry['checkpoint']['sha256'][:16]}...)")
    return 0


def cmd_validate(args) -> int:
    from latentbench.leaderboard import validate_tree

    errors, entries = validate_tree(args.dir)
    for e in errors:
        print(e)
    if errors:
        print(f"{len(errors)} problem(s) in {args.dir}")
        return 1
    print(f"{len(entries)} entries in {args.dir}: ok")
    return 0


def cmd_render(args) -> int:
    from latentbench.leaderboard import render_tree

    paths = render_tree(args.dir, args.markdown, args.html)
    print("\n".join(str(p) for p in paths))
    return 0


def cmd_verify(args) -> int:
    from latentbench.leaderboard import verify_entry

    report = verify_entry(args.entry, checkpoint=args.checkpoint, device=args.device, work_dir=args.work_dir,
                          write=args.write)
    print(report.text())
    return 0 if report.ok else 1


def add_commands(sub) -> None:
    p = sub.add_parser("benchmark", help="evaluate one model under a protocol and write a leaderboard entry",
                       description="Train a model plugin (or load a checkpoint folder), run a registered protocol "
                                   "through the runner and write a leaderboard entry JSON.")
    p.add_argument("--protocol", required=True, help="registered protocol, e.g. digits-v1 or fashion-mnist-32-v1")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", help="model plugin to train, e.g. vae")
    src.add_argument("--checkpoint", help="saved checkpoint folder (config.json + model.safetensors)")
    p.add_argument("--config", help="YAML with model config fields (optionally 'config:' and 'train:' sections)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="model config field, repeatable")
    p.add_argument("--train-epochs", type=int, help="training epochs (default 10)")
    p.add_argument("--batch-size", type=int, help="training batch size (default 128)")
    p.add_argument("--out", help="entry file (default leaderboard/<protocol>/<name>.json)")
    p.add_argument("--paper", help="link to the paper describing the model")
    p.add_argument("--name", help="label of the entry (default: the model plugin or checkpoint folder name)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--work-dir", help="run folder (default runs/benchmark/<protocol>/<name>)")
    p.add_argument("--save-checkpoint", help="copy the evaluated checkpoint to this folder (recorded in the entry)")
    p.add_argument("--regenerate", help="command that rebuilds the checkpoint, stored in the entry "
                                        "(default: the benchmark command itself)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_benchmark)

    lb = sub.add_parser("leaderboard", help="validate, render or verify leaderboard entries")
    lsub = lb.add_subparsers(dest="leaderboard_command", metavar="ACTION", required=True)
    v = lsub.add_parser("validate", help="check every entry against the schema, protocols, ranges and checksums")
    v.add_argument("dir", nargs="?", default=DEFAULT_DIR)
    v.set_defaults(func=cmd_validate)
    r = lsub.add_parser("render", help="write LEADERBOARD.md and index.html (one table per protocol)")
    r.add_argument("dir", nargs="?", default=DEFAULT_DIR)
    r.add_argument("--markdown", help="Markdown output (default <dir>/LEADERBOARD.md)")
    r.add_argument("--html", help="HTML output (default <dir>/index.html)")
    r.set_defaults(func=cmd_render)
    f = lsub.add_parser("verify", help="re-run an entry's protocol on its checkpoint and compare every number")
    f.add_argument("entry", help="entry JSON file")
    f.add_argument("--checkpoint", help="checkpoint folder (default: the entry's checkpoint.path)")
    f.add_argument("--device", default="cpu")
    f.add_argument("--work-dir", help="run folder (default: a fresh temporary folder)")
    f.add_argument("--write", action="store_true",
                   help="record the result in the entry's 'reproduced' section and set 'unreliable' on mismatch")
    f.set_defaults(func=cmd_verify)
