"""The world on disk: official layouts read back by maskbench's readers, exact content, byte determinism,
atomic generation."""

import multiprocessing
from pathlib import Path

import numpy as np
import pytest

from maskbench.datasets import load_dataset
from maskbench.datasets.streethazards import KNOWN_CLASSES
from maskbench.datasets.world import WorldConfig, ensure_world, frame_ids, render_frame, splits
from maskbench.errors import InputError

# independent transcriptions of the official tables (cityscapesScripts labels.py; hendrycks/anomaly-seg)
CITYSCAPES_LABEL_ID = {0: 7, 1: 8, 2: 11, 3: 12, 4: 13, 5: 17, 7: 20, 8: 21, 9: 22, 10: 23, 11: 24, 13: 26}
EGO_VEHICLE = 1
STATIC = 4  # cityscapesScripts labels.py "static"
DYNAMIC = 5  # cityscapesScripts labels.py "dynamic"
STREETHAZARDS_NAME = {0: "road", 1: "sidewalk", 2: "building", 3: "wall", 4: "fence", 5: "pole", 7: "traffic sign",
                      8: "vegetation", 9: "other", 10: "unlabeled", 11: "pedestrian", 13: "car"}
STREETHAZARDS_PNG = {"unlabeled": 1, "building": 2, "fence": 3, "other": 4, "pedestrian": 5, "pole": 6,
                     "road line": 7, "road": 8, "sidewalk": 9, "vegetation": 10, "car": 11, "wall": 12,
                     "traffic sign": 13, "anomaly": 14}
JPEG_MEAN_ABS, JPEG_PSNR = 4.0, 33.0  # quality 95, 4:4:4 (the replica helper); measured: <= 3.2, >= 35.8 dB


def _scenes(config, split):
    return [render_frame(config, split, i) for i in range(config.frames(split))]


def _psnr(a, b):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10 * np.log10(255.0 ** 2 / max(mse, 1e-12))


@pytest.mark.parametrize("labels", ["labelIds", "labelTrainIds"])
def test_cityscapes_val_read_by_the_cityscapes_reader(small_world, labels):
    ds = load_dataset("cityscapes", small_world.path("val"), labels=labels)
    config = small_world.config
    assert ds.ids == frame_ids(config, "val")
    for sample, scene in zip(ds, _scenes(config, "val")):
        assert np.array_equal(sample.image, scene.image)
        assert np.array_equal(sample.semantic, scene.semantic)
        assert np.array_equal(sample.ood, np.where(scene.semantic == 255, 255, 0))


def test_cityscapes_label_files_hold_the_official_ids(small_world):
    from PIL import Image

    root = small_world.path("train")
    for fid, scene in zip(frame_ids(small_world.config, "train"), _scenes(small_world.config, "train")):
        gt = root / "gtFine" / "train" / "world"
        with Image.open(gt / f"{fid}_gtFine_labelIds.png") as img:
            assert img.mode == "L"
            label_ids = np.asarray(img)
        expected = np.vectorize(lambda t: CITYSCAPES_LABEL_ID.get(int(t), 0))(scene.semantic).astype(np.uint8)
        expected[scene.ego] = EGO_VEHICLE
        expected[scene.static] = STATIC
        expected[scene.dynamic] = DYNAMIC
        assert np.array_equal(label_ids, expected), fid
        assert set(np.unique(label_ids).tolist()) <= set(CITYSCAPES_LABEL_ID.values()) | {EGO_VEHICLE, STATIC, DYNAMIC}


def test_training_split_read_back(small_world):
    ds = small_world.dataset("train")
    assert ds.ids == frame_ids(small_world.config, "train")
    for sample, scene in zip(ds, _scenes(small_world.config, "train")):
        assert np.array_equal(sample.image, scene.image)
        assert np.array_equal(sample.semantic, scene.semantic)
    labelids = small_world.dataset("train", labels="labelIds")
    assert np.array_equal(labelids[0].semantic, ds[0].semantic)


