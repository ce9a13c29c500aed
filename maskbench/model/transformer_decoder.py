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


def masked_multihead_attention(mha: nn.MultiheadAttention, query: Tensor, key: Tensor, value: Tensor,
                               blocked: Tensor | None = None) -> Tensor:
    """``nn.MultiheadAttention(query, key, value, attn_mask)`` (sequence-first ``[L, B, C]``, no dropout, no
    weights returned) computed as ``F.multi_head_attention_forward`` does, but with one blocked-key mask
    ``[B, Q, S]`` shared by all heads (True = blocked, added as -inf) instead of ``[B*heads, Q, S]`` copies."""
    heads = mha.num_heads
    lq, b, c = query.shape
    w_q, w_k, w_v = mha.in_proj_weight.chunk(3)
    b_q, b_k, b_v = mha.in_proj_bias.chunk(3)

    def split_heads(x: Tensor, weight: Tensor, bias: Tensor) -> Tensor:  # [L, B, C] -> [B, heads, L, C/heads]
        return F.linear(x, weight, bias).view(x.shape[0], b * heads, c // heads).transpose(0, 1).view(
            b, heads, x.shape[0], c // heads)

    mask = None
    if blocked is not None:
        mask = torch.zeros(blocked.shape, dtype=query.dtype, device=query.device).masked_fill_(blocked, float("-inf"))
        mask = mask.unsqueeze(1)
    out = F.scaled_dot_product_attention(split_heads(query, w_q, b_q), split_heads(key, w_k, b_k),
                                         split_heads(value, w_v, b_v), attn_mask=mask)
    out = out.permute(2, 0, 1, 3).reshape(lq * b, c)
    return F.linear(out, mha.out_proj.weight, mha.out_proj.bias).view(lq, b, c)


class SelfAttentionLayer(nn.Module):
    """``tgt = norm(tgt + MHA(q=k=tgt+query_pos, v=tgt))``."""

    def __init__(self, *, d_model: int, nhead: int) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(d_model, nhead, dropout=0.0)
        self.norm = nn.LayerNorm(d_model)
        _xavier_(self)

    def forward(self, tgt: Tensor, query_pos: Tensor) -> Tensor:
        q = tgt + query_pos
        return self.norm(tgt + masked_multihead_attention(self.self_attn, q, q, tgt))


class CrossAttentionLayer(nn.Module):
    """``tgt = norm(tgt + MHA(q=tgt+query_pos, k=memory+pos, v=memory, attn_mask))``."""

    def __init__(self, *, d_model: int, nhead: int) -> None:
        super().__init__()
        self.multihead_attn = nn.MultiheadAttention(d_model, nhead, dropout=0.0)
        self.norm = nn.LayerNorm(d_model)
        _xavier_(self)

    def forward(self, tgt: Tensor, memory: Tensor, *, mask_fg: Tensor, mask_bg: Tensor | None, pos: Tensor,
                query_pos: Tensor) -> Tensor:
        out = masked_multihead_attention(self.multihead_attn, tgt + query_pos, memory + pos, memory, mask_fg)
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
        fg = masked_multihead_attention(self.multihead_attn_foreground, q, k, memory, mask_fg)
        bg = masked_multihead_attention(self.multihead_attn_background, q, k, memory, mask_bg)
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

    def forward_prediction_heads(self, output: Tensor, mask_features: Tensor | None, level_features: Tensor
                                 ) -> tuple[Tensor, Tensor | None, Tensor, Tensor | None]:
        """output ``[Q, B, C]`` -> class logits ``[B, Q, K+1]``, mask logits ``[B, Q, H/4, W/4]`` (None when
        ``mask_features`` is None) and the blocked-key masks ``[B, Q, h*w]`` (foreground; background for GMA).

        ``level_features`` is ``interpolate(mask_features, (h, w), bilinear)`` flattened to ``[B, C, h*w]``:
        upstream resizes the mask logits ``E F`` instead, and bilinear resizing is linear, so
        ``interpolate(E F) = E interpolate(F)`` (equal up to float rounding) without the full-size product.
        Blocked: ``sigmoid(logit) < 0.5`` (GMA background: ``> 0.5``)."""
        decoded = self.decoder_norm(output).transpose(0, 1)
        outputs_class = self.class_embed(decoded)
        embed = self.mask_embed(decoded)
        outputs_mask = None
        if mask_features is not None:
            outputs_mask = torch.matmul(embed, mask_features.flatten(2)).unflatten(2, mask_features.shape[-2:])
        prob = torch.matmul(embed.detach(), level_features).sigmoid()
        mask_bg = (prob > 0.5) if self.gma else None
        return outputs_class, outputs_mask, prob < 0.5, mask_bg

    def forward(self, x: list[Tensor], mask_features: Tensor) -> dict[str, Tensor]:
        """x: per level ``[B, C, h_l, w_l]`` (coarsest first); mask_features ``[B, mask_dim, H/4, W/4]``.

        Mask logits at full size are computed only for the returned predictions (the last layer; every
        layer in training mode for ``aux_outputs``); the attention masks come from the mask features
        resized once per level (see :meth:`forward_prediction_heads`)."""
        if len(x) != self.num_feature_levels:
            raise ValueError(f"decoder built for {self.num_feature_levels} levels, got {len(x)}")
        sizes = [tuple(f.shape[-2:]) for f in x]
        pos = [self.pe_layer(f).flatten(2).permute(2, 0, 1) for f in x]
        src = [(f.flatten(2) + self.level_embed.weight[i][None, :, None]).permute(2, 0, 1) for i, f in enumerate(x)]
        level_features = [  # the attention masks are detached (no gradient), as upstream
            F.interpolate(mask_features.detach(), size=size, mode="bilinear", align_corners=False).flatten(2)
            for size in sizes
        ]
        bs = src[0].shape[1]
        query_embed = self.query_embed.weight.unsqueeze(1).repeat(1, bs, 1)
        output = self.query_feat.weight.unsqueeze(1).repeat(1, bs, 1)
        outputs_class, outputs_mask, mask_fg, mask_bg = self.forward_prediction_heads(
            output, mask_features if self.training else None, level_features[0])
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
            last = i == self.num_layers - 1
            outputs_class, outputs_mask, mask_fg, mask_bg = self.forward_prediction_heads(
                output, mask_features if self.training or last else None,
                level_features[(i + 1) % self.num_feature_levels])
        out = {"pred_logits": outputs_class, "pred_masks": outputs_mask}
        if self.training:
            out["aux_outputs"] = aux_outputs
        return out
