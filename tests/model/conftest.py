"""Shared fixtures for tests/model: tiny configs and a stand-in backbone (no real weights needed)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor, nn

from maskbench.model import Mask2FormerConfig, build_model_with_backbone


class TinyBackbone(nn.Module):
    """Stand-in with the backbone contract: ``[B, 3, H, W]`` -> res2..res5 at strides 4..32."""

    def __init__(self, channels: tuple[int, int, int, int] = (32, 48, 64, 96)) -> None:
        super().__init__()
        self.out_channels = {f"res{i + 2}": c for i, c in enumerate(channels)}
        self.stem = nn.Conv2d(3, channels[0], kernel_size=4, stride=4)
        self.stages = nn.ModuleList(
            nn.Conv2d(cin, cout, kernel_size=3, stride=2, padding=1) for cin, cout in zip(channels, channels[1:])
        )

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        x = torch.relu(self.stem(x))
        out = {"res2": x}
        for i, stage in enumerate(self.stages):
            x = torch.relu(stage(x))
            out[f"res{i + 3}"] = x
        return out


def tiny_config(**changes) -> Mask2FormerConfig:
    """Small model: width 64, 2 heads, 1 encoder layer, 3 decoder layers, 8 queries, 5 classes."""
    base = dict(num_classes=5, num_queries=8, dec_layers=3, hidden_dim=64, nheads=2, dim_feedforward=96,
                conv_dim=64, mask_dim=64, enc_layers=1, enc_nheads=2, enc_dim_feedforward=80)
    base.update(changes)
    return Mask2FormerConfig(**base)


def randomize_(model: nn.Module, seed: int) -> nn.Module:
    """Overwrite every parameter with N(0, 0.2^2) (LayerNorm/GroupNorm weights around 1) so that no
    branch is trivially zero as after the upstream init."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=gen) * 0.2
            is_norm_scale = p.dim() == 1 and "norm" in name and name.endswith("weight")
            p.copy_(1.0 + noise if is_norm_scale else noise)
    return model


def build_tiny(seed: int = 0, **changes) -> nn.Module:
    torch.manual_seed(seed)
    model = build_model_with_backbone(tiny_config(**changes), TinyBackbone())
    return randomize_(model, seed).eval()


@pytest.fixture
def tiny_model():
    return build_tiny(0)


# ---- literal (slow, loop-based) reference implementations used as test oracles ----------------------------


