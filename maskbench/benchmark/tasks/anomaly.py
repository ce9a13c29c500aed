"""Task ``anomaly``: anomaly segmentation metrics of every scorer under the dataset's protocol.

Per frame (resumable): every scorer's map over the TTA views, checked for the protocol's score dtype, written
to ``work/<index>.npz`` in that dtype (float16 for the SMIYC and ``exact16`` protocols, as SMIYC stores them;
float32 for ``exact``). Only the pixels labelled 0 or 1 are stored (with the full label map): every metric
ignores void scores (the pixel curves skip void, the components zero it before labelling), and on the obstacle
tracks void is most of the frame. The first ``save_maps`` frames also go to ``maps/`` for overlays. At the end
the two metric passes of :mod:`maskbench.benchmark.passes` read the stored frames back, as `bench evaluate`
reads saved maps. With ``RunConfig.bootstrap`` the same passes also give every metric's percentile bootstrap
interval (``ci`` of each entry) over the frames in ``per_image.jsonl`` order (frame index ascending, whatever
the ranks and resumes), and the replicate values go to ``bootstrap.npz`` for paired comparisons.
StreetHazards, whose official numbers are per-image means, is evaluated by
:mod:`maskbench.benchmark.per_image_track` instead (pooled and per-image AP / AUROC / FPR95, exact float32 scores).
"""

import numpy as np

from maskbench.benchmark import per_image_track
from maskbench.benchmark.frame import MapBuffers, check_range, overlay_dtype
from maskbench.benchmark.passes import (
    METRIC_KEYS, Resampling, labelled, metric_values, read_stored_frame, two_pass, two_pass_bootstrap,
)
from maskbench.benchmark.protocols import (
    EVAL_PROTOCOLS, check_fpr95_rule, protocol_choice, protocol_details, resolve_protocol,
)
from maskbench.benchmark.replicates import RUN_ORDER, bootstrap_record, write_replicates
from maskbench.benchmark.results import map_file, write_npz_atomic
from maskbench.benchmark.tables import DEFAULT_METRICS
from maskbench.benchmark.tasks.base import TASKS, Task
from maskbench.errors import ConfigError, InputError


def frame_row(sample, maps):
    """The per_image.jsonl row of a frame: size, labelled and anomalous pixels, each map's range and means."""
    valid, anomaly, inlier = sample.ood <= 1, sample.ood == 1, sample.ood == 0
    stats = {}
    for name, m in maps.items():
        stats[name] = {
            "min": float(m.min()), "max": float(m.max()),
            "mean_anomaly": float(m[anomaly].mean(dtype=np.float64)) if anomaly.any() else None,
            "mean_inlier": float(m[inlier].mean(dtype=np.float64)) if inlier.any() else None,
        }
    return {"height": int(sample.ood.shape[0]), "width": int(sample.ood.shape[1]), "n_valid": int(valid.sum()),
            "n_anomaly": int(anomaly.sum()), "scores": stats}


