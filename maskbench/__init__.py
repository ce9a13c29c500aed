"""maskbench: one Mask2Former forward, every anomaly scorer, official-identical metrics."""

__version__ = "0.1.0"
