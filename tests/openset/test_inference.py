"""The inference procedures against literal, loop-based transcriptions of the papers' equations."""

import math

import numpy as np
import pytest
import torch

from maskbench.errors import InputError
from maskbench.openset import (
    add_unknown_segments, eam_unknown_instances, open_set_prediction, panoptic_inference, semantic_scores,
)


def random_outputs(seed, q=6, k=4, h=9, w=11, conf=()):
    g = torch.Generator().manual_seed(seed)
    c = torch.randn(q, k + 1, generator=g) * 2
    for query, cls, boost in conf:
        c[query, cls] += boost
    m = torch.randn(q, h, w, generator=g) * 4
    return c, m


def literal_semantic(c, m):
    """Eq. 5: S_k(x) = sum_q softmax(C_q)_k sigmoid(M_q(x)), softmax over K+1, void column dropped after."""
    q, k1 = c.shape
    out = np.zeros((k1 - 1, m.shape[1], m.shape[2]))
    for qi in range(q):
        e = [math.exp(float(v)) for v in c[qi]]
        p = [v / sum(e) for v in e]
        for y in range(m.shape[1]):
            for x in range(m.shape[2]):
                sig = 1 / (1 + math.exp(-float(m[qi, y, x])))
                for kk in range(k1 - 1):
                    out[kk, y, x] += p[kk] * sig
    return out


@pytest.mark.parametrize("seed", range(3))
def test_eq16_open_set_prediction(seed):
    c, m = random_outputs(seed)
    s = semantic_scores(c, m)
    np.testing.assert_allclose(s.numpy(), literal_semantic(c, m), rtol=1e-5, atol=1e-6)
    anomaly = torch.rand(m.shape[1:], generator=torch.Generator().manual_seed(seed))
    t = float(anomaly.flatten()[7])
    k = s.shape[0]
    pred = open_set_prediction(s.argmax(0), anomaly, t, k)
    for y in range(m.shape[1]):
        for x in range(m.shape[2]):
            # f_oss = argmax(concat(g, f_hat)): f_hat fires (above every class score) iff f > t
            g = [float(s[kk, y, x]) for kk in range(k)]
            f_hat = math.inf if float(anomaly[y, x]) > t else -math.inf
            values = g + [f_hat]
            assert int(pred[y, x]) == values.index(max(values))
    assert int((pred == k).sum()) == int((anomaly > t).sum())  # strict: the calibration pixel itself stays known


def blocky_outputs(seed, q=7, k=4, h=12, w=14, conf=()):
    """Each query's mask is a noisy random rectangle, so queries overlap partly (exercises both thresholds)."""
    c, _ = random_outputs(seed, q=q, k=k, h=h, w=w, conf=conf)
    g = torch.Generator().manual_seed(100 + seed)
    m = torch.randn(q, h, w, generator=g) - 4
    for i in range(q):
        y0, x0 = (int(v) for v in torch.randint(0, h - 4, (1,), generator=g).tolist() + torch.randint(0, w - 4, (1,), generator=g).tolist())
        dy, dx = (int(v) for v in torch.randint(3, 8, (2,), generator=g))
        m[i, y0:y0 + dy, x0:x0 + dx] += 8
    return c, m


def literal_panoptic(c, m, is_thing, omt=0.8, ovt=0.8):
    """Mask2Former panoptic_inference written per pixel and per query."""
    q, k1 = c.shape
    h, w = m.shape[1:]
    probs = [[math.exp(float(v)) for v in c[i]] for i in range(q)]
    probs = [[v / sum(p) for v in p] for p in probs]
    sig = [[[1 / (1 + math.exp(-float(m[i, y, x]))) for x in range(w)] for y in range(h)] for i in range(q)]
    kept = []
    for i in range(q):
        best = max(range(k1), key=lambda j: (probs[i][j], -j))
        if best != k1 - 1 and probs[i][best] > omt:
            kept.append((i, best, probs[i][best]))
    ids = [[0] * w for _ in range(h)]
    segments, stuff = [], {}
    if not kept:
        return np.array(ids), segments
    winner = [[max(range(len(kept)), key=lambda j: (kept[j][2] * sig[kept[j][0]][y][x], -j)) for x in range(w)]
              for y in range(h)]
    for j, (i, cls, _) in enumerate(kept):
        won = sum(winner[y][x] == j for y in range(h) for x in range(w))
        own = sum(sig[i][y][x] >= 0.5 for y in range(h) for x in range(w))
        region = [(y, x) for y in range(h) for x in range(w) if winner[y][x] == j and sig[i][y][x] >= 0.5]
        if won == 0 or own == 0 or not region or won / own < ovt:
            continue
        if not is_thing[cls] and cls in stuff:
            sid = stuff[cls]
        else:
            sid = len(segments) + 1
            if not is_thing[cls]:
                stuff[cls] = sid
            segments.append({"id": sid, "category_id": cls, "isthing": bool(is_thing[cls])})
        for y, x in region:
            ids[y][x] = sid
    return np.array(ids), segments


