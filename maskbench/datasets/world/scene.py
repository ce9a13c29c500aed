"""One procedural road scene of the miniature world: image, Cityscapes train ids, anomaly instances.

The camera and canvas are in :mod:`.paint`; the ground (road, lane marks, sidewalk, curb, verge) is computed per
pixel from the inverted projection (:mod:`.ground`); everything standing on it (façades, walls, fences, hedges,
trees, poles, signs, people, cars: :mod:`.street`; street furniture and clutter: :mod:`.clutter`; anomalies:
:mod:`.anomalies`) is drawn far to near as polygons into an integer *material* canvas, and :mod:`.shading` turns
materials into pixels. Labels come from the material canvas, so they are exact.

Only IEEE-exact arithmetic (``+ - * /``, comparisons, integer blur and noise) touches per-pixel arrays, noise
comes from uniform draws (no libm), scalars use Python's ``math``, and every random draw comes from one
``numpy.random.Generator``, in the order :func:`_render_once` makes its steps: the same seed gives the same bytes.
"""

import math
from dataclasses import dataclass

import numpy as np

from maskbench.datasets.base import VOID
from maskbench.datasets.world.anomalies import place_anomalies
from maskbench.datasets.world.clutter import clutter, furniture
from maskbench.datasets.world.ground import Layout, ground_pixels, ground_point
from maskbench.datasets.world.paint import (
    CAR_COLOURS, DYNAMIC, EGO, FACADE_COLOURS, GLASS, GRAIN, ROAD, SKY, SKYK, STATIC, Camera, Painter, jitter, shade,
)
from maskbench.datasets.world.shading import shade_image
from maskbench.datasets.world.street import backdrop, barrier, car, facade_block, person, pole, tree

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


def _sky(p, rng):
    """Material 0 (the sky) and the sky's look: overcast grey or blue, clouds; returns whether it is overcast."""
    overcast = rng.random() < 0.35
    p.material(SKY, [0, 0, 0], SKYK, 1.0, depth=1e6)  # material 0: sky
    if overcast:
        grey = float(rng.uniform(150, 215))
        p.look["sky_top"] = jitter(rng, [grey, grey, grey + 8], 8)
        p.look["sky_horizon"] = jitter(rng, [grey + 25, grey + 25, grey + 25], 8)
    else:
        p.look["sky_top"] = jitter(rng, [60, 110, 200], 25)
        p.look["sky_horizon"] = jitter(rng, [185, 210, 235], 15)
    p.look["cloud_level"] = float(rng.uniform(0.2, 1.2))
    p.look["cloud_colour"] = jitter(rng, [235, 235, 238], 10)
    return overcast


def _road_patches(p, cam, rng, lay, objects):
    """Patches and manhole covers on the road (class road)."""
    for _ in range(int(rng.integers(0, 3))):
        pu, pz = ground_point(rng, cam, lay, "road", cam.z_near + 1, 40)
        mat = p.material(ROAD, shade(p.colour[1], float(rng.uniform(0.7, 1.2))), GRAIN, 1.0)  # 1: asphalt
        r = float(rng.uniform(0.3, 1.5))
        objects.append((1e5, lambda pu=pu, pz=pz, r=r, mat=mat: p.polygon(
            [cam.point(pu + r * math.cos(a), pz + r * math.sin(a) * 1.5) for a in np.arange(10) * (math.pi / 5)], mat)))


