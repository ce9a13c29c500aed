"""`bench run --task predict`: SMIYC submission files of every frame, labelled or not, read back as the official
loader reads them; `bench evaluate` on them reproduces `bench run` on the labelled frames exactly.

The SMIYC replicas hold unlabelled official test frames besides the labelled ones: the readers list every image
with ``frames="all"`` and give ``ood = None`` where no label file exists (``ds.info["labelled_count"]``).
"""

import json
import zipfile

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from maskbench.benchmark.evaluate import evaluate_dataset
from maskbench.benchmark.run import RunConfig, run_benchmark
from maskbench.cli import main
from maskbench.datasets import load_dataset
from maskbench.datasets.replica import make
from maskbench.errors import InputError
from maskbench.scorers import get_scorer

SCORERS = ("msp", "rba", "mask2anomaly")
METRICS = ("AP", "AUROC", "FPR95", "sIoU", "PPV", "F1", "MDM_F1_60", "MDM_F1_70", "threshold", "n_pixels",
           "n_positive")
OFFICIAL = {"smiyc-ra21": "AnomalyTrack-all", "smiyc-ro21": "ObstacleTrack-all"}


@pytest.fixture(scope="module")
def roots(tmp_path_factory):
    root = tmp_path_factory.mktemp("submission-replicas")
    return {name: make(name, root / name, frames=3, seed=5).root for name in ("smiyc-ra21", "smiyc-ro21")}


def channel_loader_hdf5_read(path, var_name="value"):
    """road_anomaly_benchmark ``datasets/dataset_io.py`` ``ChannelLoaderHDF5.read_file`` /
    ``read_hdf5_variable``, transcribed literally."""
    with h5py.File(path, "r") as hdf5_file_handle:
        try:
            variable = hdf5_file_handle[var_name]
            if variable.shape.__len__() > 0:
                return variable[:]
            else:
                return variable
        except KeyError as e:
            raise KeyError(f"Failed to read {var_name} from handle with keys {hdf5_file_handle.keys()}: {e}")


def predict(kit, root, out, dataset="smiyc-ra21", **changes):
    config = RunConfig(task="predict", dataset=dataset, root=root, out=out, scorers=SCORERS, workers=1,
                       command=["test"], **changes)
    return run_benchmark(config, kit.fake_forward, checkpoint=kit.checkpoint())


@pytest.mark.parametrize("dataset", ["smiyc-ra21", "smiyc-ro21"])
def test_submission_files_open_as_the_official_loader_reads_them(kit, roots, tmp_path, dataset):
    out = tmp_path / "sub"
    results = predict(kit, roots[dataset], out, dataset=dataset, task_options={"method": "mb-{scorer}"})
    ds = load_dataset(dataset, roots[dataset], frames="all")
    assert ds.info["labelled_count"] == 3 and len(ds) > 3  # the replicas' unlabelled test frames are included
    folder = OFFICIAL[dataset]
    manifest = json.loads((out / "manifest.json").read_text())
    for name in SCORERS:
        method = f"mb-{name}"
        files = sorted((out / "anomaly_p" / method / folder).iterdir())
        assert [f.name for f in files] == sorted(f"{fid}.hdf5" for fid in ds.ids)  # dotted ids kept whole
        for sample in ds:
            path = out / "anomaly_p" / method / folder / f"{sample.id}.hdf5"
            value = channel_loader_hdf5_read(path)
            expected = get_scorer(name)(*kit.fake_forward(sample.image)).numpy().astype(np.float16)
            assert value.dtype == np.float16 and value.shape == sample.image.shape[:2]
            np.testing.assert_array_equal(value, expected)
            with h5py.File(path, "r") as f:
                assert list(f.keys()) == ["value"]
                assert f["value"].compression == "gzip" and f["value"].compression_opts == 9
        with zipfile.ZipFile(out / f"{method}.zip") as z:
            assert z.namelist() == [f"anomaly_p/{method}/{folder}/{fid}.hdf5" for fid in ds.ids]
            for fid in ds.ids:
                assert z.read(f"anomaly_p/{method}/{folder}/{fid}.hdf5") == \
                    (out / "anomaly_p" / method / folder / f"{fid}.hdf5").read_bytes()
        entry = manifest["methods"][method]
        assert entry["scorer"] == name and entry["params"] == json.loads(json.dumps(dict(get_scorer(name).params)))
        assert entry["zip"] == f"{method}.zip" and entry["files"] == len(ds)
    assert manifest["checkpoint"] == {"path": "fake-forward", "sha256": "f" * 64}
    assert manifest["frames"] == [{"id": s.id, "labelled": s.ood is not None} for s in ds]
    assert manifest["dataset"]["folder"] == folder and manifest["dataset"]["options"] == {"frames": "all"}
    assert manifest["forward"]["resolution"] == "native" and manifest["forward"]["tta"] == "none"
    assert "float16" in manifest["format"] and "gzip level 9" in manifest["format"]
    assert [e["metrics"] for e in results["results"]] == [{"images": len(ds), "labelled": 3}] * len(SCORERS)
    assert not (out / "work").exists()


