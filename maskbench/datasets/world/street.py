"""What stands along the street: façades, walls, fences and hedges, trees, poles with signs, people, cars and the
distant skyline. Each object is ``(near depth, callable drawing it)``; its materials and shape are drawn from the
random generator when the object is created, in the order the scene creates them."""

import math
from functools import partial

import numpy as np

from maskbench.datasets.world.paint import (
    BARS, BUILDING, CAR, CAR_COLOURS, FACADE_COLOURS, FENCE, FLAT, FOLIAGE, GLASS, GRAIN, PERSON, POLE, SKIN, SMOOTH,
    TRAFFIC_SIGN, VEGETATION, WALL, hsv, jitter, shade,
)


def facade_block(p, cam, rng, side, b, z0, z1, height, colour, shadowed):
    sign = -1.0 if side == 0 else 1.0
    col = shade(colour, 0.75 if shadowed else 1.0)
    face = p.material(BUILDING, col, SMOOTH, float(rng.uniform(0.5, 1.5)), depth=z0)
    end = p.material(BUILDING, shade(col, 0.82), SMOOTH, 1.0, depth=z0)
    glass_col = jitter(rng, [60, 70, 85], 20) if rng.random() < 0.8 else jitter(rng, [150, 160, 170], 20)
    glass = p.material(BUILDING, glass_col, GLASS, 1.0, depth=z0)
    trim = p.material(BUILDING, shade(col, float(rng.uniform(0.6, 1.25))), FLAT, 1.0, depth=z0)
    zs = np.linspace(z0, z1, 6)

    def draw():
        depth = float(rng.uniform(8, 15))
        p.polygon([cam.point(sign * b, z0, 0), cam.point(sign * (b + depth), z0, 0),
                   cam.point(sign * (b + depth), z0, height), cam.point(sign * b, z0, height)], end)
        p.polygon([cam.point(sign * b, z, 0) for z in zs] + [cam.point(sign * b, z, height) for z in zs[::-1]], face)
        if z0 > 60:
            return
        floor = float(rng.uniform(2.8, 3.6))
        ww, wh = float(rng.uniform(0.8, 1.6)), float(rng.uniform(1.1, 1.8))
        spacing = float(rng.uniform(2.2, 3.8))
        shop = rng.random() < 0.4
        if shop:
            for za in np.arange(z0 + 0.8, z1 - 2.5, 4.0):
                p.polygon([cam.point(sign * b, za, 0.3), cam.point(sign * b, za + 2.8, 0.3),
                           cam.point(sign * b, za + 2.8, 2.6), cam.point(sign * b, za, 2.6)], glass)
            p.polygon([cam.point(sign * b, z0, 2.8), cam.point(sign * b, z1, 2.8),
                       cam.point(sign * b, z1, 3.2), cam.point(sign * b, z0, 3.2)], trim)
        for level in np.arange(floor + 0.9 if shop else 0.9, height - wh - 0.4, floor):
            for za in np.arange(z0 + 0.7, z1 - ww - 0.3, spacing):
                a, c = cam.point(sign * b, za, level), cam.point(sign * b, za + ww, level + wh)
                if abs(c[0] - a[0]) < 1.2:
                    continue
                p.polygon([a, cam.point(sign * b, za + ww, level), c, cam.point(sign * b, za, level + wh)], glass)

    return z0, draw


def barrier(p, cam, rng, side, b, z0, z1, kind):
    """A wall, fence or hedge along the sidewalk's outer edge from depth ``z0`` to ``z1``."""
    sign = -1.0 if side == 0 else 1.0
    zs = np.linspace(z0, z1, 6)
    if kind == "wall":
        height = float(rng.uniform(0.6, 2.4))
        mat = p.material(WALL, jitter(rng, list(FACADE_COLOURS[int(rng.integers(len(FACADE_COLOURS)))]), 20),
                         SMOOTH, 1.5, depth=z0)
        cap = p.material(WALL, shade(p.colour[mat], 1.15), FLAT, 1.0, depth=z0)
    elif kind == "fence":
        height = float(rng.uniform(0.9, 2.0))
        metal = jitter(rng, [[60, 65, 60], [110, 80, 50], [140, 140, 140], [40, 70, 45]][int(rng.integers(4))], 10)
        period = max(2.0, cam.scale((z0 + z1) / 2) * float(rng.uniform(0.12, 0.3)))
        mat = p.material(FENCE, metal, BARS, 1.0, depth=z0, param=period)
        cap = p.material(FENCE, shade(metal, 0.7), FLAT, 1.0, depth=z0)
    else:
        height = float(rng.uniform(0.7, 1.8))
        mat = p.material(VEGETATION, jitter(rng, [50, 95, 40], 15), FOLIAGE, 1.2, depth=z0)
        cap = mat

    def draw():
        top = [cam.point(sign * b, z, height + (float(rng.uniform(-0.15, 0.15)) if kind == "hedge" else 0.0))
               for z in zs[::-1]]
        p.polygon([cam.point(sign * b, z, 0) for z in zs] + top, mat)
        if kind == "wall":
            p.polygon([cam.point(sign * b, z, height - 0.12) for z in zs] + [cam.point(sign * b, z, height) for z in zs[::-1]], cap)
        elif kind == "fence":
            for z in np.arange(z0, z1, float(rng.uniform(2.0, 3.0))):
                p.polygon([cam.point(sign * b, z, 0), cam.point(sign * b, z + 0.12, 0),
                           cam.point(sign * b, z + 0.12, height + 0.05), cam.point(sign * b, z, height + 0.05)], cap)

    return z0, draw