def literal_sine_pos(h: int, w: int, num_feats: int) -> torch.Tensor:
    """``[2F, h, w]`` from the formula: y' = y/(h+1e-6)*2pi (y = 1..h); channel 2k = sin(y'/t_2k),
    2k+1 = cos(y'/t_2k+1), t_i = 10000^(2 floor(i/2)/F); the F y-channels come before the F x-channels."""
    import math

    out = torch.zeros(2 * num_feats, h, w, dtype=torch.float64)
    for i in range(num_feats):
        t = 10000.0 ** (2 * (i // 2) / num_feats)
        trig = math.sin if i % 2 == 0 else math.cos
        for r in range(h):
            for c in range(w):
                yv = (r + 1) / (h + 1e-6) * 2 * math.pi
                xv = (c + 1) / (w + 1e-6) * 2 * math.pi
                out[i, r, c] = trig(yv / t)
                out[num_feats + i, r, c] = trig(xv / t)
    return out


def literal_pos_forward(x: torch.Tensor) -> torch.Tensor:
    """Drop-in for ``PositionEmbeddingSine.forward`` computing the formula in fp64."""
    return literal_sine_pos(x.shape[2], x.shape[3], x.shape[1] // 2)[None].expand(x.shape[0], -1, -1, -1)


def literal_layer_norm(x, weight, bias, eps=1e-5):
    mean = x.mean(-1, keepdim=True)
    var = ((x - mean) ** 2).mean(-1, keepdim=True)
    return (x - mean) / torch.sqrt(var + eps) * weight + bias


def literal_mha(mha: nn.MultiheadAttention, q_in, k_in, v_in, blocked=None):
    """Per head h: softmax(Q_h K_h^T / sqrt(d) + M_h) V_h, heads concatenated, output projection.
    q_in ``[Q, C]``, k_in/v_in ``[S, C]``, blocked ``[heads, Q, S]`` bool (True = -inf)."""
    c = q_in.shape[-1]
    heads = mha.num_heads
    d = c // heads
    w, b = mha.in_proj_weight, mha.in_proj_bias
    q = q_in @ w[:c].T + b[:c]
    k = k_in @ w[c:2 * c].T + b[c:2 * c]
    v = v_in @ w[2 * c:].T + b[2 * c:]
    outs = []
    for h in range(heads):
        sl = slice(h * d, (h + 1) * d)
        scores = q[:, sl] @ k[:, sl].T / d ** 0.5
        if blocked is not None:
            scores = scores.masked_fill(blocked[h], float("-inf"))
        outs.append(torch.softmax(scores, -1) @ v[:, sl])
    return torch.cat(outs, -1) @ mha.out_proj.weight.T + mha.out_proj.bias


def literal_decoder(dec, feats, mask_features, *, gma: bool, stats: dict | None = None):
    """Mask2Former decoder loop written out per image (forward.md §1.5/§1.6), returning the last
    (class logits [B, Q, K+1], mask logits [B, Q, H4, W4]). ``stats`` counts rows hit by the
    "all keys blocked -> unblock" rule."""
    import torch.nn.functional as F

    n_levels = len(feats)
    heads = dec.num_heads
    all_cls, all_masks = [], []
    for b in range(mask_features.shape[0]):
        sizes = [tuple(f.shape[-2:]) for f in feats]
        src = [f[b].flatten(1).T + dec.level_embed.weight[i] for i, f in enumerate(feats)]
        pos = [literal_sine_pos(*s, f.shape[1] // 2).flatten(1).T for s, f in zip(sizes, feats)]
        qpos = dec.query_embed.weight
        out = dec.query_feat.weight

        def heads_fn(out, size):
            dn = literal_layer_norm(out, dec.decoder_norm.weight, dec.decoder_norm.bias)
            cls = dn @ dec.class_embed.weight.T + dec.class_embed.bias
            e = dn
            for j, lin in enumerate(dec.mask_embed.layers):
                e = e @ lin.weight.T + lin.bias
                if j < len(dec.mask_embed.layers) - 1:
                    e = torch.relu(e)
            m = (e @ mask_features[b].flatten(1)).view(-1, *mask_features.shape[-2:])
            prob = torch.sigmoid(F.interpolate(m[None], size=size, mode="bilinear", align_corners=False)[0])
            return cls, m, prob.flatten(1)

        def unblock(blocked, key):
            full = blocked.all(-1)
            if stats is not None:
                stats[key] = stats.get(key, 0) + int(full.sum())
            blocked = blocked.clone()
            blocked[full] = False
            return blocked[None].expand(heads, -1, -1)

        cls, m, prob = heads_fn(out, sizes[0])
        for i in range(dec.num_layers):
            lvl = i % n_levels
            k_in, v_in = src[lvl] + pos[lvl], src[lvl]
            layer = dec.transformer_cross_attention_layers[i]
            if gma:  # Mask2Anomaly Eq. 10 with per-branch projections, one residual + LayerNorm (as coded)
                fg = literal_mha(layer.multihead_attn_foreground, out + qpos, k_in, v_in, unblock(prob < 0.5, "fg"))
                bg = literal_mha(layer.multihead_attn_background, out + qpos, k_in, v_in, unblock(prob > 0.5, "bg"))
                attn = fg + bg
            else:
                attn = literal_mha(layer.multihead_attn, out + qpos, k_in, v_in, unblock(prob < 0.5, "fg"))
            out = literal_layer_norm(out + attn, layer.norm.weight, layer.norm.bias)
            sa = dec.transformer_self_attention_layers[i]
            out = literal_layer_norm(out + literal_mha(sa.self_attn, out + qpos, out + qpos, out), sa.norm.weight, sa.norm.bias)
            ffn = dec.transformer_ffn_layers[i]
            hidden = torch.relu(out @ ffn.linear1.weight.T + ffn.linear1.bias)
            out = literal_layer_norm(out + hidden @ ffn.linear2.weight.T + ffn.linear2.bias, ffn.norm.weight, ffn.norm.bias)
            cls, m, prob = heads_fn(out, sizes[(i + 1) % n_levels])
        all_cls.append(cls)
        all_masks.append(m)
    return torch.stack(all_cls), torch.stack(all_masks)


def decoder_inputs(dec, *, seed: int, sizes=((2, 4), (4, 8), (8, 16)), mask_hw=(16, 32), batch=2,
                   extreme: bool = True):
    """Random multi-scale features (float64) for ``dec``. ``extreme`` makes mask-feature channel 0 constant
    and gives the mask-embed row 0 a large scale, so some queries are negative (or positive) everywhere and
    the "fully blocked row" rule fires."""
    gen = torch.Generator().manual_seed(seed)
    c = dec.query_feat.weight.shape[1]
    feats = [torch.randn(batch, c, h, w, generator=gen, dtype=torch.float64) for h, w in sizes[: dec.num_feature_levels]]
    mask_features = torch.randn(batch, dec.mask_embed.layers[-1].weight.shape[0], *mask_hw, generator=gen,
                                dtype=torch.float64) * 0.3
    if extreme:
        mask_features[:, 0] = 1.0
        with torch.no_grad():
            last = dec.mask_embed.layers[-1]
            last.weight[0] = torch.randn(last.weight.shape[1], generator=gen, dtype=torch.float64) * 3.0
            last.bias[0] = 0.0
    return feats, mask_features


# ---- deformable attention (test_msda.py, test_msda_numba.py) -------------------------------------------


def literal_msda(value, shapes, starts, loc, attn):
    """Per (n, q, m, l, p): h = y H - 0.5, w = x W - 0.5; skip unless -1 < h < H and -1 < w < W; bilinear
    over the 4 corners, a corner outside the map contributes 0; weight and sum (CUDA im2col kernel)."""
    n_, _, m_, d_ = value.shape
    _, lq, _, n_levels, n_points, _ = loc.shape
    out = torch.zeros(n_, lq, m_, d_, dtype=torch.float64)
    for n in range(n_):
        for q in range(lq):
            for m in range(m_):
                for lvl in range(n_levels):
                    hh_, ww_ = (int(v) for v in shapes[lvl])
                    start = int(starts[lvl])
                    for p in range(n_points):
                        x, y = (float(v) for v in loc[n, q, m, lvl, p].detach())
                        h, w = y * hh_ - 0.5, x * ww_ - 0.5
                        if not (-1 < h < hh_ and -1 < w < ww_):
                            continue
                        h0, w0 = math.floor(h), math.floor(w)
                        lh, lw = h - h0, w - w0
                        sample = torch.zeros(d_, dtype=torch.float64)
                        for yy, xx, wt in ((h0, w0, (1 - lh) * (1 - lw)), (h0, w0 + 1, (1 - lh) * lw),
                                           (h0 + 1, w0, lh * (1 - lw)), (h0 + 1, w0 + 1, lh * lw)):
                            if 0 <= yy < hh_ and 0 <= xx < ww_:
                                sample += wt * value[n, start + yy * ww_ + xx, m].double()
                        out[n, q, m] += float(attn[n, q, m, lvl, p].detach()) * sample
    return out.reshape(n_, lq, m_ * d_)


def msda_inputs(dtype, seed=0, n=2, m=2, d=8, lq=11, points=3, shapes=((3, 5), (6, 10), (1, 2))):
    """Deformable-attention inputs with many points partly or fully outside the maps and exact edge cases."""
    gen = torch.Generator().manual_seed(seed)
    hw = torch.tensor(shapes, dtype=torch.int64)
    sizes = hw[:, 0] * hw[:, 1]
    starts = torch.cat((sizes.new_zeros(1), sizes.cumsum(0)[:-1]))
    value = torch.randn(n, int(sizes.sum()), m, d, generator=gen, dtype=dtype)
    # locations in [-0.3, 1.3]: many points partly or fully outside the map
    loc = torch.rand(n, lq, m, len(shapes), points, 2, generator=gen, dtype=dtype) * 1.6 - 0.3
    # exact edge cases: far outside, on the skip boundary (h = -1, h = H) and on pixel centres
    loc[0, 0, 0, 0, 0] = torch.tensor([-5.0, 7.0], dtype=dtype)
    loc[0, 1, 0, 0, 0] = torch.tensor([0.5, -0.5 / shapes[0][0]], dtype=dtype)
    lvl = min(1, len(shapes) - 1)
    loc[0, 2, 0, lvl, min(1, points - 1)] = torch.tensor([(shapes[lvl][1] + 0.5) / shapes[lvl][1], 0.25], dtype=dtype)
    loc[-1, 3, -1, lvl, min(2, points - 1)] = torch.tensor([0.5 / shapes[lvl][1], 1.5 / shapes[lvl][0]], dtype=dtype)
    attn = torch.rand(n, lq, m, len(shapes), points, generator=gen, dtype=dtype)
    return value, hw, starts, loc, attn



@pytest.fixture(scope="session")
def helpers():
    """The helpers above as attributes (test modules cannot import conftest under --import-mode=importlib)."""
    import types

    return types.SimpleNamespace(
        TinyBackbone=TinyBackbone, tiny_config=tiny_config, randomize_=randomize_, build_tiny=build_tiny,
        literal_sine_pos=literal_sine_pos, literal_pos_forward=literal_pos_forward, literal_layer_norm=literal_layer_norm, literal_mha=literal_mha,
        literal_decoder=literal_decoder, decoder_inputs=decoder_inputs, literal_msda=literal_msda,
        msda_inputs=msda_inputs,
    )


# ---- checkpoint / backbone helpers (test_checkpoint.py, test_hf.py, test_resnet.py, test_swin.py) ----------


def tiny_ckpt_config(**changes) -> Mask2FormerConfig:
    """Width 32 with 8 heads (the decoder head count a d2 checkpoint cannot reveal defaults to 8)."""
    base = dict(num_classes=5, num_queries=7, dec_layers=3, hidden_dim=32, nheads=8, dim_feedforward=48,
                conv_dim=32, mask_dim=32, enc_layers=2, enc_nheads=8, enc_dim_feedforward=64)
    base.update(changes)
    return Mask2FormerConfig(**base)


def tiny_backbone(kind: str) -> nn.Module:
    """R50 block counts at widths 16/32..256, or a 4-stage Swin (dim 16, window 3) — both official layouts."""
    if kind == "resnet":
        from maskbench.model.resnet import ResNet

        return ResNet(depth=50, norm="FrozenBN", stem_channels=16, res2_channels=32)
    from maskbench.model.swin import SwinTransformer

    return SwinTransformer(embed_dim=16, depths=(2, 2, 2, 2), num_heads=(1, 2, 2, 4), window_size=3)


def randomize_all_(model: nn.Module, seed: int) -> nn.Module:
    """Every float parameter and buffer ~ N(0, 0.2^2); norm scales ~ 1 + N(0, 0.2^2); BN variances in [0.5, 1.5)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in list(model.named_parameters()) + list(model.named_buffers()):
            if not t.is_floating_point():
                continue
            if name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=gen) + 0.5)
            elif t.dim() == 1 and "norm" in name and name.endswith("weight"):
                t.copy_(1.0 + torch.randn(t.shape, generator=gen) * 0.2)
            else:
                t.copy_(torch.randn(t.shape, generator=gen) * 0.2)
    return model


def build_ckpt_model(kind: str, seed: int = 0, **changes) -> nn.Module:
    """Random-weight tiny model with a real backbone layout (``kind``: "resnet" | "swin")."""
    cfg = tiny_ckpt_config(backbone=kind, **changes)
    return randomize_all_(build_model_with_backbone(cfg, tiny_backbone(kind)), seed).eval()


def official_state(model: nn.Module, layout: str) -> dict[str, Tensor]:
    """``model``'s tensors as the official checkpoint of ``layout`` stores them (extra keys included).

    d2-zoo: + ``num_batches_tracked`` per BN (SyncBN-trained) and ``criterion.empty_weight``.
    m2a: + per-layer GMA ``fusion_layer`` (Q x 2Q x 1 x 1, unused) and ``criterion.empty_weight``.
    rba / eam: Swin with ``relative_position_index`` (persistent upstream) and ``criterion.empty_weight``.
    """
    state = {k: v.clone() for k, v in model.state_dict().items()}
    num_classes = model.sem_seg_head.predictor.class_embed.weight.shape[0]
    state["criterion.empty_weight"] = torch.ones(num_classes)
    if layout == "d2-zoo":
        for key in [k for k in state if k.endswith("norm.running_var")]:
            state[key.removesuffix("running_var") + "num_batches_tracked"] = torch.tensor(90000)
    if layout == "m2a":
        q = model.sem_seg_head.predictor.query_feat.weight.shape[0]
        for i in range(len(model.sem_seg_head.predictor.transformer_cross_attention_layers)):
            prefix = f"sem_seg_head.predictor.transformer_cross_attention_layers.{i}.fusion_layer."
            state[prefix + "weight"] = torch.randn(q, 2 * q, 1, 1)
            state[prefix + "bias"] = torch.randn(q)
    return state


def write_safetensors(path, tensors: dict[str, Tensor]) -> None:
    """Minimal safetensors writer (u64 LE header size, JSON header, contiguous little-endian buffers)."""
    import json

    names = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.int64: "I64"}
    header, blobs, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for key, t in tensors.items():
        raw = t.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()
        header[key] = {"dtype": names[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    head = json.dumps(header).encode()
    head += b" " * (-len(head) % 8)
    with open(path, "wb") as f:
        f.write(len(head).to_bytes(8, "little") + head + b"".join(blobs))


def d2_to_hf(state: dict[str, Tensor], naming: str = "file") -> dict[str, Tensor]:
    """Inverse of the loader's rename table, written independently: detectron2 names -> HF names.

    naming "file": what ``save_pretrained`` writes (transformers 4.x and 5.x); "live": transformers 5.x
    module names (``swin.`` prefix, ``q/k/v_proj``, ``o_proj``, ``relative_position_bias.*``, ``mlp.fc*``).
    """
    import re

    enc = "model.pixel_level_module.encoder."
    swin = enc + ("swin." if naming == "live" else "")
    pd, tm = "model.pixel_level_module.decoder.", "model.transformer_module."
    out = {}

    def split3(prefix_names, t):
        n = t.shape[0] // 3
        for j, name in enumerate(prefix_names):
            out[name] = t[j * n:(j + 1) * n].clone()

    for k, v in state.items():
        p = k.split(".")
        if m := re.fullmatch(r"backbone\.patch_embed\.(proj|norm)\.(\w+)", k):
            out[swin + ("embeddings.patch_embeddings.projection." if m[1] == "proj" else "embeddings.norm.") + m[2]] = v
        elif m := re.fullmatch(r"backbone\.layers\.(\d+)\.blocks\.(\d+)\.(.+)", k):
            blk, rest = f"{swin}encoder.layers.{m[1]}.blocks.{m[2]}.", m[3]
            leaf = rest.split(".")[-1]
            if rest.startswith("attn.qkv."):
                names = ("q_proj", "k_proj", "v_proj") if naming == "live" else ("self.query", "self.key", "self.value")
                split3([f"{blk}attention.{n}.{leaf}" for n in names], v)
            elif rest == "attn.relative_position_index":
                continue  # not stored by transformers
            elif rest == "attn.relative_position_bias_table":
                mid = "relative_position_bias." if naming == "live" else "self."
                out[f"{blk}attention.{mid}relative_position_bias_table"] = v
            else:
                live = {"norm1": "layernorm_before", "norm2": "layernorm_after", "attn.proj": "attention.o_proj",
                        "mlp.fc1": "mlp.fc1", "mlp.fc2": "mlp.fc2"}
                file = {**live, "attn.proj": "attention.output.dense", "mlp.fc1": "intermediate.dense",
                        "mlp.fc2": "output.dense"}
                out[blk + (live if naming == "live" else file)[rest.rsplit(".", 1)[0]] + "." + leaf] = v
        elif m := re.fullmatch(r"backbone\.layers\.(\d+)\.downsample\.(.+)", k):
            out[f"{swin}encoder.layers.{m[1]}.downsample.{m[2]}"] = v
        elif m := re.fullmatch(r"backbone\.norm(\d)\.(\w+)", k):
            out[f"{enc}hidden_states_norms.stage{int(m[1]) + 1}.{m[2]}"] = v
        elif m := re.fullmatch(r"backbone\.stem\.conv1\.(weight|norm\.\w+)", k):
            leaf = "convolution.weight" if m[1] == "weight" else m[1].replace("norm.", "normalization.")
            out[enc + "embedder.embedder." + leaf] = v
        elif m := re.fullmatch(r"backbone\.res(\d)\.(\d+)\.(shortcut|conv\d)\.(weight|norm\.\w+)", k):
            unit = "shortcut" if m[3] == "shortcut" else f"layer.{int(m[3][4:]) - 1}"
            leaf = "convolution.weight" if m[4] == "weight" else m[4].replace("norm.", "normalization.")
            out[f"{enc}encoder.stages.{int(m[1]) - 2}.layers.{m[2]}.{unit}.{leaf}"] = v
        elif k == "sem_seg_head.pixel_decoder.transformer.level_embed":
            out[pd + "level_embed"] = v
        elif m := re.fullmatch(r"sem_seg_head\.pixel_decoder\.input_proj\.(.+)", k):
            out[pd + "input_projections." + m[1]] = v
        elif m := re.fullmatch(r"sem_seg_head\.pixel_decoder\.transformer\.encoder\.layers\.(\d+)\.(\w+)\.(.+)", k):
            sub = {"norm1": "self_attn_layer_norm", "linear1": "fc1", "linear2": "fc2", "norm2": "final_layer_norm",
                   "self_attn": "self_attn"}[m[2]]
            out[f"{pd}encoder.layers.{m[1]}.{sub}.{m[3]}"] = v
        elif m := re.fullmatch(r"sem_seg_head\.pixel_decoder\.mask_features\.(\w+)", k):
            out[pd + "mask_projection." + m[1]] = v
        elif m := re.fullmatch(r"sem_seg_head\.pixel_decoder\.(adapter_\d|layer_\d)\.(weight|norm\.\w+)", k):
            out[f"{pd}{m[1]}." + ("0.weight" if m[2] == "weight" else "1." + m[2][5:])] = v
        elif p[:2] == ["sem_seg_head", "predictor"]:
            rest = ".".join(p[2:])
            simple = {"query_embed.weight": "queries_embedder.weight", "query_feat.weight": "queries_features.weight",
                      "level_embed.weight": "level_embed.weight", "decoder_norm.weight": "decoder.layernorm.weight",
                      "decoder_norm.bias": "decoder.layernorm.bias"}
            if rest in simple:
                out[tm + simple[rest]] = v
            elif rest.startswith("class_embed."):
                out["class_predictor." + p[-1]] = v
            elif m := re.fullmatch(r"mask_embed\.layers\.(\d)\.(\w+)", rest):
                out[f"{tm}decoder.mask_predictor.mask_embedder.{m[1]}.0.{m[2]}"] = v
            elif m := re.fullmatch(r"transformer_self_attention_layers\.(\d+)\.(.+)", rest):
                lay = f"{tm}decoder.layers.{m[1]}."
                if m[2].startswith("self_attn.in_proj_"):
                    leaf = m[2].rsplit("_", 1)[1]
                    split3([f"{lay}self_attn.{n}_proj.{leaf}" for n in "qkv"], v)
                elif m[2].startswith("self_attn.out_proj."):
                    out[lay + "self_attn.out_proj." + p[-1]] = v
                else:
                    out[lay + "self_attn_layer_norm." + p[-1]] = v
            elif m := re.fullmatch(r"transformer_cross_attention_layers\.(\d+)\.(multihead_attn\.)?(.+)", rest):
                lay = f"{tm}decoder.layers.{m[1]}."
                out[lay + ("cross_attn." + m[3] if m[2] else "cross_attn_layer_norm." + p[-1])] = v
            elif m := re.fullmatch(r"transformer_ffn_layers\.(\d+)\.(linear1|linear2|norm)\.(\w+)", rest):
                sub = {"linear1": "fc1", "linear2": "fc2", "norm": "final_layer_norm"}[m[2]]
                out[f"{tm}decoder.layers.{m[1]}.{sub}.{m[3]}"] = v
            else:
                raise KeyError(k)
        elif k == "criterion.empty_weight":
            out[k] = v
        else:
            raise KeyError(k)
    return out


def write_hf_dir(path, state: dict[str, Tensor], *, heads: int = 8, naming: str = "file") -> None:
    """A ``save_pretrained``-like directory: config.json (model_type, heads) + model.safetensors."""
    import json

    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(json.dumps({"model_type": "mask2former", "num_attention_heads": heads}))
    write_safetensors(path / "model.safetensors", d2_to_hf(state, naming))


@pytest.fixture(scope="session")
def ckpt():
    """Checkpoint helpers above as attributes (test modules cannot import conftest)."""
    import types

    return types.SimpleNamespace(
        tiny_ckpt_config=tiny_ckpt_config, tiny_backbone=tiny_backbone, randomize_all_=randomize_all_,
        build_ckpt_model=build_ckpt_model, official_state=official_state, write_safetensors=write_safetensors,
        d2_to_hf=d2_to_hf, write_hf_dir=write_hf_dir,
    )
