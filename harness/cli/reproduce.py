"""``latentbench reproduce``: run the documents' experiments at smoke or full size."""

from __future__ import annotations


def cmd_reproduce(args) -> int:
    from latentbench.experiment import load_experiments, run_experiment

    exps = load_experiments()
    if args.name == "list":
        for e in exps.values():
            print(f"{e.name:28s} {e.source:24s} {e.title}")
        return 0
    names = list(exps) if args.name == "all" else [args.name]
    for n in names:
        res = run_experiment(n, args.size, args.out, args.seed, args.device, args.data_root)
        print(f"{n}: {len(res.figures)} figures, {sum(len(t) for t in res.tables.values())} table rows, "
              f"CPU {res.cpu_seconds:.0f} s -> {args.out}/{n}/results.md")
        for f in res.findings:
            print(f"  [{ {True: 'holds', False: 'does NOT hold', None: 'undecided'}[f.holds] }] {f.claim}: {f.evidence}")
    return 0


def add_commands(sub) -> None:
    p = sub.add_parser("reproduce", help="reproduce the source documents' experiments (figures + tables)",
                       description="Run an experiment ('list' shows them, 'all' runs every one). Writes PNG figures, "
                                   "results.json and results.md under --out/<name>/.")
    p.add_argument("name", help="experiment name, 'list' or 'all'")
    p.add_argument("--size", choices=["smoke", "full"], default="smoke")
    p.add_argument("--out", default="docs/reproduction")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--data-root")
    p.set_defaults(func=cmd_reproduce)
