"""A whole-map scorer plug-in in one file (for scorers that need spatial context).

    bench run --plugin examples/smoothed_msp.py --scorer smoothed_msp,msp --param smoothed_msp.size=7 ...

A map scorer is ``fn(class_logits (Q, K+1), mask_logits (Q, H, W), *, hyperparameters with defaults) -> (H, W)``
tensor, higher = more anomalous; it must not modify its inputs. maskbench checks the map (floating point,
``(H, W)``, finite) and stores it as float32. (Any scorer, built-in or plug-in, can also be smoothed with
RbA's Gaussian: ``--param NAME.smoothing=gaussian``.)
"""

import numbers

import torch
import torch.nn.functional as F

from maskbench.errors import InputError
from maskbench.scorers import register_map_scorer


def smoothed_msp(class_logits: torch.Tensor, mask_logits: torch.Tensor, *, size: int = 5) -> torch.Tensor:
    """``1 − max_k S_k(x)`` averaged over a ``size × size`` window (box filter, edge pixels repeated)."""
    probs = torch.softmax(class_logits.float(), dim=-1)[:, :-1]             # P over K+1, void dropped after
    s = torch.einsum("qk,qhw->khw", probs, torch.sigmoid(mask_logits.float()))  # S_k(x)
    msp = 1 - s.amax(dim=0)
    pad = size // 2
    padded = F.pad(msp[None, None], [pad, pad, pad, pad], mode="replicate")
    return F.avg_pool2d(padded, size, stride=1)[0, 0]


def _check(params: dict) -> dict:
    size = params["size"]
    if isinstance(size, bool) or not isinstance(size, numbers.Integral) or size < 1 or size % 2 == 0:
        raise InputError(f"smoothed_msp: size must be a positive odd integer, got {size!r}")
    params["size"] = int(size)
    return params


register_map_scorer("smoothed_msp", smoothed_msp, check=_check)
