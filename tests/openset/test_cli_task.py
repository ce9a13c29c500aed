"""`bench run --task open-semantic|open-panoptic` on replicas with a tiny random-weight checkpoint."""

import json

from click.testing import CliRunner

from maskbench.benchmark.run import RunConfig, run_benchmark
from maskbench.cli import main
from maskbench.model import Predictor, load_model


def invoke(*args):
    return CliRunner().invoke(main, ["run", *map(str, args)])


def test_open_semantic_from_the_command_line(streethazards, checkpoint, tmp_path):
    ckpt = checkpoint(12)
    res = invoke("--task", "open-semantic", "--dataset", "streethazards", "--root", streethazards.root,
                 "--checkpoint", ckpt, "--scorer", "msp,eam", "--fpr95-rule", "strict_dropint", "--out", tmp_path / "cli")
    assert res.exit_code == 0, res.output
    assert "open_mIoU" in res.output and "Traceback" not in res.output
    got = json.loads((tmp_path / "cli" / "results.json").read_text())
    assert got["run"]["task"] == "open-semantic" and got["run"]["checkpoint"]["sha256"]
    # the same numbers as the library driver on the same checkpoint
    predictor = Predictor(load_model(ckpt)[0])
    config = RunConfig(task="open-semantic", dataset="streethazards", root=streethazards.root, scorers=("msp", "eam"),
                       out=tmp_path / "lib", fpr95_rule="strict_dropint", command=["test"])
    lib = run_benchmark(config, lambda im: (lambda p: (p.class_logits, p.mask_logits))(predictor(im)),
                        checkpoint={"path": "lib", "sha256": "0" * 64, "config": None})
    assert [e["metrics"] for e in got["results"]] == [e["metrics"] for e in lib["results"]]


def test_open_panoptic_from_the_command_line(coco, checkpoint, tmp_path):
    res = invoke("--task", "open-panoptic", "--dataset", "coco-open-panoptic", "--split", "K20", "--root", coco.root,
                 "--checkpoint", checkpoint(len(coco.categories)), "--scorer", "eam", "--out", tmp_path / "cli")
    assert res.exit_code == 0, res.output
    got = json.loads((tmp_path / "cli" / "results.json").read_text())
    assert [e["scorer"] for e in got["results"]] == ["known", "eam/eam", "mining"]
    assert got["run"]["dataset"]["info"]["split"] == "K20" and "PQ_unk" in res.output


def test_bad_options_are_clean_errors(streethazards, coco, checkpoint, tmp_path):
    common = ["--dataset", "streethazards", "--root", streethazards.root, "--scorer", "msp", "--out", tmp_path / "o"]
    for extra, message in (([], "--checkpoint: required"),
                           (["--checkpoint", checkpoint(5)], "known classes"),
                           (["--checkpoint", checkpoint(12), "--protocol", "exact"],
                            "--protocol 'exact': not used by task open-semantic")):
        res = invoke("--task", "open-semantic", *common, *extra)
        assert res.exit_code == 1 and message in res.output, res.output
        assert "Traceback" not in res.output
    res = invoke("--task", "open-panoptic", "--dataset", "coco-open-panoptic", "--root", coco.root, "--scorer", "msp",
                 "--checkpoint", checkpoint(len(coco.categories)), "--tta", "flip", "--out", tmp_path / "p")
    assert res.exit_code == 1 and "--tta 'flip': not used by task open-panoptic" in res.output, res.output
