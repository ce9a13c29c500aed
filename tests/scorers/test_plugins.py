"""Scorer plug-ins as a user writes them: the two examples, files, modules, entry points, and their checks."""

import hashlib
import math
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from maskbench.errors import InputError
from maskbench.scorers import (
    _registry, describe_scorers, format_scorers, get_scorer, list_scorers, load_plugins, plugin_errors,
    plugins, register_map_scorer, register_scorer, score_all,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture(autouse=True)
def isolated(monkeypatch):
    """Registrations, loaded plug-ins and entry points of a test end with it."""
    monkeypatch.setattr(_registry, "_REGISTRY", _registry._REGISTRY.copy())
    monkeypatch.setattr(_registry, "_PLUGIN_ERRORS", [])
    monkeypatch.setattr(_registry, "_entry_points_loaded", False)
    monkeypatch.setattr(plugins, "_LOADED", {})


def sigmoid(x):
    return 1.0 / (1.0 + math.exp(-x))


def literal_class_scores(c, m):
    """S_k(x) in float64 lists: softmax over K+1, void dropped after, Σ_q P σ(M)."""
    rows = c.double().tolist()
    probs = [[math.exp(v - max(r)) / sum(math.exp(u - max(r)) for u in r) for v in r] for r in rows]
    logits = m.double().tolist()
    q, h, w = m.shape
    k = c.shape[1] - 1
    return [[[sum(probs[n][j] * sigmoid(logits[n][y][x]) for n in range(q)) for x in range(w)] for y in range(h)]
            for j in range(k)]


def test_per_pixel_example_runs_as_a_user_runs_it(forward):
    path = EXAMPLES / "my_scorer.py"
    (record,) = load_plugins([str(path)])
    assert record.kind == "file" and record.path == str(path.resolve()) and record.scorers == ("mine",)
    assert record.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert load_plugins([str(path)]) == [record]  # loaded once
    c, m = forward(4, h=6, w=7)
    s = literal_class_scores(c, m)
    for t in (1.0, 0.5):
        expected = torch.tensor([[-sum(math.tanh(s[k][y][x] / t) for k in range(len(s))) for x in range(7)]
                                 for y in range(6)], dtype=torch.float64)
        got = get_scorer("mine", temperature=t)(c, m)
        assert got.dtype == torch.float32
        torch.testing.assert_close(got.double(), expected, atol=1e-5, rtol=1e-5)
    # beside the built-ins it gives the same map (shared P, σ(M), S), and T = 1 is RbA
    maps = score_all(["msp", "mine", "rba"], c, m)
    assert torch.equal(maps["mine"], get_scorer("mine")(c, m))
    torch.testing.assert_close(maps["mine"], maps["rba"], atol=1e-6, rtol=1e-6)
    source = get_scorer("mine").source
    assert (source["kind"], source["spec"], source["path"], source["sha256"]) == \
        ("plug-in file", str(path), record.path, record.sha256)
    with pytest.raises(InputError, match="mine: temperature must be a positive number"):
        get_scorer("mine", temperature=0)


def test_map_example_runs_as_a_user_runs_it(forward):
    (record,) = load_plugins([str(EXAMPLES / "smoothed_msp.py")])
    assert record.scorers == ("smoothed_msp",)
    c, m = forward(5, h=6, w=8)
    s = literal_class_scores(c, m)
    msp = [[1 - max(s[k][y][x] for k in range(len(s))) for x in range(8)] for y in range(6)]
    size = 3
    expected = torch.tensor([[sum(msp[min(max(y + a, 0), 5)][min(max(x + b, 0), 7)]
                                  for a in range(-1, 2) for b in range(-1, 2)) / size ** 2 for x in range(8)]
                             for y in range(6)], dtype=torch.float64)
    scorer = get_scorer("smoothed_msp", size=size)
    assert scorer.kind == "map" and scorer.params == {"size": 3}
    torch.testing.assert_close(scorer(c, m).double(), expected, atol=1e-5, rtol=1e-5)
    # with per-pixel scorers in one call, into reused output maps, and smoothed on top
    out = {n: torch.full((6, 8), float("nan")) for n in ("msp", "smoothed_msp", "sm2")}
    maps = score_all({"msp": get_scorer("msp"), "smoothed_msp": scorer,
                      "sm2": get_scorer("smoothed_msp", size=3, smoothing="gaussian")}, c, m, out=out)
    assert all(maps[n] is out[n] for n in out)
    assert torch.equal(maps["smoothed_msp"], scorer(c, m))
    assert not torch.equal(maps["sm2"], maps["smoothed_msp"])
    with pytest.raises(InputError, match="size must be a positive odd integer"):
        get_scorer("smoothed_msp", size=4)


def test_module_plugin_and_errors(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "mb_test_mod_plugin.py").write_text(textwrap.dedent("""
        from maskbench.scorers import register_scorer
        def flat(queries, *, level: float = 0.25):
            "``flat(x) = level``: a constant."
            return lambda px: px.buffer("flat").fill_(level)
        register_scorer("flat", flat)
    """))
    (record,) = load_plugins(["mb_test_mod_plugin"])
    assert record.kind == "module" and record.scorers == ("flat",)
    assert record.path == str((tmp_path / "mb_test_mod_plugin.py").resolve())
    assert "flat" in list_scorers()
    info = {i.name: i for i in describe_scorers()}["flat"]
    assert info.params == {"level": 0.25} and info.formula == "``flat(x) = level``: a constant."
    assert info.source["kind"] == "plug-in module" and info.source["sha256"] == record.sha256
    assert "flat (per-pixel): level=0.25" in format_scorers(describe_scorers(), [])
    sys.modules.pop("mb_test_mod_plugin")

    bad = tmp_path / "half.py"  # registers one scorer, then fails: nothing of it stays registered
    bad.write_text("from maskbench.scorers import register_scorer\n"
                   "register_scorer('half_a', lambda q: None)\nraise RuntimeError('broken on purpose')\n")
    with pytest.raises(InputError, match=r"plug-in .*half.py: RuntimeError: broken on purpose"):
        load_plugins([str(bad)])
    assert "half_a" not in list_scorers()
    with pytest.raises(InputError, match="plug-in nowhere.py: file not found"):
        load_plugins(["nowhere.py"])
    with pytest.raises(InputError, match="plug-in no_such_module_xyz: ModuleNotFoundError"):
        load_plugins(["no_such_module_xyz"])
    dup = tmp_path / "dup.py"
    dup.write_text("from maskbench.scorers import register_scorer\nregister_scorer('msp', lambda q: None)\n")
    with pytest.raises(InputError, match="plug-in .*dup.py: scorer 'msp' is already registered"):
        load_plugins([str(dup)])


def test_entry_points_load_lazily_and_report_broken_ones(tmp_path, monkeypatch):
    site = tmp_path / "site"
    dist = site / "mb_test_dist-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: mb-test-dist\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[maskbench.scorers]\ngood = mb_test_ep_good\nbroken = mb_test_ep_broken\n")
    (site / "mb_test_ep_good.py").write_text(textwrap.dedent("""
        from maskbench.scorers import register_map_scorer
        def zeros(class_logits, mask_logits, *, value: float = 0.0):
            "``zeros(x) = value``."
            return mask_logits.new_full(mask_logits.shape[1:], value)
        register_map_scorer("ep_zeros", zeros)
    """))
    (site / "mb_test_ep_broken.py").write_text("raise ImportError('missing dependency xyz')\n")
    monkeypatch.syspath_prepend(str(site))
    assert "ep_zeros" not in _registry._REGISTRY  # nothing is imported before it is needed
    scorer = get_scorer("ep_zeros", value=2.0)  # not a built-in: the entry points are loaded now
    assert scorer.source["kind"] == "entry point" and scorer.source["distribution"] == "mb-test-dist 1.0"
    (error,) = plugin_errors()
    assert error.name == "broken" and error.target == "mb_test_ep_broken" and "missing dependency xyz" in error.error
    with pytest.raises(InputError, match="unknown scorer 'nope'.*failed to load: broken \\(mb_test_ep_broken\\): "
                                         "ImportError: missing dependency xyz"):
        get_scorer("nope")
    assert "FAILED plug-in broken" in format_scorers(describe_scorers(), plugin_errors())
    for name in ("mb_test_ep_good", "mb_test_ep_broken"):
        sys.modules.pop(name, None)


