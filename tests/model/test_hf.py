"""HF directories: safetensors parsing, the rename table against real transformers names, and the whole
forward against HF ``Mask2FormerForUniversalSegmentation`` (independent implementation) on shared weights."""

from __future__ import annotations

import re

import pytest
import torch

from maskbench.errors import InputError
from maskbench.model.checkpoint import load_model
from maskbench.model.hf import checkpoint_filter_fn, read_safetensors

# Swin backbone key patterns of transformers 5.23.0's live ``Mask2FormerForUniversalSegmentation.state_dict()``
# (captured from the installed package; '#' = any index). ``save_pretrained`` writes the older file names.
HF5_LIVE_SWIN_PATTERNS = {
    "model.pixel_level_module.encoder.hidden_states_norms.stage{1,2,3,4}.{weight,bias}",
    "model.pixel_level_module.encoder.swin.embeddings.norm.{weight,bias}",
    "model.pixel_level_module.encoder.swin.embeddings.patch_embeddings.projection.{weight,bias}",
    "model.pixel_level_module.encoder.swin.encoder.layers.#.blocks.#.attention.{q,k,v,o}_proj.{weight,bias}",
    "model.pixel_level_module.encoder.swin.encoder.layers.#.blocks.#.attention.relative_position_bias."
    "relative_position_bias_table",
    "model.pixel_level_module.encoder.swin.encoder.layers.#.blocks.#.layernorm_{before,after}.{weight,bias}",
    "model.pixel_level_module.encoder.swin.encoder.layers.#.blocks.#.mlp.fc{1,2}.{weight,bias}",
    "model.pixel_level_module.encoder.swin.encoder.layers.#.downsample.norm.{weight,bias}",
    "model.pixel_level_module.encoder.swin.encoder.layers.#.downsample.reduction.weight",
    "model.pixel_level_module.encoder.swin.layernorm.{weight,bias}",
}


def _expand(pattern: str) -> set[str]:
    m = re.search(r"\{([^}]*)\}", pattern)
    if m is None:
        return {pattern}
    return set().union(*(_expand(pattern[:m.start()] + alt + pattern[m.end():]) for alt in m[1].split(",")))


def _patterns(keys) -> set[str]:
    return {re.sub(r"\.\d+\.", ".#.", re.sub(r"\.\d+\.", ".#.", k)) for k in keys}


def test_live_transformers5_swin_names_are_mapped(ckpt):
    """Fixture names from transformers 5.23 equal the test's inverse table, and the loader maps them all."""
    state = ckpt.official_state(ckpt.build_ckpt_model("swin"), "eam")
    live = ckpt.d2_to_hf(state, naming="live")
    live["model.pixel_level_module.encoder.swin.layernorm.weight"] = torch.ones(128)
    live["model.pixel_level_module.encoder.swin.layernorm.bias"] = torch.zeros(128)
    expected = set().union(*(_expand(p) for p in HF5_LIVE_SWIN_PATTERNS))
    assert {p for p in _patterns(live) if ".encoder." in p and "pixel_level_module.encoder" in p} == expected
    d2, ignored, unmatched = checkpoint_filter_fn(live)
    assert unmatched == []
    assert set(ignored) == {"model.pixel_level_module.encoder.swin.layernorm.weight",
                            "model.pixel_level_module.encoder.swin.layernorm.bias"}
    backbone = {k: v for k, v in state.items() if k.startswith("backbone.") and "relative_position_index" not in k}
    assert {k for k in d2 if k.startswith("backbone.")} == set(backbone)
    for key, value in backbone.items():
        assert torch.equal(d2[key], value), key


def test_incomplete_qkv_split_is_reported_unmatched(ckpt):
    hf = ckpt.d2_to_hf(ckpt.official_state(ckpt.build_ckpt_model("swin"), "eam"))
    victim = "model.transformer_module.decoder.layers.0.self_attn.k_proj.weight"
    del hf[victim]
    _, _, unmatched = checkpoint_filter_fn(hf)
    assert sorted(unmatched) == ["model.transformer_module.decoder.layers.0.self_attn.q_proj.weight",
                                 "model.transformer_module.decoder.layers.0.self_attn.v_proj.weight"]


