"""Registry, input validation, purity, dtypes and determinism of the scorer API."""

import json

import pytest
import torch

from maskbench.errors import InputError
from maskbench.scorers import get_scorer, list_scorers, register_scorer, score_all

ALL = ["msp", "rba", "eam", "aem", "maskomaly", "maskomaly_reject", "maskomaly_accept", "mask2anomaly",
       "energy", "entropy", "softmax_msp", "void", "uno"]
SMALL_IDS = {"maskomaly": dict(accept=(3, 5), ground=(1,)), "maskomaly_reject": dict(ground=(1,)), "maskomaly_accept": dict(accept=(3,)), "mask2anomaly": dict(suppress=(2, 3)),
             "uno": dict(negative=3)}


def small(name):
    return get_scorer(name, **SMALL_IDS.get(name, {}))


def test_registry_lists_every_scorer_in_order():
    assert list_scorers() == ALL


def test_unknown_scorer_names_the_known_ones():
    with pytest.raises(InputError, match="unknown scorer 'no_such_scorer'.*msp, rba, eam"):
        get_scorer("no_such_scorer")


def test_duplicate_registration_is_rejected():
    with pytest.raises(InputError, match="'msp' is already registered"):
        register_scorer("msp", lambda queries: None)


def test_hyperparameters_must_be_keyword_only_with_defaults():
    with pytest.raises(TypeError, match="keyword-only"):
        register_scorer("bad_scorer_for_test", lambda queries, t: None)
    assert "bad_scorer_for_test" not in list_scorers()


def test_params_are_listed_with_defaults():
    assert get_scorer("msp").params == {}
    assert get_scorer("mask2anomaly", conf=0.9).params == {"suppress": tuple(range(2, 11)), "conf": 0.9}
    s = get_scorer("maskomaly", accept=[1, 2], lam=0.5)
    assert s.params == {"accept": (1, 2), "ground": (19, 24), "lam": 0.5, "t_mask": 0.7, "t_border": 0.1}
    assert "accept=(1, 2)" in repr(s)
    assert json.loads(json.dumps(s.params))["accept"] == [1, 2]
    s.params["lam"] = 0.1  # a copy: the scorer keeps its settings
    assert s.params["lam"] == 0.5


@pytest.mark.parametrize(
    "name,params,message",
    [
        ("msp", dict(t=1), "unknown hyperparameter.*'t'.*takes: none"),
        ("uno", dict(), "uno: hyperparameter 'negative' is required"),
        ("uno", dict(negative=0), "negative must be a positive integer"),
        ("uno", dict(negative=2.0), "negative must be a positive integer"),
        ("rba", dict(smoothing="box"), "smoothing: expected one of gaussian"),
        ("maskomaly", dict(lamda=0.6), "unknown hyperparameter.*lamda.*accept, ground, lam"),
        ("maskomaly", dict(lam=1.5), "lam must be a number in \\[0, 1\\]"),
        ("maskomaly", dict(t_border=1.0), "t_border must be a number in \\(0, 1\\)"),
        ("maskomaly", dict(accept=[1, -2]), "accept must hold non-negative integers"),
        ("maskomaly", dict(ground=5), "ground must be a list"),
        ("maskomaly_accept", dict(accept=[1.5]), "non-negative integers"),
        ("mask2anomaly", dict(conf="high"), "conf must be a number"),
        ("maskomaly_reject", dict(border=1), "border must be True or False"),
        ("mask2anomaly", dict(suppress=[True]), "suppress must hold non-negative integers"),
    ],
)
def test_bad_hyperparameters(name, params, message):
    with pytest.raises(InputError, match=message):
        get_scorer(name, **params)


def test_query_ids_are_checked_against_the_model(forward):
    c, m = forward(0)  # 12 queries
    with pytest.raises(InputError, match="maskomaly accept: query id\\(s\\) \\[49, 31, 83, 32\\] out of range for a model with 12"):
        get_scorer("maskomaly", ground=())(c, m)
    with pytest.raises(InputError, match="maskomaly ground"):
        get_scorer("maskomaly_reject")(c, m)
    with pytest.raises(InputError, match="suppress: class id\\(s\\) \\[4, 10\\] out of range for 4 known"):
        get_scorer("mask2anomaly", suppress=(1, 4, 10))(c, m)


