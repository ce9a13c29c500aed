"""The tasks of `bench run` (one file each) and their registry; :mod:`.base` defines the interface."""

from maskbench.benchmark.tasks.base import TASKS, Task
# Imported for registration; this order is the order of TASKS.names().
from maskbench.benchmark.tasks import anomaly, open_semantic, open_panoptic, predict, semantic  # noqa: F401, I001

__all__ = ["TASKS", "Task"]
