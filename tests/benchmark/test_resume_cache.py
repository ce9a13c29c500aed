"""Resume after a crash, a finished run re-run, refused configuration changes, and the forward cache round trip."""

import json

import numpy as np
import pytest

from maskbench.benchmark.run import run_benchmark
from maskbench.errors import InputError


def test_resume_after_crash_gives_identical_results(kit, tmp_path):
    clean = run_benchmark(kit.config(tmp_path / "clean"), kit.fake_forward, checkpoint=kit.checkpoint())

    out = tmp_path / "crashed"
    crashing = kit.CountingForward(fail_at=3)
    with pytest.raises(KeyboardInterrupt):
        run_benchmark(kit.config(out), crashing, checkpoint=kit.checkpoint())
    rows = (out / "per_image.jsonl").read_text().splitlines()
    assert [json.loads(r)["index"] for r in rows] == [0, 1]
    assert json.loads((out / "run.json").read_text())["finished"] is None
    assert not (out / "results.json").exists()
    with open(out / "per_image.jsonl", "a") as handle:
        handle.write('{"id": "validation0002", "ind')  # torn line of the frame in flight

    again = kit.CountingForward()
    resumed = run_benchmark(kit.config(out), again, checkpoint=kit.checkpoint())
    assert again.calls == 1  # only the frame that was in flight
    assert kit.comparable(resumed) == kit.comparable(clean)
    rows = [json.loads(r) for r in (out / "per_image.jsonl").read_text().splitlines()]
    assert [r["index"] for r in rows] == [0, 1, 2]

    # the same command once more: nothing is recomputed, the stored results come back
    idle = kit.CountingForward()
    assert kit.comparable(run_benchmark(kit.config(out), idle, checkpoint=kit.checkpoint())) == kit.comparable(clean)
    assert idle.calls == 0


