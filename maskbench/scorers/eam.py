"""EAM and AEM (Grcić, Šarić, Šegvić, CVPRW'23): ensembles over mask-level predictions."""

from maskbench.scorers._common import ChunkScore, Queries, one_minus
from maskbench.scorers._registry import register_scorer


def eam(queries: Queries) -> ChunkScore:
    """``EAM(x) = 1 − Σ_q max_{k<K} P[q,k] · σ(M_q(x))``: EAM CVPRW'23 Eq. 7 (plus the constant 1).

    Reference: ``matejgrcic/Open-set-M2F`` ``mask2former/evaluation/ood_detection_evaluation.py``
    (softmax over K+1, void dropped after softmax, all queries, no confidence filtering).
    """
    return lambda px: one_minus(px.eam_sum, out=px.buffer("eam"))


def aem(queries: Queries) -> ChunkScore:
    """``AEM(x) = 1 − Σ_k S_k(x) = 1 − Σ_q (Σ_{k<K} P[q,k]) σ(M_q(x))`` (total in-distribution mass).

    Provenance: this is the third-party harness ``shyam671/Road-Obstacle-Video-Segmentation``
    ``Image_Anomaly_Segmentation_Baselines/evaluate_ood.py`` ``get_aem``; ``matejgrcic/Open-set-M2F``
    has no AEM code. Note the EAM paper's own AEM (CVPRW'23 Eq. 6) is ``−max_k S_k``, which ranks
    pixels exactly like :func:`maskbench.scorers.msp.msp`; this sum form is a different score.
    """
    return lambda px: one_minus(px.known_mass, out=px.buffer("aem"))


register_scorer("eam", eam, reference="matejgrcic/Open-set-M2F mask2former/evaluation/ood_detection_evaluation.py")
register_scorer("aem", aem, reference="shyam671/Road-Obstacle-Video-Segmentation Image_Anomaly_Segmentation_Baselines/"
                                      "evaluate_ood.py get_aem")
