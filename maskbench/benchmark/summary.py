"""What a finished `bench run` prints above its table: what was run, and every warning a reader of its numbers
needs (skipped scorers, Maskomaly ids not fitted for the checkpoint, component metrics emptied by the threshold).

Read from the results.json content alone, so a stored run prints the same summary as the run that wrote it.
"""

from maskbench.benchmark.calibrate import PUBLISHED_NOTE


def frames_text(frames, official, own=None):
    """``"40 frames"`` with how they compare to the official count of the split (if it has one); ``own``:
    ``(count, what)`` of data that is not the official one but has its own count (e.g. the miniature world)."""
    if own is not None:
        count, what = own
        whole = f"{frames} frames" if frames == count else f"{frames} of the {count} frames (partial)"
        return f"{whole} of {what}" + (f" (the official count {official} does not apply)" if official else "")
    if official is None or official == frames:
        return f"{frames} frames"
    if frames < official:
        return f"{frames} frames of {official} official (partial: not comparable to published numbers)"
    return (f"{frames} frames, more than the {official} of the official split (other data in its layout, e.g. a "
            "replica: not comparable to published numbers)")


def run_summary(results, own=None):
    """What was run: task, frames against the official count (or ``own``, see :func:`frames_text`), checkpoint,
    source, resolution, TTA; then a line for every skipped scorer, every Maskomaly scorer left on the published
    Swin-L query ids of another checkpoint (WARNING) and every scorer whose component metrics the threshold
    emptied (NOTE)."""
    run = results["run"]
    info = run["dataset"]["info"]
    lines = [f"{run['dataset']['name']}: {frames_text(run.get('frames', 0), info.get('official_count'), own)}; task "
             f"{run.get('task', 'anomaly')}; protocol {run.get('protocol', '-')}; checkpoint "
             f"{run['checkpoint']['sha256'][:12]} ({run['source']}); resolution {run['resolution']}; tta {run['tta']}"]
    for name, reason in (run.get("skipped_scorers") or {}).items():
        lines.append(f"SKIPPED: {name}: {reason}")
    for name, sources in (run.get("scorer_param_sources") or {}).items():
        if name in run.get("scorers", {}) and PUBLISHED_NOTE not in sources.values():
            by_source = {}
            for key, source in sources.items():
                by_source.setdefault(source, []).append(key)
            lines.append(f"{name} query ids: " + "; ".join(f"{', '.join(keys)} {source}"
                                                           for source, keys in by_source.items()))
    for entry in results["results"]:
        notes = entry.get("notes") or {}
        published = [k for k in notes if k in ("maskomaly.accept", "maskomaly.ground")]
        if published:
            lines.append(f"WARNING: {entry['scorer']} uses the published Swin-L Cityscapes query ids "
                         f"({', '.join(k.split('.')[1] for k in published)}), which are not fitted for this "
                         "checkpoint: its numbers are not meaningful; fit them with `bench calibrate maskomaly` "
                         "and pass the calibration")
        if "components.threshold_at_max" in notes:
            lines.append(f"NOTE: {entry['scorer']}: {notes['components.threshold_at_max']}")
    return "\n".join(lines)


__all__ = ["frames_text", "run_summary"]
