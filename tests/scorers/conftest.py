"""Synthetic Mask2Former forward outputs for the scorer tests."""

import pytest
import torch


def make_forward(seed, q=12, k=4, h=8, w=10, *, confident=(), void_bias=3.0, dtype=torch.float32):
    """Class logits ``(q, k+1)`` and mask logits ``(q, h, w)``; ``confident`` = ((query, class, boost), ...).

    Like a trained model, most queries predict void (``void_bias`` on the void column). Mask logits are
    spread (σ from ~0.001 to ~0.9) so that every threshold in the scorers is crossed.
    """
    g = torch.Generator().manual_seed(seed)
    class_logits = torch.randn(q, k + 1, generator=g) * 1.5
    class_logits[:, k] += void_bias
    for query, cls, boost in confident:
        class_logits[query, cls] += boost
    mask_logits = torch.randn(q, h, w, generator=g) * 3.0 - 3.0
    return class_logits.to(dtype), mask_logits.to(dtype)


@pytest.fixture
def forward():
    return make_forward