@pytest.mark.parametrize(
    "make,message",
    [
        (lambda c, m: (c.numpy(), m), "class_logits: expected a torch.Tensor"),
        (lambda c, m: (c, m.long()), "mask_logits: expected a floating-point tensor"),
        (lambda c, m: (c[None], m), "class_logits: expected shape \\(Q, K\\+1\\)"),
        (lambda c, m: (c, m[0]), "mask_logits: expected shape \\(Q, H, W\\)"),
        (lambda c, m: (c[:, :1], m), "at least one known class"),
        (lambda c, m: (c[:5], m), "mask_logits: 12 queries but class_logits has 5"),
        (lambda c, m: (c, m[:, :0]), "mask_logits: empty mask shape"),
        (lambda c, m: (c.index_fill(0, torch.tensor([2]), float("inf")), m), "class_logits: contains NaN"),
        (lambda c, m: (c, m.index_fill(2, torch.tensor([9]), float("nan"))), "mask_logits: contains NaN"),
        (lambda c, m: (c, m.index_fill(1, torch.tensor([7]), -float("inf"))), "mask_logits: contains NaN or infinite"),
    ],
)
@pytest.mark.parametrize("name", ["msp", "maskomaly_accept"])
def test_bad_inputs_raise_input_error_naming_the_argument(forward, make, message, name):
    c, m = make(*forward(1))
    with pytest.raises(InputError, match=message):
        small(name)(c, m)


def test_huge_finite_logits_are_not_mistaken_for_infinite(forward):
    c, m = forward(1)
    m[:4] = 3e38  # finite, but their float32 sum overflows to inf
    assert torch.isfinite(small("msp")(c, m)).all()


@pytest.mark.parametrize("chunk", [0, -3, 2.5, True])
def test_bad_chunk_size(forward, chunk):
    with pytest.raises(InputError, match="chunk_pixels: expected a positive integer"):
        score_all(["msp"], *forward(0), chunk_pixels=chunk)


def test_score_all_rejects_a_label_given_twice(forward):
    with pytest.raises(InputError, match="'msp' given twice"):
        score_all(["msp", get_scorer("msp")], *forward(0))


def test_score_all_runs_one_scorer_under_several_settings(forward):
    c, m = forward(2)
    maps = score_all({"a": get_scorer("maskomaly_accept", accept=(3,)), "b": get_scorer("maskomaly_accept", accept=(5,))}, c, m)
    assert set(maps) == {"a", "b"} and not torch.equal(maps["a"], maps["b"])


def test_out_maps_are_written_and_returned(forward):
    c, m = forward(5, confident=((0, 2, 9.0), (1, 3, 9.0), (2, 2, 9.0)))
    scorers = {name: small(name) for name in ALL}
    fresh = score_all(scorers, c, m, chunk_pixels=16)
    out = {name: torch.full(m.shape[1:], float("nan")) for name in ALL}
    for _ in range(2):  # reused: the second call overwrites the first call's values
        got = score_all(scorers, c, m, chunk_pixels=16, out=out)
        assert all(got[name] is out[name] and torch.equal(got[name], fresh[name]) for name in ALL)


def test_bad_out_maps(forward):
    c, m = forward(6)
    h, w = m.shape[1:]
    ok = lambda: torch.empty(h, w)  # noqa: E731
    cases = [({"rba": ok()}, "one map for each of"),
             ({"msp": ok(), "extra": ok()}, "one map for each of"),
             ({"msp": torch.empty(h, w, dtype=torch.float64)}, r"out\['msp'\]: expected a contiguous float32"),
             ({"msp": torch.empty(h, w + 1)}, "expected a contiguous float32"),
             ({"msp": torch.empty(w, h).t()}, "expected a contiguous float32"),
             ({"msp": m[0].float()}, "shares memory with mask_logits")]
    for out, message in cases:
        with pytest.raises(InputError, match=message):
            score_all(["msp"], c, m, out=out)
    shared = torch.empty(2, h, w)
    with pytest.raises(InputError, match="must not share memory"):
        score_all(["msp", "rba"], c, m, out={"msp": shared[0], "rba": shared[1]})


