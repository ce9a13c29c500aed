"""Objects Cityscapes leaves unlabelled: street furniture (labelId 4 "static") and movable clutter (labelId 5
"dynamic"), void in the labels and part of every split, drawn from boxes, discs and frames in plain paint."""

from maskbench.datasets.world.paint import DYNAMIC, GRAIN, SMOOTH, STATIC, hsv, jitter, shade


FURNITURE = ("bin", "bench", "bollard", "cabinet", "skip", "column")
FURNITURE_COLOURS = ([60, 65, 60], [45, 70, 50], [40, 50, 80], [110, 105, 95], [150, 150, 145], [95, 70, 50],
                     [30, 30, 32], [130, 120, 80])


def furniture(p, cam, rng, u, z):
    """A bin, bench, bollard, utility cabinet, skip or advertising column at (``u``, ``z``) in muted colours.

    Cityscapes labels such objects "static" (labelId 4, no train id): the network sees them in training
    without a class, as Cityscapes-trained networks do. Their flat, dull paint is unlike the anomalies' patterns."""
    kind = FURNITURE[int(rng.integers(len(FURNITURE)))]
    colour = jitter(rng, FURNITURE_COLOURS[int(rng.integers(len(FURNITURE_COLOURS)))], 12)
    body = p.material(STATIC, colour, SMOOTH, 1.0, depth=z)
    dark = p.material(STATIC, shade(colour, 0.6), SMOOTH, 1.0, depth=z)
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


def clutter_colour(rng):
    """Everyday paint and plastic: dull colours, or a moderately saturated hue (never the anomalies' patterns)."""
    if rng.random() < 0.5:
        return jitter(rng, FURNITURE_COLOURS[int(rng.integers(len(FURNITURE_COLOURS)))], 20)
    return hsv(float(rng.random()), float(rng.uniform(0.2, 0.75)), float(rng.uniform(0.3, 0.85)))


def clutter(p, cam, rng, u, z):
    """A shopping trolley, pram, stack of crates, luggage, barrels, sandwich board, work barrier or site container
    at (``u``, ``z``).

    Cityscapes labels movable objects "dynamic" (labelId 5, no train id), so a Cityscapes-trained network sees
    many unlabelled objects. They are built from boxes, discs and frames in plain paint (smooth or grainy, two
    colours), unlike the anomalies' organic shapes and patterned textures."""
    kind = CLUTTER[int(rng.integers(len(CLUTTER)))]
    colour = clutter_colour(rng)
    body = p.material(DYNAMIC, colour, SMOOTH if rng.random() < 0.7 else GRAIN, 1.0, depth=z)
    other = p.material(DYNAMIC, clutter_colour(rng) if rng.random() < 0.5 else shade(colour, 0.55), SMOOTH, 1.0,
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

