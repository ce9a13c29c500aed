"""Training loop of the embedded tiny Mask2Former on the miniature world's inlier ``train`` split.

Deterministic: one seed drives torch (weights, point sampling) and numpy (crop/flip order); data are read
in the main process; ``torch.use_deterministic_algorithms(True)``. Same seed, same thread count, same
platform -> bit-identical weights. The checkpoint is a detectron2-layout state dict (``{"model": ...}``)
with BatchNorm folded to ``FrozenBatchNorm2d`` keys, so :func:`maskbench.model.checkpoint.load_model`
loads it like any real checkpoint.
"""

from __future__ import annotations

import csv
import json
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from maskbench.datasets.world import WorldConfig, ensure_world
from maskbench.datasets.world.outliers import paste_outliers
from maskbench.errors import InputError
from maskbench.fileio import atomic_path, write_text
from maskbench.model.build import build_model_with_backbone
from maskbench.model.checkpoint_io import read_checkpoint
from maskbench.model.config import IMAGENET_PIXEL_MEAN, IMAGENET_PIXEL_STD, Mask2FormerConfig
from maskbench.model.resnet import ResNet
from maskbench.train.losses import SetCriterion
from maskbench.train.recipes import PASTE_SEED_CODE, RECIPES, build_criterion, trainable_parameters
from maskbench.train.val_miou import evaluate_miou

