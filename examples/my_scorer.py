"""A per-pixel scorer plug-in in one file.

    bench run --plugin examples/my_scorer.py --scorer mine,msp,rba --param mine.temperature=0.5 ...

or from Python: ``maskbench.scorers.load_plugins(["examples/my_scorer.py"])``, then ``get_scorer("mine")``.

A per-pixel scorer is ``fn(queries, *, hyperparameters with defaults) -> chunk function``: the outer function does
the per-image work on the class probabilities (``queries``: :class:`maskbench.scorers.Queries`), the chunk
function maps a chunk of pixels (:class:`maskbench.scorers.Pixels`: ``class_scores`` S ``(K, n)``, ``sigmoid``
σ(M) ``(Q, n)``, ``max_class_score``, ``log_sum_exp``, ``void_mass``, ...) to ``n`` scores, higher = more
anomalous. It shares P, σ(M) and S with every other scorer of the run, so it costs no extra pass over the mask
logits. Write into ``px.buffer(...)`` scratch tensors, never into the shared ones.
"""

import numbers

import torch

from maskbench.errors import InputError
from maskbench.scorers import Pixels, Queries, register_scorer


def mine(queries: Queries, *, temperature: float = 1.0):
    """``mine(x) = −Σ_k tanh(S_k(x) / T)``: RbA (Nayal et al., ICCV'23) with a temperature ``T`` (T = 1: RbA)."""

    def score(px: Pixels) -> torch.Tensor:
        scaled = torch.div(px.class_scores, temperature, out=px.buffer("mine.scaled", queries.void))
        return torch.sum(scaled.tanh_(), dim=0, out=px.buffer("mine")).neg_()

    return score


def _check(params: dict) -> dict:
    t = params["temperature"]
    if isinstance(t, bool) or not isinstance(t, numbers.Real) or not t > 0:
        raise InputError(f"mine: temperature must be a positive number, got {t!r}")
    params["temperature"] = float(t)
    return params


register_scorer("mine", mine, check=_check, reference="NazirNayal8/RbA evaluate_ood.py get_RbA, with a temperature")
