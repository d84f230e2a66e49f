"""What the v2 protocols share: the headline metric's entry and the main table's columns
(docs/methods.md §7). Each protocol supplies its reference classifier and its ε grid."""

from __future__ import annotations

from typing import Any

#: the ensemble's settings, fixed by the protocol version (none is tuned per model)
ENSEMBLE = {"ce_steps": 50, "ce_restarts": 2, "latent_targets": 3, "latent_steps": 50, "max_damage_steps": 50,
            "max_damage_restarts": 1, "random_queries": 300}

RANK_BY = {"metric": "robust_accuracy", "value": "robust_accuracy_mean"}


def headline_metric(classifier: dict[str, Any], budgets: list[float]) -> dict[str, Any]:
    """The protocol's ``robust_accuracy`` entry: classifier name and sha256, the ε grid, the ensemble."""
    return {"plugin": "robust_accuracy", "config": {**classifier, "budgets": list(budgets), **ENSEMBLE}}


def main_columns(budgets: list[float]) -> tuple[dict[str, Any], ...]:
    """The main table: the headline first, then what it must be read with (clean accuracy and MSE: a
    collapsed encoder is trivially robust), robust fidelity at the middle ε and FID; the rest of an
    entry's numbers go to its detail page. FID has no split: the column of whichever extractor the
    entries used."""
    return (
        dict(RANK_BY),
        {"metric": "robust_accuracy", "value": "clean_accuracy"},
        *({"metric": "robust_accuracy", "value": f"robust_accuracy@{b:g}"} for b in budgets),
        {"metric": "robust_accuracy", "value": f"robust_fidelity@{budgets[len(budgets) // 2]:g}"},
        {"metric": "clean", "value": "mse"},
        {"metric": "fid", "value": "fid"},
    )