# The shipped model: the R50 block layout at 1/8 width (stem 16, res2..res5 32/64/128/256), two deformable
# encoder layers, three masked-attention decoder layers, 24 queries, width 64. ``nheads`` is 8 because
# head counts of the decoder cannot be read from tensor shapes and 8 is the loader's default.
TINY_CONFIG = Mask2FormerConfig(
    num_classes=19, num_queries=24, dec_layers=3, hidden_dim=64, nheads=8, dim_feedforward=256,
    conv_dim=64, mask_dim=64, enc_layers=2, enc_nheads=4, enc_dim_feedforward=256,
)
TINY_BACKBONE = {"stem_channels": 16, "res2_channels": 32}


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of one training run (all recorded in the summary).

    iterations: length of the learning-rate schedule; stop_after: iterations actually run (None: all).
    Stopping early changes nothing before the stop, so the weights after ``stop_after`` steps equal the
    checkpoint a full run writes at that iteration. ``init``: a checkpoint to start from instead of random
    weights (:func:`init_from_checkpoint`; the GMA twin starts from the shipped masked model).
    ``refine_iterations`` / ``refine_lr`` / ``refine_rounds``: restarts (fresh AdamW, warm-up and poly decay
    again, same seed), each started from the previous schedule's final weights exactly as ``--init`` would
    start it; none when ``refine_iterations`` or ``refine_rounds`` is 0, and none after a run stopped early.
    The defaults reproduce the shipped model: 5600 iterations at 8e-4, then three restarts of 1200 at 2e-4
    (``results/training/summary.json`` records the time on 2 idle CPU cores). ``recipe``: a name of
    :data:`~maskbench.train.recipes.RECIPES` (trainable parameters, pasted outliers, dense outlier loss);
    ``none`` trains every parameter on inliers only.
    """

    seed: int = 0
    iterations: int = 5600
    stop_after: int | None = None
    batch_size: int = 8
    crop: tuple = (128, 256)
    lr: float = 8e-4
    weight_decay: float = 0.05
    warmup: int = 50
    clip_grad: float = 1.0
    num_points: int = 2048
    eval_every: int = 250
    val_frames: int = 50
    threads: int = 2
    model: dict = field(default_factory=lambda: asdict(TINY_CONFIG))
    backbone: dict = field(default_factory=lambda: dict(TINY_BACKBONE))
    init: str | None = None
    refine_iterations: int = 1200
    refine_lr: float = 2e-4
    refine_rounds: int = 3
    recipe: str = "none"


def build_trainable(cfg: Mask2FormerConfig, backbone: dict, norm: str = "BN") -> torch.nn.Module:
    """The model in training mode; ``norm="BN"``: trainable BatchNorm in the backbone (frozen to
    ``FrozenBatchNorm2d`` when saved), ``"FrozenBN"``: fixed statistics, as at inference (a frozen backbone)."""
    model = build_model_with_backbone(cfg, ResNet(depth=cfg.resnet_depth, norm=norm, **backbone))
    return model.train()


def init_from_checkpoint(model: torch.nn.Module, path: str | Path) -> None:
    """Load a trained checkpoint (any format :func:`~maskbench.model.checkpoint_io.read_checkpoint` reads) into
    ``model`` (same architecture, or its GMA twin).

    Equal keys are copied. A GMA model built from a masked-attention checkpoint takes each layer's
    cross-attention for its foreground branch (Mask2Anomaly Eq. 10, ``MHA(.., M_F)``) and a copy for its
    background branch with the output projection set to zero, so the twin starts as exactly the masked model's
    function and the background branch is learned by fine-tuning. Any other missing or mis-shaped tensor is an
    error naming the key.
    """
    state = read_checkpoint(path).state
    own = model.state_dict()
    loaded = {}
    for key, tensor in own.items():
        if key in state:
            source = state[key]
        elif ".multihead_attn_foreground." in key:
            source = state.get(key.replace("multihead_attn_foreground", "multihead_attn"))
        elif ".multihead_attn_background." in key:
            source = state.get(key.replace("multihead_attn_background", "multihead_attn"))
            if source is not None and ".out_proj." in key:
                source = torch.zeros_like(source)
        elif key.endswith("num_batches_tracked"):
            source = tensor
        else:
            source = None
        if source is None or source.shape != tensor.shape:
            raise InputError(f"{path}: cannot initialise {key} {tuple(tensor.shape)} "
                             f"({'missing' if source is None else f'shape {tuple(source.shape)}'})")
        loaded[key] = source
    model.load_state_dict(loaded)


def semantic_targets(labels: np.ndarray, num_classes: int) -> dict[str, Tensor]:
    """``[H, W]`` train ids (255 ignore, 254 pasted outlier) -> one target per present class: ``labels [T]``,
    ``masks [T, H, W]`` (Mask2Former's ``MaskFormerSemanticDatasetMapper``: ignore and outlier pixels belong to no
    mask), and the label map itself, ``sem_seg [H, W]``, for dense outlier losses."""
    present = [c for c in np.unique(labels) if c < num_classes]
    masks = np.stack([labels == c for c in present]) if present else np.zeros((0, *labels.shape), bool)
    return {"labels": torch.as_tensor(present, dtype=torch.long), "masks": torch.from_numpy(masks).float(),
            "sem_seg": torch.from_numpy(np.ascontiguousarray(labels))}


def normalise(images: np.ndarray) -> Tensor:
    """``[B, H, W, 3]`` uint8 RGB -> ``[B, 3, H, W]`` ``(x - mean) / std`` (the checkpoint's preprocessing)."""
    x = torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2))).float()
    mean = torch.tensor(IMAGENET_PIXEL_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_PIXEL_STD).view(1, 3, 1, 1)
    return (x - mean) / std


def load_split(dataset) -> tuple[np.ndarray, np.ndarray]:
    """All frames of a dataset in memory: images ``[N, H, W, 3]`` uint8, train ids ``[N, H, W]`` uint8."""
    samples = [dataset[i] for i in range(len(dataset))]
    return np.stack([s.image for s in samples]), np.stack([s.semantic for s in samples])


def random_batch(rng: np.random.Generator, images: np.ndarray, labels: np.ndarray, batch_size: int,
                 crop: tuple) -> tuple[np.ndarray, np.ndarray]:
    """``batch_size`` random crops of random frames, each flipped left-right with probability 1/2."""
    n, h, w = labels.shape
    ch, cw = crop
    idx = rng.integers(0, n, batch_size)
    ys, xs = rng.integers(0, h - ch + 1, batch_size), rng.integers(0, w - cw + 1, batch_size)
    flips = rng.random(batch_size) < 0.5
    out_i, out_l = [], []
    for i, y, x, f in zip(idx, ys, xs, flips):
        img, lab = images[i, y:y + ch, x:x + cw], labels[i, y:y + ch, x:x + cw]
        if f:
            img, lab = img[:, ::-1], lab[:, ::-1]
        out_i.append(img)
        out_l.append(lab)
    return np.stack(out_i), np.stack(out_l)


