"""Mask2Anomaly (Rai et al., ICCV'23 / TPAMI'24): MSP times the "stuff" refinement mask."""

import torch

from maskbench.errors import InputError
from maskbench.scorers import _params
from maskbench.scorers._common import ChunkScore, Queries, max_weighted, one_minus
from maskbench.scorers._kernels import zero_where_weighted_max
from maskbench.scorers._registry import register_scorer

#: Cityscapes train ids 2..10: building, wall, fence, pole, traffic light, traffic sign, vegetation,
#: terrain, sky ("stuff"-like classes other than road and sidewalk).
CITYSCAPES_SUPPRESS = tuple(range(2, 11))
#: On CPU zero the refined pixels in one numba pass; False runs the torch ops there too (tests compare both).
CPU_KERNEL = True


def mask2anomaly(queries: Queries, *, suppress=CITYSCAPES_SUPPRESS, conf: float = 0.95) -> ChunkScore:
    """``M2A(x) = (1 − max_k S_k(x)) · R(x)``: TPAMI'24 Eq. 7 times the refinement mask of Eq. 15.

    As ``shyam671/Mask2Anomaly-...`` ``mask2former/maskformer_model.py`` ``semantic_inference`` and
    ``anomaly_utils/anomaly_inference.py`` run it: with ``conf_q, label_q`` = max / argmax of P over
    all K+1 columns, the kept queries are ``J = {q : label_q ≠ void, conf_q > conf, label_q ∈ suppress}``;
    if ``|J| > 1`` (not ``≥ 1``) then ``R(x) = 0`` where ``max_{q∈J} conf_q σ(M_q(x)) ≥ 0.5`` and 1
    elsewhere; otherwise ``R = 1``. (The paper binarises ``σ(M) > 0.5`` instead; the reference's max
    over the appended channels never exceeds ``max_k S_k``, so its base score equals ``1 − max_k S_k``.)
    Computed at the resolution of ``mask_logits`` (the reference resizes S and the refinement channels
    bilinearly to the output size before thresholding). Horizontal-flip averaging is a runner option.
    """
    bad = [c for c in suppress if c >= queries.void]
    if bad:
        raise InputError(f"mask2anomaly suppress: class id(s) {bad} out of range for {queries.void} known classes")
    known_label = (queries.label != queries.void) & (queries.conf > conf)
    kept = queries.select(known_label & torch.isin(queries.label, queries.ids(suppress)))
    kept_conf = queries.conf[kept]

    kept_ids, kept_weights = kept.cpu().numpy(), kept_conf.cpu().numpy()
    half = queries.scalar(0.5)

    def score(px):
        base = one_minus(px.max_class_score, out=px.buffer("mask2anomaly"))
        if kept.numel() <= 1:
            return base
        if px.device.type == "cpu" and CPU_KERNEL:  # one pass over the kept rows of the shared σ(M) (same bits)
            zero_where_weighted_max(px.sigmoid.numpy(), kept_ids, kept_weights, half,
                                    px.buffer("mask2anomaly.refine").numpy(), base.numpy())
            return base
        refine = max_weighted(px.sigmoid_rows(kept, "mask2anomaly.sigmoid"), kept_conf,
                              out=px.buffer("mask2anomaly.refine"))
        return base.masked_fill_(torch.ge(refine, 0.5, out=px.buffer("mask2anomaly.stuff", dtype=torch.bool)), 0.0)

    return score


def _check(params: dict) -> dict:
    params["suppress"] = _params.ids("mask2anomaly", "suppress", params["suppress"])
    params["conf"] = _params.fraction("mask2anomaly", "conf", params["conf"])
    return params


register_scorer("mask2anomaly", mask2anomaly, check=_check,
                reference="shyam671/Mask2Anomaly-Unmasking-Anomalies-in-Road-Scene-Segmentation "
                          "mask2former/maskformer_model.py, anomaly_utils/anomaly_inference.py")
