"""`bench ARGS` as a real process that pauses at one stage, so a test can interrupt it there.

``STAGE_HOOK``: ``forward`` (the main process, at the second frame), ``metrics`` (a metric-pass worker process,
whose pid goes to the marker), ``plots`` (the embedded run's plots, on a small world) or empty (no pause).
``STAGE_MARKER``: the file written when the stage is reached. The pause is a long sleep: what ends it is the
test's signal, as a user's Ctrl-C or kill would.
"""

import os
import sys
import time
from pathlib import Path

import maskbench.benchmark.embedded as embedded
import maskbench.benchmark.passes as passes
from maskbench.benchmark.tasks.anomaly import AnomalyTask
from maskbench.cli import main
from small_world import SMALL_WORLD  # the embedded run's world in the hooked runs: small frames, 3 per track

STAGE, MARKER = os.environ.get("STAGE_HOOK", ""), os.environ.get("STAGE_MARKER", "")


def pause():
    Path(MARKER).write_text(str(os.getpid()))
    time.sleep(300)


def hook_forward():
    frame, calls = AnomalyTask.frame, [0]

    def paused(self, run, index, sample):
        calls[0] += 1
        if calls[0] == 2:
            pause()
        return frame(self, run, index, sample)

    AnomalyTask.frame = paused


def hook_metrics():
    chunk = passes._pixel_chunk

    def paused(items, *args):
        position, (index, _) = items[0]  # (bootstrap position, stored frame)
        if index == 0:  # the worker with the first chunk
            pause()
        return chunk(items, *args)

    passes._pixel_chunk = paused


def hook_plots():
    plot = embedded.plot_results

    def paused(*args, **kwargs):
        pause()
        return plot(*args, **kwargs)

    embedded.plot_results = paused


if os.environ.get("SMALL_WORLD"):
    embedded.WorldConfig = lambda: SMALL_WORLD
if STAGE:
    {"forward": hook_forward, "metrics": hook_metrics, "plots": hook_plots}[STAGE]()
main(sys.argv[1:], prog_name="bench")
