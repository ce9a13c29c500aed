"""``bench train``'s options -> the :class:`~maskbench.train.loop.TrainConfig` it runs (one place for the defaults).

Without a recipe (``none``) and without ``init``: the shipped model from scratch (first schedule and restarts);
with ``init``: one schedule from those weights; ``gma``: the GMA twin (:data:`GMA_TWIN`, from the shipped model).
A fine-tuning recipe (:data:`~maskbench.train.recipes.RECIPES`) starts from the shipped inlier model (the GMA twin
for ``m2a-cl``) with the common fine-tune budget :data:`~maskbench.train.recipes.FINETUNE` at
``lr_ratio`` x the base learning rate. Explicit options override whatever the recipe sets.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from maskbench.errors import InputError
from maskbench.train.loop import TrainConfig
from maskbench.train.recipes import BASE_WEIGHTS, FINETUNE, GMA_WEIGHTS, RECIPES

#: The GMA twin: the shipped masked model's weights, every cross-attention layer swapped for GMA, fine-tuned.
GMA_TWIN = {"iterations": 800, "lr": 4e-4, "refine_iterations": 0}


def train_config(*, recipe: str = "none", gma: bool = False, init: str | Path | None = None,
                 iterations: int | None = None, refine_iterations: int | None = None,
                 refine_rounds: int | None = None, stop_after: int | None = None, lr: float | None = None,
                 seed: int = 0, threads: int = 2) -> TrainConfig:
    """The training configuration of these options (None: the default of the recipe or of the shipped model)."""
    if recipe not in RECIPES:
        raise InputError(f"unknown training recipe {recipe!r}; choose from {', '.join(RECIPES)}")
    cfg = TrainConfig(seed=seed, threads=threads)
    if recipe != "none":
        if gma:
            raise InputError(f"recipe {recipe!r} sets its own architecture; the GMA twin is trained without a recipe")
        r = RECIPES[recipe]
        start = init or (GMA_WEIGHTS if r.gma else BASE_WEIGHTS)
        cfg = replace(cfg, recipe=recipe, init=str(start), lr=cfg.lr * r.lr_ratio,
                      model={**cfg.model, "gma": r.gma}, **FINETUNE)
    elif gma:
        cfg = replace(cfg, model={**cfg.model, "gma": True}, **GMA_TWIN, init=str(init or BASE_WEIGHTS))
    elif init is not None:
        cfg = replace(cfg, init=str(init), refine_iterations=0)
    if refine_iterations is not None:
        cfg = replace(cfg, refine_iterations=refine_iterations)
    if refine_rounds is not None:
        cfg = replace(cfg, refine_rounds=refine_rounds)
    if lr is not None:
        cfg = replace(cfg, lr=lr)
    if iterations is not None:
        cfg = replace(cfg, iterations=iterations, stop_after=None)
    if stop_after is not None:
        cfg = replace(cfg, stop_after=stop_after)
    return cfg