def test_scorers_never_modify_their_inputs(forward):
    c, m = forward(3, confident=((0, 2, 9.0), (1, 3, 9.0), (2, 2, 9.0)))
    c0, m0 = c.clone(), m.clone()
    score_all({name: small(name) for name in ALL}, c, m, chunk_pixels=16)
    for name in ALL:
        small(name)(c, m)
    assert torch.equal(c, c0) and torch.equal(m, m0)


def test_chunking_does_not_change_results(forward):
    c, m = forward(4, h=13, w=17)
    whole = score_all({n: small(n) for n in ALL}, c, m, chunk_pixels=13 * 17)
    pieces = score_all({n: small(n) for n in ALL}, c, m, chunk_pixels=10)
    for name in ALL:
        torch.testing.assert_close(pieces[name], whole[name], atol=1e-6, rtol=1e-6)


def test_shared_run_does_not_depend_on_scorer_order(forward):
    c, m = forward(9, h=20, w=30, confident=((0, 2, 9.0), (1, 3, 9.0), (2, 2, 9.0)))
    forward_order = score_all({n: small(n) for n in ALL}, c, m, chunk_pixels=64)
    reverse_order = score_all({n: small(n) for n in reversed(ALL)}, c, m, chunk_pixels=64)
    assert all(torch.equal(forward_order[n], reverse_order[n]) for n in ALL)


def test_deterministic(forward):
    c, m = forward(5, h=30, w=40)
    first = score_all({n: small(n) for n in ALL}, c, m)
    second = score_all({n: small(n) for n in ALL}, c, m)
    assert all(torch.equal(first[n], second[n]) for n in ALL)


@pytest.mark.parametrize("threads", [2, 3])
def test_maps_do_not_depend_on_the_thread_count(forward, threads):
    """One chunk of 30 queries x 4087 pixels is big enough for torch to split every op between threads."""
    c, m = forward(11, q=30, h=61, w=67, confident=((0, 2, 9.0), (1, 3, 9.0), (2, 2, 9.0)))
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = score_all({n: small(n) for n in ALL}, c, m)
        torch.set_num_threads(threads)
        several = score_all({n: small(n) for n in ALL}, c, m)
        assert torch.get_num_threads() == threads  # the worker threads leave the caller's setting alone
    finally:
        torch.set_num_threads(before)
    assert all(torch.equal(one[n], several[n]) for n in ALL)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_other_dtypes_return_float32(forward, dtype):
    c, m = forward(6)
    ref = {n: small(n)(c.double(), m.double()) for n in ALL}
    for name in ALL:
        out = small(name)(c.to(dtype), m.to(dtype))
        assert out.dtype == torch.float32 and out.shape == m.shape[1:]
        if dtype == torch.float64:
            torch.testing.assert_close(out, ref[name])


def test_non_contiguous_inputs(forward):
    c, m = forward(7, h=9, w=11)
    m_t = m.transpose(1, 2).contiguous().transpose(1, 2)  # same values, non-contiguous strides
    c_t = c.t().contiguous().t()
    assert not m_t.is_contiguous() and not c_t.is_contiguous()
    for name in ALL:
        assert torch.equal(small(name)(c_t, m_t), small(name)(c, m))


def test_flip_commutes_with_every_scorer(forward):
    """Scorers are pixel-local, so scoring a flipped forward equals flipping the score (basis of --tta flip)."""
    c, m = forward(8, h=5, w=9)
    for name in ALL:
        flipped = small(name)(c, m.flip(-1))
        torch.testing.assert_close(flipped.flip(-1), small(name)(c, m), atol=1e-6, rtol=1e-6)
