"""`latentbench run`'s terminal report: the headline table first (robust accuracy mean and clean
accuracy with 95% intervals, raised flags), then the tables without columns equal in every row."""

import math

from latentbench.report import drop_constant_columns, headline_table, run_report, summary_tables


def _row(model, metric, values, attack=None, budget=None, dataset="digits"):
    return {"run": "r", "model": model, "model_plugin": model, "dataset": dataset, "protocol": None,
            "attack": attack, "budget": budget, "metric": metric, "status": "ok", "values": values,
            "provenance": {"seed": 0}, "key": "k" * 64, "error": None}


def _robust(mean, clean, flags=()):
    v = {"robust_accuracy_mean": mean, "robust_accuracy_mean_se": 0.01, "clean_accuracy": clean,
         "clean_accuracy_se": math.sqrt(clean * (1 - clean) / 899), "robust_accuracy@0.5": mean,
         "n_images": 899.0}
    v.update({f"flag_{f}": float(f in flags) for f in ("collapsed", "stochastic")})
    return v


ROWS = [_row("vae", "robust_accuracy", _robust(0.38, 0.93)),
        _row("robust_dae", "robust_accuracy", _robust(0.60, 0.90)),
        _row("flat", "robust_accuracy", _robust(0.25, 0.31, ("collapsed",))),
        _row("vae", "spectral_radius", {"spectral_radius_mean": 1.5, "spectral_radius_std": 0.1}),
        _row("robust_dae", "spectral_radius", {"spectral_radius_mean": 0.5, "spectral_radius_std": 0.1}),
        _row("flat", "spectral_radius", {"spectral_radius_mean": 0.1, "spectral_radius_std": 0.1}),
        _row("vae", "ms_ssim", {"recon_vs_adv_recon_mean": 0.8}, "max_damage", 1.0),
        _row("vae", "ms_ssim", {"recon_vs_adv_recon_mean": 0.7}, "max_damage", 2.0)]


def test_headline_table_has_intervals_and_flags_best_first():
    text = headline_table(ROWS)
    lines = text.splitlines()
    assert lines[0].split("|")[1:-1] == [" model      ", " robust acc. (mean over ε) ± 95%   ",
                                         " clean acc. ± 95%   ", " flags     "]
    body = [[c.strip() for c in line.split("|")[1:-1]] for line in lines[2:]]
    assert [r[0] for r in body] == ["robust_dae", "vae", "flat"]
    assert body[0][1] == f"0.600 ± {1.96 * 0.01:.3f}"
    assert body[1][2] == f"0.930 ± {1.96 * math.sqrt(0.93 * 0.07 / 899):.3f}"
    assert body[2][3] == "collapsed" and body[0][3] == "-"
    assert headline_table([r for r in ROWS if r["metric"] != "robust_accuracy"]) == ""


def test_run_report_prints_the_headline_first_and_drops_constant_columns():
    text = run_report(ROWS)
    assert text.startswith(headline_table(ROWS))
    rest = text[len(headline_table(ROWS)):]
    clean_header = next(line for line in rest.splitlines() if line.startswith("| model "))
    # equal in every row: left out of the table and named under it
    assert "n_images" not in clean_header and "robust_accuracy_mean_se" not in clean_header
    assert "spectral_radius.spectral_radius " in clean_header  # differs between models
    assert "flag_stochastic" not in clean_header and "flag_collapsed" in clean_header
    assert "robust_accuracy.robust_accuracy " in clean_header
    assert "same in every row:" in rest and "robust_accuracy.n_images=899" in rest
    # the attack table's key columns stay even when equal in every row (one model, one attack)
    attack_header = next(line for line in rest.splitlines() if line.startswith("| model ") and "attack" in line)
    assert "budget" in attack_header
    # the full table: the same headline first, every value one a line, constant columns dropped
    full = run_report(ROWS, full=True)
    assert full.startswith(headline_table(ROWS)) and "| status" not in full and "same in every row: status=ok" in full
    # without the headline metric: no headline table, the plain summary
    no_head = [r for r in ROWS if r["metric"] != "robust_accuracy"]
    assert run_report(no_head) == summary_tables(no_head, drop_constant=True)
    # the default summary keeps every column
    assert "n_images" in summary_tables(ROWS)


def test_drop_constant_columns_needs_two_rows():
    h, t, d = drop_constant_columns(["m", "a", "b"], [["x", 1, 2]])
    assert (h, t, d) == (["m", "a", "b"], [["x", 1, 2]], [])
    h, t, d = drop_constant_columns(["m", "a", "b"], [["x", 1, 2], ["y", 1, 3]])
    assert h == ["m", "b"] and t == [["x", 2], ["y", 3]] and d == [("a", 1)]
    h, t, d = drop_constant_columns(["m", "a"], [["x", 1], ["x", 1]])
    assert h == ["m"] and d == [("a", 1)]  # the key column stays