def test_row_without_map_is_recomputed(kit, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        run_benchmark(kit.config(out, keep_work=True), kit.CountingForward(fail_at=3), checkpoint=kit.checkpoint())
    (out / "work" / "000001.npz").unlink()
    again = kit.CountingForward()
    resumed = run_benchmark(kit.config(out, keep_work=True), again, checkpoint=kit.checkpoint())
    assert again.calls == 2
    clean = run_benchmark(kit.config(tmp_path / "clean"), kit.fake_forward, checkpoint=kit.checkpoint())
    assert kit.comparable(resumed) == kit.comparable(clean)
    assert len((out / "per_image.jsonl").read_text().splitlines()) == 3  # duplicates folded


def test_changed_configuration_is_refused(kit, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        run_benchmark(kit.config(out), kit.CountingForward(fail_at=2), checkpoint=kit.checkpoint())
    with pytest.raises(InputError, match="different tta"):
        run_benchmark(kit.config(out, tta="flip"), kit.fake_forward, checkpoint=kit.checkpoint())
    with pytest.raises(InputError, match="different scorers"):
        run_benchmark(kit.config(out, scorer_params={"maskomaly": {"lam": 0.5}}), kit.fake_forward,
                      checkpoint=kit.checkpoint())
    other = dict(kit.checkpoint(), sha256="e" * 64)
    with pytest.raises(InputError, match="different checkpoint"):
        run_benchmark(kit.config(out), kit.fake_forward, checkpoint=other)


def test_cache_round_trip_without_forward(kit, tmp_path):
    cache = tmp_path / "cache"
    counting = kit.CountingForward()
    cached = run_benchmark(kit.config(tmp_path / "a", cache=cache, tta="flip"), counting, checkpoint=kit.checkpoint())
    assert counting.calls == 6  # 3 frames x 2 views
    entries = sorted(cache.rglob("*.npz"))
    assert len(entries) == 6
    for entry in entries:
        with np.load(entry, allow_pickle=False) as z:
            assert z["mask_logits"].dtype == np.float16 and z["class_logits"].dtype == np.float32
            key = json.loads(str(z["key"]))
            assert key["checkpoint_sha256"] == "f" * 64 and key["resolution"] == "native"
            assert key["view"] in ("none", "hflip") and key["dataset"] == "smiyc-ra21"
    assert json.loads(next(cache.glob("*/checkpoint.json")).read_text())["sha256"] == "f" * 64

    # --from-cache: no forward, no checkpoint argument, identical results
    replay = run_benchmark(kit.config(tmp_path / "b", from_cache=cache, tta="flip"), kit.never_called)
    assert kit.comparable(replay) == kit.comparable(cached)
    assert replay["run"]["checkpoint"]["sha256"] == "f" * 64 and replay["run"]["source"] == "cache"

    # a second --cache run reads the entries instead of calling the forward
    again = kit.CountingForward()
    refill = run_benchmark(kit.config(tmp_path / "c", cache=cache, tta="flip"), again, checkpoint=kit.checkpoint())
    assert again.calls == 0 and kit.comparable(refill) == kit.comparable(cached)

    # a changed configuration is never served from the cache
    with pytest.raises(InputError, match="not in the cache"):
        run_benchmark(kit.config(tmp_path / "d", from_cache=cache, resolution="short1024"), kit.never_called)
    other = dict(kit.checkpoint(), sha256="e" * 64)
    with pytest.raises(InputError, match="not in the cache"):
        run_benchmark(kit.config(tmp_path / "e", from_cache=cache), kit.never_called, checkpoint=other)
    changed = kit.CountingForward()
    run_benchmark(kit.config(tmp_path / "f", cache=cache, scorers=("msp",)), changed, checkpoint=other)
    assert changed.calls == 3


def test_cache_entry_of_other_image_content_is_not_served(kit, tmp_path):
    cache = tmp_path / "cache"
    run_benchmark(kit.config(tmp_path / "a", cache=cache, scorers=("msp",)), kit.fake_forward,
                  checkpoint=kit.checkpoint())
    # the same frame ids of another replica (other seed, other pixels) under the same dataset name
    from maskbench.datasets.replica import make

    other_root = make("smiyc-ra21", tmp_path / "other", frames=3, seed=99).root
    config = kit.config(tmp_path / "b", from_cache=cache, scorers=("msp",))
    config.root = other_root
    with pytest.raises(InputError, match="not in the cache"):
        run_benchmark(config, kit.never_called)


def test_limit_runs_the_first_frames_and_can_grow_before_finishing(kit, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):  # crash after 2 frames of a full run
        run_benchmark(kit.config(out, scorers=("msp",)), kit.CountingForward(fail_at=3), checkpoint=kit.checkpoint())
    partial = run_benchmark(kit.config(out, scorers=("msp",), limit=2), kit.never_called, checkpoint=kit.checkpoint())
    assert partial["run"]["limit"] == 2 and partial["results"][0]["metrics"]["images"] == 2
    assert len((out / "per_image.jsonl").read_text().splitlines()) == 2
    with pytest.raises(InputError, match="finished run"):
        run_benchmark(kit.config(out, scorers=("msp",)), kit.fake_forward, checkpoint=kit.checkpoint())
    alone = run_benchmark(kit.config(tmp_path / "alone", scorers=("msp",), limit=2), kit.fake_forward,
                          checkpoint=kit.checkpoint())
    assert kit.comparable(alone) == kit.comparable(partial)


def test_scores_beyond_float16_are_refused_under_float16_protocols(kit, tmp_path, monkeypatch):
    from maskbench.scorers import _registry, register_scorer

    def huge(queries):
        return lambda px: px.class_scores.amax(dim=0) * 1e6 + 7e4

    monkeypatch.setattr(_registry, "_REGISTRY", _registry._REGISTRY.copy())  # the registration ends with the test
    register_scorer("test_huge", huge)
    with pytest.raises(InputError, match="scorer test_huge has scores beyond float16's range"):
        run_benchmark(kit.config(tmp_path / "a", scorers=("test_huge",)), kit.fake_forward, checkpoint=kit.checkpoint())
    exact = run_benchmark(kit.config(tmp_path / "b", scorers=("test_huge",), protocol="exact"), kit.fake_forward,
                          checkpoint=kit.checkpoint())
    assert exact["results"][0]["metrics"]["AP"] is not None
    with np.load(tmp_path / "b" / "maps" / "validation0000.npz") as z:
        assert z["test_huge"].dtype == np.float32 and np.isfinite(z["test_huge"]).all()  # overlays kept finite


def test_bad_forward_output_names_the_frame(kit, tmp_path):
    def nan(image):
        class_logits, mask_logits = kit.fake_forward(image)
        return class_logits * float("nan"), mask_logits

    with pytest.raises(InputError, match="frame 'validation0000' \\(none view\\): class_logits: contains NaN"):
        run_benchmark(kit.config(tmp_path / "nan", scorers=("msp",)), nan, checkpoint=kit.checkpoint())

    def wrong_size(image):
        class_logits, mask_logits = kit.fake_forward(image)
        return class_logits, mask_logits[:, ::2]

    with pytest.raises(InputError, match="expected \\[Q, 64, 128\\]"):
        run_benchmark(kit.config(tmp_path / "size", scorers=("msp",)), wrong_size, checkpoint=kit.checkpoint())