def test_read_safetensors_matches_the_reference_library(tmp_path):
    st = pytest.importorskip("safetensors.torch")  # optional oracle: the official writer
    gen = torch.Generator().manual_seed(0)
    tensors = {
        "f32": torch.randn(3, 5, generator=gen), "f16": torch.randn(7, generator=gen).half(),
        "bf16": torch.randn(2, 2, generator=gen).bfloat16(), "i64": torch.arange(6).view(2, 3),
        "scalar": torch.tensor(3.5), "empty": torch.zeros(0, 4), "u8": torch.arange(5, dtype=torch.uint8),
    }
    path = tmp_path / "x.safetensors"
    st.save_file(tensors, str(path), metadata={"format": "pt"})
    got = read_safetensors(path)
    assert set(got) == set(tensors)
    for key, value in tensors.items():
        assert got[key].dtype == value.dtype and torch.equal(got[key], value), key


def test_read_safetensors_rejects_bad_headers(tmp_path):
    path = tmp_path / "bad.safetensors"
    path.write_bytes((10**9).to_bytes(8, "little") + b"{}")
    with pytest.raises(InputError, match="header size"):
        read_safetensors(path)
    path.write_bytes((4).to_bytes(8, "little") + b"nope")
    with pytest.raises(InputError, match="cannot read safetensors header"):
        read_safetensors(path)
    header = b'{"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 12]}}'
    path.write_bytes(len(header).to_bytes(8, "little") + header + bytes(16))
    with pytest.raises(InputError, match="'a' has offsets"):
        read_safetensors(path)


# --- the whole forward against HF transformers ------------------------------------------------------------


def _hf_model(kind: str, seed: int):
    transformers = pytest.importorskip("transformers")  # optional oracle, pinned in the [hf]/[dev] extras
    if kind == "swin":
        backbone = transformers.SwinConfig(embed_dim=16, depths=[2, 2, 2, 2], num_heads=[1, 2, 2, 4], window_size=3,
                                           drop_path_rate=0.0, out_features=["stage1", "stage2", "stage3", "stage4"])
    else:  # HF ResNet: bottleneck stride in the 3x3, like detectron2 with STRIDE_IN_1X1=False
        backbone = transformers.ResNetConfig(embedding_size=16, hidden_sizes=[32, 64, 128, 256], depths=[3, 4, 6, 3],
                                             layer_type="bottleneck",
                                             out_features=["stage1", "stage2", "stage3", "stage4"])
    cfg = transformers.Mask2FormerConfig(
        backbone_config=backbone, num_labels=5, num_queries=7, decoder_layers=4, hidden_dim=32, feature_size=32,
        mask_feature_size=32, encoder_feedforward_dim=64, dim_feedforward=48, num_attention_heads=8, encoder_layers=2,
    )
    model = transformers.Mask2FormerForUniversalSegmentation(cfg).eval()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():  # HF's init zeroes several biases/offsets: randomize everything
        for name, t in list(model.named_parameters()) + list(model.named_buffers()):
            if not t.is_floating_point() or name.startswith("criterion."):
                continue
            if name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=gen) + 0.5)
            elif t.dim() == 1 and "norm" in name and name.endswith("weight"):
                t.copy_(1.0 + torch.randn(t.shape, generator=gen) * 0.2)
            else:
                t.copy_(torch.randn(t.shape, generator=gen) * 0.2)
    return model


@pytest.mark.parametrize("kind", ["swin", "resnet"])
def test_forward_matches_hf_transformers(tmp_path, kind):
    """Same random weights via ``save_pretrained`` -> our HF loader: pred_logits / pred_masks within 1e-4.

    At 128x128 the Swin stage grids (32, 16, 8, 4) all exceed the window 3 (HF shrinks the window otherwise,
    detectron2 does not) and all need window padding after norm1."""
    hf = _hf_model(kind, seed=11)
    hf.save_pretrained(tmp_path / "hf")
    model, report = load_model(tmp_path / "hf")
    assert report.ok and report.format == "hf" and report.config.backbone == kind
    assert (report.config.dec_layers, report.config.nheads, report.config.num_classes) == (3, 8, 5)
    pixels = torch.randn(2, 3, 128, 128, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        expected = hf(pixel_values=pixels)
        got = model(pixels)
    torch.testing.assert_close(got["pred_logits"], expected.class_queries_logits, rtol=0, atol=1e-4)
    torch.testing.assert_close(got["pred_masks"], expected.masks_queries_logits, rtol=0, atol=1e-4)
    assert expected.masks_queries_logits.abs().max() > 0.5  # not a trivially small output
