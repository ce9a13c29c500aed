"""Reference test-time pre- and post-processing around :class:`~maskbench.model.mask2former.Mask2Former`.

Follows ``facebookresearch/Mask2Former`` ``MaskFormer.forward`` (eval) with detectron2's helpers:

1. optional ``ResizeShortestEdge(1024, max 2048)`` (``int(x + 0.5)`` rounding, PIL bilinear on uint8);
2. ``(x - mean) / std`` on the RGB 0-255 scale, then zero-pad bottom/right to a multiple of 32;
3. forward; mask **logits** upsampled bilinearly (align_corners=False) from the padded 1/4 map to the
   padded size, padding cropped, then resized to the original image size (``sem_seg_postprocess``);
4. semantic scores ``einsum("qc,qhw->chw", softmax(class logits)[:, :-1], sigmoid(mask logits))``.

Only the crop window of the padded upsample is computed (bit-identical, see
:func:`postprocess_mask_logits`), so no padded full-resolution ``[Q, H, W]`` tensor is materialised.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from maskbench.errors import InputError
from maskbench.model.config import IMAGENET_PIXEL_MEAN, IMAGENET_PIXEL_STD
from maskbench.model.ms_deform_attn import MSDeformAttn, resolve_msda_backend

RESIZE_POLICIES = ("native", "short1024")


def resize_shortest_edge_shape(height: int, width: int, short_edge: int = 1024, max_size: int = 2048) -> tuple[int, int]:
    """detectron2 ``ResizeShortestEdge.get_output_shape``: scale the short side to ``short_edge``, cap the
    long side at ``max_size``, round with ``int(x + 0.5)``."""
    scale = short_edge * 1.0 / min(height, width)
    new_h, new_w = (short_edge * 1.0, scale * width) if height < width else (scale * height, short_edge * 1.0)
    if max(new_h, new_w) > max_size:
        scale = max_size * 1.0 / max(new_h, new_w)
        new_h, new_w = new_h * scale, new_w * scale
    return int(new_h + 0.5), int(new_w + 0.5)


def postprocess_mask_logits(pred_masks: Tensor, image_size: tuple[int, int], output_size: tuple[int, int]) -> Tensor:
    """``[Q, Hp/4, Wp/4]`` mask logits of the padded input -> ``[Q, *output_size]`` logits.

    Equals ``interpolate(m, size=(Hp, Wp))[:, :h, :w]`` followed by a bilinear resize to ``output_size``
    when it differs from ``image_size = (h, w)``. The padded upsample is computed only on the rows/columns
    the crop needs: with ``scale_factor=4`` the source coordinate ``(i + 0.5) / 4 - 0.5`` is the one
    ``size=(Hp, Wp)`` uses (scale ``Hp/4 / Hp``), and output row ``i < h`` reads source rows
    ``<= ceil(h/4)``, so cropping the input to ``ceil(h/4) + 1`` rows leaves the kept values unchanged.
    """
    h, w = image_size
    rows = min(pred_masks.shape[-2], math.ceil(h / 4) + 1)
    cols = min(pred_masks.shape[-1], math.ceil(w / 4) + 1)
    window = pred_masks[None, :, :rows, :cols]
    up = F.interpolate(window, scale_factor=4.0, mode="bilinear", align_corners=False)[0, :, :h, :w]
    if tuple(output_size) != (h, w):
        up = F.interpolate(up[None], size=tuple(output_size), mode="bilinear", align_corners=False)[0]
    return up


def semantic_inference(class_logits: Tensor, mask_logits: Tensor, rows_per_chunk: int = 256) -> Tensor:
    """``[Q, K+1]`` class logits, ``[Q, H, W]`` mask logits -> ``[K, H, W]`` unnormalised semantic scores:
    ``sum_q softmax(c_q)[k] * sigmoid(m_q)`` with the void column dropped **after** the softmax.
    Computed in row chunks so only one chunk of sigmoids exists at a time."""
    probs = class_logits.softmax(-1)[:, :-1]
    q, h, w = mask_logits.shape
    out = mask_logits.new_empty(probs.shape[1], h, w)
    for r in range(0, h, rows_per_chunk):
        out[:, r:r + rows_per_chunk] = torch.einsum("qc,qhw->chw", probs, mask_logits[:, r:r + rows_per_chunk].sigmoid())
    return out


@dataclass(frozen=True)
class Prediction:
    """What scorers need for one image.

    class_logits: ``[Q, K+1]`` (last column = void / no-object).
    mask_logits: ``[Q, H, W]`` at the original image size (before sigmoid).
    protocol: how they were produced (resize policy, processed and padded sizes, MSDA backend).
    """

    class_logits: Tensor
    mask_logits: Tensor
    protocol: dict = field(default_factory=dict)


class Predictor:
    """RGB uint8 image ``[H, W, 3]`` -> :class:`Prediction`, with the reference preprocessing.

    resize: ``"native"`` (no resize; detectron2's ResizeShortestEdge(1024, 2048) is the identity on
    1024x2048 Cityscapes-size images) or ``"short1024"`` (always apply ResizeShortestEdge(1024, 2048), as
    Mask2Anomaly's ``DefaultPredictor`` does).
    """

    def __init__(self, model: torch.nn.Module, *, resize: str = "native",
                 pixel_mean: tuple[float, float, float] = IMAGENET_PIXEL_MEAN,
                 pixel_std: tuple[float, float, float] = IMAGENET_PIXEL_STD, size_divisibility: int = 32) -> None:
        if resize not in RESIZE_POLICIES:
            raise InputError(f"resize={resize!r}: expected one of {RESIZE_POLICIES}")
        self.model = model
        self.resize = resize
        self.size_divisibility = size_divisibility
        self.device = next(model.parameters()).device
        self.pixel_mean = torch.tensor(pixel_mean, dtype=torch.float32, device=self.device).view(3, 1, 1)
        self.pixel_std = torch.tensor(pixel_std, dtype=torch.float32, device=self.device).view(3, 1, 1)
        # recorded: the backend the model's MSDeformAttn layers resolve to on this device
        layers = [m for m in model.modules() if isinstance(m, MSDeformAttn)]
        self.msda_backend = resolve_msda_backend(layers[0].backend if layers else None, self.device)

    def preprocess(self, image: np.ndarray | Tensor) -> tuple[Tensor, tuple[int, int]]:
        """``[H, W, 3]`` uint8 RGB -> (normalised, zero-padded ``[1, 3, Hp, Wp]``, processed size ``(h, w)``)."""
        array = image.cpu().numpy() if isinstance(image, Tensor) else np.asarray(image)
        if array.ndim != 3 or array.shape[2] != 3 or array.dtype != np.uint8 or min(array.shape[:2]) < 1:
            raise InputError(f"image: expected an RGB uint8 array [H, W, 3], got {array.dtype} {array.shape}")
        if self.resize == "short1024":
            new_h, new_w = resize_shortest_edge_shape(*array.shape[:2])
            array = np.asarray(Image.fromarray(array).resize((new_w, new_h), Image.BILINEAR))
        h, w = array.shape[:2]
        x = torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1))).to(self.device, torch.float32)
        x = (x - self.pixel_mean) / self.pixel_std
        d = self.size_divisibility
        x = F.pad(x, (0, -w % d, 0, -h % d), value=0.0)
        return x[None], (h, w)

    @torch.no_grad()
    def __call__(self, image: np.ndarray | Tensor) -> Prediction:
        height, width = int(image.shape[0]), int(image.shape[1])
        pixels, size = self.preprocess(image)
        out = self.model(pixels)
        mask_logits = postprocess_mask_logits(out["pred_masks"][0], size, (height, width))
        protocol = {
            "resize": self.resize,
            "processed_size": list(size),
            "padded_size": list(pixels.shape[-2:]),
            "msda_backend": self.msda_backend,
            "mask_logits": "bilinear from padded 1/4 map, crop, bilinear to image size (before sigmoid)",
        }
        return Prediction(class_logits=out["pred_logits"][0], mask_logits=mask_logits, protocol=protocol)

    @torch.no_grad()
    def semantic(self, image: np.ndarray | Tensor) -> Tensor:
        """``[K, H, W]`` semantic scores in upstream order: einsum at the processed size, then resize the
        scores to the original size (argmax over K gives the label map)."""
        height, width = int(image.shape[0]), int(image.shape[1])
        pixels, size = self.preprocess(image)
        out = self.model(pixels)
        scores = semantic_inference(out["pred_logits"][0], postprocess_mask_logits(out["pred_masks"][0], size, size))
        if size != (height, width):
            scores = F.interpolate(scores[None], size=(height, width), mode="bilinear", align_corners=False)[0]
        return scores
