"""Checkpoint loading: every official container/layout round-trips bit-exactly; bad files give InputError."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
import torch

from maskbench.errors import InputError
from maskbench.model.checkpoint import group_keys, load_model

PIXELS = torch.randn(1, 3, 64, 96, generator=torch.Generator().manual_seed(7))

# (case id, backbone kind, config changes, official layout)
VARIANTS = {
    "d2-zoo-r50": ("resnet", {}, "d2-zoo"),
    "m2a-gma-r50": ("resnet", {"gma": True}, "m2a"),
    "rba-swin-1level-1layer": ("swin", {"transformer_in_features": ("res5",), "dec_layers": 1}, "rba"),
    "eam-swin": ("swin", {}, "eam"),
}


def _write(ckpt, tmp_path, state, container: str):
    """Write ``state`` as detectron2 .pkl (protocol 2 or default), trainer .pth, bare .pth, or HF dir."""
    if container.startswith("pkl"):
        path = tmp_path / "model_final.pkl"
        arrays = {k: v.numpy() for k, v in state.items()}
        protocol = 2 if container == "pkl2" else pickle.DEFAULT_PROTOCOL
        with open(path, "wb") as f:
            pickle.dump({"model": arrays, "__author__": "test", "matching_heuristics": True}, f, protocol=protocol)
    elif container == "pth-trainer":
        path = tmp_path / "model_final.pth"
        first = next(iter(state.values()))
        optimizer = {"state": {0: {"momentum_buffer": torch.zeros_like(first)}}, "param_groups": [{"lr": 1e-4}]}
        torch.save({"model": {f"module.{k}": v for k, v in state.items()}, "optimizer": optimizer,
                    "scheduler": {"last_epoch": 3}, "iteration": 89999}, path)
    elif container == "pth-bare":
        path = tmp_path / "weights.pth"
        torch.save(state, path)
    else:
        path = tmp_path / "hf"
        ckpt.write_hf_dir(path, state, naming=container.removeprefix("hf-"))
    return path


CASES = [
    ("d2-zoo-r50", "pkl2"), ("d2-zoo-r50", "pkl"), ("d2-zoo-r50", "pth-trainer"), ("d2-zoo-r50", "hf-file"),
    ("m2a-gma-r50", "pth-trainer"), ("rba-swin-1level-1layer", "pth-trainer"), ("eam-swin", "pth-trainer"),
    ("eam-swin", "pth-bare"), ("eam-swin", "hf-file"), ("eam-swin", "hf-live"),
]


@pytest.mark.parametrize("variant,container", CASES, ids=[f"{v}-{c}" for v, c in CASES])
def test_roundtrip_every_tensor_and_bit_identical_forward(ckpt, tmp_path, variant, container):
    kind, changes, layout = VARIANTS[variant]
    original = ckpt.build_ckpt_model(kind, seed=3, **changes)
    state = ckpt.official_state(original, layout)
    model, report = load_model(_write(ckpt, tmp_path, state, container))

    assert report.ok and not report.missing and not report.unexpected and not report.shape_mismatched
    cfg = report.config
    assert (cfg.backbone, cfg.gma, cfg.dec_layers, cfg.transformer_in_features, cfg.num_classes, cfg.num_queries) == (
        kind, changes.get("gma", False), changes.get("dec_layers", 3),
        changes.get("transformer_in_features", ("res3", "res4", "res5")), 5, 7)
    own, loaded = original.state_dict(), model.state_dict()
    assert set(own) == set(loaded)
    for key, value in own.items():
        assert torch.equal(loaded[key], value), key
    with torch.no_grad():
        expected, got = original(PIXELS), model(PIXELS)
    assert torch.equal(got["pred_logits"], expected["pred_logits"])
    assert torch.equal(got["pred_masks"], expected["pred_masks"])


def test_harmless_keys_are_ignored_with_reasons(ckpt, tmp_path):
    state = ckpt.official_state(ckpt.build_ckpt_model("resnet", gma=True), "m2a")
    state.update({k: v for k, v in ckpt.official_state(ckpt.build_ckpt_model("resnet", gma=True), "d2-zoo").items()
                  if k.endswith("num_batches_tracked")})
    _, report = load_model(_write(ckpt, tmp_path, state, "pth-trainer"))
    reasons = report.ignored
    assert "training only" in reasons["criterion.empty_weight"]
    assert "never called" in reasons["sem_seg_head.predictor.transformer_cross_attention_layers.2.fusion_layer.weight"]
    assert "step counter" in reasons["backbone.res3.1.conv2.norm.num_batches_tracked"]

    swin_state = ckpt.official_state(ckpt.build_ckpt_model("swin"), "eam")
    _, report = load_model(_write(ckpt, tmp_path, swin_state, "pth-bare"))
    assert "recomputed" in report.ignored["backbone.layers.3.blocks.1.attn.relative_position_index"]


def test_strict_load_lists_problems_grouped_and_names_the_file(ckpt, tmp_path):
    state = ckpt.official_state(ckpt.build_ckpt_model("resnet"), "d2-zoo")
    for i in range(3):
        del state[f"sem_seg_head.predictor.transformer_ffn_layers.{i}.linear2.weight"]
    state["sem_seg_head.predictor.extra_head.weight"] = torch.zeros(2)
    path = _write(ckpt, tmp_path, state, "pth-trainer")
    with pytest.raises(InputError) as err:
        load_model(path)
    msg = str(err.value)
    assert str(path) in msg
    assert "sem_seg_head.predictor.transformer_ffn_layers.{0..2}.linear2.weight  (3 keys)" in msg
    assert "unexpected in the file (1):\n  sem_seg_head.predictor.extra_head.weight" in msg

    model, report = load_model(path, strict=False)
    assert len(report.missing) == 3 and report.unexpected == ("sem_seg_head.predictor.extra_head.weight",)
    key = "sem_seg_head.predictor.query_feat.weight"
    assert torch.equal(model.state_dict()[key], state[key])


def test_override_changes_architecture_and_reports_shape_mismatch(ckpt, tmp_path):
    path = _write(ckpt, tmp_path, ckpt.official_state(ckpt.build_ckpt_model("resnet"), "d2-zoo"), "pth-bare")
    with pytest.raises(InputError, match=r"query_feat\.weight: \(7, 32\) vs \(9, 32\)"):
        load_model(path, num_queries=9)
    model, report = load_model(path, nheads=4, msda_backend="torch")
    assert report.config.nheads == 4 and report.ok
    with pytest.raises(InputError, match="not_a_field"):
        load_model(path, not_a_field=1)


def test_relative_position_index_must_equal_the_recomputed_one(ckpt, tmp_path):
    state = ckpt.official_state(ckpt.build_ckpt_model("swin"), "eam")
    key = "backbone.layers.1.blocks.0.attn.relative_position_index"
    state[key] = state[key].flip(0)
    with pytest.raises(InputError, match="relative_position_index"):
        load_model(_write(ckpt, tmp_path, state, "pth-bare"))


def test_legacy_numpy_core_pickle_names_load(ckpt, tmp_path):
    """Model-zoo files predate numpy 2 and reference ``numpy.core.multiarray._reconstruct``."""
    state = ckpt.official_state(ckpt.build_ckpt_model("resnet"), "d2-zoo")
    path = _write(ckpt, tmp_path, state, "pkl2")
    raw = path.read_bytes()
    assert b"numpy._core.multiarray" in raw
    path.write_bytes(raw.replace(b"numpy._core.multiarray", b"numpy.core.multiarray"))
    model, report = load_model(path)
    assert report.ok and report.format == "d2-pkl"


class _RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_pickle_is_refused_without_running_code(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"model": {"a": _RunsCode(marker)}}, protocol=2))
    with pytest.raises(InputError, match=r"evil\.pkl.*refusing to load global 'posix\.system'"):
        load_model(path)
    assert not marker.exists()


def _bad_files(ckpt, tmp_path):
    good = _write(ckpt, tmp_path, ckpt.official_state(ckpt.build_ckpt_model("resnet"), "d2-zoo"), "pth-bare")
    yield "truncated pth", "weights_trunc.pth", good.read_bytes()[: good.stat().st_size // 2], "not a readable torch"
    pkl = tmp_path / "src"
    pkl.mkdir()
    pkl_bytes = _write(ckpt, pkl, {"a.weight": torch.ones(2)}, "pkl").read_bytes()
    yield "truncated pkl", "t.pkl", pkl_bytes[:-20], "not a readable detectron2 .pkl"
    yield "random bytes pkl", "r.pkl", bytes(range(256)) * 4, "not a detectron2 .pkl checkpoint (a pickle): it starts with"
    yield "random bytes pth", "r.pth", bytes(range(256)) * 4, "not a torch checkpoint (torch.save zip archive): it starts"
    yield "list container", "l.pkl", pickle.dumps([np.zeros(3)]), "expected a state dict"
    yield "string values", "s.pkl", pickle.dumps({"model": {"a": "text"}}), "not a numeric array"
    yield "empty dict", "e.pkl", pickle.dumps({}), "expected a state dict"
    yield "unknown suffix", "model.ckpt", b"", "unknown checkpoint format"
    yield "not mask2former", "n.pkl", pickle.dumps({"model": {"fc.weight": np.zeros((2, 2), np.float32)}}), \
        "unknown backbone"


@pytest.mark.parametrize("case", range(9))
def test_bad_files_raise_input_error_naming_the_file(ckpt, tmp_path, case):
    label, name, payload, message = list(_bad_files(ckpt, tmp_path))[case]
    path = tmp_path / name
    path.write_bytes(payload)
    with pytest.raises(InputError) as err:
        load_model(path)
    assert str(path) in str(err.value) and message in str(err.value), label


def test_missing_path_and_bad_hf_directories(ckpt, tmp_path):
    with pytest.raises(InputError, match="checkpoint not found"):
        load_model(tmp_path / "nope.pkl")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no config.json"):
        load_model(tmp_path / "empty")
    hf = tmp_path / "hf"
    ckpt.write_hf_dir(hf, ckpt.official_state(ckpt.build_ckpt_model("swin"), "eam"))
    weights = hf / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])
    with pytest.raises(InputError, match=r"model\.safetensors.*truncated"):
        load_model(hf)
    (hf / "config.json").write_text('{"model_type": "swin"}')
    with pytest.raises(InputError, match="expected model_type 'mask2former'"):
        load_model(hf)


def test_group_keys_worked_example():
    keys = [f"a.layers.{i}.w" for i in range(4)] + ["a.layers.7.w", "b.x", "c.2.y", "c.5.y"]
    assert group_keys(keys) == ["a.layers.{0,1,2,3,7}.w  (5 keys)", "b.x", "c.{2,5}.y  (2 keys)"]
    assert group_keys(["p.0.q", "p.1.q", "p.2.q"]) == ["p.{0..2}.q  (3 keys)"]


def test_n_points_override_recovers_encoder_heads(ckpt, tmp_path):
    """Encoder heads x points are one product in the shapes; n_points= resolves it (default 4 = upstream)."""
    original = ckpt.build_ckpt_model("resnet", seed=4, n_points=2)
    path = _write(ckpt, tmp_path, ckpt.official_state(original, "d2-zoo"), "pth-bare")
    model, report = load_model(path, n_points=2)
    assert (report.config.enc_nheads, report.config.n_points) == (8, 2)
    with torch.no_grad():
        assert torch.equal(model(PIXELS)["pred_masks"], original(PIXELS)["pred_masks"])
    _, default = load_model(path)
    assert (default.config.enc_nheads, default.config.n_points) == (4, 4)  # same shapes, documented ambiguity
