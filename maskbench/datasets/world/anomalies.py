"""Anomalies: objects of no known class (organic or novel shapes, patterned textures), never in the training split,
and where a frame places them."""

import math

from maskbench.datasets.world.ground import ground_point
from maskbench.datasets.world.paint import ANOMALY, PATTERN, hsv, jitter

ANOMALY_PATTERNS = ("flat", "checker", "stripes", "dots", "speckle", "gradient", "camouflage")
ANOMALY_SHAPES = ("blob", "star", "ellipse", "box", "ring", "creature", "cluster", "stack")


def anomaly_colour(rng):
    if rng.random() < 0.25:  # muted: no colour cue, only shape and texture
        g = float(rng.uniform(40, 220))
        return jitter(rng, [g, g, g], 25)
    return hsv(float(rng.random()), float(rng.uniform(0.6, 1.0)), float(rng.uniform(0.5, 1.0)))


def anomaly(p, cam, rng, u, z, size, inst):
    """An object of no known class standing on the ground at (``u``, ``z``), about ``size`` m tall."""
    shape = ANOMALY_SHAPES[int(rng.integers(len(ANOMALY_SHAPES)))]
    aspect = math.exp(float(rng.uniform(-0.7, 0.9)))  # width / height
    mats = []
    for _ in range(2):
        pattern = ANOMALY_PATTERNS[int(rng.integers(len(ANOMALY_PATTERNS)))]
        p.patterns.append({"pattern": pattern, "colour2": anomaly_colour(rng),
                           "period": max(2.0, cam.scale(z) * size * float(rng.uniform(0.08, 0.3))),
                           "angle": float(rng.uniform(0, math.pi))})
        mats.append(p.material(ANOMALY, anomaly_colour(rng), PATTERN, 1.0, depth=z, param=len(p.patterns) - 1,
                               inst=inst))
    harmonics = [(int(k), float(rng.uniform(0, 0.35)), float(rng.uniform(0, 2 * math.pi))) for k in rng.integers(2, 7, 3)]
    parts = [(float(rng.uniform(-0.5, 0.5)), float(rng.uniform(0, 0.6)), float(rng.uniform(0.2, 0.45)))
             for _ in range(int(rng.integers(3, 7)))]
    spin = float(rng.uniform(-0.4, 0.4))

    def draw():
        x0, y0 = cam.point(u, z, 0)
        s = cam.scale(z)
        hh, ww = size * s, size * aspect * s
        cy = y0 - hh / 2
        if shape in ("blob", "star"):
            n = 40 if shape == "blob" else 14
            pts = []
            for i in range(n):
                a = 2 * math.pi * i / n
                r = 1.0 + sum(amp * math.cos(k * a + ph) for k, amp, ph in harmonics)
                if shape == "star" and i % 2:
                    r *= 0.45
                pts.append((x0 + 0.5 * ww * r * math.cos(a), cy + 0.5 * hh * r * math.sin(a)))
            p.polygon(pts, mats[0])
        elif shape in ("ellipse", "ring"):
            p.ellipse(x0, cy, ww / 2, hh / 2, mats[0])
            if shape == "ring":
                p.ellipse(x0, cy, ww * 0.3, hh * 0.3, mats[1])
        elif shape == "box":
            c, sn = math.cos(spin), math.sin(spin)
            corners = [(-0.5, -0.5), (0.5, -0.5), (0.5, 0.5), (-0.5, 0.5)]
            p.polygon([(x0 + ww * (a * c - b * sn), cy + hh * (a * sn + b * c)) for a, b in corners], mats[0])
            p.polygon([(x0 + 0.6 * ww * (a * c - b * sn), cy - 0.1 * hh + 0.4 * hh * (a * sn + b * c))
                       for a, b in corners], mats[1])
        elif shape == "creature":
            body_y = y0 - hh * 0.62
            for dx in (-0.35, -0.15, 0.15, 0.35):
                p.polygon([(x0 + dx * ww - 0.04 * ww, y0), (x0 + dx * ww + 0.04 * ww, y0),
                           (x0 + dx * ww + 0.05 * ww, body_y), (x0 + dx * ww - 0.05 * ww, body_y)], mats[1])
            p.ellipse(x0, body_y, ww * 0.45, hh * 0.22, mats[0])
            head = 1 if spin > 0 else -1
            p.ellipse(x0 + head * ww * 0.5, body_y - hh * 0.22, ww * 0.13, hh * 0.15, mats[0])
        elif shape == "cluster":
            for dx, dy, r in parts:
                p.ellipse(x0 + dx * ww, y0 - (dy + r / 2) * hh * 0.6, r * ww * 0.5, r * hh * 0.4, mats[int(dx > 0)])
        else:  # stack of boxes
            level = y0
            for i, (dx, _, r) in enumerate(parts[:4]):
                bh = hh * r * 0.7
                bw = ww * (1.0 - 0.15 * i)
                p.polygon([(x0 + dx * 0.2 * ww - bw / 2, level), (x0 + dx * 0.2 * ww + bw / 2, level),
                           (x0 + dx * 0.2 * ww + bw / 2, level - bh), (x0 + dx * 0.2 * ww - bw / 2, level - bh)],
                          mats[i % 2])
                level -= bh

    return z, draw



def place_anomalies(p, cam, rng, lay, mode, objects):
    """Add 1-4 anomalies standing in view (base centre within the middle 90% of the width); returns how many."""
    count = int(rng.choice([1, 1, 2, 2, 3, 4]))
    for inst in range(1, count + 1):
        for _ in range(20):
            if mode == "obstacle":
                size = math.exp(float(rng.uniform(math.log(0.12), math.log(1.0))))
                u, z = ground_point(rng, cam, lay, "road", cam.z_near + 1.0, 35.0)
            else:
                large = rng.random() < 0.35
                size = float(rng.uniform(1.5, 3.5)) if large else math.exp(float(rng.uniform(math.log(0.3), math.log(2.5))))
                where = "road" if rng.random() < 0.6 else "offroad"
                z_hi = cam.z_near + 8.0 if large else 30.0
                u, z = ground_point(rng, cam, lay, where, cam.z_near + 1.0, z_hi)
            z = min(z, cam.f * size / (6.0 if mode == "obstacle" else 12.0))  # at least ~6 (12) pixels tall
            z = max(z, cam.z_near + 0.5)
            if 0.05 * cam.w < cam.point(u, z)[0] < 0.95 * cam.w:
                break
        objects.append(anomaly(p, cam, rng, u, z, size, inst))
    return count

