"""The Cityscapes label table (mcordts/cityscapesScripts ``helpers/labels.py``): the one place for it in maskbench.

Every label with its ``id`` (the value in ``*_gtFine_labelIds.png``), ``train_id`` (255: not trained),
``category``, ``has_instances`` (``*_gtFine_instanceIds.png`` holds ``id * 1000 + k`` on its instances) and
``ignore_in_eval``. The license plate (id -1, never drawn into label images) closes the table as upstream.
Tested field by field against ``cityscapesscripts.helpers.labels`` (tests/datasets/test_cityscapes_oracle.py).
"""

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Label:
    name: str
    id: int
    train_id: int
    category: str
    has_instances: bool
    ignore_in_eval: bool


LABELS = (
    Label("unlabeled", 0, 255, "void", False, True),
    Label("ego vehicle", 1, 255, "void", False, True),
    Label("rectification border", 2, 255, "void", False, True),
    Label("out of roi", 3, 255, "void", False, True),
    Label("static", 4, 255, "void", False, True),
    Label("dynamic", 5, 255, "void", False, True),
    Label("ground", 6, 255, "void", False, True),
    Label("road", 7, 0, "flat", False, False),
    Label("sidewalk", 8, 1, "flat", False, False),
    Label("parking", 9, 255, "flat", False, True),
    Label("rail track", 10, 255, "flat", False, True),
    Label("building", 11, 2, "construction", False, False),
    Label("wall", 12, 3, "construction", False, False),
    Label("fence", 13, 4, "construction", False, False),
    Label("guard rail", 14, 255, "construction", False, True),
    Label("bridge", 15, 255, "construction", False, True),
    Label("tunnel", 16, 255, "construction", False, True),
    Label("pole", 17, 5, "object", False, False),
    Label("polegroup", 18, 255, "object", False, True),
    Label("traffic light", 19, 6, "object", False, False),
    Label("traffic sign", 20, 7, "object", False, False),
    Label("vegetation", 21, 8, "nature", False, False),
    Label("terrain", 22, 9, "nature", False, False),
    Label("sky", 23, 10, "sky", False, False),
    Label("person", 24, 11, "human", True, False),
    Label("rider", 25, 12, "human", True, False),
    Label("car", 26, 13, "vehicle", True, False),
    Label("truck", 27, 14, "vehicle", True, False),
    Label("bus", 28, 15, "vehicle", True, False),
    Label("caravan", 29, 255, "vehicle", True, True),
    Label("trailer", 30, 255, "vehicle", True, True),
    Label("train", 31, 16, "vehicle", True, False),
    Label("motorcycle", 32, 17, "vehicle", True, False),
    Label("bicycle", 33, 18, "vehicle", True, False),
    Label("license plate", -1, -1, "vehicle", False, True),
)

NUM_LABEL_IDS = 34
"""Label ids 0..33 are the values a ``labelIds`` image may hold (the evaluator's ``evalLabels``)."""

CATEGORIES = tuple(dict.fromkeys(label.category for label in LABELS))

TRAIN_CLASSES = tuple(label.name for label in sorted((lb for lb in LABELS if 0 <= lb.train_id < 255),
                                                     key=lambda lb: lb.train_id))
"""The 19 trained classes in train-id order (road .. bicycle)."""

LABEL_TO_TRAIN = {label.id: label.train_id for label in LABELS if 0 <= label.train_id < 255}
TRAIN_TO_LABEL = {train: label for label, train in LABEL_TO_TRAIN.items()}

TRAIN_LUT = np.full(256, 255, dtype=np.uint8)
"""labelId -> trainId for a uint8 image (255 for every id that is not trained, and for values above 33)."""
TRAIN_LUT[list(LABEL_TO_TRAIN)] = list(LABEL_TO_TRAIN.values())

LABEL_LUT = np.zeros(256, dtype=np.uint8)
"""trainId -> labelId for a uint8 prediction (0 "unlabeled" for 255 and every value that is not a train id):
the conversion cityscapesScripts asks of predictions (``trainId2label[t].id``)."""
LABEL_LUT[list(TRAIN_TO_LABEL)] = list(TRAIN_TO_LABEL.values())


def train_to_label_ids(train_ids):
    """Predicted train ids (any integer array) -> Cityscapes labelIds (uint8); values other than 0..18 -> 0."""
    train_ids = np.asarray(train_ids)
    inside = (train_ids >= 0) & (train_ids < 256)
    return np.where(inside, LABEL_LUT[np.clip(train_ids, 0, 255).astype(np.intp)], 0).astype(np.uint8)