def test_anomaly_track_read_by_the_smiyc_reader(small_world):
    ds = load_dataset("smiyc-ra21", small_world.path("anomaly"))
    assert ds.ids == [f"validation{i:04d}" for i in range(6)]
    assert (small_world.path("anomaly") / "images" / "validation0000.jpg").is_file()
    for sample, scene in zip(ds, _scenes(small_world.config, "anomaly")):
        expected = np.zeros(scene.semantic.shape, np.uint8)
        expected[scene.ego | scene.static | scene.dynamic] = 255  # SMIYC: unknown background objects are void
        expected[scene.anomalies > 0] = 1
        assert np.array_equal(sample.ood, expected), sample.id
        assert (sample.ood == 1).any()
        diff = np.abs(sample.image.astype(np.int16) - scene.image.astype(np.int16))
        assert diff.mean() < JPEG_MEAN_ABS and _psnr(sample.image, scene.image) > JPEG_PSNR, sample.id


def test_obstacle_track_read_by_the_smiyc_reader(small_world):
    ds = load_dataset("smiyc-ro21", small_world.path("obstacle"))
    assert ds.ids == sorted(f"validation_{i + 1}" for i in range(6))
    scenes = dict(zip(frame_ids(small_world.config, "obstacle"), _scenes(small_world.config, "obstacle")))
    for sample in ds:
        scene = scenes[sample.id]
        assert np.array_equal(sample.image, scene.image)  # lossless webp
        expected = np.full(scene.semantic.shape, 255, np.uint8)
        expected[scene.semantic == 0] = 0  # the road (lane marks included) is the region of interest
        expected[scene.anomalies > 0] = 1
        assert np.array_equal(sample.ood, expected), sample.id
        assert {0, 1, 255} == set(np.unique(sample.ood).tolist())


@pytest.mark.parametrize("convention", ["densehybrid", "hendrycks", "mask2anomaly"])
def test_streethazards_read_by_the_streethazards_reader(small_world, convention):
    ds = load_dataset("streethazards", small_world.path("streethazards"), convention=convention)
    assert ds.ids == ["t5_1", "t5_2", "t5_3", "t6_4", "t6_5", "t6_6"]
    void = {"densehybrid": ("other",), "hendrycks": (), "mask2anomaly": ("unlabeled", "other")}[convention]
    for sample, scene in zip(ds, _scenes(small_world.config, "streethazards")):
        assert np.array_equal(sample.image, scene.image)
        names = np.empty(scene.semantic.shape, object)
        for tid, name in STREETHAZARDS_NAME.items():
            names[scene.semantic == tid] = name
        names[scene.static | scene.dynamic] = "other"
        names[scene.road_line] = "road line"
        names[scene.anomalies > 0] = "anomaly"
        assert not (names == None).any()  # noqa: E711  (every pixel has a StreetHazards class)
        ood = np.where(names == "anomaly", 1, np.where(np.isin(names, void), 255, 0))
        assert np.array_equal(sample.ood, ood), sample.id
        semantic = np.full(names.shape, 255)
        for k, name in enumerate(KNOWN_CLASSES):
            semantic[names == name] = k
        assert np.array_equal(sample.semantic, semantic), sample.id


def test_streethazards_raw_values(small_world):
    from PIL import Image

    root = small_world.path("streethazards") / "test" / "annotations" / "test"
    for fid, scene in zip(frame_ids(small_world.config, "streethazards"), _scenes(small_world.config, "streethazards")):
        town, _, stem = fid.partition("_")
        with Image.open(root / town / f"{stem}.png") as img:
            assert img.mode == "L"
            raw = np.asarray(img)
        assert set(np.unique(raw).tolist()) <= set(range(1, 15))
        assert np.array_equal(raw == STREETHAZARDS_PNG["anomaly"], scene.anomalies > 0)
        assert np.array_equal(raw == STREETHAZARDS_PNG["road line"], scene.road_line)


