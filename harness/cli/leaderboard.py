"""``latentbench leaderboard validate|render|verify``."""

from __future__ import annotations

import sys

from latentbench.cli.options import add_shared_options, device_from, executor_from

#: the shipped leaderboard folder, the default of every action
DEFAULT_DIR = "leaderboard"
#: images `verify` recomputes by default (latentbench.leaderboard.verify.DEFAULT_IMAGES; not imported
#: here so that `--help` stays fast)
DEFAULT_IMAGES = 32


def cmd_validate(args) -> int:
    from latentbench.leaderboard import validate_tree

    errors, entries = validate_tree(args.dir)
    for e in errors:
        print(e)
    if errors:
        print(f"{len(errors)} problem(s) in {args.dir}")
        # exit 1 (not 2): the command ran and found invalid entries, each named on its own line above
        print(f"latentbench: error: {len(errors)} problem(s) in {args.dir} -- fix the fields named above and "
              f"re-run `latentbench leaderboard validate`", file=sys.stderr)
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

    report = verify_entry(args.entry, checkpoint=args.checkpoint, device=device_from(args), work_dir=args.work_dir,
                          write=args.write, data_root=args.data_root, full=True if args.full else None,
                          images=args.images, images_seed=args.images_seed, executor=executor_from(args))
    print(report.text())
    return 0 if report.ok else 1


def add_commands(sub) -> None:
    lb = sub.add_parser("leaderboard", help="validate, render or verify leaderboard entries")
    lsub = lb.add_subparsers(dest="leaderboard_command", metavar="ACTION", required=True)
    v = lsub.add_parser("validate", help="check every entry against the schema, protocols, ranges and checksums")
    v.add_argument("dir", nargs="?", default=DEFAULT_DIR)
    v.set_defaults(func=cmd_validate)
    r = lsub.add_parser("render", help="write LEADERBOARD.md and index.html (one table per protocol), and "
                                                "pages/<protocol>/ detail pages for protocols with main_columns")
    r.add_argument("dir", nargs="?", default=DEFAULT_DIR)
    r.add_argument("--markdown", help="Markdown output (default <dir>/LEADERBOARD.md)")
    r.add_argument("--html", help="HTML output (default <dir>/index.html)")
    r.set_defaults(func=cmd_render)
    f = lsub.add_parser("verify", help="check an entry: per-image records and a random subset of images recomputed "
                                       "exactly, or (--full) every number re-run within the protocol's tolerances")
    f.add_argument("entry", help="entry JSON file")
    f.add_argument("--full", action="store_true",
                   help="re-run the whole protocol and compare every number "
                        "(the default for entries without per-image records)")
    f.add_argument("--images", type=int, default=DEFAULT_IMAGES, metavar="K",
                   help=f"images recomputed from scratch and compared exactly (default {DEFAULT_IMAGES})")
    f.add_argument("--images-seed", type=int, metavar="S",
                   help="seed choosing those images (default: fresh, printed; pass it to repeat a check)")
    f.add_argument("--checkpoint", help="checkpoint folder (default: the entry's checkpoint.path)")
    add_shared_options(f, "leaderboard verify", "device", "data_root", "work_dir", "executor", "ray_address")
    f.add_argument("--write", action="store_true",
                   help="record the outcome in the entry's 'reproduced' section ('reproduced' only after a full re-run "
                        "without mismatch) and set 'unreliable' on mismatch")
    f.set_defaults(func=cmd_verify)
