"""The world's outlier pool: the analogue of the MS-COCO objects that outlier-exposure recipes paste into
training crops (AnomalyMix; Mask2Anomaly TPAMI'24 §7.3, RbA's ``mask_former_semantic_coco_mix_dataset_mapper.py``,
Open-set-M2F's ``mask_former_semantic_dataset_mapper_traffic_oe.py``), and the pasting itself.

**Disjoint from the evaluation anomalies by construction.** The pool has its own generator of objects, written
here without importing the scene renderer: another shape family (:data:`POOL_SHAPES`: polyomino, branch,
stroke, shard), another palette (:func:`pool_colour`, luma/chroma draws instead of hue/saturation/value) and
another texture generator (:data:`POOL_TEXTURES`: voronoi, marble, plasma, brushed), with its own photometry
(light ramp, blur, sensor noise), drawn from another seed stream (``SeedSequence([seed, POOL_SEED_CODE, index])``;
the world's splits use the codes 1-5). Nothing here is written into a world split: objects exist only as arrays
pasted into training crops.

Object ``i`` of the pool is a spec drawn from its own seed (:func:`outlier_spec`) and rasterised at any size
(:func:`render_outlier`, longest side ``extent`` pixels). Per-pixel arithmetic is IEEE-exact (``+ - * /``,
comparisons, floor; no libm on arrays) so the same seed gives the same bytes on every platform.
"""

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

POOL_SEED_CODE = 101  # the pool's seed stream; the world's splits use SPLIT_CODES 1..5
POOL_SIZE = 300  # objects, as the 300 MS-COCO images RbA (COCO_PROXY_SIZE) and Mask2Anomaly (§7.3) sample
POOL_SHAPES = ("polyomino", "branch", "stroke", "shard")
POOL_TEXTURES = ("voronoi", "marble", "plasma", "brushed")
#: Longest side of a pasted object in pixels: Open-set-M2F pastes ADE20k objects of 96-384 px into 1024x2048
#: Cityscapes frames; the world's frames are 256x512, a quarter of that, so 24-96 px.
EXTENT_RANGE = (24, 96)


@dataclass(frozen=True, eq=False)
class OutlierObject:
    """A rasterised pool object: ``image`` uint8 (h, w, 3), ``mask`` bool (h, w), its shape and texture family."""

    image: np.ndarray
    mask: np.ndarray
    shape: str
    texture: str


@dataclass(frozen=True)
class PasteConfig:
    """What a recipe pastes into each training crop.

    probability: chance that a crop receives outliers (one draw per crop, as the references' dataset mappers
    draw one per image); objects: how many pool objects a receiving crop gets; label: the value written into
    the label map on their pixels (254 "outlier" for RbA / Mask2Anomaly, 255 ignore for EAM).
    """

    probability: float
    objects: int
    label: int
    extent: tuple = EXTENT_RANGE
    pool_size: int = POOL_SIZE
    pool_seed: int = 0


def pool_seed(seed, index):
    """The seed sequence of pool object ``index``."""
    return np.random.SeedSequence([int(seed), POOL_SEED_CODE, int(index)])


def pool_colour(rng):
    """An RGB colour from luma ``Y`` and a chroma vector (``Cb``, ``Cr``) of random angle and length (BT.601)."""
    luma = float(rng.uniform(25, 230))
    angle, radius = 2 * math.pi * float(rng.random()), float(rng.uniform(0, 120))
    cb, cr = radius * math.cos(angle), radius * math.sin(angle)
    rgb = (luma + 1.402 * cr, luma - 0.344136 * cb - 0.714136 * cr, luma + 1.772 * cb)
    return [min(255.0, max(0.0, c)) for c in rgb]


