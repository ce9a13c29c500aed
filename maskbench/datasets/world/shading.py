"""Shading turns the material canvas into pixels: texture noise, tiles, fence bars, window glass, anomaly patterns,
shadows, sky gradient and clouds, aerial perspective or fog, exposure and white balance, lens blur and sensor
noise. Only IEEE-exact arithmetic and integer blur and noise touch per-pixel arrays; every draw comes from the
frame's generator."""

import math

import numpy as np
from PIL import Image, ImageFilter

from maskbench.datasets.world.paint import BARS, NOISE_WEIGHTS, PATTERN, TILES


def unit_noise(rng, shape):
    """Zero-mean, unit-variance triangular noise from two uniform draws (exact bit arithmetic, no libm)."""
    return (rng.random(shape, dtype=np.float32) + rng.random(shape, dtype=np.float32) - 1.0) * np.float32(6 ** 0.5)


def smooth_noise(rng, h, w, cell):
    small = unit_noise(rng, (max(2, h // cell + 2), max(2, w // cell + 2)))
    return np.asarray(Image.fromarray(small, mode="F").resize((w, h), Image.BILINEAR), dtype=np.float32)


def pattern_weight(spec, xs, ys, fine, medium):
    """Weight (0..1) of the second colour of an anomaly pattern at pixels (``xs``, ``ys``)."""
    kind, period = spec["pattern"], spec["period"]
    if kind == "checker":
        return ((np.floor(xs / period) + np.floor(ys / period)) % 2).astype(np.float32)
    if kind == "stripes":
        t = xs * math.cos(spec["angle"]) + ys * math.sin(spec["angle"])
        return (np.floor(t / period) % 2).astype(np.float32)
    if kind == "dots":
        dx, dy = xs % period - period / 2, ys % period - period / 2
        return (dx * dx + dy * dy < (0.3 * period) ** 2).astype(np.float32)
    if kind == "speckle":
        return (fine > 0.6).astype(np.float32)
    if kind == "gradient":
        lo, hi = ys.min(), ys.max()
        return ((ys - lo) / max(hi - lo, 1.0)).astype(np.float32)
    if kind == "camouflage":
        return (medium > 0.2).astype(np.float32)
    return np.zeros(xs.shape, np.float32)


def shade_image(rng, p, ids, gdepth, u, cam):
    """Pixels of the material canvas ``ids``; multiplicative texture maps are built full-frame (no indexing)."""
    h, w = ids.shape
    kind = np.asarray(p.kind, np.int64)
    fine = unit_noise(rng, (h, w))
    medium = smooth_noise(rng, h, w, 3)
    smooth = smooth_noise(rng, h, w, 24)
    weights = NOISE_WEIGHTS[kind] * np.asarray(p.amp, np.float32)[:, None]  # per material
    factor = 1.0 + np.take(weights[:, 0], ids) * fine + np.take(weights[:, 1], ids) * medium \
        + np.take(weights[:, 2], ids) * smooth
    kmap = np.take(kind, ids)
    param = np.take(np.asarray(p.param, np.float32), ids)
    depth = np.take(np.asarray(p.depth, np.float32), ids)
    on_ground = depth < 0
    gz = np.minimum(gdepth, 1e4).astype(np.float32)
    ug = u.astype(np.float32)

    # sidewalk tiles: grout lines in ground coordinates, faded where a tile shrinks below a few pixels
    tile = np.where(kmap == TILES, param, np.float32(1.0))
    fade = np.clip(1.5 - 4.0 * (gz * gz / np.float32(cam.f * cam.hc)) / tile, 0, 1)
    grout = (np.mod(ug, tile) < 0.07 * tile) | (np.mod(gz, tile) < 0.07 * tile)
    factor *= np.where((kmap == TILES) & grout, 1.0 - 0.22 * fade, np.float32(1.0))
    # fence bars: vertical stripes of the material's period in pixels
    period = np.where(kmap == BARS, param, np.float32(1.0))
    xs = np.arange(w, dtype=np.float32)[None, :]
    factor *= np.where(kmap == BARS, np.where(np.mod(xs, period) < 0.45 * period, 1.15, 0.65), np.float32(1.0))
    # shadow cast across the ground by the buildings of one side
    if p.look["shadow"] is not None:
        side, offset, slope, dark = p.look["shadow"]
        sign = -1.0 if side == 0 else 1.0
        factor *= np.where(on_ground & (sign * ug > offset + slope * np.minimum(gz, 200.0)), np.float32(dark), 1.0)
    img = np.take(np.asarray(p.colour, np.float32), ids, axis=0) * factor[..., None]

    sky = ids == 0
    rows = int(np.flatnonzero(sky.any(axis=1)).max()) + 1 if sky.any() else 0
    if rows:
        t = np.minimum(np.arange(rows, dtype=np.float32) / np.float32(max(cam.yh, 1.0)), 1.0)[:, None, None]
        t = t * t
        top, horizon = np.asarray(p.look["sky_top"], np.float32), np.asarray(p.look["sky_horizon"], np.float32)
        cloud = np.clip(smooth[:rows] * 0.7 + medium[:rows] * 0.15 - np.float32(p.look["cloud_level"]), 0, 1)[..., None]
        clear = top * (1 - t) + horizon * t
        sky_px = clear * (1 - cloud) + np.asarray(p.look["cloud_colour"], np.float32) * cloud
        img[:rows] = np.where(sky[:rows, :, None], sky_px, img[:rows])
    for m in np.flatnonzero(kind == PATTERN):  # anomaly patterns, within each anomaly's bounding box
        yy, xx = np.nonzero(ids == m)
        if yy.size == 0:
            continue
        box = np.s_[yy.min():yy.max() + 1, xx.min():xx.max() + 1]
        by, bx = np.mgrid[box]
        spec = p.patterns[int(p.param[m])]
        wgt = pattern_weight(spec, bx.astype(np.float32), by.astype(np.float32), fine[box], medium[box])
        wgt = np.where(ids[box] == m, wgt, np.float32(0))[..., None]
        second = np.asarray(spec["colour2"], np.float32) * (1.0 + 0.03 * fine[box])[..., None]
        img[box] = img[box] * (1 - wgt) + second * wgt

    # aerial perspective / fog: blend towards the haze colour by depth, d / (d + visibility)
    d = np.where(on_ground, gz, depth)
    fog = np.where(sky, np.float32(p.look["sky_haze"]), d / (d + np.float32(p.look["visibility"])))
    img += (np.asarray(p.look["haze"], np.float32) - img) * fog[..., None]
    gain = np.asarray(p.look["white_balance"], np.float32) * np.float32(p.look["contrast"])
    img = img * gain + np.float32(128.0 * (p.look["exposure"] - p.look["contrast"]))

    # lens blur (PIL's integer box-blur approximation) and sensor noise (triangular, from integers)
    img = Image.fromarray(np.clip(img + 0.5, 0, 255).astype(np.uint8))
    img = np.asarray(img.filter(ImageFilter.GaussianBlur(p.look["blur"])), dtype=np.int16)
    noise = rng.integers(0, 256, (2, h, w, 3), dtype=np.uint8).astype(np.int16)
    noise = (noise[0] - noise[1]) * np.int16(p.look["sensor_noise"]) // np.int16(64)
    return np.clip(img + noise, 0, 255).astype(np.uint8)

