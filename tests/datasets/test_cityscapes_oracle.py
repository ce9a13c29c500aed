"""The Cityscapes label table, the readers' labelId -> trainId mapping and the world's labelIds, against
cityscapesScripts' own ``helpers/labels.py``."""

import numpy as np
import pytest

from maskbench.datasets import load_dataset
from maskbench.datasets.cityscapes_labels import LABELS, TRAIN_CLASSES, TRAIN_LUT, train_to_label_ids

official = pytest.importorskip("cityscapesscripts.helpers.labels")


def test_label_table_field_by_field():
    assert [(lb.name, lb.id, lb.train_id, lb.category, lb.has_instances, lb.ignore_in_eval) for lb in LABELS] == [
        (lb.name, lb.id, lb.trainId, lb.category, lb.hasInstances, lb.ignoreInEval) for lb in official.labels]
    assert TRAIN_CLASSES == tuple(official.trainId2label[t].name for t in range(19))


def test_label_to_train_lookup():
    for value in range(256):
        label = official.id2label.get(value)
        expected = 255 if label is None or label.trainId < 0 else label.trainId
        assert TRAIN_LUT[value] == expected, value


def test_train_to_label_ids_for_predictions():
    train = np.array([list(range(19)) + [255, -1, 300]])
    assert train_to_label_ids(train).tolist() == [
        [official.trainId2label[t].id for t in range(19)] + [official.trainId2label[255].id, 0, 0]]


def test_cityscapes_reader_against_the_official_table(replica, write_label):
    rep = replica("cityscapes", frames=1)
    write_label(rep.files[rep.samples[0].id]["label"], list(range(34)))
    sample = load_dataset("cityscapes", rep.root)[0]
    expected = [255 if official.id2label[i].trainId in (255, -1) else official.id2label[i].trainId for i in range(34)]
    assert sample.semantic[0, :34].tolist() == expected
    assert sample.label_ids[0, :34].tolist() == list(range(34))
