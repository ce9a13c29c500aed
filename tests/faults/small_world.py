"""The tiny world of the fault tests, shared by the tests and the subprocess they drive (stage_hook.py)."""

from maskbench.datasets.world import WorldConfig

SMALL_WORLD = WorldConfig(seed=11, size=(64, 128), train=1, val=1, anomaly=3, obstacle=3, streethazards=1)
