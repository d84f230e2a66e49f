"""``latentbench reproduce``: run the documents' experiments at smoke or full size."""

from __future__ import annotations

from pathlib import Path

from latentbench.errors import LatentBenchError
from latentbench.cli.options import REPRODUCTION_DIR, add_shared_options, device_from

#: the experiments' sizes (latentbench.experiment.SIZES, repeated so that `--help` imports no torch)
SIZES = ("smoke", "reduced", "full")


def cmd_reproduce(args) -> int:
    from latentbench.experiment import load_experiments, refresh_findings, run_experiment

    exps = load_experiments()
    if args.name == "list":
        for e in exps.values():
            print(f"{e.name:28s} {e.source:24s} {e.title}")
        return 0
    out = args.work_dir or REPRODUCTION_DIR
    names = list(exps) if args.name == "all" else [args.name]
    for n in names:
        if args.recompute:  # the verdicts again from the stored per-seed results, nothing trained
            stored = Path(out) / n / "results.json"
            if not stored.is_file():
                raise LatentBenchError(f"no stored results for experiment '{n}' at {stored} -- run "
                                       f"`latentbench reproduce {n} --size full` first, or point --work-dir at its folder")
            findings = refresh_findings(stored)
            print(f"{n}: findings recomputed from {out}/{n}/results.json")
        else:
            res = run_experiment(n, args.size, out, args.seed, device_from(args), args.data_root, seeds=args.seeds)
            findings = res.findings
            print(f"{n}: {len(res.figures)} figures, {sum(len(t) for t in res.tables.values())} table rows, "
                  f"CPU {res.cpu_seconds:.0f} s -> {out}/{n}/results.md")
        for f in findings:
            print(f"  [{f.verdict}] {f.claim}: {f.summary()}")
    return 0


def add_commands(sub) -> None:
    p = sub.add_parser("reproduce", help="reproduce the source documents' experiments (figures + tables)",
                       description="Run an experiment ('list' shows them, 'all' runs every one). Writes PNG figures, "
                                   "results.json and results.md under <work dir>/<name>/.")
    p.add_argument("name", help="experiment name, 'list' or 'all'")
    p.add_argument("--size", choices=list(SIZES), default="smoke")
    p.add_argument("--seed", type=int, default=0, help="first seed (the run seed); seeds seed..seed+N-1 are trained")
    p.add_argument("--seeds", type=int, default=None, metavar="N",
                   help="independently trained seeds per model (default: the size's, at least 3 at full size)")
    p.add_argument("--recompute", action="store_true",
                   help="recompute the verdicts from the stored per-seed results (results.json) without training")
    add_shared_options(p, "reproduce", "device", "data_root", "work_dir", work_dir_aliases=("--out",))
    p.set_defaults(func=cmd_reproduce)
