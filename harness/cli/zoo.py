"""``latentbench zoo``: the leaderboard entries whose checkpoints ``latentbench.load_model`` loads."""

from __future__ import annotations

import json


def _rank_values(entries, registry) -> dict[tuple[str, str], str]:
    """Each entry's number in its protocol's ranking column, as the leaderboard prints it."""
    from latentbench.errors import LatentBenchError
    from latentbench.leaderboard.render import cell_text, columns_for, rank_column

    out = {}
    for proto_name in sorted({e.protocol for e in entries}):
        if proto_name not in registry.names("protocol"):
            continue
        group = [e for e in entries if e.protocol == proto_name]
        proto = registry.protocol(proto_name)
        try:
            col = rank_column(proto, columns_for(proto, [e.data for e in group], registry))
            out.update({(proto_name, e.name): f"{cell_text(col, e.data)} ({col.header})" for e in group})
        except (LatentBenchError, KeyError, TypeError):
            continue  # an entry `leaderboard validate` would reject: no number shown
    return out


def cmd_zoo(args) -> int:
    from latentbench.cli.options import registry_for
    from latentbench.zoo import zoo

    entries = zoo(args.protocol, args.leaderboard)
    if args.protocol and not entries:
        from latentbench.errors import ConfigError

        raise ConfigError("--protocol", f"no zoo entries under protocol '{args.protocol}'",
                          "run `latentbench zoo` to list the protocols that have some")
    registry = registry_for(args)
    ranks = _rank_values(entries, registry)
    rows = [{"protocol": e.protocol, "name": e.name, "model": e.plugin, "score": ranks.get((e.protocol, e.name), "-"),
             "checkpoint": e.status(), "rebuild": None if e.present else e.rebuild()} for e in entries]
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    from tabulate import tabulate

    print(tabulate([[r["protocol"], r["name"], r["model"], r["score"], r["checkpoint"]] for r in rows],
                   headers=["protocol", "name", "model", "ranking score", "checkpoint"], tablefmt="github",
                   disable_numparse=True))
    if any(r["checkpoint"] == "ok" for r in rows):
        first = next(r for r in rows if r["checkpoint"] == "ok")
        print(f"\nload one: latentbench.load_model('{first['name']}', '{first['protocol']}')")
    if any(r["checkpoint"] == "missing" for r in rows):
        print("missing: the checkpoint is not kept in git; `latentbench zoo --json` gives each one's rebuild command")
    return 0


def add_commands(sub) -> None:
    p = sub.add_parser("zoo", help="list the leaderboard models latentbench.load_model can load",
                       description="Every leaderboard entry with a checkpoint: its protocol, name, model plugin, "
                                   "ranking score, and whether its checkpoint is here with the sha256 the entry "
                                   "records (load it with latentbench.load_model(name, protocol)).")
    p.add_argument("--protocol", help="only this protocol's entries, e.g. digits-v2")
    p.add_argument("--leaderboard", metavar="DIR",
                   help="folder of <protocol>/<entry>.json files (default: the installed package's, else the "
                        "source checkout's leaderboard/, else ./leaderboard)")
    p.add_argument("--json", action="store_true", help="machine-readable output, with rebuild commands")
    p.set_defaults(func=cmd_zoo)