@pytest.mark.parametrize("dataset", ["smiyc-ra21", "smiyc-ro21"])
def test_evaluating_the_submission_reproduces_bench_run(kit, roots, tmp_path, dataset):
    run = run_benchmark(RunConfig(dataset=dataset, root=roots[dataset], out=tmp_path / "run", scorers=SCORERS,
                                  workers=1, command=["test"]), kit.fake_forward, checkpoint=kit.checkpoint())
    assert run["results"][0]["metrics"]["images"] == 3  # the anomaly task reads the labelled frames
    predict(kit, roots[dataset], tmp_path / "sub", dataset=dataset)
    unlabelled = len(load_dataset(dataset, roots[dataset], frames="all")) - 3
    for entry in run["results"]:
        pred = tmp_path / "sub" / "anomaly_p" / entry["scorer"] / OFFICIAL[dataset]
        got = evaluate_dataset(pred, dataset, root=roots[dataset], workers=1)
        assert got["skipped"] == {"unlabelled": unlabelled} and got["images"] == 3
        for key in METRICS:
            assert got[key] == entry["metrics"][key], (entry["scorer"], key)
        assert got["protocol"] == entry["protocol"] and got["protocol_details"] == entry["protocol_details"]
        assert entry["metrics"]["sIoU"] is not None

    # the command line: the same numbers, the skipped frames said
    pred = tmp_path / "sub" / "anomaly_p" / "msp" / OFFICIAL[dataset]
    result = CliRunner().invoke(main, ["evaluate", "--pred", str(pred), "--dataset", dataset, "--root",
                                       str(roots[dataset]), "--json", str(tmp_path / "m.json"), "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert f"skipped {unlabelled} prediction(s): unlabelled" in result.output
    stored = json.loads((tmp_path / "m.json").read_text())
    assert {k: stored[k] for k in METRICS} == {k: run["results"][0]["metrics"][k] for k in METRICS}


def test_tasks_that_need_labels_refuse_unlabelled_frames(kit, roots, tmp_path):
    config = RunConfig(dataset="smiyc-ra21", root=roots["smiyc-ra21"], out=tmp_path / "a", scorers=("msp",),
                       dataset_options={"frames": "all"}, command=["test"])
    with pytest.raises(InputError, match="4 of its 7 frames carry no labels, which task anomaly needs"):
        run_benchmark(config, kit.fake_forward, checkpoint=kit.checkpoint())
    (tmp_path / "model.pth").write_bytes(b"never loaded")
    result = CliRunner().invoke(main, ["run", "--dataset", "smiyc-ra21", "--root", str(roots["smiyc-ra21"]),
                                       "-o", "frames=all", "--scorer", "msp", "--checkpoint", str(tmp_path / "model.pth"),
                                       "--out", str(tmp_path / "b")])
    assert result.exit_code == 1 and "--dataset smiyc-ra21: 4 of its 7 frames carry no labels" in result.output


def test_predict_resumes_and_replays_the_cache(kit, roots, tmp_path):
    root = roots["smiyc-ro21"]
    n = len(load_dataset("smiyc-ro21", root, frames="all"))
    cache = tmp_path / "cache"
    out = tmp_path / "crashed"
    with pytest.raises(KeyboardInterrupt):
        run_benchmark(RunConfig(task="predict", dataset="smiyc-ro21", root=root, out=out, scorers=SCORERS,
                                cache=cache, tta="flip", command=["test"]),
                      kit.CountingForward(fail_at=5), checkpoint=kit.checkpoint())  # 2 views: frames 0, 1 stored
    again = kit.CountingForward()
    run_benchmark(RunConfig(task="predict", dataset="smiyc-ro21", root=root, out=out, scorers=SCORERS, cache=cache,
                            tta="flip", command=["test"]), again, checkpoint=kit.checkpoint())
    assert again.calls == 2 * (n - 2)  # the frame in flight stored nothing
    replay = tmp_path / "replay"
    run_benchmark(RunConfig(task="predict", dataset="smiyc-ro21", root=root, out=replay, scorers=SCORERS,
                            from_cache=cache, tta="flip", command=["test"]), kit.never_called)
    for method in SCORERS:
        assert (out / f"{method}.zip").read_bytes() == (replay / f"{method}.zip").read_bytes()


def test_bad_method_names_and_missing_predictions(kit, roots, tmp_path):
    with pytest.raises(InputError, match="method='mine': needs '{scorer}'"):
        predict(kit, roots["smiyc-ra21"], tmp_path / "a", task_options={"method": "mine"})
    predict(kit, roots["smiyc-ra21"], tmp_path / "sub")
    pred = tmp_path / "sub" / "anomaly_p" / "msp" / "AnomalyTrack-all"
    (pred / "validation0001.hdf5").unlink()
    with pytest.raises(InputError, match="1 labelled frame\\(s\\) of smiyc-ra21 without a prediction .*validation0001"):
        evaluate_dataset(pred, "smiyc-ra21", root=roots["smiyc-ra21"], workers=1)
    (pred / "unknown0007.hdf5").write_bytes((pred / "zebra0000.hdf5").read_bytes())
    (pred / "validation0001.hdf5").write_bytes((pred / "zebra0000.hdf5").read_bytes())
    with pytest.raises(InputError, match="prediction\\(s\\) in .* of frames smiyc-ra21 does not list: unknown0007"):
        evaluate_dataset(pred, "smiyc-ra21", root=roots["smiyc-ra21"], workers=1)


def test_predictions_of_unlabelled_frames_are_skipped_and_counted(kit, roots, tmp_path):
    """Evaluation reads the labelled frames; a prediction of an unlabelled frame is skipped and counted, never
    evaluated, and one of a frame the dataset does not list is an error."""
    predict(kit, roots["smiyc-ra21"], tmp_path / "sub", dataset_options={"frames": "labelled"})
    pred = tmp_path / "sub" / "anomaly_p" / "msp" / "AnomalyTrack-all"
    assert sorted(p.name for p in pred.iterdir()) == [f"validation{i:04d}.hdf5" for i in range(3)]
    alone = evaluate_dataset(pred, "smiyc-ra21", root=roots["smiyc-ra21"], workers=1)
    (pred / "zebra0000.hdf5").write_bytes((pred / "validation0000.hdf5").read_bytes())
    more = evaluate_dataset(pred, "smiyc-ra21", root=roots["smiyc-ra21"], workers=1)
    assert more.pop("skipped") == {"unlabelled": 1}
    assert alone.pop("skipped") == {"unlabelled": 0}
    assert more == alone
    with pytest.raises(InputError, match="of frames smiyc-ra21 does not list: zebra0000 \\(all frames: dataset "):
        evaluate_dataset(pred, "smiyc-ra21", root=roots["smiyc-ra21"], options={"frames": "labelled"}, workers=1)
