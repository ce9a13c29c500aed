"""Files on disk -> samples: the road-anomaly benchmarks in their official layouts, and tiny replicas of them.

``load_dataset(name, root, **options)`` returns a lazy, deterministically ordered sequence of
:class:`Sample` (``id``, ``image`` uint8 (H, W, 3) RGB, ``ood`` uint8 (H, W) 0 inlier / 1 anomaly / 255 void,
and where the dataset has them ``semantic``, ``panoptic``, ``segments``, ``label_ids``, ``instance_ids``);
``ds.info`` records the conventions. ``frames="all"`` adds the frames without labels (``ood`` None).
Roots may come from ``$MASKBENCH_ROOT_<NAME>`` or ``$MASKBENCH_DATA/<name>`` (see :mod:`.base`).
"""

from maskbench.datasets import (  # noqa: F401  (registration)
    bundle, cityscapes, coco, fishyscapes, lost_and_found, road_anomaly, smiyc, streethazards,
)
from maskbench.datasets.base import DATASETS, VOID, Dataset, Sample
from maskbench.datasets.catalog import (
    CheckReport, accepted_options, check_dataset, describe_datasets, format_dataset_list, load_dataset, parse_options,
)

__all__ = ["DATASETS", "VOID", "CheckReport", "Dataset", "Sample", "accepted_options", "check_dataset",
           "describe_datasets", "format_dataset_list", "load_dataset", "parse_options"]
