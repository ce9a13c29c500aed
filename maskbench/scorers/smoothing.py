"""Optional map post-process of any scorer: ``get_scorer(name, smoothing="gaussian")``.

``gaussian`` is RbA's smoothing (``NazirNayal8/RbA`` ``support.py`` ``OODEvaluator.compute_anomaly_scores(
use_gaussian_smoothing=True)``: ``torchvision.transforms.GaussianBlur(7, sigma=1)`` on the ``(1, H, W)`` score
map), built as torchvision's tensor ``gaussian_blur`` builds it: ``x = linspace(-3, 3, 7)``,
``g = exp(-x² / 2) / Σ exp(-x² / 2)`` in float32, kernel ``g gᵀ`` (an outer product), the map padded by 3
pixels in ``reflect`` mode (mirrored without repeating the edge pixel) and convolved (``conv2d``), float32 in
and out. The smoothing is one pass over the finished map, recorded in the scorer's ``params``.
"""

import torch
import torch.nn.functional as F

from maskbench.errors import InputError

#: Map post-processes by name -> what they do (the values ``smoothing`` takes; None = no post-process).
SMOOTHINGS = {
    "gaussian": "RbA's Gaussian smoothing: 7x7 kernel, sigma 1, reflect border (torchvision GaussianBlur(7, sigma=1))",
}
_KERNEL_SIZE = 7
_SIGMA = 1.0


def check_smoothing(value):
    """``value`` if it names a post-process in :data:`SMOOTHINGS` (or is None)."""
    if value is not None and value not in SMOOTHINGS:
        raise InputError(f"smoothing: expected one of {', '.join(SMOOTHINGS)} (or None), got {value!r}")
    return value


def gaussian_kernel(dtype: torch.dtype = torch.float32, device=None) -> torch.Tensor:
    """The ``(7, 7)`` kernel of torchvision's ``_get_gaussian_kernel2d([7, 7], [1.0, 1.0])``."""
    half = (_KERNEL_SIZE - 1) * 0.5
    x = torch.linspace(-half, half, steps=_KERNEL_SIZE, dtype=dtype, device=device)
    pdf = torch.exp(-0.5 * (x / _SIGMA).pow(2))
    g = pdf / pdf.sum()
    return torch.mm(g[:, None], g[None, :])


def smooth(name: str, score_map: torch.Tensor) -> torch.Tensor:
    """The post-process ``name`` of a float32 ``(H, W)`` map, as a new ``(H, W)`` map."""
    check_smoothing(name)
    h, w = score_map.shape
    pad = _KERNEL_SIZE // 2
    if h <= pad or w <= pad:
        raise InputError(f"smoothing {name!r}: a ({h}, {w}) map is too small for its {_KERNEL_SIZE}x{_KERNEL_SIZE} "
                         f"kernel with reflect padding (both sides must exceed {pad} pixels)")
    kernel = gaussian_kernel(score_map.dtype, score_map.device)[None, None]
    padded = F.pad(score_map[None, None], [pad, pad, pad, pad], mode="reflect")
    return F.conv2d(padded, kernel)[0, 0]
