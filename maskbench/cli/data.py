"""`bench datasets` (list, check, replica) and `bench world` (generate the miniature world)."""

import dataclasses
import time
from pathlib import Path

import click

from maskbench.cli.common import user_errors
from maskbench.datasets import check_dataset, format_dataset_list, parse_options
from maskbench.datasets.replica import make
from maskbench.datasets.world import DATASET_NAMES, EVAL_SPLITS, SPLITS, WorldConfig, ensure_world


@click.group(invoke_without_command=True)
@click.pass_context
def datasets(ctx):
    """List every dataset with the layout it expects; `check` a root; write a `replica`."""
    if ctx.invoked_subcommand is None:
        click.echo(format_dataset_list())


@datasets.command("check")
@click.argument("name")
@click.option("--root", type=click.Path(path_type=Path), default=None,
              help="Dataset root (default: $MASKBENCH_ROOT_<NAME> or $MASKBENCH_DATA/<name>).")
@click.option("--option", "-o", "options", multiple=True, metavar="KEY=VALUE",
              help="Dataset option, e.g. -o subset=testNoKnown, -o version=2, -o split=K10.")
@click.option("--quick", is_flag=True, help="Only walk the file names; do not read and validate every frame.")
@click.option("--partial", is_flag=True, help="Accept a frame count other than the official one (replicas, subsets).")
@user_errors
def datasets_check(name, root, options, quick, partial):
    """Report what is under the root of dataset NAME: frame count vs official, every missing or malformed path."""
    report = check_dataset(name, root, read=not quick, partial=partial, **parse_options(options))
    click.echo(report.format())
    if not report.ok:
        raise SystemExit(1)


@datasets.command("replica")
@click.argument("name")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Folder to write into.")
@click.option("--frames", default=3, show_default=True, type=click.IntRange(min=1), help="Labelled frames to write.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the replica content.")
@user_errors
def datasets_replica(name, out, frames, seed):
    """Write a tiny replica of dataset NAME in its official layout (known content, for tests and smoke runs)."""
    replica = make(name, out, frames=frames, seed=seed)
    labelled, unlabelled = len(replica.samples), len(replica.unlabelled)
    options = "".join(f" -o {k}={v}" for k, v in replica.options.items())
    click.echo(f"wrote a {labelled + unlabelled}-frame replica of {name} at {replica.root}: {labelled} with labels, "
               f"{unlabelled} without" + (" (read them too with -o frames=all)" if unlabelled else "")
               + (f"; read it with{options}" if options else ""))


@click.command()
@click.option("--split", "splits", multiple=True, type=click.Choice(list(SPLITS)),
              help="Split to generate (repeatable; default: val, anomaly, obstacle, streethazards; train on request).")
@click.option("--cache", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Parent folder of the world (default: $MASKBENCH_CACHE, else ~/.cache/maskbench).")
@click.option("--seed", default=0, show_default=True, type=int, help="World seed.")
@click.option("--frames", type=click.IntRange(min=1), default=None,
              help="Frames of each requested split instead of the default sizes (another world; for smoke runs).")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Processes writing a split (default: up to 4 for train, 1 otherwise).")
@user_errors
def world(splits, cache, seed, frames, workers):
    """Generate (once, cached) the miniature road world and print the dataset root of each split."""
    splits = tuple(dict.fromkeys(splits)) or EVAL_SPLITS
    config = WorldConfig(seed=seed)
    if frames is not None:
        config = dataclasses.replace(config, **{split: frames for split in splits})
    start = time.perf_counter()
    generated = ensure_world(splits, config=config, cache=cache, workers=workers)
    click.echo(f"world {generated.root.name} ready in {time.perf_counter() - start:.1f} s: {generated.root}")
    for split in splits:
        reader = DATASET_NAMES.get(split, "cityscapes train (maskbench.datasets.world.training_set)")
        click.echo(f"  {split:<14}{config.frames(split):>6} frames  {reader:<14}  {generated.path(split)}")
