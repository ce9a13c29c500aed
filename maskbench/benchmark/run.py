"""`bench run`: configuration, validation, resume, torchrun sharding and the frame loop, driving a task.

One forward per frame (:mod:`.forward`, through the forward cache when asked) feeds every scorer; a task
(:mod:`.tasks`) turns each frame into stored state and a ``per_image.jsonl`` row, then the stored frames into
``results.json`` entries. A frame counts as done only once its row is on disk and the task's state for it is
complete, so a crash, Ctrl-C or SIGKILL loses at most the frame in flight and re-running the same call resumes;
the metrics are always recomputed from the stored frames, so nothing is counted twice. With torchrun every rank
handles its own frames (``r, r + W, ...``) and appends its rows to ``work/rows.<rank>.jsonl``; tasks merge their
accumulators across ranks exactly (:meth:`Run.combine`) and rank 0 writes ``per_image.jsonl`` sorted by frame.
Before anything is loaded, rank 0 claims the results folder (and the ``cache`` folder of the checkpoint and
dataset): writable, locked against a second run, cleaned of what a killed run left
(:func:`~maskbench.fileio.claim_folder`).
"""

import contextlib
import dataclasses
import shutil
import sys
import time
from pathlib import Path

from maskbench import __version__
from maskbench.benchmark import calibrate, distributed
from maskbench.benchmark.cache import ForwardCache
from maskbench.benchmark.forward import check_settings, checkpoint_record, open_source
from maskbench.benchmark.frame import TTA_RULES, check_tta, score_frame
from maskbench.benchmark.passes import default_workers
from maskbench.benchmark.results import (
    RESULTS_FILE, ROWS_FILE, RUN_FILE, WORK_DIR, RowLog, jsonable, package_versions, read_json, read_rows, utc_now,
    write_json_atomic, write_results, write_rows,
)
from maskbench.benchmark.tasks import TASKS
from maskbench.datasets import DATASETS, accepted_options, load_dataset
from maskbench.errors import ConfigError, InputError
from maskbench.fileio import claim_folder
from maskbench.scorers import get_scorer, load_plugins

#: The six methods compared by default (the scorer registry also holds Maskomaly's two parts).
DEFAULT_SCORERS = ("msp", "rba", "eam", "aem", "maskomaly", "mask2anomaly")
#: run.json fields that must match for a run to resume in the same ``out`` (``limit`` may grow), besides the
#: task's own ``resume_fields``.
RESUME_FIELDS = ("task", "task_options", "dataset", "checkpoint", "scorers", "plugins", "scorer_sources", "resolution",
                 "tta", "device", "source")


@dataclasses.dataclass
class RunConfig:
    """Everything `bench run` needs; ``scorer_params`` maps a scorer name to its hyperparameters.

    ``fpr95_rule`` None: the task's rule (the official one of the protocol); ``task_options``: options of the
    task (see its ``options``); ``dataset_options``: reader options (``load_dataset``). ``plugins``: scorer
    plug-ins (module names or ``.py`` files, :func:`maskbench.scorers.load_plugins`) imported before the scorers
    are resolved, on every rank. ``bootstrap``: replicates B of the percentile bootstrap (None: off; tasks with
    ``resamples``), with ``seed`` and ``level`` (:mod:`maskbench.metrics.bootstrap`). ``recipe``: the training recipe
    of the checkpoint (:data:`maskbench.train.recipes.RECIPES`, ``none`` for an inlier-only model) when the caller
    knows it, recorded as ``run.checkpoint.recipe`` (the embedded benchmark sets it for every shipped variant).
    """

    dataset: str
    out: Path
    scorers: tuple = DEFAULT_SCORERS
    plugins: tuple = ()
    task: str = "anomaly"
    root: Path | None = None
    dataset_options: dict = dataclasses.field(default_factory=dict)
    scorer_params: dict = dataclasses.field(default_factory=dict)
    task_options: dict = dataclasses.field(default_factory=dict)
    checkpoint: Path | None = None
    protocol: str = "official"
    fpr95_rule: str | None = None
    resolution: str = "native"
    tta: str = "none"
    device: str = "cpu"
    cache: Path | None = None
    from_cache: Path | None = None
    limit: int | None = None
    bootstrap: int | None = None
    seed: int = 0
    level: float = 95.0
    calibration: Path | None = None
    save_maps: int = 4
    keep_work: bool = False
    workers: int | None = None
    command: list | None = None
    recipe: str | None = None


