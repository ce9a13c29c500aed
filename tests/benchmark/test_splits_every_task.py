"""Split variants as dataset options with every task: anomaly metrics on a labelled split, submissions of any split
in the folder road-anomaly-benchmark persists it under (``cfg.get('name_for_persistence', cfg.name)``)."""

import json

import pytest

from maskbench.benchmark.run import RunConfig, run_benchmark
from maskbench.benchmark.submission import dataset_folder
from maskbench.datasets import DATASETS, load_dataset
from maskbench.datasets.replica import make

# road_anomaly_benchmark/datasets/tracks.py and tracks_extra.py, config by config: name -> name_for_persistence
# (its own name where the config sets none). ObstacleScene-* are generated from DatasetObstacleTrack.SCENE_SPLITS
# with the Obstacle Track DEFAULTS.
PERSISTED = {
    "AnomalyTrack-all": "AnomalyTrack-all", "AnomalyTrack-validation": "AnomalyTrack-validation",
    "AnomalyTrack-test": "AnomalyTrack-test", "AnomalyTrack-animals": "AnomalyTrack-animals",
    "AnomalyTrack-vehicles": "AnomalyTrack-vehicles", "AnomalyTrack-other": "AnomalyTrack-other",
    "ObstacleTrack-all": "ObstacleTrack-all", "ObstacleTrack-test": "ObstacleTrack-all",
    "ObstacleTrack-noNight": "ObstacleTrack-all", "ObstacleTrack-night": "ObstacleTrack-all",
    "ObstacleTrack-snowstorm": "ObstacleTrack-all", "ObstacleTrack-validation": "ObstacleTrack-all",
    **{f"ObstacleScene-{s}": "ObstacleTrack-all" for s in (
        "curvy", "darkasphalt", "darkasphaltDog", "darkasphaltAll", "gravel", "greyasphalt", "motorway", "shiny",
        "paving", "night", "snowstorm", "validation")},
    "Erasing-20": "ObstacleTrack-all", "Erasing-20nodog": "ObstacleTrack-all", "Erasing-21": "ObstacleTrack-all",
    "LostAndFound-train": "LostAndFound-train", "LostAndFound-test": "LostAndFound-test",
    "LostAndFound-trainValid": "LostAndFound-train", "LostAndFound-testValid": "LostAndFound-test",
    "LostAndFound-testNoKnown": "LostAndFound-test", "LostAndFound-anomalyTrain": "LostAndFound-anomalyTrain",
    "LostAndFound-anomalyTest": "LostAndFound-anomalyTest", "FishyLAFObstacle-val": "FishyLAFObstacle-val",
    "FishyLAFObstacle-test": "FishyLAFObstacle-test",
}
SCORERS = ("msp", "rba")


def test_every_split_option_has_the_official_folder():
    selections = [(name, v) for name in DATASETS.names() for v in DATASETS.get(name).variants
                  if v.count is not None or v.labelled is not None]  # frame selections, not policies
    assert len(selections) >= 30
    for name, v in selections:
        assert dataset_folder(name, v.official) == PERSISTED[v.official], (name, v.value)
    assert dataset_folder("streethazards") == "streethazards" and dataset_folder("fs-laf") == "fs-laf"


@pytest.fixture(scope="module")
def roots(tmp_path_factory):
    root = tmp_path_factory.mktemp("split-replicas")
    return {name: make(name, root / name, frames=3, seed=2).root
            for name in ("smiyc-ra21", "smiyc-ro21", "lost-and-found")}


def run(kit, root, out, dataset, task, **options):
    config = RunConfig(task=task, dataset=dataset, root=root, out=out, scorers=SCORERS, dataset_options=options,
                       workers=1, command=["test"])
    return run_benchmark(config, kit.fake_forward, checkpoint=kit.checkpoint())


@pytest.mark.parametrize("dataset, options, folder", [
    ("smiyc-ro21", {"split": "night"}, "ObstacleTrack-all"),
    ("smiyc-ro21", {"split": "snowstorm"}, "ObstacleTrack-all"),
    ("smiyc-ra21", {"split": "animals"}, "AnomalyTrack-animals"),
    ("lost-and-found", {"subset": "train"}, "LostAndFound-train"),
    ("smiyc-ra21", {"split": "test"}, "AnomalyTrack-test"),
])
def test_predict_writes_a_split_under_its_persistence_name(kit, roots, tmp_path, dataset, options, folder):
    ds = load_dataset(dataset, roots[dataset], frames="all", **options)
    results = run(kit, roots[dataset], tmp_path / "sub", dataset, "predict", **options)
    written = sorted(p.name for p in (tmp_path / "sub" / "anomaly_p" / "msp" / folder).iterdir())
    assert written == sorted(f"{fid}.hdf5" for fid in ds.ids) and written
    manifest = json.loads((tmp_path / "sub" / "manifest.json").read_text())
    assert manifest["dataset"]["folder"] == folder and results["run"]["folder"] == folder
    assert [f["id"] for f in manifest["frames"]] == ds.ids


@pytest.mark.parametrize("dataset, options, official, protocol", [
    ("smiyc-ro21", {"split": "validation"}, "ObstacleTrack-validation", "smiyc-obstacle"),
    ("lost-and-found", {"subset": "train"}, "LostAndFound-train", "smiyc-obstacle"),
    ("lost-and-found", {}, "LostAndFound-test", "smiyc-obstacle"),
])
def test_anomaly_metrics_on_a_split(kit, roots, tmp_path, dataset, options, official, protocol):
    ds = load_dataset(dataset, roots[dataset], **options)
    results = run(kit, roots[dataset], tmp_path / "out", dataset, "anomaly", **options)
    assert results["run"]["dataset"]["info"]["official_split"] == official
    assert results["run"]["protocol"] == protocol == f"smiyc-{results['run']['dataset']['info']['track']}"
    assert results["run"]["dataset"]["options"] == options
    assert all(e["metrics"]["images"] == len(ds) > 0 for e in results["results"])
    assert results["results"][0]["metrics"]["AP"] is not None


@pytest.mark.parametrize("track", ["anomaly", "obstacle"])
def test_the_track_an_option_selects_sets_the_protocol(kit, tmp_path, track):
    rep = make("bundle", tmp_path / "bundle", frames=3, seed=1)
    results = run(kit, rep.root, tmp_path / "out", "bundle", "anomaly", track=track, **rep.options)
    assert results["run"]["protocol"] == f"smiyc-{track}"
