"""`bench world`: generates the requested splits once and prints their dataset roots."""

from click.testing import CliRunner

from maskbench.datasets import load_dataset


def _main():
    from maskbench.cli import main  # imported here: a CLI import failure fails these tests, not the folder

    return main


def test_bench_world_generates_and_reuses(tmp_path):
    runner = CliRunner()
    args = ["world", "--cache", str(tmp_path), "--split", "obstacle", "--split", "anomaly", "--frames", "2"]
    first = runner.invoke(_main(), args)
    assert first.exit_code == 0, first.output
    lines = first.output.splitlines()
    assert lines[0].startswith("world world-v4-")
    root = next(line.split()[-1] for line in lines if line.strip().startswith("obstacle"))
    assert len(load_dataset("smiyc-ro21", root)) == 2
    assert "smiyc-ra21" in first.output
    second = runner.invoke(_main(), args)
    assert second.exit_code == 0 and second.output.splitlines()[1:] == lines[1:]


def test_bench_world_rejects_an_unknown_split(tmp_path):
    result = CliRunner().invoke(_main(), ["world", "--cache", str(tmp_path), "--split", "test"])
    assert result.exit_code == 2 and "test" in result.output
