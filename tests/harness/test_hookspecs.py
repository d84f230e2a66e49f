"""One test per hook specification: a plugin implementing it is picked up by the harness."""

from __future__ import annotations

import types

from latentbench import Dataset, hookimpl
from latentbench.data import Split
from latentbench.registry import load_registry
from latentbench.protocol import Protocol


def _plugin(**hooks):
    mod = types.ModuleType("hooktest")
    for name, fn in hooks.items():
        setattr(mod, name, hookimpl(fn))
    return mod


def test_models_hook(toy_registry):
    assert toy_registry.model("toy_ae").name == "toy_ae"
    assert toy_registry.provider[("model", "toy_ae")] == "tests.harness.toy_plugin"


def test_attacks_hook(toy_registry):
    assert toy_registry.attack("toy_latent").config_class.__name__ == "ToyAttackConfig"


def test_metrics_hook(toy_registry):
    assert {"toy_recon", "toy_attack_gain"} <= set(toy_registry.names("metric"))


def test_datasets_hook():
    class Tiny(Dataset):
        name = "tiny"
        native_shape = (1, 2, 2)

        def _load(self, split):
            import torch

            return Split(torch.zeros(3, 1, 2, 2), torch.zeros(3, dtype=torch.long))

    reg = load_registry(extra_plugins=[_plugin(latentbench_datasets=lambda: [Tiny])])
    assert reg.dataset("tiny")().load("train").x.shape == (3, 1, 2, 2)
    assert "digits" in reg.names("dataset")  # built-ins still there


def test_protocols_hook():
    p = Protocol(name="tiny-v1", version="1", description="t", dataset={"name": "digits"})
    reg = load_registry(extra_plugins=[_plugin(latentbench_protocols=lambda: [p])])
    assert reg.protocol("tiny-v1") is p


def test_experiments_hook(tmp_path):
    from latentbench.experiment import Finding, ReproResult, experiment, run_experiment
    from latentbench.stats import Estimate

    @experiment("tiny_exp", "a one-row experiment", "nowhere §0")
    def tiny(ctx):
        return ReproResult(tables={"t": [{"size": ctx.size, "seed": ctx.seed}]},
                           findings=[Finding.of("the seed is passed through",
                                                Estimate("seed check", float(ctx.seed), float(ctx.seed), float(ctx.seed), 1, 0),
                                                +1, f"seed {ctx.seed}", threshold=2.5)])

    reg = load_registry(extra_plugins=[_plugin(latentbench_experiments=lambda: [tiny])])
    assert reg.experiment("tiny_exp") is tiny and "beta_sweep" in reg.names("experiment")
    res = run_experiment("tiny_exp", "smoke", tmp_path, seed=3, registry=reg)
    assert res.tables["t"] == [{"size": "smoke", "seed": 3}] and res.findings[0].holds is True
    assert "the seed is passed through" in (tmp_path / "tiny_exp" / "results.md").read_text()


def test_add_cli_arguments_hook():
    seen = []

    def add(subcommand, parser):
        seen.append(subcommand)
        if subcommand == "run":
            parser.add_argument("--my-flag", action="store_true")

    from latentbench.cli import build_parser

    reg = load_registry(extra_plugins=[_plugin(latentbench_add_cli_arguments=add)])
    parser = build_parser(reg)
    assert "run" in seen and "train" in seen
    args = parser.parse_args(["run", "x.yaml", "--my-flag"])
    assert args.my_flag is True


def test_result_finished_hook(tmp_path):
    from tests.harness import toy_plugin as toy

    from latentbench.runconfig import parse_run_config
    from latentbench.runner import Runner

    got = []
    reg = load_registry(extra_plugins=[toy, _plugin(latentbench_result_finished=lambda cell, result: got.append((cell.metric, result["status"])))])
    cfg = parse_run_config({"output_dir": str(tmp_path), "progress": False, "dataset": {"eval_subset": 20, "train_subset": 64},
                            "models": [{"name": "m", "plugin": "toy_ae", "config": {"latent_dim": 2},
                                        "train": {"epochs": 1, "progress": False}}],
                            "metrics": [{"plugin": "toy_recon"}]})
    Runner(cfg, reg).run()
    assert got == [("toy_recon", "ok")]


def test_hookimpl_marker_is_exported():
    import latentbench

    assert latentbench.hookimpl.project_name == "latentbench"
