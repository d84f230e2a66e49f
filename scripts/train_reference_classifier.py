"""Build a shipped reference classifier of the headline score (deterministic on CPU).

usage: OMP_NUM_THREADS=1 python scripts/train_reference_classifier.py digits-v2-advl2
Writes latentbench/plugins/metrics/reference_classifiers/<name>/; record the printed sha256 in the
protocol that uses it.
"""
import json
import sys

import torch

from latentbench.data import DatasetConfig
from latentbench.plugins.metrics._reference_classifier import SPECS, train_reference_classifier
from latentbench.registry import get_registry

torch.set_num_threads(1)
name = sys.argv[1]
spec = SPECS[name]
ds = get_registry().dataset(spec.dataset)(DatasetConfig(image_size=spec.image_size, options=dict(spec.dataset_options)))
tr, te = ds.load("train"), ds.load("test")
meta = train_reference_classifier(spec, tr.x, tr.y, te.x, te.y, ds.num_classes)
print(json.dumps({k: meta[k] for k in ("name", "sha256", "test_accuracy", "test_robust_accuracy_pgd_l2_50x2")}, indent=1))
