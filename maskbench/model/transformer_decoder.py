"""Mask2Former transformer decoder with masked attention, and Mask2Anomaly's global masked attention (GMA).

Upstream: ``facebookresearch/Mask2Former`` ``mask2former_transformer_decoder.py``
(``MultiScaleMaskedTransformerDecoder``) and ``shyam671/Mask2Anomaly-...`` (``GlobalCrossAttentionLayer``,
``MultiScaleMaskedTransformerDecoder_GMA``). Sequence-first tensors ``[L, B, C]``; every layer is post-norm;
layer order cross-attention -> self-attention -> FFN; layer i attends to level ``i % num_levels`` (level 0 =
coarsest). Masks use the ``nn.MultiheadAttention`` convention: True = blocked.

Masked attention (Mask2Former Eq. 2): ``X = softmax(M + Q K^T) V + X`` with ``M = -inf`` where
``sigmoid(mask logits) < 0.5``. GMA (Mask2Anomaly ICCV'23 Eq. 10, as coded):
``X = LN(X + MHA_fg(X; M_F) + MHA_bg(X; M_B))`` with foreground blocked where p < 0.5 and background
blocked where p > 0.5, two independent attention modules, and the "fully blocked row -> unblocked" rule
applied to each mask.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from maskbench.model.position_encoding import PositionEmbeddingSine


def _xavier_(module: nn.Module) -> None:
    for p in module.parameters():
        if p.dim() > 1:
            nn.init.xavier_uniform_(p)


def unblock_full_rows(mask: Tensor) -> Tensor:
    """Rows (query, head) whose keys are all blocked attend everywhere instead (upstream fix)."""
    return mask & ~mask.all(-1, keepdim=True)


class SelfAttentionLayer(nn.Module):
    """``tgt = norm(tgt + MHA(q=k=tgt+query_pos, v=tgt))``."""

    def __init__(self, *, d_model: int, nhead: int) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(d_model, nhead, dropout=0.0)
        self.norm = nn.LayerNorm(d_model)
        _xavier_(self)

    def forward(self, tgt: Tensor, query_pos: Tensor) -> Tensor:
        q = k = tgt + query_pos
        return self.norm(tgt + self.self_attn(q, k, value=tgt, need_weights=False)[0])


class CrossAttentionLayer(nn.Module):
    """``tgt = norm(tgt + MHA(q=tgt+query_pos, k=memory+pos, v=memory, attn_mask))``."""

    def __init__(self, *, d_model: int, nhead: int) -> None:
        super().__init__()
        self.multihead_attn = nn.MultiheadAttention(d_model, nhead, dropout=0.0)
        self.norm = nn.LayerNorm(d_model)
        _xavier_(self)

    def forward(self, tgt: Tensor, memory: Tensor, *, mask_fg: Tensor, mask_bg: Tensor | None, pos: Tensor,
                query_pos: Tensor) -> Tensor:
        out = self.multihead_attn(tgt + query_pos, memory + pos, value=memory, attn_mask=mask_fg, need_weights=False)[0]
        return self.norm(tgt + out)


class GlobalCrossAttentionLayer(nn.Module):
    """GMA: ``tgt = norm(tgt + (MHA_bg(.., M_B) + MHA_fg(.., M_F)))``, two independent attentions.

    The checkpoint's unused ``fusion_layer`` (Conv2d 200->100) is not built; loaders drop its weights.
    """

    def __init__(self, *, d_model: int, nhead: int) -> None:
        super().__init__()
        self.multihead_attn_foreground = nn.MultiheadAttention(d_model, nhead, dropout=0.0)
        self.multihead_attn_background = nn.MultiheadAttention(d_model, nhead, dropout=0.0)
        self.norm = nn.LayerNorm(d_model)
        _xavier_(self)

    def forward(self, tgt: Tensor, memory: Tensor, *, mask_fg: Tensor, mask_bg: Tensor | None, pos: Tensor,
                query_pos: Tensor) -> Tensor:
        q, k = tgt + query_pos, memory + pos
        fg = self.multihead_attn_foreground(q, k, value=memory, attn_mask=mask_fg, need_weights=False)[0]
        bg = self.multihead_attn_background(q, k, value=memory, attn_mask=mask_bg, need_weights=False)[0]
        return self.norm(tgt + (bg + fg))


class FFNLayer(nn.Module):
    """``tgt = norm(tgt + linear2(relu(linear1(tgt))))``."""

    def __init__(self, *, d_model: int, dim_feedforward: int) -> None:
        super().__init__()
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.norm = nn.LayerNorm(d_model)
        _xavier_(self)

    def forward(self, tgt: Tensor) -> Tensor:
        return self.norm(tgt + self.linear2(F.relu(self.linear1(tgt))))


class MLP(nn.Module):
    """Linear layers with ReLU in between (attribute ``layers``)."""

    def __init__(self, *, input_dim: int, hidden_dim: int, output_dim: int, num_layers: int) -> None:
        super().__init__()
        dims = [input_dim] + [hidden_dim] * (num_layers - 1)
        self.layers = nn.ModuleList(nn.Linear(n, k) for n, k in zip(dims, dims[1:] + [output_dim]))

    def forward(self, x: Tensor) -> Tensor:
        for i, layer in enumerate(self.layers):
            x = F.relu(layer(x)) if i < len(self.layers) - 1 else layer(x)
        return x


class MultiScaleMaskedTransformerDecoder(nn.Module):
    """Queries -> (pred_logits ``[B, Q, K+1]``, pred_masks ``[B, Q, H/4, W/4]``) of the last layer; in
    training mode also ``aux_outputs``, the ``dec_layers`` earlier predictions (deep supervision).

    ``gma=True`` swaps every cross-attention layer for :class:`GlobalCrossAttentionLayer`.
    """

    def __init__(self, *, num_classes: int, num_queries: int, num_feature_levels: int, dec_layers: int,
                 hidden_dim: int, nheads: int, dim_feedforward: int, mask_dim: int, gma: bool) -> None:
        super().__init__()
        self.num_heads = nheads
        self.num_layers = dec_layers
        self.num_feature_levels = num_feature_levels
        self.gma = gma
        self.pe_layer = PositionEmbeddingSine(num_pos_feats=hidden_dim // 2)
        cross = GlobalCrossAttentionLayer if gma else CrossAttentionLayer
        self.transformer_self_attention_layers = nn.ModuleList(
            SelfAttentionLayer(d_model=hidden_dim, nhead=nheads) for _ in range(dec_layers))
        self.transformer_cross_attention_layers = nn.ModuleList(
            cross(d_model=hidden_dim, nhead=nheads) for _ in range(dec_layers))
        self.transformer_ffn_layers = nn.ModuleList(
            FFNLayer(d_model=hidden_dim, dim_feedforward=dim_feedforward) for _ in range(dec_layers))
        self.decoder_norm = nn.LayerNorm(hidden_dim)
        self.query_feat = nn.Embedding(num_queries, hidden_dim)
        self.query_embed = nn.Embedding(num_queries, hidden_dim)
        self.level_embed = nn.Embedding(num_feature_levels, hidden_dim)
        self.class_embed = nn.Linear(hidden_dim, num_classes + 1)
        self.mask_embed = MLP(input_dim=hidden_dim, hidden_dim=hidden_dim, output_dim=mask_dim, num_layers=3)

    def forward_prediction_heads(self, output: Tensor, mask_features: Tensor, target_size: tuple[int, int]
                                 ) -> tuple[Tensor, Tensor, Tensor, Tensor | None]:
        """output ``[Q, B, C]`` -> class logits ``[B, Q, K+1]``, mask logits ``[B, Q, H/4, W/4]`` and the
        blocked-key masks ``[B*heads, Q, h*w]`` at ``target_size`` (foreground; background for GMA)."""
        decoded = self.decoder_norm(output).transpose(0, 1)
        outputs_class = self.class_embed(decoded)
        outputs_mask = torch.einsum("bqc,bchw->bqhw", self.mask_embed(decoded), mask_features)
        prob = F.interpolate(outputs_mask, size=target_size, mode="bilinear", align_corners=False).sigmoid()
        prob = prob.flatten(2).unsqueeze(1).repeat(1, self.num_heads, 1, 1).flatten(0, 1).detach()
        mask_bg = (prob > 0.5) if self.gma else None
        return outputs_class, outputs_mask, prob < 0.5, mask_bg

    def forward(self, x: list[Tensor], mask_features: Tensor) -> dict[str, Tensor]:
        """x: per level ``[B, C, h_l, w_l]`` (coarsest first); mask_features ``[B, mask_dim, H/4, W/4]``."""
        if len(x) != self.num_feature_levels:
            raise ValueError(f"decoder built for {self.num_feature_levels} levels, got {len(x)}")
        sizes = [tuple(f.shape[-2:]) for f in x]
        pos = [self.pe_layer(f).flatten(2).permute(2, 0, 1) for f in x]
        src = [(f.flatten(2) + self.level_embed.weight[i][None, :, None]).permute(2, 0, 1) for i, f in enumerate(x)]
        bs = src[0].shape[1]
        query_embed = self.query_embed.weight.unsqueeze(1).repeat(1, bs, 1)
        output = self.query_feat.weight.unsqueeze(1).repeat(1, bs, 1)
        outputs_class, outputs_mask, mask_fg, mask_bg = self.forward_prediction_heads(output, mask_features, sizes[0])
        aux_outputs = []  # intermediate predictions, kept in training mode for deep supervision
        for i in range(self.num_layers):
            if self.training:
                aux_outputs.append({"pred_logits": outputs_class, "pred_masks": outputs_mask})
            lvl = i % self.num_feature_levels
            mask_fg = unblock_full_rows(mask_fg)
            mask_bg = unblock_full_rows(mask_bg) if mask_bg is not None else None
            output = self.transformer_cross_attention_layers[i](
                output, src[lvl], mask_fg=mask_fg, mask_bg=mask_bg, pos=pos[lvl], query_pos=query_embed)
            output = self.transformer_self_attention_layers[i](output, query_embed)
            output = self.transformer_ffn_layers[i](output)
            outputs_class, outputs_mask, mask_fg, mask_bg = self.forward_prediction_heads(
                output, mask_features, sizes[(i + 1) % self.num_feature_levels])
        out = {"pred_logits": outputs_class, "pred_masks": outputs_mask}
        if self.training:
            out["aux_outputs"] = aux_outputs
        return out