def tree(p, cam, rng, u, z):
    trunk_h = float(rng.uniform(1.8, 3.5))
    r = float(rng.uniform(1.2, 2.8))
    autumn = rng.random() < 0.1
    leaf = jitter(rng, [150, 120, 40] if autumn else [float(rng.uniform(40, 90)), float(rng.uniform(85, 130)), 40], 12)
    bark = p.material(VEGETATION, jitter(rng, [80, 65, 50], 15), GRAIN, 1.0, depth=z)
    crowns = [p.material(VEGETATION, shade(leaf, float(rng.uniform(0.75, 1.15))), FOLIAGE, 1.3, depth=z)
              for _ in range(2)]
    blobs = [(float(rng.uniform(-0.6, 0.6)) * r, float(rng.uniform(-0.3, 0.6)) * r, r * float(rng.uniform(0.6, 1.0)))
             for _ in range(int(rng.integers(3, 7)))]

    def draw():
        x0, y0 = cam.point(u, z, 0)
        s = cam.scale(z)
        tw = 0.15 + 0.05 * r
        p.polygon([(x0 - tw * s, y0), (x0 + tw * s, y0), (x0 + tw * 0.7 * s, y0 - (trunk_h + r * 0.5) * s),
                   (x0 - tw * 0.7 * s, y0 - (trunk_h + r * 0.5) * s)], bark)
        for i, (dx, dh, rr) in enumerate(blobs):
            p.ellipse(x0 + dx * s, y0 - (trunk_h + r + dh) * s, rr * s, rr * 0.85 * s, crowns[i % 2])

    return z, draw


def pole(p, cam, rng, u, z, side):
    height = float(rng.uniform(4.0, 8.0))
    width = float(rng.uniform(0.2, 0.35))
    grey = jitter(rng, [[90, 90, 95], [40, 45, 40], [150, 150, 150], [50, 70, 55]][int(rng.integers(4))], 10)
    mat = p.material(POLE, grey, SMOOTH, 0.8, depth=z)
    arm = rng.random() < 0.4
    sign_kind = ["circle", "triangle", "square", "octagon"][int(rng.integers(4))] if rng.random() < 0.6 else None
    sign_h = float(rng.uniform(2.0, 2.8))
    size = float(rng.uniform(0.6, 0.95))
    inward = 1.0 if side == 0 else -1.0
    red = p.material(TRAFFIC_SIGN, jitter(rng, [200, 30, 30], 15), FLAT, 1.0, depth=z - 0.05)
    white = p.material(TRAFFIC_SIGN, jitter(rng, [235, 235, 230], 8), FLAT, 1.0, depth=z - 0.05)
    blue = p.material(TRAFFIC_SIGN, jitter(rng, [30, 70, 170], 15), FLAT, 1.0, depth=z - 0.05)

    def draw():
        x0, y0 = cam.point(u, z, 0)
        s = cam.scale(z)
        top = y0 - height * s
        p.polygon([(x0 - width / 2 * s, y0), (x0 + width / 2 * s, y0), (x0 + width / 2 * s, top),
                   (x0 - width / 2 * s, top)], mat)
        if arm:
            x1 = x0 + inward * 1.6 * s
            p.polygon([(x0, top), (x1, top - 0.15 * s), (x1, top + 0.05 * s), (x0, top + 0.2 * s)], mat)
        if sign_kind is None:
            return
        cx, cy, r = x0, y0 - (sign_h + size / 2) * s, size / 2 * s
        if sign_kind == "circle":
            p.ellipse(cx, cy, r, r, red)
            p.ellipse(cx, cy, r * 0.72, r * 0.72, white)
        elif sign_kind == "triangle":
            p.polygon([(cx - r, cy - 0.6 * r), (cx + r, cy - 0.6 * r), (cx, cy + r)], red)
            p.polygon([(cx - 0.6 * r, cy - 0.4 * r), (cx + 0.6 * r, cy - 0.4 * r), (cx, cy + 0.55 * r)], white)
        elif sign_kind == "square":
            p.polygon([(cx - r, cy - r), (cx + r, cy - r), (cx + r, cy + r), (cx - r, cy + r)], blue)
            p.polygon([(cx - 0.2 * r, cy - 0.6 * r), (cx + 0.2 * r, cy - 0.6 * r), (cx + 0.2 * r, cy + 0.6 * r),
                       (cx - 0.2 * r, cy + 0.6 * r)], white)
        else:
            p.polygon([(cx + r * math.cos(a), cy + r * math.sin(a)) for a in np.arange(8) * (math.pi / 4) + math.pi / 8], red)

    return z, draw


