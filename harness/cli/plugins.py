"""``latentbench plugins``: what is installed and what each plugin provides."""

from __future__ import annotations

import json

from latentbench.cli.options import registry_for


def cmd_plugins(args) -> int:
    reg = registry_for(args)
    if args.json:
        print(json.dumps([p.to_json() for p in reg.plugins], indent=2))
        return 0
    from tabulate import tabulate

    rows = []
    for p in reg.plugins:
        provides = "; ".join(f"{k}: {', '.join(v)}" for k, v in sorted(p.provides.items()) if v)
        rows.append([p.name, f"{p.distribution} {p.version}", provides or "-", ("FAILED: " + p.error) if p.error else "ok"])
    print(tabulate(rows, headers=["plugin", "distribution", "provides", "status"], tablefmt="github"))
    if reg.disabled:
        print(f"disabled (-p no:NAME / LATENTBENCH_DISABLE_PLUGINS): {', '.join(sorted(reg.disabled))}")
    return 0


def add_commands(sub) -> None:
    p = sub.add_parser("plugins", help="list installed plugins and what each provides")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_plugins)