def outlier_spec(seed, index):
    """Everything object ``index`` is made of, drawn from its own seed: family, geometry, palette, texture, look."""
    rng = np.random.default_rng(pool_seed(seed, index))
    shape = POOL_SHAPES[int(rng.integers(len(POOL_SHAPES)))]
    texture = POOL_TEXTURES[int(rng.integers(len(POOL_TEXTURES)))]
    spec = {"shape": shape, "texture": texture, "aspect": math.exp(float(rng.uniform(-0.6, 0.6))),
            "palette": [pool_colour(rng) for _ in range(int(rng.integers(2, 5)))]}
    if shape == "polyomino":
        g = int(rng.integers(3, 6))
        cells = {(int(rng.integers(g)), int(rng.integers(g)))}
        for _ in range(int(rng.integers(3, g * g * 2 // 3 + 1))):
            cy, cx = sorted(cells)[int(rng.integers(len(cells)))]
            dy, dx = ((0, 1), (1, 0), (0, -1), (-1, 0))[int(rng.integers(4))]
            cells.add((min(g - 1, max(0, cy + dy)), min(g - 1, max(0, cx + dx))))
        spec["geometry"] = {"grid": g, "cells": sorted(cells)}
    elif shape == "branch":
        segments, tips = [], [((0.5, 1.0), -math.pi / 2, 0.45)]
        for _ in range(int(rng.integers(2, 5))):  # generations: every tip forks in two
            grown = []
            for (x, y), heading, length in tips:
                end = (x + length * math.cos(heading), y + length * math.sin(heading))
                segments.append(((x, y), end))
                grown += [(end, heading + s * float(rng.uniform(0.3, 0.9)), length * float(rng.uniform(0.5, 0.8)))
                          for s in (-1, 1)]
            tips = grown
        spec["geometry"] = {"segments": segments, "width": float(rng.uniform(0.05, 0.12))}
    elif shape == "stroke":
        points, heading, x, y = [], float(rng.uniform(0, 2 * math.pi)), 0.0, 0.0
        for _ in range(int(rng.integers(6, 14))):
            points.append((x, y))
            heading += float(rng.uniform(-1.2, 1.2))
            x, y = x + math.cos(heading), y + math.sin(heading)
        spec["geometry"] = {"points": points + [(x, y)], "width": float(rng.uniform(0.1, 0.22))}
    else:  # shard: the convex hull of a few random points
        spec["geometry"] = {"points": _convex_hull([(float(rng.random()), float(rng.random()))
                                                    for _ in range(int(rng.integers(5, 10)))])}
    if texture == "voronoi":
        spec["texture_params"] = {"sites": rng.random((int(rng.integers(4, 13)), 2)).tolist(),
                                  "colours": rng.integers(0, len(spec["palette"]), 12).tolist(),
                                  "border": float(rng.uniform(0.0, 0.04))}
    elif texture == "marble":
        spec["texture_params"] = {"direction": (float(rng.uniform(-1, 1)), float(rng.uniform(-1, 1))),
                                  "bands": float(rng.uniform(2, 7)), "turbulence": float(rng.uniform(0.2, 1.2))}
    elif texture == "plasma":
        spec["texture_params"] = {"cells": int(rng.integers(2, 6)), "strength": float(rng.uniform(40, 110))}
    else:
        spec["texture_params"] = {"axis": int(rng.integers(3)), "streak": float(rng.uniform(0.75, 0.95))}
    spec["look"] = {"light": (float(rng.uniform(-0.4, 0.4)), float(rng.uniform(-0.4, 0.4))),
                    "blur": float(rng.uniform(0.0, 1.0)), "noise": int(rng.integers(2, 12)),
                    "seed": int(rng.integers(2 ** 31))}
    return spec


def render_outlier(seed, index, extent):
    """Pool object ``index`` rasterised with its longest side ``extent`` pixels (an :class:`OutlierObject`)."""
    spec = outlier_spec(seed, index)
    extent = max(3, int(extent))
    aspect = spec["aspect"]
    w = extent if aspect >= 1 else max(3, int(round(extent * aspect)))
    h = extent if aspect < 1 else max(3, int(round(extent / aspect)))
    mask = _shape_mask(spec["shape"], spec["geometry"], h, w)
    look = spec["look"]
    rng = np.random.default_rng(look["seed"] + extent)  # the per-size noise of this object
    rgb = _texture(spec["texture"], spec["texture_params"], spec["palette"], rng, h, w)
    ys = np.arange(h, dtype=np.float32)[:, None] / np.float32(h)
    xs = np.arange(w, dtype=np.float32)[None, :] / np.float32(w)
    ramp = 1.0 + np.float32(look["light"][0]) * (xs - 0.5) + np.float32(look["light"][1]) * (ys - 0.5)
    img = Image.fromarray(np.clip(rgb * ramp[..., None] + 0.5, 0, 255).astype(np.uint8))
    img = np.asarray(img.filter(ImageFilter.BoxBlur(look["blur"])), dtype=np.int16)
    noise = rng.integers(-look["noise"], look["noise"] + 1, (h, w, 3), dtype=np.int16)
    image = np.clip(img + noise, 0, 255).astype(np.uint8)
    return OutlierObject(image, mask, spec["shape"], spec["texture"])


def paste_outliers(rng, images, labels, config):
    """Copies of ``images`` [B, H, W, 3] and ``labels`` [B, H, W] with pool objects pasted (AnomalyMix).

    Per crop: with ``config.probability``, ``config.objects`` times a random pool object, random longest side in
    ``config.extent`` (at most the crop's shorter side), at a random position where it fits whole (the
    references' ``random.randint(0, H - h)``), its pixels overwriting the image and set to ``config.label``.
    Every draw comes from ``rng`` (a ``numpy.random.Generator``). Returns ``(images, labels, pasted)`` with
    ``pasted`` [B] bool.
    """
    images, labels = images.copy(), labels.copy()
    _, H, W = labels.shape
    pasted = np.zeros(len(labels), bool)
    lo, hi = config.extent
    for b in range(len(labels)):
        if not rng.random() < config.probability:
            continue
        pasted[b] = True
        for _ in range(config.objects):
            index = int(rng.integers(config.pool_size))
            extent = min(int(rng.integers(lo, hi + 1)), H, W)
            obj = render_outlier(config.pool_seed, index, extent)
            h, w = obj.mask.shape
            y, x = int(rng.integers(0, H - h + 1)), int(rng.integers(0, W - w + 1))
            images[b, y:y + h, x:x + w][obj.mask] = obj.image[obj.mask]
            labels[b, y:y + h, x:x + w][obj.mask] = config.label
    return images, labels, pasted


# -- geometry ---------------------------------------------------------------------------------------------------------
def _convex_hull(points):
    """Andrew's monotone chain: the hull's vertices in order."""
    pts = sorted(set(points))

    def half(seq):
        out = []
        for p in seq:
            while len(out) >= 2 and ((out[-1][0] - out[-2][0]) * (p[1] - out[-2][1])
                                     - (out[-1][1] - out[-2][1]) * (p[0] - out[-2][0])) <= 0:
                out.pop()
            out.append(p)
        return out[:-1]

    return half(pts) + half(pts[::-1])


def _fit(points):
    """Points scaled into the unit square, keeping their proportions, centred."""
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    span = max(max(xs) - min(xs), max(ys) - min(ys), 1e-6)
    ox, oy = (1 - (max(xs) - min(xs)) / span) / 2, (1 - (max(ys) - min(ys)) / span) / 2
    return [((x - min(xs)) / span + ox, (y - min(ys)) / span + oy) for x, y in points]


def _shape_mask(shape, geo, h, w):
    canvas = Image.new("L", (w, h), 0)
    draw = ImageDraw.Draw(canvas)
    sx, sy = w - 1, h - 1
    if shape == "polyomino":  # the occupied cells' bounding grid fills the box
        y0, x0 = min(c[0] for c in geo["cells"]), min(c[1] for c in geo["cells"])
        gy, gx = max(c[0] for c in geo["cells"]) - y0 + 1, max(c[1] for c in geo["cells"]) - x0 + 1
        for cy, cx in geo["cells"]:
            cy, cx = cy - y0, cx - x0
            draw.rectangle([cx * w / gx, cy * h / gy, (cx + 1) * w / gx - 1, (cy + 1) * h / gy - 1], fill=1)
    elif shape in ("branch", "stroke"):
        width = max(2, int(round(geo["width"] * min(h, w))))
        pad = geo["width"] / 2
        if shape == "branch":
            ends = _fit([p for seg in geo["segments"] for p in seg])
            lines = [ends[i:i + 2] for i in range(0, len(ends), 2)]
        else:
            lines = [_fit(geo["points"])]
        for line in lines:
            pts = [((pad + x * (1 - 2 * pad)) * sx, (pad + y * (1 - 2 * pad)) * sy) for x, y in line]
            draw.line(pts, fill=1, width=width, joint="curve")
    else:
        draw.polygon([(x * sx, y * sy) for x, y in _fit(geo["points"])], fill=1)
    mask = np.asarray(canvas, dtype=bool)
    if not mask.any():
        mask = mask.copy()
        mask[h // 2, w // 2] = True
    return mask


# -- textures -----------------------------------------------------------------------------------------------------------
def _value_noise(rng, h, w, cells):
    """Uniform values on a ``cells`` x ``cells`` lattice, bilinearly interpolated to (h, w), in [0, 1]."""
    lattice = rng.random((cells + 1, cells + 1), dtype=np.float32)
    return np.asarray(Image.fromarray(lattice, mode="F").resize((w, h), Image.BILINEAR), dtype=np.float32)


def _texture(kind, params, palette, rng, h, w):
    """(h, w, 3) float32 colours of a texture family over the object's box."""
    pal = np.asarray(palette, np.float32)
    ys = np.arange(h, dtype=np.float32)[:, None] / np.float32(max(h, w))
    xs = np.arange(w, dtype=np.float32)[None, :] / np.float32(max(h, w))
    if kind == "voronoi":
        sites = np.asarray(params["sites"], np.float32) * np.float32([w, h]) / np.float32(max(h, w))
        d = np.stack([(xs - sx) * (xs - sx) + (ys - sy) * (ys - sy) for sx, sy in sites])
        order = np.argsort(d, axis=0, kind="stable")
        nearest = np.take_along_axis(d, order[:2], axis=0) if len(sites) > 1 else np.stack([d[0], d[0] + 1])
        colours = pal[np.asarray(params["colours"])[order[0] % len(params["colours"])] % len(pal)]
        edge = (nearest[1] - nearest[0]) < np.float32(params["border"])
        return colours * np.where(edge, np.float32(0.55), np.float32(1.0))[..., None]
    if kind == "marble":
        dx, dy = params["direction"]
        v = (xs * np.float32(dx) + ys * np.float32(dy)) * np.float32(params["bands"]) \
            + np.float32(params["turbulence"]) * (_value_noise(rng, h, w, 3) + 0.5 * _value_noise(rng, h, w, 6))
        t = np.abs(2 * (v - np.floor(v)) - 1)[..., None]  # triangle wave in [0, 1]
        return pal[0] * (1 - t) + pal[1] * t
    if kind == "plasma":
        channels = [_value_noise(rng, h, w, params["cells"]) - 0.5 for _ in range(3)]
        return pal[0] + np.float32(params["strength"]) * np.stack(channels, axis=-1)
    noise = rng.random((h, w), dtype=np.float32)  # brushed: noise averaged along one direction
    axis, keep = params["axis"], np.float32(1 - params["streak"])
    streaks = noise.copy()
    for i in range(1, h if axis == 0 else w):
        if axis == 0:
            streaks[i] = keep * streaks[i] + (1 - keep) * streaks[i - 1]
        elif axis == 1:
            streaks[:, i] = keep * streaks[:, i] + (1 - keep) * streaks[:, i - 1]
        else:
            streaks[1:, i] = keep * streaks[1:, i] + (1 - keep) * streaks[:-1, i - 1]
    lo, hi = streaks.min(), streaks.max()
    return pal[0] * (0.6 + 0.8 * (streaks - lo) / max(hi - lo, np.float32(1e-6)))[..., None]
