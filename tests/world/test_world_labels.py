"""The world's val split against cityscapesScripts' own ``helpers/labels.py`` (labelIds, trainIds, instanceIds)."""

import numpy as np
import pytest

official = pytest.importorskip("cityscapesscripts.helpers.labels")


def test_world_label_ids_are_official(small_world):
    """The world's val split: every labelId is an official id, its trainId file agrees with the official table,
    and its instanceIds follow the official encoding (id * 1000 + k on things with instances, else the labelId)."""
    samples = list(small_world.dataset("val"))
    from_train_id_files = list(small_world.dataset("val", labels="labelTrainIds"))
    assert samples and all(s.instance_ids is not None for s in samples)
    for sample, stored in zip(samples, from_train_id_files, strict=True):
        assert np.array_equal(sample.semantic, stored.semantic)
        ids = sample.label_ids
        assert set(np.unique(ids).tolist()) <= set(official.id2label)
        lookup = np.array([official.id2label[i].trainId if i in official.id2label else 255 for i in range(256)])
        lookup[lookup < 0] = 255
        assert np.array_equal(lookup[ids], sample.semantic)
        inst = sample.instance_ids
        things = inst >= 1000
        assert np.array_equal(np.where(things, inst // 1000, inst), ids)
        assert all(official.id2label[int(v) // 1000].hasInstances for v in np.unique(inst[things]))
