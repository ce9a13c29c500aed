"""One procedural road scene of the miniature world: image, Cityscapes train ids, anomaly instances.

A pinhole camera at height ``hc`` looks down a (slightly curved) road. A ground point at lateral offset ``u``
from the road centre line and depth ``z`` projects to ``x = cx + f (c(z) + u) / z``, a point ``h`` metres up
to ``y = y_horizon + f (hc - h) / z``, with road centre ``c(z) = c0 + k z^2``. The ground (road, lane marks,
sidewalk, curb, verge) is computed per pixel from the inverted projection; everything standing on it
(façades, walls, fences, hedges, trees, poles, signs, people, cars, anomalies) is drawn far to near as
polygons into an integer *material* canvas (PIL), and each material carries a class, a colour, a texture
kind and a depth. Shading turns materials into pixels: texture noise, tiles, fence bars, window glass,
anomaly patterns, shadows, sky gradient and clouds, aerial perspective or fog, exposure and white balance,
lens blur and sensor noise. Labels come from the material canvas, so they are exact.

Only IEEE-exact arithmetic (``+ - * /``, comparisons, integer blur and noise) touches per-pixel arrays, noise
comes from uniform draws (no libm), scalars use Python's ``math``, and every random draw comes from one
``numpy.random.Generator``: the same seed gives the same bytes.
"""

import math
from dataclasses import dataclass
from functools import partial

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

# Cityscapes train ids used by the world (cityscapesScripts labels.py)
ROAD, SIDEWALK, BUILDING, WALL, FENCE, POLE, TRAFFIC_SIGN = 0, 1, 2, 3, 4, 5, 7
VEGETATION, TERRAIN, SKY, PERSON, CAR = 8, 9, 10, 11, 13
WORLD_TRAIN_IDS = (ROAD, SIDEWALK, BUILDING, WALL, FENCE, POLE, TRAFFIC_SIGN, VEGETATION, TERRAIN, SKY, PERSON, CAR)
VOID = 255
_DYNAMIC = 251  # internal material class of movable clutter (Cityscapes labelId 5 "dynamic", void)
_STATIC = 252  # internal material class of street furniture (Cityscapes labelId 4 "static", void)
_EGO = 253  # internal material class of the ego-vehicle bonnet (Cityscapes labelId 1 "ego vehicle", void)
_ANOMALY = 254  # internal material class of anomalies (no train id)