@pytest.mark.parametrize("seed", range(4))
def test_panoptic_inference_literal(seed):
    # several confident queries, two of the same stuff class (merged into one segment)
    c, m = blocky_outputs(seed, conf=((0, 1, 9), (1, 1, 9), (2, 0, 9), (3, 2, 9), (4, 3, 6), (5, 0, 9)))
    is_thing = torch.tensor([True, False, True, False])
    ids, segments = panoptic_inference(c, m, is_thing, object_mask_threshold=0.8, overlap_threshold=0.5)
    ref_ids, ref_segments = literal_panoptic(c, m, [True, False, True, False], ovt=0.5)
    np.testing.assert_array_equal(ids.numpy(), ref_ids)
    assert segments == ref_segments and len(segments) >= 2
    ids8, seg8 = panoptic_inference(c, m, is_thing)  # reference defaults 0.8 / 0.8
    ref8 = literal_panoptic(c, m, [True, False, True, False])
    np.testing.assert_array_equal(ids8.numpy(), ref8[0])
    assert seg8 == ref8[1]


def test_panoptic_inference_no_confident_query_and_bad_thing_list():
    c, m = random_outputs(0)
    c[:, -1] += 20  # every query says void
    ids, segments = panoptic_inference(c, m, torch.ones(4, dtype=torch.bool))
    assert segments == [] and int(ids.abs().sum()) == 0
    with pytest.raises(InputError):
        panoptic_inference(c, m, torch.ones(3, dtype=torch.bool))


def test_eam_unknown_instances_literal():
    c, m = random_outputs(5, q=5, h=30, w=30)
    anomaly = torch.rand(30, 30, generator=torch.Generator().manual_seed(1))
    t, min_pixels = 0.3, 60
    masks = eam_unknown_instances(m, anomaly, t, min_pixels=min_pixels)
    sig = torch.sigmoid(m).numpy()
    # each anomalous pixel -> its preferred mask (largest sigmoid, first on ties); masks with > min_pixels kept
    assigned = {}
    for y in range(30):
        for x in range(30):
            if float(anomaly[y, x]) > t:
                col = list(sig[:, y, x])
                assigned.setdefault(col.index(max(col)), []).append((y, x))
    expected = [q for q in sorted(assigned) if len(assigned[q]) > min_pixels]
    assert len(masks) == len(expected) >= 1
    for mask, q in zip(masks, expected):
        ref = np.zeros((30, 30), bool)
        for y, x in assigned[q]:
            ref[y, x] = True
        np.testing.assert_array_equal(mask.numpy(), ref)


def test_add_unknown_segments_overrides_and_drops_emptied():
    ids = torch.tensor([[1, 1, 2], [1, 1, 2]], dtype=torch.int32)
    segments = [{"id": 1, "category_id": 0, "isthing": True}, {"id": 2, "category_id": 3, "isthing": False}]
    unknown = [torch.tensor([[False, False, True], [False, False, True]]), torch.zeros(2, 3, dtype=torch.bool)]
    new_ids, new_segments = add_unknown_segments(ids, segments, unknown)
    assert new_ids.tolist() == [[1, 1, 3], [1, 1, 3]]
    assert new_segments == [segments[0], {"id": 3, "category_id": -1, "isthing": True}]
    assert ids.tolist() == [[1, 1, 2], [1, 1, 2]]  # input untouched


