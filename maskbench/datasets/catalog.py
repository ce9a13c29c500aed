"""Entry points over the registry: load a dataset, check a root, describe every dataset."""

import inspect
from dataclasses import dataclass, field
from pathlib import Path

from maskbench.datasets.base import DATASETS, Dataset, Problem, env_roots
from maskbench.errors import DatasetError


def accepted_options(dataset):
    """The option names ``dataset`` (a registered name or a Dataset class) takes: the keyword parameters of its
    class and of its bases (``frames`` for all)."""
    cls = DATASETS.get(dataset) if isinstance(dataset, str) else dataset
    accepted = []
    for klass in cls.__mro__:
        if "__init__" in vars(klass) and issubclass(klass, Dataset):
            for p in inspect.signature(klass.__init__).parameters.values():
                if p.name not in ("self", "root") and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL) \
                        and p.name not in accepted:
                    accepted.append(p.name)
    return accepted


def _construct(name, root, options):
    cls = DATASETS.get(name)
    accepted = accepted_options(cls)
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise DatasetError(f"{name}: unknown option(s) {unknown}; accepted: {accepted or 'none'}")
    return cls(root, **options)


def load_dataset(name, root=None, **options):
    """The dataset ``name`` read from ``root`` (or its environment variable), refusing missing files.

    Returns a lazy sequence of :class:`~maskbench.datasets.base.Sample` in a deterministic order, with
    ``.info`` (name, version, label convention, official count, protocol track) for every result.
    """
    ds = _construct(name, root, options)
    if len(ds.problems) == 1:
        raise DatasetError(f"{name}: {ds.problems[0]}")
    if ds.problems:  # one line: the first problem, and where to see them all
        raise DatasetError(f"{name}: {len(ds.problems)} problems under {ds.root}, the first: {ds.problems[0]}; "
                           f"`bench datasets check {name} --root {ds.root}` lists them all")
    if not ds.frames:
        raise DatasetError(f"{name}: no frames found under {ds.root}\nexpected layout:\n{ds.layout}")
    return ds


@dataclass
class CheckReport:
    """What ``bench datasets check`` found: frames (labelled and not) against the official count and, where the
    benchmark publishes one, the official frame list; and every missing or malformed file.

    ``ok`` needs no problem and, unless ``partial``, exactly the official frame count and list (a benchmark
    number on a subset is not comparable with published ones).
    """

    name: str
    root: Path | None
    frames: int = 0
    official_count: int | None = None
    layout: str = ""
    problems: list = field(default_factory=list)
    partial: bool = False
    labelled: int = 0
    missing: list = field(default_factory=list)  # official frame ids not found
    unexpected: list = field(default_factory=list)  # frame ids found that the official list does not have

    @property
    def count_ok(self):
        if self.partial:
            return True
        count = self.official_count is None or self.frames == self.official_count
        return count and not self.missing and not self.unexpected

    @property
    def ok(self):
        return not self.problems and self.count_ok

    def format(self):
        lines = [f"dataset: {self.name}", f"root: {self.root}"]
        count = f"frames found: {self.frames}"
        if self.official_count is not None:
            diff = self.official_count - self.frames
            gap = f"; {abs(diff)} {'short of' if diff > 0 else 'more than'} the official count" if diff else ""
            count += f" (official: {self.official_count}{gap}{', accepted with --partial' if gap and self.partial else ''})"
        lines.append(count)
        lines.append(f"with labels: {self.labelled}; without labels: {self.frames - self.labelled}")
        for what, ids in (("official frames not found", self.missing), ("frames not in the official list", self.unexpected)):
            if ids:
                lines.append(f"{what} ({len(ids)}): {', '.join(ids)}")
        if self.problems:
            lines.append(f"problems ({len(self.problems)}):")
            lines += [f"  - {p}" for p in self.problems]
        if not self.ok:
            lines += ["expected layout:", self.layout]
        failures = [f"{len(self.problems)} missing or malformed path(s)"] if self.problems else []
        if not self.count_ok:
            if self.official_count is not None and self.frames != self.official_count:
                failures.append("frame count differs from the official one (--partial accepts fewer frames)")
            else:
                failures.append("frames differ from the official list (--partial accepts a subset)")
        lines.append("FAILED: " + "; ".join(failures) if failures else "OK")
        return "\n".join(lines)


def check_dataset(name, root=None, *, read=True, partial=False, **options):
    """Walk ``root`` and, with ``read``, load every frame; collect every problem instead of stopping at one.

    ``partial`` accepts frames other than the official ones (replicas, partial downloads).
    """
    cls = DATASETS.get(name)
    report = CheckReport(name, Path(root) if root is not None else None, official_count=cls.official_count,
                         layout=cls.layout, partial=partial)
    try:
        ds = _construct(name, root, options)
    except DatasetError as err:
        report.problems.append(getattr(err, "problem", None) or Problem(report.root or Path("."), str(err)))
        return report
    report.root, report.official_count, report.frames = ds.root, ds.official_count, len(ds)
    report.labelled = ds.info["labelled_count"]
    official = ds.official_ids
    if official is not None:
        found = {ds.official_id(fid): fid for fid in ds.ids}
        report.missing = sorted(set(official) - set(found))
        report.unexpected = sorted(fid for key, fid in found.items() if key not in set(official))
    report.problems.extend(ds.problems)
    if not ds.frames and not ds.problems:
        report.problems.append(Problem(ds.root, "no frames found"))
    if read:
        for frame in ds.frames:
            try:
                ds._load(frame)
            except DatasetError as err:
                report.problems.append(err.problem)
    return report


def describe_datasets():
    """``[(name, summary, layout, env vars, variants)]`` for every registered dataset, sorted by name."""
    return [(name, DATASETS.get(name).summary, DATASETS.get(name).layout, env_roots(name), DATASETS.get(name).variants)
            for name in DATASETS.names()]


def _variant_line(v):
    if v.count is None and v.labelled is None:  # a policy, not a frame selection
        return f"      {v.option}={v.value}: {v.official} ({v.source})"
    count = "count not given" if v.count is None else f"{v.count} frames"
    labelled = "" if v.labelled is None else f", {v.labelled} labelled"
    return f"      {v.option}={v.value}: {v.official} ({count}{labelled}; {v.source})"


def format_dataset_list():
    """The text of ``bench datasets``: each name, a one-line description, the layout it expects, its env vars,
    its options and the official splits they select (with counts and where the list comes from)."""
    blocks = []
    for name, summary, layout, (per_dataset, shared), variants in describe_datasets():
        tree = "\n".join(f"    {line}" for line in layout.splitlines())
        options = ", ".join(accepted_options(DATASETS.get(name)))
        block = f"{name}: {summary}\n{tree}\n    root: --root DIR, ${per_dataset} or ${shared}/{name}" \
                f"\n    options (-o KEY=VALUE): {options} (frames=labelled|all; all: frames without labels too)"
        if variants:
            block += "\n    splits and policies:\n" + "\n".join(_variant_line(v) for v in variants)
        blocks.append(block)
    return "\n\n".join(blocks)


def parse_options(pairs):
    """``["key=value", ...]`` -> ``{key: value}`` (values stay strings); a pair without ``=`` is an error."""
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise DatasetError(f"--option {pair!r}: expected KEY=VALUE, e.g. subset=testNoKnown")
        options[key] = value
    return options
