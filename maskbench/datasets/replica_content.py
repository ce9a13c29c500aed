"""What every replica is made of: the :class:`Replica` record, smooth random images, ``ood`` maps with void
bands and anomaly rectangles, and the PNG / JPEG writers (see :mod:`.replica` for the recipe)."""

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from maskbench.fileio import atomic_write

JPEG_TOLERANCE = 8


@dataclass(frozen=True)
class Replica:
    """A written replica: pass ``root`` (and ``options``) to ``load_dataset``; ``samples`` is what it yields."""

    name: str
    root: Path
    samples: tuple
    files: dict = field(default_factory=dict)  # frame id -> {role: path}, for tests that corrupt a file
    options: dict = field(default_factory=dict)
    image_tolerance: int = 0
    unlabelled: tuple = ()  # frames without labels (``ood`` None) that ``frames="all"`` adds to ``samples``
    variants: dict = field(default_factory=dict)  # (option, value) -> the samples that option selects

    def all_samples(self):
        """What ``load_dataset(name, root, frames="all", **options)`` yields: labelled and unlabelled, by id."""
        return tuple(sorted(self.samples + self.unlabelled, key=lambda s: s.id))


# -- content ---------------------------------------------------------------------------------------------------
def smooth_image(rng, h, w, *, lossy):
    """A smooth gradient between four random corner colours; plus per-pixel noise when stored losslessly."""
    corners = rng.integers(0, 256, size=(2, 2, 3)).astype(np.float64)
    y = np.linspace(0, 1, h)[:, None, None]
    x = np.linspace(0, 1, w)[None, :, None]
    img = (corners[0, 0] * (1 - y) * (1 - x) + corners[0, 1] * (1 - y) * x
           + corners[1, 0] * y * (1 - x) + corners[1, 1] * y * x)
    if not lossy:
        img = img + rng.integers(-20, 21, size=img.shape)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def rect(rng, h, w, top=0):
    """A random rectangle (as slices) inside rows ``top..h``, at least 4x4 pixels."""
    y0 = int(rng.integers(top, h - 4))
    x0 = int(rng.integers(0, w - 4))
    return slice(y0, int(rng.integers(y0 + 4, min(h, y0 + h // 3) + 1))), slice(x0, int(rng.integers(x0 + 4, min(w, x0 + w // 3) + 1)))


def ood_map(rng, h, w, *, void=True, anomalies=2):
    """0 background, a void band at the top (and a void patch), ``anomalies`` anomaly rectangles below it."""
    ood = np.zeros((h, w), np.uint8)
    if void:
        ood[: int(rng.integers(h // 8, h // 4))] = 255
        ood[rect(rng, h, w, top=h // 4)] = 255
    for _ in range(anomalies):
        ood[rect(rng, h, w, top=h // 4)] = 1
    return ood


def save(path, array, **kwargs):
    """Write ``array`` as the image format of ``path``'s suffix, atomically (no fsync: a replica or world split is
    written into a fresh folder, and an interrupted one is written again)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path, sync=False) as handle:
        Image.fromarray(array).save(handle, format=Image.registered_extensions()[path.suffix.lower()], **kwargs)
    return path


def save_jpg(path, array):
    return save(path, array, quality=95, subsampling=0)
