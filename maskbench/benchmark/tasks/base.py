"""The task interface: what `bench run --task NAME` computes from the one shared forward.

The runner (:mod:`maskbench.benchmark.run`) owns configuration, the dataset, the scorers, the forward source,
resume, torchrun sharding, the frame loop and the results directory; a task owns what happens to each frame
and how the frames become metrics. The runner calls, in order::

    task = TaskClass(**config.task_options)       # options checked against TaskClass.options
    fields = task.configure(config, dataset_cls)  # before anything is loaded: refuse an unsuitable dataset or
                                                  # setting; returns the task's run.json fields
    indices, more = task.plan(run, n)             # the frame indices this run covers (default: the first n)
                                                  # and run.json fields that depend on the loaded dataset
    task.begin(run)                               # every rank, before the loop (e.g. calibration frames)
    row = task.frame(run, index, sample)          # per frame of this rank: store what finish needs, return the
                                                  # per_image.jsonl row (JSON-ready; id, index, seconds added)
    task.stored(run, index)                       # resume: is frame index's stored state complete?
    entries, curves = task.finish(run, mine, rows)  # every rank, collective (accumulators merged across ranks
                                                   # with run.combine); results.json entries (rank 0's are
                                                   # written) and curves.npz curves (or {})

A frame counts as done when its row is in ``per_image.jsonl`` (or a rank's ``work/rows.<rank>.jsonl``) and
``stored`` says its state exists, so per-frame state must be written before ``frame`` returns. ``finish``
recomputes everything from the stored state, so a resumed run never counts a frame twice. Tasks store per-frame
state under ``run.work`` (removed after a run unless ``keep_work``) or under ``run.out``.

What a task sees of the run (:class:`~maskbench.benchmark.run.Run`): ``config``, ``dataset``, ``scorers``
(``{name: Scorer}``), ``scorer_notes``, ``source`` (the forward), ``scores(sample, buffers)`` (every scorer's map
over the TTA views), ``outputs(sample)`` (the forward outputs of the image), ``out``, ``work``,
``work_file(index)``, ``indices``, ``meta`` (run.json), ``dist`` (rank, world), ``combine(accumulator)``,
``workers(n)`` (processes for its passes) and ``progress`` (None except on rank 0).
"""

from maskbench.errors import ConfigError
from maskbench.registry import ClassRegistry


class Task:
    """Base class of the tasks of `bench run`; subclasses set the attributes and override the methods."""

    #: Name of the task (``--task``).
    name = ""
    #: One line saying what the task computes.
    summary = ""
    #: Fields of :class:`~maskbench.datasets.Sample` every frame must carry (not ``None``): ``"ood"`` (anomaly
    #: labels), ``"semantic"``, ``"panoptic"``, ``"segments"``; a frame without one is refused.
    requires = ("ood",)
    #: RunConfig fields the task does not read: a value other than the default is refused.
    unused = ()
    #: Dataset options applied when the caller gives none and the dataset accepts them (e.g. ``frames``).
    dataset_options = {}
    #: Task options and their defaults (``RunConfig.task_options``).
    options = {}
    #: Metric keys of the printed table (see :meth:`metrics_for`), and the columns of results.csv (an instance may
    #: set its own in ``configure``).
    table_metrics = ()
    csv_keys = ()
    #: run.json fields (from :meth:`configure`) that must match for a run to resume in the same folder.
    resume_fields = ()
    #: Whether the task gives bootstrap intervals (``RunConfig.bootstrap``, ``seed``, ``level``); else they are refused.
    resamples = False

    def __init__(self, **options):
        unknown = sorted(set(options) - set(self.options))
        if unknown:
            raise ConfigError("task_options", f" {unknown}: not options of task {self.name} "
                              f"(options: {', '.join(self.options) or 'none'})")
        self.settings = {**self.options, **options}

    @classmethod
    def metrics_for(cls, dataset):
        """The metric keys of the printed table of a run on dataset ``dataset`` (default: ``table_metrics``)."""
        return cls.table_metrics

    def configure(self, config, dataset_cls):
        """Check the configuration and the dataset class (nothing is loaded yet); return this task's run.json
        fields."""
        return {}

    def plan(self, run, n):
        """``(indices of the frames this run covers, run.json fields)`` given the first ``n`` frames of the loaded
        dataset."""
        return list(range(n)), {}

    def begin(self, run):
        """Work before the frame loop, on every rank."""

    def frame(self, run, index, sample):
        raise NotImplementedError

    def stored(self, run, index):
        """Whether the stored state of frame ``index`` is complete (default: ``work/<index>.npz`` exists)."""
        return run.work_file(index).is_file()

    def finish(self, run, indices, rows):
        """``(results.json entries, {name: (precision, recall, fpr, tpr)})`` from the stored frames; ``indices``
        are this rank's frames, ``rows`` every rank's rows by index."""
        raise NotImplementedError


#: Task classes by name.
TASKS = ClassRegistry("task", Task, unknown=lambda name, names: ConfigError(
    "task", f" {name!r}: unknown; tasks: {', '.join(names)}"))
