"""``latentbench reproduce``: run the documents' experiments at smoke or full size."""

from __future__ import annotations

from latentbench.cli.options import REPRODUCTION_DIR, add_shared_options, device_from


def cmd_reproduce(args) -> int:
    from latentbench.experiment import load_experiments, run_experiment

    exps = load_experiments()
    if args.name == "list":
        for e in exps.values():
            print(f"{e.name:28s} {e.source:24s} {e.title}")
        return 0
    out = args.work_dir or REPRODUCTION_DIR
    names = list(exps) if args.name == "all" else [args.name]
    for n in names:
        res = run_experiment(n, args.size, out, args.seed, device_from(args), args.data_root)
        print(f"{n}: {len(res.figures)} figures, {sum(len(t) for t in res.tables.values())} table rows, "
              f"CPU {res.cpu_seconds:.0f} s -> {out}/{n}/results.md")
        for f in res.findings:
            print(f"  [{ {True: 'holds', False: 'does NOT hold', None: 'undecided'}[f.holds] }] {f.claim}: {f.evidence}")
    return 0


def add_commands(sub) -> None:
    p = sub.add_parser("reproduce", help="reproduce the source documents' experiments (figures + tables)",
                       description="Run an experiment ('list' shows them, 'all' runs every one). Writes PNG figures, "
                                   "results.json and results.md under <work dir>/<name>/.")
    p.add_argument("name", help="experiment name, 'list' or 'all'")
    p.add_argument("--size", choices=["smoke", "full"], default="smoke")
    p.add_argument("--seed", type=int, default=0)
    add_shared_options(p, "reproduce", "device", "data_root", "work_dir", work_dir_aliases=("--out",))
    p.set_defaults(func=cmd_reproduce)
