"""The miniature road world: procedural, deterministic road scenes with the Cityscapes taxonomy and
anomalies of no known class, written in the official layouts that maskbench's readers load.

``ensure_world()`` generates (once, into a cache folder) and returns a :class:`World`; ``world.path(split)``
is a dataset root, ``world.dataset(split)`` reads it back. ``render_scene(seed)`` renders one frame
(image, train ids, anomaly instances) without touching the disk. See :mod:`.scene` (the renderer, with
:mod:`.paint`, :mod:`.ground`, :mod:`.street`, :mod:`.clutter`, :mod:`.anomalies`, :mod:`.shading`) and
:mod:`.splits` (layouts, label encodings, cache).
"""

from maskbench.datasets.world.paint import WORLD_TRAIN_IDS
from maskbench.datasets.world.scene import Scene, render_scene
from maskbench.datasets.world.splits import (
    DATASET_NAMES, EVAL_SPLITS, SPLITS, VERSION, World, WorldConfig, cache_dir, ensure_world, frame_ids,
    render_frame, training_set,
)

__all__ = ["DATASET_NAMES", "EVAL_SPLITS", "SPLITS", "VERSION", "WORLD_TRAIN_IDS", "Scene", "World", "WorldConfig",
           "cache_dir", "ensure_world", "frame_ids", "render_frame", "render_scene", "training_set"]
