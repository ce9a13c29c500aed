"""Load Mask2Former checkpoints: detectron2 ``.pkl``, trainer ``.pth``, Hugging Face directories.

``load_model(path, **overrides) -> (model, LoadReport)``:

1. read the tensors safely (:mod:`.checkpoint_io`);
2. infer the architecture from tensor shapes (research notes ``forward.md`` §3.7, :func:`infer_config`),
   then apply ``overrides`` (any :class:`Mask2FormerConfig` field);
3. build the model with detectron2 module names and load every tensor by exact name. Keys known to be
   harmless (:data:`IGNORED_KEYS`) are dropped with their reason; with ``strict=True`` (default) anything
   else missing, unexpected or shape-mismatched raises :class:`InputError` naming the file.

Not inferable from shapes: the decoder head count (``in_proj`` packs all heads; 8 in every published
model, read from ``config.json`` for HF directories) and ``n_points`` (4 upstream; the encoder head count
is derived from it). Pass ``nheads=`` / ``n_points=`` to override.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor, nn

from maskbench.errors import InputError
from maskbench.model.build import build_model_with_backbone
from maskbench.model.checkpoint_io import read_checkpoint
from maskbench.model.config import FEATURE_STRIDES, Mask2FormerConfig
from maskbench.model.resnet import ResNet
from maskbench.model.swin import SwinTransformer

#: Checkpoint or model keys that are never loaded, each with the reason.
IGNORED_KEYS: tuple[tuple[str, str], ...] = (
    (r"criterion\.empty_weight", "SetCriterion loss buffer (class weights), training only"),
    (r".*\.num_batches_tracked", "BatchNorm step counter, unused in eval (FrozenBN has none)"),
    (r"backbone\.layers\.\d+\.blocks\.\d+\.attn\.relative_position_index",
     "Swin index buffer, recomputed from the window size (a stored copy must equal it)"),
    (r"sem_seg_head\.predictor\.transformer_cross_attention_layers\.\d+\.fusion_layer\.(weight|bias)",
     "Mask2Anomaly GMA 1x1 conv defined in each layer but never called by forward"),
)
_IGNORED = [(re.compile(p), reason) for p, reason in IGNORED_KEYS]

# --- architecture inference --------------------------------------------------------------------------

def _count(state: dict[str, Tensor], pattern: str) -> int:
    """Number of distinct integers captured by ``pattern`` (one group) over the keys."""
    rx = re.compile(pattern)
    return len({m[1] for k in state if (m := rx.fullmatch(k))})


def infer_config(state: dict[str, Tensor], path: Path, *, n_points: int = 4) -> tuple[dict, dict]:
    """Shapes -> ``(Mask2FormerConfig fields, backbone width kwargs)`` (``forward.md`` §3.7).

    The encoder head count is ``attention_weights`` rows / (levels * n_points)."""
    def shape(key: str) -> tuple[int, ...]:
        if key not in state:
            raise InputError(f"{path}: cannot infer the architecture: tensor {key!r} is missing "
                             "(not a detectron2/HF Mask2Former semantic-segmentation checkpoint?)")
        return tuple(state[key].shape)

    pd, pr = "sem_seg_head.pixel_decoder.", "sem_seg_head.predictor."
    fields: dict = {}
    backbone_kwargs: dict = {}
    if "backbone.res2.0.conv1.weight" in state:
        blocks = _count(state, r"backbone\.res4\.(\d+)\.conv1\.weight")
        depth = {6: 50, 23: 101}.get(blocks)
        if depth is None:
            raise InputError(f"{path}: ResNet with {blocks} res4 blocks; only R50 (6) and R101 (23) are supported")
        fields.update(backbone="resnet", resnet_depth=depth)
        backbone_kwargs = {"stem_channels": shape("backbone.stem.conv1.weight")[0],
                           "res2_channels": shape("backbone.res2.0.conv3.weight")[0]}
    elif "backbone.patch_embed.proj.weight" in state:
        embed_dim = shape("backbone.patch_embed.proj.weight")[0]
        depths = tuple(_count(state, rf"backbone\.layers\.{s}\.blocks\.(\d+)\.norm1\.weight") for s in range(4))
        heads = tuple(shape(f"backbone.layers.{s}.blocks.0.attn.relative_position_bias_table")[1] for s in range(4))
        rows = shape("backbone.layers.0.blocks.0.attn.relative_position_bias_table")[0]
        window = (math.isqrt(rows) + 1) // 2
        if (2 * window - 1) ** 2 != rows:
            raise InputError(f"{path}: relative_position_bias_table has {rows} rows, not (2*window-1)^2")
        fields.update(backbone="swin", swin_embed_dim=embed_dim, swin_depths=depths, swin_num_heads=heads,
                      swin_window_size=window)
        backbone_kwargs = {"mlp_ratio": shape("backbone.layers.0.blocks.0.mlp.fc1.weight")[0] / embed_dim}
    else:
        raise InputError(f"{path}: unknown backbone: neither 'backbone.res2.0.conv1.weight' (ResNet) nor "
                         "'backbone.patch_embed.proj.weight' (Swin) is present")

    levels = shape(pd + "transformer.level_embed")[0]
    if not 1 <= levels <= 4:
        raise InputError(f"{path}: pixel decoder has {levels} encoder levels; expected 1 to 4")
    in_features = tuple(FEATURE_STRIDES)[4 - levels:]
    att_rows = shape(pd + "transformer.encoder.layers.0.self_attn.attention_weights.weight")[0]
    num_fpn = _count(state, re.escape(pd) + r"adapter_(\d+)\.weight")
    fields.update(
        num_classes=shape(pr + "class_embed.weight")[0] - 1,
        num_queries=shape(pr + "query_feat.weight")[0],
        hidden_dim=shape(pr + "query_feat.weight")[1],
        dec_layers=_count(state, re.escape(pr) + r"transformer_ffn_layers\.(\d+)\.linear1\.weight"),
        dim_feedforward=shape(pr + "transformer_ffn_layers.0.linear1.weight")[0],
        conv_dim=shape(pd + "input_proj.0.0.weight")[0],
        mask_dim=shape(pd + "mask_features.weight")[0],
        enc_layers=_count(state, re.escape(pd) + r"transformer\.encoder\.layers\.(\d+)\.linear1\.weight"),
        enc_dim_feedforward=shape(pd + "transformer.encoder.layers.0.linear1.weight")[0],
        enc_nheads=max(att_rows // (levels * n_points), 1),
        transformer_in_features=in_features,
        common_stride=FEATURE_STRIDES[in_features[0]] // 2**num_fpn,
        n_points=n_points,
        gma=any(".multihead_attn_foreground." in k for k in state),
    )
    return fields, backbone_kwargs


def _build_backbone(cfg: Mask2FormerConfig, widths: dict) -> nn.Module:
    if cfg.backbone == "resnet":
        kwargs = {k: v for k, v in widths.items() if k in ("stem_channels", "res2_channels")}
        return ResNet(depth=cfg.resnet_depth, norm="FrozenBN", **kwargs)
    kwargs = {k: v for k, v in widths.items() if k == "mlp_ratio"}
    return SwinTransformer(embed_dim=cfg.swin_embed_dim, depths=tuple(cfg.swin_depths),
                           num_heads=tuple(cfg.swin_num_heads), window_size=cfg.swin_window_size,
                           pretrain_img_size=cfg.swin_pretrain_img_size, **kwargs)


# --- loading with a report -----------------------------------------------------------------------------

def group_keys(keys) -> list[str]:
    """Compact listing: keys that differ only in integer path components share one line,
    e.g. ``sem_seg_head.predictor.transformer_ffn_layers.{0..8}.linear1.weight``."""
    groups: dict[tuple[str, ...], list[list[str]]] = {}
    for key in sorted(keys):
        parts = key.split(".")
        pattern = tuple("#" if p.isdigit() else p for p in parts)
        groups.setdefault(pattern, []).append(parts)
    lines = []
    for pattern, members in groups.items():
        rendered = []
        for i, p in enumerate(pattern):
            if p != "#":
                rendered.append(p)
                continue
            values = sorted({int(m[i]) for m in members})
            if len(values) == 1:
                rendered.append(str(values[0]))
            elif values == list(range(values[0], values[-1] + 1)) and len(values) > 2:
                rendered.append(f"{{{values[0]}..{values[-1]}}}")
            else:
                rendered.append("{" + ",".join(map(str, values)) + "}")
        lines.append(".".join(rendered) + (f"  ({len(members)} keys)" if len(members) > 1 else ""))
    return lines


@dataclass(frozen=True)
class LoadReport:
    """What happened to every tensor when loading ``path`` (returned as data, never logged).

    matched: loaded by exact name. missing: model tensors absent from the file. unexpected: file tensors the
    model does not have. shape_mismatched: ``(key, file shape, model shape)``. ignored: dropped keys with
    the reason (:data:`IGNORED_KEYS`, HF-only tensors).
    """

    path: str
    format: str
    config: Mask2FormerConfig
    matched: tuple[str, ...]
    missing: tuple[str, ...]
    unexpected: tuple[str, ...]
    shape_mismatched: tuple[tuple[str, tuple[int, ...], tuple[int, ...]], ...]
    ignored: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.shape_mismatched)

    def problems(self) -> str:
        """Grouped listing of missing / unexpected / mismatched keys ("" when :attr:`ok`)."""
        lines = []
        for title, keys in (("missing from the file", self.missing), ("unexpected in the file", self.unexpected)):
            if keys:
                lines.append(f"{title} ({len(keys)}):")
                lines += [f"  {g}" for g in group_keys(keys)]
        if self.shape_mismatched:
            lines.append(f"mismatched ({len(self.shape_mismatched)}), file vs model shape (equal shapes: a stored "
                         "relative_position_index differing from the recomputed one):")
            lines += [f"  {k}: {tuple(a)} vs {tuple(b)}" for k, a, b in self.shape_mismatched]
        return "\n".join(lines)


def _ignore_reason(key: str) -> str | None:
    return next((reason for rx, reason in _IGNORED if rx.fullmatch(key)), None)


def load_state(model: nn.Module, state: dict[str, Tensor], *, path: Path, fmt: str, cfg: Mask2FormerConfig,
               strict: bool, ignored: dict[str, str] | None = None, unmatched: list[str] = ()) -> LoadReport:
    """Copy ``state`` into ``model`` by exact name and describe the outcome; raise on problems if ``strict``."""
    own = model.state_dict()
    ignored = dict(ignored or {})
    matched, unexpected, mismatched = [], list(unmatched), []
    for key, value in state.items():
        reason = _ignore_reason(key)
        if key in own and (tuple(value.shape) != tuple(own[key].shape)
                           or reason is not None and not torch.equal(value.to(own[key].dtype), own[key])):
            mismatched.append((key, tuple(value.shape), tuple(own[key].shape)))  # includes a differing index
        elif reason is not None:
            ignored[key] = reason
        elif key in own:
            matched.append(key)
        else:
            unexpected.append(key)
    missing = []
    for key in own:
        if key not in state:
            if (reason := _ignore_reason(key)) is not None:
                ignored.setdefault(key, reason)
            else:
                missing.append(key)
    report = LoadReport(path=str(path), format=fmt, config=cfg, matched=tuple(matched), missing=tuple(missing),
                        unexpected=tuple(unexpected), shape_mismatched=tuple(mismatched), ignored=ignored)
    if strict and not report.ok:
        raise InputError(f"{path}: checkpoint does not match the inferred architecture "
                         f"({cfg.backbone}, {cfg.dec_layers} decoder layers, {len(cfg.transformer_in_features)} "
                         f"levels, gma={cfg.gma}); pass strict=False or config overrides to load anyway:\n"
                         + report.problems())
    with torch.no_grad():
        for key in matched:
            own[key].copy_(state[key])
    return report


def load_model(path: str | Path, *, strict: bool = True, **overrides) -> tuple[nn.Module, LoadReport]:
    """Read a checkpoint, infer its architecture, build the model and load every tensor.

    path: detectron2 ``.pkl``, torch ``.pth``/``.pt``/``.bin``, or a HF ``save_pretrained`` directory.
    strict: raise :class:`InputError` (naming the file, keys grouped) unless every non-ignored tensor
        loads exactly; ``False`` loads what matches and returns the report.
    overrides: :class:`Mask2FormerConfig` fields that take precedence over the inferred ones
        (e.g. ``msda_backend="torch"``, ``nheads=8``).
    Returns ``(model in eval mode, LoadReport)``.
    """
    path = Path(path)
    unknown = sorted(set(overrides) - set(Mask2FormerConfig.__dataclass_fields__))
    if unknown:
        raise InputError(f"load_model overrides {unknown}: not Mask2FormerConfig fields")
    raw = read_checkpoint(path)
    fields, widths = infer_config(raw.state, path, n_points=overrides.get("n_points", 4))
    cfg = Mask2FormerConfig(**{**fields, **raw.hints, **overrides})
    model = build_model_with_backbone(cfg, _build_backbone(cfg, widths))
    report = load_state(model, raw.state, path=path, fmt=raw.format, cfg=cfg, strict=strict, ignored=raw.ignored,
                        unmatched=raw.unmatched)
    return model.eval(), report
