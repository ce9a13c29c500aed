"""Crafted and careless inputs through the command line: each ends in exactly one `Error:` line naming the file
(or flag) and the problem, exit code 1 (2 for a malformed command line), no traceback, and never a number.

Every case is one row of :data:`CASES` (what a careless user would try, in the families of issue 16), so the
table doubles as the list of messages: ``case(row, tmp)`` builds the files and returns the command line.
"""

import io
import json
import pickle
import re
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from maskbench.datasets import load_dataset
from maskbench.datasets.replica import make
from maskbench.errors import DatasetError

WEIGHTS = Path(__file__).resolve().parents[2] / "maskbench" / "weights" / "m2f_tiny_world.pth"


# -- bench evaluate: score maps and labels ---------------------------------------------------------------------------
def _evaluate_dirs(tmp):
    """pred/f0..f2.npy and gt/f0..f2.png, all valid."""
    (tmp / "pred").mkdir()
    (tmp / "gt").mkdir()
    for i in range(3):
        gt = np.zeros((32, 48), np.uint8)
        gt[8:20, 10:30] = 1
        Image.fromarray(gt).save(tmp / "gt" / f"f{i}.png")
        np.save(tmp / "pred" / f"f{i}.npy", np.linspace(0, 1, 32 * 48, dtype=np.float32).reshape(32, 48))
    return ["evaluate", "--pred", tmp / "pred", "--gt", tmp / "gt", "--protocol", "smiyc-anomaly", "--workers", "1"]


def _npy_header(shape, descr="<f4"):
    header = f"{{'descr': {descr!r}, 'fortran_order': False, 'shape': {shape!r}, }}"
    header += " " * (-(10 + len(header) + 1) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode()


def _pred(payload):
    def build(tmp):
        args = _evaluate_dirs(tmp)
        data = payload(tmp)
        (tmp / "pred" / "f1.npy").write_bytes(data)
        return args
    return build


def _npz_bytes(**arrays):
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _label(write):
    def build(tmp):
        args = _evaluate_dirs(tmp)
        write(tmp / "gt" / "f1.png")
        return args
    return build


def _jpeg_label(path):
    Image.fromarray(np.where(np.arange(32 * 48).reshape(32, 48) % 7 == 0, 1, 0).astype(np.uint8)).save(path,
                                                                                                       format="JPEG")


def _bomb_label(path):
    import zlib

    def chunk(kind, data):
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")

    ihdr = (100_000).to_bytes(4, "big") * 2 + bytes([8, 0, 0, 0, 0])
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 1000))
                     + chunk(b"IEND", b""))


def _shape_mismatch(tmp):
    args = _evaluate_dirs(tmp)
    np.save(tmp / "pred" / "f1.npy", np.zeros((16, 48), np.float32))
    return args


def _nan(tmp):
    args = _evaluate_dirs(tmp)
    np.save(tmp / "pred" / "f1.npy", np.full((32, 48), np.nan, np.float32))
    return args


def _unpaired(tmp):
    args = _evaluate_dirs(tmp)
    (tmp / "pred" / "f2.npy").unlink()
    return args


# -- bench run: datasets, cache, results folders, flags -------------------------------------------------------------
def _run(tmp, root, *extra, dataset="smiyc-ra21"):
    scorer = [] if "--scorer" in extra else ["--scorer", "msp"]
    return ["run", "--dataset", dataset, "--root", root, "--checkpoint", WEIGHTS, "--out", tmp / "out", "--workers",
            "1", *scorer, *extra]


def _road_anomaly_escape(tmp):
    rep = make("road-anomaly", tmp / "ra", frames=2, seed=0)
    names = json.loads((rep.root / "frame_list.json").read_text())
    (rep.root / "frame_list.json").write_text(json.dumps(names + ["../../../etc/passwd.jpg"]))
    return _run(tmp, rep.root, dataset="road-anomaly")


def _corrupt_cache(payload):
    def build(tmp, replica):
        cache = tmp / "cache"
        from click.testing import CliRunner

        from maskbench.cli import main

        done = CliRunner().invoke(main, [str(a) for a in _run(tmp, replica, "--cache", cache, "--limit", "1")])
        assert done.exit_code == 0, done.output
        shutil.rmtree(tmp / "out")
        entry = next(cache.rglob("*.npz"))
        entry.write_bytes(payload(entry.read_bytes()))
        return _run(tmp, replica, "--from-cache", cache, "--limit", "1")
    return build


def _broken_run_json(tmp, replica):
    (tmp / "out").mkdir()
    (tmp / "out" / "run.json").write_text('{"task": "anomaly", "dataset": ')
    return _run(tmp, replica)


def _table_out_of_range(tmp, replica):
    out = tmp / "res"
    out.mkdir()
    entry = {"scorer": "msp", "dataset": "smiyc-ra21", "protocol": "smiyc-anomaly", "metrics": {"AP": 5.0}}
    (out / "results.json").write_text(json.dumps({"results": [entry]}))
    return ["table", "--results", out]


def _flags(*extra):
    return lambda tmp, replica: _run(tmp, replica, *extra)