def person(p, cam, rng, u, z):
    hgt = float(rng.uniform(1.5, 1.95))
    side_view = rng.random() < 0.4
    wscale = 0.62 if side_view else 1.0
    shirt = hsv(float(rng.random()), float(rng.uniform(0.1, 0.9)), float(rng.uniform(0.15, 0.95)))
    pants = jitter(rng, [[35, 40, 70], [30, 30, 30], [110, 110, 115], [180, 160, 120], [60, 50, 40]][int(rng.integers(5))], 12)
    skin = jitter(rng, SKIN[int(rng.integers(len(SKIN)))], 10)
    hair = jitter(rng, [[30, 25, 20], [90, 60, 30], [200, 170, 100], [120, 120, 120]][int(rng.integers(4))], 10)
    m_shirt = p.material(PERSON, shirt, SMOOTH, 1.0, depth=z)
    m_pants = p.material(PERSON, pants, SMOOTH, 1.0, depth=z)
    m_skin = p.material(PERSON, skin, FLAT, 1.0, depth=z)
    m_hair = p.material(PERSON, hair, FLAT, 1.0, depth=z)
    stride = float(rng.uniform(0.0, 0.35)) if side_view else float(rng.uniform(0.0, 0.1))
    skirt = rng.random() < 0.15
    bag = hsv(float(rng.random()), 0.6, float(rng.uniform(0.2, 0.8))) if rng.random() < 0.3 else None
    m_bag = p.material(PERSON, bag, FLAT, 1.0, depth=z) if bag else None

    def draw():
        x0, y0 = cam.point(u, z, 0)
        s = cam.scale(z)
        quad = partial(p.upright, x0, y0, s)

        hip, sh = 0.48 * hgt, 0.82 * hgt
        if skirt:
            quad(-0.06, 0.06, 0, -0.06, 0.06, hip * 0.6, m_skin)
            quad(-0.22 * wscale, 0.22 * wscale, hip * 0.55, -0.15 * wscale, 0.15 * wscale, hip + 0.05, m_shirt)
        else:
            quad(-0.17 * wscale - stride, -0.03 * wscale - stride / 2, 0, -0.17 * wscale, 0.0, hip, m_pants)
            quad(0.03 * wscale + stride / 2, 0.17 * wscale + stride, 0, 0.0, 0.17 * wscale, hip, m_pants)
        quad(-0.18 * wscale, 0.18 * wscale, hip - 0.02, -0.22 * wscale, 0.22 * wscale, sh, m_shirt)
        quad(-0.26 * wscale, -0.18 * wscale, sh - 0.38, -0.24 * wscale, -0.16 * wscale, sh, m_shirt)
        quad(0.18 * wscale, 0.26 * wscale, sh - 0.38, 0.16 * wscale, 0.24 * wscale, sh, m_shirt)
        quad(-0.05, 0.05, sh - 0.02, -0.05, 0.05, sh + 0.05, m_skin)
        p.ellipse(x0, y0 - (hgt - 0.11) * s, 0.095 * s, 0.12 * s, m_skin)
        p.ellipse(x0, y0 - (hgt - 0.06) * s, 0.1 * s, 0.07 * s, m_hair)
        if m_bag is not None:
            quad(0.2 * wscale, 0.36 * wscale, hip - 0.1, 0.2 * wscale, 0.36 * wscale, hip + 0.25, m_bag)

    return z, draw