def literal_background(c, m):
    """Eq. 17 per pixel: 1 - max over known-class masks of max_z softmax(C)_z * sigmoid(M)."""
    q, k1 = c.shape
    probs = [[math.exp(float(v)) for v in c[i]] for i in range(q)]
    probs = [[v / sum(p) for v in p] for p in probs]
    known = [i for i in range(q) if max(range(k1), key=lambda j: (probs[i][j], -j)) != k1 - 1]
    out = np.ones(m.shape[1:])
    for y in range(m.shape[1]):
        for x in range(m.shape[2]):
            if known:
                out[y, x] = 1 - max(max(probs[i][:-1]) / (1 + math.exp(-float(m[i, y, x]))) for i in known)
    return out


@pytest.mark.parametrize("seed", range(3))
def test_background_eq17_literal(seed):
    c, m = blocky_outputs(seed, conf=((0, 1, 9), (2, 3, 9)))
    from maskbench.openset import background_map

    np.testing.assert_allclose(background_map(c, m).numpy(), literal_background(c, m), rtol=0, atol=1e-6)
    c[:, -1] += 50  # every query void: no known mask, all background
    np.testing.assert_array_equal(background_map(c, m).numpy(), np.ones(m.shape[1:]))


def literal_mining(c, m, is_thing, bg_thr, ov):
    """TPAMI §6.3 steps 1-4, written with loops: flood-fill components (8-neighbours) of B > bg_thr, IoU with
    each sigmoid(M) > 0.5 mask, entropy test E_S > E_T on the best-overlapping mask's class scores."""
    b = literal_background(c, m) > bg_thr
    h, w = b.shape
    label = np.zeros((h, w), int)
    n = 0
    for y in range(h):  # raster order, as scipy.ndimage.label numbers components
        for x in range(w):
            if b[y, x] and not label[y, x]:
                n += 1
                stack = [(y, x)]
                label[y, x] = n
                while stack:
                    cy, cx = stack.pop()
                    for dy in (-1, 0, 1):
                        for dx in (-1, 0, 1):
                            ny, nx = cy + dy, cx + dx
                            if 0 <= ny < h and 0 <= nx < w and b[ny, nx] and not label[ny, nx]:
                                label[ny, nx] = n
                                stack.append((ny, nx))
    sig = 1 / (1 + np.exp(-m.double().numpy()))
    out = []
    for comp in range(1, n + 1):
        region = label == comp
        ious = []
        for i in range(c.shape[0]):
            mask = sig[i] > 0.5
            ious.append((region & mask).sum() / (region | mask).sum())
        best = ious.index(max(ious))
        e = [math.exp(float(v)) for v in c[best].double()]
        p = [v / sum(e) for v in e][:-1]
        h_terms = [-v * math.log(v) if v > 0 else 0.0 for v in p]
        e_s = np.mean([t for t, th in zip(h_terms, is_thing) if not th])
        e_t = np.mean([t for t, th in zip(h_terms, is_thing) if th])
        if ious[best] > ov and e_s > e_t:
            out.append(region)
    return out


@pytest.mark.parametrize("seed", range(4))
def test_mining_literal(seed):
    from maskbench.openset import mine_unknown_instances

    # query 0: a known stuff mask (a cross) splitting the background into four quadrants; queries 1..6 void
    # with random blocks (candidate unknown objects); query 1's block is also a known thing
    c, m = blocky_outputs(seed, conf=((0, 1, 12), (1, 0, 12)) + tuple((i, 4, 12) for i in range(2, 7)))
    m[0] = -8 + 0.1 * m[0]
    m[0, 5:7, :] = 8
    m[0, :, 6:8] = 8
    for i in range(2, 7):  # uneven class scores, so the entropy test goes both ways
        c[i, :4] = torch.randn(4, generator=torch.Generator().manual_seed(seed * 10 + i)) * 2
    is_thing = [True, False, True, False]
    for overlap in (0.1, 0.2):
        got = mine_unknown_instances(c, m, torch.tensor(is_thing), background_threshold=0.5, overlap_iou=overlap)
        want = literal_mining(c, m, is_thing, 0.5, overlap)
        assert len(got) == len(want)
        for g, w in zip(got, want):
            np.testing.assert_array_equal(g.numpy(), w)


def test_mining_needs_stuff_and_things():
    from maskbench.openset import mine_unknown_instances

    c, m = random_outputs(0)
    with pytest.raises(InputError, match="stuff"):
        mine_unknown_instances(c, m, torch.ones(4, dtype=torch.bool))
