"""Hook specifications for LatentBench plugins.

A plugin is a module (or object) with functions decorated by ``latentbench.hookimpl`` whose names match
the specs below. Built-in and third-party plugins are registered through the ``latentbench``
entry-point group, e.g. in a plugin's ``pyproject.toml``::

    [project.entry-points.latentbench]
    my_models = "my_package.latentbench_plugin"

Component hooks return a list of classes; every class carries a unique ``name`` attribute. The
harness collects them into a registry, and two plugins providing the same name is an error.
"""

from __future__ import annotations

import pluggy

from latentbench import PROJECT

hookspec = pluggy.HookspecMarker(PROJECT)


@hookspec
def latentbench_models():
    """Return a list of model classes (subclasses of :class:`harness.Autoencoder`).

    Each class sets ``name`` (the plugin name used in configs, e.g. ``"vae"``), ``config_class``
    (a dataclass subclassing :class:`harness.ModelConfig`) and, optionally, ``source`` (the document
    and section it implements). Dispatch from a config to a class goes through this registry only.
    """


@hookspec
def latentbench_attacks():
    """Return a list of attack classes (subclasses of :class:`harness.Attack`).

    Each class sets ``name`` and ``config_class`` (a dataclass subclassing
    :class:`harness.AttackConfig` holding the threat model, budget and solver settings).
    """


@hookspec
def latentbench_metrics():
    """Return a list of metric classes (subclasses of :class:`harness.Metric`).

    Each class sets ``name``, ``config_class`` and ``needs`` (which of ``model``, ``data``,
    ``attack``, ``classifier`` it requires) so the runner can check a config before running.
    """


@hookspec
def latentbench_datasets():
    """Return a list of dataset classes (subclasses of :class:`harness.Dataset`)."""


@hookspec
def latentbench_protocols():
    """Return a list of evaluation protocols (:class:`latentbench.protocol.Protocol` instances).

    A protocol is a named, versioned evaluation definition: dataset, image size, split, subset and
    its seed, attacks with budgets, metrics and trials. Results of different versions are never
    ranked together.
    """


@hookspec
def latentbench_experiments():
    """Return a list of experiments (:class:`latentbench.experiment.Experiment` objects, made with the
    :func:`latentbench.experiment.experiment` decorator).

    An experiment reproduces a published figure or table at ``smoke``, ``reduced`` or ``full`` size
    over several independently trained seeds (``ctx.seed_list()``) and returns its per-seed results
    (``ReproResult.per_seed``); the decorator's ``findings=`` function turns stored per-seed results
    into the paper's claims, each with a test, an effect with its 95% interval and a computed verdict
    (holds / does not hold / inconclusive, :mod:`latentbench.stats`), so ``latentbench reproduce NAME
    --recompute`` re-derives the verdicts without training. ``latentbench reproduce NAME`` runs it.
    """


@hookspec
def latentbench_add_cli_arguments(subcommand, parser):
    """Add arguments to the ``argparse`` parser of a CLI subcommand.

    :param subcommand: the subcommand name (``"run"``, ``"train"``, ...).
    :param parser: its ``argparse.ArgumentParser``.
    """


@hookspec
def latentbench_result_finished(cell, result):
    """Called after the runner stores a finished cell.

    :param cell: the :class:`latentbench.runner.Cell` that was evaluated.
    :param result: the stored row (a dict with values, status, config and provenance).

    Use it to stream results elsewhere (a tracker, a dashboard). Exceptions raised here are
    reported and do not stop the run.
    """
