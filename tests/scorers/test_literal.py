"""Every scorer against a literal, loop-based transcription of its paper formula / reference code."""

import math

import pytest
import torch

from maskbench.errors import InputError
from maskbench.scorers import get_scorer, score_all

K = 4  # known classes; void column index = K


def softmax(row):
    m = max(row)
    e = [math.exp(v - m) for v in row]
    return [v / sum(e) for v in e]


def sigmoid(x):
    return 1.0 / (1.0 + math.exp(-x))


def per_pixel(fn, class_logits, mask_logits):
    """Apply ``fn(P, m)`` at every pixel; P = softmax rows (lists), m = mask logits of that pixel."""
    P = [softmax(row) for row in class_logits.double().tolist()]
    M = mask_logits.double().tolist()
    q, h, w = mask_logits.shape
    return torch.tensor([[fn(P, [M[n][i][j] for n in range(q)]) for j in range(w)] for i in range(h)], dtype=torch.float64)


def class_scores(P, m):
    return [sum(P[q][k] * sigmoid(m[q]) for q in range(len(P))) for k in range(len(P[0]) - 1)]


def literal_msp(P, m):
    return 1 - max(class_scores(P, m))


def literal_rba(P, m):
    return -sum(math.tanh(s) for s in class_scores(P, m))


def literal_eam(P, m):
    return 1 - sum(max(P[q][:-1]) * sigmoid(m[q]) for q in range(len(P)))


def literal_aem(P, m):
    return 1 - sum(class_scores(P, m))


def literal_energy(P, m):
    """RbA ``get_energy``: ``-torch.logsumexp(sem_seg, dim=0)``."""
    return -math.log(sum(math.exp(s) for s in class_scores(P, m)))


def literal_entropy(P, m):
    """Video harness ``get_entropy``: ``sum(-p * log p) / log(K)`` with ``p = softmax(sem_seg)``."""
    s = class_scores(P, m)
    p = softmax(s)
    return sum(-v * math.log(v) for v in p) / math.log(len(s))


def literal_softmax_msp(P, m):
    """Video harness ``get_msp``: ``1 - softmax(sem_seg).max()``."""
    return 1 - max(softmax(class_scores(P, m)))


def literal_void(P, m):
    """``get_void`` on the "Void" ``semantic_inference``: ``einsum(softmax(C), σ(M))[K]``."""
    return sum(P[q][-1] * sigmoid(m[q]) for q in range(len(P)))


def literal_uno(P, m, negative):
    """Open-set-M2F UNO evaluator with the negative column ``negative`` (``-2`` on a K+2 head)."""
    return -sum((max(P[q][:negative]) - P[q][negative]) * sigmoid(m[q]) for q in range(len(P)))


def literal_mask2anomaly(P, m, suppress=range(2, 11), conf=0.95):
    void = len(P[0]) - 1
    kept = []
    for q in range(len(P)):
        score = max(P[q])
        label = P[q].index(score)
        if label != void and score > conf and label in suppress:
            kept.append(q)
    base = 1 - max(class_scores(P, m))
    if len(kept) > 1:
        refine = max(max(P[q]) * sigmoid(m[q]) for q in kept)
        base = base * (1 - (1 if refine >= 0.5 else 0))
    return base


def literal_maskomaly(P, m, accept, ground, lam=0.6, t_mask=0.7, t_border=0.1, part="full", border=True):
    """Algorithm 1 step by step, with the pairwise border loop, as the reference code orders it."""
    void = len(P[0]) - 1
    accept_score = 0.0
    for q in accept:
        accept_score = max(accept_score, sigmoid(m[q]) * max(P[q]))
    reject = 1.0
    for q in range(len(P)):
        label = P[q].index(max(P[q]))
        if label != void and P[q][label] > t_mask:
            reject = min(reject, 1 - sigmoid(m[q]) * P[q][label])
    inlier = [q for q in range(len(P)) if P[q].index(max(P[q])) != void]
    for a in range(len(inlier) if border else 0):
        for b in range(a + 1, len(inlier)):
            if sigmoid(m[inlier[a]]) > t_border and sigmoid(m[inlier[b]]) > t_border:
                reject = min(reject, 0.0)
    for q in ground:
        reject = min(reject, 1 - sigmoid(m[q]) * max(P[q]))
    if part == "reject":
        return reject
    if part == "accept":
        return accept_score
    return lam * reject + (1 - lam) * accept_score


