"""The no-object (void) mass of the mask ensemble."""

from maskbench.scorers._common import ChunkScore, Queries
from maskbench.scorers._registry import register_scorer


def void(queries: Queries) -> ChunkScore:
    """``V(x) = Σ_q P[q,K] σ(M_q(x))``: the void column of ``semantic_inference`` kept instead of dropped.

    What ``shyam671/Road-Obstacle-Video-Segmentation`` ``Image_Anomaly_Segmentation_Baselines/evaluate_ood.py``
    ``get_void`` intends: ``sem_seg[19]`` of the commented-out "Void" ``semantic_inference`` in that harness's
    ``mask2former/maskformer_model.py`` (softmax over all K+1 columns, no column dropped). As shipped, its
    ``--score_func void`` runs ``get_entropy`` instead.
    """
    return lambda px: px.void_mass


register_scorer("void", void,
                reference="shyam671/Road-Obstacle-Video-Segmentation Image_Anomaly_Segmentation_Baselines/"
                          "evaluate_ood.py get_void")
