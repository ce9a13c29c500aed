"""Task ``predict``: every scorer's map of every frame, labelled or not, as SMIYC leaderboard submission files.

Per frame (resumable): the scorers' maps over the TTA views (as the anomaly task computes them), each written as
``<out>/anomaly_p/<method>/<dataset folder>/<frame id>.hdf5`` in the official format (:mod:`..submission`). The
method of a scorer is the option ``method`` with ``{scorer}`` replaced (default: the scorer's name); the dataset
folder is the official persistence name of the selected split (``AnomalyTrack-all``, ``ObstacleTrack-all`` for every
Obstacle Track split, ``LostAndFound-test``, ``LostAndFound-train``, ...; :func:`..submission.dataset_folder`)
unless the option ``folder`` names another. At the end: ``manifest.json`` (checkpoint sha256, scorer parameters, forward settings,
format, every frame with whether it carries labels) and one ``<method>.zip`` per method holding
``anomaly_p/<method>/<folder>/*.hdf5``, ready to upload. The labels of labelled frames are never read, so
`bench evaluate --dataset` on the same folder checks the validation frames before uploading.
"""

import numpy as np

from maskbench import __version__
from maskbench.benchmark.frame import MapBuffers, check_range
from maskbench.benchmark.results import utc_now, write_json_atomic
from maskbench.benchmark.submission import (
    GZIP_LEVEL, MANIFEST, ROOT_DIR, VALUE, dataset_folder, value_path, write_value, write_zip,
)
from maskbench.benchmark.tasks.base import TASKS, Task
from maskbench.errors import ConfigError

PROTOCOL = "smiyc-submission"
FORMAT = (f"SMIYC anomaly_p (road_anomaly_benchmark Evaluation.save_output / ChannelLoaderHDF5): one HDF5 file per "
          f"frame, float16 dataset {VALUE!r} (H x W, higher = more anomalous), gzip level {GZIP_LEVEL}")


@TASKS.register
class PredictTask(Task):
    name = "predict"
    summary = "SMIYC submission files of every scorer on every frame, with or without labels"
    requires = ()
    unused = ("protocol", "fpr95_rule", "save_maps")
    dataset_options = {"frames": "all"}
    options = {"method": "{scorer}", "folder": None, "zip": True}
    csv_keys = ("images", "labelled")

    def configure(self, config, dataset_cls):
        template = self.settings["method"]
        if not isinstance(template, str) or (len(config.scorers) > 1 and "{scorer}" not in template):
            raise ConfigError("task_options", f" method={template!r}: needs '{{scorer}}' to name one method per "
                              "scorer", mentions=("scorers",))
        self.methods = {s: template.replace("{scorer}", s) for s in config.scorers}
        bad = [m for m in self.methods.values() if not m or "/" in m or m in (".", "..")]
        if bad or len(set(self.methods.values())) != len(self.methods):
            raise ConfigError("task_options", f" method={template!r}: gives the method names {list(self.methods.values())}; "
                              "each must be a distinct folder name")
        self.buffers = MapBuffers()
        return {"protocol": PROTOCOL, "format": FORMAT, "methods": self.methods}

    def plan(self, run, n):
        self.folder = self.settings["folder"] or dataset_folder(run.dataset.name, run.dataset.info.get("official_split"))
        return list(range(n)), {"folder": self.folder}

    def frame(self, run, index, sample):
        maps = run.scores(sample, self.buffers)
        check_range(maps, np.float16, sample.id)
        for s, m in maps.items():
            write_value(value_path(run.out, self.methods[s], self.folder, sample.id), m)
        return {"height": int(sample.image.shape[0]), "width": int(sample.image.shape[1]),
                "labelled": sample.ood is not None,
                "scores": {s: {"min": float(m.min()), "max": float(m.max())} for s, m in maps.items()}}

    def stored(self, run, index):
        frame_id = run.dataset.ids[index]
        return all(value_path(run.out, m, self.folder, frame_id).is_file() for m in self.methods.values())

    def finish(self, run, indices, rows):
        if not run.dist.is_main:
            return [], {}
        order = [rows[i] for i in sorted(rows)]
        labelled = sum(r["labelled"] for r in order)
        meta = run.meta
        zips = {}
        if self.settings["zip"]:
            for s, method in self.methods.items():
                files = [value_path(run.out, method, self.folder, r["id"]) for r in order]
                zips[s] = write_zip(run.out / f"{method}.zip", run.out, files).name
        write_json_atomic(run.out / MANIFEST, {
            "format": FORMAT, "layout": f"{ROOT_DIR}/<method>/{self.folder}/<frame id>.hdf5",
            "maskbench_version": __version__, "created": utc_now(),
            "checkpoint": {k: meta["checkpoint"].get(k) for k in ("path", "sha256")},
            "methods": {method: {"scorer": s, "params": meta["scorers"][s], "zip": zips.get(s),
                                 "files": len(order)} for s, method in self.methods.items()},
            "dataset": {**meta["dataset"], "folder": self.folder},
            "forward": {k: meta[k] for k in ("resolution", "tta", "tta_rule", "device", "source", "forward_outputs")},
            "calibration": meta["calibration"],
            "frames": [{"id": r["id"], "labelled": r["labelled"]} for r in order],
        })
        entries = []
        for s, method in self.methods.items():
            where = f"{ROOT_DIR}/{method}/{self.folder}"
            summary = f"{len(order)} files ({labelled} of labelled frames) in {run.out / where}" + (
                f"; upload {run.out / zips[s]}" if s in zips else "")
            entries.append({"scorer": s, "dataset": run.config.dataset, "protocol": PROTOCOL,
                            "metrics": {"images": len(order), "labelled": labelled},
                            "protocol_details": {"format": FORMAT, "method": method, "folder": where,
                                                 "zip": zips.get(s), "manifest": MANIFEST, "summary": summary},
                            "notes": dict(run.scorer_notes.get(s, {}))})
        return entries, {}
