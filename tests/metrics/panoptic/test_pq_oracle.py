"""PQ / SQ / RQ (groups and per class) against cocodataset/panopticapi's own ``pq_compute`` machinery, run on
generated files (panopticapi-lite: ``pip install --no-deps panopticapi-lite``).

``pq_compute`` = ``pq_compute_multi_core`` (one process per CPU) + ``PQStat.pq_average``; the test calls its
``pq_compute_single_core`` on all images (the same per-image code, without the process pool) and then
``pq_average`` per group. EOPSN (jd730/EOPSN ``lib/evaluation.py``) on the oracle side: the GT JSON written for
panopticapi has every segment of an unknown class relabelled to category -1 and a category
``{"id": -1, "name": "unknown", "isthing": 1}`` added, as EOPSN does before its copy of panopticapi's loop;
its groups are then ``pq_average`` over the known things, the stuff, both, and {-1}.
"""

import json

import numpy as np
import pytest

from maskbench.metrics.panoptic import PanopticQuality
from maskbench.metrics.panoptic_categories import UNKNOWN_SPLITS
from maskbench.metrics.panoptic_files import pq_compute_files

evaluation = pytest.importorskip("panopticapi.evaluation")

CATEGORIES = [
    {"id": 1, "name": "person", "isthing": 1}, {"id": 3, "name": "car", "isthing": 1},
    {"id": 18, "name": "dog", "isthing": 1}, {"id": 21, "name": "cow", "isthing": 1},
    {"id": 59, "name": "pizza", "isthing": 1}, {"id": 70, "name": "toilet", "isthing": 1},
    {"id": 149, "name": "road", "isthing": 0}, {"id": 187, "name": "sky-other-merged", "isthing": 0},
]


def _oracle(gt_json, gt_dir, pred_json, pred_dir, unknown_ids=()):
    gt, pred = json.loads(open(gt_json).read()), json.loads(open(pred_json).read())
    categories = {c["id"]: c for c in gt["categories"]}
    if unknown_ids:
        categories = {cid: c for cid, c in categories.items() if cid not in unknown_ids}
        categories[-1] = {"id": -1, "name": "unknown", "isthing": 1}
        for ann in gt["annotations"]:
            for seg in ann["segments_info"]:
                if seg["category_id"] in unknown_ids:
                    seg["category_id"] = -1
    preds = {a["image_id"]: a for a in pred["annotations"]}
    pairs = [(a, preds[a["image_id"]]) for a in gt["annotations"]]
    stat = evaluation.pq_compute_single_core(0, pairs, gt_dir, pred_dir, categories)
    known = {cid: c for cid, c in categories.items() if cid != -1}
    groups = {"All": (known, None), "Things": (known, True), "Stuff": (known, False)}
    if unknown_ids:
        groups["Unknown"] = ({-1: categories[-1]}, None)
    results, per_class = {}, {}
    for name, (cats, isthing) in groups.items():
        results[name], classes = stat.pq_average(cats, isthing=isthing)
        per_class.update(classes)
    return results, per_class, stat


def _compare(ours, oracle):
    results, per_class, stat = oracle
    for group, expected in results.items():
        assert ours[group]["n"] == expected["n"], group
        for key in ("pq", "sq", "rq"):
            assert abs(ours[group][key] - expected[key]) <= 1e-12, (group, key)
    counted = 0
    for entry in ours["per_category"]:
        if entry["id"] not in per_class:
            continue
        s = stat.pq_per_cat[entry["id"]]
        assert (entry["tp"], entry["fp"], entry["fn"]) == (s.tp, s.fp, s.fn), entry["name"]
        if entry["counted"]:
            counted += 1
            for key in ("pq", "sq", "rq"):
                assert abs(entry[key] - per_class[entry["id"]][key]) <= 1e-12, (entry["name"], key)
    assert counted == results["All"]["n"] + results.get("Unknown", {"n": 0})["n"]


@pytest.mark.parametrize("seed", range(6))
def test_pq_matches_panopticapi(tmp_path, helpers, seed):
    rng = np.random.default_rng(1000 + seed)
    images = [helpers.random_panoptic_image(rng, CATEGORIES, shape=(30, 40), n_gt=10, area_jitter=seed % 2 == 1)
              for _ in range(8)]
    paths = helpers.write_dataset(tmp_path, CATEGORIES, [(i + 1, *image) for i, image in enumerate(images)])
    _compare(pq_compute_files(*paths), _oracle(*paths))


@pytest.mark.parametrize("seed", range(4))
def test_eopsn_matches_panopticapi_with_the_unknown_category(tmp_path, helpers, seed):
    rng = np.random.default_rng(2000 + seed)
    unknown_ids = tuple(UNKNOWN_SPLITS["K5"])
    images = [helpers.random_panoptic_image(rng, CATEGORIES, shape=(30, 40), n_gt=10, unknown_ids=unknown_ids)
              for _ in range(8)]
    paths = helpers.write_dataset(tmp_path, CATEGORIES, [(i + 1, *image) for i, image in enumerate(images)])
    ours = pq_compute_files(*paths, unknown="K5")
    _compare(ours, _oracle(*paths, unknown_ids=unknown_ids))
    quality = PanopticQuality(CATEGORIES, unknown="K5")
    for image in images:
        quality.update(*image)
    assert quality.compute()["Unknown"] == ours["Unknown"]