def car(p, cam, rng, u, z, oncoming=False):
    width = float(rng.uniform(1.65, 1.95))
    length = float(rng.uniform(3.8, 4.9))
    van = rng.random() < 0.15
    height = float(rng.uniform(1.85, 2.2)) if van else float(rng.uniform(1.35, 1.6))
    body_top = height * (0.75 if van else float(rng.uniform(0.55, 0.62)))
    paint = jitter(rng, CAR_COLOURS[int(rng.integers(len(CAR_COLOURS)))], 15)
    m_body = p.material(CAR, paint, SMOOTH, 0.8, depth=z)
    m_side = p.material(CAR, shade(paint, 0.8), SMOOTH, 0.8, depth=z)
    m_glass = p.material(CAR, jitter(rng, [40, 45, 55], 10), GLASS, 0.8, depth=z)
    m_tyre = p.material(CAR, [20, 20, 22], FLAT, 1.0, depth=z)
    m_light = p.material(CAR, [235, 235, 215] if oncoming else [190, 25, 25], FLAT, 0.5, depth=z)
    m_plate = p.material(CAR, [225, 225, 220], FLAT, 0.5, depth=z)
    m_bumper = p.material(CAR, shade(paint, 0.45), FLAT, 1.0, depth=z)

    def draw():
        lateral = cam.centre(z) + u
        if abs(lateral) > width / 2:  # the side facing the camera is visible
            xs = u - math.copysign(width / 2, lateral)
            zb = z + length
            zc0, zc1 = z + 0.25 * length, z + 0.85 * length
            p.polygon([cam.point(xs, z, 0.25), cam.point(xs, zb, 0.25), cam.point(xs, zb, body_top),
                       cam.point(xs, z, body_top)], m_side)
            p.polygon([cam.point(xs, z + 0.1 * length, body_top), cam.point(xs, zb - 0.05 * length, body_top),
                       cam.point(xs, zc1, height), cam.point(xs, zc0, height)], m_side)
            p.polygon([cam.point(xs, z + 0.18 * length, body_top + 0.05), cam.point(xs, zb - 0.12 * length, body_top + 0.05),
                       cam.point(xs, zc1 - 0.05, height - 0.06), cam.point(xs, zc0 + 0.05, height - 0.06)], m_glass)
            for zw in (z + 0.75, zb - 0.8):
                p.polygon([cam.point(xs, zw + 0.33 * math.cos(a), 0.33 + 0.33 * math.sin(a))
                           for a in np.arange(12) * (math.pi / 6)], m_tyre)
        x0, y0 = cam.point(u, z, 0)
        s = cam.scale(z)
        quad = partial(p.upright, x0, y0, s)

        hw = width / 2
        for sgn in (-1, 1):
            quad(sgn * (hw - 0.08), sgn * (hw - 0.32), 0, sgn * (hw - 0.08), sgn * (hw - 0.32), 0.4, m_tyre)
        quad(-hw, hw, 0.18, -hw, hw, body_top, m_body)
        inset = 0.08 if van else 0.2
        quad(-hw + 0.05, hw - 0.05, body_top, -hw + inset, hw - inset, height, m_body)
        quad(-hw + 0.15, hw - 0.15, body_top + 0.06, -hw + inset + 0.08, hw - inset - 0.08, height - 0.07, m_glass)
        quad(-hw, hw, 0.18, -hw, hw, 0.38, m_bumper)
        for sgn in (-1, 1):
            quad(sgn * (hw - 0.05), sgn * (hw - 0.35), body_top - 0.25, sgn * (hw - 0.05), sgn * (hw - 0.35),
                 body_top - 0.08, m_light)
        quad(-0.26, 0.26, 0.42, -0.26, 0.26, 0.55, m_plate)

    return z, draw


def backdrop(p, cam, rng, w):
    """Distant skyline or tree line at 80-150 m closing the view at the horizon."""
    z = float(rng.uniform(80, 150))
    trees = rng.random() < 0.4
    cls, kind = (VEGETATION, FOLIAGE) if trees else (BUILDING, SMOOTH)
    colour = jitter(rng, [70, 95, 60] if trees else [140, 140, 145], 20)
    mats = [p.material(cls, shade(colour, float(rng.uniform(0.85, 1.15))), kind, 1.0, depth=z) for _ in range(3)]
    s = cam.scale(z)
    y0 = cam.point(0, z, 0)[1]
    x = -10.0
    while x < w + 10:
        seg = float(rng.uniform(6, 30)) * s
        top = float(rng.uniform(4, 25)) * s
        m = mats[int(rng.integers(3))]
        if trees:
            p.ellipse(x + seg / 2, y0 - top * 0.5, seg * 0.7, top * 0.6, m)
        else:
            p.polygon([(x, y0 + 1), (x + seg, y0 + 1), (x + seg, y0 - top), (x, y0 - top)], m)
        x += seg * float(rng.uniform(0.6, 1.0))

