"""`leaderboard validate`: the shipped tree passes; each kind of broken entry fails naming file and field."""


import pytest
from tests.harness.leaderboard.conftest import CHEAP_ENTRY, LEADERBOARD, read, write

from latentbench.cli import main
from latentbench.leaderboard import range_errors, validate_tree

ENTRY = f"digits-v1/{CHEAP_ENTRY.name}"


def test_shipped_leaderboard_is_valid(registry):
    errors, entries = validate_tree(LEADERBOARD, registry)
    assert errors == []
    # every built-in autoencoder has an entry under each shipped protocol (gan has no encoder, see
    # CONTRIBUTING.md), and every shipped entry was re-run by `verify --write` and reproduced
    autoencoders = {"vae", "beta_vae", "mixup_vae", "smooth_encoder", "lc_vae", "gmm_dae", "robust_gmm_dae",
                    "robust_dae", "beta_tcvae"}
    for protocol in ("digits-v1", "fashion-mnist-32-v1"):
        shipped = [e.data for e in entries if e.data["protocol"]["name"] == protocol]
        assert {d["model"]["plugin"] for d in shipped} == autoencoders, protocol
        for d in shipped:
            assert d["reproduced"] is not None and d["reproduced"]["status"] == "reproduced", (protocol, d["name"])
            assert d["reproduced"]["differences"] == [] and d["unreliable"] is False, (protocol, d["name"])


def _errors_after(lb_copy, registry, edit, name=ENTRY):
    path = lb_copy / name
    data = read(path)
    edit(data)
    write(path, data)
    errors, _ = validate_tree(lb_copy, registry)
    return errors


def test_missing_field(lb_copy, registry):
    errors = _errors_after(lb_copy, registry, lambda d: d["checkpoint"].pop("sha256"))
    assert errors == [f"{ENTRY}: checkpoint.sha256: missing required field"]


def test_wrong_type(lb_copy, registry):
    errors = _errors_after(lb_copy, registry, lambda d: d.__setitem__("unreliable", "no"))
    assert errors == [f'{ENTRY}: unreliable: expected boolean, got string "no"']


def test_unknown_protocol(lb_copy, registry):
    errors = _errors_after(lb_copy, registry, lambda d: d["protocol"].__setitem__("name", "digits-v9"))
    assert len(errors) == 1
    assert errors[0].startswith(f"{ENTRY}: protocol.name: unknown protocol 'digits-v9' (registered: ") and "digits-v1, digits-v2" in errors[0]


def test_stale_protocol_version(lb_copy, registry):
    errors = _errors_after(lb_copy, registry, lambda d: d["protocol"].__setitem__("version", "0"))
    assert len(errors) == 1 and errors[0].startswith(f"{ENTRY}: protocol.version: entry says '0'")


def test_duplicate_name_and_checkpoint(lb_copy, registry):
    src = lb_copy / ENTRY
    (lb_copy / "digits-v1" / "copy.json").write_text(src.read_text().replace('"name": "vae"', '"name": "copy"', 1))
    errors, _ = validate_tree(lb_copy, registry)
    assert errors == ["digits-v1/vae.json: checkpoint.sha256: the same checkpoint is already entered under digits-v1 "
                      "as digits-v1/copy.json; one entry per checkpoint and protocol"]
    # the same name twice (in a second file): named as a duplicate
    data = read(src)
    data["checkpoint"]["sha256"] = "0" * 64
    data["checkpoint"]["path"] = None
    write(lb_copy / "digits-v1" / "copy.json", data)
    errors, _ = validate_tree(lb_copy, registry)
    assert any(e.startswith("digits-v1/vae.json: name: duplicate entry 'vae' under protocol digits-v1") for e in errors), errors


def test_number_out_of_range(lb_copy, registry):
    def edit(d):
        for r in d["reported"]["results"]:
            if r["metric"] == "ms_ssim" and r["attack"] == "max_damage" and r["budget"] == 1.0:
                r["values"]["recon_vs_adv_recon_mean"] = 1.2
    errors = _errors_after(lb_copy, registry, edit)
    assert errors == [f"{ENTRY}: reported.results[{_index(lb_copy, 'ms_ssim', 'max_damage', 1.0)}].values."
                      f"recon_vs_adv_recon_mean (ms_ssim x max_damage@1.0): 1.2 is outside [0, 1]"]


def _index(lb_copy, metric, attack, budget):
    rs = read(lb_copy / ENTRY)["reported"]["results"]
    return next(i for i, r in enumerate(rs) if (r["metric"], r["attack"], r["budget"]) == (metric, attack, budget))


@pytest.mark.parametrize("metric,key,value,ok", [
    ("downstream_adv_accuracy", "adv_accuracy@0.1", 1.0, True),
    ("downstream_adv_accuracy", "adv_accuracy@0.1", 1.0001, False),
    ("downstream_adv_accuracy", "nominal_accuracy", -0.01, False),
    ("spectral_radius", "spectral_radius_mean", 0.0, True),
    ("spectral_radius", "spectral_radius_mean", -1e-6, False),
    ("fid", "fid", -0.5, False),
    ("l2_distance", "adv_norm_mean", 0.5, True),
    ("l2_distance", "adv_norm_mean", 0.51, False),  # above the budget 0.5
    ("vn_entropy", "vn_entropy_std", -0.1, False),
    ("ms_ssim", "input_vs_adv_mean", float("nan"), False),
])
def test_range_rules(metric, key, value, ok):
    entry = {"reported": {"results": [{"metric": metric, "attack": "a" if "norm" in key else None,
                                        "budget": 0.5 if "norm" in key else None, "values": {key: value}}]}}
    assert (range_errors(entry) == []) == ok


def test_checkpoint_sha256_mismatch(lb_copy, registry):
    data = read(lb_copy / ENTRY)
    weights = lb_copy.parent / data["checkpoint"]["path"] / "model.safetensors"
    blob = bytearray(weights.read_bytes())
    blob[-1] ^= 1  # one flipped bit in the last weight
    weights.write_bytes(bytes(blob))
    errors, _ = validate_tree(lb_copy, registry)
    assert len(errors) == 1
    assert errors[0].startswith(f"{ENTRY}: checkpoint.sha256: {data['checkpoint']['path']}/model.safetensors has sha256 ")
    assert data["checkpoint"]["sha256"] in errors[0]


def test_incomplete_entry(lb_copy, registry):
    errors = _errors_after(lb_copy, registry, lambda d: d["reported"].__setitem__(
        "results", [r for r in d["reported"]["results"] if r["metric"] != "fid"]))
    assert errors == [f"{ENTRY}: reported.results: missing cells of protocol digits-v1: fid"]


def test_invalid_json_and_cli_exit_code(lb_copy, capsys):
    (lb_copy / "digits-v1" / "broken.json").write_text("{not json")
    assert main(["leaderboard", "validate", str(lb_copy)]) == 1
    out = capsys.readouterr().out
    assert "digits-v1/broken.json: (file): not valid JSON" in out
    (lb_copy / "digits-v1" / "broken.json").unlink()
    assert main(["leaderboard", "validate", str(lb_copy)]) == 0