def export_state_dict(model: torch.nn.Module) -> dict[str, Tensor]:
    """detectron2-layout tensors for the checkpoint: BatchNorm's ``num_batches_tracked`` dropped, so the
    backbone norms load as ``FrozenBatchNorm2d`` (same function in eval mode)."""
    return {k: v.detach().clone().contiguous() for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}


def poly_lr(it: int, cfg: TrainConfig) -> float:
    """Linear warm-up, then poly decay with power 0.9 (Mask2Former's WarmupPolyLR)."""
    warm = min(1.0, (it + 1) / cfg.warmup)
    return cfg.lr * warm * (1 - it / cfg.iterations) ** 0.9


def train_step(model: torch.nn.Module, criterion: SetCriterion, optimizer: torch.optim.Optimizer,
               images: np.ndarray, labels: np.ndarray, clip_grad: float) -> tuple[Tensor, dict[str, Tensor]]:
    """One optimisation step on a batch (uint8 images, train-id labels): forward, matching and losses,
    backward, gradient-norm clipping, update. Returns the total loss and its terms."""
    targets = [semantic_targets(lab, criterion.num_classes) for lab in labels]
    losses = criterion(model(normalise(images)), targets)
    loss = sum(losses.values())
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), clip_grad)
    optimizer.step()
    return loss, losses


def train(cfg: TrainConfig, out: Path, *, train_data: tuple[np.ndarray, np.ndarray],
          val_data: tuple[np.ndarray, np.ndarray] | None = None, log=print) -> dict:
    """Train from scratch; write ``out/model.pth`` (final), ``out/log.csv`` and ``out/summary.json``; with
    refinement schedules the earlier schedules' files go to ``out/stage1/``, ``out/stage2/``, ... and ``out/``
    holds the last one's.

    Returns the summary (final val mIoU when ``val_data`` is given)."""
    out.mkdir(parents=True, exist_ok=True)
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(cfg.threads)
    torch.use_deterministic_algorithms(True)
    try:
        stopped_early = cfg.stop_after is not None and cfg.stop_after < cfg.iterations
        if not cfg.refine_iterations or not cfg.refine_rounds or stopped_early:
            return _train(cfg, out, train_data, val_data, log)
        stages = [_train(replace(cfg, refine_iterations=0), out / "stage1", train_data, val_data, log)]
        for k in range(1, cfg.refine_rounds + 1):
            start = out / f"stage{k}" / "model.pth"
            log(f"refining from {start}: {cfg.refine_iterations} iterations at lr {cfg.refine_lr}")
            restart = replace(cfg, init=str(start), iterations=cfg.refine_iterations, lr=cfg.refine_lr,
                              stop_after=None, refine_iterations=0)
            stages.append(_train(restart, out if k == cfg.refine_rounds else out / f"stage{k + 1}", train_data,
                                 val_data, log))
        summary = stages[-1]
        summary.update(train_config=asdict(cfg), stages=stages[:-1],
                       seconds=round(sum(stage["seconds"] for stage in stages), 1))
        write_text(out / "summary.json", json.dumps(summary, indent=1))
        return summary
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)