# texture kinds: weights of (fine, medium, smooth) noise, times the material's amplitude
_FLAT, _SMOOTH, _GRAIN, _FOLIAGE, _SKYK, _TILES, _BARS, _GLASS, _PATTERN = range(9)
_NOISE_WEIGHTS = np.array([
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
ANOMALY_PATTERNS = ("flat", "checker", "stripes", "dots", "speckle", "gradient", "camouflage")
ANOMALY_SHAPES = ("blob", "star", "ellipse", "box", "ring", "creature", "cluster", "stack")
MODES = (None, "anomaly", "obstacle")


@dataclass(frozen=True, eq=False)
class Scene:
    """A rendered frame.

    ``image`` uint8 (H, W, 3) RGB; ``semantic`` uint8 Cityscapes train ids, 255 on anomalies, street furniture
    and the ego vehicle; ``anomalies`` uint8 anomaly instances (0 none, k the k-th anomaly); ``ego`` bool, the
    ego-vehicle bonnet (Cityscapes labelId 1); ``static`` bool, street furniture (bins, benches, bollards,
    cabinets: Cityscapes labelId 4 "static"); ``dynamic`` bool, movable clutter (trolleys, prams, crates, luggage,
    barrels, sandwich boards, work barriers: Cityscapes labelId 5 "dynamic"); both are void in training and in
    the anomaly track, not anomalous; ``road_line`` bool, lane markings (road in Cityscapes, "road line" in
    StreetHazards).
    """

    image: np.ndarray
    semantic: np.ndarray
    anomalies: np.ndarray
    ego: np.ndarray
    static: np.ndarray
    dynamic: np.ndarray
    road_line: np.ndarray


# -- colour helpers ----------------------------------------------------------------------------------------------
def _hsv(h, s, v):
    """RGB in 0..255 of hue ``h`` (turns), saturation and value in 0..1 (colorsys' formula)."""
    i = int(h * 6.0) % 6
    f = h * 6.0 - math.floor(h * 6.0)
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    rgb = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i]
    return [255.0 * c for c in rgb]


def _jitter(rng, colour, amount=12.0):
    return [min(255.0, max(0.0, c + float(rng.uniform(-amount, amount)))) for c in colour]


def _shade(colour, factor):
    return [min(255.0, c * factor) for c in colour]


FACADE_COLOURS = ([205, 190, 160], [170, 95, 70], [150, 150, 150], [225, 220, 205], [120, 110, 100],
                  [190, 160, 120], [180, 185, 190], [140, 90, 60], [210, 200, 175], [95, 100, 110])
CAR_COLOURS = ([230, 230, 230], [25, 25, 28], [130, 132, 135], [185, 188, 192], [150, 20, 20], [25, 50, 130],
               [20, 80, 50], [200, 180, 40], [90, 60, 40], [60, 70, 80])
SKIN = ([235, 200, 170], [200, 150, 110], [150, 100, 70], [95, 60, 40], [225, 180, 150])


class _Painter:
    """Materials (class, colour, texture, depth, anomaly instance) and a PIL canvas of material indices."""

    def __init__(self):
        self.cls, self.colour, self.kind, self.amp, self.depth, self.param, self.inst = [], [], [], [], [], [], []
        self.patterns = []  # anomaly pattern specs, indexed by ``param`` of _PATTERN materials
        self.canvas = None
        self.draw = None
        self.look = {}  # photometry of the frame: sky, shadow, haze, exposure, blur, noise

    def material(self, cls, colour, kind=_SMOOTH, amp=1.0, depth=-1.0, param=0.0, inst=0):
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


class _Camera:
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


# -- the ground ------------------------------------------------------------------------------------------------------
class _Layout:
    """Road, lane, sidewalk and verge widths per side (index 0 left, 1 right)."""

    def __init__(self, rng):
        lanes = int(rng.choice([2, 2, 3, 4]))
        lane_w = float(rng.uniform(2.9, 3.6))
        self.lanes, self.lane_w = lanes, lane_w
        left = int(rng.integers(1, lanes)) if lanes > 2 else 1
        self.road = (left * lane_w, (lanes - left) * lane_w)  # extent left and right of the centre line
        rural = rng.random() < 0.15
        self.verge = tuple(float(rng.uniform(0.6, 2.5)) if (rural or rng.random() < 0.3) else 0.0 for _ in range(2))
        self.sidewalk = tuple(0.0 if rural and rng.random() < 0.7 else float(rng.uniform(1.6, 4.5)) for _ in range(2))
        self.urban = tuple(not rural and rng.random() < 0.88 for _ in range(2))  # façades on this side
        self.setback = tuple(float(rng.uniform(0.0, 2.0)) if rng.random() < 0.4 else 0.0 for _ in range(2))

    def edge(self, side):
        """Distance from the centre line to the outer edge of the sidewalk on ``side`` (0 left, 1 right)."""
        return self.road[side] + self.verge[side] + self.sidewalk[side]

    def facade(self, side):
        return self.edge(side) + self.setback[side]


def _ground(rng, cam, lay, p, h, w):
    """Per-pixel ground: material canvas, depth map, lateral offset, and the lane-mark materials."""
    r0 = min(h, max(0, int(math.floor(cam.yh + 0.25))))  # first row below the horizon
    dy = np.arange(r0, h, dtype=np.float64)[:, None] + 0.5 - cam.yh
    z = cam.f * cam.hc / dy
    u = (np.arange(w, dtype=np.float64)[None, :] + 0.5 - cam.cx) * cam.hc / dy - cam.centre(np.minimum(z, 300.0))

    asphalt = float(rng.uniform(60, 120))
    road = p.material(ROAD, _jitter(rng, [asphalt, asphalt, asphalt * 1.02], 6), _GRAIN, float(rng.uniform(0.6, 1.4)))
    yellow = rng.random() < 0.2
    lane = p.material(ROAD, [220, 190, 60] if yellow else _jitter(rng, [225, 225, 220], 10), _FLAT, 1.5)
    edge_lane = p.material(ROAD, _jitter(rng, [225, 225, 220], 10), _FLAT, 1.5)
    grass = _jitter(rng, [float(rng.uniform(70, 120)), float(rng.uniform(100, 140)), float(rng.uniform(40, 70))], 12)
    if rng.random() < 0.3:  # dry grass, earth
        grass = _jitter(rng, [150, 135, 90], 15)
    terrain = p.material(TERRAIN, grass, _GRAIN, 2.2)
    ground = np.full(u.shape, road, np.int32)
    for side, sign in ((0, -1.0), (1, 1.0)):
        s_u = sign * u
        r, v, s = lay.road[side], lay.verge[side], lay.sidewalk[side]
        tone = float(rng.uniform(120, 190))
        walk = p.material(SIDEWALK, _jitter(rng, [tone, tone * 0.97, tone * 0.92], 10), _TILES, 1.0,
                          param=float(rng.uniform(0.3, 0.7)))
        curb = p.material(SIDEWALK, _shade(p.colour[walk], 1.2), _SMOOTH, 0.6)
        outer = terrain if (not lay.urban[side] or rng.random() < 0.5) else walk
        ground[s_u >= r] = terrain if v > 0 else curb
        if s > 0:
            ground[s_u >= r + v] = curb
            ground[s_u >= r + v + 0.18] = walk
        ground[s_u >= r + v + s] = outer

    # lane marks: dashed lane boundaries, optional solid edge lines and a zebra crossing
    lw = float(rng.uniform(0.12, 0.2))
    phase = float(rng.uniform(0, 12))
    period, dash = float(rng.uniform(9, 14)), float(rng.uniform(3, 5))
    on_road = (u > -lay.road[0]) & (u < lay.road[1])
    dashed = np.mod(z + phase, period) < dash
    for k in range(1, lay.lanes):
        b = -lay.road[0] + k * lay.lane_w
        solid = yellow and abs(b) < 0.6 * lay.lane_w
        ground[on_road & (np.abs(u - b) < lw / 2) & (True if solid else dashed)] = lane
    if rng.random() < 0.6:
        for b in (-lay.road[0] + 0.3, lay.road[1] - 0.3):
            ground[on_road & (np.abs(u - b) < lw / 2)] = edge_lane
    if rng.random() < 0.2:
        zc = float(rng.uniform(cam.z_near + 2, 30))
        zebra = (z > zc) & (z < zc + float(rng.uniform(3, 5)))
        ground[on_road & zebra & (np.mod(u + 20.0, 1.0) < 0.5)] = edge_lane

    mats = np.zeros((h, w), np.int32)  # material 0 (sky) is created by the caller first
    mats[r0:] = ground
    depth = np.full((h, w), np.inf)
    depth[r0:] = z
    lateral = np.zeros((h, w))
    lateral[r0:] = u
    return mats, depth, lateral, (lane, edge_lane)


# -- standing objects: each is (near depth, callable drawing it) ----------------------------------------------------------
def _facade_block(p, cam, rng, side, b, z0, z1, height, colour, shadowed):
    sign = -1.0 if side == 0 else 1.0
    col = _shade(colour, 0.75 if shadowed else 1.0)
    face = p.material(BUILDING, col, _SMOOTH, float(rng.uniform(0.5, 1.5)), depth=z0)
    end = p.material(BUILDING, _shade(col, 0.82), _SMOOTH, 1.0, depth=z0)
    glass_col = _jitter(rng, [60, 70, 85], 20) if rng.random() < 0.8 else _jitter(rng, [150, 160, 170], 20)
    glass = p.material(BUILDING, glass_col, _GLASS, 1.0, depth=z0)
    trim = p.material(BUILDING, _shade(col, float(rng.uniform(0.6, 1.25))), _FLAT, 1.0, depth=z0)
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


def _barrier(p, cam, rng, side, b, z0, z1, kind):
    """A wall, fence or hedge along the sidewalk's outer edge from depth ``z0`` to ``z1``."""
    sign = -1.0 if side == 0 else 1.0
    zs = np.linspace(z0, z1, 6)
    if kind == "wall":
        height = float(rng.uniform(0.6, 2.4))
        mat = p.material(WALL, _jitter(rng, list(FACADE_COLOURS[int(rng.integers(len(FACADE_COLOURS)))]), 20),
                         _SMOOTH, 1.5, depth=z0)
        cap = p.material(WALL, _shade(p.colour[mat], 1.15), _FLAT, 1.0, depth=z0)
    elif kind == "fence":
        height = float(rng.uniform(0.9, 2.0))
        metal = _jitter(rng, [[60, 65, 60], [110, 80, 50], [140, 140, 140], [40, 70, 45]][int(rng.integers(4))], 10)
        period = max(2.0, cam.scale((z0 + z1) / 2) * float(rng.uniform(0.12, 0.3)))
        mat = p.material(FENCE, metal, _BARS, 1.0, depth=z0, param=period)
        cap = p.material(FENCE, _shade(metal, 0.7), _FLAT, 1.0, depth=z0)
    else:
        height = float(rng.uniform(0.7, 1.8))
        mat = p.material(VEGETATION, _jitter(rng, [50, 95, 40], 15), _FOLIAGE, 1.2, depth=z0)
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


def _tree(p, cam, rng, u, z):
    trunk_h = float(rng.uniform(1.8, 3.5))
    r = float(rng.uniform(1.2, 2.8))
    autumn = rng.random() < 0.1
    leaf = _jitter(rng, [150, 120, 40] if autumn else [float(rng.uniform(40, 90)), float(rng.uniform(85, 130)), 40], 12)
    bark = p.material(VEGETATION, _jitter(rng, [80, 65, 50], 15), _GRAIN, 1.0, depth=z)
    crowns = [p.material(VEGETATION, _shade(leaf, float(rng.uniform(0.75, 1.15))), _FOLIAGE, 1.3, depth=z)
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


def _pole(p, cam, rng, u, z, side):
    height = float(rng.uniform(4.0, 8.0))
    width = float(rng.uniform(0.2, 0.35))
    grey = _jitter(rng, [[90, 90, 95], [40, 45, 40], [150, 150, 150], [50, 70, 55]][int(rng.integers(4))], 10)
    mat = p.material(POLE, grey, _SMOOTH, 0.8, depth=z)
    arm = rng.random() < 0.4
    sign_kind = ["circle", "triangle", "square", "octagon"][int(rng.integers(4))] if rng.random() < 0.6 else None
    sign_h = float(rng.uniform(2.0, 2.8))
    size = float(rng.uniform(0.6, 0.95))
    inward = 1.0 if side == 0 else -1.0
    red = p.material(TRAFFIC_SIGN, _jitter(rng, [200, 30, 30], 15), _FLAT, 1.0, depth=z - 0.05)
    white = p.material(TRAFFIC_SIGN, _jitter(rng, [235, 235, 230], 8), _FLAT, 1.0, depth=z - 0.05)
    blue = p.material(TRAFFIC_SIGN, _jitter(rng, [30, 70, 170], 15), _FLAT, 1.0, depth=z - 0.05)

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


def _person(p, cam, rng, u, z):
    hgt = float(rng.uniform(1.5, 1.95))
    side_view = rng.random() < 0.4
    wscale = 0.62 if side_view else 1.0
    shirt = _hsv(float(rng.random()), float(rng.uniform(0.1, 0.9)), float(rng.uniform(0.15, 0.95)))
    pants = _jitter(rng, [[35, 40, 70], [30, 30, 30], [110, 110, 115], [180, 160, 120], [60, 50, 40]][int(rng.integers(5))], 12)
    skin = _jitter(rng, SKIN[int(rng.integers(len(SKIN)))], 10)
    hair = _jitter(rng, [[30, 25, 20], [90, 60, 30], [200, 170, 100], [120, 120, 120]][int(rng.integers(4))], 10)
    m_shirt = p.material(PERSON, shirt, _SMOOTH, 1.0, depth=z)
    m_pants = p.material(PERSON, pants, _SMOOTH, 1.0, depth=z)
    m_skin = p.material(PERSON, skin, _FLAT, 1.0, depth=z)
    m_hair = p.material(PERSON, hair, _FLAT, 1.0, depth=z)
    stride = float(rng.uniform(0.0, 0.35)) if side_view else float(rng.uniform(0.0, 0.1))
    skirt = rng.random() < 0.15
    bag = _hsv(float(rng.random()), 0.6, float(rng.uniform(0.2, 0.8))) if rng.random() < 0.3 else None
    m_bag = p.material(PERSON, bag, _FLAT, 1.0, depth=z) if bag else None

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


def _car(p, cam, rng, u, z, oncoming=False):
    width = float(rng.uniform(1.65, 1.95))
    length = float(rng.uniform(3.8, 4.9))
    van = rng.random() < 0.15
    height = float(rng.uniform(1.85, 2.2)) if van else float(rng.uniform(1.35, 1.6))
    body_top = height * (0.75 if van else float(rng.uniform(0.55, 0.62)))
    paint = _jitter(rng, CAR_COLOURS[int(rng.integers(len(CAR_COLOURS)))], 15)
    m_body = p.material(CAR, paint, _SMOOTH, 0.8, depth=z)
    m_side = p.material(CAR, _shade(paint, 0.8), _SMOOTH, 0.8, depth=z)
    m_glass = p.material(CAR, _jitter(rng, [40, 45, 55], 10), _GLASS, 0.8, depth=z)
    m_tyre = p.material(CAR, [20, 20, 22], _FLAT, 1.0, depth=z)
    m_light = p.material(CAR, [235, 235, 215] if oncoming else [190, 25, 25], _FLAT, 0.5, depth=z)
    m_plate = p.material(CAR, [225, 225, 220], _FLAT, 0.5, depth=z)
    m_bumper = p.material(CAR, _shade(paint, 0.45), _FLAT, 1.0, depth=z)

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


def _backdrop(p, cam, rng, w):
    """Distant skyline or tree line at 80-150 m closing the view at the horizon."""
    z = float(rng.uniform(80, 150))
    trees = rng.random() < 0.4
    cls, kind = (VEGETATION, _FOLIAGE) if trees else (BUILDING, _SMOOTH)
    colour = _jitter(rng, [70, 95, 60] if trees else [140, 140, 145], 20)
    mats = [p.material(cls, _shade(colour, float(rng.uniform(0.85, 1.15))), kind, 1.0, depth=z) for _ in range(3)]
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


# -- street furniture (Cityscapes "static": void in the labels, part of every split) -------------------------------
FURNITURE = ("bin", "bench", "bollard", "cabinet", "skip", "column")
FURNITURE_COLOURS = ([60, 65, 60], [45, 70, 50], [40, 50, 80], [110, 105, 95], [150, 150, 145], [95, 70, 50],
                     [30, 30, 32], [130, 120, 80])


def _furniture(p, cam, rng, u, z):
    """A bin, bench, bollard, utility cabinet, skip or advertising column at (``u``, ``z``) in muted colours.

    Cityscapes labels such objects "static" (labelId 4, no train id): the network sees them in training
    without a class, as Cityscapes-trained networks do. Their flat, dull paint is unlike the anomalies' patterns."""
    kind = FURNITURE[int(rng.integers(len(FURNITURE)))]
    colour = _jitter(rng, FURNITURE_COLOURS[int(rng.integers(len(FURNITURE_COLOURS)))], 12)
    body = p.material(_STATIC, colour, _SMOOTH, 1.0, depth=z)
    dark = p.material(_STATIC, _shade(colour, 0.6), _SMOOTH, 1.0, depth=z)
    width = {"bin": (0.45, 0.7), "bench": (1.4, 2.0), "bollard": (0.12, 0.2), "cabinet": (0.6, 1.1),
             "skip": (1.6, 2.2), "column": (1.0, 1.3)}[kind]
    height = {"bin": (0.8, 1.1), "bench": (0.75, 0.9), "bollard": (0.6, 1.0), "cabinet": (0.9, 1.5),
              "skip": (1.0, 1.4), "column": (2.4, 3.0)}[kind]
    ww, hh = float(rng.uniform(*width)), float(rng.uniform(*height))

    def draw():
        x0, y0 = cam.point(u, z, 0)
        s = cam.scale(z)

        def rect(left, right, bottom, top, m):
            p.upright(x0, y0, s, left, right, bottom, left, right, top, m)

        if kind == "bench":
            for sgn in (-1, 1):
                rect(sgn * ww * 0.42 - 0.04, sgn * ww * 0.42 + 0.04, 0, 0.45, dark)
            rect(-ww / 2, ww / 2, 0.42, 0.5, body)
            rect(-ww / 2, ww / 2, 0.55, hh, body)
        elif kind == "bin":
            rect(-ww / 2, ww / 2, 0, hh * 0.9, body)
            rect(-ww / 2 - 0.03, ww / 2 + 0.03, hh * 0.9, hh, dark)
        elif kind == "bollard":
            rect(-ww / 2, ww / 2, 0, hh, body)
            rect(-ww / 2, ww / 2, hh * 0.8, hh * 0.88, dark)
        elif kind == "skip":
            p.polygon([(x0 - ww / 2 * s, y0), (x0 + ww / 2 * s, y0), (x0 + ww * 0.62 * s, y0 - hh * s),
                       (x0 - ww * 0.62 * s, y0 - hh * s)], body)
            rect(-ww * 0.62, ww * 0.62, hh * 0.85, hh, dark)
        elif kind == "column":
            rect(-ww / 2, ww / 2, 0, hh, body)
            rect(-ww / 2 - 0.05, ww / 2 + 0.05, hh - 0.15, hh + 0.1, dark)
        else:
            rect(-ww / 2, ww / 2, 0, hh, body)
            rect(-ww / 2 + 0.05, ww / 2 - 0.05, hh * 0.3, hh * 0.33, dark)

    return z, draw


# -- movable clutter (Cityscapes "dynamic": void in the labels, part of every split) ------------------------------
CLUTTER = ("trolley", "pram", "crates", "luggage", "barrels", "board", "barrier", "container")


def _clutter_colour(rng):
    """Everyday paint and plastic: dull colours, or a moderately saturated hue (never the anomalies' patterns)."""
    if rng.random() < 0.5:
        return _jitter(rng, FURNITURE_COLOURS[int(rng.integers(len(FURNITURE_COLOURS)))], 20)
    return _hsv(float(rng.random()), float(rng.uniform(0.2, 0.75)), float(rng.uniform(0.3, 0.85)))


def _clutter(p, cam, rng, u, z):
    """A shopping trolley, pram, stack of crates, luggage, barrels, sandwich board, work barrier or site container
    at (``u``, ``z``).

    Cityscapes labels movable objects "dynamic" (labelId 5, no train id), so a Cityscapes-trained network sees
    many unlabelled objects. They are built from boxes, discs and frames in plain paint (smooth or grainy, two
    colours), unlike the anomalies' organic shapes and patterned textures."""
    kind = CLUTTER[int(rng.integers(len(CLUTTER)))]
    colour = _clutter_colour(rng)
    body = p.material(_DYNAMIC, colour, _SMOOTH if rng.random() < 0.7 else _GRAIN, 1.0, depth=z)
    other = p.material(_DYNAMIC, _clutter_colour(rng) if rng.random() < 0.5 else _shade(colour, 0.55), _SMOOTH, 1.0,
                       depth=z)
    size = {"trolley": (0.9, 1.1), "pram": (0.9, 1.1), "crates": (0.3, 0.45), "luggage": (0.5, 0.8),
            "barrels": (0.8, 1.0), "board": (0.8, 1.1), "barrier": (0.9, 1.1), "container": (2.0, 2.7)}[kind]
    hh = float(rng.uniform(*size))
    ww = {"barrier": float(rng.uniform(1.5, 3.0)), "container": float(rng.uniform(2.4, 4.5))}.get(
        kind, hh * float(rng.uniform(0.6, 1.0)))
    count = int(rng.integers(1, 4))

    def draw():
        x0, y0 = cam.point(u, z, 0)
        s = cam.scale(z)

        def rect(left, right, bottom, top, m):
            p.upright(x0, y0, s, left, right, bottom, left, right, top, m)

        def wheel(dx, r):
            p.ellipse(x0 + dx * s, y0 - r * s, r * s, r * s, other)

        if kind == "trolley":
            p.upright(x0, y0, s, -ww * 0.45, ww * 0.5, hh * 0.35, -ww * 0.6, ww * 0.55, hh * 0.85, body)
            rect(-ww * 0.6, -ww * 0.52, hh * 0.85, hh, other)
            rect(-ww * 0.4, -ww * 0.35, 0.05, hh * 0.35, other)
            rect(ww * 0.35, ww * 0.4, 0.05, hh * 0.35, other)
            wheel(-ww * 0.38, 0.06), wheel(ww * 0.38, 0.06)
        elif kind == "pram":
            p.ellipse(x0, y0 - hh * 0.55 * s, ww * 0.45 * s, hh * 0.25 * s, body)
            p.upright(x0, y0, s, -ww * 0.45, 0.0, hh * 0.55, -ww * 0.4, -ww * 0.1, hh * 0.95, other)
            rect(ww * 0.35, ww * 0.4, hh * 0.6, hh, other)
            wheel(-ww * 0.3, 0.12), wheel(ww * 0.3, 0.12)
        elif kind == "crates":
            level = 0.0
            for i in range(count + 1):
                off = 0.08 * (i % 2)
                rect(-ww / 2 + off, ww / 2 + off, level, level + hh, body if i % 2 == 0 else other)
                level += hh
        elif kind == "luggage":
            for i in range(count):
                dx = (i - (count - 1) / 2) * ww * 0.8
                bh = hh * (1.0 - 0.2 * i)
                rect(dx - ww * 0.3, dx + ww * 0.3, 0, bh, body if i % 2 == 0 else other)
                rect(dx - ww * 0.1, dx + ww * 0.1, bh, bh + 0.12, other)
        elif kind == "barrels":
            for i in range(count):
                dx = (i - (count - 1) / 2) * ww * 0.75
                rect(dx - ww * 0.35, dx + ww * 0.35, 0, hh, body)
                rect(dx - ww * 0.36, dx + ww * 0.36, hh * 0.3, hh * 0.38, other)
                rect(dx - ww * 0.36, dx + ww * 0.36, hh * 0.68, hh * 0.76, other)
        elif kind == "board":
            p.upright(x0, y0, s, -ww * 0.45, ww * 0.45, 0, -ww * 0.3, ww * 0.3, hh, body)
            rect(-ww * 0.22, ww * 0.22, hh * 0.35, hh * 0.8, other)
        elif kind == "container":  # a framed box with a two-leaf door: no repeated ribs, which read as fence bars
            rect(-ww / 2, ww / 2, 0, hh, other)
            rect(-ww / 2 + 0.12, ww / 2 - 0.12, 0.15, hh - 0.15, body)
            rect(ww * 0.2 - 0.02, ww * 0.2 + 0.02, 0.15, hh - 0.15, other)
            rect(ww * 0.35 - 0.1, ww * 0.35, hh * 0.45, hh * 0.5, other)
        else:  # work barrier: a striped board on two feet
            rect(-ww / 2, -ww / 2 + 0.06, 0, hh, other)
            rect(ww / 2 - 0.06, ww / 2, 0, hh, other)
            stripes = 6
            for i in range(stripes):
                a = -ww / 2 + ww * i / stripes
                rect(a, a + ww / stripes, hh * 0.6, hh * 0.9, body if i % 2 == 0 else other)

    return z, draw


# -- anomalies --------------------------------------------------------------------------------------------------------
def _anomaly_colour(rng):
    if rng.random() < 0.25:  # muted: no colour cue, only shape and texture
        g = float(rng.uniform(40, 220))
        return _jitter(rng, [g, g, g], 25)
    return _hsv(float(rng.random()), float(rng.uniform(0.6, 1.0)), float(rng.uniform(0.5, 1.0)))


def _anomaly(p, cam, rng, u, z, size, inst):
    """An object of no known class standing on the ground at (``u``, ``z``), about ``size`` m tall."""
    shape = ANOMALY_SHAPES[int(rng.integers(len(ANOMALY_SHAPES)))]
    aspect = math.exp(float(rng.uniform(-0.7, 0.9)))  # width / height
    mats = []
    for _ in range(2):
        pattern = ANOMALY_PATTERNS[int(rng.integers(len(ANOMALY_PATTERNS)))]
        p.patterns.append({"pattern": pattern, "colour2": _anomaly_colour(rng),
                           "period": max(2.0, cam.scale(z) * size * float(rng.uniform(0.08, 0.3))),
                           "angle": float(rng.uniform(0, math.pi))})
        mats.append(p.material(_ANOMALY, _anomaly_colour(rng), _PATTERN, 1.0, depth=z, param=len(p.patterns) - 1,
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


# -- shading ------------------------------------------------------------------------------------------------------------
def _unit_noise(rng, shape):
    """Zero-mean, unit-variance triangular noise from two uniform draws (exact bit arithmetic, no libm)."""
    return (rng.random(shape, dtype=np.float32) + rng.random(shape, dtype=np.float32) - 1.0) * np.float32(6 ** 0.5)


def _smooth_noise(rng, h, w, cell):
    small = _unit_noise(rng, (max(2, h // cell + 2), max(2, w // cell + 2)))
    return np.asarray(Image.fromarray(small, mode="F").resize((w, h), Image.BILINEAR), dtype=np.float32)


def _pattern_weight(spec, xs, ys, fine, medium):
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


def _shade_image(rng, p, ids, gdepth, u, cam):
    """Pixels of the material canvas ``ids``; multiplicative texture maps are built full-frame (no indexing)."""
    h, w = ids.shape
    kind = np.asarray(p.kind, np.int64)
    fine = _unit_noise(rng, (h, w))
    medium = _smooth_noise(rng, h, w, 3)
    smooth = _smooth_noise(rng, h, w, 24)
    weights = _NOISE_WEIGHTS[kind] * np.asarray(p.amp, np.float32)[:, None]  # per material
    factor = 1.0 + np.take(weights[:, 0], ids) * fine + np.take(weights[:, 1], ids) * medium \
        + np.take(weights[:, 2], ids) * smooth
    kmap = np.take(kind, ids)
    param = np.take(np.asarray(p.param, np.float32), ids)
    depth = np.take(np.asarray(p.depth, np.float32), ids)
    on_ground = depth < 0
    gz = np.minimum(gdepth, 1e4).astype(np.float32)
    ug = u.astype(np.float32)

    # sidewalk tiles: grout lines in ground coordinates, faded where a tile shrinks below a few pixels
    tile = np.where(kmap == _TILES, param, np.float32(1.0))
    fade = np.clip(1.5 - 4.0 * (gz * gz / np.float32(cam.f * cam.hc)) / tile, 0, 1)
    grout = (np.mod(ug, tile) < 0.07 * tile) | (np.mod(gz, tile) < 0.07 * tile)
    factor *= np.where((kmap == _TILES) & grout, 1.0 - 0.22 * fade, np.float32(1.0))
    # fence bars: vertical stripes of the material's period in pixels
    period = np.where(kmap == _BARS, param, np.float32(1.0))
    xs = np.arange(w, dtype=np.float32)[None, :]
    factor *= np.where(kmap == _BARS, np.where(np.mod(xs, period) < 0.45 * period, 1.15, 0.65), np.float32(1.0))
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
    for m in np.flatnonzero(kind == _PATTERN):  # anomaly patterns, within each anomaly's bounding box
        yy, xx = np.nonzero(ids == m)
        if yy.size == 0:
            continue
        box = np.s_[yy.min():yy.max() + 1, xx.min():xx.max() + 1]
        by, bx = np.mgrid[box]
        spec = p.patterns[int(p.param[m])]
        wgt = _pattern_weight(spec, bx.astype(np.float32), by.astype(np.float32), fine[box], medium[box])
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


# -- the scene ----------------------------------------------------------------------------------------------------------
def _ground_point(rng, cam, lay, where, z_lo, z_hi):
    """(u, z) of a random ground point: ``where`` in road, sidewalk, offroad (verge, sidewalk, beyond)."""
    z = float(rng.uniform(z_lo, z_hi))
    side = int(rng.integers(2))
    sign = -1.0 if side == 0 else 1.0
    if where == "road":
        return float(rng.uniform(-lay.road[0] + 0.4, lay.road[1] - 0.4)), z
    if where == "sidewalk" and lay.sidewalk[side] > 0:
        a = lay.road[side] + lay.verge[side] + 0.4
        return sign * float(rng.uniform(a, max(a, lay.edge(side) - 0.4))), z
    a = lay.road[side] + 0.3
    b = lay.facade(side) - 0.4 if lay.urban[side] else lay.edge(side) + 6.0
    return sign * float(rng.uniform(a, max(a, b))), z


def _place_anomalies(p, cam, rng, lay, mode, objects):
    """Add 1-4 anomalies standing in view (base centre within the middle 90% of the width); returns how many."""
    count = int(rng.choice([1, 1, 2, 2, 3, 4]))
    for inst in range(1, count + 1):
        for _ in range(20):
            if mode == "obstacle":
                size = math.exp(float(rng.uniform(math.log(0.12), math.log(1.0))))
                u, z = _ground_point(rng, cam, lay, "road", cam.z_near + 1.0, 35.0)
            else:
                large = rng.random() < 0.35
                size = float(rng.uniform(1.5, 3.5)) if large else math.exp(float(rng.uniform(math.log(0.3), math.log(2.5))))
                where = "road" if rng.random() < 0.6 else "offroad"
                z_hi = cam.z_near + 8.0 if large else 30.0
                u, z = _ground_point(rng, cam, lay, where, cam.z_near + 1.0, z_hi)
            z = min(z, cam.f * size / (6.0 if mode == "obstacle" else 12.0))  # at least ~6 (12) pixels tall
            z = max(z, cam.z_near + 0.5)
            if 0.05 * cam.w < cam.point(u, z)[0] < 0.95 * cam.w:
                break
        objects.append(_anomaly(p, cam, rng, u, z, size, inst))
    return count


def _render_once(rng, h, w, mode, ego, min_anomaly_pixels):
    """The scene drawn from ``rng``, or ``None`` (before shading) when an anomaly has too few visible pixels."""
    cam = _Camera(rng, h, w)
    lay = _Layout(rng)
    p = _Painter()
    overcast = rng.random() < 0.35
    p.material(SKY, [0, 0, 0], _SKYK, 1.0, depth=1e6)  # material 0: sky
    if overcast:
        grey = float(rng.uniform(150, 215))
        p.look["sky_top"] = _jitter(rng, [grey, grey, grey + 8], 8)
        p.look["sky_horizon"] = _jitter(rng, [grey + 25, grey + 25, grey + 25], 8)
    else:
        p.look["sky_top"] = _jitter(rng, [60, 110, 200], 25)
        p.look["sky_horizon"] = _jitter(rng, [185, 210, 235], 15)
    p.look["cloud_level"] = float(rng.uniform(0.2, 1.2))
    p.look["cloud_colour"] = _jitter(rng, [235, 235, 238], 10)

    mats, gdepth, u, lane_mats = _ground(rng, cam, lay, p, h, w)
    objects = []
    z_far = float(rng.uniform(70, 110))

    # patches and manhole covers on the road (class road)
    for _ in range(int(rng.integers(0, 3))):
        pu, pz = _ground_point(rng, cam, lay, "road", cam.z_near + 1, 40)
        mat = p.material(ROAD, _shade(p.colour[1], float(rng.uniform(0.7, 1.2))), _GRAIN, 1.0)  # 1: asphalt
        r = float(rng.uniform(0.3, 1.5))
        objects.append((1e5, lambda pu=pu, pz=pz, r=r, mat=mat: p.polygon(
            [cam.point(pu + r * math.cos(a), pz + r * math.sin(a) * 1.5) for a in np.arange(10) * (math.pi / 5)], mat)))

    sun_side = int(rng.integers(2))
    p.look["shadow"] = (sun_side, float(rng.uniform(-2, 4)), float(rng.uniform(-0.05, 0.1)), float(rng.uniform(0.55, 0.8))) \
        if not overcast and rng.random() < 0.6 else None
    facades = []
    for side in (0, 1):
        b = lay.facade(side)
        if lay.urban[side]:
            z = float(rng.uniform(cam.z_near * 0.3, cam.z_near + 6))
            while z < z_far:
                length = float(rng.uniform(8, 30))
                colour = _jitter(rng, FACADE_COLOURS[int(rng.integers(len(FACADE_COLOURS)))], 15)
                height = float(rng.uniform(6, 26))
                if rng.random() < 0.2:  # a gap: something lower behind the building line
                    kind = ["hedge", "wall", "fence"][int(rng.integers(3))]
                    facades.append(_barrier(p, cam, rng, side, lay.edge(side) + 0.1, z, z + length, kind))
                    facades.append(_tree(p, cam, rng, (-1 if side == 0 else 1) * (b + 3.0), z + length / 2))
                else:
                    facades.append(_facade_block(p, cam, rng, side, b, z, z + length, height, colour,
                                                 p.look["shadow"] is not None and side == sun_side))
                z += length + (float(rng.uniform(1, 6)) if rng.random() < 0.2 else 0.0)
        else:
            z = float(rng.uniform(2, 10))
            while z < z_far:
                sign = -1 if side == 0 else 1
                facades.append(_tree(p, cam, rng, sign * (lay.edge(side) + float(rng.uniform(1, 8))), z))
                z += float(rng.uniform(4, 12))
        if rng.random() < 0.55:  # a wall, fence or hedge along the sidewalk edge
            z0 = float(rng.uniform(cam.z_near * 0.5, 25))
            kind = ["hedge", "wall", "fence"][int(rng.integers(3))]
            facades.append(_barrier(p, cam, rng, side, lay.edge(side) + (0.05 if lay.urban[side] else 0.5),
                                    z0, z0 + float(rng.uniform(8, 40)), kind))

    for side in (0, 1):
        sign = -1.0 if side == 0 else 1.0
        curb_u = lay.road[side] + lay.verge[side] + 0.35
        if rng.random() < 0.8:
            z, step = float(rng.uniform(2, 15)), float(rng.uniform(12, 30))
            while z < 60:
                objects.append(_pole(p, cam, rng, sign * curb_u, z, side))
                z += step
        if lay.urban[side] and rng.random() < 0.5:
            z, step = float(rng.uniform(3, 12)), float(rng.uniform(7, 18))
            while z < 55:
                tree_u = lay.road[side] + lay.verge[side] / 2 if lay.verge[side] > 1 else curb_u + 0.5
                objects.append(_tree(p, cam, rng, sign * tree_u, z))
                z += step

    # street furniture on sidewalks and verges, now and then at the kerb of the road
    for _ in range(int(rng.choice([0, 1, 2, 2, 3, 4, 5]))):
        fu, fz = _ground_point(rng, cam, lay, "sidewalk", cam.z_near + 0.5, 25)
        if rng.random() < 0.2:
            fu = math.copysign(lay.road[int(fu > 0)] - 1.0, fu)
        objects.append(_furniture(p, cam, rng, fu, fz))
    # movable clutter on sidewalks and verges, now and then at the kerb (never on the road in obstacle frames)
    for _ in range(int(rng.choice([0, 1, 2, 3, 4, 5, 6, 8]))):
        cu, cz = _ground_point(rng, cam, lay, "sidewalk" if rng.random() < 0.7 else "offroad", cam.z_near + 0.5, 20)
        if mode != "obstacle" and rng.random() < 0.35:  # parked in the kerbside lane
            cu = math.copysign(lay.road[int(cu > 0)] - float(rng.uniform(0.3, 2.0)), cu)
        objects.append(_clutter(p, cam, rng, cu, cz))
    # people: on sidewalks, now and then crossing the road
    for _ in range(int(rng.choice([0, 1, 2, 3, 4, 6, 8, 10]))):
        where = "road" if rng.random() < 0.15 and mode != "obstacle" else "sidewalk"
        pu, pz = _ground_point(rng, cam, lay, where, cam.z_near + 0.5, 28)
        objects.append(_person(p, cam, rng, pu, pz))
    # cars: in the lanes (oncoming in the left ones) and parked along the curb
    lane_centres = [-lay.road[0] + (k + 0.5) * lay.lane_w for k in range(lay.lanes)]
    for _ in range(int(rng.choice([0, 1, 2, 3, 4, 5])) if mode != "obstacle" else int(rng.integers(0, 2))):
        k = int(rng.integers(lay.lanes))
        z_lo = cam.z_near + (25.0 if mode == "obstacle" else 2.0)
        lu = lane_centres[k] + float(rng.uniform(-0.3, 0.3))
        objects.append(_car(p, cam, rng, lu, float(rng.uniform(z_lo, z_lo + 50)), oncoming=lane_centres[k] < 0))
    for side in (0, 1):
        if rng.random() < 0.45:
            sign = -1.0 if side == 0 else 1.0
            z = float(rng.uniform(cam.z_near, 20))
            for _ in range(int(rng.integers(1, 5))):
                objects.append(_car(p, cam, rng, sign * (lay.road[side] - 1.1), z))
                z += float(rng.uniform(5.2, 9))
    n_anomalies = _place_anomalies(p, cam, rng, lay, mode, objects) if mode is not None else 0

    p.start(mats)
    _backdrop(p, cam, rng, w)
    for _, draw in sorted(facades, key=lambda o: -o[0]):
        draw()
    for _, draw in sorted(objects, key=lambda o: -o[0]):  # stable: equal depths keep their creation order
        draw()
    if ego:
        hood = p.material(_EGO, _jitter(rng, CAR_COLOURS[int(rng.integers(len(CAR_COLOURS)))], 10), _GLASS, 0.6, depth=1.0)
        top = h * float(1 - rng.uniform(0.06, 0.13))
        xc = w * float(rng.uniform(0.4, 0.6))
        pts = [(x, top + (h - top) * ((x - xc) / (0.8 * w)) ** 2) for x in np.linspace(-2, w + 2, 24)]
        p.polygon(pts + [(w + 2, h + 2), (-2, h + 2)], hood)
    ids = p.ids()
    anomalies = np.take(np.asarray(p.inst, np.uint8), ids)
    if n_anomalies and np.bincount(anomalies.ravel(), minlength=n_anomalies + 1)[1:].min() < min_anomaly_pixels:
        return None

    # photometry of the frame
    foggy = rng.random() < 0.15
    exposure = float(rng.uniform(0.6, 1.2))
    p.look.update(
        visibility=float(rng.uniform(20, 60)) if foggy else float(rng.uniform(250, 700)),
        haze=_jitter(rng, [200, 205, 215], 15), sky_haze=0.5 if foggy else 0.0,
        white_balance=[1.0 + float(rng.uniform(-0.08, 0.08)), 1.0, 1.0 + float(rng.uniform(-0.08, 0.08))],
        exposure=exposure, contrast=float(rng.uniform(0.7, 1.15)) * exposure,
        blur=float(rng.uniform(0.4, 1.0)), sensor_noise=int(rng.integers(1, 5)),
    )
    image = _shade_image(rng, p, ids, gdepth, u, cam)

    cls = np.take(np.asarray(p.cls, np.int64), ids)
    semantic = np.where(cls >= _DYNAMIC, VOID, cls).astype(np.uint8)
    road_line = np.isin(ids, lane_mats)  # the visible lane marks
    return Scene(image, semantic, anomalies, cls == _EGO, cls == _STATIC, cls == _DYNAMIC, road_line)


def render_scene(seed, size=(256, 512), *, mode=None, ego=None, min_anomaly_pixels=None):
    """Render one frame from ``seed`` (an int or a ``numpy.random.SeedSequence``); same seed, same arrays.

    ``mode``: ``None`` inliers only; ``"anomaly"`` 1-4 anomalies anywhere on the ground (road, verge,
    sidewalk), 0.3-3.5 m, a third of them close and large; ``"obstacle"`` 1-4 small obstacles (0.12-1 m) on the road.
    ``ego``: draw the ego-vehicle bonnet (``None``: with probability 0.3). With anomalies, layouts where one
    is hidden (fewer than ``min_anomaly_pixels`` visible; default 40, 12 for obstacles) are redrawn from the next
    child seed (at most 16).
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    h, w = int(size[0]), int(size[1])
    if h < 32 or w < 32:
        raise ValueError(f"size must be at least 32x32, got {h}x{w}")
    seq = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(int(seed))
    if min_anomaly_pixels is None:
        min_anomaly_pixels = 12 if mode == "obstacle" else 40
    attempts = 16
    for attempt in range(attempts):  # child seeds built explicitly: ``seq.spawn`` would change ``seq``
        rng = np.random.default_rng(np.random.SeedSequence(seq.entropy, spawn_key=(*seq.spawn_key, attempt)))
        with_ego = bool(rng.random() < 0.3) if ego is None else bool(ego)
        scene = _render_once(rng, h, w, mode, with_ego, 0 if attempt == attempts - 1 else min_anomaly_pixels)
        if scene is not None:
            return scene