@pytest.mark.parametrize("bad,message", [
    (lambda px: px.buffer("b")[:-1], r"scorer 'bad': expected a floating-point tensor of shape \(\d+,\)"),
    (lambda px: px.buffer("b").fill_(float("nan")), "scorer 'bad': produced NaN or infinite scores"),
    (lambda px: px.buffer("b").fill_(float("inf")), "scorer 'bad': produced NaN or infinite scores"),
    (lambda px: px.buffer("b", dtype=torch.int32).fill_(1), "scorer 'bad': expected a floating-point tensor"),
    (lambda px: 1.0, "scorer 'bad': expected a floating-point tensor .* got float"),
])
def test_per_pixel_plugin_output_is_checked(forward, bad, message):
    register_scorer("bad", lambda queries: bad)
    with pytest.raises(InputError, match=message):
        score_all(["msp", "bad"], *forward(0))


@pytest.mark.parametrize("bad,message", [
    (lambda c, m: m[0, :-1], r"scorer 'bad_map': expected a floating-point \(8, 10\) map"),
    (lambda c, m: m[0].long(), "scorer 'bad_map': expected a floating-point"),
    (lambda c, m: m[0] * float("nan"), "scorer 'bad_map': its map: contains NaN or infinite values"),
    (lambda c, m: m[0].numpy(), "scorer 'bad_map': expected a floating-point .* got ndarray"),
])
def test_map_plugin_output_is_checked(forward, bad, message):
    register_map_scorer("bad_map", bad)
    with pytest.raises(InputError, match=message):
        get_scorer("bad_map")(*forward(0))


def test_map_scorer_output_never_aliases_the_inputs(forward):
    register_map_scorer("first_mask", lambda c, m: m[0])
    c, m = forward(1)
    before = m.clone()
    out = get_scorer("first_mask", smoothing="gaussian")(c, m)
    assert torch.equal(m, before) and out.untyped_storage().data_ptr() != m.untyped_storage().data_ptr()
    with pytest.raises(InputError, match="mask_logits: contains NaN"):  # inputs are checked without pixel scorers
        get_scorer("first_mask")(c, m.index_fill(1, torch.tensor([2]), float("nan")))


def test_map_scorer_signatures(forward):
    with pytest.raises(TypeError, match="hyperparameter 'k' must be keyword-only with a default"):
        register_map_scorer("bad_sig", lambda c, m, k: m[0])
    with pytest.raises(TypeError, match="must take 2 positional argument"):
        register_map_scorer("bad_sig", lambda c: c)
    with pytest.raises(TypeError, match="'smoothing' is reserved"):
        register_scorer("bad_sig", lambda q, *, smoothing=None: None)
    assert "bad_sig" not in list_scorers()
