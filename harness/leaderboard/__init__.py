"""The leaderboard: entry validation, rendering (Markdown + static HTML) and verification.

Modules: ``schema`` (the JSON-Schema subset interpreter), ``validate`` (semantic checks),
``render`` (Markdown and HTML tables), ``verify`` (re-run and compare).

Layout (RobustBench-like, see CONTRIBUTING.md "Submitting a leaderboard entry")::

    leaderboard/schema.json                    the entry schema (drives the validator below)
    leaderboard/<protocol>/<name>.json         one entry per file
    leaderboard/checkpoints/<protocol>/<name>/ small checkpoints kept in git
    leaderboard/LEADERBOARD.md, index.html     rendered, one table per protocol

Improvements over RobustBench's layout: the protocol fixes the evaluation subset and seed, so a
number can be re-computed bit-for-bit on one machine; ``verify`` re-runs the protocol on the
checkpoint and checks every number against the protocol's stated tolerances; submitter
(``reported``) and maintainer (``reproduced``) numbers are kept apart and ``unreliable`` is set
from the comparison, not by hand; nothing needs the network.
"""

from latentbench.leaderboard.render import (build_tables, columns_for, fmt, headline, render_html,
                                        render_markdown, render_tree, table_id)
from latentbench.leaderboard.schema import SCHEMA_PATH, load_schema, schema_errors
from latentbench.leaderboard.validate import (checkpoint_errors, duplicate_errors, entry_files,
                                          expected_cells, protocol_errors, range_errors, validate_tree)
from latentbench.leaderboard.verify import VerifyReport, compare_numbers, verify_entry, within

__all__ = ["SCHEMA_PATH", "VerifyReport", "build_tables", "checkpoint_errors", "columns_for", "compare_numbers",
           "duplicate_errors", "entry_files", "expected_cells", "fmt", "headline", "load_schema", "protocol_errors",
           "range_errors", "render_html", "render_markdown", "render_tree", "schema_errors", "table_id",
           "validate_tree", "verify_entry", "within"]