def _buildings(p, cam, rng, lay, z_far, overcast):
    """The sun's shadow, then per side façade blocks with gaps (or trees in the country) and an edge barrier."""
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
                colour = jitter(rng, FACADE_COLOURS[int(rng.integers(len(FACADE_COLOURS)))], 15)
                height = float(rng.uniform(6, 26))
                if rng.random() < 0.2:  # a gap: something lower behind the building line
                    kind = ["hedge", "wall", "fence"][int(rng.integers(3))]
                    facades.append(barrier(p, cam, rng, side, lay.edge(side) + 0.1, z, z + length, kind))
                    facades.append(tree(p, cam, rng, (-1 if side == 0 else 1) * (b + 3.0), z + length / 2))
                else:
                    facades.append(facade_block(p, cam, rng, side, b, z, z + length, height, colour,
                                                p.look["shadow"] is not None and side == sun_side))
                z += length + (float(rng.uniform(1, 6)) if rng.random() < 0.2 else 0.0)
        else:
            z = float(rng.uniform(2, 10))
            while z < z_far:
                sign = -1 if side == 0 else 1
                facades.append(tree(p, cam, rng, sign * (lay.edge(side) + float(rng.uniform(1, 8))), z))
                z += float(rng.uniform(4, 12))
        if rng.random() < 0.55:  # a wall, fence or hedge along the sidewalk edge
            z0 = float(rng.uniform(cam.z_near * 0.5, 25))
            kind = ["hedge", "wall", "fence"][int(rng.integers(3))]
            facades.append(barrier(p, cam, rng, side, lay.edge(side) + (0.05 if lay.urban[side] else 0.5),
                                   z0, z0 + float(rng.uniform(8, 40)), kind))
    return facades


def _kerbside(p, cam, rng, lay, objects):
    """Poles (with signs) along the curb and, in town, a row of trees."""
    for side in (0, 1):
        sign = -1.0 if side == 0 else 1.0
        curb_u = lay.road[side] + lay.verge[side] + 0.35
        if rng.random() < 0.8:
            z, step = float(rng.uniform(2, 15)), float(rng.uniform(12, 30))
            while z < 60:
                objects.append(pole(p, cam, rng, sign * curb_u, z, side))
                z += step
        if lay.urban[side] and rng.random() < 0.5:
            z, step = float(rng.uniform(3, 12)), float(rng.uniform(7, 18))
            while z < 55:
                tree_u = lay.road[side] + lay.verge[side] / 2 if lay.verge[side] > 1 else curb_u + 0.5
                objects.append(tree(p, cam, rng, sign * tree_u, z))
                z += step


def _street_life(p, cam, rng, lay, mode, objects):
    """Street furniture, movable clutter, people and cars (in the lanes and parked along the curb)."""
    # street furniture on sidewalks and verges, now and then at the kerb of the road
    for _ in range(int(rng.choice([0, 1, 2, 2, 3, 4, 5]))):
        fu, fz = ground_point(rng, cam, lay, "sidewalk", cam.z_near + 0.5, 25)
        if rng.random() < 0.2:
            fu = math.copysign(lay.road[int(fu > 0)] - 1.0, fu)
        objects.append(furniture(p, cam, rng, fu, fz))
    # movable clutter on sidewalks and verges, now and then at the kerb (never on the road in obstacle frames)
    for _ in range(int(rng.choice([0, 1, 2, 3, 4, 5, 6, 8]))):
        cu, cz = ground_point(rng, cam, lay, "sidewalk" if rng.random() < 0.7 else "offroad", cam.z_near + 0.5, 20)
        if mode != "obstacle" and rng.random() < 0.35:  # parked in the kerbside lane
            cu = math.copysign(lay.road[int(cu > 0)] - float(rng.uniform(0.3, 2.0)), cu)
        objects.append(clutter(p, cam, rng, cu, cz))
    # people: on sidewalks, now and then crossing the road
    for _ in range(int(rng.choice([0, 1, 2, 3, 4, 6, 8, 10]))):
        where = "road" if rng.random() < 0.15 and mode != "obstacle" else "sidewalk"
        pu, pz = ground_point(rng, cam, lay, where, cam.z_near + 0.5, 28)
        objects.append(person(p, cam, rng, pu, pz))
    # cars: in the lanes (oncoming in the left ones) and parked along the curb
    lane_centres = [-lay.road[0] + (k + 0.5) * lay.lane_w for k in range(lay.lanes)]
    for _ in range(int(rng.choice([0, 1, 2, 3, 4, 5])) if mode != "obstacle" else int(rng.integers(0, 2))):
        k = int(rng.integers(lay.lanes))
        z_lo = cam.z_near + (25.0 if mode == "obstacle" else 2.0)
        lu = lane_centres[k] + float(rng.uniform(-0.3, 0.3))
        objects.append(car(p, cam, rng, lu, float(rng.uniform(z_lo, z_lo + 50)), oncoming=lane_centres[k] < 0))
    for side in (0, 1):
        if rng.random() < 0.45:
            sign = -1.0 if side == 0 else 1.0
            z = float(rng.uniform(cam.z_near, 20))
            for _ in range(int(rng.integers(1, 5))):
                objects.append(car(p, cam, rng, sign * (lay.road[side] - 1.1), z))
                z += float(rng.uniform(5.2, 9))


