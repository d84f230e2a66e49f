"""The shipped reference classifiers: the protocol's sha256 is enforced and a missing one is named."""

import hashlib
import shutil

import pytest
import torch

from latentbench.errors import LatentBenchError
from latentbench.plugins.metrics._reference_classifier import FOLDER, WEIGHTS_FILE, load_reference_classifier


def test_shipped_classifier_matches_its_recorded_sha256_and_accuracy(registry):
    cfg = next(m for m in registry.protocol("digits-v2").metrics if m["plugin"] == "robust_accuracy")["config"]
    digest = hashlib.sha256((FOLDER / cfg["classifier"] / WEIGHTS_FILE).read_bytes()).hexdigest()
    assert digest == cfg["classifier_sha256"]  # computed here with hashlib, not by the loader
    net, meta = load_reference_classifier(cfg["classifier"], cfg["classifier_sha256"])
    assert not any(p.requires_grad for p in net.parameters()) and not net.training
    assert net(torch.zeros(2, 1, 8, 8)).shape == (2, 10)


def test_a_different_weights_file_is_refused(tmp_path):
    shutil.copytree(FOLDER / "digits-v2-advl2", tmp_path / "digits-v2-advl2")
    with pytest.raises(LatentBenchError, match="sha256"):
        load_reference_classifier("digits-v2-advl2", "0" * 64, folder=tmp_path)
    # a tampered file fails against the true digest too
    w = tmp_path / "digits-v2-advl2" / WEIGHTS_FILE
    data = w.read_bytes()
    w.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))  # one bit flipped
    true = hashlib.sha256((FOLDER / "digits-v2-advl2" / WEIGHTS_FILE).read_bytes()).hexdigest()
    with pytest.raises(LatentBenchError, match="sha256"):
        load_reference_classifier("digits-v2-advl2", true, folder=tmp_path)


def test_an_unknown_classifier_is_named_with_the_known_ones():
    with pytest.raises(LatentBenchError, match="'nope' is not shipped.*digits-v2-advl2"):
        load_reference_classifier("nope", None)