#: (case, builder, exit code, expected message: a regular expression over the line after "Error: ", {tmp} being
#: the case's folder). A builder takes (tmp) or (tmp, replica folder of smiyc-ra21).
CASES = [
    ("zero-byte .npy", _pred(lambda t: b""), 1, r"{tmp}/pred/f1\.npy: not a \.npy file: it is empty \(0 bytes\)"),
    (".npz renamed .npy", _pred(lambda t: _npz_bytes(a=np.zeros(3))), 1,
     r"{tmp}/pred/f1\.npy: not a \.npy file: it is a zip archive \(an \.npz saved under a \.npy name\? write one "
     r"array with np\.save\)"),
    ("text file as .npy", _pred(lambda t: b"0.1,0.2\n0.3,0.4\n"), 1,
     r"{tmp}/pred/f1\.npy: not a \.npy file: it is text starting with '0\.1,0\.2\\n0\.3,0\.4\\n'"),
    ("pickle as .npy", _pred(lambda t: pickle.dumps(np.zeros(3))), 1,
     r"{tmp}/pred/f1\.npy: not a \.npy file: it is a Python pickle \(a pickle, not an array; refusing to unpickle\)"),
    (".npy header claiming a huge shape", _pred(lambda t: _npy_header((100_000, 100_000))), 1,
     r"{tmp}/pred/f1\.npy: header claims shape \(100000, 100000\) float32 \(37\.3 GiB\), more than the limit of "
     r"4\.0 GiB"),
    (".npy of Python objects", _pred(lambda t: _npy_header((2,), "|O") + pickle.dumps([1, 2])), 1,
     r"{tmp}/pred/f1\.npy: array of Python objects \(dtype object\); refusing to unpickle it"),
    ("truncated .npy", _pred(lambda t: _npy_header((32, 48)) + bytes(100)), 1,
     r"{tmp}/pred/f1\.npy: truncated: the header claims shape \(32, 48\) float32 \(6,144 bytes\) but 100 bytes of "
     r"data follow"),
    ("score map of another shape", _shape_mismatch, 1,
     r"stem f1: score map f1\.npy has shape \(16, 48\) but label f1\.png has shape \(32, 48\)"),
    ("NaN scores", _nan, 1, r"{tmp}/pred/f1\.npy / f1\.png: scores: 1536 score\(s\) are NaN or infinite"),
    ("label without a score map", _unpaired, 1, r"unpaired stems: 1 label\(s\) without a prediction in {tmp}/pred: f2"),
    ("JPEG saved as a label .png", _label(_jpeg_label), 1,
     r"{tmp}/gt/f1\.png: unreadable label: not a PNG file: it is a JPEG image \(labels must be lossless PNG: JPEG "
     r"compression changes label values\)"),
    ("decompression-bomb label PNG", _label(_bomb_label), 1,
     r"{tmp}/gt/f1\.png: label header claims 100000x100000 pixels, more than the limit of 67,108,864 \(a "
     r"decompression bomb\?\)"),
    ("road-anomaly frame list naming a file outside the root", _road_anomaly_escape, 1,
     r"road-anomaly: {tmp}/ra/RoadAnomaly_jpg/frame_list\.json: names '\.\./\.\./\.\./etc/passwd\.jpg', which is not "
     r"a file name inside {tmp}/ra/RoadAnomaly_jpg/frames; refusing to read it"),
    ("truncated forward-cache entry", _corrupt_cache(lambda data: data[: len(data) // 2]), 1,
     r"{tmp}/cache/\w+/smiyc-ra21/\w+\.native\.none\.npz: unreadable cache entry \(damaged or unsupported \.npz "
     r"archive \(.*\)\); delete it to recompute"),
    ("pickle as a forward-cache entry", _corrupt_cache(lambda data: pickle.dumps({"a": 1})), 1,
     r"{tmp}/cache/\w+/smiyc-ra21/\w+\.native\.none\.npz: unreadable cache entry \(not an \.npz archive: it is a "
     r"Python pickle \(a pickle, not an array archive; refusing to unpickle\)\); delete it to recompute"),
    ("half-written run.json in --out", _broken_run_json, 1, r"{tmp}/out/run\.json: cannot read as JSON \(.*\)"),
    ("results.json with AP 5.0", _table_out_of_range, 1,
     r"{tmp}/res/results\.json: results\[0\] \(msp/smiyc-ra21\): metric 'AP' is 5\.0; expected a fraction in "
     r"\[0, 1\] \(results store fractions, not percentages\)"),
    ("--scorer ','", _flags("--scorer", ","), 2,
     r"--scorer ',': names nothing; leave the option out for the default list, or name at least one"),
    ("--scorer rba,rba", _flags("--scorer", "rba,rba"), 1, r"--scorer rba,rba: a scorer is named twice"),
    ("Maskomaly ids out of range", _flags("--scorer", "maskomaly", "--param", "maskomaly.accept=[30]"), 1,
     r"--param maskomaly\.accept=\[30\]: query id\(s\) \[30\] out of range for this checkpoint's 24 queries"),
]


def case(row, tmp, replica):
    """Build a case in ``tmp``; returns its command line."""
    build = row[1]
    return build(tmp, replica) if build.__code__.co_argcount == 2 else build(tmp)


@pytest.mark.parametrize("row", CASES, ids=[c[0] for c in CASES])
def test_each_case_is_one_line(fx, tmp_path, ra21, row):
    args = case(row, tmp_path, ra21)
    code, _, err = fx.bench(*args)
    line = fx.one_error_line(err)
    assert code == row[2], err
    assert re.fullmatch(row[3].format(tmp=re.escape(str(tmp_path))), line), line
    assert not list(tmp_path.rglob(".*.tmp")) and not list(tmp_path.rglob(".maskbench.lock"))


# -- dataset readers (read per frame: the message of the error `bench run` shows) -----------------------------------
def test_panoptic_png_must_be_a_png(tmp_path):
    rep = make("coco-open-panoptic", tmp_path / "coco", frames=2, seed=0)
    png = next((rep.root / "panoptic_val2017").glob("*.png"))
    rgb = np.asarray(Image.open(png).convert("RGB"))
    Image.fromarray(rgb).save(png, format="JPEG", quality=100)  # a JPEG under the .png name changes the segment ids
    ds = load_dataset("coco-open-panoptic", rep.root)
    index = ds.ids.index(png.stem)
    with pytest.raises(DatasetError, match=rf"^coco-open-panoptic: {re.escape(str(png))}: unreadable label: not a PNG "
                                           r"file: it is a JPEG image \(labels must be lossless PNG"):
        ds[index]


def test_coco_annotation_naming_a_file_outside_is_refused(tmp_path):
    rep = make("coco-open-panoptic", tmp_path / "coco", frames=2, seed=0)
    path = rep.root / "annotations" / "panoptic_val2017.json"
    data = json.loads(path.read_text())
    data["annotations"][0]["file_name"] = "../../../outside.png"
    path.write_text(json.dumps(data))
    with pytest.raises(DatasetError, match=rf"^coco-open-panoptic: {re.escape(str(path))}: names "
                                           r"'\.\./\.\./\.\./outside\.png', which is not a file name inside .*"
                                           r"panoptic_val2017; refusing to read it$"):
        load_dataset("coco-open-panoptic", rep.root)


@pytest.mark.parametrize("payload,message", [
    (lambda: pickle.dumps({"rgb": np.zeros(3)}), r"overlay: not an \.npz archive: it is a Python pickle \(a pickle, "
                                                  r"not an array archive; refusing to unpickle\)"),
    (lambda: _npz_bytes(rgb=np.array([None], dtype=object)), r"overlay: array 'rgb': array of Python objects "
                                                              r"\(dtype object\); refusing to unpickle it"),
    (lambda: _zip_bomb(), r"overlay: array 'rgb' claims shape \(30000, 30000, 3\) int64 \(20\.1 GiB\), more than "
                          r"the limit of 4\.0 GiB"),
], ids=["pickle", "objects", "bomb"])
def test_fishyscapes_overlay_is_read_safely(tmp_path, payload, message):
    rep = make("fs-static", tmp_path / "fs", frames=2, seed=0)
    overlay = rep.files[rep.samples[0].id]["overlay"]
    overlay.write_bytes(payload())
    ds = load_dataset("fs-static", rep.root)
    with pytest.raises(DatasetError, match=rf"^fs-static: {re.escape(str(overlay))}: {message}$"):
        ds[ds.ids.index(rep.samples[0].id)]


def _zip_bomb():
    """An .npz whose member claims 20 GiB in a few hundred bytes (deflated zeros)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("rgb.npy", _npy_header((30_000, 30_000, 3), "<i8") + bytes(1 << 16))
    return buf.getvalue()


def test_lost_and_found_roi_must_be_a_png(tmp_path):
    rep = make("lost-and-found", tmp_path / "laf", frames=2, seed=0)
    roi = rep.root / "LAF_roi_2048.png"
    Image.open(roi).convert("L").save(roi, format="JPEG")
    with pytest.raises(DatasetError, match=rf"^lost-and-found: {re.escape(str(roi))}: unreadable ROI image "
                                           r"\(unreadable label: not a PNG file: it is a JPEG image"):
        load_dataset("lost-and-found", rep.root, subset="anomalyTest")


def test_a_symlinked_frame_outside_the_root_is_read(tmp_path, ra21):
    """Documented (maskbench.datasets.base): links placed under a root are followed; only names given by the
    dataset's own files are confined to their folder."""
    root = tmp_path / "ra21"
    shutil.copytree(ra21.parent, root)
    image = next((root / "dataset_AnomalyTrack" / "images").iterdir())
    outside = tmp_path / "store" / image.name
    outside.parent.mkdir()
    shutil.move(image, outside)
    image.symlink_to(outside)
    ds = load_dataset("smiyc-ra21", root)
    reference = load_dataset("smiyc-ra21", ra21)
    index = ds.ids.index(image.stem)
    assert np.array_equal(ds[index].image, reference[index].image)