def _ego(p, rng, h, w):
    """The ego-vehicle bonnet along the bottom of the frame."""
    hood = p.material(EGO, jitter(rng, CAR_COLOURS[int(rng.integers(len(CAR_COLOURS)))], 10), GLASS, 0.6, depth=1.0)
    top = h * float(1 - rng.uniform(0.06, 0.13))
    xc = w * float(rng.uniform(0.4, 0.6))
    pts = [(x, top + (h - top) * ((x - xc) / (0.8 * w)) ** 2) for x in np.linspace(-2, w + 2, 24)]
    p.polygon(pts + [(w + 2, h + 2), (-2, h + 2)], hood)


def _photometry(p, rng):
    """The frame's fog or haze, white balance, exposure and contrast, lens blur and sensor noise."""
    foggy = rng.random() < 0.15
    exposure = float(rng.uniform(0.6, 1.2))
    p.look.update(
        visibility=float(rng.uniform(20, 60)) if foggy else float(rng.uniform(250, 700)),
        haze=jitter(rng, [200, 205, 215], 15), sky_haze=0.5 if foggy else 0.0,
        white_balance=[1.0 + float(rng.uniform(-0.08, 0.08)), 1.0, 1.0 + float(rng.uniform(-0.08, 0.08))],
        exposure=exposure, contrast=float(rng.uniform(0.7, 1.15)) * exposure,
        blur=float(rng.uniform(0.4, 1.0)), sensor_noise=int(rng.integers(1, 5)),
    )


def _render_once(rng, h, w, mode, ego, min_anomaly_pixels):
    """The scene drawn from ``rng``, or ``None`` (before shading) when an anomaly has too few visible pixels."""
    cam = Camera(rng, h, w)
    lay = Layout(rng)
    p = Painter()
    overcast = _sky(p, rng)
    mats, gdepth, u, lane_mats = ground_pixels(rng, cam, lay, p, h, w)
    objects = []
    z_far = float(rng.uniform(70, 110))
    _road_patches(p, cam, rng, lay, objects)
    facades = _buildings(p, cam, rng, lay, z_far, overcast)
    _kerbside(p, cam, rng, lay, objects)
    _street_life(p, cam, rng, lay, mode, objects)
    n_anomalies = place_anomalies(p, cam, rng, lay, mode, objects) if mode is not None else 0

    p.start(mats)
    backdrop(p, cam, rng, w)
    for _, draw in sorted(facades, key=lambda o: -o[0]):
        draw()
    for _, draw in sorted(objects, key=lambda o: -o[0]):  # stable: equal depths keep their creation order
        draw()
    if ego:
        _ego(p, rng, h, w)
    ids = p.ids()
    anomalies = np.take(np.asarray(p.inst, np.uint8), ids)
    if n_anomalies and np.bincount(anomalies.ravel(), minlength=n_anomalies + 1)[1:].min() < min_anomaly_pixels:
        return None

    _photometry(p, rng)
    image = shade_image(rng, p, ids, gdepth, u, cam)

    cls = np.take(np.asarray(p.cls, np.int64), ids)
    semantic = np.where(cls >= DYNAMIC, VOID, cls).astype(np.uint8)
    road_line = np.isin(ids, lane_mats)  # the visible lane marks
    return Scene(image, semantic, anomalies, cls == EGO, cls == STATIC, cls == DYNAMIC, road_line)


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