"""The leaderboard: entry validation, rendering (Markdown + static HTML) and verification.

Modules: ``schema`` (the entry schema, checked with jsonschema), ``validate`` (semantic checks),
``render`` (Markdown and HTML tables), ``pages`` (per-entry detail pages and plots of protocols with
``main_columns``), ``perimage`` (per-image records and the evaluation data's digest in an entry),
``verify`` (per-image checks, or a full re-run, against the protocol's tolerances). None of them names a
metric: columns, directions and ranges come from each metric's ``leaderboard`` declarations
(:class:`latentbench.LeaderboardValue`), the default ranking from the protocol's ``rank_by``.

Layout (RobustBench-like, see CONTRIBUTING.md "Submitting a leaderboard entry")::

    latentbench/leaderboard/schema.json        the entry schema (package data, next to this module)
    latentbench/leaderboard/template.html      the HTML page around the tables (package data)
    latentbench/leaderboard/entry.html         the HTML page around an entry's details (package data)
    leaderboard/<protocol>/<name>.json         one entry per file
    leaderboard/checkpoints/<protocol>/<name>/ small checkpoints kept in git
    leaderboard/LEADERBOARD.md, index.html     rendered, one table per protocol
    leaderboard/pages/<protocol>/              rendered for protocols with main_columns: <entry>.html,
                                               <entry>-curve.png, <entry>-grid.png, curves.png

Improvements over RobustBench's layout: the protocol fixes the evaluation subset and seed, so a
number can be re-computed bit-for-bit on one machine; ``verify`` recomputes the aggregates from the
entry's per-image records and a random subset of images exactly, or re-runs the protocol and checks
every number against the protocol's per-metric tolerances (docs/leaderboard.md); submitter
(``reported``) and maintainer (``reproduced``) numbers are kept apart and ``unreliable`` is set
from the comparison, not by hand; nothing needs the network.
"""

from latentbench.leaderboard.pages import plot_curves, plot_grid, render_entry_page, write_pages
from latentbench.leaderboard.render import (TEMPLATE_PATH, build_tables, columns_for, flags_of, fmt, fmt_ci,
                                            main_columns, rank_column, render_html, render_markdown, render_tree,
                                            table_id)
from latentbench.leaderboard.schema import SCHEMA_PATH, load_schema, schema_errors
from latentbench.leaderboard.validate import (checkpoint_errors, checkpoint_path_errors, duplicate_errors, entry_files,
                                              expected_cells, metric_classes, protocol_errors, range_errors,
                                              rebuild_command, validate_tree)
from latentbench.leaderboard.verify import VerifyError, VerifyReport, compare_numbers, verify_entry, within

__all__ = ["SCHEMA_PATH", "TEMPLATE_PATH", "VerifyError", "VerifyReport", "build_tables", "checkpoint_errors",
           "checkpoint_path_errors", "columns_for", "rebuild_command",
           "compare_numbers", "duplicate_errors", "entry_files", "expected_cells", "flags_of", "fmt", "fmt_ci",
           "load_schema", "main_columns", "metric_classes", "plot_curves", "plot_grid", "protocol_errors",
           "range_errors", "rank_column", "render_entry_page", "render_html", "render_markdown", "render_tree",
           "schema_errors", "table_id", "validate_tree", "verify_entry", "within", "write_pages"]
