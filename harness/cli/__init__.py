"""The ``latentbench`` command line."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, Optional

import yaml

from latentbench import __version__
from latentbench.errors import ConfigError, LatentBenchError
from latentbench.typed_config import read_yaml_file

DESCRIPTION = """LatentBench: measure how robust the latent spaces of generative autoencoders are.

Typical use:
  latentbench plugins                      # what is installed
  latentbench train train_vae_digits     # train a model (a shipped config), save a safetensors checkpoint
  latentbench run quickstart              # train/evaluate models x attacks x metrics, print a table
  latentbench report runs/quickstart       # re-render the stored results
"""


def _registry(args):
    from latentbench.registry import get_registry

    strict = True if getattr(args, "strict_plugins", False) else None
    return get_registry(strict=strict) if strict else get_registry()


def _parse_set(items: list[str]) -> dict[str, Any]:
    out = {}
    for item in items or []:
        if "=" not in item:
            raise ConfigError(item, "expected KEY=VALUE (VALUE in YAML syntax, e.g. latent_dim=10 or hidden=[64,64])")
        k, v = item.split("=", 1)
        out[k.strip()] = yaml.safe_load(v)
    return out


def cmd_plugins(args) -> int:
    reg = _registry(args)
    if args.json:
        print(json.dumps([p.to_json() for p in reg.plugins], indent=2))
        return 0
    from tabulate import tabulate

    rows = []
    for p in reg.plugins:
        provides = "; ".join(f"{k}: {', '.join(v)}" for k, v in sorted(p.provides.items()) if v)
        rows.append([p.name, f"{p.distribution} {p.version}", provides or "-", ("FAILED: " + p.error) if p.error else "ok"])
    print(tabulate(rows, headers=["plugin", "distribution", "provides", "status"], tablefmt="github"))
    return 0


def cmd_run(args) -> int:
    from latentbench.report import markdown_table, summary_tables
    from latentbench.runconfig import load_run_config
    from latentbench.runner import Runner

    cfg = load_run_config(args.config)
    if args.output_dir:
        cfg.output_dir = args.output_dir
    if args.device:
        cfg.device = args.device
    if args.data_root:
        cfg.dataset.data_root = args.data_root
    if args.no_progress:
        cfg.progress = False
    reg = _registry(args)
    summary = Runner(cfg, reg).run()
    print(summary_tables(summary.rows) if not args.full_table else markdown_table(summary.rows))
    print(f"\n{summary.computed} cells computed, {summary.reused} reused from {Path(cfg.output_dir) / 'results.sqlite'}, "
          f"{summary.failed} failed. Outputs: {', '.join(summary.outputs.values())}")
    return 1 if summary.failed and args.fail_on_error else 0


def cmd_train(args) -> int:
    from latentbench.checkpoint import save_checkpoint
    from latentbench.data import DatasetConfig
    from latentbench.runconfig import DatasetSpec
    from latentbench.training import TrainConfig, train, training_metadata
    from latentbench.typed_config import build_dataclass

    raw: dict[str, Any] = {}
    if args.config:
        raw = read_yaml_file(args.config, "pass the path of a YAML train config (e.g. the shipped train_vae_digits)",
                             "expected a mapping with keys model, config, dataset, train, output")
    unknown = set(raw) - {"model", "config", "dataset", "train", "output"}
    if unknown:
        raise ConfigError(", ".join(sorted(unknown)), "unknown keys in the train config",
                          "valid keys: model, config, dataset, train, output")
    model_name = args.model or raw.get("model")
    if not model_name:
        raise ConfigError("model", "no model given", "pass --model NAME or 'model:' in the YAML")
    reg = _registry(args)
    cls = reg.model(model_name, path="model")
    ds = build_dataclass(DatasetSpec, {**(raw.get("dataset") or {}), **({"name": args.dataset} if args.dataset else {})}, "dataset")
    dplug = reg.dataset(ds.name, path="dataset.name")(DatasetConfig(ds.image_size, args.data_root or ds.data_root, ds.options))
    mconf = {"input_shape": list(dplug.shape()), **(raw.get("config") or {}), **_parse_set(args.set)}
    config = cls.config_class.from_dict(mconf, path="config")
    tconf = {**(raw.get("train") or {})}
    for k in ("epochs", "batch_size", "lr", "seed", "device", "max_steps"):
        v = getattr(args, k)
        if v is not None:
            tconf[k] = v
    tcfg = build_dataclass(TrainConfig, tconf, "train")
    from latentbench.runconfig import check_device

    check_device(tcfg.device, "train.device")
    data = dplug.load("train").subset(ds.train_subset, tcfg.seed, f"{ds.name}/train")
    out = Path(args.output or raw.get("output") or f"checkpoints/{model_name}-{ds.name}")
    import torch

    torch.manual_seed(tcfg.seed)
    model = cls(config)
    res = train(model, data, tcfg)
    save_checkpoint(model, out, training_metadata(model, ds.name, tcfg, res))
    print(f"trained {model_name} on {ds.name} ({len(data)} examples) for {res.steps} steps in {res.seconds:.1f}s; "
          f"final losses {json.dumps({k: round(v, 5) for k, v in res.final.items()})}")
    print(f"checkpoint: {out}/ (config.json, model.safetensors, metadata.json)")
    return 0


def cmd_report(args) -> int:
    from latentbench.report import markdown_table, write_outputs
    from latentbench.store import ResultStore

    p = Path(args.path)
    db = p / "results.sqlite" if p.is_dir() else p
    if not db.exists():
        raise LatentBenchError(f"no results store at {db}: pass a run's output folder or its results.sqlite")
    with ResultStore(db) as store:
        rows = list(store.rows(args.run))
    if args.format == "md":
        print(markdown_table(rows))
    elif args.format == "json":
        print(json.dumps(rows, indent=1, default=str))
    else:
        outs = write_outputs(rows, args.out or db.parent)
        print("\n".join(outs.values()))
    return 0


def build_parser(registry=None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="latentbench", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"latentbench {__version__}")
    parser.add_argument("--strict-plugins", action="store_true",
                        help="fail when any plugin cannot be loaded (also: LATENTBENCH_STRICT_PLUGINS=1)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("plugins", help="list installed plugins and what each provides")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_plugins)

    p = sub.add_parser("run", help="evaluate models x attacks x metrics from a YAML run config",
                       description="Run the grid of cells a YAML config defines; results go to <output_dir>/results.sqlite "
                                   "and results.{md,csv,json}. Re-running reuses finished cells.")
    p.add_argument("config", help="path to a YAML run config, or the name of a shipped one (quickstart)")
    p.add_argument("--output-dir", help="override output_dir")
    p.add_argument("--device", help="cpu, cuda, cuda:1, ...")
    p.add_argument("--data-root", help="folder holding dataset files (e.g. Fashion-MNIST IDX files)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--fail-on-error", action="store_true", help="exit 1 when any cell failed")
    p.add_argument("--full-table", action="store_true", help="print every value (also in results.md), not the summary")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("train", help="train a model and save a safetensors checkpoint",
                       description="Train any installed model. Settings come from an optional YAML file "
                                   "(keys: model, config, dataset, train, output) and are overridden by flags.")
    p.add_argument("config", nargs="?", help="YAML train config (optional)")
    p.add_argument("--model", help="model plugin name, e.g. vae")
    p.add_argument("--dataset", help="dataset name (default digits)")
    p.add_argument("--data-root")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="model config field, repeatable")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", dest="batch_size", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--seed", type=int)
    p.add_argument("--device")
    p.add_argument("--max-steps", dest="max_steps", type=int)
    p.add_argument("--output", "-o", help="checkpoint folder")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("report", help="render stored results (Markdown, CSV, JSON)")
    p.add_argument("path", help="a run's output folder or a results.sqlite file")
    p.add_argument("--run", help="only this run name")
    p.add_argument("--format", choices=["md", "json", "files"], default="md")
    p.add_argument("--out", help="folder for --format files")
    p.set_defaults(func=cmd_report)

    from latentbench.cli import leaderboard, reproduce

    leaderboard.add_commands(sub)
    reproduce.add_commands(sub)
    if registry is not None:
        for name, sp in sub.choices.items():
            registry.call_hook("latentbench_add_cli_arguments", subcommand=name, parser=sp)
    return parser


def main(argv: Optional[list[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "--strict-plugins" in argv:
        os.environ["LATENTBENCH_STRICT_PLUGINS"] = "1"
    try:
        from latentbench.registry import get_registry

        registry = get_registry()
        parser = build_parser(registry)
        args = parser.parse_args(argv)
        if not getattr(args, "command", None):
            parser.print_help()
            return 0
        return int(args.func(args) or 0)
    except LatentBenchError as e:
        print(f"latentbench: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("latentbench: interrupted; finished cells are kept in the results store, re-run to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