def _train(cfg: TrainConfig, out: Path, train_data, val_data, log) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    if cfg.recipe not in RECIPES:
        raise InputError(f"unknown training recipe {cfg.recipe!r}; choose from {', '.join(RECIPES)}")
    recipe = RECIPES[cfg.recipe]
    model_cfg = Mask2FormerConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in cfg.model.items()})
    model = build_trainable(model_cfg, cfg.backbone, norm="FrozenBN" if recipe.frozen_backbone else "BN")
    if cfg.init is not None:
        init_from_checkpoint(model, cfg.init)
    trainable_parameters(model, recipe)
    criterion = build_criterion(recipe, model_cfg.num_classes, cfg.num_points)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=cfg.lr,
                                  weight_decay=cfg.weight_decay)
    paste_rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, PASTE_SEED_CODE]))
    images, labels = train_data
    rows, start, last_val, last_ious = [], time.time(), None, None
    log_path = out / "log.csv"
    fields = ["iteration", "seconds", "lr", "loss", "loss_ce", "loss_mask", "loss_dice"]
    fields += ["loss_outlier"] * (recipe.loss is not None) + ["val_miou"]
    with open(log_path, "w", newline="") as f:
        csv.writer(f).writerow(fields)
    steps = cfg.iterations if cfg.stop_after is None else min(cfg.stop_after, cfg.iterations)
    for it in range(steps):
        lr = poly_lr(it, cfg)
        for group in optimizer.param_groups:
            group["lr"] = lr
        batch = random_batch(rng, images, labels, cfg.batch_size, tuple(cfg.crop))
        if recipe.paste is not None:
            batch = paste_outliers(paste_rng, *batch, recipe.paste)[:2]
        loss, losses = train_step(model, criterion, optimizer, *batch, cfg.clip_grad)
        last = it + 1 == steps
        val = None
        if val_data is not None and ((it + 1) % cfg.eval_every == 0 or last):
            val, last_ious = evaluate_miou(model, *val_data, model_cfg.num_classes)
            last_val = val
        row = {"iteration": it + 1, "seconds": round(time.time() - start, 1), "lr": lr, "loss": float(loss.detach()),
               "loss_ce": float(losses["loss_ce"].detach()), "loss_mask": float(losses["loss_mask"].detach()),
               "loss_dice": float(losses["loss_dice"].detach()), "val_miou": val}
        if recipe.loss is not None:
            row["loss_outlier"] = float(losses["loss_outlier"].detach())
        rows.append(row)
        if (it + 1) % 10 == 0 or val is not None or last:
            with open(log_path, "a", newline="") as f:
                w = csv.writer(f)
                for r in rows:
                    w.writerow([r[k] if r[k] is not None else "" for k in fields])
            rows = []
            log(f"it {it + 1}/{steps} {row['seconds']}s lr {lr:.2e} loss {float(loss.detach()):.3f}"
                + (f" val mIoU {val:.4f}" if val is not None else ""))
        if val is not None:
            with atomic_path(out / "model.pth") as path:  # torch.save names its archive after the file: keep the name
                torch.save({"model": export_state_dict(model), "iteration": it + 1}, path)
    with atomic_path(out / "model.pth") as path:
        torch.save({"model": export_state_dict(model), "iteration": steps}, path)
    summary = {"train_config": asdict(cfg), "seconds": round(time.time() - start, 1), "final_val_miou": last_val,
               "final_val_iou_per_class": last_ious and {str(k): v for k, v in enumerate(last_ious) if v is not None},
               "torch": torch.__version__, "threads": cfg.threads}
    write_text(out / "summary.json", json.dumps(summary, indent=1))
    return summary


def train_on_world(cfg: TrainConfig, out: Path, *, world_config=None, log=print) -> dict:
    """Generate (if needed) the world's ``train`` and ``val`` splits, then :func:`train` on them."""
    world = ensure_world(("train", "val"), config=world_config or WorldConfig())
    train_data = load_split(world.dataset("train"))
    val_images, val_labels = load_split(world.dataset("val"))
    log(f"world {world.root}: {len(train_data[0])} training frames, {len(val_images)} val frames")
    summary = train(cfg, out, train_data=train_data, val_data=(val_images[:cfg.val_frames], val_labels[:cfg.val_frames]),
                    log=log)
    summary["world"] = {"root": str(world.root), "config": asdict(world.config)}
    write_text(out / "summary.json", json.dumps(summary, indent=1))
    return summary