# queries 0..3 confident known classes (2, 3 in the default suppress range), 4 confident void,
# 5 moderately confident class 1; the rest are random.
CONFIDENT = ((0, 2, 9.0), (1, 3, 9.0), (2, 0, 9.0), (3, 1, 9.0), (4, K, 9.0), (5, 1, 5.0))


def close(actual, expected, dtype):
    tol = 2e-6 if dtype == torch.float64 else 1e-5
    assert actual.dtype == torch.float32
    torch.testing.assert_close(actual.double(), expected, atol=tol, rtol=tol)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(
    "name,literal",
    [("msp", literal_msp), ("rba", literal_rba), ("eam", literal_eam), ("aem", literal_aem),
     ("energy", literal_energy), ("entropy", literal_entropy), ("softmax_msp", literal_softmax_msp),
     ("void", literal_void)],
)
def test_aggregate_scorers_match_literal(forward, name, literal, seed, dtype):
    c, m = forward(seed, confident=CONFIDENT, dtype=dtype)
    close(get_scorer(name)(c, m), per_pixel(literal, c, m), dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("negative", [3, 4])
def test_uno_matches_literal(forward, seed, dtype, negative):
    """negative=3 is the K+2 layout of the reference (known 0..2, negative 3, no-object 4); 4 uses no-object."""
    c, m = forward(seed, confident=CONFIDENT, dtype=dtype)
    expected = per_pixel(lambda P, x: literal_uno(P, x, negative), c, m)
    close(get_scorer("uno", negative=negative)(c, m), expected, dtype)


def test_uno_refuses_a_negative_column_outside_the_head(forward):
    c, m = forward(0)  # K = 4: columns 0..4
    with pytest.raises(InputError, match="uno negative: column 5 out of range for a head with 5 columns"):
        get_scorer("uno", negative=5)(c, m)


def literal_gaussian_smoothing(x):
    """torchvision ``GaussianBlur(7, sigma=1)`` on a (H, W) map, in float64 loops: reflect padding by 3."""
    h, w = x.shape
    g = [math.exp(-0.5 * t * t) for t in range(-3, 4)]
    g = [v / sum(g) for v in g]

    def reflect(i, n):
        return -i if i < 0 else 2 * (n - 1) - i if i >= n else i

    rows = x.tolist()
    return torch.tensor([[sum(g[a] * g[b] * rows[reflect(i + a - 3, h)][reflect(j + b - 3, w)]
                              for a in range(7) for b in range(7)) for j in range(w)] for i in range(h)],
                        dtype=torch.float64)


@pytest.mark.parametrize("name", ["rba", "energy", "msp"])
def test_gaussian_smoothing_matches_literal(forward, name):
    c, m = forward(2, h=9, w=13, confident=CONFIDENT)
    literal = {"rba": literal_rba, "energy": literal_energy, "msp": literal_msp}[name]
    expected = literal_gaussian_smoothing(per_pixel(literal, c, m))
    smoothed = get_scorer(name, smoothing="gaussian")
    assert smoothed.params == {"smoothing": "gaussian"}  # recorded with the scorer's parameters
    close(smoothed(c, m), expected, torch.float32)
    # a smoothed and a plain scorer share one run; the smoothing is a post-process of the same map
    maps = score_all({"plain": get_scorer(name), "smooth": smoothed}, c, m)
    assert torch.equal(maps["smooth"], smoothed(c, m))
    assert not torch.equal(maps["plain"], maps["smooth"])


def test_gaussian_smoothing_refuses_tiny_maps(forward):
    c, m = forward(0, h=3, w=9)
    with pytest.raises(InputError, match="too small for its 7x7 kernel"):
        get_scorer("msp", smoothing="gaussian")(c, m)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mask2anomaly_matches_literal(forward, seed, dtype):
    c, m = forward(seed, confident=CONFIDENT, dtype=dtype)
    suppress = (2, 3)
    expected = per_pixel(lambda P, x: literal_mask2anomaly(P, x, suppress=suppress), c, m)
    actual = get_scorer("mask2anomaly", suppress=suppress)(c, m)
    close(actual, expected, dtype)
    # the refinement is active here: some pixels are zeroed, and it differs from plain MSP
    assert (actual == 0).any()
    assert not torch.equal(actual, get_scorer("msp")(c, m))


def test_mask2anomaly_needs_more_than_one_suppressed_query(forward):
    c, m = forward(3, confident=CONFIDENT)
    only_one = get_scorer("mask2anomaly", suppress=(2,))  # only query 0 is a confident class-2 query
    close(only_one(c, m), per_pixel(lambda P, x: literal_mask2anomaly(P, x, suppress=(2,)), c, m), torch.float32)
    assert torch.equal(only_one(c, m), get_scorer("msp")(c, m))


def test_mask2anomaly_default_suppress_is_cityscapes_2_to_10(forward):
    c, m = forward(4, k=19, confident=((0, 2, 12.0), (1, 10, 12.0), (2, 11, 12.0), (3, 1, 12.0)))
    close(get_scorer("mask2anomaly")(c, m), per_pixel(literal_mask2anomaly, c, m), torch.float32)
    assert get_scorer("mask2anomaly").params["suppress"] == tuple(range(2, 11))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("part", ["full", "reject", "accept"])
def test_maskomaly_matches_literal_algorithm_1(forward, seed, dtype, part):
    c, m = forward(seed, confident=CONFIDENT, dtype=dtype)
    accept, ground = (7, 4, 9), (4, 8)  # query 4 is void-labelled: its confidence includes the void column
    kwargs = {"full": dict(accept=accept, ground=ground), "reject": dict(ground=ground), "accept": dict(accept=accept)}[part]
    name = {"full": "maskomaly", "reject": "maskomaly_reject", "accept": "maskomaly_accept"}[part]
    expected = per_pixel(lambda P, x: literal_maskomaly(P, x, accept, ground, part=part), c, m)
    close(get_scorer(name, **kwargs)(c, m), expected, dtype)


def test_maskomaly_reject_without_border_matches_literal(forward):
    c, m = forward(1, confident=CONFIDENT)
    expected = per_pixel(lambda P, x: literal_maskomaly(P, x, (), (4,), part="reject", border=False), c, m)
    actual = get_scorer("maskomaly_reject", ground=(4,), border=False)(c, m)
    close(actual, expected, torch.float32)
    assert (actual > get_scorer("maskomaly_reject", ground=(4,))(c, m)).any()


def test_maskomaly_hyperparameters_match_literal(forward):
    c, m = forward(5, confident=CONFIDENT)
    params = dict(accept=(1, 6), ground=(), lam=0.8, t_mask=0.5, t_border=0.3)
    expected = per_pixel(lambda P, x: literal_maskomaly(P, x, **params), c, m)
    close(get_scorer("maskomaly", **params)(c, m), expected, torch.float32)


def test_maskomaly_branches_are_exercised(forward):
    """Guard for the literal test: the border zeros some pixels and spares others."""
    c, m = forward(0, confident=CONFIDENT)
    reject = get_scorer("maskomaly_reject", ground=())(c, m)
    assert (reject == 0).any() and ((reject > 0) & (reject < 1)).any()
    assert (get_scorer("maskomaly_accept", accept=(7, 4, 9))(c, m) > 0.5).any()


def test_maskomaly_defaults_are_the_published_swin_l_ids(forward):
    c, m = forward(6, q=100, k=19, h=3, w=4)
    s = get_scorer("maskomaly")
    assert s.params == {"accept": (49, 31, 83, 32), "ground": (19, 24), "lam": 0.6, "t_mask": 0.7, "t_border": 0.1}
    expected = per_pixel(lambda P, x: literal_maskomaly(P, x, (49, 31, 83, 32), (19, 24)), c, m)
    close(s(c, m), expected, torch.float32)


def test_maskomaly_worked_example_by_hand():
    """Three queries, two known classes (void = 2), one row of three pixels, worked out on paper."""
    big = 30.0  # softmax ≈ one-hot up to e^-30
    c = torch.tensor([[big, 0.0, 0.0], [0.0, big, 0.0], [0.0, 0.0, big]])
    # σ: query 0 = (0.9, 0.5, 0.0), query 1 = (0.0, 0.5, 0.0), query 2 (void) = (0.0, 0.0, 0.8)
    lg = math.log
    m = torch.tensor([[[lg(9), 0.0, -big]], [[-big, 0.0, -big]], [[-big, -big, lg(4)]]])
    out = get_scorer("maskomaly", accept=(2,), ground=(), lam=0.6)(c, m)
    # pixel 0: R = 1 − 0.9 = 0.1, Acc = 0 → 0.06; pixel 1: border (0.5 and 0.5 > 0.1) → R = 0, Acc = 0 → 0;
    # pixel 2: R = 1, Acc = 0.8 → 0.6 + 0.32 = 0.92
    torch.testing.assert_close(out, torch.tensor([[0.06, 0.0, 0.92]]), atol=1e-6, rtol=0)


@pytest.mark.parametrize("chunk", [256, 100, None])
def test_score_all_equals_each_scorer_alone_bitwise(forward, chunk):
    """Alone, Maskomaly takes the sigmoid of the rows it reads; beside other scorers it gathers them from the
    shared σ(M): the same bits, also in chunks whose width is not a multiple of the SIMD width."""
    c, m = forward(7, h=40, w=50, confident=CONFIDENT)
    scorers = {
        "msp": get_scorer("msp"),
        "rba": get_scorer("rba"),
        "eam": get_scorer("eam"),
        "aem": get_scorer("aem"),
        "maskomaly": get_scorer("maskomaly", accept=(7, 9), ground=(8,)),
        "maskomaly_b": get_scorer("maskomaly", accept=(6,), ground=(), t_border=0.2),
        "mask2anomaly": get_scorer("mask2anomaly", suppress=(2, 3)),
    }
    together = score_all(scorers, c, m, chunk_pixels=chunk)
    for label, scorer in scorers.items():
        alone = score_all({label: scorer}, c, m, chunk_pixels=chunk)[label]
        assert torch.equal(together[label], alone), label
        torch.testing.assert_close(scorer(c, m), alone, atol=1e-6, rtol=1e-6)


def test_maskomaly_border_count_with_more_than_255_inlier_queries(forward):
    """A pixel covered by exactly 256 inlier masks is a border pixel (a uint8 count would wrap to 0)."""
    c, m = forward(10, q=300, h=2, w=3, void_bias=-10.0)
    assert (c.argmax(1) != K).all()
    m[:, 0, :2] = -10.0
    m[:256, 0, 0] = 10.0  # 256 masks over pixel (0, 0)
    m[7, 0, 1] = 10.0  # one mask over pixel (0, 1)
    expected = per_pixel(lambda P, x: literal_maskomaly(P, x, (), (), part="reject"), c, m)
    actual = get_scorer("maskomaly_reject", ground=())(c, m)
    close(actual, expected, torch.float32)
    assert actual[0, 0] == 0 and actual[0, 1] > 0


@pytest.mark.parametrize("t_border", [0.1, 0.3, 0.7])
def test_maskomaly_border_matches_float32_sigmoid_threshold_at_every_boundary_value(t_border):
    """The border test agrees with the reference's float32 ``σ(M) > t_border`` on the 8192 float32 values
    closest to logit(t_border), where a threshold on logits would flip pixels."""
    centre = torch.tensor(math.log(t_border / (1 - t_border)), dtype=torch.float32).view(torch.int32)
    values = (centre + torch.arange(-4096, 4096, dtype=torch.int32)).view(torch.float32)  # consecutive floats
    c = torch.tensor([[30.0, 0.0, 0.0], [0.0, 30.0, 0.0], [0.0, 0.0, 30.0]])  # two inlier queries, one void
    m = torch.stack([values, values, torch.full_like(values, -30.0)])[:, None]
    on_border = get_scorer("maskomaly_reject", ground=(), t_border=t_border)(c, m)[0] == 0
    expected = torch.sigmoid(values) > t_border  # float32, as the reference thresholds σ(M)
    assert expected.any() and not expected.all()
    assert torch.equal(on_border, expected)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shared", [False, True])
def test_maskomaly_numba_pass_equals_the_torch_ops_bitwise(forward, monkeypatch, dtype, shared):
    """The CPU numba pass and the torch ops (the path on accelerators) give the same bits, for every part, at
    every threshold crossing of the forward (and at the 8192 floats around logit(t_border))."""
    from maskbench.scorers import maskomaly as module

    settings = [("maskomaly", dict(accept=(7, 4, 9), ground=(4, 8))), ("maskomaly", dict(accept=(6,), ground=(), t_border=0.3, lam=0.8)),
                ("maskomaly_reject", dict(ground=(4,))), ("maskomaly_reject", dict(ground=(4,), border=False)),
                ("maskomaly_accept", dict(accept=(7, 9)))]
    scorers = {f"{name}{i}": get_scorer(name, **kw) for i, (name, kw) in enumerate(settings)}
    if shared:
        scorers["msp"] = get_scorer("msp")  # beside another scorer Maskomaly reads the shared σ(M)
    centre = torch.tensor(math.log(0.1 / 0.9), dtype=torch.float32).view(torch.int32)
    values = (centre + torch.arange(-4096, 4096, dtype=torch.int32)).view(torch.float32).to(dtype)
    for seed in range(3):
        c, m = forward(seed, h=20, w=30, confident=CONFIDENT, dtype=dtype)
        if seed == 2:
            m = m.reshape(m.shape[0], -1)[:, :1].expand(-1, values.numel()).clone()
            m[7] = m[9] = values  # two inlier queries straddling the border threshold
            m = m[:, None]
        kernel = score_all(scorers, c, m, chunk_pixels=100)
        monkeypatch.setattr(module, "CPU_KERNEL", False)
        ops = score_all(scorers, c, m, chunk_pixels=100)
        monkeypatch.setattr(module, "CPU_KERNEL", True)
        for label in scorers:
            assert torch.equal(kernel[label], ops[label]), (label, seed)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_mask2anomaly_numba_refinement_equals_the_torch_ops_bitwise(forward, monkeypatch, dtype):
    from maskbench.scorers import mask2anomaly as module

    c, m = forward(3, k=19, h=20, w=30, confident=((0, 2, 12.0), (1, 10, 12.0), (2, 5, 12.0), (3, 1, 12.0)), dtype=dtype)
    m[1, :, :15] = 0.0  # σ = 0.5 exactly: conf · σ just below 0.5 (conf < 1), the ≥ 0.5 test decides nearby values
    scorers = {"default": get_scorer("mask2anomaly"), "loose": get_scorer("mask2anomaly", conf=0.5, suppress=(2, 5, 10)),
               "msp": get_scorer("msp")}
    kernel = score_all(scorers, c, m, chunk_pixels=128)
    monkeypatch.setattr(module, "CPU_KERNEL", False)
    ops = score_all(scorers, c, m, chunk_pixels=128)
    for label in scorers:
        assert torch.equal(kernel[label], ops[label]), label
    assert (kernel["default"] == 0).any() and (kernel["default"] > 0).any()
