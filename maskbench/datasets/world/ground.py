"""The ground of a scene: road, lanes, lane marks, curbs, sidewalks and verges, per pixel from the inverted
projection, and random points on it."""

import math

import numpy as np

from maskbench.datasets.world.paint import FLAT, GRAIN, ROAD, SIDEWALK, SMOOTH, TERRAIN, TILES, jitter, shade


class Layout:
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


def ground_pixels(rng, cam, lay, p, h, w):
    """Per-pixel ground: material canvas, depth map, lateral offset, and the lane-mark materials."""
    r0 = min(h, max(0, int(math.floor(cam.yh + 0.25))))  # first row below the horizon
    dy = np.arange(r0, h, dtype=np.float64)[:, None] + 0.5 - cam.yh
    z = cam.f * cam.hc / dy
    u = (np.arange(w, dtype=np.float64)[None, :] + 0.5 - cam.cx) * cam.hc / dy - cam.centre(np.minimum(z, 300.0))

    asphalt = float(rng.uniform(60, 120))
    road = p.material(ROAD, jitter(rng, [asphalt, asphalt, asphalt * 1.02], 6), GRAIN, float(rng.uniform(0.6, 1.4)))
    yellow = rng.random() < 0.2
    lane = p.material(ROAD, [220, 190, 60] if yellow else jitter(rng, [225, 225, 220], 10), FLAT, 1.5)
    edge_lane = p.material(ROAD, jitter(rng, [225, 225, 220], 10), FLAT, 1.5)
    grass = jitter(rng, [float(rng.uniform(70, 120)), float(rng.uniform(100, 140)), float(rng.uniform(40, 70))], 12)
    if rng.random() < 0.3:  # dry grass, earth
        grass = jitter(rng, [150, 135, 90], 15)
    terrain = p.material(TERRAIN, grass, GRAIN, 2.2)
    ground = np.full(u.shape, road, np.int32)
    for side, sign in ((0, -1.0), (1, 1.0)):
        s_u = sign * u
        r, v, s = lay.road[side], lay.verge[side], lay.sidewalk[side]
        tone = float(rng.uniform(120, 190))
        walk = p.material(SIDEWALK, jitter(rng, [tone, tone * 0.97, tone * 0.92], 10), TILES, 1.0,
                          param=float(rng.uniform(0.3, 0.7)))
        curb = p.material(SIDEWALK, shade(p.colour[walk], 1.2), SMOOTH, 0.6)
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



def ground_point(rng, cam, lay, where, z_lo, z_hi):
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

