"""What the world is drawn with: the Cityscapes classes it uses, material kinds, palettes, the camera and the canvas.

A pinhole camera at height ``hc`` looks down a (slightly curved) road. A ground point at lateral offset ``u``
from the road centre line and depth ``z`` projects to ``x = cx + f (c(z) + u) / z``, a point ``h`` metres up
to ``y = y_horizon + f (hc - h) / z``, with road centre ``c(z) = c0 + k z^2`` (:class:`Camera`). Everything is
painted as polygons into an integer *material* canvas (:class:`Painter`); each material carries a class, a
colour, a texture kind and a depth.
"""

import math

import numpy as np
from PIL import Image, ImageDraw

# Cityscapes train ids used by the world (cityscapesScripts labels.py)
ROAD, SIDEWALK, BUILDING, WALL, FENCE, POLE, TRAFFIC_SIGN = 0, 1, 2, 3, 4, 5, 7
VEGETATION, TERRAIN, SKY, PERSON, CAR = 8, 9, 10, 11, 13
WORLD_TRAIN_IDS = (ROAD, SIDEWALK, BUILDING, WALL, FENCE, POLE, TRAFFIC_SIGN, VEGETATION, TERRAIN, SKY, PERSON, CAR)
DYNAMIC = 251  # internal material class of movable clutter (Cityscapes labelId 5 "dynamic", void)
STATIC = 252  # internal material class of street furniture (Cityscapes labelId 4 "static", void)
EGO = 253  # internal material class of the ego-vehicle bonnet (Cityscapes labelId 1 "ego vehicle", void)
ANOMALY = 254  # internal material class of anomalies (no train id)

# texture kinds: weights of (fine, medium, smooth) noise, times the material's amplitude
FLAT, SMOOTH, GRAIN, FOLIAGE, SKYK, TILES, BARS, GLASS, PATTERN = range(9)
NOISE_WEIGHTS = np.array([
    [0.03, 0.00, 0.03],  # flat
    [0.03, 0.05, 0.10],  # smooth: paint, concrete, plaster
    [0.10, 0.10, 0.08],  # grain: asphalt, gravel, grass
    [0.12, 0.38, 0.10],  # foliage
    [0.01, 0.00, 0.00],  # sky (gradient and clouds added separately)
    [0.05, 0.03, 0.06],  # tiles (grout pattern added separately)
    [0.05, 0.00, 0.05],  # fence bars (bar pattern added separately)
    [0.02, 0.00, 0.25],  # glass: smooth reflections
    [0.02, 0.00, 0.02],  # anomaly patterns (added separately)
], np.float32)


# -- colour helpers ----------------------------------------------------------------------------------------------
def hsv(h, s, v):
    """RGB in 0..255 of hue ``h`` (turns), saturation and value in 0..1 (colorsys' formula)."""
    i = int(h * 6.0) % 6
    f = h * 6.0 - math.floor(h * 6.0)
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    rgb = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i]
    return [255.0 * c for c in rgb]


def jitter(rng, colour, amount=12.0):
    return [min(255.0, max(0.0, c + float(rng.uniform(-amount, amount)))) for c in colour]


def shade(colour, factor):
    return [min(255.0, c * factor) for c in colour]


FACADE_COLOURS = ([205, 190, 160], [170, 95, 70], [150, 150, 150], [225, 220, 205], [120, 110, 100],
                  [190, 160, 120], [180, 185, 190], [140, 90, 60], [210, 200, 175], [95, 100, 110])
CAR_COLOURS = ([230, 230, 230], [25, 25, 28], [130, 132, 135], [185, 188, 192], [150, 20, 20], [25, 50, 130],
               [20, 80, 50], [200, 180, 40], [90, 60, 40], [60, 70, 80])
SKIN = ([235, 200, 170], [200, 150, 110], [150, 100, 70], [95, 60, 40], [225, 180, 150])


class Painter:
    """Materials (class, colour, texture, depth, anomaly instance) and a PIL canvas of material indices."""

    def __init__(self):
        self.cls, self.colour, self.kind, self.amp, self.depth, self.param, self.inst = [], [], [], [], [], [], []
        self.patterns = []  # anomaly pattern specs, indexed by ``param`` of PATTERN materials
        self.canvas = None
        self.draw = None
        self.look = {}  # photometry of the frame: sky, shadow, haze, exposure, blur, noise

    def material(self, cls, colour, kind=SMOOTH, amp=1.0, depth=-1.0, param=0.0, inst=0):
        """Index of a new material; ``depth`` -1 means "take the per-pixel ground depth"."""
        self.cls.append(cls)
        self.colour.append(list(colour))
        self.kind.append(kind)
        self.amp.append(amp)
        self.depth.append(depth)
        self.param.append(param)
        self.inst.append(inst)
        return len(self.cls) - 1

    def start(self, ground):
        self.canvas = Image.fromarray(ground.astype(np.int32), mode="I")
        self.draw = ImageDraw.Draw(self.canvas)

    def polygon(self, points, mat):
        if len(points) >= 3:
            self.draw.polygon([(float(x), float(y)) for x, y in points], fill=int(mat))

    def upright(self, x0, y0, s, l0, r0, h0, l1, r1, h1, mat):
        """A quadrilateral standing at image point (``x0``, ``y0``), ``s`` pixels per metre: bottom edge from
        ``l0`` to ``r0`` m (lateral) at ``h0`` m up, top edge from ``l1`` to ``r1`` m at ``h1`` m up."""
        self.polygon([(x0 + l0 * s, y0 - h0 * s), (x0 + r0 * s, y0 - h0 * s), (x0 + r1 * s, y0 - h1 * s),
                      (x0 + l1 * s, y0 - h1 * s)], mat)

    def ellipse(self, cx, cy, rx, ry, mat):
        if rx > 0.25 and ry > 0.25:
            self.draw.ellipse([cx - rx, cy - ry, cx + rx, cy + ry], fill=int(mat))

    def ids(self):
        return np.asarray(self.canvas, dtype=np.int32)


class Camera:
    def __init__(self, rng, h, w):
        self.w = w
        self.f = w * float(rng.uniform(0.55, 0.75))
        self.cx = w * float(0.5 + rng.uniform(-0.07, 0.07))
        self.yh = h * float(rng.uniform(0.38, 0.48))
        self.hc = float(rng.uniform(1.3, 1.7))
        self.c0 = float(rng.uniform(-1.5, 1.5))
        self.k = float(rng.uniform(-0.003, 0.003)) if rng.random() < 0.6 else 0.0
        self.z_near = self.f * self.hc / (h - self.yh)  # depth of the bottom image row

    def centre(self, z):
        return self.c0 + self.k * z * z

    def point(self, u, z, height=0.0):
        """Image (x, y) of the point ``u`` m from the road centre line, ``z`` m ahead, ``height`` m up."""
        z = max(z, 0.3)
        return self.cx + self.f * (self.centre(z) + u) / z, self.yh + self.f * (self.hc - height) / z

    def scale(self, z):
        """Pixels per metre at depth ``z``."""
        return self.f / max(z, 0.3)

