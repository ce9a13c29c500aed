"""`bench run` on the command line: clean errors for bad input, and a full run from a forward cache."""

import json

import pytest
from click.testing import CliRunner

from maskbench.benchmark.run import run_benchmark
from maskbench.cli import main


def invoke(*args):
    return CliRunner().invoke(main, ["run", *map(str, args)])


@pytest.fixture
def checkpoint_file(tmp_path):
    path = tmp_path / "model.pth"
    path.write_bytes(b"not a real checkpoint")
    return path


@pytest.mark.parametrize("args, message", [
    (["--scorer", "msp,nosuch"], "unknown scorer 'nosuch'"),
    (["--scorer", "msp", "--param", "maskomaly.lam=0.5"], "--param given for scorer(s) ['maskomaly']"),
    (["--scorer", "maskomaly", "--param", "maskomaly.lam=2"], "lam must be a number in [0, 1]"),
    (["--scorer", "maskomaly", "--param", "lam=2"], "expected SCORER.KEY=VALUE"),
    (["--scorer", "msp,msp"], "a scorer is named twice"),
])
def test_bad_scorer_arguments(kit, tmp_path, checkpoint_file, args, message):
    result = invoke(*args, "--dataset", "smiyc-ra21", "--root", kit.replicas["smiyc-ra21"],
                    "--checkpoint", checkpoint_file, "--out", tmp_path / "out")
    assert result.exit_code == 1 and message in result.output, result.output
    assert "Traceback" not in result.output


def test_bad_dataset_and_checkpoint_arguments(kit, tmp_path, checkpoint_file):
    common = ["--scorer", "msp", "--out", tmp_path / "out"]
    cases = [
        (["--dataset", "smiyc-ra21", "--root", tmp_path / "missing", "--checkpoint", checkpoint_file],
         str(tmp_path / "missing")),
        (["--dataset", "smiyc-ra21", "--root", kit.replicas["smiyc-ra21"], "--checkpoint", tmp_path / "none.pth"],
         f"--checkpoint {tmp_path / 'none.pth'}: no such file"),
        (["--dataset", "smiyc-ra21", "--root", kit.replicas["smiyc-ra21"]], "--checkpoint: required"),
        (["--dataset", "nosuch", "--checkpoint", checkpoint_file], "--dataset 'nosuch': unknown"),
        (["--dataset", "cityscapes", "--checkpoint", checkpoint_file], "no anomaly or obstacle track"),
        (["--dataset", "streethazards", "--checkpoint", checkpoint_file, "--protocol", "smiyc-anomaly"],
         "--protocol smiyc-anomaly: the streethazards anomaly track evaluates exact float32 scores"),
        (["--dataset", "smiyc-ra21", "--root", kit.replicas["smiyc-ra21"], "--checkpoint", checkpoint_file,
          "--fpr95-rule", "closest"], "--fpr95-rule closest with protocol smiyc-anomaly"),
        (["--dataset", "smiyc-ra21", "--root", kit.replicas["smiyc-ra21"], "--from-cache", tmp_path / "nocache"],
         "--from-cache"),
        (["--dataset", "smiyc-ra21", "--root", kit.replicas["smiyc-ra21"], "--checkpoint", checkpoint_file,
          "--cache", tmp_path / "c1", "--from-cache", tmp_path / "c2"], "give one"),
    ]
    for args, message in cases:
        result = invoke(*common, *args)
        assert result.exit_code == 1 and message in result.output, (args, result.output)
        assert "Traceback" not in result.output


def test_run_from_cache_on_the_command_line(kit, tmp_path):
    cache = tmp_path / "cache"
    filled = run_benchmark(kit.config(tmp_path / "fill", cache=cache, scorers=("msp", "eam")), kit.fake_forward,
                           checkpoint=kit.checkpoint())
    out = tmp_path / "out"
    result = invoke("--scorer", "msp", "--scorer", "eam", "--dataset", "smiyc-ra21",
                    "--root", kit.replicas["smiyc-ra21"], "--from-cache", cache, "--out", out, "--workers", 1)
    assert result.exit_code == 0, result.output
    stored = json.loads((out / "results.json").read_text())
    assert stored["results"] == kit.comparable(filled)
    lines = result.stdout.splitlines()
    assert lines[0].startswith("smiyc-ra21: 3 frames of 10 official (partial") and "protocol smiyc-anomaly" in lines[0]
    assert any("protocol smiyc-anomaly" in line for line in lines[1:])  # the table's footnote
    table = {line.split()[0]: line.split("|")[1].split() for line in lines if line.split()[:1] in (["msp"], ["eam"])}
    ap = stored["results"][0]["metrics"]["AP"]
    assert table["msp"][0].rstrip("*+") == f"{100 * ap:.1f}"


def test_cuda_without_a_device_is_a_clean_error(kit, tmp_path, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    result = invoke("--scorer", "msp", "--dataset", "smiyc-ra21", "--root", kit.replicas["smiyc-ra21"],
                    "--from-cache", tmp_path, "--out", tmp_path / "out", "--device", "cuda")
    assert result.exit_code == 1 and "--device cuda: no CUDA device" in result.output


def test_every_scorer_by_default(kit, tmp_path):
    cache = tmp_path / "cache"
    run_benchmark(kit.config(tmp_path / "fill", cache=cache), kit.fake_forward, checkpoint=kit.checkpoint())
    result = invoke("--dataset", "smiyc-ra21", "--root", kit.replicas["smiyc-ra21"], "--from-cache", cache,
                    "--out", tmp_path / "out", "--workers", 1)
    assert result.exit_code == 0, result.output
    stored = json.loads((tmp_path / "out" / "results.json").read_text())
    assert [e["scorer"] for e in stored["results"]] == ["msp", "rba", "eam", "aem", "maskomaly", "mask2anomaly"]
