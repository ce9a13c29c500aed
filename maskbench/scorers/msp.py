"""MSP on Mask2Former: one minus the largest aggregated class score."""

from maskbench.scorers._common import ChunkScore, Queries, one_minus
from maskbench.scorers._registry import register_scorer


def msp(queries: Queries) -> ChunkScore:
    """``MSP(x) = 1 − max_k S_k(x)``: Mask2Anomaly TPAMI'24 Eq. 7 (ICCV'23 Eq. 2) without refinement.

    Reference: ``shyam671/Mask2Anomaly-...`` ``anomaly_utils/anomaly_inference.py`` before refinement.
    ``S`` is not normalised, so the score can be negative (harmless for ranking metrics).
    """
    return lambda px: one_minus(px.max_class_score, out=px.buffer("msp"))


register_scorer("msp", msp, reference="shyam671/Mask2Anomaly-Unmasking-Anomalies-in-Road-Scene-Segmentation "
                                      "anomaly_utils/anomaly_inference.py (before refinement)")