def test_same_config_same_bytes_in_another_folder(small_world, tmp_path, hashes):
    again = ensure_world(("val", "anomaly", "obstacle", "streethazards", "train"), config=small_world.config,
                         cache=tmp_path, workers=2)
    assert again.root.name == small_world.root.name
    first, second = hashes(small_world.root), hashes(again.root)
    assert len(first) > 60 and first == second


def test_other_seed_other_world(small_world, tmp_path, hashes):
    other = ensure_world(("obstacle",), config=WorldConfig(seed=8, train=6, val=4, anomaly=6, obstacle=6,
                                                           streethazards=6), cache=tmp_path)
    assert other.root.name != small_world.root.name
    theirs = {k: v for k, v in hashes(other.root).items() if k.startswith("dataset_ObstacleTrack")}
    ours = {k: v for k, v in hashes(small_world.root).items() if k.startswith("dataset_ObstacleTrack")}
    assert theirs.keys() == ours.keys() and all(theirs[k] != ours[k] for k in ours)


def test_interrupted_generation_is_never_used(tmp_path, monkeypatch, hashes):
    config = WorldConfig(seed=1, train=2, val=2, anomaly=3, obstacle=2, streethazards=2)
    real = splits._write_frame

    def crash_on_third(out, cfg, split, index):
        if index == 2:
            raise KeyboardInterrupt
        real(out, cfg, split, index)

    monkeypatch.setattr(splits, "_write_frame", crash_on_third)
    with pytest.raises(KeyboardInterrupt):
        ensure_world(("anomaly",), config=config, cache=tmp_path)
    root = tmp_path / f"{splits.VERSION}-{config.digest()}"
    assert not (root / "dataset_AnomalyTrack").exists() and not (root / ".complete-anomaly").exists()
    assert not list(root.glob(".tmp-*"))
    # a rename done without its completion mark (killed between the two) is discarded as well
    (root / "dataset_AnomalyTrack" / "images").mkdir(parents=True)
    (root / "dataset_AnomalyTrack" / "images" / "validation0000.jpg").write_bytes(b"partial")
    (root / ".tmp-anomaly-stale").mkdir()
    monkeypatch.setattr(splits, "_write_frame", real)
    world = ensure_world(("anomaly",), config=config, cache=tmp_path)
    assert not list(root.glob(".tmp-*"))
    clean = ensure_world(("anomaly",), config=config, cache=tmp_path / "clean")
    assert hashes(world.root) == hashes(clean.root)
    assert len(load_dataset("smiyc-ra21", world.path("anomaly"))) == 3


def test_cache_location_and_errors(tmp_path, monkeypatch):
    monkeypatch.setenv("MASKBENCH_CACHE", str(tmp_path / "env"))
    config = WorldConfig(train=1, val=1, anomaly=1, obstacle=1, streethazards=1)
    world = ensure_world(("obstacle",), config=config)
    assert world.root.parent == tmp_path / "env" and world.root.name.startswith("world-v4-")
    with pytest.raises(InputError, match="not been generated"):
        world.dataset("anomaly")
    with pytest.raises(InputError, match="unknown world split 'test'"):
        ensure_world(("test",), config=config)
    with pytest.raises(InputError, match="positive frame count"):
        ensure_world(("val",), config=WorldConfig(val=0))
    with pytest.raises(InputError, match="WorldConfig.size"):
        ensure_world(("val",), config=WorldConfig(size=(16, 64)))
    assert ensure_world("obstacle", config=config).root == world.root  # one split may be named alone


def _ensure_in_child(cache):
    config = WorldConfig(seed=2, train=1, val=1, anomaly=1, obstacle=3, streethazards=1)
    return str(ensure_world(("obstacle",), config=config, cache=cache).root)


def test_concurrent_generations_share_one_world(tmp_path, hashes):
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        roots = pool.map(_ensure_in_child, [str(tmp_path / "shared")] * 2)
    assert roots[0] == roots[1]
    clean = _ensure_in_child(str(tmp_path / "clean"))
    assert hashes(Path(roots[0])) == hashes(Path(clean))