class Run:
    """What a task sees of a run: its configuration, dataset, scorers, forward source, folders and ranks."""

    def __init__(self, config, task, dataset, scorers, scorer_notes, source, dist, progress):
        self.config, self.task, self.dataset, self.scorers = config, task, dataset, scorers
        self.scorer_notes, self.source, self.dist = scorer_notes, source, dist
        self.progress = progress if dist.is_main else None
        self.out = Path(config.out)
        self.work = self.out / WORK_DIR
        self.indices, self.meta = [], {}  # the frames of the run and its run.json content (set when opened)

    def work_file(self, index):
        """``work/<index>.npz``: where a task stores a frame's state until the run ends."""
        return self.work / f"{index:06d}.npz"

    def scores(self, sample, buffers=None):
        """``{scorer: float32 (H, W)}`` of one frame, over the configuration's TTA views."""
        return score_frame(sample, self.source, self.scorers, self.config.tta, buffers)

    def outputs(self, sample):
        """The forward outputs ``(class logits, mask logits)`` of a frame's image (no TTA)."""
        return self.source(sample.id, self.source.image_hash(sample.image), sample.image, "none")

    def combine(self, acc):
        """``acc`` merged with the other ranks' (rank order; exact for every maskbench accumulator)."""
        parts = self.dist.gather(acc)
        merged = parts[0]
        for part in parts[1:]:
            merged.merge(part)
        return merged

    def workers(self, n_frames):
        """Processes for this rank's metric passes (ranks share the machine's cores when they share a node)."""
        return self.config.workers or max(1, default_workers(n_frames) // self.dist.world)


def run_benchmark(config, forward=None, *, checkpoint=None, progress=None, log=None):
    """Run ``config`` (a :class:`RunConfig`); returns the results.json content (on every rank).

    forward: ``image uint8 (H, W, 3) -> (class logits [Q, K+1], mask logits [Q, H, W])`` torch tensors; by
        default the Mask2Former of ``config.checkpoint`` (``maskbench.model``) at ``config.resolution``.
    checkpoint: ``{"path", "sha256", "config"}`` describing ``forward`` (default: hashed from ``config.checkpoint``).
    progress: ``progress(label, total)`` -> object with ``update(n)`` and ``close()`` (shown on rank 0 only).
    log: ``log(line)`` for what the run decides on its own (model loading, resuming, a finished folder, a stale
        lock taken over, a skipped scorer); rank 0 only.

    The results folder (and the ``cache`` folder of this checkpoint and dataset) is checked writable and locked
    (:class:`~maskbench.fileio.FolderLock`) before anything is loaded: a second run into it is refused.
    """
    dist, device = distributed.from_env(config.device)
    log = log if (log is not None and dist.is_main) else (lambda line: None)
    try:
        with contextlib.ExitStack() as held:
            return _execute(_open(config, forward, checkpoint, progress, dist, device, held, log), log)
    finally:
        dist.close()


def _check_common(config, task):
    if config.limit is not None and config.limit < 1:
        raise ConfigError("limit", f" {config.limit}: must be at least 1")
    for field in dataclasses.fields(RunConfig):
        default = field.default if field.default_factory is dataclasses.MISSING else field.default_factory()
        if field.name in task.unused and getattr(config, field.name) != default:
            raise ConfigError(field.name, f" {getattr(config, field.name)!r}: not used by task {task.name}")
    if not task.resamples and (config.bootstrap, config.seed, config.level) != (None, 0, 95.0):
        raise ConfigError("bootstrap", f": task {task.name} has no bootstrap intervals (nor seed, level)",
                          mentions=("seed", "level"))
    if config.dataset not in DATASETS.names():
        raise ConfigError("dataset", f" {config.dataset!r}: unknown; known datasets: {', '.join(DATASETS.names())}")
    check_tta(config.tta)
    check_settings(config.resolution, config.device, config.cache, config.from_cache)


def _scorers(config):
    """``({name: Scorer}, their parameters, calibration record or None, plug-in records)``, every check naming its
    field; the plug-ins are imported first."""
    plugins = load_plugins(config.plugins)
    if not config.scorers:
        raise ConfigError("scorers", ": name at least one scorer")
    if len(set(config.scorers)) != len(config.scorers):
        raise ConfigError("scorers", f" {','.join(config.scorers)}: a scorer is named twice")
    stray = sorted(set(config.scorer_params) - set(config.scorers))
    if stray:
        raise ConfigError("scorer_params", f" given for scorer(s) {stray} that are not in scorers "
                          f"{','.join(config.scorers)}", mentions=("scorers",))
    calibration = calibrate.read_calibration(config.calibration) if config.calibration is not None else None
    params = calibrate.calibrated_params(config.scorers, config.scorer_params, calibration) if calibration else \
        config.scorer_params
    scorers = {}
    for name in config.scorers:
        try:
            scorers[name] = get_scorer(name, **params.get(name, {}))
        except InputError as err:
            raise ConfigError(("scorers", "scorer_params"), f": {err}") from err
    return scorers, params, calibration, plugins


def _dataset(config, task):
    """The dataset, with the task's default options where the caller gave none and the reader accepts them."""
    accepted = accepted_options(config.dataset)
    options = {k: v for k, v in task.dataset_options.items() if k in accepted}
    options.update(config.dataset_options)
    ds = load_dataset(config.dataset, config.root, **options)
    labelled = ds.info.get("labelled_count")
    if "ood" in task.requires and labelled is not None and labelled < len(ds):
        raise ConfigError("dataset", f" {config.dataset}: {len(ds) - labelled} of its {len(ds)} frames carry no "
                          f"labels, which task {task.name} needs (load the labelled frames: dataset option "
                          "frames=labelled)")
    return ds, options


def _default_ids(config, scorers, params, calibration, checkpoint, log):
    """The scorers with the Maskomaly query ids :func:`~.calibrate.maskomaly_ids` chooses for the loaded checkpoint:
    ``(scorers, notes, sources, skipped)``; a skipped scorer is said at once, and no scorer left is an error."""
    params, sources, notes, skipped = calibrate.maskomaly_ids(config.scorers, params, config.scorer_params,
                                                              calibration, checkpoint)
    scorers = {name: get_scorer(name, **params.get(name, {})) if name in sources else scorer
               for name, scorer in scorers.items() if name not in skipped}
    if not scorers:
        raise ConfigError("scorers", f" {','.join(config.scorers)}: nothing left to run "
                                     f"({'; '.join(skipped.values())})")
    for name, reason in skipped.items():
        log(f"skipping {name}: {reason}")
    return scorers, notes, sources, skipped


def _with_recipe(record, recipe):
    """The checkpoint record with the training recipe of the checkpoint when the caller knows it."""
    return record if recipe is None else {**record, "recipe": recipe}


def _open(config, forward, checkpoint, progress, dist, device, held, log):
    """Check everything that can be checked before loading, claim the folders, then load the dataset and the
    forward source."""
    task = TASKS.get(config.task)(**config.task_options)
    _check_common(config, task)
    # a task that scores no anomalies (semantic) lists "scorers" as unused: no scorer is built or recorded
    scores = "scorers" not in task.unused
    scorers, params, calibration, plugins = _scorers(config) if scores else ({}, {}, None, [])
    fields = task.configure(config, DATASETS.get(config.dataset))
    if checkpoint is None and forward is not None and config.checkpoint is None and config.from_cache is None:
        raise ConfigError("checkpoint", ": a forward needs its record {'path', 'sha256', 'config'} (the checkpoint "
                          "argument of run_benchmark)")
    record = dict(checkpoint) if checkpoint is not None else checkpoint_record(config.checkpoint, config.from_cache)
    if calibration:
        calibrate.check_calibration_checkpoint(calibration, record)
    command = " ".join(config.command) if config.command is not None else None
    if dist.is_main:
        claim_folder(config.out, held, log, command=command)
        if config.cache is not None:
            claim_folder(ForwardCache(config.cache, record, config.dataset, None).folder, held, log, command=command)
    ds, options = _dataset(config, task)
    if forward is None and config.from_cache is None:
        log(f"loading the model {config.checkpoint}")
    source = open_source(ds, checkpoint=config.checkpoint, resolution=config.resolution, device=config.device,
                         cache=config.cache, from_cache=config.from_cache, forward=forward, record=record,
                         torch_device=device)
    scorers, notes, sources, skipped = _default_ids(config, scorers, params, calibration, source.checkpoint, log) \
        if scores else ({}, {}, {}, {})
    run = Run(config, task, ds, scorers, notes, source, dist, progress)
    n_frames = len(ds) if config.limit is None else min(config.limit, len(ds))
    run.indices, planned = task.plan(run, n_frames)
    run.meta = {
        "maskbench_version": __version__,
        "command": list(config.command) if config.command is not None else list(sys.argv),
        "started": utc_now(), "finished": None,
        "task": task.name, "task_options": jsonable(task.settings),
        "dataset": {"name": config.dataset, "root": str(ds.root), "options": jsonable(options),
                    "info": jsonable(ds.info)},
        "checkpoint": jsonable(_with_recipe(source.checkpoint, config.recipe)),
        "scorers": {n: jsonable(dict(s.params)) for n, s in scorers.items()},
        "plugins": [p.to_dict() for p in plugins],
        "scorer_sources": {n: jsonable(s.source) for n, s in scorers.items()},
        "scorer_param_sources": sources, "skipped_scorers": skipped,
        "calibration": calibration,
        **fields, **planned,
        "resolution": config.resolution, "tta": config.tta, "tta_rule": TTA_RULES[config.tta],
        "device": config.device, "world_size": dist.world, "source": source.kind, "forward_outputs": source.outputs,
        "limit": config.limit, "frames": len(run.indices), "versions": package_versions(),
    }
    return run


def _resume_view(meta, fields):
    view = {k: meta.get(k) for k in fields}
    view["checkpoint"] = (meta.get("checkpoint") or {}).get("sha256")
    return view


def _previous_run(run):
    """``"fresh"``, ``"resume"`` or ``"finished"``: the state of the results folder, refusing another configuration."""
    out = run.out
    if not (out / RUN_FILE).is_file():
        return "fresh"
    previous = read_json(out / RUN_FILE)
    fields = RESUME_FIELDS + tuple(run.task.resume_fields)
    old, new = _resume_view(previous, fields), _resume_view(run.meta, fields)
    differing = [k for k in fields if old[k] != new[k]]
    if differing:
        raise ConfigError("out", f" {out} holds a run with a different {', '.join(differing)}; choose another "
                          "folder or delete it to start over")
    if not previous.get("finished"):
        return "resume"
    if previous.get("limit") != run.config.limit or not (out / RESULTS_FILE).is_file():
        raise ConfigError("out", f" {out} holds a finished run (limit {previous.get('limit')}); choose another "
                          "folder or delete it to run again", mentions=("limit",))
    return "finished"


def _execute(run, log):
    dist, out, meta = run.dist, run.out, run.meta
    state = dist.gather(_previous_run(run) if dist.is_main else None)[0]
    if state == "finished":  # the same call again: the stored results
        log(f"{out.absolute()} already holds the finished results of this run: nothing to do (delete the folder or "
            "choose another to run again)")
        return dist.gather(read_json(out / RESULTS_FILE) if dist.is_main else None)[0]
    if dist.is_main:
        if state == "resume":
            meta["started"] = read_json(out / RUN_FILE)["started"]
        run.work.mkdir(parents=True, exist_ok=True)
        write_json_atomic(out / RUN_FILE, meta)
    dist.barrier()
    run.work.mkdir(parents=True, exist_ok=True)
    run.task.begin(run)

    mine = dist.shard(run.indices)
    covered = set(run.indices)
    stored = read_rows([out / ROWS_FILE, *sorted(run.work.glob("rows.*.jsonl"))])
    done = {i: r for i, r in stored.items() if i in covered and run.task.stored(run, i)}
    if state == "resume":
        log(f"resuming the run in {out.absolute()}: {len(done)} of {len(run.indices)} frames already done")
    rows = {i: done[i] for i in mine if i in done}
    _loop(run, [i for i in mine if i not in done], rows)
    all_rows = {i: r for part in dist.gather(rows) for i, r in part.items()}
    entries, curves = run.task.finish(run, mine, all_rows)

    results = None
    if dist.is_main:
        write_rows(out / ROWS_FILE, all_rows)
        meta["finished"] = utc_now()
        results = {"run": meta, "results": entries}
        write_results(out, meta, entries, run.task.csv_keys, curves)
        write_json_atomic(out / RUN_FILE, meta)  # last: a finished run.json implies complete results
        if not run.config.keep_work:
            shutil.rmtree(run.work, ignore_errors=True)
    return dist.gather(results)[0]


def _loop(run, todo, rows):
    """The frames ``todo`` of this rank through the task, each row logged as soon as its frame is stored."""
    ds, task, dist = run.dataset, run.task, run.dist
    log = RowLog(run.out / ROWS_FILE if dist.world == 1 else run.work / f"rows.{dist.rank}.jsonl")
    bar = run.progress("forward + scorers", len(todo)) if run.progress else None
    ids = ds.ids
    try:
        for index in todo:
            start = time.perf_counter()
            sample = ds[index]
            if sample.id != ids[index]:
                raise InputError(f"{ds.name}: frame {index} read as {sample.id!r}, listed as {ids[index]!r}")
            missing = [field for field in task.requires if getattr(sample, field) is None]
            if missing:
                raise InputError(f"{ds.name}: frame {sample.id!r} carries no {', '.join(missing)} labels, which task "
                                 f"{task.name} needs")
            row = task.frame(run, index, sample)
            rows[index] = {"id": sample.id, "index": index, **row, "seconds": round(time.perf_counter() - start, 4)}
            log.append(rows[index])
            if bar:
                bar.update(1)
    finally:
        log.close()
        if bar:
            bar.close()


__all__ = ["DEFAULT_SCORERS", "RESUME_FIELDS", "Run", "RunConfig", "run_benchmark"]