@TASKS.register
class AnomalyTask(Task):
    name = "anomaly"
    summary = "anomaly segmentation: AP, AUROC, FPR95, sIoU, PPV, F1*, MDM under the dataset's protocol"
    table_metrics = DEFAULT_METRICS
    csv_keys = METRIC_KEYS + ("images", "n_pixels", "n_positive")
    resume_fields = ("protocol", "fpr95_rule", "bootstrap")
    resamples = True

    @classmethod
    def metrics_for(cls, dataset):
        return per_image_track.TABLE_METRICS if dataset in per_image_track.PER_IMAGE_DATASETS else cls.table_metrics

    def configure(self, config, dataset_cls):
        self.per_image = dataset_cls.name in per_image_track.PER_IMAGE_DATASETS
        if self.per_image:
            return self._configure_per_image(config, dataset_cls)
        track = dataset_cls.track_for(config.dataset_options)
        if track not in ("anomaly", "obstacle"):
            raise ConfigError("dataset", f" {dataset_cls.name}: no anomaly or obstacle track (no anomaly labels, "
                              "or another task such as panoptic segmentation); the anomaly task needs one")
        self.protocol = resolve_protocol(config.protocol, track)
        self.rule = check_fpr95_rule(self.protocol, config.fpr95_rule)
        self.buffers = MapBuffers()  # each frame's maps are consumed (stored, summarised) before the next frame's
        self.bootstrap = bootstrap_record(config.bootstrap, config.seed, config.level, RUN_ORDER)
        return {"protocol": self.protocol.name,
                "protocol_choice": protocol_choice(config.protocol, track, dataset_cls.name),
                "fpr95_rule": self.rule, "bootstrap": self.bootstrap}

    def _configure_per_image(self, config, dataset_cls):
        if config.bootstrap is not None:
            raise ConfigError("bootstrap", f" {config.bootstrap}: the {dataset_cls.name} anomaly track (pooled and "
                              "per-image metrics) has no bootstrap intervals")
        self.bootstrap = None
        if config.protocol not in ("official", "exact"):
            raise ConfigError("protocol", f" {config.protocol}: the {dataset_cls.name} anomaly track evaluates exact "
                              "float32 scores, pooled and per image (protocol official or exact)")
        self.protocol = EVAL_PROTOCOLS["exact"]  # the frames are stored as the exact protocol stores them
        self.rule = config.fpr95_rule or per_image_track.POOLED_RULE
        try:
            self.protocol.pixel_accumulator(self.rule)
        except InputError as err:
            raise ConfigError("fpr95_rule", f" {self.rule}: {err}") from err
        self.buffers = MapBuffers()
        self.csv_keys = per_image_track.TABLE_METRICS + ("images", "n_pixels", "n_positive")
        return {"protocol": per_image_track.PROTOCOL,
                "protocol_choice": f"official protocol of {dataset_cls.name} (pooled and Hendrycks per-image)",
                "fpr95_rule": self.rule, "fpr95_rules": {"pooled": self.rule, "per_image": "closest"},
                "bootstrap": None}

    def frame(self, run, index, sample):
        dtype = self.protocol.score_dtype
        maps = run.scores(sample, self.buffers)
        check_range(maps, dtype, sample.id)
        roi = labelled(sample.ood)
        write_npz_atomic(run.work_file(index), ood=sample.ood, **{n: m[roi].astype(dtype) for n, m in maps.items()})
        if index < run.config.save_maps:
            path = map_file(run.out, sample.id)
            path.parent.mkdir(exist_ok=True)
            write_npz_atomic(path, image=sample.image, ood=sample.ood, **{n: overlay_dtype(m) for n, m in maps.items()})
        return frame_row(sample, maps)

    def finish(self, run, indices, rows):
        frames = [(i, run.work_file(i)) for i in indices]
        names = list(run.scorers)
        if self.per_image:
            return self._finish_per_image(run, frames, names, rows)
        passes = dict(workers=run.workers(len(frames)), progress=run.progress, combine=run.combine)
        boot = None
        if self.bootstrap is None:
            pixel, comp = two_pass(frames, read_stored_frame, names, self.protocol, self.rule, **passes)
        else:  # per_image.jsonl order: the run's frame indices ascending
            order = sorted(run.indices)
            position = {index: p for p, index in enumerate(order)}
            pixel, comp, boot = two_pass_bootstrap(
                frames, [position[i] for i in indices], read_stored_frame, names, self.protocol, self.rule,
                Resampling(self.bootstrap["replicates"], self.bootstrap["seed"]), dist=run.dist, **passes)
            if run.dist.is_main:
                write_replicates(run.out, boot, [rows[i]["id"] for i in order], self.bootstrap)
        entries, curves = [], {}
        for n in names:
            values = metric_values(pixel[n], comp.get(n))
            notes = {**run.scorer_notes.get(n, {}), **values.pop("notes")}
            entry = {"scorer": n, "dataset": run.config.dataset, "protocol": self.protocol.name,
                     "metrics": {**values, "images": len(rows)},
                     "protocol_details": protocol_details(self.protocol, pixel[n]), "notes": notes}
            if boot is not None:
                entry["ci"] = boot[n].intervals(self.bootstrap["level"])
            entries.append(entry)
            curves[n] = (*pixel[n].pr_curve(), *pixel[n].roc_curve())
        return entries, curves

    def _finish_per_image(self, run, frames, names, rows):
        results = per_image_track.per_image_pass(frames, read_stored_frame, names, self.rule,
                                                 workers=run.workers(len(frames)), progress=run.progress,
                                                 combine=run.combine)
        details = per_image_track.track_details(self.rule, run.dataset.info)
        entries, curves = [], {}
        for n in names:
            values, notes = per_image_track.metric_values(results[n])
            pooled = results[n]["pooled"]
            entries.append({"scorer": n, "dataset": run.config.dataset, "protocol": per_image_track.PROTOCOL,
                            "metrics": {**values, "images": len(rows), "n_pixels": pooled.n_pixels,
                                        "n_positive": pooled.n_positive},
                            "protocol_details": {**details, "frames_per_image": results[n]["frames_per_image"]},
                            "notes": {**run.scorer_notes.get(n, {}), **notes}})
            curves[n] = (*pooled.pr_curve(), *pooled.roc_curve())
        return entries, curves
