"""``latentbench run`` (evaluate a run config's grid of cells) and ``latentbench report``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from latentbench.cli.options import add_shared_options, device_from, executor_from, registry_for
from latentbench.errors import LatentBenchError


def cmd_run(args) -> int:
    from latentbench.report import run_report
    from latentbench.runconfig import load_run_config
    from latentbench.runner import Runner

    cfg = load_run_config(args.config)
    # command-line overrides go in before the Runner validates the config (once)
    if args.work_dir:
        cfg.output_dir = args.work_dir
    cfg.device = device_from(args, cfg.device)
    if args.data_root:
        cfg.dataset.data_root = args.data_root
    if args.no_progress:
        cfg.progress = False
    if args.check:
        return check_run(cfg, registry_for(args))
    summary = Runner(cfg, registry_for(args), **executor_from(args)).run()
    print(run_report(summary.rows, full=args.full_table))
    print(f"\n{summary.computed} cells computed, {summary.reused} reused from {Path(cfg.output_dir) / 'results.sqlite'}, "
          f"{summary.failed} failed. Outputs: {', '.join(summary.outputs.values())}")
    failed = summary.failed_rows
    if not failed:
        return 0
    # the failed cells last, where a reader of a long run's output looks
    print(f"\n{len(failed)} of {len(summary.rows)} cells failed:")
    print("\n".join(summary.failure_lines()))
    if args.allow_failed_cells:
        return 0
    print(f"latentbench: {len(failed)} cell(s) failed (listed above) -- fix their cause and re-run (finished cells are "
          f"reused), or pass --allow-failed-cells to exit 0 anyway", file=sys.stderr)
    return 1


def check_run(cfg, registry) -> int:
    """``run --check``: everything that can be checked without training or evaluating (config, plugins,
    budgets, dataset files, sizes, memory estimate); nothing is written."""
    from latentbench.runconfig import apply_protocol, count_cells, validate_run_config

    cfg = apply_protocol(cfg, registry)
    plan = validate_run_config(cfg, registry, files_required=True)
    n_configs = sum(len(a.typed_configs) for a in cfg.attacks)
    print(f"config OK: {len(cfg.models)} models x {len(cfg.metrics)} metrics, {len(cfg.attacks)} attacks "
          f"({n_configs} attack configurations) = {count_cells(cfg, registry)} cells; {plan.describe()}")
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


def add_commands(sub) -> None:
    p = sub.add_parser("run", help="evaluate models x attacks x metrics from a YAML run config",
                       description="Run the grid of cells a YAML config defines; results go to <output_dir>/results.sqlite "
                                   "and results.{md,csv,json}. Re-running reuses finished cells.")
    p.add_argument("config", help="path to a YAML run config, or the name of a shipped one (quickstart)")
    add_shared_options(p, "run", "device", "data_root", "work_dir", "no_progress", "executor", "ray_address")
    p.add_argument("--check", action="store_true",
                   help="check the config, plugins, budgets, dataset files, sizes and memory estimate without training "
                        "or evaluating anything; exit 0 when all is well")
    p.add_argument("--allow-failed-cells", action="store_true",
                   help="exit 0 even when cells failed (by default a run with a failed cell exits 1)")
    # exiting 1 on a failed cell is the default now; the old opt-in flag stays accepted
    p.add_argument("--fail-on-error", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--full-table", action="store_true", help="print every value (all of them in results.md), not the summary")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("report", help="render stored results (Markdown, CSV, JSON)")
    p.add_argument("path", help="a run's output folder or a results.sqlite file")
    p.add_argument("--run", help="only this run name")
    p.add_argument("--format", choices=["md", "json", "files"], default="md")
    p.add_argument("--out", help="folder for --format files (default: next to the results store)")
    p.set_defaults(func=cmd_report)
